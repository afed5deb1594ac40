/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIF measurements (docs/eif.md, nitro-compat §1.4): PCR = SHA-384(48 zero bytes ‖
 * SHA-384(content)), content PCR0 = kernel ‖ cmdline ‖ ramdisks, PCR1 = kernel ‖ cmdline ‖
 * ramdisk 0, PCR2 = ramdisks 1.., all in file order, data only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/eif/internal.h"
#include "lib/util/file.h"

enum eif_error eif_pcr_extend_zero(const uint8_t digest[EIF_PCR_SIZE], uint8_t pcr[EIF_PCR_SIZE])
{
	uint8_t buf[2 * EIF_PCR_SIZE];
	unsigned int n = 0;

	memset(buf, 0, EIF_PCR_SIZE);
	memcpy(buf + EIF_PCR_SIZE, digest, EIF_PCR_SIZE);
	if (!EVP_Digest(buf, sizeof(buf), pcr, &n, EVP_sha384(), NULL) || n != EIF_PCR_SIZE)
		return EIF_ERR_CRYPTO;
	return EIF_OK;
}

enum eif_error eif_hasher_init(struct eif_hasher *h)
{
	memset(h, 0, sizeof(*h));
	h->a = EVP_MD_CTX_new();
	h->b = EVP_MD_CTX_new();
	h->c = EVP_MD_CTX_new();
	if (!h->a || !h->b || !h->c) {
		eif_hasher_free(h);
		return EIF_ERR_NOMEM;
	}
	if (!EVP_DigestInit_ex(h->a, EVP_sha384(), NULL) ||
	    !EVP_DigestInit_ex(h->c, EVP_sha384(), NULL)) {
		eif_hasher_free(h);
		return EIF_ERR_CRYPTO;
	}
	return EIF_OK;
}

void eif_hasher_free(struct eif_hasher *h)
{
	EVP_MD_CTX_free(h->a);
	EVP_MD_CTX_free(h->b);
	EVP_MD_CTX_free(h->c);
	h->a = h->b = h->c = NULL;
}

enum eif_error eif_hasher_section(struct eif_hasher *h, uint16_t type)
{
	h->to_a = h->to_b = h->to_c = false;
	switch (type) {
	case EIF_SECTION_KERNEL:
	case EIF_SECTION_CMDLINE:
		h->to_a = true;
		h->to_b = h->split;
		break;
	case EIF_SECTION_RAMDISK:
		h->to_a = true;
		if (h->ramdisks == 0) {
			h->to_b = h->split;
		} else {
			/* First byte that PCR1 must not see: fork B off A here. */
			if (!h->split) {
				if (!EVP_MD_CTX_copy_ex(h->b, h->a))
					return EIF_ERR_CRYPTO;
				h->split = true;
			}
			h->to_c = true;
		}
		h->ramdisks++;
		break;
	default:
		break; /* metadata and signature are not measured (PCR8 is separate) */
	}
	return EIF_OK;
}

enum eif_error eif_hasher_update(struct eif_hasher *h, const uint8_t *p, size_t n)
{
	if (h->to_a && !EVP_DigestUpdate(h->a, p, n))
		return EIF_ERR_CRYPTO;
	if (h->to_b && !EVP_DigestUpdate(h->b, p, n))
		return EIF_ERR_CRYPTO;
	if (h->to_c && !EVP_DigestUpdate(h->c, p, n))
		return EIF_ERR_CRYPTO;
	return EIF_OK;
}

static enum eif_error finish(EVP_MD_CTX *ctx, uint8_t pcr[EIF_PCR_SIZE])
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_DigestFinal_ex(ctx, digest, &n) || n != EIF_PCR_SIZE)
		return EIF_ERR_CRYPTO;
	return eif_pcr_extend_zero(digest, pcr);
}

enum eif_error eif_hasher_final(struct eif_hasher *h, struct eif_measurements *m)
{
	enum eif_error err;

	if (!h->split) {
		if (!EVP_MD_CTX_copy_ex(h->b, h->a))
			return EIF_ERR_CRYPTO;
		h->split = true;
	}
	if ((err = finish(h->a, m->pcr0)) || (err = finish(h->b, m->pcr1)) ||
	    (err = finish(h->c, m->pcr2)))
		return err;
	return EIF_OK;
}

enum eif_error eif_pcr_of_bytes(const uint8_t *data, size_t len, uint8_t pcr[EIF_PCR_SIZE])
{
	uint8_t digest[EIF_PCR_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, digest, &n, EVP_sha384(), NULL) || n != EIF_PCR_SIZE)
		return EIF_ERR_CRYPTO;
	return eif_pcr_extend_zero(digest, pcr);
}

enum eif_error eif_pcr_of_file(const char *path, uint8_t pcr[EIF_PCR_SIZE], struct cl_diag *d)
{
	enum eif_error err = EIF_ERR_IO;
	uint8_t digest[EIF_PCR_SIZE];
	EVP_MD_CTX *ctx = NULL;
	uint8_t *buf = NULL;
	unsigned int n = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cl_diag_set(d, "cannot open '%s': %s", path, strerror(errno));
		return EIF_ERR_IO;
	}
	buf = malloc(EIF_IO_CHUNK);
	ctx = EVP_MD_CTX_new();
	if (!buf || !ctx) {
		err = EIF_ERR_NOMEM;
		goto out;
	}
	if (!EVP_DigestInit_ex(ctx, EVP_sha384(), NULL)) {
		err = EIF_ERR_CRYPTO;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf, EIF_IO_CHUNK);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cl_diag_set(d, "cannot read '%s': %s", path, strerror(errno));
			err = EIF_ERR_IO;
			goto out;
		}
		if (r == 0)
			break;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)r)) {
			err = EIF_ERR_CRYPTO;
			goto out;
		}
	}
	if (!EVP_DigestFinal_ex(ctx, digest, &n) || n != EIF_PCR_SIZE) {
		err = EIF_ERR_CRYPTO;
		goto out;
	}
	err = eif_pcr_extend_zero(digest, pcr);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	return err;
}

enum eif_error eif_pcr8_of_pem(const uint8_t *pem, size_t len, uint8_t pcr[EIF_PCR_SIZE],
                               struct cl_diag *d)
{
	unsigned char *der = NULL;
	enum eif_error err;
	X509 *cert = NULL;
	BIO *bio;
	int n;

	if (len > INT32_MAX) {
		cl_diag_set(d, "certificate of %zu bytes is too large", len);
		return EIF_ERR_CERT;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return EIF_ERR_NOMEM;
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!cert) {
		cl_diag_set(d, "the signing certificate is not a PEM X.509 certificate");
		return EIF_ERR_CERT;
	}
	n = i2d_X509(cert, &der);
	X509_free(cert);
	if (n <= 0) {
		cl_diag_set(d, "cannot re-encode the signing certificate as DER");
		return EIF_ERR_CERT;
	}
	err = eif_pcr_of_bytes(der, (size_t)n, pcr);
	OPENSSL_free(der);
	return err;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIF signing and signature checks (docs/eif.md, nitro-compat §1.5): a COSE_Sign1 over the CBOR
 * of PcrInfo{0, PCR0}, with the PEM certificate, in the signature section.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/cose/cose.h"
#include "lib/eif/internal.h"
#include "lib/util/checked.h"
#include "lib/util/file.h"

static X509 *pem_to_x509(const uint8_t *pem, size_t len)
{
	BIO *bio;
	X509 *x;

	if (len > INT32_MAX)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return NULL;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return x;
}

enum eif_error eif_signing_inputs_load(const char *cert_path, const char *key_path,
                                       uint8_t **cert_pem, size_t *cert_len, EVP_PKEY **key,
                                       struct cl_diag *d)
{
	uint8_t *kbuf = NULL;
	size_t klen = 0;
	enum eif_error err;
	X509 *cert = NULL;
	int64_t alg;
	BIO *bio;

	*cert_pem = NULL;
	*key = NULL;
	/* Each PEM byte costs up to 2 bytes in the 32 KiB section. */
	if (cl_file_read_all(cert_path, EIF_SIGNATURE_MAX / 2, cert_pem, cert_len, d) < 0) {
		cl_diag_prefix(d, "signing certificate");
		return EIF_ERR_CERT;
	}
	cert = pem_to_x509(*cert_pem, *cert_len);
	if (!cert) {
		cl_diag_set(d, "'%s' is not a PEM X.509 certificate", cert_path);
		err = EIF_ERR_CERT;
		goto fail;
	}
	if (cl_file_read_all(key_path, 1 << 16, &kbuf, &klen, d) < 0) {
		cl_diag_prefix(d, "private key");
		err = EIF_ERR_KEY;
		goto fail;
	}
	bio = BIO_new_mem_buf(kbuf, (int)klen);
	if (!bio) {
		err = EIF_ERR_NOMEM;
		goto fail;
	}
	*key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	OPENSSL_cleanse(kbuf, klen);
	if (!*key) {
		cl_diag_set(d, "'%s' is not a PEM private key (KMS key ARNs are not supported)",
		            key_path);
		err = EIF_ERR_KEY;
		goto fail;
	}
	if (cose_alg_for_key(*key, &alg, d) != COSE_OK) {
		cl_diag_prefix(d, "private key '%s'", key_path);
		err = EIF_ERR_KEY;
		goto fail;
	}
	if (X509_check_private_key(cert, *key) != 1) {
		ERR_clear_error();
		cl_diag_set(d, "private key '%s' does not belong to the certificate '%s'", key_path,
		            cert_path);
		err = EIF_ERR_KEY;
		goto fail;
	}
	X509_free(cert);
	free(kbuf);
	return EIF_OK;
fail:
	X509_free(cert);
	free(kbuf);
	free(*cert_pem);
	*cert_pem = NULL;
	EVP_PKEY_free(*key);
	*key = NULL;
	return err;
}

enum eif_error eif_signature_build(const uint8_t *cert_pem, size_t cert_len, EVP_PKEY *key,
                                   const uint8_t pcr0[EIF_PCR_SIZE], uint8_t **out, size_t *out_len,
                                   struct cl_diag *d)
{
	uint8_t *payload = NULL, *cose = NULL;
	size_t payload_len = 0, cose_len = 0;
	enum cose_error cerr;
	enum eif_error err;

	if ((err = eif_pcr_info_encode(0, pcr0, &payload, &payload_len)))
		return err;
	cerr = cose_sign1_sign(key, payload, payload_len, &cose, &cose_len, d);
	free(payload);
	if (cerr != COSE_OK) {
		cl_diag_prefix(d, "signing PCR0");
		return cerr == COSE_ERR_NOMEM ? EIF_ERR_NOMEM
		       : cerr == COSE_ERR_KEY ? EIF_ERR_KEY
		                              : EIF_ERR_CRYPTO;
	}
	err = eif_signature_section_encode(cert_pem, cert_len, cose, cose_len, out, out_len, d);
	free(cose);
	return err;
}

/* Move [from, from + len) to @to within @fd, in chunks, in the safe direction for overlap. */
static enum eif_error move_bytes(int fd, uint64_t from, uint64_t to, uint64_t len, uint8_t *buf,
                                 struct cl_diag *d)
{
	uint64_t done = 0;

	while (done < len) {
		uint64_t left = len - done;
		size_t n = left > EIF_IO_CHUNK ? EIF_IO_CHUNK : (size_t)left;
		/* moving up: copy the tail first; moving down: the head first */
		uint64_t src = to > from ? from + left - n : from + done;
		uint64_t dst = to > from ? to + left - n : to + done;
		long long r = cl_pread_full(fd, buf, n, src);

		if (r != (long long)n) {
			cl_diag_set(d,
			            "cannot read %zu bytes at 0x%" PRIx64 " while moving sections",
			            n, src);
			return EIF_ERR_IO;
		}
		if (pwrite(fd, buf, n, (off_t)dst) != (ssize_t)n) {
			cl_diag_set(d, "cannot write at 0x%" PRIx64 " while moving sections: %s",
			            dst, strerror(errno));
			return EIF_ERR_IO;
		}
		done += n;
	}
	return EIF_OK;
}

enum eif_error eif_sign_file(const char *eif_path, const char *cert_path, const char *key_path,
                             struct eif_measurements *meas, struct cl_diag *d)
{
	uint64_t offsets[EIF_MAX_SECTIONS], sizes[EIF_MAX_SECTIONS];
	uint8_t hdr[EIF_HEADER_SIZE], sh[EIF_SECTION_HEADER_SIZE];
	struct eif_image img = { 0 }, check = { 0 };
	uint8_t *cert_pem = NULL, *sig = NULL, *buf = NULL;
	size_t cert_len = 0, sig_len = 0;
	uint64_t sig_off, old_end, new_end, tail_len, new_size;
	enum eif_error err;
	EVP_PKEY *key = NULL;
	unsigned n, k;
	int fd = -1;

	if (!eif_path || !cert_path || !key_path)
		return EIF_ERR_INVALID_ARG;
	if ((err = eif_signing_inputs_load(cert_path, key_path, &cert_pem, &cert_len, &key, d)))
		return err;
	fd = open(eif_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		cl_diag_set(d, "cannot open '%s' for writing: %s", eif_path, strerror(errno));
		err = EIF_ERR_IO;
		goto out;
	}
	if ((err = eif_read_fd(fd, EIF_PARSE_MEASURE, &img, d))) {
		cl_diag_prefix(d, "%s", eif_path);
		goto out;
	}
	if (img.version < 3) {
		cl_diag_set(d,
		            "'%s' is EIF version %u, which cannot carry a signature (needs 3 or 4)",
		            eif_path, img.version);
		err = EIF_ERR_INVALID_ARG;
		goto out;
	}
	if ((err = eif_signature_build(cert_pem, cert_len, key, img.meas.pcr0, &sig, &sig_len, d)))
		goto out;

	n = img.num_sections;
	for (unsigned i = 0; i < n; i++) {
		offsets[i] = img.sections[i].offset;
		sizes[i] = img.sections[i].size;
	}
	if (img.signature >= 0) {
		/* Replace in place; the sections after it shift by the size difference. */
		k = (unsigned)img.signature;
		sig_off = offsets[k];
		old_end = img.sections[k].data_offset + img.sections[k].size;
	} else {
		if (n >= EIF_MAX_SECTIONS) {
			cl_diag_set(d,
			            "'%s' already has %u sections; no slot is left for a signature",
			            eif_path, n);
			err = EIF_ERR_INVALID_ARG;
			goto out;
		}
		k = n++;
		sig_off = img.file_size;
		old_end = img.file_size;
	}
	new_end = sig_off + EIF_SECTION_HEADER_SIZE + sig_len;
	tail_len = img.file_size - old_end;
	new_size = new_end + tail_len;
	offsets[k] = sig_off;
	sizes[k] = sig_len;
	for (unsigned i = k + 1; i < n; i++)
		offsets[i] = offsets[i] - old_end + new_end;

	buf = malloc(EIF_IO_CHUNK);
	if (!buf) {
		err = EIF_ERR_NOMEM;
		goto out;
	}
	if (tail_len && (err = move_bytes(fd, old_end, new_end, tail_len, buf, d)))
		goto out;
	eif_section_header_encode(sh, EIF_SECTION_SIGNATURE, sig_len);
	if (pwrite(fd, sh, sizeof(sh), (off_t)sig_off) != (ssize_t)sizeof(sh) ||
	    pwrite(fd, sig, sig_len, (off_t)(sig_off + sizeof(sh))) != (ssize_t)sig_len ||
	    ftruncate(fd, (off_t)new_size) < 0) {
		cl_diag_set(d, "cannot write the signature into '%s': %s", eif_path,
		            strerror(errno));
		err = EIF_ERR_IO;
		goto out;
	}
	eif_header_encode(hdr, img.version, img.flags, (uint16_t)n, offsets, sizes);
	/* keep the fields the table rewrite does not own */
	cl_put_be64(hdr + 0x08, img.default_mem);
	cl_put_be64(hdr + 0x10, img.default_cpus);
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		cl_diag_set(d, "cannot rewrite the header of '%s': %s", eif_path, strerror(errno));
		err = EIF_ERR_IO;
		goto out;
	}
	/* Second pass: the new CRC, and a full check of what we wrote. */
	if ((err = eif_read_fd(fd, EIF_PARSE_MEASURE | EIF_PARSE_ALLOW_BAD_CRC, &check, d))) {
		cl_diag_prefix(d, "re-reading the signed '%s'", eif_path);
		goto out;
	}
	cl_put_be32(hdr + EIF_CRC_OFFSET, check.crc_computed);
	if (pwrite(fd, hdr + EIF_CRC_OFFSET, 4, EIF_CRC_OFFSET) != 4) {
		cl_diag_set(d, "cannot write the CRC of '%s': %s", eif_path, strerror(errno));
		err = EIF_ERR_IO;
		goto out;
	}
	if (meas)
		*meas = check.meas;
	err = EIF_OK;
out:
	if (fd >= 0)
		close(fd);
	eif_image_release(&img);
	eif_image_release(&check);
	free(cert_pem);
	free(sig);
	free(buf);
	EVP_PKEY_free(key);
	return err;
}

/* ASN1_TIME_print's text ("Jan  1 00:00:00 2024 GMT"), which is what nitro-cli shows. */
static void time_text(const ASN1_TIME *t, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	out[0] = '\0';
	if (!b)
		return;
	if (ASN1_TIME_print(b, t))
		n = BIO_read(b, out, (int)len - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

static int cmp_issuer(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

enum eif_error eif_signature_inspect(const struct eif_image *img, struct eif_signature_info *info,
                                     struct cl_diag *d)
{
	uint8_t *pem = NULL, *cose = NULL, *expect = NULL;
	size_t pem_len = 0, cose_len = 0, expect_len = 0;
	struct cose_sign1 msg = { 0 };
	const ASN1_BIT_STRING *csig = NULL;
	const X509_ALGOR *calg = NULL;
	const ASN1_OBJECT *aobj = NULL;
	enum eif_error err;
	EVP_PKEY *pub = NULL;
	X509_NAME *issuer;
	X509 *cert = NULL;

	memset(info, 0, sizeof(*info));
	if (!img || img->signature < 0 || !img->measured) {
		cl_diag_set(d, "the image is not signed (or was not measured)");
		return EIF_ERR_INVALID_ARG;
	}
	if ((err = eif_signature_section_decode(img->signature_data, img->signature_len, &pem,
	                                        &pem_len, &cose, &cose_len, d)))
		return err;
	cert = pem_to_x509(pem, pem_len);
	if (!cert) {
		cl_diag_set(d, "the signing certificate in the signature section is not PEM X.509");
		err = EIF_ERR_CERT;
		goto out;
	}

	/* IssuerName: a BTreeMap in nitro-cli, so sorted by name and the last duplicate wins. */
	issuer = X509_get_issuer_name(cert);
	for (int i = 0; i < X509_NAME_entry_count(issuer); i++) {
		X509_NAME_ENTRY *e = X509_NAME_get_entry(issuer, i);
		unsigned char *utf8 = NULL;
		char name[64];
		size_t slot, w = 0;
		int len;

		if (OBJ_obj2txt(name, sizeof(name), X509_NAME_ENTRY_get_object(e), 0) <= 0)
			continue;
		for (slot = 0; slot < info->num_issuer; slot++)
			if (!strcmp(info->issuer[slot].name, name))
				break;
		if (slot == info->num_issuer) {
			if (info->num_issuer == sizeof(info->issuer) / sizeof(info->issuer[0]))
				continue;
			info->num_issuer++;
		}
		snprintf(info->issuer[slot].name, sizeof(info->issuer[slot].name), "%s", name);
		len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
		/* nitro-cli prints the value with Rust's {:?} and strips the quotes */
		for (int c = 0; c < len && w + 1 < sizeof(info->issuer[slot].value); c++)
			if (utf8[c] != '"')
				info->issuer[slot].value[w++] = (char)utf8[c];
		info->issuer[slot].value[w] = '\0';
		OPENSSL_free(utf8);
	}
	qsort(info->issuer, info->num_issuer, sizeof(info->issuer[0]), cmp_issuer);

	X509_get0_signature(&csig, &calg, cert);
	X509_ALGOR_get0(&aobj, NULL, NULL, calg);
	if (!aobj || OBJ_obj2txt(info->algorithm, sizeof(info->algorithm), aobj, 0) <= 0)
		snprintf(info->algorithm, sizeof(info->algorithm), "unknown");
	time_text(X509_get0_notBefore(cert), info->not_before, sizeof(info->not_before));
	time_text(X509_get0_notAfter(cert), info->not_after, sizeof(info->not_after));
	if (csig) {
		int n = ASN1_STRING_length(csig);
		const unsigned char *b = ASN1_STRING_get0_data(csig);

		info->cert_signature = malloc(n > 0 ? (size_t)n * 3 : 1);
		if (!info->cert_signature) {
			err = EIF_ERR_NOMEM;
			goto out;
		}
		info->cert_signature[0] = '\0';
		for (int i = 0; i < n; i++)
			snprintf(info->cert_signature + 3 * i, 4, i + 1 < n ? "%02X:" : "%02X",
			         b[i]);
	}
	info->cert_time_valid = X509_cmp_current_time(X509_get0_notBefore(cert)) < 0 &&
	                        X509_cmp_current_time(X509_get0_notAfter(cert)) > 0;

	if (cose_sign1_decode(cose, cose_len, &msg, d) != COSE_OK) {
		cl_diag_prefix(d, "the COSE_Sign1 in the signature section");
		err = EIF_ERR_SIGNATURE;
		goto out;
	}
	pub = X509_get_pubkey(cert);
	info->signature_valid = pub && cose_sign1_verify(&msg, pub, NULL) == COSE_OK;
	if ((err = eif_pcr_info_encode(0, img->meas.pcr0, &expect, &expect_len)))
		goto out;
	info->pcr0_matches = msg.payload_len == expect_len &&
	                     !memcmp(msg.payload, expect, expect_len);
	err = EIF_OK;
out:
	if (err)
		eif_signature_info_release(info);
	cose_sign1_free(&msg);
	EVP_PKEY_free(pub);
	X509_free(cert);
	free(pem);
	free(cose);
	free(expect);
	return err;
}

void eif_signature_info_release(struct eif_signature_info *info)
{
	if (!info)
		return;
	free(info->cert_signature);
	info->cert_signature = NULL;
}

enum eif_error eif_signature_verify(const struct eif_image *img, struct cl_diag *d)
{
	struct eif_signature_info info;
	enum eif_error err;

	if (!img)
		return EIF_ERR_INVALID_ARG;
	if (img->signature < 0)
		return EIF_OK;
	if ((err = eif_signature_inspect(img, &info, d)))
		return err;
	if (!info.signature_valid) {
		cl_diag_set(
		        d, "the COSE signature does not verify with the signing certificate's key");
		err = EIF_ERR_BAD_SIGNATURE;
	} else if (!info.pcr0_matches) {
		cl_diag_set(d,
		            "the signature is valid but signs a different PCR0 than this image's "
		            "(the image was changed after signing; sign it again)");
		err = EIF_ERR_PCR_MISMATCH;
	} else if (!info.cert_time_valid) {
		cl_diag_set(d,
		            "the signing certificate is not valid now (notBefore %s, notAfter %s)",
		            info.not_before, info.not_after);
		err = EIF_ERR_CERT;
	}
	eif_signature_info_release(&info);
	return err;
}

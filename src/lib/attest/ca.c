/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cloister/attest.h"
#include "lib/util/file.h"

#define ROOT_DAYS (30 * 365 + 7) /* like the AWS root's 30 years */
#define INTERMEDIATE_DAYS (10 * 365 + 2)
#define PEM_MAX (64 * 1024)

struct attest_ca {
	EVP_PKEY *int_key;
	X509 *int_cert;
	X509 *root_cert;
	uint8_t *root_der;
	size_t root_der_len;
	uint8_t *int_der;
	size_t int_der_len;
};

enum cert_kind { CERT_ROOT, CERT_INTERMEDIATE, CERT_LEAF };

const char *attest_strerror(enum attest_error err)
{
	switch (err) {
	case ATTEST_OK:
		return "success";
	case ATTEST_ERR_NOMEM:
		return "out of memory";
	case ATTEST_ERR_IO:
		return "cannot read or write CA files";
	case ATTEST_ERR_EXISTS:
		return "the CA already exists";
	case ATTEST_ERR_NO_CA:
		return "no CA found";
	case ATTEST_ERR_CRYPTO:
		return "cryptographic operation failed";
	case ATTEST_ERR_MALFORMED:
		return "malformed attestation document";
	case ATTEST_ERR_SIGNATURE:
		return "attestation document signature is invalid";
	case ATTEST_ERR_CHAIN:
		return "attestation certificate chain is invalid";
	case ATTEST_ERR_MISMATCH:
		return "attestation document does not match the expected values";
	}
	return "unknown attestation error";
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

/* Serialise concurrent `ca init` / first run-enclave calls on one directory, so nobody loads a
 * root from one run and an intermediate from another. Returns the lock fd or -1. */
static int lock_dir(const char *dir, struct cl_diag *d)
{
	char path[PATH_MAX];
	int fd;

	join(path, sizeof(path), dir, ".lock");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		cl_diag_set(d,
		            "cannot open lock '%s': %s (is the CA directory writable? run as "
		            "root or set CLOISTER_CA_DIR / --dir)",
		            path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) && errno == EINTR)
		;
	return fd;
}

static bool set_random_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn;
	bool ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return false;
	b[0] &= 0x7f; /* positive, and 16 bytes in DER at most */
	b[0] |= 0x40; /* non-zero leading byte: fixed length */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	return ok;
}

static bool add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	bool ok;

	if (!ext)
		return false;
	ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* Issue a certificate for @key. @issuer NULL = self-signed (root). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, long days,
                       enum cert_kind kind)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX ctx;
	const char *bc, *ku;

	if (!x)
		return NULL;
	name = X509_get_subject_name(x);
	if (X509_set_version(x, 2) != 1 || !set_random_serial(x) ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -300, NULL) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"cloister",
	                               -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                               0) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1)
		goto fail;

	switch (kind) {
	case CERT_ROOT:
		bc = "critical,CA:TRUE,pathlen:1";
		ku = "critical,keyCertSign,cRLSign";
		break;
	case CERT_INTERMEDIATE:
		bc = "critical,CA:TRUE,pathlen:0";
		ku = "critical,keyCertSign,cRLSign";
		break;
	default:
		bc = "critical,CA:FALSE";
		ku = "critical,digitalSignature";
		break;
	}
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (!add_ext(x, &ctx, NID_basic_constraints, bc) || !add_ext(x, &ctx, NID_key_usage, ku) ||
	    !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto fail;
	if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha384()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

static int write_pem(const char *dir, const char *name, X509 *cert, EVP_PKEY *key,
                     struct cl_diag *d)
{
	char path[PATH_MAX];
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int rc = -1;

	join(path, sizeof(path), dir, name);
	if (!bio)
		return -1;
	if (cert ? PEM_write_bio_X509(bio, cert) != 1
	         : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
		cl_diag_set(d, "cannot encode %s", path);
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	/* Keys are 0600: only the monitor (root) ever reads them. */
	if (cl_file_write_atomic(path, data, (size_t)len, cert ? 0644 : 0600, d) != 0)
		goto out;
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

static enum attest_error ca_init_locked(const char *dir, bool force, struct cl_diag *d)
{
	char path[PATH_MAX], host[256] = "host", cn[320];
	EVP_PKEY *root_key = NULL, *int_key = NULL;
	X509 *root = NULL, *inter = NULL;
	enum attest_error err = ATTEST_ERR_CRYPTO;

	join(path, sizeof(path), dir, ATTEST_ROOT_CERT);
	if (!force && access(path, F_OK) == 0) {
		cl_diag_set(d,
		            "a CA already exists in %s (root %s); use --force to replace it, "
		            "which invalidates every document signed so far",
		            dir, path);
		return ATTEST_ERR_EXISTS;
	}
	gethostname(host, sizeof(host) - 1);
	snprintf(cn, sizeof(cn), "cloister enclaves intermediate %s", host);
	root_key = EVP_EC_gen("P-384");
	int_key = EVP_EC_gen("P-384");
	if (!root_key || !int_key) {
		cl_diag_set(d, "cannot generate P-384 keys");
		goto out;
	}
	root = make_cert(root_key, "cloister enclaves root", NULL, NULL, ROOT_DAYS, CERT_ROOT);
	inter = root ? make_cert(int_key, cn, root, root_key, INTERMEDIATE_DAYS, CERT_INTERMEDIATE)
	             : NULL;
	if (!root || !inter) {
		cl_diag_set(d, "cannot create the CA certificates");
		goto out;
	}
	err = ATTEST_ERR_IO;
	/* root.pem last: its presence means the CA is complete. */
	if (write_pem(dir, ATTEST_ROOT_KEY, NULL, root_key, d) ||
	    write_pem(dir, ATTEST_INTERMEDIATE_KEY, NULL, int_key, d) ||
	    write_pem(dir, ATTEST_INTERMEDIATE_CERT, inter, NULL, d) ||
	    write_pem(dir, ATTEST_ROOT_CERT, root, NULL, d))
		goto out;
	err = ATTEST_OK;
out:
	ERR_clear_error();
	X509_free(root);
	X509_free(inter);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(int_key);
	return err;
}

enum attest_error attest_ca_init(const char *dir, bool force, struct cl_diag *d)
{
	enum attest_error err;
	int lock;

	if (cl_mkdir_p(dir, d))
		return ATTEST_ERR_IO;
	lock = lock_dir(dir, d);
	if (lock < 0)
		return ATTEST_ERR_IO;
	err = ca_init_locked(dir, force, d);
	close(lock);
	return err;
}

static void *read_pem(const char *dir, const char *name, bool key, struct cl_diag *d,
                      enum attest_error *err)
{
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *bio;
	void *obj = NULL;
	int rc;

	join(path, sizeof(path), dir, name);
	rc = cl_file_read_all(path, PEM_MAX, &buf, &len, d);
	if (rc) {
		*err = rc == -ENOENT ? ATTEST_ERR_NO_CA : ATTEST_ERR_IO;
		if (rc == -ENOENT)
			cl_diag_set(d, "no CA in %s (%s is missing); run 'cloister ca init' first",
			            dir, path);
		return NULL;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio)
		obj = key ? (void *)PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
		          : (void *)PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (!obj) {
		*err = ATTEST_ERR_NO_CA;
		cl_diag_set(d, "%s is not a PEM %s", path, key ? "private key" : "certificate");
	}
	ERR_clear_error();
	return obj;
}

static bool to_der(X509 *x, uint8_t **out, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	if (n <= 0)
		return false;
	*out = malloc((size_t)n);
	if (!*out) {
		OPENSSL_free(der);
		return false;
	}
	memcpy(*out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	return true;
}

void attest_ca_free(struct attest_ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->int_key);
	X509_free(ca->int_cert);
	X509_free(ca->root_cert);
	free(ca->root_der);
	free(ca->int_der);
	free(ca);
}

enum attest_error attest_ca_load(const char *dir, struct attest_ca **out, struct cl_diag *d)
{
	struct attest_ca *ca = calloc(1, sizeof(*ca));
	enum attest_error err = ATTEST_ERR_NOMEM;

	*out = NULL;
	if (!ca)
		return err;
	if (!(ca->root_cert = read_pem(dir, ATTEST_ROOT_CERT, false, d, &err)) ||
	    !(ca->int_cert = read_pem(dir, ATTEST_INTERMEDIATE_CERT, false, d, &err)) ||
	    !(ca->int_key = read_pem(dir, ATTEST_INTERMEDIATE_KEY, true, d, &err)))
		goto fail;
	err = ATTEST_ERR_NO_CA;
	if (X509_check_private_key(ca->int_cert, ca->int_key) != 1) {
		cl_diag_set(d, "%s/%s does not belong to %s/%s; re-run 'cloister ca init --force'",
		            dir, ATTEST_INTERMEDIATE_KEY, dir, ATTEST_INTERMEDIATE_CERT);
		goto fail;
	}
	if (X509_check_issued(ca->root_cert, ca->int_cert) != X509_V_OK) {
		cl_diag_set(d, "%s/%s was not issued by %s/%s; re-run 'cloister ca init --force'",
		            dir, ATTEST_INTERMEDIATE_CERT, dir, ATTEST_ROOT_CERT);
		goto fail;
	}
	err = ATTEST_ERR_NOMEM;
	if (!to_der(ca->root_cert, &ca->root_der, &ca->root_der_len) ||
	    !to_der(ca->int_cert, &ca->int_der, &ca->int_der_len))
		goto fail;
	ERR_clear_error();
	*out = ca;
	return ATTEST_OK;
fail:
	ERR_clear_error();
	attest_ca_free(ca);
	return err;
}

enum attest_error attest_ca_ensure(const char *dir, struct attest_ca **out, struct cl_diag *d)
{
	char path[PATH_MAX];
	enum attest_error err;

	join(path, sizeof(path), dir, ATTEST_ROOT_CERT);
	if (access(path, F_OK) != 0) {
		err = attest_ca_init(dir, false, d);
		/* Someone else may have won the race under the lock: fine. */
		if (err != ATTEST_OK && err != ATTEST_ERR_EXISTS)
			return err;
	}
	return attest_ca_load(dir, out, d);
}

const uint8_t *attest_ca_root_der(const struct attest_ca *ca, size_t *len)
{
	*len = ca->root_der_len;
	return ca->root_der;
}

void attest_leaf_free(struct attest_leaf *leaf)
{
	if (!leaf)
		return;
	EVP_PKEY_free(leaf->key);
	free(leaf->cert_der);
	for (size_t i = 0; i < ATTEST_MAX_CABUNDLE; i++)
		free(leaf->chain_store[i]);
	memset(leaf, 0, sizeof(*leaf));
}

enum attest_error attest_leaf_mint(const struct attest_ca *ca, const char *module_id,
                                   struct attest_leaf *out, struct cl_diag *d)
{
	size_t n = module_id ? strlen(module_id) : 0;
	X509 *cert = NULL;
	enum attest_error err = ATTEST_ERR_CRYPTO;

	memset(out, 0, sizeof(*out));
	/* X.509 caps a commonName at 64 characters (ub-common-name); AWS ids are 39. */
	if (n == 0 || n > 64) {
		cl_diag_set(d, "module id '%s' is %zu bytes; a leaf certificate CN holds 1..64",
		            module_id ? module_id : "", n);
		return ATTEST_ERR_CRYPTO;
	}
	out->key = EVP_EC_gen("P-384");
	if (!out->key) {
		cl_diag_set(d, "cannot generate the enclave's P-384 leaf key");
		goto fail;
	}
	cert = make_cert(out->key, module_id, ca->int_cert, ca->int_key, ATTEST_LEAF_VALIDITY_DAYS,
	                 CERT_LEAF);
	if (!cert) {
		cl_diag_set(d, "cannot issue the leaf certificate for '%s'", module_id);
		goto fail;
	}
	err = ATTEST_ERR_NOMEM;
	if (!to_der(cert, &out->cert_der, &out->cert_len))
		goto fail;
	out->chain_store[0] = malloc(ca->root_der_len);
	out->chain_store[1] = malloc(ca->int_der_len);
	if (!out->chain_store[0] || !out->chain_store[1])
		goto fail;
	memcpy(out->chain_store[0], ca->root_der, ca->root_der_len);
	memcpy(out->chain_store[1], ca->int_der, ca->int_der_len);
	out->chain[0] = out->chain_store[0];
	out->chain[1] = out->chain_store[1];
	out->chain_lens[0] = ca->root_der_len;
	out->chain_lens[1] = ca->int_der_len;
	out->chain_count = 2;
	X509_free(cert);
	return ATTEST_OK;
fail:
	ERR_clear_error();
	X509_free(cert);
	attest_leaf_free(out);
	return err;
}

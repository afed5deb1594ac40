/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation authority and verifier tests. Documents come from the NSM device fed with a
 * minted leaf; the test re-checks them through an independent path (raw EVP_PKEY_verify over
 * a hand-built Sig_structure, and its own X509_verify_cert), and a real AWS document (debug
 * enclave, 2022-07-26, public sample) is verified against the AWS root at its own time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cloister/attest.h"
#include "lib/cose/cose.h"
#include "lib/nsm/device.h"
#include "lib/nsm/enclave.h"
#include "lib/util/file.h"
#include "nsm_test_util.h"

#define MODULE_ID "i-0123456789abcdef0-enc0123456789abcdef"

struct fx {
	char dir[64];
	struct attest_ca *ca;
	struct attest_leaf leaf;
	struct nsm_state *nsm;
	uint8_t pcr0[48];
	uint8_t *doc;
	size_t doc_len;
	uint8_t *root_pem;
	size_t root_pem_len;
};

static void rm_ca(const char *dir)
{
	const char *names[] = { "root.pem", "root.key", "intermediate.pem", "intermediate.key",
		                ".lock" };
	char p[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void make_doc(struct fx *f, const char *nonce)
{
	free(f->doc);
	assert_int_equal(nsm_attest(f->nsm, NULL, 0, (const uint8_t *)nonce, strlen(nonce), NULL, 0,
	                            &f->doc, &f->doc_len),
	                 NSM_SUCCESS);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct nsm_config cfg;
	char path[128];

	strcpy(f->dir, "/tmp/cloister-ca-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(attest_ca_init(f->dir, false, NULL), ATTEST_OK);
	assert_int_equal(attest_ca_load(f->dir, &f->ca, NULL), ATTEST_OK);
	assert_int_equal(attest_leaf_mint(f->ca, MODULE_ID, &f->leaf, NULL), ATTEST_OK);
	memset(&cfg, 0, sizeof(cfg));
	for (int i = 0; i < 48; i++)
		f->pcr0[i] = (uint8_t)(i * 3);
	memcpy(cfg.pcr0, f->pcr0, 48);
	cfg.module_id = MODULE_ID;
	cfg.signing_key = f->leaf.key;
	cfg.certificate = f->leaf.cert_der;
	cfg.certificate_len = f->leaf.cert_len;
	cfg.cabundle = f->leaf.chain;
	cfg.cabundle_lens = f->leaf.chain_lens;
	cfg.cabundle_count = f->leaf.chain_count;
	assert_int_equal(nsm_state_new(&cfg, &f->nsm, NULL), NSM_OK);
	make_doc(f, "nonce-123");
	snprintf(path, sizeof(path), "%s/root.pem", f->dir);
	assert_int_equal(cl_file_read_all(path, 65536, &f->root_pem, &f->root_pem_len, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nsm_state_free(f->nsm);
	attest_leaf_free(&f->leaf);
	attest_ca_free(f->ca);
	rm_ca(f->dir);
	free(f->doc);
	free(f->root_pem);
	free(f);
	return 0;
}

static X509 *load_pem(const char *dir, const char *name)
{
	char p[128];
	FILE *fp;
	X509 *x;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fp = fopen(p, "r");
	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

static void test_attest_ca_files_and_modes(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char p[128];
	struct cl_diag d = { "" };

	snprintf(p, sizeof(p), "%s/root.key", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s/intermediate.key", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s/root.pem", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(attest_ca_init(f->dir, false, &d), ATTEST_ERR_EXISTS);
	assert_non_null(strstr(d.msg, "--force"));
}

static void test_attest_ca_certificates_have_ca_constraints(void **state)
{
	struct fx *f = *state;
	X509 *root = load_pem(f->dir, "root.pem"), *inter = load_pem(f->dir, "intermediate.pem");
	const unsigned char *p = f->leaf.cert_der;
	X509 *leaf = d2i_X509(NULL, &p, (long)f->leaf.cert_len);
	char cn[128];
	EVP_PKEY *pk;

	assert_non_null(leaf);
	assert_true(X509_get_extension_flags(root) & EXFLAG_CA);
	assert_int_equal(X509_get_pathlen(root), 1);
	assert_true(X509_get_key_usage(root) & KU_KEY_CERT_SIGN);
	assert_true(X509_get_extension_flags(inter) & EXFLAG_CA);
	assert_int_equal(X509_get_pathlen(inter), 0);
	assert_true(X509_get_key_usage(inter) & KU_KEY_CERT_SIGN);
	assert_false(X509_get_extension_flags(leaf) & EXFLAG_CA);
	assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
	X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, MODULE_ID);
	/* Root and leaf keys are P-384 */
	pk = X509_get0_pubkey(root);
	assert_int_equal(EVP_PKEY_get_bits(pk), 384);
	assert_int_equal(EVP_PKEY_get_bits(f->leaf.key), 384);
	/* The leaf's cert matches the key the monitor holds. */
	assert_int_equal(X509_check_private_key(leaf, f->leaf.key), 1);
	X509_free(root);
	X509_free(inter);
	X509_free(leaf);
}

/* Independent re-verification: split the COSE by hand, verify the signature with raw
 * EVP_PKEY_verify, and the chain with our own X509_verify_cert. */
static void test_attest_document_verifies_independently(void **state)
{
	struct fx *f = *state;
	const uint8_t prot[] = { 0xa1, 0x01, 0x38, 0x22 };
	const uint8_t *d = f->doc, *pl, *sig;
	size_t o = 7, pl_len;
	struct hb tbs = { .n = 0 };
	unsigned char dig[48], *der = NULL;
	unsigned int dl;
	ECDSA_SIG *es = ECDSA_SIG_new();
	const unsigned char *cp = f->leaf.cert_der;
	X509 *leaf = d2i_X509(NULL, &cp, (long)f->leaf.cert_len), *inter, *root;
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(X509_get0_pubkey(leaf), NULL);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	int n;

	assert_int_equal(d[0], 0x84);
	assert_int_equal(d[6], 0xa0);
	assert_int_equal(d[7], 0x59);
	pl_len = (size_t)d[8] << 8 | d[9];
	pl = d + 10;
	o = 10 + pl_len;
	assert_int_equal(d[o], 0x58);
	assert_int_equal(d[o + 1], 96);
	sig = d + o + 2;
	hb_byte(&tbs, 0x84);
	hb_text(&tbs, "Signature1");
	hb_bytes(&tbs, prot, sizeof(prot));
	hb_byte(&tbs, 0x40);
	hb_bytes(&tbs, pl, pl_len);
	EVP_Digest(tbs.b, tbs.n, dig, &dl, EVP_sha384(), NULL);
	ECDSA_SIG_set0(es, BN_bin2bn(sig, 48, NULL), BN_bin2bn(sig + 48, 48, NULL));
	n = i2d_ECDSA_SIG(es, &der);
	assert_int_equal(EVP_PKEY_verify_init(pctx), 1);
	assert_int_equal(EVP_PKEY_verify(pctx, der, (size_t)n, dig, dl), 1);

	root = load_pem(f->dir, "root.pem");
	inter = load_pem(f->dir, "intermediate.pem");
	X509_STORE_add_cert(store, root);
	sk_X509_push(untrusted, inter);
	X509_STORE_CTX_init(ctx, store, leaf, untrusted);
	assert_int_equal(X509_verify_cert(ctx), 1);
	assert_int_equal(sk_X509_num(X509_STORE_CTX_get0_chain(ctx)), 3);

	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(root);
	X509_free(leaf);
	EVP_PKEY_CTX_free(pctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
}

static void test_attest_verify_accepts_document_and_expected_values(void **state)
{
	struct fx *f = *state;
	struct attest_expect exp;
	struct attest_doc doc;
	struct cl_diag d = { "" };

	memset(&exp, 0, sizeof(exp));
	exp.pcr[0] = f->pcr0;
	exp.pcr_len[0] = 48;
	exp.nonce = (const uint8_t *)"nonce-123";
	exp.nonce_len = 9;
	assert_int_equal(
	        attest_verify(f->doc, f->doc_len, f->root_pem, f->root_pem_len, &exp, &doc, &d),
	        ATTEST_OK);
	assert_string_equal(doc.module_id, MODULE_ID);
	assert_string_equal(doc.digest, "SHA384");
	assert_true(doc.timestamp > 1600000000000ull);
	assert_int_equal(doc.cabundle_count, 2);
	assert_false(doc.user_data.present);
	assert_false(doc.public_key.present);
	assert_true(doc.nonce.present);
	for (unsigned i = 0; i < 16; i++)
		assert_true(doc.pcr_present[i]);
	assert_false(doc.pcr_present[16]);
	attest_doc_free(&doc);
}

static void test_attest_verify_reports_mismatches(void **state)
{
	struct fx *f = *state;
	struct attest_expect exp;
	struct attest_doc doc;
	struct cl_diag d = { "" };
	uint8_t wrong[48] = { 0 };

	memset(&exp, 0, sizeof(exp));
	exp.pcr[0] = wrong;
	exp.pcr_len[0] = 48;
	assert_int_equal(
	        attest_verify(f->doc, f->doc_len, f->root_pem, f->root_pem_len, &exp, &doc, &d),
	        ATTEST_ERR_MISMATCH);
	assert_non_null(strstr(d.msg, "PCR0"));
	attest_doc_free(&doc);
	memset(&exp, 0, sizeof(exp));
	exp.nonce = (const uint8_t *)"nonce-124";
	exp.nonce_len = 9;
	assert_int_equal(
	        attest_verify(f->doc, f->doc_len, f->root_pem, f->root_pem_len, &exp, &doc, &d),
	        ATTEST_ERR_MISMATCH);
	assert_non_null(strstr(d.msg, "nonce"));
	attest_doc_free(&doc);
	memset(&exp, 0, sizeof(exp));
	exp.user_data = (const uint8_t *)"x";
	exp.user_data_len = 1;
	assert_int_equal(
	        attest_verify(f->doc, f->doc_len, f->root_pem, f->root_pem_len, &exp, &doc, &d),
	        ATTEST_ERR_MISMATCH);
	assert_non_null(strstr(d.msg, "no user_data"));
	attest_doc_free(&doc);
}

static void test_attest_verify_rejects_tampering_and_foreign_root(void **state)
{
	struct fx *f = *state;
	struct attest_doc doc;
	struct cl_diag d = { "" };
	char other[64] = "/tmp/cloister-ca2-XXXXXX", p[128];
	uint8_t *other_root = NULL;
	size_t other_len = 0;
	uint8_t *copy = malloc(f->doc_len);
	uint8_t *nonce_at;

	/* Flip a byte of the nonce inside the payload. */
	memcpy(copy, f->doc, f->doc_len);
	nonce_at = memmem(copy, f->doc_len, "nonce-123", 9);
	assert_non_null(nonce_at);
	nonce_at[0] ^= 1;
	assert_int_equal(
	        attest_verify(copy, f->doc_len, f->root_pem, f->root_pem_len, NULL, &doc, &d),
	        ATTEST_ERR_SIGNATURE);
	attest_doc_free(&doc);
	free(copy);

	assert_non_null(mkdtemp(other));
	assert_int_equal(attest_ca_init(other, false, NULL), ATTEST_OK);
	snprintf(p, sizeof(p), "%s/root.pem", other);
	assert_int_equal(cl_file_read_all(p, 65536, &other_root, &other_len, NULL), 0);
	assert_int_equal(attest_verify(f->doc, f->doc_len, other_root, other_len, NULL, &doc, &d),
	                 ATTEST_ERR_CHAIN);
	assert_non_null(strstr(d.msg, "does not verify"));
	attest_doc_free(&doc);
	free(other_root);
	rm_ca(other);
}

static void test_attest_verify_checks_validity_window(void **state)
{
	struct fx *f = *state;
	struct attest_expect exp;
	struct attest_doc doc;
	struct cl_diag d = { "" };

	memset(&exp, 0, sizeof(exp));
	exp.at_time = time(NULL) + 400LL * 86400; /* past the leaf's 365 days */
	assert_int_equal(
	        attest_verify(f->doc, f->doc_len, f->root_pem, f->root_pem_len, &exp, &doc, &d),
	        ATTEST_ERR_CHAIN);
	assert_non_null(strstr(d.msg, "expired"));
	attest_doc_free(&doc);
	exp.at_time = time(NULL) - 86400; /* before notBefore */
	assert_int_equal(
	        attest_verify(f->doc, f->doc_len, f->root_pem, f->root_pem_len, &exp, &doc, &d),
	        ATTEST_ERR_CHAIN);
	assert_non_null(strstr(d.msg, "not yet valid"));
	attest_doc_free(&doc);
}

/* Sign a hand-built payload with the leaf key, as a device with another encoder would. */
static void sign_payload(struct fx *f, const struct hb *pl, uint8_t **doc, size_t *len)
{
	assert_int_equal(cose_sign1_sign(f->leaf.key, pl->b, pl->n, doc, len, NULL), COSE_OK);
}

/* The §3.5 fields in order, with knobs for the schema tests. */
static void build_payload(struct fx *f, struct hb *h, bool indefinite, const char *digest,
                          size_t pcr_len, size_t nonce_len, bool skip_cert, bool extra_key)
{
	static uint8_t zeros[1100];

	h->n = 0;
	hb_byte(h, indefinite ? 0xbf : (uint8_t)(0xa0 | (9 - skip_cert + extra_key)));
	hb_text(h, "module_id");
	hb_text(h, MODULE_ID);
	hb_text(h, "digest");
	hb_text(h, digest);
	hb_text(h, "timestamp");
	hb_head(h, 0x00, 1700000000000ull);
	hb_text(h, "pcrs");
	hb_byte(h, 0xa2);
	hb_byte(h, 0x00);
	hb_bytes(h, f->pcr0, pcr_len);
	hb_byte(h, 0x01);
	hb_bytes(h, zeros, 48);
	if (!skip_cert) {
		hb_text(h, "certificate");
		hb_bytes(h, f->leaf.cert_der, f->leaf.cert_len);
	}
	hb_text(h, "cabundle");
	hb_byte(h, 0x82);
	hb_bytes(h, f->leaf.chain[0], f->leaf.chain_lens[0]);
	hb_bytes(h, f->leaf.chain[1], f->leaf.chain_lens[1]);
	if (extra_key) {
		hb_text(h, "future_field");
		hb_byte(h, 0x01);
	}
	hb_text(h, "public_key");
	hb_byte(h, 0xf6);
	hb_text(h, "user_data");
	hb_byte(h, 0xf6);
	hb_text(h, "nonce");
	hb_bytes(h, zeros, nonce_len);
	if (indefinite)
		hb_byte(h, 0xff);
}

static enum attest_error verify_built(struct fx *f, const struct hb *pl, struct cl_diag *d)
{
	uint8_t *doc = NULL;
	size_t len = 0;
	struct attest_doc parsed;
	enum attest_error err;

	sign_payload(f, pl, &doc, &len);
	err = attest_verify(doc, len, f->root_pem, f->root_pem_len, NULL, &parsed, d);
	attest_doc_free(&parsed);
	free(doc);
	return err;
}

static void test_attest_payload_schema(void **state)
{
	struct fx *f = *state;
	struct hb *h = malloc(sizeof(*h));
	struct cl_diag d = { "" };

	build_payload(f, h, false, "SHA384", 48, 4, false, false);
	assert_int_equal(verify_built(f, h, &d), ATTEST_OK);
	/* Recent AWS documents use an indefinite-length map. */
	build_payload(f, h, true, "SHA384", 48, 4, false, false);
	assert_int_equal(verify_built(f, h, &d), ATTEST_OK);
	/* Unknown keys are ignored. */
	build_payload(f, h, false, "SHA384", 48, 4, false, true);
	assert_int_equal(verify_built(f, h, &d), ATTEST_OK);
	build_payload(f, h, false, "SHA256", 48, 4, false, false);
	assert_int_equal(verify_built(f, h, &d), ATTEST_ERR_MALFORMED);
	assert_non_null(strstr(d.msg, "SHA256"));
	build_payload(f, h, false, "SHA384", 47, 4, false, false);
	assert_int_equal(verify_built(f, h, &d), ATTEST_ERR_MALFORMED);
	assert_non_null(strstr(d.msg, "PCR0"));
	build_payload(f, h, false, "SHA384", 48, 1025, false, false);
	assert_int_equal(verify_built(f, h, &d), ATTEST_ERR_MALFORMED);
	assert_non_null(strstr(d.msg, "nonce"));
	build_payload(f, h, false, "SHA384", 48, 4, true, false);
	assert_int_equal(verify_built(f, h, &d), ATTEST_ERR_MALFORMED);
	assert_non_null(strstr(d.msg, "certificate"));
	free(h);
}

/*
 * A float where an optional field may be null is malformed, not an abort: libcbor 0.8's
 * cbor_is_null() asserts on floats (found by fuzz-attest / fuzz-nsm_request).
 */
static void test_attest_payload_float_for_optional_field_is_malformed(void **state)
{
	static const uint8_t half[] = { 0xf9, 0x00, 0x00 },
	                     dbl[] = { 0xfb, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const char *const fields[] = { "public_key", "user_data" };
	struct fx *f = *state;
	struct hb *h = malloc(sizeof(*h)), *g = malloc(sizeof(*g));
	struct attest_doc doc;
	struct cl_diag d = { "" };

	build_payload(f, h, false, "SHA384", 48, 4, false, false);
	assert_int_equal(attest_payload_parse(h->b, h->n, &doc, &d), ATTEST_OK);
	attest_doc_free(&doc);
	for (int k = 0; k < 2; k++) {
		for (int w = 0; w < 2; w++) {
			struct hb key = { .n = 0 };
			uint8_t *at;
			size_t pre;

			/* the same payload with this field's null (f6) replaced by a float */
			hb_text(&key, fields[k]);
			hb_byte(&key, 0xf6);
			at = memmem(h->b, h->n, key.b, key.n);
			assert_non_null(at);
			pre = (size_t)(at - h->b) + key.n - 1;
			g->n = 0;
			hb_mem(g, h->b, pre);
			hb_mem(g, w ? dbl : half, w ? sizeof(dbl) : sizeof(half));
			hb_mem(g, h->b + pre + 1, h->n - pre - 1);
			assert_int_equal(attest_payload_parse(g->b, g->n, &doc, &d),
			                 ATTEST_ERR_MALFORMED);
			assert_non_null(strstr(d.msg, fields[k]));
			assert_null(doc.module_id);
		}
	}
	free(g);
	free(h);
}

static void test_attest_verify_rejects_garbage_and_truncation(void **state)
{
	struct fx *f = *state;
	struct attest_doc doc;

	for (size_t n = 0; n < f->doc_len; n += 97) {
		assert_int_equal(
		        attest_verify(f->doc, n, f->root_pem, f->root_pem_len, NULL, &doc, NULL),
		        ATTEST_ERR_MALFORMED);
		assert_null(doc.module_id);
	}
}

static void test_attest_verifies_real_aws_document(void **state)
{
	uint8_t *doc = NULL, *root = NULL;
	size_t doc_len = 0, root_len = 0;
	struct attest_expect exp;
	struct attest_doc parsed;
	struct cl_diag d = { "" };
	/* Values read off the sample bytes with a separate python byte search, not our parser. */
	uint8_t pcr4[48], nonce[20];

	(void)state;
	assert_true(
	        cl_hex_decode_for_test("5a3e54bd0a5f50b1b5ec641e063a1f1e7e5aadc139f49fd8784afca9"
	                               "0a83767ec13dd70b3f2e3f43b8e23355baaa9053",
	                               pcr4, 48));
	assert_true(cl_hex_decode_for_test("831493346b44132e2ffb7988bce351f593eeb8dd", nonce, 20));
	assert_int_equal(cl_file_read_all(TEST_DATA_DIR "/attest/aws-debug-2022-07-26.cbor", 65536,
	                                  &doc, &doc_len, NULL),
	                 0);
	assert_int_equal(cl_file_read_all(TEST_DATA_DIR "/attest/aws-nitro-root.pem", 65536, &root,
	                                  &root_len, NULL),
	                 0);
	memset(&exp, 0, sizeof(exp));
	exp.at_time = 1658860752; /* the document's own timestamp; its leaf lived 3 hours */
	exp.pcr[4] = pcr4;
	exp.pcr_len[4] = 48;
	exp.nonce = nonce;
	exp.nonce_len = 20;
	assert_int_equal(attest_verify(doc, doc_len, root, root_len, &exp, &parsed, &d), ATTEST_OK);
	assert_string_equal(parsed.module_id, "i-0936512d5ae6ee91a-enc01823bcde8eb8a8a");
	assert_int_equal(parsed.cabundle_count, 4);
	assert_true(parsed.public_key.present); /* an empty byte string, not null */
	assert_int_equal(parsed.public_key.len, 0);
	attest_doc_free(&parsed);
	/* Today its certificates have long expired. */
	exp.at_time = 0;
	assert_int_equal(attest_verify(doc, doc_len, root, root_len, &exp, &parsed, &d),
	                 ATTEST_ERR_CHAIN);
	assert_non_null(strstr(d.msg, "expired"));
	attest_doc_free(&parsed);
	free(doc);
	free(root);
}

/* A recent production (non-debug) AWS document: indefinite-length payload map (BF … FF). */
static void test_attest_verifies_real_aws_document_with_indefinite_map(void **state)
{
	uint8_t *doc = NULL, *root = NULL;
	size_t doc_len = 0, root_len = 0;
	struct attest_expect exp;
	struct attest_doc parsed;
	struct cl_diag d = { "" };
	/* Read off the sample bytes with a separate python byte search; the first 32 bytes of
	 * PCR1 also match the value its publisher lists next to it. */
	uint8_t pcr1[48], nonce[20];

	(void)state;
	assert_true(
	        cl_hex_decode_for_test("4b4d5b3661b3efc12920900c80e126e4ce783c522de6c02a2a5bf7af"
	                               "3a2b9327b86776f188e4be1c1c404a129dbda493",
	                               pcr1, 48));
	assert_true(cl_hex_decode_for_test("0123456789abcdef0123456789abcdef01234567", nonce, 20));
	assert_int_equal(cl_file_read_all(TEST_DATA_DIR "/attest/aws-2026-02-02-indefinite.cbor",
	                                  65536, &doc, &doc_len, NULL),
	                 0);
	assert_int_equal(doc[10], 0xbf); /* the payload map is indefinite */
	assert_int_equal(cl_file_read_all(TEST_DATA_DIR "/attest/aws-nitro-root.pem", 65536, &root,
	                                  &root_len, NULL),
	                 0);
	memset(&exp, 0, sizeof(exp));
	exp.at_time = 1770065027;
	exp.pcr[1] = pcr1;
	exp.pcr_len[1] = 48;
	exp.nonce = nonce;
	exp.nonce_len = 20;
	exp.public_key = (const uint8_t *)"dummy";
	exp.public_key_len = 5;
	assert_int_equal(attest_verify(doc, doc_len, root, root_len, &exp, &parsed, &d), ATTEST_OK);
	assert_string_equal(parsed.module_id, "i-0340e0cb833504eb6-enc019c12d31f78864d");
	assert_int_equal(parsed.user_data.len, 68);
	attest_doc_free(&parsed);
	free(doc);
	free(root);
}

static void test_attest_ca_dir_precedence(void **state)
{
	(void)state;
	unsetenv("CLOISTER_CA_DIR");
	assert_string_equal(attest_ca_dir(NULL), "/etc/cloister/ca");
	setenv("CLOISTER_CA_DIR", "/tmp/x", 1);
	assert_string_equal(attest_ca_dir(NULL), "/tmp/x");
	assert_string_equal(attest_ca_dir("/opt/ca"), "/opt/ca");
	unsetenv("CLOISTER_CA_DIR");
}

static void test_attest_ca_ensure_creates_once(void **state)
{
	char dir[64] = "/tmp/cloister-ca3-XXXXXX", sub[96];
	struct attest_ca *a = NULL, *b = NULL;
	const uint8_t *ra, *rb;
	size_t la, lb;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/nested", dir);
	assert_int_equal(attest_ca_load(sub, &a, NULL), ATTEST_ERR_NO_CA);
	assert_int_equal(attest_ca_ensure(sub, &a, NULL), ATTEST_OK);
	assert_int_equal(attest_ca_ensure(sub, &b, NULL), ATTEST_OK);
	ra = attest_ca_root_der(a, &la);
	rb = attest_ca_root_der(b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ra, rb, la);
	attest_ca_free(a);
	attest_ca_free(b);
	rm_ca(sub);
	rmdir(dir);
}

/* The monitor's one call: CA on first use, fresh leaf, PCRs from the EIF measurements. */
static void test_attest_nsm_enclave_new_end_to_end(void **state)
{
	char dir[64] = "/tmp/cloister-ca4-XXXXXX", sub[96], p[128];
	struct eif_measurements meas;
	struct nsm_enclave_config cfg;
	struct nsm_state *a = NULL, *b = NULL;
	uint8_t *doc = NULL, *root = NULL, pcr[48];
	size_t doc_len = 0, root_len = 0;
	struct attest_expect exp;
	struct attest_doc parsed, parsed_b;
	struct cl_diag d = { "" };

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/ca", dir);
	memset(&meas, 0, sizeof(meas));
	memset(meas.pcr0, 0x11, 48);
	memset(meas.pcr1, 0x22, 48);
	memset(meas.pcr2, 0x33, 48);
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_dir = sub;
	cfg.module_id = MODULE_ID;
	cfg.meas = &meas;
	cfg.parent_id = "i-0123456789abcdef0";
	assert_int_equal(nsm_enclave_new(&cfg, &a, &d), NSM_OK);
	assert_true(nsm_pcr_read(a, 0, pcr, NULL));
	assert_memory_equal(pcr, meas.pcr0, 48);
	assert_int_equal(nsm_attest(a, NULL, 0, (const uint8_t *)"n", 1, NULL, 0, &doc, &doc_len),
	                 NSM_SUCCESS);
	snprintf(p, sizeof(p), "%s/root.pem", sub);
	assert_int_equal(cl_file_read_all(p, 65536, &root, &root_len, NULL), 0);
	memset(&exp, 0, sizeof(exp));
	exp.pcr[0] = meas.pcr0;
	exp.pcr_len[0] = 48;
	exp.pcr[2] = meas.pcr2;
	exp.pcr_len[2] = 48;
	assert_int_equal(attest_verify(doc, doc_len, root, root_len, &exp, &parsed, &d), ATTEST_OK);
	free(doc);

	/* A second enclave start gets a different leaf from the same CA. */
	assert_int_equal(nsm_enclave_new(&cfg, &b, &d), NSM_OK);
	assert_int_equal(nsm_attest(b, NULL, 0, NULL, 0, NULL, 0, &doc, &doc_len), NSM_SUCCESS);
	assert_int_equal(attest_verify(doc, doc_len, root, root_len, NULL, &parsed_b, &d),
	                 ATTEST_OK);
	assert_true(parsed.certificate_len != parsed_b.certificate_len ||
	            memcmp(parsed.certificate, parsed_b.certificate, parsed.certificate_len));
	attest_doc_free(&parsed);
	attest_doc_free(&parsed_b);
	free(doc);
	free(root);
	nsm_state_free(a);
	nsm_state_free(b);
	cfg.meas = NULL;
	assert_int_equal(nsm_enclave_new(&cfg, &a, &d), NSM_ERR_CONFIG);
	cfg.meas = &meas;
	cfg.module_id = "i-0123456789abcdef0-enc0123456789abcdef-and-far-too-long-for-a-cn-x";
	assert_int_equal(nsm_enclave_new(&cfg, &a, &d), NSM_ERR_CONFIG);
	assert_non_null(strstr(d.msg, "1..64"));
	rm_ca(sub);
	rmdir(dir);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_attest_ca_files_and_modes),
		T(test_attest_ca_certificates_have_ca_constraints),
		T(test_attest_document_verifies_independently),
		T(test_attest_verify_accepts_document_and_expected_values),
		T(test_attest_verify_reports_mismatches),
		T(test_attest_verify_rejects_tampering_and_foreign_root),
		T(test_attest_verify_checks_validity_window),
		T(test_attest_payload_schema),
		T(test_attest_payload_float_for_optional_field_is_malformed),
		T(test_attest_verify_rejects_garbage_and_truncation),
		cmocka_unit_test(test_attest_verifies_real_aws_document),
		cmocka_unit_test(test_attest_verifies_real_aws_document_with_indefinite_map),
		cmocka_unit_test(test_attest_ca_dir_precedence),
		cmocka_unit_test(test_attest_ca_ensure_creates_once),
		cmocka_unit_test(test_attest_nsm_enclave_new_end_to_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

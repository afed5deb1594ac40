/* SPDX-License-Identifier: Apache-2.0 */
/*
 * COSE_Sign1 tests. Known answers are produced independently of src/lib/cose: the expected
 * bytes are written out by hand from RFC 8152 / nitro-compat §1.5 and §3.5, and signatures are
 * checked (and made) with OpenSSL's raw EVP_PKEY_sign/verify over a digest the test computes
 * itself from a Sig_structure it assembles byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "lib/cose/cose.h"

static EVP_PKEY *gen_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	assert_non_null(k);
	return k;
}

/* Append a CBOR byte-string head for @n (n < 65536) to @p; returns bytes written. */
static size_t bstr_head(uint8_t *p, size_t n)
{
	if (n < 24) {
		p[0] = (uint8_t)(0x40 | n);
		return 1;
	}
	if (n < 256) {
		p[0] = 0x58;
		p[1] = (uint8_t)n;
		return 2;
	}
	p[0] = 0x59;
	p[1] = (uint8_t)(n >> 8);
	p[2] = (uint8_t)n;
	return 3;
}

/* Sig_structure written by hand: 84 6A "Signature1" bstr(prot) 40 bstr(payload). */
static size_t hand_sig_structure(uint8_t *out, const uint8_t *prot, size_t prot_len,
                                 const uint8_t *payload, size_t payload_len)
{
	size_t o = 0;

	out[o++] = 0x84;
	out[o++] = 0x6a;
	memcpy(out + o, "Signature1", 10);
	o += 10;
	o += bstr_head(out + o, prot_len);
	memcpy(out + o, prot, prot_len);
	o += prot_len;
	out[o++] = 0x40;
	o += bstr_head(out + o, payload_len);
	memcpy(out + o, payload, payload_len);
	o += payload_len;
	return o;
}

/* Raw r||s → DER and EVP_PKEY_verify over an independently computed digest. */
static int raw_verify(EVP_PKEY *key, const EVP_MD *md, const uint8_t *tbs, size_t tbs_len,
                      const uint8_t *raw, size_t coord)
{
	unsigned char dig[64];
	unsigned int dig_len = 0;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	unsigned char *der = NULL;
	EVP_PKEY_CTX *ctx;
	int n, rc;

	assert_int_equal(EVP_Digest(tbs, tbs_len, dig, &dig_len, md, NULL), 1);
	assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(raw, (int)coord, NULL),
	                                BN_bin2bn(raw + coord, (int)coord, NULL)),
	                 1);
	n = i2d_ECDSA_SIG(sig, &der);
	assert_true(n > 0);
	ctx = EVP_PKEY_CTX_new(key, NULL);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	rc = EVP_PKEY_verify(ctx, der, (size_t)n, dig, dig_len);
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	return rc;
}

/* Build a COSE_Sign1 entirely in the test: sign the digest with EVP_PKEY_sign, convert DER to
 * raw r||s by hand. Returns the encoded length. */
static size_t hand_sign1(EVP_PKEY *key, const EVP_MD *md, size_t coord, const uint8_t *prot,
                         size_t prot_len, const uint8_t *payload, size_t payload_len, uint8_t *out)
{
	uint8_t tbs[4096], der[256];
	unsigned char dig[64];
	unsigned int dig_len;
	size_t tbs_len, der_len = sizeof(der), o = 0;
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	EVP_PKEY_CTX *ctx;
	ECDSA_SIG *sig;

	tbs_len = hand_sig_structure(tbs, prot, prot_len, payload, payload_len);
	assert_int_equal(EVP_Digest(tbs, tbs_len, dig, &dig_len, md, NULL), 1);
	ctx = EVP_PKEY_CTX_new(key, NULL);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, der, &der_len, dig, dig_len), 1);
	EVP_PKEY_CTX_free(ctx);
	sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	assert_non_null(sig);
	ECDSA_SIG_get0(sig, &r, &s);

	out[o++] = 0x84;
	o += bstr_head(out + o, prot_len);
	memcpy(out + o, prot, prot_len);
	o += prot_len;
	out[o++] = 0xa0;
	o += bstr_head(out + o, payload_len);
	memcpy(out + o, payload, payload_len);
	o += payload_len;
	o += bstr_head(out + o, 2 * coord);
	BN_bn2binpad(r, out + o, (int)coord);
	BN_bn2binpad(s, out + o + coord, (int)coord);
	o += 2 * coord;
	ECDSA_SIG_free(sig);
	return o;
}

static const uint8_t payload[] = "cloister payload: PcrInfo or attestation document";

struct curve_case {
	const char *curve;
	const uint8_t prot[5];
	size_t prot_len;
	size_t coord;
	const EVP_MD *(*md)(void);
};

static const struct curve_case cases[] = {
	{ "P-256", { 0xa1, 0x01, 0x26 }, 3, 32, EVP_sha256 },
	{ "P-384", { 0xa1, 0x01, 0x38, 0x22 }, 4, 48, EVP_sha384 },
	{ "P-521", { 0xa1, 0x01, 0x38, 0x23 }, 4, 66, EVP_sha512 },
};

/* The encoding is byte-exact AWS shape and the signature verifies independently. */
static void test_cose_sign_matches_hand_encoding_for_each_curve(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct curve_case *cc = &cases[c];
		EVP_PKEY *key = gen_key(cc->curve);
		uint8_t *doc = NULL, tbs[512];
		size_t doc_len = 0, o = 0, tbs_len, plen = sizeof(payload) - 1;

		assert_int_equal(cose_sign1_sign(key, payload, plen, &doc, &doc_len, NULL),
		                 COSE_OK);
		/* 84 | bstr(prot) | A0 | bstr(payload) | bstr(2*coord) */
		assert_int_equal(doc[o++], 0x84);
		assert_int_equal(doc[o++], 0x40 | cc->prot_len);
		assert_memory_equal(doc + o, cc->prot, cc->prot_len);
		o += cc->prot_len;
		assert_int_equal(doc[o++], 0xa0);
		assert_int_equal(doc[o++], 0x58);
		assert_int_equal(doc[o++], plen);
		assert_memory_equal(doc + o, payload, plen);
		o += plen;
		assert_int_equal(doc[o++], 0x58);
		assert_int_equal(doc[o++], 2 * cc->coord);
		assert_int_equal(doc_len, o + 2 * cc->coord);

		tbs_len = hand_sig_structure(tbs, cc->prot, cc->prot_len, payload, plen);
		assert_int_equal(raw_verify(key, cc->md(), tbs, tbs_len, doc + o, cc->coord), 1);
		free(doc);
		EVP_PKEY_free(key);
	}
}

static void test_cose_sig_structure_matches_rfc8152_layout(void **state)
{
	const uint8_t prot[] = { 0xa1, 0x01, 0x38, 0x22 };
	const uint8_t pl[] = { 0x01, 0x02, 0x03 };
	/* ["Signature1", h'A1013822', h'', h'010203'] */
	const uint8_t want[] = { 0x84, 0x6a, 'S',  'i',  'g',  'n',  'a',  't',  'u',  'r',  'e',
		                 '1',  0x44, 0xa1, 0x01, 0x38, 0x22, 0x40, 0x43, 0x01, 0x02, 0x03 };
	uint8_t *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(cose_sig_structure(prot, sizeof(prot), pl, sizeof(pl), &out, &len),
	                 COSE_OK);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	free(out);
}

static void test_cose_verifies_independently_made_signature(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct curve_case *cc = &cases[c];
		EVP_PKEY *key = gen_key(cc->curve);
		uint8_t doc[1024];
		size_t n = hand_sign1(key, cc->md(), cc->coord, cc->prot, cc->prot_len, payload,
		                      sizeof(payload) - 1, doc);
		struct cose_sign1 m;
		struct cl_diag d = { "" };

		assert_int_equal(cose_sign1_decode(doc, n, &m, &d), COSE_OK);
		assert_int_equal(m.alg, cc->prot_len == 3 ? -7 : (cc->coord == 48 ? -35 : -36));
		assert_int_equal(m.payload_len, sizeof(payload) - 1);
		assert_memory_equal(m.payload, payload, m.payload_len);
		assert_int_equal(cose_sign1_verify(&m, key, &d), COSE_OK);
		cose_sign1_free(&m);
		EVP_PKEY_free(key);
	}
}

static void test_cose_rejects_wrong_key(void **state)
{
	EVP_PKEY *key = gen_key("P-384"), *other = gen_key("P-384");
	uint8_t *doc = NULL;
	size_t len = 0;
	struct cose_sign1 m;
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(cose_sign1_sign(key, payload, 10, &doc, &len, NULL), COSE_OK);
	assert_int_equal(cose_sign1_decode(doc, len, &m, &d), COSE_OK);
	assert_int_equal(cose_sign1_verify(&m, other, &d), COSE_ERR_BAD_SIGNATURE);
	assert_non_null(strstr(d.msg, "does not verify"));
	assert_int_equal(cose_sign1_verify(&m, key, &d), COSE_OK);
	cose_sign1_free(&m);
	free(doc);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void test_cose_rejects_tampered_payload_and_signature(void **state)
{
	EVP_PKEY *key = gen_key("P-384");
	uint8_t *doc = NULL;
	size_t len = 0;
	struct cose_sign1 m;

	(void)state;
	assert_int_equal(cose_sign1_sign(key, payload, 10, &doc, &len, NULL), COSE_OK);
	/* payload starts after 84 44 A1013822 A0 4A */
	doc[8] ^= 0x01;
	assert_int_equal(cose_sign1_decode(doc, len, &m, NULL), COSE_OK);
	assert_int_equal(cose_sign1_verify(&m, key, NULL), COSE_ERR_BAD_SIGNATURE);
	cose_sign1_free(&m);
	doc[8] ^= 0x01;
	doc[len - 1] ^= 0x80;
	assert_int_equal(cose_sign1_decode(doc, len, &m, NULL), COSE_OK);
	assert_int_equal(cose_sign1_verify(&m, key, NULL), COSE_ERR_BAD_SIGNATURE);
	cose_sign1_free(&m);
	free(doc);
	EVP_PKEY_free(key);
}

static void test_cose_rejects_alg_not_matching_key(void **state)
{
	EVP_PKEY *k384 = gen_key("P-384"), *k256 = gen_key("P-256");
	uint8_t *doc = NULL;
	size_t len = 0;
	struct cose_sign1 m;

	(void)state;
	assert_int_equal(cose_sign1_sign(k384, payload, 10, &doc, &len, NULL), COSE_OK);
	assert_int_equal(cose_sign1_decode(doc, len, &m, NULL), COSE_OK);
	assert_int_equal(cose_sign1_verify(&m, k256, NULL), COSE_ERR_ALG_MISMATCH);
	cose_sign1_free(&m);
	/* Rewrite the protected alg -35 (38 22) to -7 (26 + padding-free re-encode impossible in
	 * place), so use -36 (38 23): decodes, but no longer matches the P-384 key. */
	doc[5] = 0x23;
	assert_int_equal(cose_sign1_decode(doc, len, &m, NULL), COSE_OK);
	assert_int_equal(m.alg, -36);
	assert_int_equal(cose_sign1_verify(&m, k384, NULL), COSE_ERR_ALG_MISMATCH);
	cose_sign1_free(&m);
	free(doc);
	EVP_PKEY_free(k384);
	EVP_PKEY_free(k256);
}

static void test_cose_rejects_unsupported_alg(void **state)
{
	/* [h'A10127' ({1: -8, EdDSA}), {}, h'00', h'00'] */
	const uint8_t doc[] = { 0x84, 0x43, 0xa1, 0x01, 0x27, 0xa0, 0x41, 0x00, 0x41, 0x00 };
	/* alg as text instead of int */
	const uint8_t doc2[] = { 0x84, 0x44, 0xa1, 0x01, 0x61, 'x', 0xa0, 0x41, 0x00, 0x41, 0x00 };
	/* empty protected header */
	const uint8_t doc3[] = { 0x84, 0x40, 0xa0, 0x41, 0x00, 0x41, 0x00 };
	struct cose_sign1 m;
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(cose_sign1_decode(doc, sizeof(doc), &m, &d), COSE_ERR_UNSUPPORTED_ALG);
	assert_non_null(strstr(d.msg, "-8"));
	assert_int_equal(cose_sign1_decode(doc2, sizeof(doc2), &m, NULL), COSE_ERR_MALFORMED);
	assert_int_equal(cose_sign1_decode(doc3, sizeof(doc3), &m, NULL), COSE_ERR_MALFORMED);
}

static void test_cose_rejects_every_truncation_and_trailing_bytes(void **state)
{
	EVP_PKEY *key = gen_key("P-384");
	uint8_t *doc = NULL, *big;
	size_t len = 0;
	struct cose_sign1 m;

	(void)state;
	assert_int_equal(cose_sign1_sign(key, payload, sizeof(payload) - 1, &doc, &len, NULL),
	                 COSE_OK);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(cose_sign1_decode(doc, n, &m, NULL), COSE_ERR_MALFORMED);
	big = malloc(len + 1);
	memcpy(big, doc, len);
	big[len] = 0x00;
	assert_int_equal(cose_sign1_decode(big, len + 1, &m, NULL), COSE_ERR_MALFORMED);
	free(big);
	free(doc);
	EVP_PKEY_free(key);
}

static void test_cose_rejects_wrong_shapes(void **state)
{
	/* tag 17 (COSE_Mac0) */
	const uint8_t t17[] = { 0xd1, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0x00, 0x41, 0x00 };
	/* array(3) */
	const uint8_t a3[] = { 0x83, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0x00 };
	/* protected as map instead of bstr */
	const uint8_t pm[] = { 0x84, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0x00, 0x41, 0x00 };
	/* unprotected as array */
	const uint8_t ua[] = { 0x84, 0x43, 0xa1, 0x01, 0x26, 0x80, 0x41, 0x00, 0x41, 0x00 };
	/* nil payload (detached) */
	const uint8_t nilp[] = { 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0xf6, 0x41, 0x00 };
	struct cose_sign1 m;
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(cose_sign1_decode(t17, sizeof(t17), &m, &d), COSE_ERR_MALFORMED);
	assert_non_null(strstr(d.msg, "tag 17"));
	assert_int_equal(cose_sign1_decode(a3, sizeof(a3), &m, NULL), COSE_ERR_MALFORMED);
	assert_int_equal(cose_sign1_decode(pm, sizeof(pm), &m, NULL), COSE_ERR_MALFORMED);
	assert_int_equal(cose_sign1_decode(ua, sizeof(ua), &m, NULL), COSE_ERR_MALFORMED);
	assert_int_equal(cose_sign1_decode(nilp, sizeof(nilp), &m, &d), COSE_ERR_MALFORMED);
	assert_non_null(strstr(d.msg, "payload"));
}

/* Tag 18, an indefinite array and a chunked payload all denote the same message. */
static void test_cose_accepts_tag18_and_indefinite_encodings(void **state)
{
	EVP_PKEY *key = gen_key("P-256");
	const uint8_t prot[] = { 0xa1, 0x01, 0x26 };
	const uint8_t pl[] = { 'a', 'b', 'c', 'd' };
	uint8_t doc[512], alt[520];
	size_t n = hand_sign1(key, EVP_sha256(), 32, prot, sizeof(prot), pl, sizeof(pl), doc);
	size_t o = 0;
	struct cose_sign1 m;

	(void)state;
	/* D2 (tag 18) + the untagged message */
	alt[0] = 0xd2;
	memcpy(alt + 1, doc, n);
	assert_int_equal(cose_sign1_decode(alt, n + 1, &m, NULL), COSE_OK);
	assert_int_equal(cose_sign1_verify(&m, key, NULL), COSE_OK);
	cose_sign1_free(&m);
	/* D8 12: the same tag in its two-byte form */
	alt[0] = 0xd8;
	alt[1] = 0x12;
	memcpy(alt + 2, doc, n);
	assert_int_equal(cose_sign1_decode(alt, n + 2, &m, NULL), COSE_OK);
	assert_int_equal(cose_sign1_verify(&m, key, NULL), COSE_OK);
	cose_sign1_free(&m);

	/* 9F (indefinite array) … FF, with the payload as 5F 42 'ab' 42 'cd' FF, and the
	 * unprotected header as an indefinite empty map BF FF. doc = 84 43 A10126 A0 44 abcd
	 * 58 40 sig */
	alt[o++] = 0x9f;
	memcpy(alt + o, doc + 1, 4); /* 43 A1 01 26 */
	o += 4;
	alt[o++] = 0xbf;
	alt[o++] = 0xff;
	alt[o++] = 0x5f;
	alt[o++] = 0x42;
	alt[o++] = 'a';
	alt[o++] = 'b';
	alt[o++] = 0x42;
	alt[o++] = 'c';
	alt[o++] = 'd';
	alt[o++] = 0xff;
	memcpy(alt + o, doc + 11, n - 11); /* 58 40 sig */
	o += n - 11;
	alt[o++] = 0xff;
	assert_int_equal(cose_sign1_decode(alt, o, &m, NULL), COSE_OK);
	assert_int_equal(m.payload_len, 4);
	assert_memory_equal(m.payload, "abcd", 4);
	assert_int_equal(cose_sign1_verify(&m, key, NULL), COSE_OK);
	cose_sign1_free(&m);
	EVP_PKEY_free(key);
}

static void test_cose_refuses_non_ec_keys(void **state)
{
	EVP_PKEY *rsa = EVP_RSA_gen(1024);
	EVP_PKEY *k224 = EVP_EC_gen("P-224");
	uint8_t *doc = NULL;
	size_t len = 0;
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(cose_sign1_sign(rsa, payload, 4, &doc, &len, &d), COSE_ERR_KEY);
	assert_non_null(strstr(d.msg, "not an EC key"));
	assert_int_equal(cose_sign1_sign(k224, payload, 4, &doc, &len, &d), COSE_ERR_KEY);
	assert_non_null(strstr(d.msg, "secp224r1"));
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(k224);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cose_sign_matches_hand_encoding_for_each_curve),
		cmocka_unit_test(test_cose_sig_structure_matches_rfc8152_layout),
		cmocka_unit_test(test_cose_verifies_independently_made_signature),
		cmocka_unit_test(test_cose_rejects_wrong_key),
		cmocka_unit_test(test_cose_rejects_tampered_payload_and_signature),
		cmocka_unit_test(test_cose_rejects_alg_not_matching_key),
		cmocka_unit_test(test_cose_rejects_unsupported_alg),
		cmocka_unit_test(test_cose_rejects_every_truncation_and_trailing_bytes),
		cmocka_unit_test(test_cose_rejects_wrong_shapes),
		cmocka_unit_test(test_cose_accepts_tag18_and_indefinite_encodings),
		cmocka_unit_test(test_cose_refuses_non_ec_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

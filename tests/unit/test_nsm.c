/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NSM device tests. Requests and expected responses are CBOR written out by hand from
 * nitro-compat §3.2 (via the byte builder in nsm_test_util.h, not our encoder); PCR values
 * are computed here with EVP_Digest; documents are re-verified with raw OpenSSL.
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

#include "../../guest/init/init_parse.h"
#include "lib/nsm/device.h"
#include "nsm_test_util.h"

#define MODULE_ID "i-0123456789abcdef0-enc0123456789abcdef"
#define PARENT_ID "i-0123456789abcdef0"
#define PARENT_ROLE "arn:aws:iam::123456789012:role/enclave"
#define FIXED_MS 1700000000123ull

struct fx {
	EVP_PKEY *key;
	uint8_t *leaf, *root;
	size_t leaf_len, root_len;
	struct nsm_config cfg;
	struct nsm_state *s;
	uint8_t resp[NSM_RESPONSE_MAX];
	size_t resp_len;
};

static uint64_t fixed_clock(void *opaque)
{
	(void)opaque;
	return FIXED_MS;
}

static const uint8_t *chain_ptrs[1];
static size_t chain_lens[1];

static void fx_config(struct fx *f, bool debug)
{
	memset(&f->cfg, 0, sizeof(f->cfg));
	f->cfg.module_id = MODULE_ID;
	for (int i = 0; i < NSM_PCR_LEN; i++) {
		f->cfg.pcr0[i] = (uint8_t)(0xa0 + i);
		f->cfg.pcr1[i] = (uint8_t)(0xb0 + i);
		f->cfg.pcr2[i] = (uint8_t)(0xc0 + i);
		f->cfg.pcr8[i] = (uint8_t)(0x80 + i);
	}
	f->cfg.has_pcr8 = true;
	f->cfg.parent_id = PARENT_ID;
	f->cfg.debug_mode = debug;
	f->cfg.signing_key = f->key;
	f->cfg.certificate = f->leaf;
	f->cfg.certificate_len = f->leaf_len;
	chain_ptrs[0] = f->root;
	chain_lens[0] = f->root_len;
	f->cfg.cabundle = chain_ptrs;
	f->cfg.cabundle_lens = chain_lens;
	f->cfg.cabundle_count = 1;
	f->cfg.clock_ms = fixed_clock;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	EVP_PKEY *rootkey = EVP_EC_gen("P-384");

	f->key = EVP_EC_gen("P-384");
	f->leaf_len = self_signed_der(f->key, MODULE_ID, &f->leaf);
	f->root_len = self_signed_der(rootkey, "root", &f->root);
	EVP_PKEY_free(rootkey);
	fx_config(f, false);
	assert_int_equal(nsm_state_new(&f->cfg, &f->s, NULL), NSM_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nsm_state_free(f->s);
	EVP_PKEY_free(f->key);
	OPENSSL_free(f->leaf);
	OPENSSL_free(f->root);
	free(f);
	return 0;
}

static void req(struct fx *f, const struct hb *h)
{
	assert_int_equal(
	        nsm_handle_request(f->s, h->b, h->n, f->resp, sizeof(f->resp), &f->resp_len),
	        NSM_OK);
}

static void expect(struct fx *f, const struct hb *want)
{
	assert_int_equal(f->resp_len, want->n);
	assert_memory_equal(f->resp, want->b, want->n);
}

static void expect_error(struct fx *f, const char *name)
{
	struct hb w = { .n = 0 };

	hb_head(&w, 0xa0, 1);
	hb_text(&w, "Error");
	hb_text(&w, name);
	expect(f, &w);
}

/* {"<variant>": {"index": <idx>}} with the index in a chosen CBOR width (0 = shortest). */
static void index_req(struct hb *h, const char *variant, const char *field, uint64_t idx, int width)
{
	h->n = 0;
	hb_head(h, 0xa0, 1);
	hb_text(h, variant);
	hb_head(h, 0xa0, 1);
	hb_text(h, field);
	switch (width) {
	case 0:
		hb_head(h, 0x00, idx);
		break;
	case 2:
		hb_byte(h, 0x19);
		hb_byte(h, (uint8_t)(idx >> 8));
		hb_byte(h, (uint8_t)idx);
		break;
	case 8:
		hb_byte(h, 0x1b);
		for (int i = 7; i >= 0; i--)
			hb_byte(h, (uint8_t)(idx >> (8 * i)));
		break;
	}
}

static void describe_pcr_want(struct hb *w, bool lock, const uint8_t *data)
{
	w->n = 0;
	hb_head(w, 0xa0, 1);
	hb_text(w, "DescribePCR");
	hb_head(w, 0xa0, 2);
	hb_text(w, "lock");
	hb_byte(w, lock ? 0xf5 : 0xf4);
	hb_text(w, "data");
	hb_bytes(w, data, 48);
}

static void test_nsm_describe_pcr_encodes_aws_shape(void **state)
{
	struct fx *f = *state;
	/* A1 6B "DescribePCR" A1 65 "index" 00 — what serde_cbor sends for index 0 */
	const uint8_t raw[] = { 0xa1, 0x6b, 'D',  'e',  's', 'c', 'r', 'i', 'b', 'e', 'P',
		                'C',  'R',  0xa1, 0x65, 'i', 'n', 'd', 'e', 'x', 0x00 };
	struct hb h = { .n = 0 }, w;

	hb_mem(&h, raw, sizeof(raw));
	req(f, &h);
	describe_pcr_want(&w, true, f->cfg.pcr0);
	/* The fixed prefix, byte for byte: A1 6B DescribePCR A2 64 lock F5 64 data 58 30 */
	assert_int_equal(f->resp[0], 0xa1);
	assert_int_equal(f->resp[13], 0xa2);
	assert_int_equal(f->resp[19], 0xf5);
	assert_int_equal(f->resp[25], 0x58);
	assert_int_equal(f->resp[26], 0x30);
	expect(f, &w);
	assert_int_equal(nsm_last_status(f->s), NSM_SUCCESS);
}

static void test_nsm_decoder_accepts_any_integer_width(void **state)
{
	struct fx *f = *state;
	struct hb h, w;
	uint8_t zero[48] = { 0 };

	index_req(&h, "DescribePCR", "index", 2, 2);
	req(f, &h);
	describe_pcr_want(&w, true, f->cfg.pcr2);
	expect(f, &w);
	index_req(&h, "DescribePCR", "index", 20, 8);
	req(f, &h);
	describe_pcr_want(&w, false, zero);
	expect(f, &w);
}

static void test_nsm_launch_pcrs_follow_eif_and_parent(void **state)
{
	struct fx *f = *state;
	uint8_t want4[48] = { 0 }, got[48];
	bool locked;

	sha384_extend(want4, PARENT_ID, strlen(PARENT_ID));
	assert_true(nsm_pcr_read(f->s, 0, got, &locked));
	assert_memory_equal(got, f->cfg.pcr0, 48);
	assert_true(locked);
	assert_true(nsm_pcr_read(f->s, 1, got, NULL));
	assert_memory_equal(got, f->cfg.pcr1, 48);
	assert_true(nsm_pcr_read(f->s, 4, got, NULL));
	assert_memory_equal(got, want4, 48);
	assert_true(nsm_pcr_read(f->s, 8, got, NULL));
	assert_memory_equal(got, f->cfg.pcr8, 48);
	/* No role configured: PCR3 stays zero (nsm-check's expectation). */
	assert_true(nsm_pcr_read(f->s, 3, got, NULL));
	for (int i = 0; i < 48; i++)
		assert_int_equal(got[i], 0);
	assert_true(nsm_pcr_read(f->s, 15, got, &locked));
	assert_true(locked);
	assert_true(nsm_pcr_read(f->s, 16, got, &locked));
	assert_false(locked);
	assert_false(nsm_pcr_read(f->s, 32, got, NULL));
}

static void test_nsm_parent_role_sets_pcr3(void **state)
{
	struct fx *f = *state;
	struct nsm_state *s;
	uint8_t want3[48] = { 0 }, got[48];

	sha384_extend(want3, PARENT_ROLE, strlen(PARENT_ROLE));
	f->cfg.parent_role = PARENT_ROLE;
	assert_int_equal(nsm_state_new(&f->cfg, &s, NULL), NSM_OK);
	assert_true(nsm_pcr_read(s, 3, got, NULL));
	assert_memory_equal(got, want3, 48);
	nsm_state_free(s);
}

static void test_nsm_refuses_unusable_parent_values(void **state)
{
	static const char *const bad[] = { "", " i-0123456789abcdef0", "i-0123 4567", "i-\t1",
		                           "caf\xc3\xa9" };
	struct fx *f = *state;
	struct nsm_state *s = NULL;
	struct cl_diag d = { "" };
	char *longest = malloc(NSM_PARENT_VALUE_MAX + 2);

	assert_non_null(longest);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(nsm_parent_value_valid(bad[i]));
		f->cfg.parent_id = bad[i];
		assert_int_equal(nsm_state_new(&f->cfg, &s, &d), NSM_ERR_CONFIG);
		assert_null(s);
		assert_non_null(strstr(d.msg, "PCR4"));
	}
	f->cfg.parent_id = PARENT_ID;
	memset(longest, 'a', NSM_PARENT_VALUE_MAX + 1);
	longest[NSM_PARENT_VALUE_MAX + 1] = '\0';
	f->cfg.parent_role = longest;
	assert_int_equal(nsm_state_new(&f->cfg, &s, &d), NSM_ERR_CONFIG);
	assert_non_null(strstr(d.msg, "PCR3"));
	longest[NSM_PARENT_VALUE_MAX] = '\0'; /* 2048 characters: the longest IAM ARN */
	assert_int_equal(nsm_state_new(&f->cfg, &s, &d), NSM_OK);
	nsm_state_free(s);
	free(longest);
}

static void extend_req(struct hb *h, uint64_t idx, const void *data, size_t len, bool data_first)
{
	h->n = 0;
	hb_head(h, 0xa0, 1);
	hb_text(h, "ExtendPCR");
	hb_head(h, 0xa0, 2);
	if (data_first) {
		hb_text(h, "data");
		hb_bytes(h, data, len);
	}
	hb_text(h, "index");
	hb_head(h, 0x00, idx);
	if (!data_first) {
		hb_text(h, "data");
		hb_bytes(h, data, len);
	}
}

static void test_nsm_extend_pcr_is_sha384_of_old_and_data(void **state)
{
	struct fx *f = *state;
	uint8_t want[48] = { 0 };
	struct hb h, w = { .n = 0 };

	sha384_extend(want, "abc", 3);
	extend_req(&h, 16, "abc", 3, false);
	req(f, &h);
	hb_head(&w, 0xa0, 1);
	hb_text(&w, "ExtendPCR");
	hb_head(&w, 0xa0, 1);
	hb_text(&w, "data");
	hb_bytes(&w, want, 48);
	expect(f, &w);

	/* Keys in the other order, and a second extend chains. */
	sha384_extend(want, "\x01\x02", 2);
	extend_req(&h, 16, "\x01\x02", 2, true);
	req(f, &h);
	assert_memory_equal(f->resp + f->resp_len - 48, want, 48);
}

static void test_nsm_extend_locked_pcr_is_read_only(void **state)
{
	struct fx *f = *state;
	struct hb h;

	for (unsigned i = 0; i < 16; i++) {
		extend_req(&h, i, "x", 1, false);
		req(f, &h);
		expect_error(f, "ReadOnlyIndex");
	}
	assert_int_equal(nsm_last_status(f->s), NSM_READ_ONLY_INDEX);
}

static void test_nsm_rejects_out_of_range_and_oversized_indices(void **state)
{
	struct fx *f = *state;
	struct hb h;

	index_req(&h, "DescribePCR", "index", 32, 0);
	req(f, &h);
	expect_error(f, "InvalidIndex");
	index_req(&h, "LockPCR", "index", 1000, 2);
	req(f, &h);
	expect_error(f, "InvalidIndex");
	extend_req(&h, 32, "x", 1, false);
	req(f, &h);
	expect_error(f, "InvalidIndex");
	/* Not a u16 at all: a decode error on the real device. */
	index_req(&h, "DescribePCR", "index", 70000, 8);
	req(f, &h);
	expect_error(f, "InvalidArgument");
}

static void test_nsm_lock_pcr_rules(void **state)
{
	struct fx *f = *state;
	struct hb h, w = { .n = 0 };

	hb_text(&w, "LockPCR"); /* 67 "LockPCR" */
	index_req(&h, "LockPCR", "index", 16, 0);
	req(f, &h);
	expect(f, &w);
	req(f, &h);
	expect_error(f, "ReadOnlyIndex");
	index_req(&h, "LockPCR", "index", 0, 0);
	req(f, &h);
	expect_error(f, "ReadOnlyIndex");
	extend_req(&h, 16, "x", 1, false);
	req(f, &h);
	expect_error(f, "ReadOnlyIndex");
	extend_req(&h, 17, "x", 1, false);
	req(f, &h);
	assert_int_equal(nsm_last_status(f->s), NSM_SUCCESS);
}

static void describe_nsm_want(struct hb *w, unsigned nlocked, const unsigned *locked)
{
	w->n = 0;
	hb_head(w, 0xa0, 1);
	hb_text(w, "DescribeNSM");
	hb_head(w, 0xa0, 7);
	hb_text(w, "version_major");
	hb_byte(w, 0x01);
	hb_text(w, "version_minor");
	hb_byte(w, 0x00);
	hb_text(w, "version_patch");
	hb_byte(w, 0x00);
	hb_text(w, "module_id");
	hb_text(w, MODULE_ID);
	hb_text(w, "max_pcrs");
	hb_byte(w, 0x18);
	hb_byte(w, 0x20);
	hb_text(w, "locked_pcrs");
	hb_head(w, 0x80, nlocked);
	for (unsigned i = 0; i < nlocked; i++)
		hb_head(w, 0x00, locked[i]);
	hb_text(w, "digest");
	hb_text(w, "SHA384");
}

static void test_nsm_describe_nsm_and_lock_pcrs(void **state)
{
	struct fx *f = *state;
	const uint8_t raw[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };
	unsigned locked[32];
	struct hb h = { .n = 0 }, w;

	for (unsigned i = 0; i < 32; i++)
		locked[i] = i;
	hb_mem(&h, raw, sizeof(raw));
	req(f, &h);
	describe_nsm_want(&w, 16, locked);
	expect(f, &w);

	index_req(&h, "LockPCRs", "range", 33, 0);
	req(f, &h);
	expect_error(f, "InvalidIndex");
	index_req(&h, "LockPCRs", "range", 20, 0);
	req(f, &h);
	w.n = 0;
	hb_text(&w, "LockPCRs");
	expect(f, &w);
	/* Re-locking an already locked range is fine. */
	index_req(&h, "LockPCRs", "range", 32, 0);
	req(f, &h);
	expect(f, &w);
	h.n = 0;
	hb_mem(&h, raw, sizeof(raw));
	req(f, &h);
	describe_nsm_want(&w, 32, locked);
	expect(f, &w);
}

static void test_nsm_get_random_returns_256_fresh_bytes(void **state)
{
	struct fx *f = *state;
	/* 69 "GetRandom" — the exact 10 bytes the Linux hwrng sends */
	const uint8_t raw[] = { 0x69, 0x47, 0x65, 0x74, 0x52, 0x61, 0x6e, 0x64, 0x6f, 0x6d };
	const uint8_t prefix[] = { 0xa1, 0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd',  'o',  'm',
		                   0xa1, 0x66, 'r', 'a', 'n', 'd', 'o', 'm', 0x59, 0x01, 0x00 };
	uint8_t first[256];
	struct hb h = { .n = 0 };

	hb_mem(&h, raw, sizeof(raw));
	req(f, &h);
	assert_int_equal(f->resp_len, sizeof(prefix) + 256);
	assert_memory_equal(f->resp, prefix, sizeof(prefix));
	memcpy(first, f->resp + sizeof(prefix), 256);
	req(f, &h);
	assert_memory_not_equal(f->resp + sizeof(prefix), first, 256);
}

static void test_nsm_request_over_4096_bytes_is_input_too_large(void **state)
{
	struct fx *f = *state;
	static uint8_t data[4096];
	struct hb h;
	size_t over;

	/* Find the data length that makes the ExtendPCR request exactly 4096 bytes. */
	extend_req(&h, 16, data, 4000, false);
	over = h.n - 4000;
	extend_req(&h, 16, data, 4096 - over, false);
	if (h.n != 4096) /* the bstr head grew by one byte */
		extend_req(&h, 16, data, 4096 - over - (h.n - 4096), false);
	assert_int_equal(h.n, 4096);
	req(f, &h);
	assert_int_equal(nsm_last_status(f->s), NSM_SUCCESS);

	extend_req(&h, 17, data, 4096 - over - (4096 - h.n) + 1, false);
	assert_int_equal(h.n, 4097);
	req(f, &h);
	expect_error(f, "InputTooLarge");
}

static void test_nsm_malformed_requests_get_error_names(void **state)
{
	struct fx *f = *state;
	const uint8_t garbage[] = { 0xff, 0x00, 0x13 };
	const uint8_t truncated[] = { 0xa1, 0x6b, 'D', 'e', 's', 'c' };
	const uint8_t unknown_text[] = { 0x63, 'F', 'o', 'o' };
	struct hb h = { .n = 0 };

	hb_mem(&h, garbage, sizeof(garbage));
	req(f, &h);
	expect_error(f, "InvalidOperation");
	h.n = 0;
	hb_mem(&h, truncated, sizeof(truncated));
	req(f, &h);
	expect_error(f, "InvalidOperation");
	h.n = 0;
	hb_mem(&h, unknown_text, sizeof(unknown_text));
	req(f, &h);
	expect_error(f, "InvalidOperation");
	index_req(&h, "Reboot", "index", 1, 0);
	req(f, &h);
	expect_error(f, "InvalidOperation");
	/* Known request, missing field */
	index_req(&h, "ExtendPCR", "index", 16, 0);
	req(f, &h);
	expect_error(f, "InvalidArgument");
	index_req(&h, "DescribePCR", "idx", 1, 0);
	req(f, &h);
	expect_error(f, "InvalidArgument");
	/* Empty request */
	assert_int_equal(nsm_handle_request(f->s, NULL, 0, f->resp, sizeof(f->resp), &f->resp_len),
	                 NSM_OK);
	expect_error(f, "InvalidOperation");
}

/* Split a COSE_Sign1 produced by the device by hand (84 44 A1013822 A0 59/5A len payload
 * 58 60 sig), returning the payload and the signature. */
static void split_doc(const uint8_t *d, size_t n, const uint8_t **pl, size_t *pl_len,
                      const uint8_t **sig)
{
	const uint8_t hdr[] = { 0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0 };
	size_t o = sizeof(hdr);

	assert_true(n > o + 3);
	assert_memory_equal(d, hdr, sizeof(hdr));
	if (d[o] == 0x59) {
		*pl_len = (size_t)d[o + 1] << 8 | d[o + 2];
		o += 3;
	} else {
		assert_int_equal(d[o], 0x58);
		*pl_len = d[o + 1];
		o += 2;
	}
	*pl = d + o;
	o += *pl_len;
	assert_int_equal(d[o], 0x58);
	assert_int_equal(d[o + 1], 0x60);
	*sig = d + o + 2;
	assert_int_equal(n, o + 2 + 96);
}

/* The exact §3.5 payload the document must carry. */
static void payload_want(struct fx *f, struct hb *w, const uint8_t pcrs[16][48], const void *pk,
                         size_t pk_len, const void *ud, size_t ud_len, const void *nonce,
                         size_t nonce_len)
{
	w->n = 0;
	hb_byte(w, 0xa9);
	hb_text(w, "module_id");
	hb_text(w, MODULE_ID);
	hb_text(w, "digest");
	hb_text(w, "SHA384");
	hb_text(w, "timestamp");
	hb_head(w, 0x00, FIXED_MS); /* 1B 00 00 01 8B CF E5 68 7B */
	hb_text(w, "pcrs");
	hb_byte(w, 0xb0);
	for (unsigned i = 0; i < 16; i++) {
		hb_head(w, 0x00, i);
		hb_bytes(w, pcrs[i], 48);
	}
	hb_text(w, "certificate");
	hb_bytes(w, f->leaf, f->leaf_len);
	hb_text(w, "cabundle");
	hb_byte(w, 0x81);
	hb_bytes(w, f->root, f->root_len);
	hb_text(w, "public_key");
	if (pk)
		hb_bytes(w, pk, pk_len);
	else
		hb_byte(w, 0xf6);
	hb_text(w, "user_data");
	if (ud)
		hb_bytes(w, ud, ud_len);
	else
		hb_byte(w, 0xf6);
	hb_text(w, "nonce");
	if (nonce)
		hb_bytes(w, nonce, nonce_len);
	else
		hb_byte(w, 0xf6);
}

static int raw_verify_es384(EVP_PKEY *key, const uint8_t *pl, size_t pl_len, const uint8_t *sig)
{
	struct hb tbs = { .n = 0 };
	const uint8_t prot[] = { 0xa1, 0x01, 0x38, 0x22 };
	unsigned char dig[48], *der = NULL;
	unsigned int dl;
	ECDSA_SIG *es = ECDSA_SIG_new();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	int n, rc;

	hb_byte(&tbs, 0x84);
	hb_text(&tbs, "Signature1");
	hb_bytes(&tbs, prot, sizeof(prot));
	hb_byte(&tbs, 0x40);
	hb_bytes(&tbs, pl, pl_len);
	EVP_Digest(tbs.b, tbs.n, dig, &dl, EVP_sha384(), NULL);
	ECDSA_SIG_set0(es, BN_bin2bn(sig, 48, NULL), BN_bin2bn(sig + 48, 48, NULL));
	n = i2d_ECDSA_SIG(es, &der);
	EVP_PKEY_verify_init(ctx);
	rc = EVP_PKEY_verify(ctx, der, (size_t)n, dig, dl);
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return rc;
}

/* Attestation request; @nonce given as a text string when @nonce_as_text. */
static void attest_req(struct hb *h, const void *ud, size_t ud_len, const void *nonce,
                       size_t nonce_len, const void *pk, size_t pk_len, bool nonce_as_text)
{
	h->n = 0;
	hb_head(h, 0xa0, 1);
	hb_text(h, "Attestation");
	hb_head(h, 0xa0, 3);
	hb_text(h, "user_data");
	if (ud)
		hb_bytes(h, ud, ud_len);
	else
		hb_byte(h, 0xf6);
	hb_text(h, "nonce");
	if (nonce && nonce_as_text) {
		hb_head(h, 0x60, nonce_len);
		hb_mem(h, nonce, nonce_len);
	} else if (nonce) {
		hb_bytes(h, nonce, nonce_len);
	} else {
		hb_byte(h, 0xf6);
	}
	hb_text(h, "public_key");
	if (pk)
		hb_bytes(h, pk, pk_len);
	else
		hb_byte(h, 0xf6);
}

static void doc_from_resp(struct fx *f, const uint8_t **doc, size_t *doc_len)
{
	/* A1 6B "Attestation" A1 68 "document" 59 xx xx doc */
	const uint8_t prefix[] = { 0xa1, 0x6b, 'A',  't', 't', 'e', 's', 't', 'a', 't', 'i', 'o',
		                   'n',  0xa1, 0x68, 'd', 'o', 'c', 'u', 'm', 'e', 'n', 't', 0x59 };

	assert_memory_equal(f->resp, prefix, sizeof(prefix));
	*doc_len = (size_t)f->resp[24] << 8 | f->resp[25];
	*doc = f->resp + 26;
	assert_int_equal(f->resp_len, 26 + *doc_len);
}

static void test_nsm_attestation_document_payload_and_signature(void **state)
{
	struct fx *f = *state;
	uint8_t pcrs[16][48] = { { 0 } };
	const uint8_t *doc, *pl, *sig;
	size_t doc_len, pl_len;
	struct hb h, w;

	memcpy(pcrs[0], f->cfg.pcr0, 48);
	memcpy(pcrs[1], f->cfg.pcr1, 48);
	memcpy(pcrs[2], f->cfg.pcr2, 48);
	sha384_extend(pcrs[4], PARENT_ID, strlen(PARENT_ID));
	memcpy(pcrs[8], f->cfg.pcr8, 48);

	attest_req(&h, "ud", 2, "nonce-1", 7, "pk", 2, false);
	req(f, &h);
	doc_from_resp(f, &doc, &doc_len);
	split_doc(doc, doc_len, &pl, &pl_len, &sig);
	payload_want(f, &w, pcrs, "pk", 2, "ud", 2, "nonce-1", 7);
	assert_int_equal(pl_len, w.n);
	assert_memory_equal(pl, w.b, w.n);
	assert_int_equal(raw_verify_es384(f->key, pl, pl_len, sig), 1);

	/* Absent fields become null; a text-string nonce is taken as its bytes. */
	attest_req(&h, NULL, 0, "n", 1, NULL, 0, true);
	req(f, &h);
	doc_from_resp(f, &doc, &doc_len);
	split_doc(doc, doc_len, &pl, &pl_len, &sig);
	payload_want(f, &w, pcrs, NULL, 0, NULL, 0, "n", 1);
	assert_memory_equal(pl, w.b, w.n);
	assert_int_equal(raw_verify_es384(f->key, pl, pl_len, sig), 1);

	/* Fields may be missing altogether: {"Attestation": {}} */
	h.n = 0;
	hb_head(&h, 0xa0, 1);
	hb_text(&h, "Attestation");
	hb_byte(&h, 0xa0);
	req(f, &h);
	doc_from_resp(f, &doc, &doc_len);
	split_doc(doc, doc_len, &pl, &pl_len, &sig);
	payload_want(f, &w, pcrs, NULL, 0, NULL, 0, NULL, 0);
	assert_memory_equal(pl, w.b, w.n);
}

static void test_nsm_attestation_field_limits(void **state)
{
	struct fx *f = *state;
	static uint8_t big[1025];
	struct hb h;

	/* 1024 bytes in one field is accepted. */
	attest_req(&h, big, 1024, NULL, 0, NULL, 0, false);
	req(f, &h);
	assert_int_equal(nsm_last_status(f->s), NSM_SUCCESS);
	attest_req(&h, NULL, 0, big, 1025, NULL, 0, false);
	req(f, &h);
	expect_error(f, "InvalidArgument");
	attest_req(&h, NULL, 0, NULL, 0, big, 1025, false);
	req(f, &h);
	expect_error(f, "InvalidArgument");
	/* Wrong type */
	h.n = 0;
	hb_head(&h, 0xa0, 1);
	hb_text(&h, "Attestation");
	hb_head(&h, 0xa0, 1);
	hb_text(&h, "nonce");
	hb_byte(&h, 0x01);
	req(f, &h);
	expect_error(f, "InvalidArgument");
}

/*
 * A float where an optional field may be null: libcbor 0.8's cbor_is_null() asserts on floats
 * and took the whole monitor down (found by fuzz-nsm_request). Every float width, and the other
 * simple values, are a wrong type; null still means absent.
 */
static void test_nsm_float_for_optional_field_is_invalid_argument(void **state)
{
	static const uint8_t values[][9] = {
		{ 0xf9, 0x00, 0x00 }, /* half 0.0 */
		{ 0xf9, 0x7e, 0x00 }, /* half NaN */
		{ 0xfa, 0x00, 0x00, 0x00, 0x00 }, /* single */
		{ 0xfb, 0, 0, 0, 0, 0, 0, 0, 0 }, /* double */
		{ 0xf5 }, /* true */
		{ 0xf7 }, /* undefined */
	};
	static const size_t lens[] = { 3, 3, 5, 9, 1, 1 };
	static const char *const fields[] = { "user_data", "nonce", "public_key" };
	struct fx *f = *state;
	struct hb h;

	for (size_t v = 0; v < sizeof(lens) / sizeof(lens[0]); v++) {
		for (size_t k = 0; k < 3; k++) {
			h.n = 0;
			hb_head(&h, 0xa0, 1);
			hb_text(&h, "Attestation");
			hb_head(&h, 0xa0, 1);
			hb_text(&h, fields[k]);
			hb_mem(&h, values[v], lens[v]);
			req(f, &h);
			expect_error(f, "InvalidArgument");
		}
	}
	h.n = 0;
	hb_head(&h, 0xa0, 1);
	hb_text(&h, "Attestation");
	hb_head(&h, 0xa0, 1);
	hb_text(&h, "nonce");
	hb_byte(&h, 0xf6);
	req(f, &h);
	assert_int_equal(nsm_last_status(f->s), NSM_SUCCESS);
}

static void test_nsm_debug_mode_zeroes_image_pcrs(void **state)
{
	struct fx *f = *state;
	uint8_t zero[48] = { 0 }, pcr4[48] = { 0 };
	const uint8_t *doc, *pl, *sig;
	size_t doc_len, pl_len;
	struct hb h, w;

	nsm_state_free(f->s);
	fx_config(f, true);
	assert_int_equal(nsm_state_new(&f->cfg, &f->s, NULL), NSM_OK);
	for (unsigned i = 0; i < 3; i++) {
		index_req(&h, "DescribePCR", "index", i, 0);
		req(f, &h);
		describe_pcr_want(&w, true, zero);
		expect(f, &w);
	}
	/* PCR8 (the image's signer) too: a policy on the signer alone must not admit a debug
	 * enclave. */
	index_req(&h, "DescribePCR", "index", 8, 0);
	req(f, &h);
	describe_pcr_want(&w, true, zero);
	expect(f, &w);
	/* The parent PCRs are not image measurements and stay. */
	sha384_extend(pcr4, PARENT_ID, strlen(PARENT_ID));
	index_req(&h, "DescribePCR", "index", 4, 0);
	req(f, &h);
	describe_pcr_want(&w, true, pcr4);
	expect(f, &w);

	attest_req(&h, NULL, 0, NULL, 0, NULL, 0, false);
	req(f, &h);
	doc_from_resp(f, &doc, &doc_len);
	split_doc(doc, doc_len, &pl, &pl_len, &sig);
	/* pcrs map: key 0 at the start of "pcrs" B0 00 58 30 <48 zero bytes> */
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *p = memmem(pl, pl_len, "pcrs", 4);
		assert_non_null(p);
		p += 5 + i * 51; /* skip "pcrs" and B0; each entry is key(1) + 58 30 + 48 */
		assert_int_equal(p[0], i);
		assert_memory_equal(p + 3, zero, 48);
	}
}

static void test_nsm_response_must_fit(void **state)
{
	struct fx *f = *state;
	const uint8_t raw[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };
	size_t n = 0;

	assert_int_equal(nsm_handle_request(f->s, raw, sizeof(raw), f->resp, 10, &n),
	                 NSM_ERR_RESPONSE_TOO_SMALL);
	assert_int_equal(n, 0);
}

static void test_nsm_state_rejects_bad_config(void **state)
{
	struct fx *f = *state;
	struct nsm_state *s;
	struct cl_diag d = { "" };
	EVP_PKEY *p256 = EVP_EC_gen("P-256");
	char longid[120];

	f->cfg.signing_key = p256;
	assert_int_equal(nsm_state_new(&f->cfg, &s, &d), NSM_ERR_CONFIG);
	assert_non_null(strstr(d.msg, "P-384"));
	f->cfg.signing_key = f->key;
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	f->cfg.module_id = longid;
	assert_int_equal(nsm_state_new(&f->cfg, &s, &d), NSM_ERR_CONFIG);
	f->cfg.module_id = MODULE_ID;
	f->cfg.cabundle_count = 0;
	assert_int_equal(nsm_state_new(&f->cfg, &s, &d), NSM_ERR_CONFIG);
	assert_string_equal(nsm_status_name(NSM_INPUT_TOO_LARGE), "InputTooLarge");
	assert_null(nsm_status_name((enum nsm_status)9));
	EVP_PKEY_free(p256);
}

/*
 * Interop with cloister-init's measured launch (guest/init/init_parse.c): its ExtendPCR
 * requests must be accepted and its response check must accept our answer. Its LockPCR
 * request must be accepted too; the answer is AWS's unit variant, a bare text "LockPCR".
 */
static void test_nsm_accepts_cloister_init_requests(void **state)
{
	struct fx *f = *state;
	uint8_t req[INIT_NSM_REQUEST_MAX], want[48] = { 0 }, got[48];
	const char lock_answer[] = "\x67LockPCR";
	size_t n;
	bool locked;

	n = init_nsm_extend_request(INIT_MEASURE_PCR, "cloister:cmd:", (const uint8_t *)"/bin/app",
	                            8, req, sizeof(req));
	assert_true(n > 0);
	assert_int_equal(nsm_handle_request(f->s, req, n, f->resp, sizeof(f->resp), &f->resp_len),
	                 NSM_OK);
	assert_true(init_nsm_response_ok(f->resp, f->resp_len, "ExtendPCR"));
	sha384_extend(want, "cloister:cmd:/bin/app", 21);
	assert_true(nsm_pcr_read(f->s, INIT_MEASURE_PCR, got, &locked));
	assert_memory_equal(got, want, 48);
	assert_false(locked);

	n = init_nsm_lock_request(INIT_MEASURE_PCR, req, sizeof(req));
	assert_int_equal(nsm_handle_request(f->s, req, n, f->resp, sizeof(f->resp), &f->resp_len),
	                 NSM_OK);
	assert_int_equal(f->resp_len, 8);
	assert_memory_equal(f->resp, lock_answer, 8);
	assert_true(init_nsm_response_ok(f->resp, f->resp_len, "LockPCR"));
	assert_true(nsm_pcr_read(f->s, INIT_MEASURE_PCR, got, &locked));
	assert_true(locked);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_nsm_describe_pcr_encodes_aws_shape),
		T(test_nsm_decoder_accepts_any_integer_width),
		T(test_nsm_launch_pcrs_follow_eif_and_parent),
		T(test_nsm_parent_role_sets_pcr3),
		T(test_nsm_refuses_unusable_parent_values),
		T(test_nsm_extend_pcr_is_sha384_of_old_and_data),
		T(test_nsm_extend_locked_pcr_is_read_only),
		T(test_nsm_rejects_out_of_range_and_oversized_indices),
		T(test_nsm_lock_pcr_rules),
		T(test_nsm_describe_nsm_and_lock_pcrs),
		T(test_nsm_get_random_returns_256_fresh_bytes),
		T(test_nsm_request_over_4096_bytes_is_input_too_large),
		T(test_nsm_malformed_requests_get_error_names),
		T(test_nsm_attestation_document_payload_and_signature),
		T(test_nsm_attestation_field_limits),
		T(test_nsm_float_for_optional_field_is_invalid_argument),
		T(test_nsm_debug_mode_zeroes_image_pcrs),
		T(test_nsm_response_must_fit),
		T(test_nsm_state_rejects_bad_config),
		T(test_nsm_accepts_cloister_init_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnsm (guest/libnsm) against the device side (src/lib/nsm) with no /dev/nsm: a test
 * transport hands each request to nsm_handle_request(). Checks every call's round trip, the
 * request bytes against serde shapes written out by hand, the AWS buffer rules and the error
 * mapping; attestation documents are verified with the host verifier against a fresh CA.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../guest/libnsm/nsm.h"
#include "../../guest/libnsm/nsm_transport.h"
#include "cloister/attest.h"
#include "lib/nsm/device.h"
#include "lib/util/file.h"
#include "nsm_test_util.h"

#define MODULE_ID "i-0fedcba987654321-enc00112233445566778"
#define FD 7

struct fx {
	char dir[64];
	struct attest_ca *ca;
	struct attest_leaf leaf;
	struct nsm_state *nsm;
	uint8_t pcr0[48];
	/* what the last request looked like */
	uint8_t last_req[NSM_REQUEST_MAX_SIZE];
	size_t last_req_len;
	int calls;
	/* canned transport behaviour */
	int fail_errno;
	const uint8_t *canned;
	size_t canned_len;
};

static int device_transport(void *opaque, int32_t fd, const uint8_t *req, size_t req_len,
                            uint8_t *resp, size_t *resp_len)
{
	struct fx *f = opaque;
	size_t n = 0;

	assert_int_equal(fd, FD);
	f->calls++;
	memcpy(f->last_req, req, req_len < sizeof(f->last_req) ? req_len : sizeof(f->last_req));
	f->last_req_len = req_len;
	if (f->fail_errno)
		return f->fail_errno;
	if (f->canned) {
		memcpy(resp, f->canned, f->canned_len);
		*resp_len = f->canned_len;
		return 0;
	}
	if (nsm_handle_request(f->nsm, req, req_len, resp, *resp_len, &n) != NSM_OK)
		return EIO;
	*resp_len = n;
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct nsm_config cfg;

	strcpy(f->dir, "/tmp/cloister-nsmlib-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(attest_ca_init(f->dir, false, NULL), ATTEST_OK);
	assert_int_equal(attest_ca_load(f->dir, &f->ca, NULL), ATTEST_OK);
	assert_int_equal(attest_leaf_mint(f->ca, MODULE_ID, &f->leaf, NULL), ATTEST_OK);
	memset(&cfg, 0, sizeof(cfg));
	for (int i = 0; i < 48; i++)
		f->pcr0[i] = (uint8_t)(0x55 ^ i);
	memcpy(cfg.pcr0, f->pcr0, 48);
	cfg.module_id = MODULE_ID;
	cfg.signing_key = f->leaf.key;
	cfg.certificate = f->leaf.cert_der;
	cfg.certificate_len = f->leaf.cert_len;
	cfg.cabundle = f->leaf.chain;
	cfg.cabundle_lens = f->leaf.chain_lens;
	cfg.cabundle_count = f->leaf.chain_count;
	assert_int_equal(nsm_state_new(&cfg, &f->nsm, NULL), NSM_OK);
	nsm_lib_set_transport(device_transport, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	const char *names[] = { "root.pem", "root.key", "intermediate.pem", "intermediate.key",
		                ".lock" };
	char p[128];

	nsm_lib_set_transport(NULL, NULL);
	nsm_state_free(f->nsm);
	attest_leaf_free(&f->leaf);
	attest_ca_free(f->ca);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void expect_req(struct fx *f, const struct hb *want)
{
	assert_int_equal(f->last_req_len, want->n);
	assert_memory_equal(f->last_req, want->b, want->n);
}

static void test_nsm_lib_description_layout_matches_aws(void **state)
{
	(void)state;
	assert_int_equal(sizeof(NsmDescription), 252);
	assert_int_equal(offsetof(NsmDescription, module_id), 6);
	assert_int_equal(offsetof(NsmDescription, module_id_len), 108);
	assert_int_equal(offsetof(NsmDescription, max_pcrs), 112);
	assert_int_equal(offsetof(NsmDescription, locked_pcrs), 114);
	assert_int_equal(offsetof(NsmDescription, locked_pcrs_len), 244);
	assert_int_equal(offsetof(NsmDescription, digest), 248);
	assert_int_equal(ERROR_CODE_SUCCESS, 0);
	assert_int_equal(ERROR_CODE_BUFFER_TOO_SMALL, 6);
	assert_int_equal(ERROR_CODE_INTERNAL_ERROR, 8);
	assert_int_equal(DIGEST_SHA384, 1);
}

static void test_nsm_lib_describe_pcr_and_buffer_rules(void **state)
{
	struct fx *f = *state;
	uint8_t buf[100];
	uint32_t len = sizeof(buf);
	bool lock = false;
	struct hb want = { .n = 0 };

	assert_int_equal(nsm_describe_pcr(FD, 0, &lock, buf, &len), ERROR_CODE_SUCCESS);
	assert_true(lock);
	assert_int_equal(len, 48);
	assert_memory_equal(buf, f->pcr0, 48);
	/* A1 6B "DescribePCR" A1 65 "index" 00 */
	hb_head(&want, 0xa0, 1);
	hb_text(&want, "DescribePCR");
	hb_head(&want, 0xa0, 1);
	hb_text(&want, "index");
	hb_byte(&want, 0x00);
	expect_req(f, &want);

	len = 10;
	memset(buf, 0, sizeof(buf));
	assert_int_equal(nsm_describe_pcr(FD, 0, &lock, buf, &len), ERROR_CODE_BUFFER_TOO_SMALL);
	assert_int_equal(len, 10);
	assert_memory_equal(buf, f->pcr0, 10);
	assert_int_equal(buf[10], 0);
	len = 48;
	assert_int_equal(nsm_describe_pcr(FD, 0, &lock, NULL, &len), ERROR_CODE_BUFFER_TOO_SMALL);
	assert_int_equal(len, 0);
	len = sizeof(buf);
	assert_int_equal(nsm_describe_pcr(FD, 16, &lock, buf, &len), ERROR_CODE_SUCCESS);
	assert_false(lock);
	assert_int_equal(nsm_describe_pcr(FD, 32, &lock, buf, &len), ERROR_CODE_INVALID_INDEX);
}

static void test_nsm_lib_extend_pcr(void **state)
{
	struct fx *f = *state;
	uint8_t buf[48], want_pcr[48] = { 0 };
	uint32_t len = sizeof(buf);
	struct hb want = { .n = 0 };

	sha384_extend(want_pcr, "ab", 2);
	assert_int_equal(nsm_extend_pcr(FD, 16, (const uint8_t *)"ab", 2, buf, &len),
	                 ERROR_CODE_SUCCESS);
	assert_int_equal(len, 48);
	assert_memory_equal(buf, want_pcr, 48);
	/* A1 69 "ExtendPCR" A2 65 "index" 10 64 "data" 42 'a' 'b' */
	hb_head(&want, 0xa0, 1);
	hb_text(&want, "ExtendPCR");
	hb_head(&want, 0xa0, 2);
	hb_text(&want, "index");
	hb_byte(&want, 0x10);
	hb_text(&want, "data");
	hb_bytes(&want, "ab", 2);
	expect_req(f, &want);

	f->calls = 0;
	assert_int_equal(nsm_extend_pcr(FD, 16, NULL, 0, buf, &len), ERROR_CODE_INVALID_ARGUMENT);
	assert_int_equal(f->calls, 0);
	assert_int_equal(nsm_extend_pcr(FD, 3, (const uint8_t *)"x", 1, buf, &len),
	                 ERROR_CODE_READ_ONLY_INDEX);
	assert_int_equal(nsm_extend_pcr(FD, 40, (const uint8_t *)"x", 1, buf, &len),
	                 ERROR_CODE_INVALID_INDEX);
}

static void test_nsm_lib_lock_rules(void **state)
{
	struct fx *f = *state;
	struct hb want = { .n = 0 };
	NsmDescription d;

	assert_int_equal(nsm_lock_pcr(FD, 20), ERROR_CODE_SUCCESS);
	assert_int_equal(nsm_lock_pcr(FD, 20), ERROR_CODE_READ_ONLY_INDEX);
	assert_int_equal(nsm_lock_pcr(FD, 5), ERROR_CODE_READ_ONLY_INDEX);
	assert_int_equal(nsm_lock_pcrs(FD, 33), ERROR_CODE_INVALID_INDEX);
	assert_int_equal(nsm_lock_pcrs(FD, 18), ERROR_CODE_SUCCESS);
	/* A1 68 "LockPCRs" A1 65 "range" 12 */
	hb_head(&want, 0xa0, 1);
	hb_text(&want, "LockPCRs");
	hb_head(&want, 0xa0, 1);
	hb_text(&want, "range");
	hb_byte(&want, 0x12);
	expect_req(f, &want);
	assert_int_equal(nsm_get_description(FD, &d), ERROR_CODE_SUCCESS);
	assert_int_equal(d.locked_pcrs_len, 19);
	assert_int_equal(d.locked_pcrs[17], 17);
	assert_int_equal(d.locked_pcrs[18], 20);
}

static void test_nsm_lib_get_description(void **state)
{
	struct fx *f = *state;
	NsmDescription d;
	struct hb want = { .n = 0 };

	memset(&d, 0xee, sizeof(d));
	assert_int_equal(nsm_get_description(FD, &d), ERROR_CODE_SUCCESS);
	hb_text(&want, "DescribeNSM");
	expect_req(f, &want);
	assert_int_equal(d.version_major, 1);
	assert_int_equal(d.version_minor, 0);
	assert_int_equal(d.version_patch, 0);
	assert_string_equal((const char *)d.module_id, MODULE_ID);
	assert_int_equal(d.module_id_len, strlen(MODULE_ID));
	assert_int_equal(d.max_pcrs, 32);
	assert_int_equal(d.locked_pcrs_len, 16);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(d.locked_pcrs[i], i);
	assert_int_equal(d.digest, DIGEST_SHA384);
	assert_int_equal(nsm_get_description(FD, NULL), ERROR_CODE_INVALID_ARGUMENT);
}

static void test_nsm_lib_get_random(void **state)
{
	struct fx *f = *state;
	uint8_t a[300], b[300];
	uintptr_t la = sizeof(a), lb = 10;
	struct hb want = { .n = 0 };

	assert_int_equal(nsm_get_random(FD, a, &la), ERROR_CODE_SUCCESS);
	assert_int_equal(la, 256);
	hb_text(&want, "GetRandom");
	expect_req(f, &want);
	assert_int_equal(nsm_get_random(FD, b, &lb), ERROR_CODE_SUCCESS);
	assert_int_equal(lb, 10);
	assert_memory_not_equal(a, b, 10);
	lb = 0;
	assert_int_equal(nsm_get_random(FD, b, &lb), ERROR_CODE_INVALID_ARGUMENT);
	lb = 10;
	assert_int_equal(nsm_get_random(FD, NULL, &lb), ERROR_CODE_INVALID_ARGUMENT);
	assert_int_equal(nsm_get_random(-1, b, &lb), ERROR_CODE_INVALID_ARGUMENT);
}

static void test_nsm_lib_attestation_verifies_on_host(void **state)
{
	struct fx *f = *state;
	static uint8_t doc[0x3000], big[1024];
	uint32_t len = sizeof(doc);
	uint8_t *root = NULL;
	size_t root_len = 0;
	char p[128];
	struct attest_expect exp;
	struct attest_doc parsed;
	struct cl_diag d = { "" };
	struct hb want = { .n = 0 };

	memset(big, 0x80, sizeof(big));
	snprintf(p, sizeof(p), "%s/root.pem", f->dir);
	assert_int_equal(cl_file_read_all(p, 65536, &root, &root_len, NULL), 0);

	/* 1024 bytes in each of the three fields, as nsm-check does. */
	assert_int_equal(nsm_get_attestation_doc(FD, big, 1024, big, 1024, big, 1024, doc, &len),
	                 ERROR_CODE_SUCCESS);
	memset(&exp, 0, sizeof(exp));
	exp.nonce = big;
	exp.nonce_len = 1024;
	exp.user_data = big;
	exp.user_data_len = 1024;
	exp.public_key = big;
	exp.public_key_len = 1024;
	exp.pcr[0] = f->pcr0;
	exp.pcr_len[0] = 48;
	assert_int_equal(attest_verify(doc, len, root, root_len, &exp, &parsed, &d), ATTEST_OK);
	assert_string_equal(parsed.module_id, MODULE_ID);
	attest_doc_free(&parsed);

	/* NULL pointers are absent fields: nulls on the wire and in the document. */
	len = sizeof(doc);
	assert_int_equal(nsm_get_attestation_doc(FD, NULL, 0, NULL, 0, NULL, 0, doc, &len),
	                 ERROR_CODE_SUCCESS);
	hb_head(&want, 0xa0, 1);
	hb_text(&want, "Attestation");
	hb_head(&want, 0xa0, 3);
	hb_text(&want, "user_data");
	hb_byte(&want, 0xf6);
	hb_text(&want, "nonce");
	hb_byte(&want, 0xf6);
	hb_text(&want, "public_key");
	hb_byte(&want, 0xf6);
	expect_req(f, &want);
	assert_int_equal(attest_verify(doc, len, root, root_len, NULL, &parsed, &d), ATTEST_OK);
	assert_false(parsed.nonce.present);
	assert_false(parsed.user_data.present);
	assert_false(parsed.public_key.present);
	attest_doc_free(&parsed);

	/* Too small a buffer: truncated copy and BufferTooSmall. */
	len = 100;
	assert_int_equal(nsm_get_attestation_doc(FD, NULL, 0, NULL, 0, NULL, 0, doc, &len),
	                 ERROR_CODE_BUFFER_TOO_SMALL);
	assert_int_equal(len, 100);
	free(root);
}

static void test_nsm_lib_oversized_request_never_reaches_device(void **state)
{
	struct fx *f = *state;
	static uint8_t big[4096], doc[0x3000];
	uint32_t len = sizeof(doc);
	uint8_t pcr[48];
	uint32_t plen = sizeof(pcr);

	f->calls = 0;
	assert_int_equal(nsm_get_attestation_doc(FD, big, 4096, NULL, 0, NULL, 0, doc, &len),
	                 ERROR_CODE_INPUT_TOO_LARGE);
	assert_int_equal(nsm_extend_pcr(FD, 16, big, 4090, pcr, &plen), ERROR_CODE_INPUT_TOO_LARGE);
	assert_int_equal(f->calls, 0);
}

static void test_nsm_lib_maps_transport_and_response_errors(void **state)
{
	struct fx *f = *state;
	uint8_t buf[48];
	uint32_t len = sizeof(buf);
	bool lock;
	/* {"Error": "InvalidIndex"} */
	const uint8_t err_resp[] = { 0xa1, 0x65, 'E', 'r', 'r', 'o', 'r', 0x6c, 'I', 'n',
		                     'v',  'a',  'l', 'i', 'd', 'I', 'n', 'd',  'e', 'x' };
	/* {"Error": "Bogus"} */
	const uint8_t bogus[] = {
		0xa1, 0x65, 'E', 'r', 'r', 'o', 'r', 0x65, 'B', 'o', 'g', 'u', 's'
	};
	/* "LockPCR" as the answer to DescribePCR */
	const uint8_t wrong[] = { 0x67, 'L', 'o', 'c', 'k', 'P', 'C', 'R' };
	const uint8_t garbage[] = { 0xa1, 0x6b, 'D', 'e' };
	/* DescribePCR with keys reversed, indefinite maps, and an unknown field */
	uint8_t reordered[128];
	struct hb h = { .n = 0 };

	f->fail_errno = EMSGSIZE;
	assert_int_equal(nsm_describe_pcr(FD, 0, &lock, buf, &len), ERROR_CODE_INPUT_TOO_LARGE);
	f->fail_errno = EIO;
	assert_int_equal(nsm_describe_pcr(FD, 0, &lock, buf, &len), ERROR_CODE_INTERNAL_ERROR);
	f->fail_errno = 0;
	f->canned = err_resp;
	f->canned_len = sizeof(err_resp);
	assert_int_equal(nsm_lock_pcr(FD, 1), ERROR_CODE_INVALID_INDEX);
	f->canned = bogus;
	f->canned_len = sizeof(bogus);
	assert_int_equal(nsm_lock_pcr(FD, 1), ERROR_CODE_INTERNAL_ERROR);
	f->canned = wrong;
	f->canned_len = sizeof(wrong);
	assert_int_equal(nsm_describe_pcr(FD, 0, &lock, buf, &len), ERROR_CODE_INVALID_RESPONSE);
	assert_int_equal(nsm_lock_pcrs(FD, 1), ERROR_CODE_INVALID_RESPONSE);
	f->canned = garbage;
	f->canned_len = sizeof(garbage);
	assert_int_equal(nsm_describe_pcr(FD, 0, &lock, buf, &len), ERROR_CODE_INTERNAL_ERROR);

	hb_byte(&h, 0xbf);
	hb_text(&h, "DescribePCR");
	hb_byte(&h, 0xbf);
	hb_text(&h, "extra");
	hb_byte(&h, 0x82);
	hb_byte(&h, 0x01);
	hb_byte(&h, 0x02);
	hb_text(&h, "data");
	hb_bytes(&h, f->pcr0, 48);
	hb_text(&h, "lock");
	hb_byte(&h, 0xf4);
	hb_byte(&h, 0xff);
	hb_byte(&h, 0xff);
	memcpy(reordered, h.b, h.n);
	f->canned = reordered;
	f->canned_len = h.n;
	len = sizeof(buf);
	lock = true;
	assert_int_equal(nsm_describe_pcr(FD, 0, &lock, buf, &len), ERROR_CODE_SUCCESS);
	assert_false(lock);
	assert_memory_equal(buf, f->pcr0, 48);
	f->canned = NULL;
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nsm_lib_description_layout_matches_aws),
		T(test_nsm_lib_describe_pcr_and_buffer_rules),
		T(test_nsm_lib_extend_pcr),
		T(test_nsm_lib_lock_rules),
		T(test_nsm_lib_get_description),
		T(test_nsm_lib_get_random),
		T(test_nsm_lib_attestation_verifies_on_host),
		T(test_nsm_lib_oversized_request_never_reaches_device),
		T(test_nsm_lib_maps_transport_and_response_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

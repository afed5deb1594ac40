/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-nsm driven the way Linux's drivers/misc/nsm.c drives it (nitro-compat §4): the
 * request as one device-readable buffer, then a 0x3000-byte device-writable buffer, two
 * chains, one kick; the device must return the request token first, then the response with
 * its length. Ring layouts are written by hand from the virtio 1.x spec (§2.7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "nsm_test_util.h"
#include "vmm/devices/nsm.h"

#define RAM_SIZE 0x40000ULL
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define REQ_BUF 0x8000
#define RESP_BUF 0x10000

static uint8_t ram[RAM_SIZE];
static struct gpa_space space;
static struct virtio_mmio_dev t;
static struct virtio_nsm *dev;
static EVP_PKEY *key;
static uint8_t *cert;
static size_t cert_len;
static uint16_t avail_idx, used_seen;

static void no_irq(void *opaque, unsigned irq)
{
	(void)opaque;
	(void)irq;
}

static int wr(uint64_t off, uint32_t v)
{
	return virtio_mmio_write(&t, off, &v, 4);
}

static void put16(uint64_t gpa, uint16_t v)
{
	memcpy(ram + gpa, &v, 2);
}

static void put32(uint64_t gpa, uint32_t v)
{
	memcpy(ram + gpa, &v, 4);
}

static void put64(uint64_t gpa, uint64_t v)
{
	memcpy(ram + gpa, &v, 8);
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, ram + gpa, 4);
	return v;
}

static uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, ram + gpa, 2);
	return v;
}

/* The Linux virtio_mmio probe: status, features (VERSION_1 only), queue 0, DRIVER_OK. */
static void driver_probe(void)
{
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0);
	wr(VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, VIRTIO_NSM_QUEUE_SIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, DESC);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED);
	assert_int_equal(wr(VIRTIO_MMIO_QUEUE_READY, 1), 0);
	assert_int_equal(wr(VIRTIO_MMIO_STATUS, 0xf), 0);
	memset(ram + AVAIL, 0, 16);
	memset(ram + USED, 0, 32);
	avail_idx = used_seen = 0;
}

static int setup(void **state)
{
	static const uint8_t *chain[1];
	static size_t lens[1];
	struct nsm_config cfg;
	struct nsm_state *s;

	(void)state;
	if (!key) {
		key = EVP_EC_gen("P-384");
		cert_len = self_signed_der(key, "i-virtio-enc0000000000000000", &cert);
	}
	chain[0] = cert;
	lens[0] = cert_len;
	memset(&cfg, 0, sizeof(cfg));
	cfg.module_id = "i-virtio-enc0000000000000000";
	cfg.signing_key = key;
	cfg.certificate = cert;
	cfg.certificate_len = cert_len;
	cfg.cabundle = chain;
	cfg.cabundle_lens = lens;
	cfg.cabundle_count = 1;
	assert_int_equal(nsm_state_new(&cfg, &s, NULL), NSM_OK);
	dev = malloc(sizeof(*dev));
	virtio_nsm_init(dev, &cloister_nsm_backend, s);
	memset(ram, 0, sizeof(ram));
	memset(&space, 0, sizeof(space));
	assert_true(gpa_add_region(&space, 0, RAM_SIZE, ram));
	assert_true(
	        virtio_mmio_init(&t, &virtio_nsm_ops, dev, &space, 0xd0000000, 5, no_irq, NULL));
	driver_probe();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	virtio_mmio_destroy(&t);
	virtio_nsm_destroy(dev);
	free(dev);
	return 0;
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put64(DESC + 16 * i, addr);
	put32(DESC + 16 * i + 8, len);
	put16(DESC + 16 * i + 12, flags);
	put16(DESC + 16 * i + 14, next);
}

static void make_available(uint16_t head)
{
	put16(AVAIL + 4 + 2 * (avail_idx % VIRTIO_NSM_QUEUE_SIZE), head);
	avail_idx++;
	put16(AVAIL + 2, avail_idx);
}

/* A kick as the vCPU thread takes it (vcpu.c): again while the device says there is more.
 * Returns 0, or the device's failure. */
static int kick(void)
{
	int rc = wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);

	while (rc == VIRTIO_MMIO_MORE)
		rc = virtio_mmio_kick(&t, 0);
	return rc;
}

/* The Linux driver's nsm_sendrecv_msg_locked(): two chains, one kick. Returns the response
 * length the device reported, after checking the used ring order. */
static uint32_t driver_request(const void *req, uint32_t len, uint32_t resp_cap, int *rc)
{
	uint32_t resp_len;

	memcpy(ram + REQ_BUF, req, len);
	set_desc(0, REQ_BUF, len, 0, 0);
	set_desc(1, RESP_BUF, resp_cap, VIRTQ_DESC_F_WRITE, 0);
	make_available(0);
	make_available(1);
	*rc = kick();
	if (*rc)
		return 0;
	assert_int_equal(get16(USED + 2), (uint16_t)(used_seen + 2));
	/* First the request token (id 0, nothing written), then the response (id 1). */
	assert_int_equal(get32(USED + 4 + 8 * (used_seen % 2)), 0);
	assert_int_equal(get32(USED + 8 + 8 * (used_seen % 2)), 0);
	assert_int_equal(get32(USED + 4 + 8 * ((used_seen + 1) % 2)), 1);
	resp_len = get32(USED + 8 + 8 * ((used_seen + 1) % 2));
	used_seen += 2;
	return resp_len;
}

static void test_nsm_virtio_answers_describe_nsm_like_the_linux_driver_asks(void **state)
{
	const uint8_t req[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };
	const uint8_t prefix[] = {
		0xa1, 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M'
	};
	uint32_t n;
	int rc;

	(void)state;
	n = driver_request(req, sizeof(req), NSM_RESPONSE_MAX, &rc);
	assert_int_equal(rc, 0);
	assert_true(n > sizeof(prefix));
	assert_memory_equal(ram + RESP_BUF, prefix, sizeof(prefix));
	assert_int_equal(dev->requests, 1);
}

static void test_nsm_virtio_serves_many_requests_around_the_ring(void **state)
{
	const uint8_t rnd[] = { 0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd', 'o', 'm' };
	uint8_t first[256];
	uint32_t n;
	int rc;

	(void)state;
	for (int i = 0; i < 5; i++) {
		n = driver_request(rnd, sizeof(rnd), NSM_RESPONSE_MAX, &rc);
		assert_int_equal(rc, 0);
		assert_int_equal(n, 22 + 256);
		if (i)
			assert_memory_not_equal(ram + RESP_BUF + 22, first, 256);
		memcpy(first, ram + RESP_BUF + 22, 256);
	}
}

static void test_nsm_virtio_accepts_one_combined_chain(void **state)
{
	const uint8_t req[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };
	int rc;

	(void)state;
	memcpy(ram + REQ_BUF, req, sizeof(req));
	set_desc(0, REQ_BUF, sizeof(req), VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, RESP_BUF, NSM_RESPONSE_MAX, VIRTQ_DESC_F_WRITE, 0);
	make_available(0);
	rc = kick();
	assert_int_equal(rc, 0);
	assert_int_equal(get16(USED + 2), 1);
	assert_int_equal(get32(USED + 4), 0);
	assert_true(get32(USED + 8) > 13);
	assert_int_equal(ram[RESP_BUF], 0xa1);
}

/* Two requests waiting: each call answers one and says there is more, so the vCPU thread
 * looks at whether the enclave still runs between them; a call that finds nothing says so. */
static void test_nsm_virtio_answers_one_request_per_call(void **state)
{
	const uint8_t req[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };

	(void)state;
	memcpy(ram + REQ_BUF, req, sizeof(req));
	set_desc(0, REQ_BUF, sizeof(req), VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, RESP_BUF, NSM_RESPONSE_MAX, VIRTQ_DESC_F_WRITE, 0);
	make_available(0);
	make_available(0); /* the same chain twice: two requests */
	assert_int_equal(wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0), VIRTIO_MMIO_MORE);
	assert_int_equal(get16(USED + 2), 1);
	assert_int_equal(dev->requests, 1);
	assert_int_equal(virtio_mmio_kick(&t, 0), VIRTIO_MMIO_MORE);
	assert_int_equal(get16(USED + 2), 2);
	assert_int_equal(dev->requests, 2);
	assert_int_equal(virtio_mmio_kick(&t, 0), 0);
	assert_int_equal(dev->requests, 2);
	assert_false(t.failed);
}

static void test_nsm_virtio_oversized_request_gets_input_too_large(void **state)
{
	static uint8_t big[5000];
	const uint8_t want[] = { 0xa1, 0x65, 'E', 'r', 'r', 'o', 'r', 0x6d, 'I', 'n', 'p',
		                 'u',  't',  'T', 'o', 'o', 'L', 'a', 'r',  'g', 'e' };
	uint32_t n;
	int rc;

	(void)state;
	n = driver_request(big, sizeof(big), NSM_RESPONSE_MAX, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(ram + RESP_BUF, want, sizeof(want));
}

static void test_nsm_virtio_protocol_violations_fail_the_device(void **state)
{
	const uint8_t req[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };
	int rc;

	(void)state;
	/* A response buffer too small for the answer. */
	driver_request(req, sizeof(req), 16, &rc);
	assert_int_equal(rc, -1);
	assert_true(t.failed);
	assert_non_null(strstr(t.why, "virtio-nsm"));
}

static void test_nsm_virtio_lone_response_buffer_fails_the_device(void **state)
{
	int rc;

	(void)state;
	set_desc(0, RESP_BUF, NSM_RESPONSE_MAX, VIRTQ_DESC_F_WRITE, 0);
	make_available(0);
	rc = wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(rc, -1);
	assert_string_equal(t.why, "virtio virtio-nsm: a response buffer without a request");
}

/* What a hostile driver did is logged once, with its values: the device named once (the
 * transport's prefix), the queue, the rule broken and the descriptor as the guest wrote it. */
static void test_nsm_virtio_descriptor_loop_is_named_with_its_values(void **state)
{
	(void)state;
	set_desc(0, REQ_BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, REQ_BUF + 16, 16, VIRTQ_DESC_F_NEXT, 0); /* back to the head */
	make_available(0);
	assert_int_equal(wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0), -1);
	assert_string_equal(t.why, "virtio virtio-nsm: queue 0: descriptor chain too long (loop "
	                           "or oversized chain): the chain from head 0 goes on after 2 "
	                           "descriptors (queue size 2, limit 64): descriptor 1 names "
	                           "next 0");
}

static void test_nsm_virtio_oversized_buffer_is_named_with_its_values(void **state)
{
	(void)state;
	set_desc(0, REQ_BUF, 0xffffffffu, VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, RESP_BUF, NSM_RESPONSE_MAX, VIRTQ_DESC_F_WRITE, 0);
	make_available(0);
	assert_int_equal(wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0), -1);
	assert_string_equal(t.why, "virtio virtio-nsm: queue 0: descriptor buffer lies outside "
	                           "guest RAM: descriptor 0 (addr 0x8000, len 0xffffffff, "
	                           "flags 0x1, next 1)");
}

/* Re-probing the driver must not unlock PCRs. */
static void test_nsm_virtio_reset_keeps_pcr_locks(void **state)
{
	struct hb h = { .n = 0 };
	uint32_t n;
	int rc;

	(void)state;
	hb_head(&h, 0xa0, 1);
	hb_text(&h, "LockPCR");
	hb_head(&h, 0xa0, 1);
	hb_text(&h, "index");
	hb_byte(&h, 0x10);
	n = driver_request(h.b, (uint32_t)h.n, NSM_RESPONSE_MAX, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(n, 8); /* 67 "LockPCR" */
	assert_int_equal(wr(VIRTIO_MMIO_STATUS, 0), 0);
	driver_probe();
	n = driver_request(h.b, (uint32_t)h.n, NSM_RESPONSE_MAX, &rc);
	assert_int_equal(rc, 0);
	assert_memory_equal(ram + RESP_BUF + 7, "\x6dReadOnlyIndex", 14);
}

int main(void)
{
	int rc;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_nsm_virtio_answers_describe_nsm_like_the_linux_driver_asks),
		T(test_nsm_virtio_serves_many_requests_around_the_ring),
		T(test_nsm_virtio_accepts_one_combined_chain),
		T(test_nsm_virtio_answers_one_request_per_call),
		T(test_nsm_virtio_oversized_request_gets_input_too_large),
		T(test_nsm_virtio_protocol_violations_fail_the_device),
		T(test_nsm_virtio_lone_response_buffer_fails_the_device),
		T(test_nsm_virtio_descriptor_loop_is_named_with_its_values),
		T(test_nsm_virtio_oversized_buffer_is_named_with_its_values),
		T(test_nsm_virtio_reset_keeps_pcr_locks),
	};

	rc = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(key);
	OPENSSL_free(cert);
	return rc;
}

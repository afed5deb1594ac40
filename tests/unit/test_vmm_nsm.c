/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio-nsm device over the virtio-mmio transport and a fake guest memory, driven as the
 * Linux nsm driver drives it: one chain per request, CBOR out, 0x3000-byte buffer in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "vmm/devices/virtio_nsm.h"

#define RAM_SIZE 0x20000ULL
#define DESC 0x1000ULL
#define AVAIL 0x2000ULL
#define USED 0x3000ULL
#define REQ 0x4000ULL
#define RESP 0x8000ULL

static uint8_t ram[RAM_SIZE];
static struct gpa_space space;
static struct virtio_mmio_dev dev;
static struct virtio_nsm nsm;
static EVP_PKEY *key;
static unsigned irqs;
static uint16_t avail_idx;

static void on_irq(void *opaque, unsigned irq)
{
	(void)opaque;
	(void)irq;
	irqs++;
}

static void wr(uint64_t off, uint32_t v)
{
	virtio_mmio_write(&dev, off, &v, 4);
}

static int setup(void **state)
{
	static const uint8_t cert[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	static const uint8_t *chain[] = { cert };
	static const size_t lens[] = { sizeof(cert) };
	struct nsm_config cfg;

	(void)state;
	memset(ram, 0, sizeof(ram));
	memset(&space, 0, sizeof(space));
	assert_true(gpa_add_region(&space, 0, RAM_SIZE, ram));
	key = EVP_EC_gen("P-384");
	assert_non_null(key);
	memset(&cfg, 0, sizeof(cfg));
	cfg.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
	cfg.signing_key = key;
	cfg.certificate = cert;
	cfg.certificate_len = sizeof(cert);
	cfg.cabundle = chain;
	cfg.cabundle_lens = lens;
	cfg.cabundle_count = 1;
	memset(&nsm, 0, sizeof(nsm));
	assert_int_equal(nsm_state_new(&cfg, &nsm.state, NULL), NSM_OK);
	assert_true(
	        virtio_mmio_init(&dev, &virtio_nsm_ops, &nsm, &space, 0xd0000000, 5, on_irq, NULL));
	irqs = 0;
	avail_idx = 0;
	/* Driver bring-up: features (VERSION_1 only), queue 0, DRIVER_OK. */
	wr(VIRTIO_MMIO_STATUS, 3);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, 0xb);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, DESC);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	wr(VIRTIO_MMIO_STATUS, 0xf);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	virtio_mmio_destroy(&dev);
	nsm_state_free(nsm.state);
	EVP_PKEY_free(key);
	return 0;
}

static void put_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = ram + DESC + 16 * i;

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void offer(uint16_t head)
{
	memcpy(ram + AVAIL + 4 + 2 * (avail_idx % 8), &head, 2);
	avail_idx++;
	memcpy(ram + AVAIL + 2, &avail_idx, 2);
}

static int kick(void)
{
	uint32_t q = 0;

	return virtio_mmio_write(&dev, VIRTIO_MMIO_QUEUE_NOTIFY, &q, 4);
}

/* As the Linux driver does it: the request as one readable chain (head 0), the response
 * buffer as a second, writable chain (head 1); kick. */
static int request(const void *req, uint32_t req_len, uint32_t resp_len)
{
	memcpy(ram + REQ, req, req_len);
	put_desc(0, REQ, req_len, 0, 0);
	put_desc(1, RESP, resp_len, 2, 0);
	offer(0);
	offer(1);
	return kick();
}

static uint32_t used_id(unsigned slot)
{
	uint32_t v;

	memcpy(&v, ram + USED + 4 + 8 * slot, 4);
	return v;
}

static uint32_t used_len(unsigned slot)
{
	uint32_t v;

	memcpy(&v, ram + USED + 4 + 8 * slot + 4, 4);
	return v;
}

static void test_nsm_device_identifies_as_virtio_33(void **state)
{
	uint32_t v;

	(void)state;
	virtio_mmio_read(&dev, VIRTIO_MMIO_DEVICE_ID, &v, 4);
	assert_int_equal(v, 33);
}

static void test_nsm_device_answers_describe_nsm(void **state)
{
	/* CBOR text "DescribeNSM" (major type 3, length 11) */
	static const uint8_t req[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };

	(void)state;
	assert_int_equal(request(req, sizeof(req), 0x3000), 0);
	/* request returned first (nothing written), then the response */
	assert_int_equal(ram[USED + 2], 2);
	assert_int_equal(used_id(0), 0);
	assert_int_equal(used_len(0), 0);
	assert_int_equal(used_id(1), 1);
	assert_true(used_len(1) > 12);
	/* {"DescribeNSM": {...}}: a one-entry map keyed by the request name */
	assert_int_equal(ram[RESP], 0xa1);
	assert_memory_equal(ram + RESP + 1, req, sizeof(req));
	assert_int_equal(irqs, 1);
}

static void test_nsm_device_reports_oversized_request(void **state)
{
	static uint8_t req[0x1800];

	(void)state;
	memset(req, 0x41, sizeof(req));
	assert_int_equal(request(req, sizeof(req), 0x3000), 0);
	assert_true(used_len(1) > 13);
	assert_int_equal(memcmp(ram + RESP + used_len(1) - 13, "InputTooLarge", 13), 0);
}

static void test_nsm_device_accepts_request_and_response_in_one_chain(void **state)
{
	static const uint8_t req[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };

	(void)state;
	memcpy(ram + REQ, req, sizeof(req));
	put_desc(0, REQ, sizeof(req), 1, 1);
	put_desc(1, RESP, 0x3000, 2, 0);
	offer(0);
	assert_int_equal(kick(), 0);
	assert_int_equal(used_id(0), 0);
	assert_true(used_len(0) > 12);
	assert_memory_equal(ram + RESP + 1, req, sizeof(req));
}

static void test_nsm_device_ends_enclave_on_response_buffer_without_request(void **state)
{
	(void)state;
	put_desc(1, RESP, 0x3000, 2, 0);
	offer(1);
	assert_int_equal(kick(), -1);
	assert_true(dev.failed);
	assert_non_null(strstr(dev.why, "nsm"));
}

static void test_nsm_device_ends_enclave_on_two_requests_in_a_row(void **state)
{
	static const uint8_t req[] = { 0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd', 'o', 'm' };

	(void)state;
	memcpy(ram + REQ, req, sizeof(req));
	put_desc(0, REQ, sizeof(req), 0, 0);
	put_desc(2, REQ, sizeof(req), 0, 0);
	offer(0);
	offer(2);
	assert_int_equal(kick(), -1);
	assert_non_null(strstr(dev.why, "without a response buffer"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nsm_device_identifies_as_virtio_33, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_nsm_device_answers_describe_nsm, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_nsm_device_reports_oversized_request, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(
		        test_nsm_device_accepts_request_and_response_in_one_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(
		        test_nsm_device_ends_enclave_on_response_buffer_without_request, setup,
		        teardown),
		cmocka_unit_test_setup_teardown(
		        test_nsm_device_ends_enclave_on_two_requests_in_a_row, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

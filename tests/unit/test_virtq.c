/* SPDX-License-Identifier: Apache-2.0 */
/* The split-virtqueue walker against a fake guest memory buffer: well-formed chains, and every
 * way a hostile driver can lie (loops, out-of-range indices and buffers, wrapping lengths). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/virtio/virtq.h"

#define RAM_GPA 0x10000ULL
#define RAM_SIZE 0x40000ULL
#define DESC_GPA (RAM_GPA + 0x0000)
#define AVAIL_GPA (RAM_GPA + 0x4000)
#define USED_GPA (RAM_GPA + 0x5000)
#define BUF_GPA (RAM_GPA + 0x10000)

static uint8_t ram[RAM_SIZE];
static struct gpa_space space;

static uint8_t *host(uint64_t gpa)
{
	return ram + (gpa - RAM_GPA);
}

/* Write a descriptor in the virtio 1.x wire layout (le64 addr, le32 len, le16 flags, le16 next)
 * byte by byte, independently of the struct the code under test uses. */
static void put_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = host(DESC_GPA + 16ULL * i);

	for (int b = 0; b < 8; b++)
		p[b] = (uint8_t)(addr >> (8 * b));
	for (int b = 0; b < 4; b++)
		p[8 + b] = (uint8_t)(len >> (8 * b));
	p[12] = (uint8_t)flags;
	p[13] = (uint8_t)(flags >> 8);
	p[14] = (uint8_t)next;
	p[15] = (uint8_t)(next >> 8);
}

static void put16(uint64_t gpa, uint16_t v)
{
	host(gpa)[0] = (uint8_t)v;
	host(gpa)[1] = (uint8_t)(v >> 8);
}

static uint32_t get32(uint64_t gpa)
{
	const uint8_t *p = host(gpa);

	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Offer chain @head in avail slot @slot and publish avail idx @idx. */
static void offer(uint16_t slot, uint16_t head, uint16_t idx, uint16_t size)
{
	put16(AVAIL_GPA + 4 + 2ULL * (slot % size), head);
	put16(AVAIL_GPA + 2, idx);
}

static int setup(void **state)
{
	(void)state;
	memset(ram, 0, sizeof(ram));
	memset(&space, 0, sizeof(space));
	assert_true(gpa_add_region(&space, RAM_GPA, RAM_SIZE, ram));
	return 0;
}

static void make_queue(struct virtq *q, uint16_t size)
{
	assert_int_equal(virtq_setup(q, &space, size, DESC_GPA, AVAIL_GPA, USED_GPA), VIRTQ_OK);
}

static void test_virtq_pops_chain_with_readable_then_writable_parts(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;
	char out[16] = { 0 };

	(void)state;
	make_queue(&q, 16);
	memcpy(host(BUF_GPA), "hello, ", 7);
	memcpy(host(BUF_GPA + 0x100), "device", 6);
	put_desc(3, BUF_GPA, 7, VIRTQ_DESC_F_NEXT, 7);
	put_desc(7, BUF_GPA + 0x100, 6, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, BUF_GPA + 0x200, 32, VIRTQ_DESC_F_WRITE, 0);
	offer(0, 3, 1, 16);

	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_OK);
	assert_true(got);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.nout, 2);
	assert_int_equal(c.nin, 1);
	assert_int_equal(c.out_len, 13);
	assert_int_equal(c.in_len, 32);
	assert_int_equal(virtq_chain_read(&c, 0, out, sizeof(out)), 13);
	assert_string_equal(out, "hello, device");
	assert_int_equal(virtq_chain_read(&c, 5, out, 4), 4);
	assert_memory_equal(out, ", de", 4);
	assert_int_equal(virtq_chain_write(&c, 2, "reply", 5), 5);
	assert_memory_equal(host(BUF_GPA + 0x202), "reply", 5);

	/* Nothing more on offer. */
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_OK);
	assert_false(got);
}

static void test_virtq_push_publishes_used_entry_then_index(void **state)
{
	struct virtq q;

	(void)state;
	make_queue(&q, 8);
	assert_int_equal(virtq_push(&q, 5, 1234), VIRTQ_OK);
	assert_int_equal(get32(USED_GPA + 4), 5);
	assert_int_equal(get32(USED_GPA + 8), 1234);
	assert_int_equal(host(USED_GPA + 2)[0], 1);
	assert_int_equal(virtq_push(&q, 8, 0), VIRTQ_ERR_USED_ID);
}

static void test_virtq_empty_ring_gives_nothing(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got = true;

	(void)state;
	make_queue(&q, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_OK);
	assert_false(got);
}

static void test_virtq_quiet_sets_no_notify_and_reports_late_buffers(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;

	(void)state;
	make_queue(&q, 8);
	assert_false(virtq_set_quiet(&q, true));
	assert_int_equal(host(USED_GPA)[0], VIRTQ_USED_F_NO_NOTIFY); /* used->flags, le16 */
	assert_int_equal(host(USED_GPA)[1], 0);
	/* Nothing arrived meanwhile: back on, nothing to drain. */
	assert_false(virtq_set_quiet(&q, false));
	assert_int_equal(host(USED_GPA)[0], 0);
	/* A buffer offered while quiet (the driver saw the flag and did not kick) is reported
	 * when notifications come back on, and stays there to be popped. */
	virtq_set_quiet(&q, true);
	put_desc(0, BUF_GPA, 16, 0, 0);
	offer(0, 0, 1, 8);
	assert_true(virtq_set_quiet(&q, false));
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_OK);
	assert_true(got);
	assert_false(virtq_set_quiet(&q, false));
	/* A queue that is not set up is left alone. */
	virtq_reset(&q);
	host(USED_GPA)[0] = 0;
	assert_false(virtq_set_quiet(&q, true));
	assert_int_equal(host(USED_GPA)[0], 0);
}

static void test_virtq_rejects_descriptor_loop(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;

	(void)state;
	make_queue(&q, 8);
	put_desc(0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
	offer(0, 0, 1, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_CHAIN_LONG);
	assert_false(got);
}

static void test_virtq_rejects_self_loop(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;

	(void)state;
	make_queue(&q, 256);
	put_desc(9, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 9);
	offer(0, 9, 1, 256);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_CHAIN_LONG);
}

static void test_virtq_rejects_chain_above_limit(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;
	uint16_t n = VIRTQ_CHAIN_MAX + 1;

	(void)state;
	make_queue(&q, 128);
	for (uint16_t i = 0; i < n; i++)
		put_desc(i, BUF_GPA, 1, i + 1 < n ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(0, 0, 1, 128);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_CHAIN_LONG);

	/* Exactly the limit is fine. */
	put_desc(VIRTQ_CHAIN_MAX - 1, BUF_GPA, 1, 0, 0);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_OK);
	assert_true(got);
	assert_int_equal(c.nout, VIRTQ_CHAIN_MAX);
}

static void test_virtq_rejects_out_of_range_head_and_next(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;

	(void)state;
	make_queue(&q, 8);
	offer(0, 8, 1, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_HEAD);

	put_desc(2, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, 8);
	offer(0, 2, 1, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_NEXT);
}

static void test_virtq_rejects_buffers_outside_ram(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;

	(void)state;
	make_queue(&q, 8);
	offer(0, 0, 1, 8);

	put_desc(0, 0, 16, 0, 0); /* below RAM */
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_DESC_RANGE);
	put_desc(0, RAM_GPA + RAM_SIZE - 8, 16, 0, 0); /* crosses the end */
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_DESC_RANGE);
	put_desc(0, BUF_GPA, 0xffffffffu, 0, 0); /* oversized length */
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_DESC_RANGE);
	put_desc(0, UINT64_MAX - 4, 16, 0, 0); /* address + length wraps */
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_DESC_RANGE);
	put_desc(0, RAM_GPA + RAM_SIZE - 16, 16, 0, 0); /* exactly the last bytes: fine */
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_OK);
	assert_true(got);
}

static void test_virtq_refuses_indirect_descriptors(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;

	(void)state;
	make_queue(&q, 8);
	put_desc(0, BUF_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0, 0, 1, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_INDIRECT);
}

static void test_virtq_rejects_readable_after_writable(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;

	(void)state;
	make_queue(&q, 8);
	put_desc(0, BUF_GPA, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, BUF_GPA, 4, 0, 0);
	offer(0, 0, 1, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_ORDER);
}

static void test_virtq_rejects_avail_index_running_ahead(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;

	(void)state;
	make_queue(&q, 8);
	put_desc(0, BUF_GPA, 4, 0, 0);
	offer(0, 0, 9, 8); /* 9 chains offered in an 8-entry ring */
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_AVAIL_IDX);
}

/* A refused chain can be described with the guest's own values, for the log line. */
static void test_virtq_fault_names_what_the_guest_wrote(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	char buf[200];
	bool got;

	(void)state;
	make_queue(&q, 8);
	put_desc(0, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, 3);
	put_desc(3, 0x700000000ULL, 0x10, 0, 0);
	offer(0, 0, 1, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_DESC_RANGE);
	virtq_fault_format(&q, VIRTQ_ERR_DESC_RANGE, buf, sizeof(buf));
	assert_string_equal(buf, "descriptor 3 (addr 0x700000000, len 0x10, flags 0x0, next 0)");

	put_desc(0, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, 9);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_NEXT);
	virtq_fault_format(&q, VIRTQ_ERR_NEXT, buf, sizeof(buf));
	assert_string_equal(buf, "descriptor 0 names next 9, queue size 8");

	put_desc(0, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, 0);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_CHAIN_LONG);
	virtq_fault_format(&q, VIRTQ_ERR_CHAIN_LONG, buf, sizeof(buf));
	assert_string_equal(buf, "the chain from head 0 goes on after 8 descriptors (queue size "
	                         "8, limit 64): descriptor 0 names next 0");

	offer(0, 11, 1, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_HEAD);
	virtq_fault_format(&q, VIRTQ_ERR_HEAD, buf, sizeof(buf));
	assert_string_equal(buf, "head 11, queue size 8");

	offer(0, 0, 0x8000, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_AVAIL_IDX);
	virtq_fault_format(&q, VIRTQ_ERR_AVAIL_IDX, buf, sizeof(buf));
	assert_string_equal(buf, "avail idx 32768, 0 chains consumed, queue size 8");

	virtq_fault_format(&q, VIRTQ_ERR_NOT_READY, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void test_virtq_handles_index_wraparound(void **state)
{
	struct virtq q;
	struct virtq_chain c;
	bool got;

	(void)state;
	make_queue(&q, 8);
	q.last_avail = 0xffff; /* as if 65535 chains had gone by */
	put_desc(4, BUF_GPA, 4, 0, 0);
	put_desc(5, BUF_GPA, 8, 0, 0);
	offer(0xffff, 4, 0xffff, 8);
	offer(0x0000, 5, 0x0001, 8);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_OK);
	assert_true(got);
	assert_int_equal(c.head, 4);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_OK);
	assert_true(got);
	assert_int_equal(c.head, 5);
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_OK);
	assert_false(got);
}

static void test_virtq_setup_rejects_bad_rings(void **state)
{
	struct virtq q;

	(void)state;
	assert_int_equal(virtq_setup(&q, &space, 0, DESC_GPA, AVAIL_GPA, USED_GPA), VIRTQ_ERR_SIZE);
	assert_int_equal(virtq_setup(&q, &space, 12, DESC_GPA, AVAIL_GPA, USED_GPA),
	                 VIRTQ_ERR_SIZE);
	assert_int_equal(virtq_setup(&q, &space, 2048, DESC_GPA, AVAIL_GPA, USED_GPA),
	                 VIRTQ_ERR_SIZE);
	assert_int_equal(virtq_setup(&q, &space, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA),
	                 VIRTQ_ERR_ALIGN);
	assert_int_equal(virtq_setup(&q, &space, 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA),
	                 VIRTQ_ERR_ALIGN);
	assert_int_equal(virtq_setup(&q, &space, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2),
	                 VIRTQ_ERR_ALIGN);
	/* Used ring that would run past the end of RAM. */
	assert_int_equal(virtq_setup(&q, &space, 8, DESC_GPA, AVAIL_GPA, RAM_GPA + RAM_SIZE - 32),
	                 VIRTQ_ERR_RING_RANGE);
	assert_int_equal(virtq_setup(&q, &space, 8, 0xfffffffffffffff0ULL, AVAIL_GPA, USED_GPA),
	                 VIRTQ_ERR_RING_RANGE);
	assert_false(q.ready);
	struct virtq_chain c;
	bool got;
	assert_int_equal(virtq_pop(&q, &c, &got), VIRTQ_ERR_NOT_READY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_virtq_pops_chain_with_readable_then_writable_parts,
		                       setup),
		cmocka_unit_test_setup(test_virtq_push_publishes_used_entry_then_index, setup),
		cmocka_unit_test_setup(test_virtq_empty_ring_gives_nothing, setup),
		cmocka_unit_test_setup(test_virtq_quiet_sets_no_notify_and_reports_late_buffers,
		                       setup),
		cmocka_unit_test_setup(test_virtq_rejects_descriptor_loop, setup),
		cmocka_unit_test_setup(test_virtq_rejects_self_loop, setup),
		cmocka_unit_test_setup(test_virtq_rejects_chain_above_limit, setup),
		cmocka_unit_test_setup(test_virtq_rejects_out_of_range_head_and_next, setup),
		cmocka_unit_test_setup(test_virtq_rejects_buffers_outside_ram, setup),
		cmocka_unit_test_setup(test_virtq_refuses_indirect_descriptors, setup),
		cmocka_unit_test_setup(test_virtq_rejects_readable_after_writable, setup),
		cmocka_unit_test_setup(test_virtq_rejects_avail_index_running_ahead, setup),
		cmocka_unit_test_setup(test_virtq_fault_names_what_the_guest_wrote, setup),
		cmocka_unit_test_setup(test_virtq_handles_index_wraparound, setup),
		cmocka_unit_test_setup(test_virtq_setup_rejects_bad_rings, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-vsock device on its virtio-mmio transport, driven by hand like a driver (rings
 * from the virtio 1.x spec, §2.7), with the engine's host socket in a temporary directory: what
 * happens when the guest's receive queue is broken and the host, not a guest kick, has the next
 * packet. That path runs on the monitor's main thread, and its failure must reach the caller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util/log.h"
#include "vmm/devices/vsock.h"

#define GUEST_CID 16
#define RAM_SIZE 0x40000ULL
#define RX_RING 0x1000 /* desc; avail at +0x1000, used at +0x2000 */
#define RX_BUF 0x10000
#define QSIZE 8
#define TX_RING 0x4000 /* desc; avail at +0x1000, used at +0x2000 */
#define TX_BUF 0x20000

static uint8_t ram[RAM_SIZE];
static struct gpa_space space;
static struct virtio_mmio_dev t;
static struct vsock_dev *dev;
static char dir[64], uds[128];

static void no_irq(void *opaque, unsigned irq)
{
	(void)opaque;
	(void)irq;
}

static int wr(uint64_t off, uint32_t v)
{
	return virtio_mmio_write(&t, off, &v, 4);
}

static int setup(void **state)
{
	struct vsock_dev_config cfg = { .guest_cid = GUEST_CID };
	struct cl_diag d;

	(void)state;
	strcpy(dir, "/tmp/cloister-vsockdev-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "%s/e.vsock", dir);
	cfg.uds_path = uds;
	assert_int_equal(vsock_dev_new(&cfg, &dev, &d), VSOCK_OK);
	memset(ram, 0, sizeof(ram));
	memset(&space, 0, sizeof(space));
	assert_true(gpa_add_region(&space, 0, RAM_SIZE, ram));
	assert_true(
	        virtio_mmio_init(&t, vsock_dev_ops(), dev, &space, 0xd0001000, 6, no_irq, NULL));
	vsock_dev_attach(dev, &t);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	vsock_dev_free(dev);
	virtio_mmio_destroy(&t);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Probe like Linux, with only the rx queue set up: QSIZE device-writable buffers of @len bytes
 * each, all offered. */
static void probe_with_rx_buffers(uint32_t len)
{
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (uint16_t i = 0; i < QSIZE; i++) {
		struct virtq_desc d = { RX_BUF + 0x1000ULL * i, len, VIRTQ_DESC_F_WRITE, 0 };

		memcpy(ram + RX_RING + 16 * i, &d, sizeof(d));
		memcpy(ram + RX_RING + 0x1000 + 4 + 2 * i, &i, 2);
	}
	ram[RX_RING + 0x1000 + 2] = QSIZE; /* avail->idx */
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, RX_RING);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, RX_RING + 0x1000);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, RX_RING + 0x2000);
	assert_int_equal(wr(VIRTIO_MMIO_QUEUE_READY, 1), 0);
	assert_int_equal(wr(VIRTIO_MMIO_STATUS, 0xf), 0);
	assert_int_equal(wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0), 0); /* nothing to deliver yet */
}

/* A parent process connects to the enclave's port 5000; returns its socket. */
static int host_connects(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "CONNECT 5000\n", 13), 13);
	return fd;
}

/* The host's REQUEST is built on the main thread; a 16-byte rx buffer cannot take its header.
 * vsock_dev_host_ready() must say so, with the transport's reason, so the monitor ends the
 * enclave then: before, the failure was only recorded, and a guest that halted waiting for
 * the packet kept its enclave (and the host client) waiting for ever. */
static void test_vsock_dev_host_packet_into_too_small_rx_buffer_fails(void **state)
{
	char why[256] = "";
	int fd, rc = 0;

	(void)state;
	probe_with_rx_buffers(16);
	fd = host_connects();
	/* The engine accepts, then reads the line: a few rounds at most. */
	for (int i = 0; i < 10 && rc == 0; i++)
		rc = vsock_dev_host_ready(dev, why, sizeof(why));
	assert_int_equal(rc, -1);
	assert_true(t.failed);
	assert_string_equal(why, "virtio vsock: rx buffer of 16 bytes cannot hold a packet header");
	close(fd);
}

/* The same host connection with proper buffers: delivered, nothing fails. */
static void test_vsock_dev_host_packet_is_delivered_on_the_main_thread(void **state)
{
	char why[256] = "";
	uint16_t used_idx = 0;
	int fd;

	(void)state;
	probe_with_rx_buffers(0x1000);
	fd = host_connects();
	for (int i = 0; i < 10 && !used_idx; i++) {
		assert_int_equal(vsock_dev_host_ready(dev, why, sizeof(why)), 0);
		memcpy(&used_idx, ram + RX_RING + 0x2000 + 2, 2);
	}
	assert_int_equal(used_idx, 1);
	assert_int_equal(ram[RX_BUF + 30], VSOCK_OP_REQUEST); /* hdr.op, le16 at 30 */
	assert_false(t.failed);
	close(fd);
}

/* Probe with both rx (4 KiB buffers) and tx (QSIZE chains, each one 44-byte REQUEST header from
 * a spoofed source CID, which the engine drops as junk with no reply) set up; nothing offered
 * on tx yet. */
static void probe_with_tx_ring(void)
{
	uint8_t hdr[VSOCK_HDR_LEN] = { 0 };
	uint64_t spoofed = GUEST_CID + 1, parent = 3;
	uint16_t op = VSOCK_OP_REQUEST, type = 1;

	probe_with_rx_buffers(0x1000);
	memcpy(hdr, &spoofed, 8);
	memcpy(hdr + 8, &parent, 8);
	memcpy(hdr + 28, &type, 2);
	memcpy(hdr + 30, &op, 2);
	for (uint16_t i = 0; i < QSIZE; i++) {
		struct virtq_desc d = { TX_BUF + 0x100ULL * i, VSOCK_HDR_LEN, 0, 0 };

		memcpy(ram + TX_BUF + 0x100 * i, hdr, sizeof(hdr));
		memcpy(ram + TX_RING + 16 * i, &d, sizeof(d));
		memcpy(ram + TX_RING + 0x1000 + 4 + 2 * i, &i, 2); /* ring slot i: chain i */
	}
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, TX_RING);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, TX_RING + 0x1000);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, TX_RING + 0x2000);
	assert_int_equal(wr(VIRTIO_MMIO_QUEUE_READY, 1), 0);
}

static uint16_t tx_used_idx(void)
{
	uint16_t v;

	memcpy(&v, ram + TX_RING + 0x2000 + 2, 2);
	return v;
}

/* The guest's "other vCPU": refills the tx ring (avail->idx = used->idx + QSIZE, every entry
 * valid) each time the engine logs a dropped packet, i.e. once per packet, from inside the
 * device's loop, so the ring is never empty while it runs. Stops after refills_left. */
static unsigned refills_left;

static void refill_tx(enum cl_log_level level, const char *msg, void *opaque)
{
	uint16_t idx = (uint16_t)(tx_used_idx() + QSIZE);

	(void)level;
	(void)msg;
	(void)opaque;
	if (refills_left && refills_left--)
		memcpy(ram + TX_RING + 0x1000 + 2, &idx, 2);
}

/* A guest that keeps its tx ring full as fast as the device empties it: one kick must come
 * back after a bounded number of packets, saying there is more (VIRTIO_MMIO_MORE), so the
 * monitor's main thread, which runs it, can see to a SIGTERM and the host's sockets in
 * between. Before, the device drained for as long as the guest kept refilling: for ever. */
static void test_vsock_dev_tx_kick_is_bounded_when_the_guest_keeps_the_ring_full(void **state)
{
	enum cl_log_level old = cl_log_get_level();
	uint16_t flags, idx;
	int rc;

	(void)state;
	probe_with_tx_ring();
	cl_log_set_level(CL_LOG_DEBUG); /* the sink sees every dropped packet */
	cl_log_set_sink(refill_tx, NULL);
	refills_left = 100000; /* without a bound the kick ends here, with 100000 packets taken */
	idx = QSIZE;
	memcpy(ram + TX_RING + 0x1000 + 2, &idx, 2);
	rc = virtio_mmio_kick(&t, 1);
	assert_int_equal(rc, VIRTIO_MMIO_MORE);
	assert_int_equal(tx_used_idx(), 256);
	memcpy(&flags, ram + TX_RING + 0x2000, 2);
	assert_int_equal(flags, VIRTQ_USED_F_NO_NOTIFY); /* the caller comes back: no kicks */

	/* The guest stops refilling: the next kick takes what is left and is done. */
	refills_left = 0;
	rc = virtio_mmio_kick(&t, 1);
	cl_log_set_sink(NULL, NULL);
	cl_log_set_level(old);
	assert_int_equal(rc, 0);
	memcpy(&idx, ram + TX_RING + 0x1000 + 2, 2);
	assert_true(idx > 256);
	assert_int_equal(tx_used_idx(), idx); /* everything offered was taken */
	memcpy(&flags, ram + TX_RING + 0x2000, 2);
	assert_int_equal(flags, 0); /* kicks wanted again */
	assert_false(t.failed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		        test_vsock_dev_host_packet_into_too_small_rx_buffer_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(
		        test_vsock_dev_host_packet_is_delivered_on_the_main_thread, setup,
		        teardown),
		cmocka_unit_test_setup_teardown(
		        test_vsock_dev_tx_kick_is_bounded_when_the_guest_keeps_the_ring_full, setup,
		        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

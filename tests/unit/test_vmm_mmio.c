/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio-mmio transport driven the way the Linux virtio_mmio driver drives it, with a fake
 * device behind it: register values come from the virtio 1.x spec (§4.2.2), not from the code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/virtio/mmio.h"

#define RAM_GPA 0x0ULL
#define RAM_SIZE 0x20000ULL

static uint8_t ram[RAM_SIZE];
static struct gpa_space space;
static struct virtio_mmio_dev dev;
static unsigned irqs, notifies, resets, activations;
static unsigned last_irq;
static int notify_rc; /* what the fake device's notify returns after its work */

static void fake_config_read(void *opaque, uint32_t off, void *buf, uint32_t len)
{
	static const uint8_t cfg[8] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };

	(void)opaque;
	memcpy(buf, cfg + off, len);
}

static int fake_notify(void *opaque, struct virtio_mmio_dev *t, unsigned q)
{
	struct virtq_chain c;
	bool got;

	(void)opaque;
	notifies++;
	if (virtq_pop(&t->q[q].vq, &c, &got) != VIRTQ_OK)
		return -1;
	if (got) {
		virtq_push(&t->q[q].vq, c.head, 0);
		virtio_mmio_signal_used(t, q);
	}
	return notify_rc;
}

static void fake_reset(void *opaque)
{
	(void)opaque;
	resets++;
}

static void fake_activate(void *opaque, struct virtio_mmio_dev *t)
{
	(void)opaque;
	(void)t;
	activations++;
}

static void fake_irq(void *opaque, unsigned irq)
{
	(void)opaque;
	irqs++;
	last_irq = irq;
}

static const struct virtio_dev_ops fake_ops = {
	.name = "fake",
	.device_id = 33,
	.features = 1ULL << 3,
	.num_queues = 2,
	.queue_size_max = 16,
	.config_size = 8,
	.config_read = fake_config_read,
	.activate = fake_activate,
	.notify = fake_notify,
	.reset = fake_reset,
};

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	assert_int_equal(virtio_mmio_read(&dev, off, &v, 4), 0);
	return v;
}

static int wr(uint64_t off, uint32_t v)
{
	return virtio_mmio_write(&dev, off, &v, 4);
}

static int setup(void **state)
{
	(void)state;
	memset(ram, 0, sizeof(ram));
	memset(&space, 0, sizeof(space));
	assert_true(gpa_add_region(&space, RAM_GPA, RAM_SIZE, ram));
	irqs = notifies = resets = activations = 0;
	notify_rc = 0;
	assert_true(virtio_mmio_init(&dev, &fake_ops, NULL, &space, 0xd0000000, 5, fake_irq, NULL));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	virtio_mmio_destroy(&dev);
	return 0;
}

static void negotiate(uint32_t feat_hi)
{
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, feat_hi);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1u << 3);
	wr(VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

static void test_mmio_identifies_as_version_2_device(void **state)
{
	(void)state;
	assert_int_equal(rd(0x000), 0x74726976); /* "virt" */
	assert_int_equal(rd(0x004), 2);
	assert_int_equal(rd(0x008), 33);
	assert_int_equal(rd(0x034), 16); /* QueueNumMax of queue 0 */
	wr(0x030, 2); /* no queue 2 */
	assert_int_equal(rd(0x034), 0);
}

static void test_mmio_offers_version_1_feature(void **state)
{
	(void)state;
	wr(0x014, 0);
	assert_int_equal(rd(0x010), 1u << 3);
	wr(0x014, 1);
	assert_int_equal(rd(0x010), 1u); /* bit 32 = VIRTIO_F_VERSION_1 */
	wr(0x014, 2);
	assert_int_equal(rd(0x010), 0);
}

static void test_mmio_refuses_features_ok_without_version_1(void **state)
{
	(void)state;
	negotiate(0);
	assert_false(rd(0x070) & VIRTIO_STATUS_FEATURES_OK);
	wr(0x070, 0);
	assert_int_equal(resets, 1);
	negotiate(1);
	assert_true(rd(0x070) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_mmio_refuses_features_never_offered(void **state)
{
	(void)state;
	negotiate(1u | 1u << 3); /* bit 35 was not offered */
	assert_false(rd(0x070) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_mmio_reads_config_space_bounded(void **state)
{
	uint8_t b[4];

	(void)state;
	assert_int_equal(virtio_mmio_read(&dev, 0x102, b, 2), 0);
	assert_int_equal(b[0], 0x33);
	assert_int_equal(b[1], 0x44);
	memset(b, 0xaa, sizeof(b));
	assert_int_equal(virtio_mmio_read(&dev, 0x106, b, 4), 0); /* runs past the 8 bytes */
	assert_int_equal(b[0], 0);
}

static void setup_queue0(uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(0x030, 0);
	wr(0x038, 8);
	wr(0x080, (uint32_t)desc);
	wr(0x084, (uint32_t)(desc >> 32));
	wr(0x090, (uint32_t)avail);
	wr(0x094, (uint32_t)(avail >> 32));
	wr(0x0a0, (uint32_t)used);
	wr(0x0a4, (uint32_t)(used >> 32));
}

static void test_mmio_notify_reaches_device_and_interrupts(void **state)
{
	(void)state;
	negotiate(1);
	setup_queue0(0x1000, 0x2000, 0x3000);
	assert_int_equal(wr(0x044, 1), 0);
	assert_int_equal(rd(0x044), 1);
	assert_int_equal(wr(0x070, 0xf), 0);
	assert_int_equal(activations, 1);
	/* One chain: descriptor 0 = 16 bytes at 0x8000; avail idx 1 */
	ram[0x1000 + 1] = 0x80;
	ram[0x1000 + 8] = 16;
	ram[0x2000 + 2] = 1;
	assert_int_equal(wr(0x050, 0), 0);
	assert_int_equal(notifies, 1);
	assert_int_equal(irqs, 1);
	assert_int_equal(last_irq, 5);
	assert_int_equal(rd(0x060), 1); /* used-buffer interrupt */
	wr(0x064, 1);
	assert_int_equal(rd(0x060), 0);
	assert_int_equal(ram[0x3000 + 2], 1); /* used idx */
}

/* Queue 0 ready and live with @n one-descriptor chains made available (heads 0..n-1). */
static void live_queue_with_chains(unsigned n)
{
	negotiate(1);
	setup_queue0(0x1000, 0x2000, 0x3000);
	assert_int_equal(wr(0x044, 1), 0);
	assert_int_equal(wr(0x070, 0xf), 0);
	for (unsigned i = 0; i < n; i++) {
		ram[0x1000 + 16 * i + 1] = 0x80; /* addr 0x8000 */
		ram[0x1000 + 16 * i + 8] = 16; /* len */
		ram[0x2000 + 4 + 2 * i] = (uint8_t)i; /* avail ring slot i: head i */
	}
}

static void test_mmio_no_second_interrupt_before_acknowledgement(void **state)
{
	(void)state;
	live_queue_with_chains(3);
	ram[0x2000 + 2] = 1;
	assert_int_equal(wr(0x050, 0), 0);
	assert_int_equal(irqs, 1);
	/* More used buffers before the driver acknowledged: it has not looked at the queue yet,
	 * and will see them after its acknowledgement, so no new interrupt. */
	ram[0x2000 + 2] = 2;
	assert_int_equal(wr(0x050, 0), 0);
	assert_int_equal(notifies, 2);
	assert_int_equal(irqs, 1);
	assert_int_equal(ram[0x3000 + 2], 2);
	/* Acknowledged: the next used buffer interrupts again. */
	wr(0x064, rd(0x060));
	ram[0x2000 + 2] = 3;
	assert_int_equal(wr(0x050, 0), 0);
	assert_int_equal(irqs, 2);
}

static void test_mmio_kick_without_register_write(void **state)
{
	(void)state;
	live_queue_with_chains(1);
	ram[0x2000 + 2] = 1;
	assert_int_equal(virtio_mmio_kick(&dev, 0), 0); /* as an ioeventfd delivers it */
	assert_int_equal(notifies, 1);
	assert_int_equal(ram[0x3000 + 2], 1);
	assert_int_equal(irqs, 1);
	assert_int_equal(virtio_mmio_kick(&dev, 7), 0); /* no such queue: ignored */
	assert_int_equal(notifies, 1);
	/* A kick that finds a hostile chain fails the device, as a register write would. */
	ram[0x1000 + 16 * 1 + 8] = 1;
	ram[0x1000 + 16 * 1 + 12] = VIRTQ_DESC_F_NEXT;
	ram[0x1000 + 16 * 1 + 14] = 1; /* next = itself */
	ram[0x2000 + 4 + 2] = 1;
	ram[0x2000 + 2] = 2;
	assert_int_equal(virtio_mmio_kick(&dev, 0), -1);
	assert_true(dev.failed);
	assert_int_equal(virtio_mmio_kick(&dev, 0), -1); /* and stays failed */
}

/* A device that stops early with work left (VIRTIO_MMIO_MORE) says so through both ways a kick
 * arrives, so the vCPU or the main thread can come back to it; it is no failure. */
static void test_mmio_device_with_more_work_says_so_on_both_kick_paths(void **state)
{
	(void)state;
	live_queue_with_chains(1);
	ram[0x2000 + 2] = 1;
	notify_rc = VIRTIO_MMIO_MORE;
	assert_int_equal(wr(0x050, 0), VIRTIO_MMIO_MORE);
	assert_int_equal(virtio_mmio_kick(&dev, 0), VIRTIO_MMIO_MORE);
	assert_int_equal(notifies, 2);
	assert_false(dev.failed);
	notify_rc = 0;
	assert_int_equal(virtio_mmio_kick(&dev, 0), 0);
}

static void test_mmio_serves_kick_on_ready_queue_before_driver_ok(void **state)
{
	(void)state;
	negotiate(1);
	setup_queue0(0x1000, 0x2000, 0x3000);
	assert_int_equal(wr(0x044, 1), 0);
	ram[0x1000 + 1] = 0x80;
	ram[0x1000 + 8] = 16;
	ram[0x2000 + 2] = 1;
	assert_int_equal(wr(0x050, 0), 0); /* DRIVER_OK not set yet */
	assert_int_equal(notifies, 1);
	assert_int_equal(ram[0x3000 + 2], 1);
}

static void test_mmio_queue_outside_ram_fails_the_device(void **state)
{
	(void)state;
	negotiate(1);
	setup_queue0(0x1000, 0x2000, RAM_SIZE - 8);
	assert_int_equal(wr(0x044, 1), -1);
	assert_true(dev.failed);
	assert_non_null(strstr(dev.why, "outside guest RAM"));
	assert_int_equal(wr(0x070, 0), -1); /* a failed device stays failed */
}

static void test_mmio_hostile_chain_fails_the_device(void **state)
{
	(void)state;
	negotiate(1);
	setup_queue0(0x1000, 0x2000, 0x3000);
	wr(0x044, 1);
	wr(0x070, 0xf);
	/* descriptor 0 points to itself */
	ram[0x1000 + 8] = 1;
	ram[0x1000 + 12] = VIRTQ_DESC_F_NEXT;
	ram[0x2000 + 2] = 1;
	assert_int_equal(wr(0x050, 0), -1);
	assert_true(dev.failed);
}

static void test_mmio_ignores_odd_width_register_access(void **state)
{
	uint16_t v = 0xffff;

	(void)state;
	assert_int_equal(virtio_mmio_read(&dev, 0x000, &v, 2), 0);
	assert_int_equal(v, 0);
	assert_int_equal(virtio_mmio_write(&dev, 0x070, &v, 2), 0);
	assert_int_equal(rd(0x070), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mmio_identifies_as_version_2_device, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_mmio_offers_version_1_feature, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_mmio_refuses_features_ok_without_version_1,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio_refuses_features_never_offered, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_mmio_reads_config_space_bounded, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_mmio_notify_reaches_device_and_interrupts,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(
		        test_mmio_serves_kick_on_ready_queue_before_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(
		        test_mmio_no_second_interrupt_before_acknowledgement, setup, teardown),
		cmocka_unit_test_setup_teardown(
		        test_mmio_device_with_more_work_says_so_on_both_kick_paths, setup,
		        teardown),
		cmocka_unit_test_setup_teardown(test_mmio_kick_without_register_write, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_mmio_queue_outside_ram_fails_the_device, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_mmio_hostile_chain_fails_the_device, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_mmio_ignores_odd_width_register_access, setup,
		                                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_VIRTIO_MMIO_H
#define CLOISTER_VMM_VIRTIO_MMIO_H

/*
 * The virtio-mmio transport, version 2 (virtio 1.x §4.2.2), generic over devices the way
 * kvmtool's virtio core is: a device supplies a struct virtio_dev_ops and never sees MMIO
 * offsets; the transport never knows what the device does. The transport always offers
 * VIRTIO_F_VERSION_1 (Linux refuses a version-2 device without it) and nothing that changes
 * the ring format (no indirect descriptors, no event index).
 *
 * Thread safety: vCPU threads call virtio_mmio_read/write concurrently; one mutex per device
 * serialises them and the device callbacks run under it. A device that completes work from
 * another thread takes the same lock through virtio_mmio_lock/unlock.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/kvm/gpa.h"
#include "vmm/virtio/virtq.h"

#define VIRTIO_F_VERSION_1 (1ULL << 32)
#define VIRTIO_MMIO_MAX_QUEUES 4
#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x4c434c43 /* "CLCL" */

/* Device status bits (virtio 1.x §2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Register offsets (virtio 1.x §4.2.2) */
enum {
	VIRTIO_MMIO_MAGIC_VALUE = 0x000,
	VIRTIO_MMIO_VERSION = 0x004,
	VIRTIO_MMIO_DEVICE_ID = 0x008,
	VIRTIO_MMIO_VENDOR_ID = 0x00c,
	VIRTIO_MMIO_DEVICE_FEATURES = 0x010,
	VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014,
	VIRTIO_MMIO_DRIVER_FEATURES = 0x020,
	VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024,
	VIRTIO_MMIO_QUEUE_SEL = 0x030,
	VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034,
	VIRTIO_MMIO_QUEUE_NUM = 0x038,
	VIRTIO_MMIO_QUEUE_READY = 0x044,
	VIRTIO_MMIO_QUEUE_NOTIFY = 0x050,
	VIRTIO_MMIO_INTERRUPT_STATUS = 0x060,
	VIRTIO_MMIO_INTERRUPT_ACK = 0x064,
	VIRTIO_MMIO_STATUS = 0x070,
	VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080,
	VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084,
	VIRTIO_MMIO_QUEUE_DRIVER_LOW = 0x090,
	VIRTIO_MMIO_QUEUE_DRIVER_HIGH = 0x094,
	VIRTIO_MMIO_QUEUE_DEVICE_LOW = 0x0a0,
	VIRTIO_MMIO_QUEUE_DEVICE_HIGH = 0x0a4,
	VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc,
	VIRTIO_MMIO_CONFIG = 0x100,
};

struct virtio_mmio_dev;

/* What a device provides. Callbacks run with the transport lock held. A callback that returns
 * a negative value declares the guest hostile: the transport records @why and the monitor ends
 * the enclave. */
struct virtio_dev_ops {
	const char *name;
	uint32_t device_id;
	uint64_t features; /* device-specific feature bits; VERSION_1 is added by the transport */
	unsigned num_queues;
	uint16_t queue_size_max; /* power of two, <= VIRTQ_SIZE_MAX */
	uint32_t config_size;
	/* Copy config bytes [off, off+len) (already bounds-checked against config_size). */
	void (*config_read)(void *opaque, uint32_t off, void *buf, uint32_t len);
	void (*config_write)(void *opaque, uint32_t off, const void *buf, uint32_t len);
	/* The driver set DRIVER_OK: queues are ready to be used. */
	void (*activate)(void *opaque, struct virtio_mmio_dev *t);
	/* The driver kicked queue @q. Returns 0 when done, VIRTIO_MMIO_MORE when the device
	 * stopped early with work left on @q (a guest that refills the queue as fast as it is
	 * emptied must not hold the calling thread for ever): the caller notifies again later. */
	int (*notify)(void *opaque, struct virtio_mmio_dev *t, unsigned q);
	/* The driver wrote 0 to status: forget all device state. */
	void (*reset)(void *opaque);
};

/* What a notification returns (virtio_mmio_write of QueueNotify, virtio_mmio_kick) when the
 * device stopped early with work left on that queue: notify it again, once the caller has seen
 * to anything else it must (a termination signal, the enclave's end). */
#define VIRTIO_MMIO_MORE 1

/* How the transport raises its interrupt line (an edge on IOAPIC pin @irq). */
typedef void (*virtio_irq_fn)(void *opaque, unsigned irq);

struct virtio_mmio_queue {
	struct virtq vq;
	uint16_t num;
	uint64_t desc, driver, device;
};

struct virtio_mmio_dev {
	const struct virtio_dev_ops *ops;
	void *opaque;
	const struct gpa_space *mem;
	uint64_t base;
	unsigned irq;
	virtio_irq_fn raise_irq;
	void *irq_opaque;

	pthread_mutex_t lock;
	uint32_t status;
	uint32_t dev_features_sel, drv_features_sel;
	uint64_t driver_features;
	uint32_t queue_sel;
	uint32_t int_status;
	uint32_t config_generation;
	struct virtio_mmio_queue q[VIRTIO_MMIO_MAX_QUEUES];

	bool failed; /* the guest broke the protocol; the enclave is being ended */
	char why[256]; /* the reason, for the log (the monitor keeps 256 of it) */
};

/* Initialise @t for device @ops/@opaque at MMIO @base with interrupt @irq. Returns false when
 * the ops are inconsistent (too many queues, bad queue size) — a programming error. */
bool virtio_mmio_init(struct virtio_mmio_dev *t, const struct virtio_dev_ops *ops, void *opaque,
                      const struct gpa_space *mem, uint64_t base, unsigned irq,
                      virtio_irq_fn raise_irq, void *irq_opaque);
void virtio_mmio_destroy(struct virtio_mmio_dev *t);

/*
 * A guest access at offset @off inside the device window, @len bytes (1, 2, 4 or 8).
 * Returns 0, or -1 when the guest broke the protocol (t->why says how): end the enclave; a
 * write to QueueNotify may also return VIRTIO_MMIO_MORE (call virtio_mmio_kick for the queue
 * written there again). Reads of undefined registers return 0; writes to them are ignored.
 */
int virtio_mmio_read(struct virtio_mmio_dev *t, uint64_t off, void *data, uint32_t len);
int virtio_mmio_write(struct virtio_mmio_dev *t, uint64_t off, const void *data, uint32_t len);

/* A queue notification that did not come through virtio_mmio_write (an ioeventfd on the
 * QueueNotify register): as if the driver wrote @q there. Takes the lock. Returns 0, -1 when
 * the device is (now) failed: end the enclave, or VIRTIO_MMIO_MORE: kick @q again later. */
int virtio_mmio_kick(struct virtio_mmio_dev *t, unsigned q);

/* For devices: queue @q has new used buffers; interrupt the driver if it wants one. Call with
 * the lock held (from a callback, or between virtio_mmio_lock/unlock). */
void virtio_mmio_signal_used(struct virtio_mmio_dev *t, unsigned q);
/* For devices: the config space changed. */
void virtio_mmio_signal_config(struct virtio_mmio_dev *t);
/* For devices: record a guest protocol violation (lock held). Returns -1 for convenience. */
int virtio_mmio_fail(struct virtio_mmio_dev *t, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* For devices: virtq_pop() or virtq_push() on queue @q (called @what, e.g. "tx"; NULL for a
 * device with one queue) failed with @e: record it with the values the guest gave
 * ("virtio vsock: tx queue 1: <what is wrong>: descriptor 0 (addr ..., len ...)"). Returns -1. */
int virtio_mmio_fail_queue(struct virtio_mmio_dev *t, unsigned q, const char *what,
                           enum virtq_err e);

void virtio_mmio_lock(struct virtio_mmio_dev *t);
void virtio_mmio_unlock(struct virtio_mmio_dev *t);

#endif

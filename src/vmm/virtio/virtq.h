/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_VIRTQ_H
#define CLOISTER_VMM_VIRTQ_H

/*
 * Split virtqueues (virtio 1.x §2.7) as seen by the device, over guest memory that the guest
 * may change at any moment. Every ring and buffer address goes through gpa_translate(); each
 * descriptor is copied out once before it is checked; chains are bounded (VIRTQ_CHAIN_MAX
 * descriptors, never more than the queue size, so a loop ends the walk); indirect descriptors
 * are refused because the transport never offers VIRTIO_F_INDIRECT_DESC. Any violation is
 * reported as an error, and the caller ends the enclave: a driver that breaks the ring protocol
 * is either broken or hostile.
 *
 * No locking: one thread at a time per queue (the transport holds its lock).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/kvm/gpa.h"

#define VIRTQ_SIZE_MAX 1024 /* largest queue the transport offers (power of two) */
#define VIRTQ_CHAIN_MAX 64 /* descriptors in one chain */

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

enum virtq_err {
	VIRTQ_OK = 0,
	VIRTQ_ERR_NOT_READY, /* queue not set up */
	VIRTQ_ERR_SIZE, /* size 0, > VIRTQ_SIZE_MAX or not a power of two */
	VIRTQ_ERR_ALIGN, /* ring address misaligned */
	VIRTQ_ERR_RING_RANGE, /* a ring is not wholly inside guest RAM */
	VIRTQ_ERR_AVAIL_IDX, /* avail->idx ran more than the queue size ahead */
	VIRTQ_ERR_HEAD, /* head index >= queue size */
	VIRTQ_ERR_NEXT, /* next index >= queue size */
	VIRTQ_ERR_CHAIN_LONG, /* chain longer than allowed: a loop or an oversized chain */
	VIRTQ_ERR_DESC_RANGE, /* a buffer is not wholly inside guest RAM */
	VIRTQ_ERR_INDIRECT, /* indirect descriptor (not negotiated) */
	VIRTQ_ERR_ORDER, /* device-readable descriptor after a device-writable one */
	VIRTQ_ERR_USED_ID, /* device bug: pushing an id >= queue size */
};

const char *virtq_strerror(enum virtq_err e);

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* What virtq_pop() read when it refused a chain, for the log line: the guest's own values, so
 * the line says what the driver did (which descriptor, which address and length). */
struct virtq_fault {
	uint16_t avail_idx; /* the driver's avail->idx */
	uint16_t head; /* the chain's head index */
	uint16_t index; /* the descriptor refused (or the out-of-range next index it named) */
	unsigned walked; /* descriptors accepted before it */
	struct virtq_desc desc; /* its copy */
};

struct virtq {
	const struct gpa_space *mem;
	uint16_t size;
	struct virtq_desc *desc; /* host views of the three rings, fixed at setup */
	uint8_t *avail;
	uint8_t *used;
	uint16_t last_avail; /* next avail ring slot the device consumes */
	uint16_t used_idx; /* next used ring slot the device fills */
	bool ready;
	struct virtq_fault fault; /* set when virtq_pop() fails */
};

/* One buffer of a chain: a host pointer already checked for its whole length. */
struct virtq_seg {
	uint8_t *ptr;
	uint32_t len;
};

/* A popped chain: nout device-readable segments first, then nin device-writable ones. */
struct virtq_chain {
	uint16_t head;
	unsigned nout, nin;
	uint64_t out_len, in_len;
	struct virtq_seg seg[VIRTQ_CHAIN_MAX];
};

/*
 * Validate and map a queue the driver configured: @size entries, descriptor table at @desc,
 * available ring at @avail, used ring at @used (guest-physical). On success the queue is ready
 * and both ring positions are 0.
 */
enum virtq_err virtq_setup(struct virtq *q, const struct gpa_space *mem, uint16_t size,
                           uint64_t desc, uint64_t avail, uint64_t used);

void virtq_reset(struct virtq *q);

/*
 * Take the next available chain. Returns VIRTQ_OK with *got false when the ring is empty, or
 * with *got true and @c filled. On error nothing was consumed and the queue must not be used
 * again (the enclave is ended).
 */
enum virtq_err virtq_pop(struct virtq *q, struct virtq_chain *c, bool *got);

/*
 * Describe the last virtq_pop() failure @e of @q with the values the guest gave ("descriptor 0
 * (addr 0x700000000, len 0x10, flags 0x1, next 1)"), into @buf of @len bytes; "" for errors
 * that carry no values. Returns what snprintf() returns.
 */
int virtq_fault_format(const struct virtq *q, enum virtq_err e, char *buf, size_t len);

/* Return chain @head to the driver with @len bytes written into its writable part. */
enum virtq_err virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* Whether the driver wants an interrupt now (it may suppress them with VIRTQ_AVAIL_F_*). */
bool virtq_wants_interrupt(const struct virtq *q);

/*
 * Ask the driver not to notify (kick) this queue while the device is busy draining it
 * (@quiet, VIRTQ_USED_F_NO_NOTIFY), or to notify again (!@quiet). Turning notifications back on
 * returns true if buffers became available in the meantime, which the device must then
 * drain itself: their driver may have seen the flag and not kicked. A hint only, as the spec
 * says: kicks may still come.
 */
bool virtq_set_quiet(struct virtq *q, bool quiet);

/* Copy up to @len bytes from the chain's readable part (starting at @off) into @dst; returns the
 * number copied. Helpers for devices, bounded by the segment lengths already checked. */
uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len);
/* Copy into the writable part; returns bytes written. */
uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src,
                           uint64_t len);

#endif

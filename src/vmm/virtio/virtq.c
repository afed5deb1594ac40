/* SPDX-License-Identifier: Apache-2.0 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/checked.h"
#include "vmm/virtio/virtq.h"

/* Ring layouts (virtio 1.x §2.7): avail = flags u16, idx u16, ring[size] u16, used_event u16;
 * used = flags u16, idx u16, ring[size] {id u32, len u32}, avail_event u16. */
#define AVAIL_BYTES(n) (6ULL + 2ULL * (n))
#define USED_BYTES(n) (6ULL + 8ULL * (n))

const char *virtq_strerror(enum virtq_err e)
{
	switch (e) {
	case VIRTQ_OK:
		return "success";
	case VIRTQ_ERR_NOT_READY:
		return "queue used before it was set up";
	case VIRTQ_ERR_SIZE:
		return "queue size is 0, not a power of two or above the maximum";
	case VIRTQ_ERR_ALIGN:
		return "ring address is misaligned";
	case VIRTQ_ERR_RING_RANGE:
		return "ring lies outside guest RAM";
	case VIRTQ_ERR_AVAIL_IDX:
		return "available index ran ahead by more than the queue size";
	case VIRTQ_ERR_HEAD:
		return "chain head index out of range";
	case VIRTQ_ERR_NEXT:
		return "descriptor next index out of range";
	case VIRTQ_ERR_CHAIN_LONG:
		return "descriptor chain too long (loop or oversized chain)";
	case VIRTQ_ERR_DESC_RANGE:
		return "descriptor buffer lies outside guest RAM";
	case VIRTQ_ERR_INDIRECT:
		return "indirect descriptor, but VIRTIO_F_INDIRECT_DESC is not offered";
	case VIRTQ_ERR_ORDER:
		return "device-readable descriptor after a device-writable one";
	case VIRTQ_ERR_USED_ID:
		return "used id out of range";
	}
	return "unknown virtqueue error";
}

static uint16_t load_le16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v; /* x86_64 only: little-endian host */
}

static uint16_t load_acquire16(const uint8_t *p)
{
	/* Ring offsets are even and ring bases 2-aligned (checked in setup). */
	return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE);
}

enum virtq_err virtq_setup(struct virtq *q, const struct gpa_space *mem, uint16_t size,
                           uint64_t desc, uint64_t avail, uint64_t used)
{
	void *d, *a, *u;

	virtq_reset(q);
	if (size == 0 || size > VIRTQ_SIZE_MAX || (size & (size - 1)))
		return VIRTQ_ERR_SIZE;
	if ((desc & 15) || (avail & 1) || (used & 3))
		return VIRTQ_ERR_ALIGN;
	d = gpa_translate(mem, desc, 16ULL * size);
	a = gpa_translate(mem, avail, AVAIL_BYTES(size));
	u = gpa_translate(mem, used, USED_BYTES(size));
	if (!d || !a || !u)
		return VIRTQ_ERR_RING_RANGE;
	q->mem = mem;
	q->size = size;
	q->desc = d;
	q->avail = a;
	q->used = u;
	q->ready = true;
	return VIRTQ_OK;
}

void virtq_reset(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

enum virtq_err virtq_pop(struct virtq *q, struct virtq_chain *c, bool *got)
{
	uint16_t avail_idx, head, idx;
	bool seen_write = false;
	unsigned n = 0;

	*got = false;
	if (!q->ready)
		return VIRTQ_ERR_NOT_READY;
	avail_idx = load_acquire16(q->avail + 2);
	if (avail_idx == q->last_avail)
		return VIRTQ_OK;
	memset(&q->fault, 0, sizeof(q->fault));
	q->fault.avail_idx = avail_idx;
	if ((uint16_t)(avail_idx - q->last_avail) > q->size)
		return VIRTQ_ERR_AVAIL_IDX;
	head = load_le16(q->avail + 4 + 2 * (q->last_avail % q->size));
	q->fault.head = q->fault.index = head;
	if (head >= q->size)
		return VIRTQ_ERR_HEAD;

	memset(c, 0, offsetof(struct virtq_chain, seg));
	c->head = head;
	idx = head;
	for (;;) {
		struct virtq_desc d;
		void *p;

		/* A chain visits each descriptor at most once, so more steps than the queue size
		 * (or our own limit) means a loop or an oversized chain. */
		if (n >= VIRTQ_CHAIN_MAX || n >= q->size) {
			q->fault.walked = n;
			return VIRTQ_ERR_CHAIN_LONG;
		}
		/* Copy once, then check the copy: the guest may rewrite the table under us. */
		memcpy(&d, &q->desc[idx], sizeof(d));
		q->fault.index = idx;
		q->fault.walked = n;
		q->fault.desc = d;
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return VIRTQ_ERR_INDIRECT;
		p = gpa_translate(q->mem, d.addr, d.len);
		if (!p)
			return VIRTQ_ERR_DESC_RANGE;
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			seen_write = true;
			c->nin++;
			c->in_len += d.len;
		} else {
			if (seen_write)
				return VIRTQ_ERR_ORDER;
			c->nout++;
			c->out_len += d.len;
		}
		c->seg[n].ptr = p;
		c->seg[n].len = d.len;
		n++;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= q->size)
			return VIRTQ_ERR_NEXT;
		idx = d.next;
	}
	q->last_avail++;
	*got = true;
	return VIRTQ_OK;
}

int virtq_fault_format(const struct virtq *q, enum virtq_err e, char *buf, size_t len)
{
	const struct virtq_fault *f = &q->fault;

	switch (e) {
	case VIRTQ_ERR_AVAIL_IDX:
		return snprintf(buf, len, "avail idx %u, %u chains consumed, queue size %u",
		                f->avail_idx, q->last_avail, q->size);
	case VIRTQ_ERR_HEAD:
		return snprintf(buf, len, "head %u, queue size %u", f->head, q->size);
	case VIRTQ_ERR_NEXT:
		return snprintf(buf, len, "descriptor %u names next %u, queue size %u", f->index,
		                f->desc.next, q->size);
	case VIRTQ_ERR_CHAIN_LONG:
		return snprintf(buf, len,
		                "the chain from head %u goes on after %u descriptors (queue size "
		                "%u, limit %u): descriptor %u names next %u",
		                f->head, f->walked, q->size, VIRTQ_CHAIN_MAX, f->index,
		                f->desc.next);
	case VIRTQ_ERR_DESC_RANGE:
	case VIRTQ_ERR_INDIRECT:
	case VIRTQ_ERR_ORDER:
		return snprintf(buf, len,
		                "descriptor %u (addr 0x%llx, len 0x%x, flags 0x%x, next %u)",
		                f->index, (unsigned long long)f->desc.addr, f->desc.len,
		                f->desc.flags, f->desc.next);
	default:
		return snprintf(buf, len, "%s", "");
	}
}

enum virtq_err virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	uint8_t *slot;
	uint32_t id = head;

	if (!q->ready)
		return VIRTQ_ERR_NOT_READY;
	if (head >= q->size)
		return VIRTQ_ERR_USED_ID;
	slot = q->used + 4 + 8 * (q->used_idx % q->size);
	memcpy(slot, &id, 4);
	memcpy(slot + 4, &len, 4);
	q->used_idx++;
	/* The entry must be visible before the index that publishes it. */
	__atomic_store_n((uint16_t *)(void *)(q->used + 2), q->used_idx, __ATOMIC_RELEASE);
	return VIRTQ_OK;
}

bool virtq_wants_interrupt(const struct virtq *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(load_le16(q->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

bool virtq_set_quiet(struct virtq *q, bool quiet)
{
	if (!q->ready)
		return false;
	__atomic_store_n((uint16_t *)(void *)q->used, quiet ? VIRTQ_USED_F_NO_NOTIFY : 0,
	                 __ATOMIC_RELAXED);
	if (quiet)
		return false;
	/* The flag must be visible before we look at the index the driver published under it. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load_acquire16(q->avail + 2) != q->last_avail;
}

uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len)
{
	uint8_t *out = dst;
	uint64_t done = 0;

	for (unsigned i = 0; i < c->nout && done < len; i++) {
		const struct virtq_seg *s = &c->seg[i];
		uint64_t n;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off;
		if (n > len - done)
			n = len - done;
		memcpy(out + done, s->ptr + off, n);
		done += n;
		off = 0;
	}
	return done;
}

uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, uint64_t len)
{
	const uint8_t *in = src;
	uint64_t done = 0;

	for (unsigned i = c->nout; i < c->nout + c->nin && done < len; i++) {
		const struct virtq_seg *s = &c->seg[i];
		uint64_t n;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off;
		if (n > len - done)
			n = len - done;
		memcpy(s->ptr + off, in + done, n);
		done += n;
		off = 0;
	}
	return done;
}

/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/virtio/mmio.h"

#define INT_USED_BUFFER 1u
#define INT_CONFIG_CHANGE 2u

bool virtio_mmio_init(struct virtio_mmio_dev *t, const struct virtio_dev_ops *ops, void *opaque,
                      const struct gpa_space *mem, uint64_t base, unsigned irq,
                      virtio_irq_fn raise_irq, void *irq_opaque)
{
	uint16_t qmax = ops->queue_size_max;

	if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MMIO_MAX_QUEUES || qmax == 0 ||
	    qmax > VIRTQ_SIZE_MAX || (qmax & (qmax - 1)))
		return false;
	memset(t, 0, sizeof(*t));
	t->ops = ops;
	t->opaque = opaque;
	t->mem = mem;
	t->base = base;
	t->irq = irq;
	t->raise_irq = raise_irq;
	t->irq_opaque = irq_opaque;
	pthread_mutex_init(&t->lock, NULL);
	return true;
}

void virtio_mmio_destroy(struct virtio_mmio_dev *t)
{
	pthread_mutex_destroy(&t->lock);
}

void virtio_mmio_lock(struct virtio_mmio_dev *t)
{
	pthread_mutex_lock(&t->lock);
}

void virtio_mmio_unlock(struct virtio_mmio_dev *t)
{
	pthread_mutex_unlock(&t->lock);
}

int virtio_mmio_fail(struct virtio_mmio_dev *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return -1; /* keep the first reason */
	n = snprintf(t->why, sizeof(t->why), "virtio %s: ", t->ops->name);
	if (n < 0 || (size_t)n >= sizeof(t->why))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(t->why + n, sizeof(t->why) - (size_t)n, fmt, ap);
	va_end(ap);
	t->failed = true;
	t->status |= VIRTIO_STATUS_NEEDS_RESET;
	return -1;
}

int virtio_mmio_fail_queue(struct virtio_mmio_dev *t, unsigned q, const char *what,
                           enum virtq_err e)
{
	char detail[160] = "";

	if (q < t->ops->num_queues)
		virtq_fault_format(&t->q[q].vq, e, detail, sizeof(detail));
	return virtio_mmio_fail(t, "%s%squeue %u: %s%s%s", what ? what : "", what ? " " : "", q,
	                        virtq_strerror(e), detail[0] ? ": " : "", detail);
}

/* Set @bits in InterruptStatus and pulse the line, unless they were all set already: then the
 * driver has not acknowledged the last interrupt yet, and it looks at every queue only after
 * its acknowledgement, so it will see what is new without another (costly) interrupt. */
static void raise(struct virtio_mmio_dev *t, uint32_t bits)
{
	uint32_t before = t->int_status;

	t->int_status |= bits;
	if ((before & bits) != bits && t->raise_irq)
		t->raise_irq(t->irq_opaque, t->irq);
}

void virtio_mmio_signal_used(struct virtio_mmio_dev *t, unsigned q)
{
	if (q < t->ops->num_queues && virtq_wants_interrupt(&t->q[q].vq))
		raise(t, INT_USED_BUFFER);
}

void virtio_mmio_signal_config(struct virtio_mmio_dev *t)
{
	t->config_generation++;
	raise(t, INT_CONFIG_CHANGE);
}

static void device_reset(struct virtio_mmio_dev *t)
{
	if (t->ops->reset)
		t->ops->reset(t->opaque);
	t->status = 0;
	t->dev_features_sel = t->drv_features_sel = 0;
	t->driver_features = 0;
	t->queue_sel = 0;
	t->int_status = 0;
	memset(t->q, 0, sizeof(t->q));
}

static struct virtio_mmio_queue *sel_queue(struct virtio_mmio_dev *t)
{
	return t->queue_sel < t->ops->num_queues ? &t->q[t->queue_sel] : NULL;
}

static uint32_t reg_read(struct virtio_mmio_dev *t, uint64_t off)
{
	struct virtio_mmio_queue *q = sel_queue(t);
	uint64_t feat = t->ops->features | VIRTIO_F_VERSION_1;

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->dev_features_sel > 1)
			return 0;
		return (uint32_t)(feat >> (32 * t->dev_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? t->ops->queue_size_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->vq.ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return t->int_status;
	case VIRTIO_MMIO_STATUS:
		return t->status;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_generation;
	default:
		return 0;
	}
}

static void set_half(uint64_t *v, bool high, uint32_t val)
{
	if (high)
		*v = (*v & 0xffffffffULL) | (uint64_t)val << 32;
	else
		*v = (*v & ~0xffffffffULL) | val;
}

static int status_write(struct virtio_mmio_dev *t, uint32_t val)
{
	uint64_t offered = t->ops->features | VIRTIO_F_VERSION_1;

	if (val == 0) {
		device_reset(t);
		return 0;
	}
	if ((val & VIRTIO_STATUS_FEATURES_OK) && !(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		/* Refuse features we never offered, and legacy drivers: the driver reads status
		 * back, sees FEATURES_OK missing and gives up (virtio 1.x §3.1.1). */
		if ((t->driver_features & ~offered) || !(t->driver_features & VIRTIO_F_VERSION_1))
			val &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
	}
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_DRIVER_OK)) {
		t->status = val;
		if (t->ops->activate)
			t->ops->activate(t->opaque, t);
		return 0;
	}
	t->status = val;
	return 0;
}

/* The driver kicked queue @q (QueueNotify, or its ioeventfd). Lock held. */
static int notify(struct virtio_mmio_dev *t, uint32_t q)
{
	int rc;

	if (q >= t->ops->num_queues || !t->q[q].vq.ready)
		return 0; /* a kick for nothing: harmless */
	/* Not gated on DRIVER_OK: Linux's nsm driver registers its hwrng inside probe, and the
	 * hwrng thread queues and kicks a GetRandom before the core sets DRIVER_OK. Ignoring
	 * that kick left the request (and the driver's lock) hanging for its 2-minute timeout.
	 * QEMU serves such kicks too. */
	if (!t->ops->notify)
		return 0;
	rc = t->ops->notify(t->opaque, t, q);
	if (rc < 0)
		return virtio_mmio_fail(t, "queue %u failed", q);
	return rc == VIRTIO_MMIO_MORE ? VIRTIO_MMIO_MORE : 0;
}

int virtio_mmio_kick(struct virtio_mmio_dev *t, unsigned q)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = t->failed ? -1 : notify(t, q);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static int reg_write(struct virtio_mmio_dev *t, uint64_t off, uint32_t val)
{
	struct virtio_mmio_queue *q = sel_queue(t);
	enum virtq_err e;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_features_sel = val;
		return 0;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_features_sel = val;
		return 0;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (t->drv_features_sel <= 1 && !(t->status & VIRTIO_STATUS_FEATURES_OK))
			set_half(&t->driver_features, t->drv_features_sel == 1, val);
		return 0;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = val;
		return 0;
	case VIRTIO_MMIO_STATUS:
		return status_write(t, val);
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t->int_status &= ~val;
		return 0;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		return notify(t, val);
	default:
		break;
	}
	if (!q || q->vq.ready) {
		/* Queue registers of a missing or live queue: ignored, as the spec asks of the
		 * driver not to do it. */
		if (q && off == VIRTIO_MMIO_QUEUE_READY && val == 0)
			virtq_reset(&q->vq);
		return 0;
	}
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		q->num = (uint16_t)(val > 0xffff ? 0 : val);
		return 0;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		set_half(&q->desc, false, val);
		return 0;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_half(&q->desc, true, val);
		return 0;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
		set_half(&q->driver, false, val);
		return 0;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		set_half(&q->driver, true, val);
		return 0;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
		set_half(&q->device, false, val);
		return 0;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		set_half(&q->device, true, val);
		return 0;
	case VIRTIO_MMIO_QUEUE_READY:
		if (val != 1)
			return 0;
		if (q->num > t->ops->queue_size_max)
			return virtio_mmio_fail(t, "queue %u size %u above the maximum %u",
			                        t->queue_sel, q->num, t->ops->queue_size_max);
		e = virtq_setup(&q->vq, t->mem, q->num, q->desc, q->driver, q->device);
		if (e != VIRTQ_OK)
			return virtio_mmio_fail(t,
			                        "queue %u (size %u, desc 0x%llx, avail 0x%llx, "
			                        "used 0x%llx): %s",
			                        t->queue_sel, q->num, (unsigned long long)q->desc,
			                        (unsigned long long)q->driver,
			                        (unsigned long long)q->device, virtq_strerror(e));
		return 0;
	default:
		return 0;
	}
}

int virtio_mmio_read(struct virtio_mmio_dev *t, uint64_t off, void *data, uint32_t len)
{
	memset(data, 0, len);
	pthread_mutex_lock(&t->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t coff = off - VIRTIO_MMIO_CONFIG;

		if (t->ops->config_read && len <= t->ops->config_size &&
		    coff <= t->ops->config_size - len)
			t->ops->config_read(t->opaque, (uint32_t)coff, data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v = reg_read(t, off);

		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int virtio_mmio_write(struct virtio_mmio_dev *t, uint64_t off, const void *data, uint32_t len)
{
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (t->failed) {
		rc = -1;
	} else if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t coff = off - VIRTIO_MMIO_CONFIG;

		if (t->ops->config_write && len <= t->ops->config_size &&
		    coff <= t->ops->config_size - len)
			t->ops->config_write(t->opaque, (uint32_t)coff, data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v;

		memcpy(&v, data, 4);
		rc = reg_write(t, off, v);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "vmm/devices/nsm.h"

void virtio_nsm_init(struct virtio_nsm *dev, const struct nsm_backend *be, void *nsm)
{
	memset(dev, 0, sizeof(*dev));
	dev->be = be;
	dev->nsm = nsm;
}

void virtio_nsm_destroy(struct virtio_nsm *dev)
{
	if (dev->nsm)
		dev->be->close(dev->nsm);
	dev->nsm = NULL;
}

/* Keep the first NSM_REQUEST_MAX bytes and the true length: nsm_handle_request() answers
 * anything longer with InputTooLarge without reading it. */
static void take_request(struct virtio_nsm *dev, const struct virtq_chain *c)
{
	dev->pending_len = c->out_len;
	virtq_chain_read(c, 0, dev->req,
	                 c->out_len < NSM_REQUEST_MAX ? c->out_len : NSM_REQUEST_MAX);
}

/* Answer the stashed request into the writable part of @c; returns the bytes written or -1. */
static int64_t answer(struct virtio_nsm *dev, struct virtio_mmio_dev *t,
                      const struct virtq_chain *c)
{
	size_t cap = c->in_len < NSM_RESPONSE_MAX ? (size_t)c->in_len : NSM_RESPONSE_MAX;
	size_t len = 0;
	int err;

	err = dev->be->handle(dev->nsm, dev->req, dev->pending_len, dev->resp, cap, &len);
	if (err)
		return virtio_mmio_fail(t,
		                        "cannot answer into a %llu-byte buffer: %s "
		                        "(the driver gives 0x3000)",
		                        (unsigned long long)c->in_len,
		                        dev->be->strerror(dev->nsm, err));
	virtq_chain_write(c, 0, dev->resp, len);
	dev->requests++;
	return (int64_t)len;
}

/*
 * One answer per call, then VIRTIO_MMIO_MORE: the vCPU thread that took the kick asks again
 * after checking the enclave still runs (vcpu.c). An answer can take milliseconds (an ECDSA
 * signature), and a guest whose other vCPU keeps refilling the queue would otherwise keep this
 * thread here for as long as it liked, past a terminate-enclave that waits for it.
 */
static int nsm_notify(void *opaque, struct virtio_mmio_dev *t, unsigned q)
{
	struct virtio_nsm *dev = opaque;
	struct virtq *vq = &t->q[q].vq;
	bool used = false;

	for (;;) {
		struct virtq_chain c;
		enum virtq_err e;
		bool got;
		int64_t n;

		e = virtq_pop(vq, &c, &got);
		if (e != VIRTQ_OK)
			return virtio_mmio_fail_queue(t, q, NULL, e);
		if (!got)
			break;
		if (c.nout && c.nin) {
			/* Request and response in one chain. */
			take_request(dev, &c);
			if ((n = answer(dev, t, &c)) < 0)
				return -1;
			virtq_push(vq, c.head, (uint32_t)n);
		} else if (c.nout) {
			if (dev->pending)
				return virtio_mmio_fail(t, "a second request before the response "
				                           "buffer of the first");
			take_request(dev, &c);
			dev->pending = true;
			dev->pending_head = c.head;
			continue;
		} else {
			if (!dev->pending || !c.nin)
				return virtio_mmio_fail(t, "a response buffer without a request");
			if ((n = answer(dev, t, &c)) < 0)
				return -1;
			/* The driver expects the request token back first, then the response. */
			virtq_push(vq, dev->pending_head, 0);
			virtq_push(vq, c.head, (uint32_t)n);
			dev->pending = false;
		}
		used = true;
		break;
	}
	if (used)
		virtio_mmio_signal_used(t, q);
	return used ? VIRTIO_MMIO_MORE : 0;
}

static void nsm_reset(void *opaque)
{
	struct virtio_nsm *dev = opaque;

	/* Forget the queue, keep the PCRs. */
	dev->pending = false;
}

const struct virtio_dev_ops virtio_nsm_ops = {
	.name = "virtio-nsm",
	.device_id = VIRTIO_ID_NSM,
	.features = 0,
	.num_queues = 1,
	.queue_size_max = VIRTIO_NSM_QUEUE_SIZE,
	.config_size = 0,
	.notify = nsm_notify,
	.reset = nsm_reset,
};

/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "lib/util/log.h"
#include "vmm/devices/virtio_nsm.h"

/* Answer the request in n->req (@req_len bytes) into the writable part of @resp_chain. Returns
 * the response length. */
static uint32_t answer(struct virtio_nsm *n, size_t req_len, const struct virtq_chain *resp_chain)
{
	size_t cap = resp_chain->in_len < sizeof(n->resp) ? (size_t)resp_chain->in_len
	                                                  : sizeof(n->resp);
	size_t resp_len = 0;

	if (nsm_handle_request(n->state, n->req, req_len, n->resp, cap, &resp_len) != NSM_OK) {
		cl_warn("nsm: no response fits the guest's %zu-byte buffer", cap);
		resp_len = 0;
	}
	return (uint32_t)virtq_chain_write(resp_chain, 0, n->resp, resp_len);
}

/*
 * The Linux driver (drivers/misc/nsm.c, nitro-compat §4) queues a request as two buffers: the
 * request as one readable chain, then the 0x3000-byte response buffer as one writable chain,
 * and expects them back in that order. A single chain with both parts is accepted too. Anything
 * else (a response buffer with no request before it, two requests in a row) is not something a
 * correct driver does: the enclave is ended.
 */
static int nsm_notify(void *opaque, struct virtio_mmio_dev *t, unsigned qidx)
{
	struct virtio_nsm *n = opaque;
	struct virtq *q = &t->q[qidx].vq;
	bool any = false;

	for (;;) {
		struct virtq_chain c;
		enum virtq_err e;
		uint32_t len;
		bool got;

		e = virtq_pop(q, &c, &got);
		if (e != VIRTQ_OK)
			return virtio_mmio_fail(t, "request queue: %s", virtq_strerror(e));
		if (!got)
			break;
		if (c.nout && c.nin) {
			/* Request and response in one chain. Longer than NSM_REQUEST_MAX: one
			 * byte more goes to the library, which answers InputTooLarge. */
			len = answer(n, (size_t)virtq_chain_read(&c, 0, n->req, sizeof(n->req)),
			             &c);
			e = virtq_push(q, c.head, len);
		} else if (c.nout) {
			if (n->have_req)
				return virtio_mmio_fail(t,
				                        "request chain %u follows request chain %u "
				                        "without a response buffer",
				                        c.head, n->req_head);
			n->req_len = (size_t)virtq_chain_read(&c, 0, n->req, sizeof(n->req));
			n->req_head = c.head;
			n->have_req = true;
			continue;
		} else {
			if (!n->have_req)
				return virtio_mmio_fail(t,
				                        "response buffer chain %u with no request "
				                        "before it",
				                        c.head);
			len = answer(n, n->req_len, &c);
			n->have_req = false;
			/* The driver expects the request back first, then the response. */
			e = virtq_push(q, n->req_head, 0);
			if (e == VIRTQ_OK)
				e = virtq_push(q, c.head, len);
		}
		if (e != VIRTQ_OK)
			return virtio_mmio_fail(t, "request queue: %s", virtq_strerror(e));
		any = true;
	}
	if (any)
		virtio_mmio_signal_used(t, qidx);
	return 0;
}

static void nsm_reset(void *opaque)
{
	struct virtio_nsm *n = opaque;

	n->have_req = false;
}

const struct virtio_dev_ops virtio_nsm_ops = {
	.name = "nsm",
	.device_id = VIRTIO_ID_NSM,
	.features = 0,
	.num_queues = 1,
	.queue_size_max = 8,
	.config_size = 0,
	.notify = nsm_notify,
	.reset = nsm_reset,
};

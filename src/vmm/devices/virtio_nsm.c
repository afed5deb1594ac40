/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "lib/util/log.h"
#include "vmm/devices/virtio_nsm.h"

/* One chain = one request. A chain without a readable request or a writable response buffer
 * is not something the Linux driver sends: the guest is broken or hostile. */
static int nsm_notify(void *opaque, struct virtio_mmio_dev *t, unsigned qidx)
{
	struct virtio_nsm *n = opaque;
	struct virtq *q = &t->q[qidx].vq;
	bool any = false;

	for (;;) {
		struct virtq_chain c;
		enum virtq_err e;
		size_t req_len, resp_len = 0, cap;
		bool got;

		e = virtq_pop(q, &c, &got);
		if (e != VIRTQ_OK)
			return virtio_mmio_fail(t, "request queue: %s", virtq_strerror(e));
		if (!got)
			break;
		if (c.nout == 0 || c.nin == 0)
			return virtio_mmio_fail(t,
			                        "request chain %u has %u readable and %u writable "
			                        "buffers; need a request and a response buffer",
			                        c.head, c.nout, c.nin);
		/* Longer than NSM_REQUEST_MAX: hand over one byte more so the library answers
		 * InputTooLarge, as the AWS NSM does. */
		req_len = (size_t)virtq_chain_read(&c, 0, n->req, sizeof(n->req));
		cap = c.in_len < sizeof(n->resp) ? (size_t)c.in_len : sizeof(n->resp);
		if (nsm_handle_request(n->state, n->req, req_len, n->resp, cap, &resp_len) !=
		    NSM_OK) {
			cl_warn("nsm: no response fits the guest's %zu-byte buffer", cap);
			resp_len = 0;
		}
		virtq_chain_write(&c, 0, n->resp, resp_len);
		e = virtq_push(q, c.head, (uint32_t)resp_len);
		if (e != VIRTQ_OK)
			return virtio_mmio_fail(t, "request queue: %s", virtq_strerror(e));
		any = true;
	}
	if (any)
		virtio_mmio_signal_used(t, qidx);
	return 0;
}

const struct virtio_dev_ops virtio_nsm_ops = {
	.name = "nsm",
	.device_id = VIRTIO_ID_NSM,
	.features = 0,
	.num_queues = 1,
	.queue_size_max = 8,
	.config_size = 0,
	.notify = nsm_notify,
};

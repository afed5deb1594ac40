/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_VIRTIO_NSM_H
#define CLOISTER_VMM_VIRTIO_NSM_H

/*
 * The virtio-nsm device (virtio id 33, nitro-compat §4): one request queue. The Linux nsm driver
 * queues each request as a readable chain holding the CBOR request followed by a writable chain
 * of NSM_RESPONSE_MAX bytes for the response. The bytes go to the NSM library (src/lib/nsm),
 * which knows nothing about virtqueues; this file knows nothing about CBOR.
 */

#include "lib/nsm/device.h"
#include "vmm/virtio/mmio.h"

#define VIRTIO_ID_NSM 33

struct virtio_nsm {
	struct nsm_state *state; /* borrowed: owned by whoever configured the enclave */
	bool have_req; /* a request chain is waiting for its response buffer */
	uint16_t req_head;
	size_t req_len;
	uint8_t req[NSM_REQUEST_MAX + 1];
	uint8_t resp[NSM_RESPONSE_MAX];
};

/* The ops to register with virtio_mmio_init(&t, &virtio_nsm_ops, nsm, ...). */
extern const struct virtio_dev_ops virtio_nsm_ops;

#endif

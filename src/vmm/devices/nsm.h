/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_DEVICES_NSM_H
#define CLOISTER_VMM_DEVICES_NSM_H

/*
 * virtio-nsm (device id 33, one queue): the Nitro Secure Module as the guest's Linux `nsm`
 * driver sees it (docs/attestation.md, nitro-compat §4). This file only moves bytes between
 * the virtqueue and src/lib/nsm's nsm_handle_request(), reached through the NSM module
 * (nsm_backend.h); everything about the NSM protocol, the PCRs and documents lives there.
 *
 * Queue protocol, as the driver uses it: for each request it adds the request bytes as one
 * device-readable buffer and then a 0x3000-byte device-writable buffer, as two separate chains,
 * and waits for both to come back (request first, then response). A single chain carrying both
 * (readable then writable) is accepted as well.
 *
 * The NSM state (PCRs, locks) survives a driver reset: a guest that re-probes the device must
 * not get its locked PCRs back.
 */

#include <stdbool.h>
#include <stdint.h>

#include "lib/nsm/device.h" /* the request and response limits only */
#include "vmm/devices/nsm_backend.h"
#include "vmm/virtio/mmio.h"

#define VIRTIO_ID_NSM 33
#define VIRTIO_NSM_QUEUE_SIZE 2 /* as QEMU: one request and one response buffer in flight */

struct virtio_nsm {
	const struct nsm_backend *be;
	void *nsm; /* the module's device state, owned */
	/* A request chain waiting for its response chain. */
	bool pending;
	uint16_t pending_head;
	size_t pending_len; /* the request's true length (may exceed the buffer: InputTooLarge) */
	uint8_t req[NSM_REQUEST_MAX];
	uint8_t resp[NSM_RESPONSE_MAX];
	uint64_t requests; /* answered, for the monitor's log */
};

/* The device's ops for virtio_mmio_init(); the opaque pointer is the struct virtio_nsm. */
extern const struct virtio_dev_ops virtio_nsm_ops;

/* Take ownership of @nsm (from @be->open()). */
void virtio_nsm_init(struct virtio_nsm *dev, const struct nsm_backend *be, void *nsm);
/* Free the NSM state (after the transport is destroyed). */
void virtio_nsm_destroy(struct virtio_nsm *dev);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_DEVICES_VSOCK_H
#define CLOISTER_VMM_DEVICES_VSOCK_H

/*
 * The virtio-vsock device (virtio id 19): three queues (rx, tx, event) and the guest CID in
 * config space, in front of the vsock protocol engine (src/lib/vsock). The device moves
 * packets between virtqueues and the engine; the engine owns connections and host sockets.
 *
 * Threading: the transport's lock serialises everything. Queue kicks arrive on vCPU threads
 * (under the lock); host socket readiness arrives on the monitor's main thread, which calls
 * vsock_dev_host_ready() (it takes the lock).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "lib/vsock/vsock.h"
#include "vmm/virtio/mmio.h"

#define VIRTIO_ID_VSOCK 19

struct vsock_dev;

struct vsock_dev_config {
	uint64_t guest_cid;
	const char *uds_path; /* host endpoint base (vsock.h) */
	bool heartbeat; /* answer CID 3 port 9000 */
	uint32_t exit_port; /* read the exit report on CID 3 this port; 0 = none (vsock.h) */
	void (*on_event)(void *opaque, enum vsock_event ev, uint32_t value);
	void *opaque;
};

/* Create the device and its engine (which starts listening on uds_path). */
enum vsock_err vsock_dev_new(const struct vsock_dev_config *cfg, struct vsock_dev **out,
                             struct cl_diag *d);
void vsock_dev_free(struct vsock_dev *v);

/* The ops and opaque to hand to virtio_mmio_init(), and the transport it was attached to. */
const struct virtio_dev_ops *vsock_dev_ops(void);
void vsock_dev_attach(struct vsock_dev *v, struct virtio_mmio_dev *t);

/* A file descriptor that becomes readable when host sockets need attention; when it does,
 * call vsock_dev_host_ready() from the thread that polls it. */
int vsock_dev_poll_fd(const struct vsock_dev *v);
/*
 * Serve the host sockets and give the guest what they produced. Returns 0, or -1 when the
 * guest's rx queue broke the protocol while being filled (a buffer outside RAM or too small
 * for a header): the reason, with the transport's prefix, is copied to @why (@why_len bytes),
 * and the caller must end the enclave, as a vCPU does when a kick fails — nothing else would,
 * since a guest that is waiting for this packet may never touch the device again.
 */
int vsock_dev_host_ready(struct vsock_dev *v, char *why, size_t why_len);

#endif

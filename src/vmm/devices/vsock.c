/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/log.h"
#include "vmm/devices/vsock.h"

enum { Q_RX = 0, Q_TX = 1, Q_EVENT = 2 };

struct vsock_dev {
	struct vsock_engine *engine;
	struct virtio_mmio_dev *t;
	uint64_t guest_cid;
	/* An rx chain taken from the ring but not yet filled: the engine had nothing after all.
	 * Devices may hold buffers; we give it back filled on the next packet. */
	struct virtq_chain held;
	bool have_held;
	/* Packets are gathered here from tx chains and built here for rx chains. */
	uint8_t pkt[VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD];
};

static void vsock_config_read(void *opaque, uint32_t off, void *buf, uint32_t len)
{
	struct vsock_dev *v = opaque;
	uint8_t cfg[8];

	for (int i = 0; i < 8; i++)
		cfg[i] = (uint8_t)(v->guest_cid >> (8 * i)); /* le64 guest_cid */
	memcpy(buf, cfg + off, len);
}

/* Fill as many rx buffers as the engine has packets for. Lock held. */
static int fill_rx(struct vsock_dev *v)
{
	struct virtq *q = &v->t->q[Q_RX].vq;
	bool pushed = false;

	if (!q->ready)
		return 0;
	while (vsock_engine_rx_pending(v->engine)) {
		enum virtq_err err;
		size_t cap, n;

		if (!v->have_held) {
			bool got = false;

			err = virtq_pop(q, &v->held, &got);
			if (err)
				return virtio_mmio_fail_queue(v->t, Q_RX, "rx", err);
			if (!got)
				break;
			v->have_held = true;
		}
		if (v->held.in_len < VSOCK_HDR_LEN)
			return virtio_mmio_fail(v->t,
			                        "rx buffer of %llu bytes cannot hold a "
			                        "packet header",
			                        (unsigned long long)v->held.in_len);
		cap = v->held.in_len < sizeof(v->pkt) ? (size_t)v->held.in_len : sizeof(v->pkt);
		n = vsock_engine_guest_rx(v->engine, v->pkt, cap);
		if (!n)
			break;
		virtq_chain_write(&v->held, 0, v->pkt, n);
		err = virtq_push(q, v->held.head, (uint32_t)n);
		v->have_held = false;
		if (err)
			return virtio_mmio_fail_queue(v->t, Q_RX, "rx", err);
		pushed = true;
	}
	if (pushed)
		virtio_mmio_signal_used(v->t, Q_RX);
	return 0;
}

/* Rounds (a packet taken, or a look at an empty ring) per tx notification, at most. A guest that
 * refills its tx ring as fast as we empty it (another of its vCPUs can) would otherwise keep
 * the monitor's main thread here for ever, deaf to SIGTERM and to the host's sockets. Past the
 * budget we stop and say there is more (VIRTIO_MMIO_MORE); the caller comes back after its
 * other work, as vhost-net does past its packet weight (drivers/vhost/net.c,
 * vhost_exceeds_weight). One ring of the largest size. */
#define TX_BUDGET 256

/* Hand every packet the guest queued to the engine, up to TX_BUDGET. Lock held. The driver is
 * asked not to kick while we drain: each kick is a costly exit of its vCPU (virtq_set_quiet).
 * Returns 0, VIRTIO_MMIO_MORE (budget spent with packets left: the quiet flag stays up, since
 * the caller will come back), or -1. */
static int drain_tx(struct vsock_dev *v)
{
	struct virtq *q = &v->t->q[Q_TX].vq;
	struct virtq_chain c;
	bool pushed = false, more = false;

	virtq_set_quiet(q, true);
	for (unsigned round = 0;; round++) {
		enum virtq_err err;
		bool got = false;
		uint64_t n;

		if (round == TX_BUDGET) {
			/* As at the end below: quiet off, then look; back on if there is more. */
			more = virtq_set_quiet(q, false);
			if (more)
				virtq_set_quiet(q, true);
			break;
		}
		err = virtq_pop(q, &c, &got);
		if (err)
			return virtio_mmio_fail_queue(v->t, Q_TX, "tx", err);
		if (!got) {
			if (!virtq_set_quiet(q, false))
				break;
			virtq_set_quiet(q, true); /* more came while the flag was up */
			continue;
		}
		/* A packet larger than header + 64 KiB is cut short here, and the engine drops
		 * it as malformed: its header then claims more payload than arrived. */
		n = virtq_chain_read(&c, 0, v->pkt, sizeof(v->pkt));
		vsock_engine_guest_tx(v->engine, v->pkt, (size_t)n);
		err = virtq_push(q, c.head, 0);
		if (err)
			return virtio_mmio_fail_queue(v->t, Q_TX, "tx", err);
		pushed = true;
	}
	if (pushed)
		virtio_mmio_signal_used(v->t, Q_TX);
	return more ? VIRTIO_MMIO_MORE : 0;
}

static int vsock_notify(void *opaque, struct virtio_mmio_dev *t, unsigned q)
{
	struct vsock_dev *v = opaque;
	int more = 0;

	(void)t;
	if (q == Q_TX && (more = drain_tx(v)) < 0)
		return -1;
	/* A kick on rx means new buffers; after tx there may be replies. Event queue buffers are
	 * kept: we never have transport events to report. */
	if (fill_rx(v) < 0)
		return -1;
	return more;
}

static void vsock_activate(void *opaque, struct virtio_mmio_dev *t)
{
	struct vsock_dev *v = opaque;

	v->t = t;
}

static void vsock_reset(void *opaque)
{
	struct vsock_dev *v = opaque;

	v->have_held = false;
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.features = 0,
	.num_queues = 3,
	.queue_size_max = 256,
	.config_size = 8,
	.config_read = vsock_config_read,
	.activate = vsock_activate,
	.notify = vsock_notify,
	.reset = vsock_reset,
};

const struct virtio_dev_ops *vsock_dev_ops(void)
{
	return &vsock_ops;
}

enum vsock_err vsock_dev_new(const struct vsock_dev_config *cfg, struct vsock_dev **out,
                             struct cl_diag *d)
{
	struct vsock_config ecfg = {
		.guest_cid = cfg->guest_cid,
		.uds_path = cfg->uds_path,
		.heartbeat = cfg->heartbeat,
		.exit_port = cfg->exit_port,
		.on_event = cfg->on_event,
		.opaque = cfg->opaque,
	};
	struct vsock_dev *v = calloc(1, sizeof(*v));
	enum vsock_err err;

	if (!v)
		return VSOCK_ERR_NOMEM;
	err = vsock_engine_new(&ecfg, &v->engine, d);
	if (err) {
		free(v);
		return err;
	}
	v->guest_cid = cfg->guest_cid;
	*out = v;
	return VSOCK_OK;
}

void vsock_dev_free(struct vsock_dev *v)
{
	if (!v)
		return;
	vsock_engine_free(v->engine);
	free(v);
}

void vsock_dev_attach(struct vsock_dev *v, struct virtio_mmio_dev *t)
{
	v->t = t;
}

int vsock_dev_poll_fd(const struct vsock_dev *v)
{
	return vsock_engine_fd(v->engine);
}

int vsock_dev_host_ready(struct vsock_dev *v, char *why, size_t why_len)
{
	int rc = 0;

	if (!v->t) { /* not attached to a transport yet: only host sockets to look after */
		vsock_engine_process_host(v->engine);
		return 0;
	}
	virtio_mmio_lock(v->t);
	vsock_engine_process_host(v->engine);
	if (!v->t->failed && (v->t->status & VIRTIO_STATUS_DRIVER_OK) && fill_rx(v) < 0) {
		snprintf(why, why_len, "%s", v->t->why);
		rc = -1;
	}
	virtio_mmio_unlock(v->t);
	return rc;
}

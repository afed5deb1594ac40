/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vsock connection engine (see vsock.h for the contract).
 *
 * Each connection is keyed by (guest port, host port). Data from the guest goes straight to the
 * host socket; what the socket cannot take now waits in a per-connection buffer that never
 * exceeds the credit we advertised (buf_alloc), so a stalled host peer costs at most that much.
 * Data to the guest is read from the host socket straight into the guest's receive buffer, and
 * only as much as the guest's credit allows, so nothing is buffered on that side at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util/log.h"
#include "lib/vsock/vsock.h"

#define DEFAULT_MAX_CONNS 256
#define DEFAULT_BUF_ALLOC (256 * 1024)
/* Resets for packets that match no connection; more are dropped (a guest flooding garbage
 * must not grow our memory). */
#define STRAY_RST_MAX 64
#define HOST_PORT_FIRST (1u << 30)
#define BUCKETS 256

enum conn_kind {
	CONN_LINE, /* host client still sending "CONNECT <port>\n" */
	CONN_HOST, /* a host socket paired with a guest stream */
	CONN_HEARTBEAT, /* CID 3 port 9000, answered here */
	CONN_EXIT, /* CID 3 exit_port with no host listener: the exit report, read here */
};

enum conn_state {
	CONN_CONNECTING, /* host-initiated: REQUEST sent or pending, waiting for RESPONSE */
	CONN_ESTABLISHED,
};

/* Packets a connection owes the guest, sent in this order. */
enum {
	PEND_REQUEST = 1u << 0,
	PEND_RESPONSE = 1u << 1,
	PEND_ECHO = 1u << 2,
	PEND_SHUTDOWN = 1u << 3,
	PEND_CREDIT = 1u << 4,
};

struct conn {
	struct conn *hnext; /* hash bucket chain */
	struct conn *prev, *next; /* list of all connections, for round-robin service */
	enum conn_kind kind;
	enum conn_state state;
	int fd;
	uint32_t events; /* epoll interest currently registered */
	bool registered;
	uint32_t guest_port, host_port;
	uint64_t parent_cid; /* the CID the guest addresses us by (3, or 2) */
	unsigned pending;
	uint32_t shutdown_flags; /* for PEND_SHUTDOWN */
	/* credit, per the virtio-vsock spec */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	uint32_t rx_cnt, fwd_cnt, fwd_cnt_sent;
	/* guest -> host bytes the host socket has not taken yet */
	uint8_t *buf;
	size_t buf_len;
	bool host_readable, host_eof, host_gone;
	bool guest_shut_send, guest_shut_rcv;
	/* CONN_EXIT: the record so far */
	uint8_t rec[VSOCK_EXIT_RECORD_LEN];
	uint8_t rec_len;
};

struct vsock_engine {
	struct vsock_config cfg;
	char *uds_path;
	int epfd, listen_fd;
	struct conn *buckets[BUCKETS];
	struct conn *head, *cursor;
	unsigned nconns;
	uint32_t next_host_port;
	struct vsock_hdr rst[STRAY_RST_MAX + DEFAULT_MAX_CONNS];
	unsigned rst_head, rst_count, rst_cap;
	int listen_marker; /* address used as the listener's epoll tag */
	bool exit_reported; /* the first valid exit record has been passed on */
	unsigned exit_warnings; /* complaints about exit reports logged so far */
	unsigned long junk; /* guest packets dropped as malformed, spoofed or misaddressed */
};

const char *vsock_strerror(enum vsock_err err)
{
	switch (err) {
	case VSOCK_OK:
		return "success";
	case VSOCK_ERR_NOMEM:
		return "out of memory";
	case VSOCK_ERR_SYSTEM:
		return "system call failed";
	case VSOCK_ERR_PATH:
		return "unusable socket path";
	case VSOCK_ERR_INVALID:
		return "invalid configuration";
	}
	return "unknown error";
}

static unsigned bucket_of(uint32_t guest_port, uint32_t host_port)
{
	return (guest_port * 2654435761u ^ host_port * 40503u) % BUCKETS;
}

static struct conn *conn_find(struct vsock_engine *e, uint32_t guest_port, uint32_t host_port)
{
	struct conn *c = e->buckets[bucket_of(guest_port, host_port)];

	for (; c; c = c->hnext)
		if (c->kind != CONN_LINE && c->guest_port == guest_port &&
		    c->host_port == host_port)
			return c;
	return NULL;
}

static void conn_hash_add(struct vsock_engine *e, struct conn *c)
{
	unsigned b = bucket_of(c->guest_port, c->host_port);

	c->hnext = e->buckets[b];
	e->buckets[b] = c;
}

static void conn_hash_del(struct vsock_engine *e, struct conn *c)
{
	struct conn **p = &e->buckets[bucket_of(c->guest_port, c->host_port)];

	for (; *p; p = &(*p)->hnext)
		if (*p == c) {
			*p = c->hnext;
			return;
		}
}

static struct conn *conn_new(struct vsock_engine *e, enum conn_kind kind, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->kind = kind;
	c->fd = fd;
	c->next = e->head;
	if (e->head)
		e->head->prev = c;
	e->head = c;
	e->nconns++;
	return c;
}

/* Register, change or drop the epoll interest of @c to match what it needs now. */
static void conn_update_events(struct vsock_engine *e, struct conn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	uint32_t want = 0;

	if (c->fd < 0 || c->host_gone)
		return;
	if (c->kind == CONN_LINE) {
		want = EPOLLIN;
	} else if (c->state == CONN_ESTABLISHED) {
		if (!c->host_readable && !c->host_eof && !c->guest_shut_rcv)
			want |= EPOLLIN;
		if (c->buf_len)
			want |= EPOLLOUT;
	}
	ev.events = want;
	if (!c->registered) {
		if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0) {
			c->registered = true;
			c->events = want;
		}
	} else if (want != c->events) {
		if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
			c->events = want;
	}
}

static void conn_free(struct vsock_engine *e, struct conn *c)
{
	if (c->kind != CONN_LINE)
		conn_hash_del(e, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		e->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (e->cursor == c)
		e->cursor = c->next;
	if (c->fd >= 0)
		close(c->fd); /* also removes it from the epoll set */
	free(c->buf);
	free(c);
	e->nconns--;
}

static void fill_hdr(const struct vsock_engine *e, const struct conn *c, struct vsock_hdr *h,
                     uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = c->parent_cid;
	h->dst_cid = e->cfg.guest_cid;
	h->src_port = c->host_port;
	h->dst_port = c->guest_port;
	h->type = VSOCK_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = e->cfg.buf_alloc;
	h->fwd_cnt = c->fwd_cnt;
}

static void rst_push(struct vsock_engine *e, const struct vsock_hdr *h, bool stray)
{
	unsigned limit = stray ? STRAY_RST_MAX : e->rst_cap;

	if (e->rst_count >= limit)
		return;
	e->rst[(e->rst_head + e->rst_count) % e->rst_cap] = *h;
	e->rst_count++;
}

/* The oldest queued reset into @buf; false if none is queued. */
static bool rst_pop(struct vsock_engine *e, uint8_t *buf)
{
	if (!e->rst_count)
		return false;
	vsock_hdr_encode(&e->rst[e->rst_head], buf);
	e->rst_head = (e->rst_head + 1) % e->rst_cap;
	e->rst_count--;
	return true;
}

/* Tell the guest this connection is gone, and forget it. */
static void conn_reset(struct vsock_engine *e, struct conn *c)
{
	struct vsock_hdr h;

	if (c->kind != CONN_LINE && !(c->state == CONN_CONNECTING && (c->pending & PEND_REQUEST))) {
		fill_hdr(e, c, &h, VSOCK_OP_RST);
		rst_push(e, &h, false);
	}
	conn_free(e, c);
}

/* Reply with a reset to a packet that belongs to no connection. */
static void reply_stray_rst(struct vsock_engine *e, const struct vsock_hdr *in)
{
	struct vsock_hdr h = {
		.src_cid = in->dst_cid,
		.dst_cid = in->src_cid,
		.src_port = in->dst_port,
		.dst_port = in->src_port,
		.type = VSOCK_TYPE_STREAM,
		.op = VSOCK_OP_RST,
	};

	rst_push(e, &h, true);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* The guest opens a stream to the parent. */
static void guest_request(struct vsock_engine *e, const struct vsock_hdr *h)
{
	char path[4096];
	struct conn *c;
	int fd = -1;

	if (e->nconns >= e->cfg.max_conns) {
		cl_warn("vsock: refusing guest connection to port %u: %u connections open",
		        h->dst_port, e->nconns);
		reply_stray_rst(e, h);
		return;
	}
	if (e->cfg.heartbeat && h->dst_port == VSOCK_HEARTBEAT_PORT) {
		c = conn_new(e, CONN_HEARTBEAT, -1);
	} else {
		bool exit_port = e->cfg.exit_port && h->dst_port == e->cfg.exit_port;

		if (e->uds_path) {
			snprintf(path, sizeof(path), "%s_%u", e->uds_path, h->dst_port);
			fd = unix_connect(path);
		}
		if (fd < 0 && exit_port) {
			/* Nothing on the parent owns the port: the record is for us. */
			c = conn_new(e, CONN_EXIT, -1);
		} else if (fd < 0) {
			if (e->uds_path)
				cl_debug("vsock: guest port %u -> parent port %u refused: %s",
				         h->src_port, h->dst_port, strerror(-fd));
			reply_stray_rst(e, h);
			return;
		} else {
			c = conn_new(e, CONN_HOST, fd);
		}
	}
	if (!c) {
		if (fd >= 0)
			close(fd);
		reply_stray_rst(e, h);
		return;
	}
	c->state = CONN_ESTABLISHED;
	c->guest_port = h->src_port;
	c->host_port = h->dst_port;
	c->parent_cid = h->dst_cid;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending |= PEND_RESPONSE;
	conn_hash_add(e, c);
	conn_update_events(e, c);
}

/* Push buffered guest bytes to the host socket. Returns false if the host side is gone (the
 * connection has then been reset). */
static bool conn_flush(struct vsock_engine *e, struct conn *c)
{
	size_t off = 0;

	while (off < c->buf_len) {
		ssize_t n = send(c->fd, c->buf + off, c->buf_len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_reset(e, c);
			return false;
		}
		off += (size_t)n;
	}
	if (off) {
		memmove(c->buf, c->buf + off, c->buf_len - off);
		c->buf_len -= off;
		c->fwd_cnt += (uint32_t)off;
	}
	/* Announce freed credit once half the window is free again, so a guest that filled it
	 * is never left waiting, without an update for every small write. */
	if ((uint32_t)(c->fwd_cnt - c->fwd_cnt_sent) >= e->cfg.buf_alloc / 2)
		c->pending |= PEND_CREDIT;
	if (!c->buf_len && c->guest_shut_send)
		shutdown(c->fd, SHUT_WR);
	if (!c->buf_len && c->guest_shut_send && c->guest_shut_rcv) {
		/* The guest closed and everything it sent has been delivered. */
		conn_reset(e, c);
		return false;
	}
	conn_update_events(e, c);
	return true;
}

/* Complain about an exit report, a few times at most: a guest must not flood the log. */
#define EXIT_WARNINGS_MAX 4

static void exit_warn(struct vsock_engine *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void exit_warn(struct vsock_engine *e, const char *fmt, ...)
{
	va_list ap;

	if (e->exit_warnings >= EXIT_WARNINGS_MAX)
		return;
	e->exit_warnings++;
	va_start(ap, fmt);
	cl_vlog(CL_LOG_WARN, fmt, ap);
	va_end(ap);
}

/* Bytes of the exit report: exactly one record, then the guest closes. Anything else is
 * answered with a reset; the enclave is ending anyway, so a bad record costs it nothing. */
static void exit_rw(struct vsock_engine *e, struct conn *c, const uint8_t *data, uint32_t len)
{
	enum vsock_event ev;
	uint32_t value;

	c->fwd_cnt += len;
	if (len > (uint32_t)(VSOCK_EXIT_RECORD_LEN - c->rec_len)) {
		exit_warn(e, "vsock: exit report on port %u is longer than %d bytes; ignored",
		          c->host_port, VSOCK_EXIT_RECORD_LEN);
		conn_reset(e, c);
		return;
	}
	memcpy(c->rec + c->rec_len, data, len);
	c->rec_len = (uint8_t)(c->rec_len + len);
	if (c->rec_len < VSOCK_EXIT_RECORD_LEN)
		return;
	if (!vsock_exit_record_parse(c->rec, &ev, &value)) {
		exit_warn(e, "vsock: malformed exit report %02x %02x %02x %02x on port %u; ignored",
		          c->rec[0], c->rec[1], c->rec[2], c->rec[3], c->host_port);
		conn_reset(e, c);
		return;
	}
	/* The app exits once: a second record (from the app itself, say) is not believed. */
	if (e->exit_reported) {
		exit_warn(e, "vsock: a second exit report on port %u; ignored", c->host_port);
		return;
	}
	e->exit_reported = true;
	if (e->cfg.on_event)
		e->cfg.on_event(e->cfg.opaque, ev, value);
}

static void guest_rw(struct vsock_engine *e, struct conn *c, const uint8_t *data, uint32_t len)
{
	uint32_t used = c->rx_cnt - c->fwd_cnt;

	if (c->state != CONN_ESTABLISHED || c->guest_shut_send || len > e->cfg.buf_alloc - used) {
		cl_warn("vsock: guest port %u sent %u bytes beyond its credit or state; resetting",
		        c->guest_port, len);
		conn_reset(e, c);
		return;
	}
	c->rx_cnt += len;
	if (c->kind == CONN_EXIT) {
		exit_rw(e, c, data, len);
		return;
	}
	if (c->kind == CONN_HEARTBEAT) {
		if (len == 0)
			return;
		c->fwd_cnt += len;
		if (data[0] == VSOCK_HEARTBEAT_BYTE && !(c->pending & PEND_ECHO)) {
			c->pending |= PEND_ECHO;
		} else {
			if (e->cfg.on_event)
				e->cfg.on_event(e->cfg.opaque, VSOCK_EVENT_HEARTBEAT_BAD, 0);
			conn_reset(e, c);
		}
		return;
	}
	/* Invariant: rx_cnt - fwd_cnt == buf_len, so the check above keeps buf within buf_alloc. */
	if (!c->buf_len && len) {
		ssize_t n;

		do {
			n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		} while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_reset(e, c);
			return;
		}
		if (n > 0) {
			c->fwd_cnt += (uint32_t)n;
			data += n;
			len -= (uint32_t)n;
		}
	}
	if (len) {
		if (!c->buf) {
			c->buf = malloc(e->cfg.buf_alloc);
			if (!c->buf) {
				conn_reset(e, c);
				return;
			}
		}
		memcpy(c->buf + c->buf_len, data, len);
		c->buf_len += len;
	}
	conn_flush(e, c);
}

static void guest_shutdown(struct vsock_engine *e, struct conn *c, uint32_t flags)
{
	if (flags & VSOCK_SHUTDOWN_SEND)
		c->guest_shut_send = true;
	if (flags & VSOCK_SHUTDOWN_RCV)
		c->guest_shut_rcv = true;
	if (c->kind == CONN_HEARTBEAT || c->kind == CONN_EXIT) {
		if (c->kind == CONN_EXIT && c->guest_shut_send &&
		    c->rec_len < VSOCK_EXIT_RECORD_LEN)
			exit_warn(
			        e,
			        "vsock: exit report on port %u ended after %u of %d bytes; ignored",
			        c->host_port, c->rec_len, VSOCK_EXIT_RECORD_LEN);
		if (c->guest_shut_send && c->guest_shut_rcv)
			conn_reset(e, c);
		return;
	}
	conn_flush(e, c);
}

static void guest_response(struct vsock_engine *e, struct conn *c)
{
	char line[32];
	int n;

	if (c->kind != CONN_HOST || c->state != CONN_CONNECTING || (c->pending & PEND_REQUEST)) {
		conn_reset(e, c);
		return;
	}
	n = snprintf(line, sizeof(line), "OK %u\n", c->host_port);
	if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		conn_reset(e, c);
		return;
	}
	c->state = CONN_ESTABLISHED;
	conn_update_events(e, c);
}

/* Name a guest packet we drop as junk: the first few at warning level, so the log says what the
 * guest did, then at debug level only (a guest flooding junk must not flood the log). */
#define JUNK_WARNINGS_MAX 4

static void guest_junk(struct vsock_engine *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void guest_junk(struct vsock_engine *e, const char *fmt, ...)
{
	enum cl_log_level level = e->junk < JUNK_WARNINGS_MAX ? CL_LOG_WARN : CL_LOG_DEBUG;
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cl_log(level, "vsock: dropped a packet from the guest: %s%s", msg,
	       e->junk + 1 == JUNK_WARNINGS_MAX ? " (more are logged at debug level only)" : "");
	e->junk++;
}

void vsock_engine_guest_tx(struct vsock_engine *e, const uint8_t *pkt, size_t len)
{
	struct vsock_hdr h;
	struct conn *c;

	if (!vsock_hdr_decode(pkt, len, &h)) {
		guest_junk(e, "%zu bytes, shorter than a %d-byte header", len, VSOCK_HDR_LEN);
		return; /* nothing to answer to */
	}
	if (h.len > len - VSOCK_HDR_LEN || h.len > VSOCK_MAX_PAYLOAD) {
		guest_junk(e, "header claims %u payload bytes, %zu arrived (at most %d)", h.len,
		           len - VSOCK_HDR_LEN, VSOCK_MAX_PAYLOAD);
		return;
	}
	if (h.src_cid != e->cfg.guest_cid) {
		guest_junk(e, "source CID %llu is not the enclave's %llu",
		           (unsigned long long)h.src_cid, (unsigned long long)e->cfg.guest_cid);
		return; /* a spoofed source gets no reply */
	}
	if ((h.dst_cid != VSOCK_PARENT_CID && h.dst_cid != VSOCK_HOST_CID_ALIAS) ||
	    h.type != VSOCK_TYPE_STREAM) {
		guest_junk(e, "type %u op %u to CID %llu port %u; only streams to CID 3 (or 2)%s",
		           h.type, h.op, (unsigned long long)h.dst_cid, h.dst_port,
		           h.op != VSOCK_OP_RST ? ", reset" : "");
		if (h.op != VSOCK_OP_RST)
			reply_stray_rst(e, &h);
		return;
	}
	if (h.op == VSOCK_OP_INVALID || h.op > VSOCK_OP_CREDIT_REQUEST) {
		guest_junk(e, "unknown op %u from port %u to port %u; reset", h.op, h.src_port,
		           h.dst_port);
		c = conn_find(e, h.src_port, h.dst_port);
		if (c)
			conn_reset(e, c);
		else
			reply_stray_rst(e, &h);
		return;
	}
	c = conn_find(e, h.src_port, h.dst_port);
	if (!c) {
		if (h.op == VSOCK_OP_REQUEST)
			guest_request(e, &h);
		else if (h.op != VSOCK_OP_RST)
			reply_stray_rst(e, &h);
		return;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VSOCK_OP_RESPONSE:
		guest_response(e, c);
		break;
	case VSOCK_OP_RW:
		guest_rw(e, c, pkt + VSOCK_HDR_LEN, h.len);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pending |= PEND_CREDIT;
		break;
	case VSOCK_OP_SHUTDOWN:
		guest_shutdown(e, c, h.flags);
		break;
	case VSOCK_OP_RST:
		conn_free(e, c);
		break;
	default: /* REQUEST on an open connection */
		guest_junk(e, "REQUEST on the open connection from port %u to port %u; reset",
		           h.src_port, h.dst_port);
		conn_reset(e, c);
		break;
	}
}

static uint32_t peer_credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool conn_has_rx(const struct conn *c)
{
	if (c->kind == CONN_LINE)
		return false;
	if (c->pending & (PEND_REQUEST | PEND_RESPONSE | PEND_SHUTDOWN | PEND_CREDIT))
		return true;
	if (c->state != CONN_ESTABLISHED || peer_credit(c) == 0)
		return false;
	if (c->pending & PEND_ECHO)
		return true;
	return c->host_readable && !c->host_eof && !c->guest_shut_rcv;
}

bool vsock_engine_rx_pending(const struct vsock_engine *e)
{
	if (e->rst_count)
		return true;
	for (const struct conn *c = e->head; c; c = c->next)
		if (conn_has_rx(c))
			return true;
	return false;
}

/* Build one packet for @c into @buf, or return 0 if it has nothing it may send now. */
static size_t conn_rx(struct vsock_engine *e, struct conn *c, uint8_t *buf, size_t cap)
{
	struct vsock_hdr h;
	uint32_t credit;
	size_t room;
	ssize_t n;

	if (c->pending & PEND_REQUEST) {
		c->pending &= ~PEND_REQUEST;
		fill_hdr(e, c, &h, VSOCK_OP_REQUEST);
		goto control;
	}
	if (c->pending & PEND_RESPONSE) {
		c->pending &= ~PEND_RESPONSE;
		fill_hdr(e, c, &h, VSOCK_OP_RESPONSE);
		goto control;
	}
	credit = c->state == CONN_ESTABLISHED ? peer_credit(c) : 0;
	if ((c->pending & PEND_ECHO) && credit && cap > VSOCK_HDR_LEN) {
		c->pending &= ~PEND_ECHO;
		fill_hdr(e, c, &h, VSOCK_OP_RW);
		h.len = 1;
		buf[VSOCK_HDR_LEN] = VSOCK_HEARTBEAT_BYTE;
		c->tx_cnt += 1;
		if (e->cfg.on_event)
			e->cfg.on_event(e->cfg.opaque, VSOCK_EVENT_HEARTBEAT_OK, 0);
		goto out;
	}
	if (c->host_readable && !c->host_eof && !c->guest_shut_rcv && credit &&
	    cap > VSOCK_HDR_LEN) {
		room = cap - VSOCK_HDR_LEN;
		if (room > credit)
			room = credit;
		if (room > VSOCK_MAX_PAYLOAD)
			room = VSOCK_MAX_PAYLOAD;
		do {
			n = recv(c->fd, buf + VSOCK_HDR_LEN, room, MSG_DONTWAIT);
		} while (n < 0 && errno == EINTR);
		if (n > 0) {
			fill_hdr(e, c, &h, VSOCK_OP_RW);
			h.len = (uint32_t)n;
			c->tx_cnt += (uint32_t)n;
			goto out;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->host_readable = false;
			conn_update_events(e, c);
		} else if (n == 0) {
			/* The host will send no more: tell the guest, keep delivering its data. */
			c->host_eof = true;
			c->pending |= PEND_SHUTDOWN;
			c->shutdown_flags |= VSOCK_SHUTDOWN_SEND;
			conn_update_events(e, c);
		} else {
			conn_reset(e, c);
			return 0;
		}
	}
	if (c->pending & PEND_SHUTDOWN) {
		c->pending &= ~PEND_SHUTDOWN;
		fill_hdr(e, c, &h, VSOCK_OP_SHUTDOWN);
		h.flags = c->shutdown_flags;
		goto control;
	}
	if (c->pending & PEND_CREDIT) {
		c->pending &= ~PEND_CREDIT;
		fill_hdr(e, c, &h, VSOCK_OP_CREDIT_UPDATE);
		goto control;
	}
	return 0;
control:
	h.len = 0;
out:
	c->fwd_cnt_sent = c->fwd_cnt;
	vsock_hdr_encode(&h, buf);
	return VSOCK_HDR_LEN + h.len;
}

size_t vsock_engine_guest_rx(struct vsock_engine *e, uint8_t *buf, size_t cap)
{
	struct conn *c;
	unsigned total = e->nconns;

	if (cap < VSOCK_HDR_LEN)
		return 0;
	if (rst_pop(e, buf))
		return VSOCK_HDR_LEN;
	/* Round robin from where the last call stopped, so one busy stream cannot starve the
	 * others. conn_rx may free the connection it serves; conn_free then moves the cursor on. */
	c = e->cursor ? e->cursor : e->head;
	for (unsigned i = 0; c && i < total; i++) {
		size_t n = 0;

		e->cursor = c;
		if (conn_has_rx(c))
			n = conn_rx(e, c, buf, cap);
		if (e->cursor == c)
			e->cursor = c->next;
		if (n)
			return n;
		c = e->cursor ? e->cursor : e->head;
	}
	/* A connection that failed while we looked (its host socket reset) queued an RST: send
	 * it now, or rx_pending() would stay true with no one to ask again until the next
	 * event, and the guest would wait on a dead stream. */
	return rst_pop(e, buf) ? VSOCK_HDR_LEN : 0;
}

static uint32_t alloc_host_port(struct vsock_engine *e, uint32_t guest_port)
{
	for (;;) {
		uint32_t p = e->next_host_port++;

		if (e->next_host_port == 0)
			e->next_host_port = HOST_PORT_FIRST;
		if (!conn_find(e, guest_port, p))
			return p;
	}
}

/* A host client is sending its CONNECT line. Peek, so bytes after the line stay queued in the
 * socket for the guest. */
static void line_readable(struct vsock_engine *e, struct conn *c)
{
	char line[40];
	uint32_t port = 0;
	size_t used = 0;
	ssize_t n;

	n = recv(c->fd, line, sizeof(line), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(e, c);
		return;
	}
	switch (vsock_parse_connect_line(line, (size_t)n, &port, &used)) {
	case VSOCK_LINE_INCOMPLETE:
		return;
	case VSOCK_LINE_BAD:
		cl_debug("vsock: host client sent a malformed CONNECT line; closing it");
		conn_free(e, c);
		return;
	case VSOCK_LINE_OK:
		break;
	}
	if (recv(c->fd, line, used, MSG_DONTWAIT) != (ssize_t)used) {
		conn_free(e, c);
		return;
	}
	c->kind = CONN_HOST;
	c->state = CONN_CONNECTING;
	c->guest_port = port;
	c->host_port = alloc_host_port(e, port);
	c->parent_cid = VSOCK_PARENT_CID;
	c->pending |= PEND_REQUEST;
	conn_hash_add(e, c);
	conn_update_events(e, c);
}

static void accept_clients(struct vsock_engine *e)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(e->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		if (e->nconns >= e->cfg.max_conns) {
			cl_warn("vsock: refusing host client: %u connections open", e->nconns);
			close(fd);
			continue;
		}
		c = conn_new(e, CONN_LINE, fd);
		if (!c) {
			close(fd);
			return;
		}
		conn_update_events(e, c);
		line_readable(e, c); /* the line often arrives with the connection */
	}
}

void vsock_engine_process_host(struct vsock_engine *e)
{
	struct epoll_event evs[64];
	int n = epoll_wait(e->epfd, evs, 64, 0);

	for (int i = 0; i < n; i++) {
		struct conn *c;

		if (evs[i].data.ptr == &e->listen_marker) {
			accept_clients(e);
			continue;
		}
		c = evs[i].data.ptr;
		/* A connection freed earlier in this batch cannot appear: freeing closes its fd,
		 * but its event may already be in evs[]. Check it is still listed. */
		{
			struct conn *it = e->head;

			while (it && it != c)
				it = it->next;
			if (!it)
				continue;
		}
		if (c->kind == CONN_LINE) {
			line_readable(e, c);
			continue;
		}
		if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
			/* Stop watching; reads will drain what is left and then see the end. */
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->fd, NULL);
			c->registered = false;
			c->host_gone = true;
			if (c->state != CONN_ESTABLISHED) {
				conn_reset(e, c);
				continue;
			}
			c->host_readable = true;
			if (c->buf_len)
				conn_flush(e, c);
			continue;
		}
		if (evs[i].events & EPOLLIN) {
			c->host_readable = true;
			conn_update_events(e, c);
		}
		if (evs[i].events & EPOLLOUT)
			conn_flush(e, c);
	}
}

static enum vsock_err listen_uds(struct vsock_engine *e, struct cl_diag *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->listen_marker };
	struct stat st;

	if (strlen(e->uds_path) >= sizeof(sa.sun_path)) {
		cl_diag_set(d,
		            "vsock socket path '%s' is longer than the %zu bytes a Unix socket "
		            "path may have; choose a shorter sockets directory",
		            e->uds_path, sizeof(sa.sun_path) - 1);
		return VSOCK_ERR_PATH;
	}
	if (lstat(e->uds_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			cl_diag_set(d, "'%s' exists and is not a socket; remove it", e->uds_path);
			return VSOCK_ERR_PATH;
		}
		unlink(e->uds_path); /* a stale socket from an enclave that is gone */
	}
	strcpy(sa.sun_path, e->uds_path);
	e->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (e->listen_fd < 0 || bind(e->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(e->listen_fd, 64) < 0 ||
	    epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->listen_fd, &ev) < 0) {
		cl_diag_set(d, "cannot listen on vsock socket '%s': %s", e->uds_path,
		            strerror(errno));
		return VSOCK_ERR_SYSTEM;
	}
	return VSOCK_OK;
}

enum vsock_err vsock_engine_new(const struct vsock_config *cfg, struct vsock_engine **out,
                                struct cl_diag *d)
{
	struct vsock_engine *e;
	enum vsock_err err;

	if (cfg->guest_cid <= VSOCK_PARENT_CID || cfg->guest_cid >= UINT32_MAX) {
		cl_diag_set(d, "enclave CID %llu is reserved; use 4 to 4294967294",
		            (unsigned long long)cfg->guest_cid);
		return VSOCK_ERR_INVALID;
	}
	if (cfg->heartbeat && cfg->exit_port == VSOCK_HEARTBEAT_PORT) {
		cl_diag_set(d, "exit report port %u is the heartbeat port; use %u", cfg->exit_port,
		            VSOCK_EXIT_PORT);
		return VSOCK_ERR_INVALID;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return VSOCK_ERR_NOMEM;
	e->cfg = *cfg;
	if (!e->cfg.max_conns || e->cfg.max_conns > DEFAULT_MAX_CONNS)
		e->cfg.max_conns = DEFAULT_MAX_CONNS;
	if (!e->cfg.buf_alloc)
		e->cfg.buf_alloc = DEFAULT_BUF_ALLOC;
	e->rst_cap = STRAY_RST_MAX + DEFAULT_MAX_CONNS;
	e->next_host_port = HOST_PORT_FIRST;
	e->listen_fd = -1;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		cl_diag_set(d, "epoll_create1: %s", strerror(errno));
		free(e);
		return VSOCK_ERR_SYSTEM;
	}
	if (cfg->uds_path) {
		e->uds_path = strdup(cfg->uds_path);
		if (!e->uds_path) {
			err = VSOCK_ERR_NOMEM;
			goto fail;
		}
		err = listen_uds(e, d);
		if (err)
			goto fail;
	}
	e->cfg.uds_path = e->uds_path;
	*out = e;
	return VSOCK_OK;
fail:
	vsock_engine_free(e);
	return err;
}

void vsock_engine_free(struct vsock_engine *e)
{
	if (!e)
		return;
	while (e->head)
		conn_free(e, e->head);
	if (e->listen_fd >= 0) {
		close(e->listen_fd);
		unlink(e->uds_path);
	}
	if (e->epfd >= 0)
		close(e->epfd);
	free(e->uds_path);
	free(e);
}

int vsock_engine_fd(const struct vsock_engine *e)
{
	return e->epfd;
}

unsigned vsock_engine_conn_count(const struct vsock_engine *e)
{
	return e->nconns;
}

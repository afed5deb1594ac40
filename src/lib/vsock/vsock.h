/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VSOCK_H
#define CLOISTER_VSOCK_H

/*
 * The vsock protocol engine: everything about virtio-vsock stream connections between an enclave
 * and its parent, with no knowledge of virtqueues or KVM (the virtio device in src/vmm gathers
 * descriptor chains into packets and hands them here).
 *
 * Nitro addressing (docs/vsock.md): the enclave has the CID it was launched with, the parent is
 * CID 3 (CID 2 accepted as an alias). Host endpoints follow Firecracker's conventions:
 *   - parent -> enclave: connect to the Unix socket <uds_path>, send "CONNECT <port>\n",
 *     receive "OK <host port>\n", then raw bytes;
 *   - enclave -> parent port P: the engine connects to the Unix socket "<uds_path>_<P>";
 *   - enclave -> parent port 9000 (when the heartbeat is armed): answered inside the engine,
 *     which echoes the 0xB7 byte and reports the enclave as booted;
 *   - enclave -> parent port exit_port (9001, cloister-init's exit report) when nothing listens
 *     at "<uds_path>_<exit_port>": answered inside the engine, which reads one 4-byte record
 *     and reports the application's exit status (docs/vsock.md, "The exit report").
 *
 * Memory is bounded: at most max_conns connections, each buffering at most buf_alloc bytes of
 * guest data (the credit the engine advertises), and a fixed number of pending resets. A guest
 * that sends more than its credit gets its connection reset; a host peer that stalls only stops
 * its own connection.
 *
 * Threading: an engine is used from one thread (the monitor's device thread).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

#define VSOCK_HDR_LEN 44
#define VSOCK_PARENT_CID 3
#define VSOCK_HOST_CID_ALIAS 2
#define VSOCK_HEARTBEAT_PORT 9000
#define VSOCK_HEARTBEAT_BYTE 0xB7
/* cloister-init's exit report (docs/build-enclave.md, "The exit status"): after the app exits,
 * one connection to CID 3 on this port carrying B8 kind value 00, kind 0 = exited with status
 * value, 1 = killed by signal value. Must match guest/init/init_parse.h. */
#define VSOCK_EXIT_PORT 9001
#define VSOCK_EXIT_MAGIC 0xB8
#define VSOCK_EXIT_RECORD_LEN 4
/* Largest payload the engine puts in one packet to the guest, and accepts from it (Linux
 * guests send at most 64 KiB per packet). */
#define VSOCK_MAX_PAYLOAD (64 * 1024)

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_TYPE_STREAM 1
#define VSOCK_SHUTDOWN_RCV 1u
#define VSOCK_SHUTDOWN_SEND 2u

/* struct virtio_vsock_hdr, decoded (little-endian on the wire, 44 bytes, packed). */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

/* Decode the header at the start of @buf. Returns false if @len < VSOCK_HDR_LEN. */
bool vsock_hdr_decode(const uint8_t *buf, size_t len, struct vsock_hdr *h);
/* Encode @h into the first VSOCK_HDR_LEN bytes of @buf. */
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t *buf);

enum vsock_line {
	VSOCK_LINE_INCOMPLETE, /* no newline yet and still short enough to become valid */
	VSOCK_LINE_OK, /* "CONNECT <port>\n" parsed; *consumed bytes used */
	VSOCK_LINE_BAD, /* never valid: wrong verb, bad number, too long */
};

/* Parse the Firecracker-style "CONNECT <port>\n" line that a host client sends first. The port
 * is a decimal u32 without sign or leading spaces; the line is at most 32 bytes. */
enum vsock_line vsock_parse_connect_line(const char *buf, size_t len, uint32_t *port,
                                         size_t *consumed);

enum vsock_err {
	VSOCK_OK = 0,
	VSOCK_ERR_NOMEM,
	VSOCK_ERR_SYSTEM, /* a host system call failed; see the diag text */
	VSOCK_ERR_PATH, /* uds_path unusable (too long, exists and is not a socket) */
	VSOCK_ERR_INVALID, /* bad configuration */
};

const char *vsock_strerror(enum vsock_err err);

struct vsock_engine;

enum vsock_event {
	VSOCK_EVENT_HEARTBEAT_OK, /* the guest sent 0xB7 on port 9000 and got its echo */
	VSOCK_EVENT_HEARTBEAT_BAD, /* the guest sent another byte: Nitro terminates it (E36) */
	VSOCK_EVENT_APP_EXITED, /* exit report: the app exited; value = its exit status */
	VSOCK_EVENT_APP_KILLED, /* exit report: the app was killed; value = the signal number */
};

/* Decode an exit record (@rec, VSOCK_EXIT_RECORD_LEN untrusted bytes) into APP_EXITED or
 * APP_KILLED and its value. Returns false for anything but B8 {0|1} value 00. */
bool vsock_exit_record_parse(const uint8_t *rec, enum vsock_event *ev, uint32_t *value);

struct vsock_config {
	uint64_t guest_cid;
	/* Host endpoint base path (Firecracker's uds_path); NULL = no host endpoints (tests). */
	const char *uds_path;
	unsigned max_conns; /* 0 = 256 */
	uint32_t buf_alloc; /* credit advertised per connection; 0 = 256 KiB */
	bool heartbeat; /* answer CID 3 port 9000 inside the engine */
	/* Port of the exit report (VSOCK_EXIT_PORT), or 0 for none. A host endpoint listening at
	 * "<uds_path>_<exit_port>" takes precedence: an app that uses the port on the parent, as
	 * it may on Nitro, keeps it. Only the first valid record of an engine is reported. */
	uint32_t exit_port;
	/* Called from vsock_engine_guest_tx/_rx (the caller's thread, under its lock) with
	 * @value = the exit status or signal for APP_EXITED/APP_KILLED, 0 otherwise. */
	void (*on_event)(void *opaque, enum vsock_event ev, uint32_t value);
	void *opaque;
};

/* Create an engine; binds and listens on cfg->uds_path (replacing a stale socket file there).
 * The engine owns every fd it opens; vsock_engine_free closes them and unlinks the socket. */
enum vsock_err vsock_engine_new(const struct vsock_config *cfg, struct vsock_engine **out,
                                struct cl_diag *d);
void vsock_engine_free(struct vsock_engine *e);

/* An epoll fd that is readable whenever a host-side socket needs attention. Put it in the
 * caller's event loop and call vsock_engine_process_host() when it fires. */
int vsock_engine_fd(const struct vsock_engine *e);
void vsock_engine_process_host(struct vsock_engine *e);

/* One packet from the guest's transmit queue: header and payload, contiguous. Malformed or
 * unexpected packets are answered with a reset or dropped, never trusted. */
void vsock_engine_guest_tx(struct vsock_engine *e, const uint8_t *pkt, size_t len);

/* True when the engine has a packet for the guest. */
bool vsock_engine_rx_pending(const struct vsock_engine *e);
/* Write the next packet for the guest into @buf (capacity @cap ≥ VSOCK_HDR_LEN); returns its
 * length, or 0 if nothing is pending. Data is read from host sockets straight into @buf. */
size_t vsock_engine_guest_rx(struct vsock_engine *e, uint8_t *buf, size_t cap);

/* Open connection count, for tests and describe. */
unsigned vsock_engine_conn_count(const struct vsock_engine *e);

/* Where an enclave's vsock socket lives: "<sockets_dir>/<enclave_id>.vsock" (docs/vsock.md).
 * Returns 0, or -ENAMETOOLONG if it does not fit in @len bytes. */
int vsock_uds_path(const char *sockets_dir, const char *enclave_id, char *out, size_t len);

/*
 * Copy bytes both ways between the connected stream sockets @a and @b until both directions
 * have ended, passing each end-of-stream on as a half-close (shutdown SHUT_WR). Memory is one
 * @bufsize buffer per direction; a stalled reader stalls only its own direction. Blocks the
 * calling thread; does not close @a or @b. Returns 0, or -errno on a socket error.
 */
int vsock_relay(int a, int b, size_t bufsize);

#endif

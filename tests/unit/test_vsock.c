/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../guest/init/init_parse.h"
#include "lib/util/log.h"
#include "lib/vsock/vsock.h"

#define GUEST_CID 16

struct fixture {
	char dir[64];
	char uds[128];
	struct vsock_engine *e;
	int events_ok, events_bad;
	int app_events; /* exit reports passed on */
	enum vsock_event app_ev;
	uint32_t app_value;
	uint8_t pkt[VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD];
};

static void on_event(void *opaque, enum vsock_event ev, uint32_t value)
{
	struct fixture *f = opaque;

	if (ev == VSOCK_EVENT_APP_EXITED || ev == VSOCK_EVENT_APP_KILLED) {
		f->app_events++;
		f->app_ev = ev;
		f->app_value = value;
	} else if (ev == VSOCK_EVENT_HEARTBEAT_OK) {
		assert_int_equal(value, 0);
		f->events_ok++;
	} else {
		f->events_bad++;
	}
}

static struct fixture *fixture_new(uint32_t buf_alloc, unsigned max_conns)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vsock_config cfg = {
		.guest_cid = GUEST_CID,
		.heartbeat = true,
		.exit_port = VSOCK_EXIT_PORT,
		.buf_alloc = buf_alloc,
		.max_conns = max_conns,
		.on_event = on_event,
	};
	struct cl_diag d;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/cloister-vsock-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->uds, sizeof(f->uds), "%s/e.vsock", f->dir);
	cfg.uds_path = f->uds;
	cfg.opaque = f;
	assert_int_equal(vsock_engine_new(&cfg, &f->e, &d), VSOCK_OK);
	return f;
}

static void fixture_free(struct fixture *f)
{
	char cmd[128];

	vsock_engine_free(f->e);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* A packet from the guest to @dst_cid, built by hand as the Linux driver lays it out. */
static void guest_send_to(struct fixture *f, uint64_t dst_cid, uint16_t op, uint32_t src_port,
                          uint32_t dst_port, uint32_t flags, const void *data, uint32_t len,
                          uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct vsock_hdr h = {
		.src_cid = GUEST_CID,
		.dst_cid = dst_cid,
		.src_port = src_port,
		.dst_port = dst_port,
		.len = len,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
		.flags = flags,
		.buf_alloc = buf_alloc,
		.fwd_cnt = fwd_cnt,
	};

	vsock_hdr_encode(&h, f->pkt);
	if (len)
		memcpy(f->pkt + VSOCK_HDR_LEN, data, len);
	vsock_engine_guest_tx(f->e, f->pkt, VSOCK_HDR_LEN + len);
}

/* The same, to the parent's own CID 3. */
static void guest_send(struct fixture *f, uint16_t op, uint32_t src_port, uint32_t dst_port,
                       uint32_t flags, const void *data, uint32_t len, uint32_t buf_alloc,
                       uint32_t fwd_cnt)
{
	guest_send_to(f, VSOCK_PARENT_CID, op, src_port, dst_port, flags, data, len, buf_alloc,
	              fwd_cnt);
}

/* The next packet for the guest, after letting the engine look at host sockets. */
static bool guest_recv(struct fixture *f, struct vsock_hdr *h)
{
	size_t n;

	vsock_engine_process_host(f->e);
	n = vsock_engine_guest_rx(f->e, f->pkt, sizeof(f->pkt));
	if (!n)
		return false;
	assert_true(vsock_hdr_decode(f->pkt, n, h));
	assert_int_equal(n, VSOCK_HDR_LEN + h->len);
	return true;
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

/* Test sockets give up after 2 s, so a broken engine fails a test instead of hanging it. */
static int with_timeout(int fd)
{
	struct timeval tv = { .tv_sec = 2 };

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = with_timeout(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));

	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_vsock_header_layout_is_little_endian_44_bytes(void **state)
{
	uint8_t raw[VSOCK_HDR_LEN] = { 0 };
	struct vsock_hdr h;

	(void)state;
	raw[0] = 0x10; /* src_cid = 16 */
	raw[8] = 0x03; /* dst_cid = 3 */
	raw[16] = 0x34; /* src_port = 0x1234 */
	raw[17] = 0x12;
	raw[20] = 0x28; /* dst_port = 9000 = 0x2328 */
	raw[21] = 0x23;
	raw[24] = 1; /* len */
	raw[28] = 1; /* type stream */
	raw[30] = 5; /* op RW */
	raw[36] = 0x00; /* buf_alloc = 0x40000 */
	raw[38] = 0x04;
	raw[40] = 7; /* fwd_cnt */
	assert_true(vsock_hdr_decode(raw, sizeof(raw), &h));
	assert_int_equal(h.src_cid, 16);
	assert_int_equal(h.dst_cid, 3);
	assert_int_equal(h.src_port, 0x1234);
	assert_int_equal(h.dst_port, 9000);
	assert_int_equal(h.len, 1);
	assert_int_equal(h.type, 1);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.buf_alloc, 0x40000);
	assert_int_equal(h.fwd_cnt, 7);
	assert_false(vsock_hdr_decode(raw, VSOCK_HDR_LEN - 1, &h));

	uint8_t again[VSOCK_HDR_LEN];

	vsock_hdr_encode(&h, again);
	assert_memory_equal(raw, again, sizeof(raw));
}

static void test_vsock_connect_line_parsing(void **state)
{
	uint32_t port = 0;
	size_t used = 0;

	(void)state;
	assert_int_equal(vsock_parse_connect_line("CONNECT 5000\nxyz", 16, &port, &used),
	                 VSOCK_LINE_OK);
	assert_int_equal(port, 5000);
	assert_int_equal(used, 13);
	assert_int_equal(vsock_parse_connect_line("CONNECT 4294967295\n", 19, &port, &used),
	                 VSOCK_LINE_OK);
	assert_int_equal(port, 4294967295u);
	assert_int_equal(vsock_parse_connect_line("CONN", 4, &port, &used), VSOCK_LINE_INCOMPLETE);
	assert_int_equal(vsock_parse_connect_line("CONNECT 50", 10, &port, &used),
	                 VSOCK_LINE_INCOMPLETE);
	assert_int_equal(vsock_parse_connect_line("CONNECT 4294967296\n", 19, &port, &used),
	                 VSOCK_LINE_BAD);
	assert_int_equal(vsock_parse_connect_line("CONNECT \n", 9, &port, &used), VSOCK_LINE_BAD);
	assert_int_equal(vsock_parse_connect_line("CONNECT -1\n", 11, &port, &used),
	                 VSOCK_LINE_BAD);
	assert_int_equal(vsock_parse_connect_line("connect 1\n", 10, &port, &used), VSOCK_LINE_BAD);
	assert_int_equal(vsock_parse_connect_line("CONNECT 00000000001", 19, &port, &used),
	                 VSOCK_LINE_BAD);
}

static void test_vsock_heartbeat_is_echoed_and_reported(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	const uint8_t b7 = 0xB7;
	struct vsock_hdr h;

	(void)state;
	guest_send(f, VSOCK_OP_REQUEST, 1025, VSOCK_HEARTBEAT_PORT, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	assert_int_equal(h.src_cid, VSOCK_PARENT_CID);
	assert_int_equal(h.dst_cid, GUEST_CID);
	assert_int_equal(h.src_port, VSOCK_HEARTBEAT_PORT);
	assert_int_equal(h.dst_port, 1025);

	guest_send(f, VSOCK_OP_RW, 1025, VSOCK_HEARTBEAT_PORT, 0, &b7, 1, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 1);
	assert_int_equal(f->pkt[VSOCK_HDR_LEN], 0xB7);
	assert_int_equal(f->events_ok, 1);

	guest_send(f, VSOCK_OP_SHUTDOWN, 1025, VSOCK_HEARTBEAT_PORT, 3, NULL, 0, 4096, 1);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(vsock_engine_conn_count(f->e), 0);
	fixture_free(f);
}

static void test_vsock_wrong_heartbeat_byte_resets(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	const uint8_t bad = 0x00;
	struct vsock_hdr h;

	(void)state;
	guest_send(f, VSOCK_OP_REQUEST, 1025, VSOCK_HEARTBEAT_PORT, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	guest_send(f, VSOCK_OP_RW, 1025, VSOCK_HEARTBEAT_PORT, 0, &bad, 1, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(f->events_bad, 1);
	assert_int_equal(f->events_ok, 0);
	fixture_free(f);
}

/* The engine reads the exact bytes cloister-init sends (guest/init/init_parse.c). */
static void test_vsock_exit_record_matches_cloister_init(void **state)
{
	uint8_t rec[INIT_EXIT_RECORD_SIZE];
	enum vsock_event ev;
	uint32_t value;

	(void)state;
	assert_int_equal(INIT_EXIT_PORT, VSOCK_EXIT_PORT);
	assert_int_equal(INIT_EXIT_RECORD_SIZE, VSOCK_EXIT_RECORD_LEN);
	assert_int_equal(INIT_EXIT_MAGIC, VSOCK_EXIT_MAGIC);
	init_exit_record(3 << 8, rec); /* a wait status: exited with 3 */
	assert_true(vsock_exit_record_parse(rec, &ev, &value));
	assert_int_equal(ev, VSOCK_EVENT_APP_EXITED);
	assert_int_equal(value, 3);
	init_exit_record(9, rec); /* killed by SIGKILL */
	assert_true(vsock_exit_record_parse(rec, &ev, &value));
	assert_int_equal(ev, VSOCK_EVENT_APP_KILLED);
	assert_int_equal(value, 9);
	assert_false(vsock_exit_record_parse((const uint8_t[]){ 0xB7, 0, 3, 0 }, &ev, &value));
	assert_false(vsock_exit_record_parse((const uint8_t[]){ 0xB8, 2, 3, 0 }, &ev, &value));
	assert_false(vsock_exit_record_parse((const uint8_t[]){ 0xB8, 0, 3, 1 }, &ev, &value));
}

/* cloister-init's report_exit(): connect to CID 3 port 9001, write 4 bytes, close. */
static void test_vsock_exit_report_is_read_and_reported(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	uint8_t rec[INIT_EXIT_RECORD_SIZE];
	struct vsock_hdr h;

	(void)state;
	init_exit_record(42 << 8, rec);
	guest_send(f, VSOCK_OP_REQUEST, 1026, VSOCK_EXIT_PORT, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	assert_int_equal(h.src_port, VSOCK_EXIT_PORT);
	assert_int_equal(h.dst_port, 1026);
	/* in two pieces: a stream may split the record anywhere */
	guest_send(f, VSOCK_OP_RW, 1026, VSOCK_EXIT_PORT, 0, rec, 1, 4096, 0);
	assert_int_equal(f->app_events, 0);
	guest_send(f, VSOCK_OP_RW, 1026, VSOCK_EXIT_PORT, 0, rec + 1, 3, 4096, 0);
	assert_int_equal(f->app_events, 1);
	assert_int_equal(f->app_ev, VSOCK_EVENT_APP_EXITED);
	assert_int_equal(f->app_value, 42);
	assert_false(guest_recv(f, &h)); /* nothing is ever sent back on it */

	guest_send(f, VSOCK_OP_SHUTDOWN, 1026, VSOCK_EXIT_PORT, 3, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(vsock_engine_conn_count(f->e), 0);

	/* The app exits once: a later record, e.g. forged by the app, is not believed. */
	init_exit_record(0, rec);
	guest_send(f, VSOCK_OP_REQUEST, 1027, VSOCK_EXIT_PORT, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	guest_send(f, VSOCK_OP_RW, 1027, VSOCK_EXIT_PORT, 0, rec, 4, 4096, 0);
	assert_int_equal(f->app_events, 1);
	assert_int_equal(f->app_value, 42);
	fixture_free(f);
}

static void test_vsock_bad_exit_report_resets_and_is_not_reported(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	const uint8_t wrong[4] = { 0xB8, 7, 1, 0 }, longer[5] = { 0xB8, 0, 1, 0, 0 };
	struct vsock_hdr h;

	(void)state;
	guest_send(f, VSOCK_OP_REQUEST, 1026, VSOCK_EXIT_PORT, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	guest_send(f, VSOCK_OP_RW, 1026, VSOCK_EXIT_PORT, 0, wrong, 4, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);

	guest_send(f, VSOCK_OP_REQUEST, 1027, VSOCK_EXIT_PORT, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	guest_send(f, VSOCK_OP_RW, 1027, VSOCK_EXIT_PORT, 0, longer, 5, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);

	/* closed before the record was complete */
	guest_send(f, VSOCK_OP_REQUEST, 1028, VSOCK_EXIT_PORT, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	guest_send(f, VSOCK_OP_RW, 1028, VSOCK_EXIT_PORT, 0, longer, 2, 4096, 0);
	guest_send(f, VSOCK_OP_SHUTDOWN, 1028, VSOCK_EXIT_PORT, 3, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);

	assert_int_equal(f->app_events, 0);
	assert_int_equal(f->events_bad, 0); /* a bad exit report is not a bad heartbeat */
	assert_int_equal(vsock_engine_conn_count(f->e), 0);
	fixture_free(f);
}

/* On Nitro port 9001 is an ordinary parent port: an app that listens there keeps it. */
static void test_vsock_exit_port_with_host_listener_is_forwarded(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	char path[160];
	uint8_t rec[INIT_EXIT_RECORD_SIZE], got[8];
	struct vsock_hdr h;
	int lfd, cfd;

	(void)state;
	snprintf(path, sizeof(path), "%s_%u", f->uds, VSOCK_EXIT_PORT);
	lfd = listen_at(path);
	init_exit_record(5 << 8, rec);
	guest_send(f, VSOCK_OP_REQUEST, 1026, VSOCK_EXIT_PORT, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	cfd = with_timeout(accept(lfd, NULL, NULL));
	guest_send(f, VSOCK_OP_RW, 1026, VSOCK_EXIT_PORT, 0, rec, 4, 4096, 0);
	assert_int_equal(recv(cfd, got, sizeof(got), MSG_WAITALL), 4);
	assert_memory_equal(got, rec, 4);
	assert_int_equal(f->app_events, 0);
	close(cfd);
	close(lfd);
	fixture_free(f);
}

static void test_vsock_exit_port_off_or_clashing(void **state)
{
	struct vsock_config cfg = { .guest_cid = GUEST_CID, .heartbeat = true };
	struct vsock_engine *e;
	struct cl_diag d = { "" };
	uint8_t pkt[VSOCK_HDR_LEN], out[VSOCK_HDR_LEN + 16];
	struct vsock_hdr h = {
		.src_cid = GUEST_CID,
		.dst_cid = VSOCK_PARENT_CID,
		.src_port = 1026,
		.dst_port = VSOCK_EXIT_PORT,
		.type = VSOCK_TYPE_STREAM,
		.op = VSOCK_OP_REQUEST,
		.buf_alloc = 4096,
	};

	(void)state;
	/* exit_port 0: the port is like any other, refused without a host listener */
	assert_int_equal(vsock_engine_new(&cfg, &e, &d), VSOCK_OK);
	vsock_hdr_encode(&h, pkt);
	vsock_engine_guest_tx(e, pkt, sizeof(pkt));
	assert_int_equal(vsock_engine_guest_rx(e, out, sizeof(out)), VSOCK_HDR_LEN);
	assert_true(vsock_hdr_decode(out, sizeof(out), &h));
	assert_int_equal(h.op, VSOCK_OP_RST);
	vsock_engine_free(e);
	/* the exit report cannot take the heartbeat's port */
	cfg.exit_port = VSOCK_HEARTBEAT_PORT;
	assert_int_equal(vsock_engine_new(&cfg, &e, &d), VSOCK_ERR_INVALID);
	assert_non_null(strstr(d.msg, "heartbeat"));
}

static void test_vsock_connect_to_closed_parent_port_is_reset(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	struct vsock_hdr h;

	(void)state;
	guest_send(f, VSOCK_OP_REQUEST, 2000, 5005, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_port, 5005);
	assert_int_equal(h.dst_port, 2000);
	assert_false(guest_recv(f, &h));
	fixture_free(f);
}

static void test_vsock_guest_to_parent_stream_both_ways(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	char path[160], got[16] = { 0 };
	struct vsock_hdr h;
	int lfd, peer;

	(void)state;
	snprintf(path, sizeof(path), "%s_5000", f->uds);
	lfd = listen_at(path);
	guest_send(f, VSOCK_OP_REQUEST, 2000, 5000, 0, NULL, 0, 65536, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	peer = with_timeout(accept(lfd, NULL, NULL));
	assert_true(peer >= 0);

	guest_send(f, VSOCK_OP_RW, 2000, 5000, 0, "hello", 5, 65536, 0);
	assert_int_equal(read(peer, got, sizeof(got)), 5);
	assert_string_equal(got, "hello");

	assert_int_equal(write(peer, "world!", 6), 6);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 6);
	assert_memory_equal(f->pkt + VSOCK_HDR_LEN, "world!", 6);
	assert_int_equal(h.fwd_cnt, 5); /* the 5 bytes we delivered are credited back */

	close(peer);
	/* The host hung up: the guest is told it will get no more data. */
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_SHUTDOWN);
	assert_true(h.flags & VSOCK_SHUTDOWN_SEND);
	close(lfd);
	fixture_free(f);
}

/* A host peer that dies with bytes it never read makes our next recv fail with ECONNRESET. The
 * reset the guest must get is sent in that same call, not left queued until some later event
 * (nothing else may come, and the guest would wait on a dead stream). */
static void test_vsock_host_reset_reaches_guest_at_once(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	struct vsock_hdr h;
	uint32_t host_port;
	int fd;

	(void)state;
	fd = connect_to(f->uds);
	assert_int_equal(write(fd, "CONNECT 7000\n", 13), 13);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	host_port = h.src_port;
	/* The guest accepts; the "OK" line now waits, unread, in the host client's socket. */
	guest_send(f, VSOCK_OP_RESPONSE, 7000, host_port, 0, NULL, 0, 65536, 0);
	close(fd);

	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_port, host_port);
	assert_int_equal(h.dst_port, 7000);
	assert_int_equal(vsock_engine_conn_count(f->e), 0);
	assert_false(vsock_engine_rx_pending(f->e));
	fixture_free(f);
}

static void test_vsock_parent_connects_with_connect_line(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	char line[32] = { 0 }, expect[32];
	struct vsock_hdr h;
	uint32_t host_port;
	int fd;

	(void)state;
	fd = connect_to(f->uds);
	assert_int_equal(write(fd, "CONNECT 7000\nabc", 16), 16);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.src_cid, VSOCK_PARENT_CID);
	assert_int_equal(h.dst_cid, GUEST_CID);
	assert_int_equal(h.dst_port, 7000);
	host_port = h.src_port;

	guest_send(f, VSOCK_OP_RESPONSE, 7000, host_port, 0, NULL, 0, 65536, 0);
	snprintf(expect, sizeof(expect), "OK %u\n", host_port);
	assert_int_equal(read(fd, line, strlen(expect)), (ssize_t)strlen(expect));
	assert_string_equal(line, expect);

	/* Bytes sent right after the CONNECT line reach the guest, not the parser. */
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 3);
	assert_memory_equal(f->pkt + VSOCK_HDR_LEN, "abc", 3);
	close(fd);
	fixture_free(f);
}

static void test_vsock_malformed_connect_line_closes_client(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	struct vsock_hdr h;
	ssize_t n;
	char c;
	int fd;

	(void)state;
	fd = connect_to(f->uds);
	assert_int_equal(write(fd, "HELLO\n", 6), 6);
	assert_false(guest_recv(f, &h));
	/* Closed by the engine: end of file, or a reset because our line was never read. */
	n = read(fd, &c, 1);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	assert_int_equal(vsock_engine_conn_count(f->e), 0);
	close(fd);
	fixture_free(f);
}

static void test_vsock_guest_exceeding_credit_is_reset(void **state)
{
	struct fixture *f = fixture_new(4096, 0);
	static uint8_t big[8192];
	char path[160];
	struct vsock_hdr h;
	int lfd, peer;

	(void)state;
	snprintf(path, sizeof(path), "%s_5001", f->uds);
	lfd = listen_at(path);
	guest_send(f, VSOCK_OP_REQUEST, 2001, 5001, 0, NULL, 0, 65536, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.buf_alloc, 4096);
	peer = with_timeout(accept(lfd, NULL, NULL));
	guest_send(f, VSOCK_OP_RW, 2001, 5001, 0, big, sizeof(big), 65536, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(vsock_engine_conn_count(f->e), 0);
	close(peer);
	close(lfd);
	fixture_free(f);
}

static void test_vsock_respects_guest_credit(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	char path[160];
	struct vsock_hdr h;
	int lfd, peer;

	(void)state;
	snprintf(path, sizeof(path), "%s_5002", f->uds);
	lfd = listen_at(path);
	guest_send(f, VSOCK_OP_REQUEST, 2002, 5002, 0, NULL, 0, 10, 0);
	assert_true(guest_recv(f, &h));
	peer = with_timeout(accept(lfd, NULL, NULL));
	assert_int_equal(write(peer, "0123456789abcdefghij", 20), 20);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 10);
	assert_false(guest_recv(f, &h)); /* the guest's window is full */
	guest_send(f, VSOCK_OP_CREDIT_UPDATE, 2002, 5002, 0, NULL, 0, 10, 10);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.len, 10);
	assert_memory_equal(f->pkt + VSOCK_HDR_LEN, "abcdefghij", 10);
	close(peer);
	close(lfd);
	fixture_free(f);
}

static void test_vsock_stray_packets_get_bounded_resets(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	struct vsock_hdr h;
	int resets = 0;

	(void)state;
	for (int i = 0; i < 1000; i++)
		guest_send(f, VSOCK_OP_RW, 3000 + i, 6000, 0, "x", 1, 4096, 0);
	while (guest_recv(f, &h)) {
		assert_int_equal(h.op, VSOCK_OP_RST);
		resets++;
	}
	assert_true(resets > 0);
	assert_true(resets <= 64);
	fixture_free(f);
}

static void test_vsock_spoofed_source_cid_is_ignored(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	struct vsock_hdr h = {
		.src_cid = GUEST_CID + 1,
		.dst_cid = VSOCK_PARENT_CID,
		.src_port = 1,
		.dst_port = VSOCK_HEARTBEAT_PORT,
		.type = VSOCK_TYPE_STREAM,
		.op = VSOCK_OP_REQUEST,
	};

	(void)state;
	vsock_hdr_encode(&h, f->pkt);
	vsock_engine_guest_tx(f->e, f->pkt, VSOCK_HDR_LEN);
	assert_false(vsock_engine_rx_pending(f->e));
	assert_int_equal(vsock_engine_conn_count(f->e), 0);
	fixture_free(f);
}

struct log_capture {
	int warnings, debugs;
	char first[256], last_warning[256];
};

static void capture_log(enum cl_log_level level, const char *msg, void *opaque)
{
	struct log_capture *lc = opaque;

	if (level == CL_LOG_WARN) {
		if (!lc->warnings++)
			snprintf(lc->first, sizeof(lc->first), "%s", msg);
		snprintf(lc->last_warning, sizeof(lc->last_warning), "%s", msg);
	} else if (level == CL_LOG_DEBUG) {
		lc->debugs++;
	}
}

/* Junk from the guest is dropped (or reset) and named in the log: the first few packets at
 * warning level, so the log says what the guest did, the rest at debug level only, so a guest
 * flooding junk cannot flood the log. The engine keeps working. */
static void test_vsock_guest_junk_is_named_then_quiet(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	enum cl_log_level old_level = cl_log_get_level();
	struct log_capture lc = { 0 };
	struct vsock_hdr h;
	int resets = 0;

	(void)state;
	cl_log_set_sink(capture_log, &lc);
	cl_log_set_level(CL_LOG_DEBUG);
	memset(f->pkt, 0, VSOCK_HDR_LEN);
	vsock_engine_guest_tx(f->e, f->pkt, 20); /* a cut header */
	guest_send(f, VSOCK_OP_RW, 1000, 5000, 0, "x", 1, 4096, 0);
	f->pkt[24] = 0xff; /* len: 255 claimed, 1 sent */
	vsock_engine_guest_tx(f->e, f->pkt, VSOCK_HDR_LEN + 1);
	guest_send(f, 0x7777, 1001, 5000, 0, NULL, 0, 4096, 0); /* unknown op: reset */
	guest_send_to(f, 0x1234567890ULL, VSOCK_OP_REQUEST, 1002, 5000, 0, NULL, 0, 4096, 0);
	assert_int_equal(lc.warnings, 4);
	assert_string_equal(lc.first, "vsock: dropped a packet from the guest: 20 bytes, shorter "
	                              "than a 44-byte header");
	assert_non_null(strstr(lc.last_warning, "to CID 78187493520 port 5000"));
	assert_non_null(strstr(lc.last_warning, "(more are logged at debug level only)"));
	for (int i = 0; i < 100; i++)
		guest_send(f, 0x7777, 2000 + i, 5000, 0, NULL, 0, 4096, 0);
	assert_int_equal(lc.warnings, 4);
	assert_true(lc.debugs >= 100);
	cl_log_set_sink(NULL, NULL);
	cl_log_set_level(old_level);

	while (guest_recv(f, &h)) {
		assert_int_equal(h.op, VSOCK_OP_RST);
		resets++;
	}
	assert_true(resets >= 2 && resets <= 64); /* the unknown ops and the stranger's CID */
	guest_send(f, VSOCK_OP_REQUEST, 3000, VSOCK_HEARTBEAT_PORT, 0, NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	fixture_free(f);
}

static void test_vsock_connection_limit_holds(void **state)
{
	struct fixture *f = fixture_new(0, 4);
	struct vsock_hdr h;
	int responses = 0, resets = 0;

	(void)state;
	for (int i = 0; i < 10; i++)
		guest_send(f, VSOCK_OP_REQUEST, 4000 + i, VSOCK_HEARTBEAT_PORT, 0, NULL, 0, 4096,
		           0);
	while (guest_recv(f, &h)) {
		if (h.op == VSOCK_OP_RESPONSE)
			responses++;
		else if (h.op == VSOCK_OP_RST)
			resets++;
	}
	assert_int_equal(responses, 4);
	assert_int_equal(resets, 6);
	assert_int_equal(vsock_engine_conn_count(f->e), 4);
	fixture_free(f);
}

static void test_vsock_peer_vanishing_resets_only_its_connection(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	char path[160], got[8] = { 0 };
	struct vsock_hdr h;
	int lfd, a, b;

	(void)state;
	snprintf(path, sizeof(path), "%s_5003", f->uds);
	lfd = listen_at(path);
	guest_send(f, VSOCK_OP_REQUEST, 2100, 5003, 0, NULL, 0, 65536, 0);
	guest_send(f, VSOCK_OP_REQUEST, 2101, 5003, 0, NULL, 0, 65536, 0);
	assert_true(guest_recv(f, &h));
	assert_true(guest_recv(f, &h));
	a = with_timeout(accept(lfd, NULL, NULL));
	b = with_timeout(accept(lfd, NULL, NULL));
	close(a);
	/* The guest keeps writing to the vanished peer: that connection is reset... */
	guest_send(f, VSOCK_OP_RW, 2100, 5003, 0, "dead", 4, 65536, 0);
	guest_send(f, VSOCK_OP_RW, 2100, 5003, 0, "dead", 4, 65536, 0);
	for (int i = 0; i < 4 && guest_recv(f, &h);)
		if (h.op == VSOCK_OP_RST && h.dst_port == 2100)
			break;
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.dst_port, 2100);
	/* ...and the other one carries on. */
	guest_send(f, VSOCK_OP_RW, 2101, 5003, 0, "live", 4, 65536, 0);
	assert_int_equal(read(b, got, sizeof(got)), 4);
	assert_string_equal(got, "live");
	close(b);
	close(lfd);
	fixture_free(f);
}

/* CID 2 is accepted as another name for the parent (docs/vsock.md). Every reply must carry the
 * CID the guest addressed: Linux matches an incoming packet to a connected socket by its source
 * (cid, port) against the socket's remote address, so a reply from CID 3 to a socket connected
 * to CID 2 would find no socket and be answered with a reset by the guest. */
static void test_vsock_cid2_alias_reaches_parent_port_and_replies_as_cid2(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	const uint64_t alias = VSOCK_HOST_CID_ALIAS;
	char path[160], got[8] = { 0 };
	struct vsock_hdr h;
	int lfd, peer;

	(void)state;
	assert_int_equal(alias, 2);
	snprintf(path, sizeof(path), "%s_5004", f->uds);
	lfd = listen_at(path);
	guest_send_to(f, alias, VSOCK_OP_REQUEST, 2200, 5004, 0, NULL, 0, 65536, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	assert_int_equal(h.src_cid, 2);
	assert_int_equal(h.dst_cid, GUEST_CID);
	assert_int_equal(h.src_port, 5004);
	assert_int_equal(h.dst_port, 2200);
	peer = with_timeout(accept(lfd, NULL, NULL)); /* the same <uds>_5004 as for CID 3 */

	guest_send_to(f, alias, VSOCK_OP_RW, 2200, 5004, 0, "ping", 4, 65536, 0);
	assert_int_equal(read(peer, got, sizeof(got)), 4);
	assert_string_equal(got, "ping");
	assert_int_equal(write(peer, "pong", 4), 4);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.src_cid, 2);
	assert_int_equal(h.src_port, 5004);
	assert_int_equal(h.dst_port, 2200);
	assert_memory_equal(f->pkt + VSOCK_HDR_LEN, "pong", 4);

	/* Control packets too: the host's end of stream, and the reset that ends the stream. */
	close(peer);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.src_cid, 2);
	guest_send_to(f, alias, VSOCK_OP_SHUTDOWN, 2200, 5004,
	              VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND, NULL, 0, 65536, 4);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_cid, 2);
	assert_int_equal(vsock_engine_conn_count(f->e), 0);

	/* A closed port addressed as CID 2 is refused from CID 2. */
	guest_send_to(f, alias, VSOCK_OP_REQUEST, 2201, 5999, 0, NULL, 0, 65536, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_cid, 2);
	assert_int_equal(h.src_port, 5999);
	assert_int_equal(h.dst_port, 2201);
	close(lfd);
	fixture_free(f);
}

/* An init that sends its heartbeat to CID 2 boots too, and gets its echo from CID 2. */
static void test_vsock_heartbeat_via_cid2_alias(void **state)
{
	struct fixture *f = fixture_new(0, 0);
	const uint8_t b7 = VSOCK_HEARTBEAT_BYTE;
	struct vsock_hdr h;

	(void)state;
	guest_send_to(f, VSOCK_HOST_CID_ALIAS, VSOCK_OP_REQUEST, 1025, VSOCK_HEARTBEAT_PORT, 0,
	              NULL, 0, 4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID_ALIAS);
	guest_send_to(f, VSOCK_HOST_CID_ALIAS, VSOCK_OP_RW, 1025, VSOCK_HEARTBEAT_PORT, 0, &b7, 1,
	              4096, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID_ALIAS);
	assert_int_equal(h.src_port, VSOCK_HEARTBEAT_PORT);
	assert_int_equal(h.len, 1);
	assert_int_equal(f->pkt[VSOCK_HDR_LEN], VSOCK_HEARTBEAT_BYTE);
	assert_int_equal(f->events_ok, 1);
	assert_int_equal(f->events_bad, 0);
	fixture_free(f);
}

/* Bytes queued in the kernel for @fd to read. */
static uint32_t queued_for(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	assert_true(n >= 0);
	return (uint32_t)n;
}

static uint8_t pattern(uint32_t i)
{
	return (uint8_t)(i % 251);
}

/*
 * Issue 5: a stalled peer cannot stall other connections or grow the monitor. Host peer A never
 * reads; the guest writes to it as a Linux guest does, up to its credit and learning freed
 * credit from the engine's headers (and asking with CREDIT_REQUEST once it has none). Once the
 * kernel socket is full, the engine holds exactly one window (buf_alloc) for A and grants no
 * more; meanwhile connection B carries data both ways. When A's peer reads again, every byte
 * arrives in order.
 */
static void test_vsock_stalled_host_reader_is_bounded_and_stalls_only_itself(void **state)
{
	const uint32_t window = 64 * 1024;
	struct fixture *f = fixture_new(window, 0);
	static uint8_t chunk[16384], got[16384];
	uint32_t sent = 0, fwd = 0, b_got = 0, a_read = 0;
	char path[160];
	struct vsock_hdr h;
	int lfd, a, b, rounds;
	bool asked = false;

	(void)state;
	snprintf(path, sizeof(path), "%s_5005", f->uds);
	lfd = listen_at(path);
	guest_send(f, VSOCK_OP_REQUEST, 2300, 5005, 0, NULL, 0, 65536, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	a = with_timeout(accept(lfd, NULL, NULL));
	guest_send(f, VSOCK_OP_REQUEST, 2301, 5005, 0, NULL, 0, 65536, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	b = with_timeout(accept(lfd, NULL, NULL));

	for (rounds = 0; rounds < 100000; rounds++) {
		uint32_t credit = window - (sent - fwd), n = credit;
		bool moved = false;

		if (n > sizeof(chunk))
			n = sizeof(chunk);
		for (uint32_t i = 0; i < n; i++)
			chunk[i] = pattern(sent + i);
		if (n) {
			guest_send(f, VSOCK_OP_RW, 2300, 5005, 0, chunk, n, 65536, 0);
			sent += n;
		} else if (!asked) {
			guest_send(f, VSOCK_OP_CREDIT_REQUEST, 2300, 5005, 0, NULL, 0, 65536, 0);
			asked = true;
		}
		while (guest_recv(f, &h)) {
			assert_int_equal(h.dst_port, 2300);
			assert_int_equal(h.op, VSOCK_OP_CREDIT_UPDATE);
			assert_true(h.buf_alloc == window);
			if (h.fwd_cnt != fwd)
				moved = true;
			fwd = h.fwd_cnt;
		}
		if (moved)
			asked = false;
		else if (!n && asked)
			break; /* no credit, and asking brought none: A is stalled */
	}
	assert_true(rounds < 100000);
	/* The engine credited exactly what the kernel took, and holds the rest: one window. */
	assert_true(sent > window); /* the socket took some before it filled */
	assert_int_equal(fwd, queued_for(a));
	assert_int_equal(sent - queued_for(a), window);
	/* It grants nothing more while A's peer sleeps. */
	guest_send(f, VSOCK_OP_CREDIT_REQUEST, 2300, 5005, 0, NULL, 0, 65536, 0);
	assert_true(guest_recv(f, &h));
	assert_int_equal(h.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(h.fwd_cnt, fwd);
	assert_false(guest_recv(f, &h));

	/* B still carries data both ways, 48 KiB each way, with A stalled throughout. */
	memset(chunk, 'b', sizeof(chunk));
	for (int i = 0; i < 3; i++) {
		uint32_t want = (uint32_t)(i + 1) * (uint32_t)sizeof(chunk);

		guest_send(f, VSOCK_OP_RW, 2301, 5005, 0, chunk, sizeof(chunk), 65536, 0);
		while (b_got < want) {
			ssize_t r = read(b, got, sizeof(got));

			assert_true(r > 0);
			for (ssize_t k = 0; k < r; k++)
				assert_int_equal(got[k], 'b');
			b_got += (uint32_t)r;
		}
	}
	assert_int_equal(b_got, 3 * sizeof(chunk));
	{
		uint32_t to_guest = 0;

		memset(chunk, 'B', sizeof(chunk));
		for (int i = 0; i < 3; i++)
			assert_int_equal(write(b, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
		while (to_guest < 3 * sizeof(chunk) && guest_recv(f, &h)) {
			assert_int_equal(h.dst_port, 2301);
			if (h.op != VSOCK_OP_RW)
				continue;
			for (uint32_t k = 0; k < h.len; k++)
				assert_int_equal(f->pkt[VSOCK_HDR_LEN + k], 'B');
			to_guest += h.len;
			/* the guest consumes at once and says so */
			guest_send(f, VSOCK_OP_CREDIT_UPDATE, 2301, 5005, 0, NULL, 0, 65536,
			           to_guest);
		}
		assert_int_equal(to_guest, 3 * sizeof(chunk));
	}
	/* A is still held at one window: B's traffic took nothing from it, nor added to it. */
	assert_int_equal(sent - queued_for(a), window);

	/* A's peer wakes up: every byte the guest sent arrives, in order. */
	while (a_read < sent) {
		ssize_t r = read(a, got, sizeof(got));

		assert_true(r > 0);
		for (ssize_t k = 0; k < r; k++)
			assert_int_equal(got[k], pattern(a_read + (uint32_t)k));
		a_read += (uint32_t)r;
		/* lets the engine flush its buffer on EPOLLOUT; it may still owe B a credit update */
		while (guest_recv(f, &h))
			assert_true(h.dst_port == 2300 || h.op == VSOCK_OP_CREDIT_UPDATE);
	}
	assert_int_equal(a_read, sent);
	assert_int_equal(vsock_engine_conn_count(f->e), 2);
	close(a);
	close(b);
	close(lfd);
	fixture_free(f);
}

struct relay_args {
	int a, b, rc;
};

static void *relay_thread(void *arg)
{
	struct relay_args *r = arg;

	r->rc = vsock_relay(r->a, r->b, 4096);
	return NULL;
}

static void test_vsock_relay_copies_both_ways_and_passes_half_close(void **state)
{
	static uint8_t big[300000], got[300000];
	struct relay_args r;
	pthread_t th;
	int a[2], b[2];
	size_t done = 0;
	char c;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	with_timeout(a[0]);
	with_timeout(b[1]);
	r.a = a[1];
	r.b = b[0];
	assert_int_equal(pthread_create(&th, NULL, relay_thread, &r), 0);

	/* More than the relay buffer and the socket buffers: it must stream, not hold. */
	assert_int_equal(write(b[1], "pong", 4), 4);
	/* In 16 KiB steps, reading what arrived after each: one blocking write of everything
	 * could outgrow what the socket buffers hold and wait on a reader that is this thread. */
	for (size_t off = 0; off < sizeof(big);) {
		size_t step = sizeof(big) - off < 16384 ? sizeof(big) - off : 16384;
		ssize_t n = write(a[0], big + off, step);

		assert_true(n > 0);
		off += (size_t)n;
		while (done < off) {
			ssize_t m = read(b[1], got + done, sizeof(got) - done);

			assert_true(m > 0);
			done += (size_t)m;
		}
	}
	assert_memory_equal(big, got, sizeof(big));
	assert_int_equal(read(a[0], &c, 1), 1);
	assert_int_equal(c, 'p');

	shutdown(a[0], SHUT_WR);
	assert_int_equal(read(b[1], &c, 1), 0); /* the half-close arrived */
	assert_int_equal(write(b[1], "z", 1), 1); /* the other direction still flows */
	char rest[4] = { 0 };
	assert_int_equal(read(a[0], rest, 3), 3);
	assert_memory_equal(rest, "ong", 3);
	assert_int_equal(read(a[0], &c, 1), 1);
	assert_int_equal(c, 'z');
	shutdown(b[1], SHUT_WR);
	pthread_join(th, NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(read(a[0], &c, 1), 0);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

static void test_vsock_uds_path_convention(void **state)
{
	char p[64];

	(void)state;
	assert_int_equal(vsock_uds_path("/run/cloister", "i-00-enc1f", p, sizeof(p)), 0);
	assert_string_equal(p, "/run/cloister/i-00-enc1f.vsock");
	assert_int_equal(vsock_uds_path("/run/cloister", "i-00-enc1f", p, 10), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vsock_header_layout_is_little_endian_44_bytes),
		cmocka_unit_test(test_vsock_connect_line_parsing),
		cmocka_unit_test(test_vsock_heartbeat_is_echoed_and_reported),
		cmocka_unit_test(test_vsock_wrong_heartbeat_byte_resets),
		cmocka_unit_test(test_vsock_connect_to_closed_parent_port_is_reset),
		cmocka_unit_test(test_vsock_guest_to_parent_stream_both_ways),
		cmocka_unit_test(test_vsock_parent_connects_with_connect_line),
		cmocka_unit_test(test_vsock_host_reset_reaches_guest_at_once),
		cmocka_unit_test(test_vsock_malformed_connect_line_closes_client),
		cmocka_unit_test(test_vsock_guest_exceeding_credit_is_reset),
		cmocka_unit_test(test_vsock_respects_guest_credit),
		cmocka_unit_test(test_vsock_stray_packets_get_bounded_resets),
		cmocka_unit_test(test_vsock_spoofed_source_cid_is_ignored),
		cmocka_unit_test(test_vsock_guest_junk_is_named_then_quiet),
		cmocka_unit_test(test_vsock_connection_limit_holds),
		cmocka_unit_test(test_vsock_peer_vanishing_resets_only_its_connection),
		cmocka_unit_test(test_vsock_cid2_alias_reaches_parent_port_and_replies_as_cid2),
		cmocka_unit_test(test_vsock_heartbeat_via_cid2_alias),
		cmocka_unit_test(test_vsock_stalled_host_reader_is_bounded_and_stalls_only_itself),
		cmocka_unit_test(test_vsock_relay_copies_both_ways_and_passes_half_close),
		cmocka_unit_test(test_vsock_uds_path_convention),
		cmocka_unit_test(test_vsock_exit_record_matches_cloister_init),
		cmocka_unit_test(test_vsock_exit_report_is_read_and_reported),
		cmocka_unit_test(test_vsock_bad_exit_report_resets_and_is_not_reported),
		cmocka_unit_test(test_vsock_exit_port_with_host_listener_is_forwarded),
		cmocka_unit_test(test_vsock_exit_port_off_or_clashing),
	};

	return cmocka_run_group_tests_name("vsock", tests, NULL, NULL);
}

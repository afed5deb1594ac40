/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-vsock header codec and the host "CONNECT <port>" line: plain byte-buffer functions,
 * driven by the fuzzer without KVM. */
#include <string.h>

#include "lib/vsock/vsock.h"

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

bool vsock_hdr_decode(const uint8_t *buf, size_t len, struct vsock_hdr *h)
{
	if (len < VSOCK_HDR_LEN)
		return false;
	h->src_cid = get_le64(buf + 0);
	h->dst_cid = get_le64(buf + 8);
	h->src_port = get_le32(buf + 16);
	h->dst_port = get_le32(buf + 20);
	h->len = get_le32(buf + 24);
	h->type = get_le16(buf + 28);
	h->op = get_le16(buf + 30);
	h->flags = get_le32(buf + 32);
	h->buf_alloc = get_le32(buf + 36);
	h->fwd_cnt = get_le32(buf + 40);
	return true;
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t *buf)
{
	put_le64(buf + 0, h->src_cid);
	put_le64(buf + 8, h->dst_cid);
	put_le32(buf + 16, h->src_port);
	put_le32(buf + 20, h->dst_port);
	put_le32(buf + 24, h->len);
	put_le16(buf + 28, h->type);
	put_le16(buf + 30, h->op);
	put_le32(buf + 32, h->flags);
	put_le32(buf + 36, h->buf_alloc);
	put_le32(buf + 40, h->fwd_cnt);
}

/* "CONNECT " + 10 digits + "\n" = 19; allow a little slack for nothing else. */
#define CONNECT_LINE_MAX 32

enum vsock_line vsock_parse_connect_line(const char *buf, size_t len, uint32_t *port,
                                         size_t *consumed)
{
	static const char verb[] = "CONNECT ";
	const size_t vlen = sizeof(verb) - 1;
	uint64_t value = 0;
	size_t i, digits = 0;

	for (i = 0; i < len && i < vlen; i++)
		if (buf[i] != verb[i])
			return VSOCK_LINE_BAD;
	if (len <= vlen)
		return VSOCK_LINE_INCOMPLETE;
	for (i = vlen; i < len; i++) {
		char ch = buf[i];

		if (ch == '\n')
			break;
		if (ch < '0' || ch > '9')
			return VSOCK_LINE_BAD;
		if (++digits > 10)
			return VSOCK_LINE_BAD;
		value = value * 10 + (uint64_t)(ch - '0');
		if (value > UINT32_MAX)
			return VSOCK_LINE_BAD;
	}
	if (i == len)
		return i >= CONNECT_LINE_MAX ? VSOCK_LINE_BAD : VSOCK_LINE_INCOMPLETE;
	if (digits == 0)
		return VSOCK_LINE_BAD;
	*port = (uint32_t)value;
	*consumed = i + 1;
	return VSOCK_LINE_OK;
}

bool vsock_exit_record_parse(const uint8_t *rec, enum vsock_event *ev, uint32_t *value)
{
	if (rec[0] != VSOCK_EXIT_MAGIC || rec[1] > 1 || rec[3] != 0)
		return false;
	*ev = rec[1] == 0 ? VSOCK_EVENT_APP_EXITED : VSOCK_EVENT_APP_KILLED;
	*value = rec[2];
	return true;
}

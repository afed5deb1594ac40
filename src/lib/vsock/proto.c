/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-vsock header codec and the host "CONNECT <port>" line: plain byte-buffer functions,
 * driven by the fuzzer without KVM. */
#include <string.h>

#include "lib/util/checked.h"
#include "lib/vsock/vsock.h"

bool vsock_hdr_decode(const uint8_t *buf, size_t len, struct vsock_hdr *h)
{
	if (len < VSOCK_HDR_LEN)
		return false;
	h->src_cid = cl_get_le64(buf + 0);
	h->dst_cid = cl_get_le64(buf + 8);
	h->src_port = cl_get_le32(buf + 16);
	h->dst_port = cl_get_le32(buf + 20);
	h->len = cl_get_le32(buf + 24);
	h->type = cl_get_le16(buf + 28);
	h->op = cl_get_le16(buf + 30);
	h->flags = cl_get_le32(buf + 32);
	h->buf_alloc = cl_get_le32(buf + 36);
	h->fwd_cnt = cl_get_le32(buf + 40);
	return true;
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t *buf)
{
	cl_put_le64(buf + 0, h->src_cid);
	cl_put_le64(buf + 8, h->dst_cid);
	cl_put_le32(buf + 16, h->src_port);
	cl_put_le32(buf + 20, h->dst_port);
	cl_put_le32(buf + 24, h->len);
	cl_put_le16(buf + 28, h->type);
	cl_put_le16(buf + 30, h->op);
	cl_put_le32(buf + 32, h->flags);
	cl_put_le32(buf + 36, h->buf_alloc);
	cl_put_le32(buf + 40, h->fwd_cnt);
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

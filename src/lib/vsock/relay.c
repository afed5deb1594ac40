/* SPDX-License-Identifier: Apache-2.0 */
/* Byte relay between two stream sockets, for the TCP <-> vsock forwarder. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/vsock/vsock.h"

struct half {
	int from, to;
	uint8_t *buf;
	size_t len, off;
	bool eof; /* @from will send no more */
	bool done; /* eof seen and everything delivered; @to was shut for writing */
};

/* Move what can be moved without blocking. Returns -errno on a hard error. */
static int half_pump(struct half *h, size_t cap, short rev_from)
{
	if (!h->eof && h->len == 0 && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = recv(h->from, h->buf, cap, MSG_DONTWAIT);

		if (n > 0) {
			h->len = (size_t)n;
			h->off = 0;
		} else if (n == 0) {
			h->eof = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			return -errno;
		}
	}
	if (h->len > h->off) { /* non-blocking: try even without POLLOUT */
		ssize_t n = send(h->to, h->buf + h->off, h->len - h->off,
		                 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			h->off += (size_t)n;
			if (h->off == h->len)
				h->len = h->off = 0;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			return -errno;
		}
	}
	if (h->eof && h->len == 0 && !h->done) {
		shutdown(h->to, SHUT_WR);
		h->done = true;
	}
	return 0;
}

int vsock_relay(int a, int b, size_t bufsize)
{
	struct half ab = { .from = a, .to = b }, ba = { .from = b, .to = a };
	int err = 0;

	ab.buf = malloc(bufsize);
	ba.buf = malloc(bufsize);
	if (!ab.buf || !ba.buf) {
		err = -ENOMEM;
		goto out;
	}
	while (!(ab.done && ba.done)) {
		struct pollfd p[2] = { { .fd = a }, { .fd = b } };

		/* Read only into an empty buffer; wait for room only when something is queued. */
		if (!ab.eof && !ab.len)
			p[0].events |= POLLIN;
		if (!ba.eof && !ba.len)
			p[1].events |= POLLIN;
		if (ab.len)
			p[1].events |= POLLOUT;
		if (ba.len)
			p[0].events |= POLLOUT;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		err = half_pump(&ab, bufsize, p[0].revents);
		if (!err)
			err = half_pump(&ba, bufsize, p[1].revents);
		if (err)
			break;
		/* A peer that hung up completely (POLLHUP after its end of stream) can take no
		 * more data either: nothing is left to relay. */
		if (((p[0].revents & (POLLHUP | POLLERR)) && ab.eof) ||
		    ((p[1].revents & (POLLHUP | POLLERR)) && ba.eof))
			break;
	}
out:
	free(ab.buf);
	free(ba.buf);
	return err;
}

int vsock_uds_path(const char *sockets_dir, const char *enclave_id, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s.vsock", sockets_dir, enclave_id);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

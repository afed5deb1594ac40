/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/nsm/wire.h"

int nsmd_send(int fd, const void *hdr, size_t hdr_len, const void *payload, size_t payload_len,
              int pass_fd)
{
	/* sendmsg takes iovecs of non-const pointers and only reads them. */
	struct iovec iov[2] = { { (void *)(uintptr_t)hdr, hdr_len },
		                { (void *)(uintptr_t)payload, payload_len } };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = payload_len ? 2 : 1 };
	ssize_t n;

	if (pass_fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == hdr_len + payload_len ? 0 : -EMSGSIZE;
}

ssize_t nsmd_recv(int fd, void *buf, size_t cap, int *got_fd)
{
	struct iovec iov = { buf, cap };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int passed = -1;
	ssize_t n;

	memset(&ctl, 0, sizeof(ctl));
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&passed, CMSG_DATA(c), sizeof(int));
	if (got_fd)
		*got_fd = passed;
	else if (passed >= 0)
		close(passed);
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		if (got_fd && passed >= 0) {
			close(passed);
			*got_fd = -1;
		}
		return -EMSGSIZE;
	}
	return n;
}

void nsmd_socket_name(const char *state_dir, const char *ca_dir, char *out, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: only to keep directories apart */

	/* both strings with their NULs: ("a", "bc") and ("ab", "c") differ */
	for (const char *p = state_dir;; p++) {
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
		if (!*p)
			break;
	}
	for (const char *p = ca_dir; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	snprintf(out, len, "cloister-nsmd.v%d.%u.%016llx", NSMD_PROTO, (unsigned)geteuid(),
	         (unsigned long long)h);
}

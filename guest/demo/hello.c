/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister's demo enclave app (docs/build-enclave.md, "Demo image"): a static program that
 *   - greets on the console,
 *   - asks the NSM for an attestation document (libnsm, AWS nsm-lib's API) and reports it,
 *   - serves vsock port 5000 (or argv[1]): it echoes what a client sends, except a line
 *     "ATTEST <user data>\n", answered with a 4-byte big-endian length and an attestation
 *     document carrying that user data, so the parent can verify one end to end.
 * "--once" makes it exit after the first client (tests).
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "nsm.h"

#define DOC_MAX 16384

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* An attestation document with @user_data; returns its length or 0. */
static uint32_t attest(const uint8_t *user_data, uint32_t len, uint8_t *doc)
{
	uint32_t doc_len = DOC_MAX;
	int32_t fd = nsm_lib_init();
	ErrorCode rc;

	if (fd < 0)
		return 0;
	rc = nsm_get_attestation_doc(fd, len ? user_data : NULL, len, NULL, 0, NULL, 0, doc,
	                             &doc_len);
	nsm_lib_exit(fd);
	return rc == ERROR_CODE_SUCCESS ? doc_len : 0;
}

static void serve(int c)
{
	static uint8_t doc[DOC_MAX];
	char buf[4096];
	ssize_t n;

	while ((n = read(c, buf, sizeof(buf))) > 0) {
		if (n >= 6 && !memcmp(buf, "ATTEST", 6)) {
			size_t ul = (size_t)n > 7 ? (size_t)n - 7 : 0;
			uint32_t len;
			uint8_t hdr[4];

			while (ul && (buf[7 + ul - 1] == '\n' || buf[7 + ul - 1] == '\r'))
				ul--;
			len = attest((const uint8_t *)buf + 7, (uint32_t)ul, doc);
			hdr[0] = (uint8_t)(len >> 24);
			hdr[1] = (uint8_t)(len >> 16);
			hdr[2] = (uint8_t)(len >> 8);
			hdr[3] = (uint8_t)len;
			if (write_all(c, hdr, 4) < 0 || write_all(c, doc, len) < 0)
				return;
			continue;
		}
		if (write_all(c, buf, (size_t)n) < 0)
			return;
	}
}

int main(int argc, char **argv)
{
	static uint8_t doc[DOC_MAX];
	struct utsname u;
	unsigned port = 5000;
	bool once = false;
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };
	uint32_t len;
	int s;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--once"))
			once = true;
		else
			port = (unsigned)strtoul(argv[i], NULL, 10);
	}
	uname(&u);
	printf("cloister demo: hello from the enclave (pid %d, kernel %s)\n", (int)getpid(),
	       u.release);
	len = attest((const uint8_t *)"cloister-demo", 13, doc);
	if (len)
		printf("cloister demo: attestation document of %u bytes\n", len);
	else
		printf("cloister demo: no attestation document (is /dev/nsm there?)\n");
	fflush(stdout);

	s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.svm_port = port;
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0) {
		printf("cloister demo: cannot listen on vsock port %u: %s\n", port,
		       strerror(errno));
		return 1;
	}
	printf("cloister demo: echo server on vsock port %u\n", port);
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			printf("cloister demo: accept: %s\n", strerror(errno));
			return 1;
		}
		serve(c);
		close(c);
		if (once)
			return 0;
	}
}

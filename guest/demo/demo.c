/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister-demo: the application of the README's main command (docs/demo.md). A static program
 * for the enclave that listens on vsock port 5000 and answers one line-based request per
 * connection, so the parent can show that the enclave runs, talks, and attests:
 *
 *   ECHO <text>                          → <text>
 *   ATTEST <nonce-hex> [<user-data-hex>] → OK <len>, then <len> raw bytes (the COSE document)
 *   RANDOM                               → OK <64 hex>          (32 bytes from the NSM)
 *   PCR <n>                              → OK <hex> locked|unlocked
 *   EXTEND <n> <data-hex>                → OK <new value hex>
 *   LOCK <n>                             → OK locked
 *   INFO                                 → OK module_id=… version=… max_pcrs=… locked=…
 *   QUIT                                 → OK bye, and the app exits 0 (the enclave powers off)
 *
 * Every line ends with '\n'. A failure is "ERR <reason>\n". The NSM is reached through libnsm,
 * AWS nsm-lib's C API, exactly as a Nitro application would.
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "nsm.h"

#define DEMO_PORT 5000
/* A request line: "ATTEST " + two fields of at most 1024 bytes in hex (the NSM's limit). */
#define LINE_MAX_BYTES 8192
#define FIELD_MAX 1024
/* The NSM's response buffer is 0x3000 bytes; a document is always smaller. */
#define DOC_MAX 16384
/* A client that stalls must not block the next one: the server is single-threaded. */
#define CLIENT_TIMEOUT_S 10

static int32_t nsm_fd = -1;

static const char *const nsm_errors[] = {
	"Success",          "InvalidArgument", "InvalidIndex",  "InvalidResponse", "ReadOnlyIndex",
	"InvalidOperation", "BufferTooSmall",  "InputTooLarge", "InternalError",
};

static const char *nsm_error_name(ErrorCode rc)
{
	if ((unsigned)rc < sizeof(nsm_errors) / sizeof(nsm_errors[0]))
		return nsm_errors[rc];
	return "Unknown";
}

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

__attribute__((format(printf, 2, 3))) static int reply(int c, const char *fmt, ...)
{
	char buf[LINE_MAX_BYTES];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return write_all(c, buf, (size_t)n);
}

/* The NSM descriptor, opened on first use so the app still serves ECHO without /dev/nsm. */
static bool nsm_ready(int c)
{
	if (nsm_fd < 0)
		nsm_fd = nsm_lib_init();
	if (nsm_fd < 0) {
		reply(c, "ERR no /dev/nsm in this enclave (%s)\n", strerror(errno));
		return false;
	}
	return true;
}

static int hex_nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decode @hex (NUL-terminated) into @out (capacity @cap); returns the length or -1. */
static long hex_decode(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* A PCR index: decimal, 0..65535 (the NSM itself says InvalidIndex above 31). */
static bool parse_index(const char *s, uint16_t *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 0xffff)
		return false;
	*out = (uint16_t)v;
	return true;
}

static void do_attest(int c, char *nonce_hex, char *ud_hex)
{
	static uint8_t doc[DOC_MAX];
	uint8_t nonce[FIELD_MAX], ud[FIELD_MAX];
	long nl, ul = 0;
	uint32_t len = sizeof(doc);
	ErrorCode rc;

	if (!nonce_hex) {
		reply(c, "ERR usage: ATTEST <nonce-hex> [<user-data-hex>]\n");
		return;
	}
	nl = hex_decode(nonce_hex, nonce, sizeof(nonce));
	if (nl < 0 || (ud_hex && (ul = hex_decode(ud_hex, ud, sizeof(ud))) < 0)) {
		reply(c, "ERR nonce and user data must be even-length hex of at most %d bytes\n",
		      FIELD_MAX);
		return;
	}
	if (!nsm_ready(c))
		return;
	rc = nsm_get_attestation_doc(nsm_fd, ud_hex ? ud : NULL, (uint32_t)ul, nonce, (uint32_t)nl,
	                             NULL, 0, doc, &len);
	if (rc != ERROR_CODE_SUCCESS) {
		reply(c, "ERR NSM Attestation: %s\n", nsm_error_name(rc));
		return;
	}
	if (reply(c, "OK %u\n", len) == 0)
		write_all(c, doc, len);
	printf("cloister demo: attestation document of %u bytes (nonce %ld bytes)\n", len, nl);
	fflush(stdout);
}

static void do_random(int c)
{
	uint8_t buf[32];
	uintptr_t len = sizeof(buf);
	char hex[2 * sizeof(buf) + 1];
	ErrorCode rc;

	if (!nsm_ready(c))
		return;
	rc = nsm_get_random(nsm_fd, buf, &len);
	if (rc != ERROR_CODE_SUCCESS || len != sizeof(buf)) {
		reply(c, "ERR NSM GetRandom: %s (%lu bytes)\n", nsm_error_name(rc),
		      (unsigned long)len);
		return;
	}
	hex_encode(buf, sizeof(buf), hex);
	reply(c, "OK %s\n", hex);
}

static void do_pcr(int c, const char *arg)
{
	uint8_t val[64];
	uint32_t len = sizeof(val);
	char hex[2 * sizeof(val) + 1];
	uint16_t index;
	bool lock = false;
	ErrorCode rc;

	if (!parse_index(arg, &index)) {
		reply(c, "ERR usage: PCR <index>\n");
		return;
	}
	if (!nsm_ready(c))
		return;
	rc = nsm_describe_pcr(nsm_fd, index, &lock, val, &len);
	if (rc != ERROR_CODE_SUCCESS) {
		reply(c, "ERR NSM DescribePCR %u: %s\n", index, nsm_error_name(rc));
		return;
	}
	hex_encode(val, len, hex);
	reply(c, "OK %s %s\n", hex, lock ? "locked" : "unlocked");
}

static void do_extend(int c, const char *arg, const char *data_hex)
{
	uint8_t data[FIELD_MAX], val[64];
	uint32_t len = sizeof(val);
	char hex[2 * sizeof(val) + 1];
	uint16_t index;
	long dl;
	ErrorCode rc;

	if (!parse_index(arg, &index) || !data_hex ||
	    (dl = hex_decode(data_hex, data, sizeof(data))) < 0) {
		reply(c, "ERR usage: EXTEND <index> <data-hex>\n");
		return;
	}
	if (!nsm_ready(c))
		return;
	rc = nsm_extend_pcr(nsm_fd, index, data, (uint32_t)dl, val, &len);
	if (rc != ERROR_CODE_SUCCESS) {
		reply(c, "ERR NSM ExtendPCR %u: %s\n", index, nsm_error_name(rc));
		return;
	}
	hex_encode(val, len, hex);
	reply(c, "OK %s\n", hex);
}

static void do_lock(int c, const char *arg)
{
	uint16_t index;
	ErrorCode rc;

	if (!parse_index(arg, &index)) {
		reply(c, "ERR usage: LOCK <index>\n");
		return;
	}
	if (!nsm_ready(c))
		return;
	rc = nsm_lock_pcr(nsm_fd, index);
	if (rc != ERROR_CODE_SUCCESS)
		reply(c, "ERR NSM LockPCR %u: %s\n", index, nsm_error_name(rc));
	else
		reply(c, "OK locked\n");
}

static void do_info(int c)
{
	NsmDescription d;
	char locked[64 * 6 + 1] = "";
	size_t off = 0;
	ErrorCode rc;

	if (!nsm_ready(c))
		return;
	rc = nsm_get_description(nsm_fd, &d);
	if (rc != ERROR_CODE_SUCCESS) {
		reply(c, "ERR NSM DescribeNSM: %s\n", nsm_error_name(rc));
		return;
	}
	for (uint32_t i = 0; i < d.locked_pcrs_len && i < 64; i++)
		off += (size_t)snprintf(locked + off, sizeof(locked) - off, "%s%u", i ? "," : "",
		                        d.locked_pcrs[i]);
	d.module_id[sizeof(d.module_id) - 1] = '\0';
	reply(c, "OK module_id=%s version=%u.%u.%u max_pcrs=%u locked=%s\n",
	      (const char *)d.module_id, d.version_major, d.version_minor, d.version_patch,
	      d.max_pcrs, locked);
}

/* Read one request line (without its '\n') into @line; false on EOF, timeout or overflow. */
static bool read_line(int c, char *line, size_t cap)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = read(c, line + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (n == 0)
				return false;
			break; /* a last line without '\n' counts */
		}
		if (line[n] == '\n')
			break;
		if (++n == cap - 1)
			return false;
	}
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return true;
}

/* Serve one connection; returns true when the client asked the app to quit. */
static bool serve(int c)
{
	static char line[LINE_MAX_BYTES];
	char *save = NULL, *verb, *a1, *a2;

	if (!read_line(c, line, sizeof(line))) {
		reply(c, "ERR request line missing, too long (max %d bytes) or too slow\n",
		      LINE_MAX_BYTES - 2);
		return false;
	}
	if (!strncmp(line, "ECHO ", 5) || !strcmp(line, "ECHO")) {
		reply(c, "%s\n", line[4] ? line + 5 : "");
		return false;
	}
	verb = strtok_r(line, " ", &save);
	a1 = strtok_r(NULL, " ", &save);
	a2 = strtok_r(NULL, " ", &save);
	if (!verb) {
		reply(c, "ERR empty request\n");
	} else if (!strcmp(verb, "ATTEST")) {
		do_attest(c, a1, a2);
	} else if (!strcmp(verb, "RANDOM")) {
		do_random(c);
	} else if (!strcmp(verb, "PCR")) {
		do_pcr(c, a1);
	} else if (!strcmp(verb, "EXTEND")) {
		do_extend(c, a1, a2);
	} else if (!strcmp(verb, "LOCK")) {
		do_lock(c, a1);
	} else if (!strcmp(verb, "INFO")) {
		do_info(c);
	} else if (!strcmp(verb, "QUIT")) {
		reply(c, "OK bye\n");
		return true;
	} else {
		reply(c,
		      "ERR unknown request '%.32s' (ECHO, ATTEST, RANDOM, PCR, EXTEND, LOCK, INFO, "
		      "QUIT)\n",
		      verb);
	}
	return false;
}

int main(int argc, char **argv)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };
	struct timeval tv = { .tv_sec = CLIENT_TIMEOUT_S };
	unsigned long port = DEMO_PORT;
	int s;

	if (argc > 2 || (argc == 2 && (port = strtoul(argv[1], NULL, 10)) == 0)) {
		fprintf(stderr, "usage: %s [VSOCK_PORT]   (default %d)\n", argv[0], DEMO_PORT);
		return 2;
	}
	nsm_fd = nsm_lib_init();
	printf("cloister demo: started; /dev/nsm %s\n", nsm_fd >= 0 ? "open" : "missing");

	s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.svm_port = (unsigned)port;
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 16) < 0) {
		printf("cloister demo: cannot listen on vsock port %lu: %s\n", port,
		       strerror(errno));
		return 1;
	}
	printf("cloister demo: listening on vsock port %lu\n", port);
	fflush(stdout);
	for (;;) {
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		bool quit;

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			printf("cloister demo: accept: %s\n", strerror(errno));
			return 1;
		}
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		quit = serve(c);
		close(c);
		if (quit) {
			printf("cloister demo: asked to quit\n");
			fflush(stdout);
			nsm_lib_exit(nsm_fd);
			return 0;
		}
	}
}

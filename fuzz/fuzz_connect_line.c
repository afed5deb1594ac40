/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the "CONNECT <port>\n" line a host client sends first (docs/vsock.md), and
 * the contract the engine relies on when it peeks at a socket:
 *   - on OK: 10 <= consumed <= len, the line is "CONNECT " + 1..10 digits + '\n', and the port
 *     is the value of those digits (recomputed here, not taken from the parser);
 *   - the same answer for the line alone, and INCOMPLETE for each shorter prefix of it (a line
 *     arriving in pieces must never be refused);
 *   - INCOMPLETE only while there is no newline and fewer than 32 bytes;
 *   - never a read past len: every call gets a heap copy of exactly the bytes it may read, so
 *     ASan reports an overread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/vsock/vsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char verb[] = "CONNECT ";
#define VERB_LEN (sizeof(verb) - 1)

/* Parse the first @len bytes of @data from a buffer of exactly @len bytes. */
static enum vsock_line parse_exact(const uint8_t *data, size_t len, uint32_t *port,
                                   size_t *consumed)
{
	char *copy = malloc(len ? len : 1);
	enum vsock_line r;

	if (!copy)
		abort();
	if (len)
		memcpy(copy, data, len);
	r = vsock_parse_connect_line(copy, len, port, consumed);
	free(copy);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t port = 0xdeadbeef, port2 = 0;
	size_t used = (size_t)-1, used2 = 0;
	enum vsock_line r = parse_exact(data, size, &port, &used);
	uint64_t value = 0;

	switch (r) {
	case VSOCK_LINE_INCOMPLETE:
		if (memchr(data, '\n', size) || size >= 32)
			abort();
		return 0;
	case VSOCK_LINE_BAD:
		return 0;
	case VSOCK_LINE_OK:
		break;
	default:
		abort();
	}
	if (used < VERB_LEN + 2 || used > size || used > VERB_LEN + 11 || data[used - 1] != '\n' ||
	    memcmp(data, verb, VERB_LEN) != 0)
		abort();
	for (size_t i = VERB_LEN; i < used - 1; i++) {
		if (data[i] < '0' || data[i] > '9')
			abort();
		value = value * 10 + (uint64_t)(data[i] - '0');
	}
	if (value > UINT32_MAX || port != (uint32_t)value)
		abort();
	/* What follows the line is not the parser's business. */
	if (parse_exact(data, used, &port2, &used2) != VSOCK_LINE_OK || port2 != port ||
	    used2 != used)
		abort();
	for (size_t k = 0; k < used; k++)
		if (parse_exact(data, k, &port2, &used2) != VSOCK_LINE_INCOMPLETE)
			abort();
	return 0;
}

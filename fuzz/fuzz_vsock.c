/* SPDX-License-Identifier: Apache-2.0 */
/* Drive the vsock engine with arbitrary guest packets: the input is a sequence of
 * [u16 length][packet] records, each handed to vsock_engine_guest_tx, with the guest's receive
 * side drained in between. Also feeds the CONNECT line parser. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/util/log.h"
#include "lib/vsock/vsock.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void discard(enum cl_log_level level, const char *msg, void *opaque)
{
	(void)level;
	(void)msg;
	(void)opaque;
}

/*
 * The engine warns about every malformed packet, and nearly every input has one: on stderr that
 * was a 400 MB log per 10 M executions. Messages are still formatted (at every level, so their
 * arguments are checked too), then dropped.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cl_log_set_level(CL_LOG_DEBUG);
	cl_log_set_sink(discard, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rx[VSOCK_HDR_LEN + 4096];
	struct vsock_config cfg = {
		.guest_cid = 16, .heartbeat = true, .exit_port = VSOCK_EXIT_PORT, .max_conns = 8
	};
	struct vsock_engine *e;
	uint32_t port;
	size_t used;

	/* The engine names junk packets at warning level (a few per engine, and this makes one per
	 * input): keep stderr for the fuzzer's own report. The messages are still formatted. */
	cl_log_set_level(CL_LOG_ERROR);
	vsock_parse_connect_line((const char *)data, size, &port, &used);
	if (vsock_engine_new(&cfg, &e, NULL) != VSOCK_OK)
		return 0;
	while (size >= 2) {
		size_t len = (size_t)(data[0] | data[1] << 8);

		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		vsock_engine_guest_tx(e, data, len);
		data += len;
		size -= len;
		for (int i = 0; i < 4 && vsock_engine_guest_rx(e, rx, sizeof(rx)); i++)
			;
	}
	vsock_engine_free(e);
	return 0;
}

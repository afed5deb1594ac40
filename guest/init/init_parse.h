/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_GUEST_INIT_PARSE_H
#define CLOISTER_GUEST_INIT_PARSE_H

/*
 * The pure logic of cloister-init, kept apart from the system calls so the unit tests (and the
 * host build) can exercise it: splitting the `cmd`, `env` and module-list files into strings,
 * reading the kernel command line flags, encoding the exit report and the NSM requests of the
 * measured launch. Nothing here touches the file system or allocates hidden state.
 * The file formats are described in docs/build-enclave.md ("Inside the enclave").
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nitro's heartbeat (nitro-compat §2.5): connect to the parent, send 0xB7, expect it back. */
#define INIT_PARENT_CID 3u
#define INIT_HEARTBEAT_PORT 9000u
#define INIT_HEARTBEAT_BYTE 0xB7u
/* cloister's exit report: after the app exits, one 4-byte record to the parent on this port. */
#define INIT_EXIT_PORT 9001u
#define INIT_EXIT_MAGIC 0xB8u
#define INIT_EXIT_RECORD_SIZE 4u
/* Measured launch: the PCR extended with the command, environment and working directory. */
#define INIT_MEASURE_PCR 16u
/* Largest piece of data sent in one ExtendPCR request; the request must fit in 0x1000 bytes
 * (nitro-compat §4) together with about 30 bytes of CBOR framing. */
#define INIT_MEASURE_CHUNK 4000u
#define INIT_NSM_REQUEST_MAX 0x1000u

/*
 * A list of strings split from one file. @strings point into the caller's buffer, which
 * init_split_lines() modifies in place (each '\n' becomes a NUL), so the buffer must outlive
 * the list. @strings is NULL-terminated (execve wants that) and malloc'd; free it with free().
 */
struct init_list {
	char **strings;
	size_t count;
};

enum init_split_mode {
	/* `cmd`: every line is one argv element, empty lines included ("" is a valid argument). */
	INIT_SPLIT_KEEP_EMPTY,
	/* `env`: one KEY=VALUE per line; empty lines are skipped. */
	INIT_SPLIT_SKIP_EMPTY,
	/* module list: one module name per line; empty lines and lines starting with '#' are
	 * skipped, names must be [A-Za-z0-9_-] and at most 64 bytes. */
	INIT_SPLIT_MODULES,
};

enum init_error {
	INIT_OK = 0,
	INIT_ERR_NOMEM,
	INIT_ERR_NUL_BYTE, /* a NUL inside the text: it would silently cut an argument */
	INIT_ERR_BAD_ENV, /* an env line without '=' or with an empty name */
	INIT_ERR_BAD_MODULE, /* a module name with a '/' or other character outside the set */
	INIT_ERR_EMPTY, /* `cmd` has no argument at all */
	INIT_ERR_TOO_LARGE,
};

const char *init_strerror(enum init_error e);

/*
 * Split @buf (@len bytes, followed by one writable byte for a terminating NUL, i.e. the
 * buffer holds at least @len + 1 bytes) into lines. A final line without '\n' counts. On error
 * *line_no is the 1-based line at fault (0 when not about a line). The list is empty, not an
 * error, for an empty file except in INIT_SPLIT_KEEP_EMPTY mode, which reports INIT_ERR_EMPTY.
 */
enum init_error init_split_lines(char *buf, size_t len, enum init_split_mode mode,
                                 struct init_list *out, size_t *line_no);
void init_list_free(struct init_list *l);

/* Value of PATH= in an environment list, or NULL. */
const char *init_env_path(const struct init_list *env);

/* Flags read from the kernel command line (`cloister.<name>[=value]` words). */
struct init_cmdline {
	bool heartbeat; /* default true; `cloister.heartbeat=0` turns it off (monitor tests) */
	bool measure; /* `cloister.measure=1`: measured launch even without a /measure file */
	uint32_t exit_port; /* `cloister.exit_port=N`, 0 = no exit report; default 9001 */
};

/* Parse /proc/cmdline text (NUL-terminated). Unknown words are ignored; malformed cloister.*
 * values keep the default. */
void init_parse_cmdline(const char *text, struct init_cmdline *out);

/*
 * The exit report: byte 0 = INIT_EXIT_MAGIC, byte 1 = 0 when the app exited (byte 2 = its
 * exit status) or 1 when a signal killed it (byte 2 = the signal number), byte 3 = 0.
 * @wstatus is what waitpid() returned.
 */
void init_exit_record(int wstatus, uint8_t rec[INIT_EXIT_RECORD_SIZE]);

/* The console line reporting the same thing, without newline, e.g.
 * "cloister-init: app exited: status=3" or "cloister-init: app exited: signal=9". */
void init_exit_line(int wstatus, char *buf, size_t cap);

/*
 * CBOR encodings of the two NSM requests the measured launch sends (nitro-compat §3.2):
 * {"ExtendPCR": {"index": @index, "data": bstr}} and {"LockPCR": {"index": @index}}.
 * @data for ExtendPCR is @prefix (may be NULL) followed by @len bytes of @data. Return the
 * encoded length, or 0 when it would not fit in @cap.
 */
size_t init_nsm_extend_request(uint16_t index, const char *prefix, const uint8_t *data, size_t len,
                               uint8_t *buf, size_t cap);
size_t init_nsm_lock_request(uint16_t index, uint8_t *buf, size_t cap);
/* True when @resp (@len bytes) is the successful answer to the request named @op ("ExtendPCR"
 * or "LockPCR"): a one-entry map whose key is @op, or the bare text string @op (the NSM answers
 * LockPCR that way). An {"Error": ...} answer gives false. */
bool init_nsm_response_ok(const uint8_t *resp, size_t len, const char *op);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_CLI_NITRO_ENCLAVE_H
#define CLOISTER_CLI_NITRO_ENCLAVE_H

/*
 * The enclave process and how the nitro-cli subcommands talk to it (docs/nitro-cli.md).
 *
 * run-enclave forks a detached "enclave process" per enclave (nitro-compat §2.3). It owns the
 * enclave's pool grant (so its death, however it happens, frees the CPUs, memory budget, CID and
 * name), maps the hugepage memory, runs the monitor library in-process, and serves a control
 * socket <state dir>/<slot uid hex>.sock:
 *
 *   request  "describe\n"  → "key value\n" lines, an empty line, then the EIF metadata section
 *                            bytes until EOF (empty when the image has none)
 *   request  "terminate\n" → "denied\n" (peer is neither the owner uid nor root), or
 *                            "terminating\n" and, once every resource is back in the pool,
 *                            "terminated\n"
 *
 * The peer's uid comes from SO_PEERCRED, never from the request (nitro-cli's policy: the owner
 * and root may terminate, anyone who can connect may describe).
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/nitro/parent_identity.h"
#include "cli/nitro/run_args.h"
#include "cloister/eif.h"
#include "lib/ne/ne.h"

/* The logs directory: $NITRO_CLI_LOGS_PATH, else /var/log/cloister. */
const char *enclave_logs_dir(void);

/* <logs dir>/<EnclaveID>.console: where a debug-mode enclave's ttyS0 goes. */
void enclave_console_path(const char *enclave_id, char *out, size_t len);

/* <state dir>/<slot uid hex>.sock */
void enclave_socket_path(const char *state_dir, uint64_t slot_uid, char *out, size_t len);

/*
 * The enclave process's whole life (runs in the double-forked, setsid'd child of run-enclave):
 * prepares the resources through ne_launch_prepare(), runs the VM, answers the control socket,
 * gives everything back. @parent holds the PCR3/PCR4 inputs (run-enclave loads them before it
 * forks, so a bad configuration fails before any resource is taken). Progress goes to
 * @report_fd as lines: "started <pid> <cid> <mib> <cpu,…> <EnclaveID> <name>", "booted", or
 * "error <code> <message>". Returns the process exit status.
 */
int enclave_process_main(const struct run_args *a, const struct parent_identity *parent,
                         uint64_t eif_size, int report_fd);

/*
 * The enclave process is its own small program, cloister-enclave (enclave_exec.c): run-enclave's
 * detached grandchild execs it, so a running enclave maps only what the monitor needs (not
 * libarchive, libxml2, ICU or libstdc++, which the CLI links for building images) — less memory
 * per enclave and less code in the process that handles the guest's input. Its command line is
 * private to cloister and built only here:
 *
 *   cloister-enclave --report-fd N --eif-size BYTES --parent-role ROLE --parent-role-from WHERE
 *                    --parent-id ID --parent-id-from WHERE -- run-enclave ARGS...
 *
 * ARGS are run-enclave options (run_args_parse()) equivalent to @a, the memory in MiB and the
 * name always given.
 */
#define ENCLAVE_EXE "cloister-enclave"
#define ENCLAVE_ARGV_MAX (32 + NE_LAUNCH_MAX_CPUS)

/* Storage for one cloister-enclave command line. */
struct enclave_argv {
	char *argv[ENCLAVE_ARGV_MAX + 1]; /* NULL-terminated */
	char text[2 * PATH_MAX + 2 * NSM_PARENT_VALUE_MAX + 32 * ENCLAVE_ARGV_MAX];
};

/* Build the command line for @exe. Returns 0, or -1 when it does not fit (cannot happen for
 * arguments run_args_parse() accepted). */
int enclave_argv_build(const char *exe, const struct run_args *a,
                       const struct parent_identity *parent, uint64_t eif_size, int report_fd,
                       struct enclave_argv *out);

/* The inverse, for cloister-enclave's main(): fills @a, @parent (whose *_from point into
 * @argv), @eif_size and @report_fd. Returns 0 or a nitro-cli error code with @d set. */
int enclave_argv_parse(int argc, char **argv, struct run_args *a, struct parent_identity *parent,
                       uint64_t *eif_size, int *report_fd, struct cl_diag *d);

/* Where cloister-enclave is: next to the running program (the build tree, or an install that
 * keeps them together), else in CLOISTER_LIBEXECDIR. Returns 0, or -1 if neither exists. */
int enclave_exe_path(char *out, size_t len);

/*
 * In run-enclave's detached grandchild: exec cloister-enclave with @report_fd kept open across
 * the exec. Returns only if that failed (errno set); the caller then runs
 * enclave_process_main() in-process, which works the same with the CLI's larger footprint.
 */
int enclave_process_exec(const struct run_args *a, const struct parent_identity *parent,
                         uint64_t eif_size, int report_fd);

/* What describe returns about one running enclave. */
struct enclave_info {
	char name[POOL_NAME_MAX];
	char id[POOL_ID_MAX];
	pid_t pid;
	uint64_t cid;
	uint32_t cpus[NE_LAUNCH_MAX_CPUS];
	size_t ncpus;
	uint64_t memory_mib;
	bool terminating;
	bool debug_mode;
	struct eif_measurements meas;
	char *metadata; /* EIF metadata section (malloc'd, NUL-terminated), or NULL */
	size_t metadata_len;
	char socket[PATH_MAX];
};

/*
 * The describe record (see the protocol above): "key value" lines (id, pid, cid, mib, cpus,
 * state, flags, pcr0-2, pcr8 when signed, name last) and an empty line. The metadata bytes
 * are sent after it separately. Returns the length written to @buf (NUL-terminated), or 0
 * when @len is too small.
 */
size_t enclave_describe_format(const struct enclave_info *e, char *buf, size_t len);

/*
 * Parse a describe reply of @len bytes at @buf (modified in place) into @info (zeroed by the
 * caller). Every key but pcr8 is required; bytes after the empty line are the EIF metadata,
 * copied to info->metadata (malloc'd; the caller frees it, also on failure). Returns 0, or -1
 * for a malformed reply. Plain byte buffer: it comes from another process.
 */
int enclave_describe_parse(char *buf, size_t len, struct enclave_info *info);

/*
 * Every running enclave of this state directory, sorted by CID. Dead owners' grants are
 * reclaimed and stale sockets (nobody listening) deleted on the way; enclaves whose socket
 * refuses us (EACCES) are skipped, as nitro-cli does. *out is malloc'd (free with
 * enclave_list_free). Returns 0 or a nitro-cli error code with @d set.
 */
int enclave_list(struct enclave_info **out, size_t *n, struct cl_diag *d);
void enclave_list_free(struct enclave_info *v, size_t n);

/*
 * Ask the enclave process behind @socket to terminate and wait (up to @timeout_s) until it has
 * given everything back. Returns 0, E18 (not the owner nor root), E39 (cannot connect) or E38.
 */
int enclave_terminate(const char *socket, unsigned timeout_s, struct cl_diag *d);

/* Whether an enclave process still listens on @socket. */
bool enclave_alive(const char *socket);

/*
 * Stream <logs>/<id>.console to stdout: from the start, then live while the enclave runs
 * (@socket non-NULL), ending when it ends or after @timeout_s seconds (0: no limit). Returns 0
 * or E45/E46.
 */
int enclave_console_stream(const char *enclave_id, const char *socket, unsigned timeout_s);

#endif

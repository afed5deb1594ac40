/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_CLI_RUN_ARGS_H
#define CLOISTER_CLI_RUN_ARGS_H

/*
 * nitro-cli's run-enclave arguments (nitro-compat §2.1, §2.4): the command line or a --config
 * JSON file, validated the way nitro-cli does before any resource is touched. Parsing never
 * prints: it returns the nitro-cli error code number and fills a struct cl_diag, so the caller
 * reports it with cli_fail() and the tests can check both.
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "lib/ne/ne.h"

struct run_args {
	char eif_path[PATH_MAX];
	uint64_t memory_mib;
	unsigned cpu_count; /* when ncpu_ids is 0 */
	uint32_t cpu_ids[NE_LAUNCH_MAX_CPUS]; /* --cpu-ids, in the order given */
	size_t ncpu_ids;
	uint64_t cid; /* 0 = auto-generated */
	bool cid_given_zero; /* --enclave-cid 0: nitro-cli warns that it will be generated */
	bool debug_mode; /* --debug-mode, or implied by --attach-console */
	bool attach_console;
	char name[POOL_NAME_MAX]; /* --enclave-name, else the EIF file name without ".eif" */
	bool help; /* --help or -h was given: print the usage and nothing else */
};

/*
 * Parse `run-enclave` arguments (argv[0] is the subcommand name). --config FILE conflicts with
 * every option except --attach-console; --cpu-ids takes one or more values. Returns 0, or the
 * nitro-cli code: 1 missing argument, 2 conflicting arguments, 3 invalid argument (memory,
 * CID, unknown option), 17 malformed config JSON, 19 config file unreadable, 23 malformed CPU
 * id; @d says which argument and why. --help (or -h) anywhere before an error returns 0 at
 * once with only out->help set, as nitro-cli's clap does.
 */
int run_args_parse(int argc, char **argv, struct run_args *out, struct cl_diag *d);

/* The --config JSON document (keys eif_path, memory_mib, cpu_ids XOR cpu_count, enclave_cid,
 * debug_mode, attach_console, enclave_name). Same return codes. Plain byte buffer. */
int run_args_parse_config(const char *json, size_t len, struct run_args *out, struct cl_diag *d);

/* "512", "512M", "2g", "1T" -> MiB (a plain number is MiB). 0 or 3 (invalid argument). */
int run_args_parse_memory(const char *s, uint64_t *mib, struct cl_diag *d);

/* Fill the resource request for ne_launch_prepare() (name, CPUs, memory, CID, debug). The
 * caller adds the EIF size/bytes. @out points into @a: keep @a alive. */
void run_args_to_launch_req(const struct run_args *a, struct ne_launch_req *out);

#endif

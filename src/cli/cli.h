/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_CLI_H
#define CLOISTER_CLI_H

/*
 * The `cloister` command line: one executable, one file per subcommand. Subcommands that exist
 * in nitro-cli keep its flags, JSON output and `[ Exx ]` error codes so existing scripts run
 * unchanged (docs/nitro-cli.md).
 */

#include <stdbool.h>
#include <stdio.h>

/* nitro-cli's error codes (shared/spec/nitro-compat.md §2.9). The process exit status is the
 * numeric code. */
enum cli_error {
	E_UNSPECIFIED = 0,
	E_MISSING_ARGUMENT = 1,
	E_CONFLICTING_ARGUMENTS = 2,
	E_INVALID_ARGUMENT = 3,
	E_SOCKET_PAIR = 4,
	E_PROCESS_SPAWN = 5,
	E_DAEMONIZE = 6,
	E_READ_FROM_DISK = 7,
	E_UNUSABLE_CONNECTION = 8,
	E_SOCKET_CLOSE = 9,
	E_SOCKET_CONNECT_TIMEOUT = 10,
	E_SOCKET_ERROR = 11,
	E_EPOLL = 12,
	E_INOTIFY = 13,
	E_INVALID_COMMAND = 14,
	E_LOCK_ACQUIRE = 15,
	E_THREAD_JOIN = 16,
	E_SERDE = 17,
	E_FILE_PERMISSIONS = 18,
	E_FILE_OPERATION = 19,
	E_INVALID_CPU_CONFIG = 20,
	E_NO_SUCH_CPU_IN_POOL = 21,
	E_INSUFFICIENT_CPUS = 22,
	E_MALFORMED_CPU_ID = 23,
	E_CPU_ERROR = 24,
	E_NO_SUCH_HUGEPAGE_FLAG = 25,
	E_INSUFFICIENT_MEMORY_REQUESTED = 26,
	E_INSUFFICIENT_MEMORY_AVAILABLE = 27,
	E_INVALID_ENCLAVE_FD = 28,
	E_IOCTL_FAILURE = 29,
	E_IOCTL_IMAGE_LOAD_INFO = 30,
	E_IOCTL_SET_MEMORY_REGION = 31,
	E_IOCTL_ADD_VCPU = 32,
	E_IOCTL_ENCLAVE_START = 33,
	E_MEMORY_OVERFLOW = 34,
	E_EIF_PARSING = 35,
	E_ENCLAVE_BOOT_FAILURE = 36,
	E_ENCLAVE_EVENT_WAIT = 37,
	E_ENCLAVE_PROCESS_COMMAND_NOT_EXECUTED = 38,
	E_ENCLAVE_PROCESS_CONNECTION = 39,
	E_SOCKET_PATH_NOT_FOUND = 40,
	E_ENCLAVE_PROCESS_SEND_REPLY = 41,
	E_ENCLAVE_MMAP = 42,
	E_ENCLAVE_MUNMAP = 43,
	E_ENCLAVE_CONSOLE_CONNECTION = 44,
	E_ENCLAVE_CONSOLE_READ = 45,
	E_ENCLAVE_CONSOLE_WRITE = 46,
	E_INTEGER_PARSING = 47,
	E_EIF_BUILDING = 48,
	E_DOCKER_IMAGE_BUILD = 49,
	E_DOCKER_IMAGE_PULL = 50,
	E_ARTIFACTS_PATH_NOT_SET = 51,
	E_BLOBS_PATH_NOT_SET = 52,
	E_CLOCK_SKEW = 53,
	E_SIGNAL_MASKING = 54,
	E_SIGNAL_UNMASKING = 55,
	E_LOGGER = 56,
	E_HASHER = 57,
	E_ENCLAVE_NAMING = 58,
	E_EIF_SIGNATURE_CHECKER = 59,
	E_EIF_SIGNING = 60,
	E_COUNT
};

/* The short title nitro-cli gives each code ("Insufficient memory requested"). */
const char *cli_error_title(enum cli_error code);
/* The long description `explain --error-code` prints, or NULL for an unknown code. */
const char *cli_error_description(enum cli_error code);

/*
 * Report a failure the way nitro-cli does: `[ Exx ] <message>`, a blank line, the documentation
 * link, a blank line, and where the error log was written. Returns @code so a subcommand can
 * `return cli_fail(E_..., "...")`.
 */
int cli_fail(enum cli_error code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print @json (a NUL-terminated pretty-printed document) on stdout followed by a newline. */
void cli_print_json(const char *json);

struct cl_json;
/* Finish @j and print it (cli_print_json). Returns 0, or cli_fail's status when the document
 * could not be built (out of memory). */
int cli_emit_json(struct cl_json *j);

/* Subcommands: each parses its own arguments (argv[0] is the subcommand name) and returns the
 * process exit status. */
int cmd_build_eif(int argc, char **argv);
int cmd_describe_eif(int argc, char **argv);
int cmd_pcr(int argc, char **argv);
int cmd_sign_eif(int argc, char **argv);
int cmd_parent_instance(int argc, char **argv);
int cmd_vsock_forward(int argc, char **argv);
int cmd_build_enclave(int argc, char **argv);
int cmd_blobs(int argc, char **argv);
int cmd_allocator(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_run_enclave(int argc, char **argv);
int cmd_describe_enclaves(int argc, char **argv);
int cmd_terminate_enclave(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_verify_attestation(int argc, char **argv);

#endif

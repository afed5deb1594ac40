/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/util/json.h"

/* Titles follow nitro-cli's error list (shared/spec/nitro-compat.md §2.9). */
static const char *const titles[E_COUNT] = {
	[E_UNSPECIFIED] = "Unspecified error",
	[E_MISSING_ARGUMENT] = "Missing mandatory argument",
	[E_CONFLICTING_ARGUMENTS] = "Conflicting arguments",
	[E_INVALID_ARGUMENT] = "Invalid argument provided",
	[E_SOCKET_PAIR] = "Socket pair creation failure",
	[E_PROCESS_SPAWN] = "Process spawn failure",
	[E_DAEMONIZE] = "Daemonize process failure",
	[E_READ_FROM_DISK] = "Read from disk failure",
	[E_UNUSABLE_CONNECTION] = "Unusable connection error",
	[E_SOCKET_CLOSE] = "Socket close error",
	[E_SOCKET_CONNECT_TIMEOUT] = "Socket connect set timeout error",
	[E_SOCKET_ERROR] = "Socket error",
	[E_EPOLL] = "Epoll error",
	[E_INOTIFY] = "Inotify error",
	[E_INVALID_COMMAND] = "Invalid command",
	[E_LOCK_ACQUIRE] = "Lock acquire failure",
	[E_THREAD_JOIN] = "Thread join failure",
	[E_SERDE] = "Serde error",
	[E_FILE_PERMISSIONS] = "File permissions error",
	[E_FILE_OPERATION] = "File operation failure",
	[E_INVALID_CPU_CONFIG] = "Invalid CPU configuration",
	[E_NO_SUCH_CPU_IN_POOL] = "CPU not in pool",
	[E_INSUFFICIENT_CPUS] = "Insufficient CPUs available in the pool",
	[E_MALFORMED_CPU_ID] = "Malformed CPU ID",
	[E_CPU_ERROR] = "CPU error",
	[E_NO_SUCH_HUGEPAGE_FLAG] = "No such hugepage flag",
	[E_INSUFFICIENT_MEMORY_REQUESTED] = "Insufficient memory requested",
	[E_INSUFFICIENT_MEMORY_AVAILABLE] = "Insufficient memory available",
	[E_INVALID_ENCLAVE_FD] = "Invalid enclave file descriptor",
	[E_IOCTL_FAILURE] = "Ioctl failure",
	[E_IOCTL_IMAGE_LOAD_INFO] = "Memory region image load info ioctl failure",
	[E_IOCTL_SET_MEMORY_REGION] = "Set memory region ioctl failure",
	[E_IOCTL_ADD_VCPU] = "Add vCPU ioctl failure",
	[E_IOCTL_ENCLAVE_START] = "Enclave start ioctl failure",
	[E_MEMORY_OVERFLOW] = "Memory overflow",
	[E_EIF_PARSING] = "EIF file parsing error",
	[E_ENCLAVE_BOOT_FAILURE] = "Enclave boot failure",
	[E_ENCLAVE_EVENT_WAIT] = "Enclave event wait error",
	[E_ENCLAVE_PROCESS_COMMAND_NOT_EXECUTED] = "Enclave process command not executed error",
	[E_ENCLAVE_PROCESS_CONNECTION] = "Enclave process connection failure",
	[E_SOCKET_PATH_NOT_FOUND] = "Socket path not found",
	[E_ENCLAVE_PROCESS_SEND_REPLY] = "Enclave process send reply error",
	[E_ENCLAVE_MMAP] = "Enclave mmap error",
	[E_ENCLAVE_MUNMAP] = "Enclave munmap error",
	[E_ENCLAVE_CONSOLE_CONNECTION] = "Enclave console connection error",
	[E_ENCLAVE_CONSOLE_READ] = "Enclave console read error",
	[E_ENCLAVE_CONSOLE_WRITE] = "Enclave console write output error",
	[E_INTEGER_PARSING] = "Integer parsing error",
	[E_EIF_BUILDING] = "Could not build EIF file",
	[E_DOCKER_IMAGE_BUILD] = "Docker image build error",
	[E_DOCKER_IMAGE_PULL] = "Docker image pull error",
	[E_ARTIFACTS_PATH_NOT_SET] = "Artifacts path environment variable not set",
	[E_BLOBS_PATH_NOT_SET] = "Blobs path environment variable not set",
	[E_CLOCK_SKEW] = "Clock skew error",
	[E_SIGNAL_MASKING] = "Signal masking error",
	[E_SIGNAL_UNMASKING] = "Signal unmasking error",
	[E_LOGGER] = "Logger error",
	[E_HASHER] = "Hasher error",
	[E_ENCLAVE_NAMING] = "Enclave naming error",
	[E_EIF_SIGNATURE_CHECKER] = "EIF signature checker error",
	[E_EIF_SIGNING] = "EIF signing error",
};

const char *cli_error_title(enum cli_error code)
{
	if ((unsigned)code >= E_COUNT || !titles[code])
		return "Unknown error";
	return titles[code];
}

/*
 * Long descriptions for `cloister explain --error-code Exx` (nitro-compat §2.1): what the code
 * means and what usually fixes it, in cloister's terms where they differ from Nitro hardware
 * (docs/resources.md).
 */
static const char *const descriptions[E_COUNT] = {
	[E_UNSPECIFIED] = "An error occurred that has no more specific code. The message printed "
	                  "with it and the error log name the failing step.",
	[E_MISSING_ARGUMENT] = "A mandatory argument is missing. Run the subcommand with --help "
	                       "to see which arguments it requires.",
	[E_CONFLICTING_ARGUMENTS] = "Two arguments that exclude each other were given, e.g. "
	                            "--cpu-count with --cpu-ids, or --config with other options.",
	[E_INVALID_ARGUMENT] = "An argument has an invalid value: a malformed number, an "
	                       "unsupported memory suffix, a reserved enclave CID (0-3, "
	                       "4294967295 or more), or a file in the wrong format.",
	[E_SOCKET_PAIR] = "The socket pair between the CLI and the enclave process could not be "
	                  "created. The system may be out of file descriptors.",
	[E_PROCESS_SPAWN] = "The enclave process could not be started (fork failed). Check the "
	                    "process limits and free memory.",
	[E_DAEMONIZE] = "The enclave process could not detach from the terminal.",
	[E_READ_FROM_DISK] = "The sockets directory could not be read. Check that it exists and "
	                     "is readable (NITRO_CLI_SOCKETS_PATH, default /run/cloister).",
	[E_UNUSABLE_CONNECTION] = "A connection to an enclave process could not be used; the "
	                          "enclave process may have exited.",
	[E_SOCKET_CLOSE] = "A socket could not be closed cleanly.",
	[E_SOCKET_CONNECT_TIMEOUT] = "A timeout could not be set on a socket.",
	[E_SOCKET_ERROR] = "A socket operation failed while talking to an enclave process.",
	[E_EPOLL] = "Waiting for events with epoll failed.",
	[E_INOTIFY] = "Watching the sockets directory with inotify failed.",
	[E_INVALID_COMMAND] = "The enclave process received a command it does not know.",
	[E_LOCK_ACQUIRE] = "A lock could not be taken. For the resource pool this is the lock "
	                   "file pool.lock in the state directory: check its permissions.",
	[E_THREAD_JOIN] = "An internal thread could not be joined.",
	[E_SERDE] = "A message or JSON document could not be encoded or decoded.",
	[E_FILE_PERMISSIONS] = "A file has the wrong permissions, or this user may not perform "
	                       "the operation (another user's enclave; run as its owner or root).",
	[E_FILE_OPERATION] = "A file could not be opened, read or written. The message names the "
	                     "file and the operation. Missing resource pool state usually means "
	                     "`cloister allocator` has not been run.",
	[E_INVALID_CPU_CONFIG] = "The CPU configuration is invalid: a CPU id is listed twice, or "
	                         "the allocator's CPU pool breaks a rule (empty, offline CPU, more "
	                         "than one NUMA node, CPU 0 or its sibling, or not whole cores).",
	[E_NO_SUCH_CPU_IN_POOL] = "A requested CPU is not in the enclave CPU pool, or another "
	                          "enclave holds it. See the pool with `cat "
	                          "/run/cloister/pool.conf` and change cpu_pool in "
	                          "/etc/cloister/allocator.yaml if needed.",
	[E_INSUFFICIENT_CPUS] = "The enclave CPU pool has fewer free CPUs than requested. "
	                        "Terminate an enclave, ask for fewer CPUs, or enlarge the pool "
	                        "(cpu_count or cpu_pool in /etc/cloister/allocator.yaml, then "
	                        "`cloister allocator`).",
	[E_MALFORMED_CPU_ID] = "A CPU id could not be parsed as a number.",
	[E_CPU_ERROR] = "A CPU-related operation failed, e.g. reconfiguring the CPU pool while "
	                "enclaves are running. Terminate all enclaves first.",
	[E_NO_SUCH_HUGEPAGE_FLAG] = "No mmap flag exists for a hugepage size.",
	[E_INSUFFICIENT_MEMORY_REQUESTED] = "The memory requested is too small: it must be at "
	                                    "least 4 times the EIF file size (the kernel unpacks "
	                                    "the initramfs in enclave memory) and at least 64 MiB.",
	[E_INSUFFICIENT_MEMORY_AVAILABLE] = "Not enough hugepage memory is available for the "
	                                    "enclave. Raise memory_mib in "
	                                    "/etc/cloister/allocator.yaml and run `cloister "
	                                    "allocator`, terminate another enclave, or request "
	                                    "less memory.",
	[E_INVALID_ENCLAVE_FD] = "The enclave handle is invalid.",
	[E_IOCTL_FAILURE] = "An enclave resource operation failed; the message names the NE_ERR_* "
	                    "code the driver semantics returned.",
	[E_IOCTL_IMAGE_LOAD_INFO] = "Getting the image load offset failed (flags must be "
	                            "NE_EIF_IMAGE and the enclave must not be running).",
	[E_IOCTL_SET_MEMORY_REGION] = "Adding a memory region to the enclave failed: regions "
	                              "must be 2 MiB aligned hugetlb memory on the pool's NUMA "
	                              "node, must not overlap, and must fit the pool.",
	[E_IOCTL_ADD_VCPU] = "Adding a vCPU to the enclave failed; the message names the reason.",
	[E_IOCTL_ENCLAVE_START] = "Starting the enclave failed: it needs at least 64 MiB, at least "
	                          "one vCPU, every thread of each core it owns, and a CID no other "
	                          "enclave uses.",
	[E_MEMORY_OVERFLOW] = "A memory size or offset calculation overflowed.",
	[E_EIF_PARSING] = "The EIF file is malformed: bad magic, CRC, section layout or "
	                  "metadata. Rebuild it or check that the file is complete.",
	[E_ENCLAVE_BOOT_FAILURE] = "The enclave did not finish booting: it never sent the boot "
	                           "heartbeat. Run it with --debug-mode and read the console.",
	[E_ENCLAVE_EVENT_WAIT] = "Waiting for an enclave event failed.",
	[E_ENCLAVE_PROCESS_COMMAND_NOT_EXECUTED] = "The enclave process did not execute the "
	                                           "command.",
	[E_ENCLAVE_PROCESS_CONNECTION] = "The enclave process could not be reached. It may have "
	                                 "exited; describe-enclaves cleans up stale entries.",
	[E_SOCKET_PATH_NOT_FOUND] = "No enclave process socket exists for the given enclave ID.",
	[E_ENCLAVE_PROCESS_SEND_REPLY] = "The enclave process could not send its reply.",
	[E_ENCLAVE_MMAP] = "Mapping enclave memory failed.",
	[E_ENCLAVE_MUNMAP] = "Unmapping enclave memory failed.",
	[E_ENCLAVE_CONSOLE_CONNECTION] = "The console could not be connected. Only enclaves "
	                                 "started with --debug-mode have a console.",
	[E_ENCLAVE_CONSOLE_READ] = "Reading from the enclave console failed.",
	[E_ENCLAVE_CONSOLE_WRITE] = "Writing the enclave console output failed.",
	[E_INTEGER_PARSING] = "A number could not be parsed.",
	[E_EIF_BUILDING] = "The EIF could not be built; the message names the failing input.",
	[E_DOCKER_IMAGE_BUILD] = "The Docker image could not be built.",
	[E_DOCKER_IMAGE_PULL] = "The Docker image could not be pulled.",
	[E_ARTIFACTS_PATH_NOT_SET] = "Neither NITRO_CLI_ARTIFACTS nor HOME is set, so there is "
	                             "nowhere to put build artifacts.",
	[E_BLOBS_PATH_NOT_SET] = "NITRO_CLI_BLOBS is not set and the default blobs directory is "
	                         "missing.",
	[E_CLOCK_SKEW] = "The system clock is before the signing certificate's validity period, "
	                 "or after it.",
	[E_SIGNAL_MASKING] = "Signals could not be masked.",
	[E_SIGNAL_UNMASKING] = "Signals could not be unmasked.",
	[E_LOGGER] = "The log file could not be written. Set NITRO_CLI_LOGS_PATH to a writable "
	             "directory.",
	[E_HASHER] = "Computing a measurement hash failed.",
	[E_ENCLAVE_NAMING] = "No enclave has the given name, or the name is ambiguous.",
	[E_EIF_SIGNATURE_CHECKER] = "The EIF signature could not be verified.",
	[E_EIF_SIGNING] = "The EIF could not be signed.",
};

const char *cli_error_description(enum cli_error code)
{
	if ((unsigned)code >= E_COUNT || !descriptions[code])
		return NULL;
	return descriptions[code];
}

/* The error log directory: NITRO_CLI_LOGS_PATH as nitro-cli, else cloister's own. */
static const char *logs_dir(void)
{
	const char *env = getenv("NITRO_CLI_LOGS_PATH");

	return env && *env ? env : "/var/log/cloister";
}

/* Write the failure to err<RFC3339 time>.log in the logs directory, as nitro-cli does, so a
 * user has something to attach to a bug report. Returns false if it could not be written. */
static bool write_error_log(enum cli_error code, const char *msg, char *path, size_t path_len)
{
	char stamp[64];
	struct timespec ts;
	struct tm tm;
	FILE *f;
	int failed;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(path, path_len, "%s/err%s.%09ld+00:00.log", logs_dir(), stamp, ts.tv_nsec);
	mkdir(logs_dir(), 0755);
	f = fopen(path, "we");
	if (!f)
		return false;
	fprintf(f, "Action: %s\nSubactions:\n  [ E%02d ] %s\nRoot error: %s\n", "cloister",
	        (int)code, cli_error_title(code), msg);
	/* A full logs disk creates the file but keeps none of it: point nobody at an empty log. */
	failed = ferror(f);
	if (fclose(f) != 0 || failed) {
		int err = errno ? errno : EIO;

		unlink(path);
		errno = err;
		return false;
	}
	return true;
}

int cli_fail(enum cli_error code, const char *fmt, ...)
{
	char msg[2048], log_path[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	fprintf(stderr, "[ E%02d ] %s. %s\n\n", (int)code, cli_error_title(code), msg);
	fprintf(stderr,
	        "For more details, please visit "
	        "https://docs.aws.amazon.com/enclaves/latest/user/cli-errors.html#E%02d\n\n",
	        (int)code);
	if (write_error_log(code, msg, log_path, sizeof(log_path)))
		fprintf(stderr,
		        "If you open a support ticket, please provide the error log found at "
		        "\"%s\"\n",
		        log_path);
	else
		fprintf(stderr,
		        "(the error log could not be written to %s: %s; %sset "
		        "NITRO_CLI_LOGS_PATH to a writable directory)\n",
		        logs_dir(), strerror(errno),
		        errno == ENOSPC || errno == EDQUOT ? "make room there or " : "");
	return (int)code;
}

void cli_print_json(const char *json)
{
	fputs(json, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

int cli_emit_json(struct cl_json *j)
{
	char *text = cl_json_finish(j);

	if (!text)
		return cli_fail(E_UNSPECIFIED, "out of memory formatting the JSON output");
	cli_print_json(text);
	free(text);
	return 0;
}

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
	fclose(f);
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
		        "(the error log could not be written to %s: %s; set "
		        "NITRO_CLI_LOGS_PATH to a writable directory)\n",
		        logs_dir(), strerror(errno));
	return (int)code;
}

void cli_print_json(const char *json)
{
	fputs(json, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

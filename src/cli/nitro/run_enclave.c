/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister run-enclave (nitro-cli run-enclave, nitro-compat §2.1, §2.2, §2.7): checks the
 * arguments and what can be checked without resources (E26 memory ≥ 4 × EIF, the pool exists),
 * then starts a detached enclave process (enclave_proc.c) and relays its progress: the CID,
 * CPUs and memory once the resources are granted, then the boot heartbeat — or the error code
 * the enclave process hit (E22/E21/E20 CPUs, E27 memory, E36 boot failure, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/nitro/enclave.h"
#include "lib/util/file.h"
#include "lib/util/json.h"
#include "lib/util/log.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister run-enclave --eif-path FILE --memory MiB\n"
	        "         (--cpu-count N | --cpu-ids ID [ID...]) [--enclave-cid CID]\n"
	        "         [--enclave-name NAME] [--debug-mode] [--attach-console]\n"
	        "       cloister run-enclave --config FILE.json [--attach-console]\n"
	        "\n"
	        "Start an enclave from an EIF, as nitro-cli does; prints it as JSON once it "
	        "booted.\n"
	        "  --eif-path FILE     the enclave image\n"
	        "  --memory MiB        memory, >= 4 x the EIF size (512, 512M, 2G, 1T)\n"
	        "  --cpu-count N       N CPUs from the pool\n"
	        "  --cpu-ids ID...     these pool CPUs\n"
	        "  --enclave-cid CID   the vsock CID (default: the lowest free one >= 16)\n"
	        "  --enclave-name NAME default: the EIF file name without .eif\n"
	        "  --debug-mode        keep the console (cloister console); PCR0-2 read as zeros\n"
	        "  --attach-console    debug mode, then stream the console\n"
	        "  --config FILE.json  the same settings as JSON (eif_path, memory_mib, cpu_count\n"
	        "                      or cpu_ids, enclave_cid, debug_mode, enclave_name)\n"
	        "\n"
	        "PCR3/PCR4 (the parent's IAM role ARN and instance id) come from\n"
	        "$CLOISTER_PARENT_ROLE and $CLOISTER_PARENT_ID, else /etc/cloister/parent.conf\n"
	        "($CLOISTER_PARENT_CONF); PCR4 defaults to an EC2 instance id in\n"
	        "board_asset_tag (docs/attestation.md). Needs a pool: cloister allocator.\n");
}

struct started {
	long pid;
	uint64_t cid, mib;
	char cpus[1024];
	char id[POOL_ID_MAX];
	char name[POOL_NAME_MAX];
};

/* The enclave process's stdout/stderr: <logs>/enclave-<pid>.log, renamed to
 * <logs>/<EnclaveID>.log once the slot exists (the EnclaveID is not known before). The log is
 * best effort, as nitro-cli's: an enclave does not fail to start because its logs directory is
 * unwritable or full. But run-enclave says so (a "warning" line on @report_fd, printed on its
 * stderr), since the log is where the enclave's end and its application's exit status go. */
static void redirect_stdio(int report_fd)
{
	char path[PATH_MAX], line[PATH_MAX + 256];
	int fd, n, err;

	mkdir(enclave_logs_dir(), 0755);
	snprintf(path, sizeof(path), "%s/enclave-%ld.log", enclave_logs_dir(), (long)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(line, sizeof(line),
		         "warning cannot create the enclave's log %s: %s; the enclave starts "
		         "without one: set NITRO_CLI_LOGS_PATH to a writable directory\n",
		         path, strerror(errno));
		(void)cl_write_full(report_fd, line, strlen(line));
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	} else {
		/* The first line also tells whether the log can grow (a full disk lets the file
		 * be created, then keeps nothing). */
		n = snprintf(line, sizeof(line), "cloister: info: enclave process %ld, log %s\n",
		             (long)getpid(), path);
		err = cl_write_full(fd, line, (size_t)n);
		if (err < 0) {
			snprintf(line, sizeof(line),
			         "warning cannot write the enclave's log in %s: %s; the enclave "
			         "starts anyway, but its log (how it ends, its application's exit "
			         "status) is lost: make room there or set NITRO_CLI_LOGS_PATH to "
			         "another directory\n",
			         enclave_logs_dir(), strerror(-err));
			(void)cl_write_full(report_fd, line, strlen(line));
		}
	}
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

/* Fork the detached enclave process (setsid + double fork, as nitro-cli daemonizes). Returns
 * the read end of its report pipe, or -1 with errno. */
static int spawn_enclave_process(const struct run_args *a, const struct parent_identity *parent,
                                 uint64_t eif_size)
{
	int pfd[2], status;
	pid_t child;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	child = fork();
	if (child < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (child == 0) {
		pid_t gc;

		close(pfd[0]);
		if (setsid() < 0)
			_exit(E_DAEMONIZE);
		gc = fork();
		if (gc < 0)
			_exit(E_DAEMONIZE);
		if (gc > 0)
			_exit(0);
		if (chdir("/") < 0)
			_exit(E_DAEMONIZE);
		redirect_stdio(pfd[1]);
		if (enclave_process_exec(a, parent, eif_size, pfd[1]) < 0)
			cl_warn("cannot start %s: %s; the enclave process runs inside this "
			        "cloister instead (the same, with the CLI's libraries mapped)",
			        ENCLAVE_EXE, strerror(errno));
		_exit(enclave_process_main(a, parent, eif_size, pfd[1]));
	}
	close(pfd[1]);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		close(pfd[0]);
		errno = ECHILD;
		return -1;
	}
	return pfd[0];
}

static int parse_started(const char *s, struct started *st)
{
	int n = 0;

	memset(st, 0, sizeof(*st));
	if (sscanf(s, "%ld %" SCNu64 " %" SCNu64 " %1023s %95s %n", &st->pid, &st->cid, &st->mib,
	           st->cpus, st->id, &n) < 5 ||
	    n == 0)
		return -1;
	snprintf(st->name, sizeof(st->name), "%s", s + n);
	return 0;
}

static int print_started(const struct started *st)
{
	struct cl_json j;
	size_t count = 0;

	/* nitro-cli prints the CPU list with Rust's Debug formatting: [1, 3] */
	fprintf(stderr,
	        "Started enclave with enclave-cid: %" PRIu64 ", memory: %" PRIu64
	        " MiB, cpu-ids: [",
	        st->cid, st->mib);
	for (const char *c = st->cpus; *c; c++)
		if (*c == ',')
			fputs(", ", stderr);
		else
			fputc(*c, stderr);
	fputs("]\n", stderr);

	cl_json_init(&j, true);
	cl_json_begin_object(&j);
	cl_json_key(&j, "EnclaveName");
	cl_json_string(&j, st->name);
	cl_json_key(&j, "EnclaveID");
	cl_json_string(&j, st->id);
	cl_json_key(&j, "ProcessID");
	cl_json_uint(&j, (uint64_t)st->pid);
	cl_json_key(&j, "EnclaveCID");
	cl_json_uint(&j, st->cid);
	for (const char *c = st->cpus; *c; c++)
		count += *c == ',';
	cl_json_key(&j, "NumberOfCPUs");
	cl_json_uint(&j, st->cpus[0] ? count + 1 : 0);
	cl_json_key(&j, "CPUIDs");
	cl_json_begin_array(&j);
	for (const char *c = st->cpus; *c;) {
		char *next;

		cl_json_uint(&j, strtoull(c, &next, 10));
		c = *next == ',' ? next + 1 : next;
		if (next == c && *c)
			break;
	}
	cl_json_end_array(&j);
	cl_json_key(&j, "MemoryMiB");
	cl_json_uint(&j, st->mib);
	cl_json_end_object(&j);
	return cli_emit_json(&j);
}

int cmd_run_enclave(int argc, char **argv)
{
	struct run_args a;
	struct parent_identity parent;
	struct cl_diag d = { "" };
	struct started st;
	struct pool *p = NULL;
	struct pool_record rec;
	char real[PATH_MAX], *line = NULL;
	size_t cap = 0;
	bool started = false;
	struct stat sb;
	FILE *f;
	int rc, fd;

	rc = run_args_parse(argc, argv, &a, &d);
	if (rc)
		return cli_fail((enum cli_error)rc, "%s", d.msg);
	if (a.help) {
		usage(stdout);
		return 0;
	}
	if (a.cid_given_zero)
		fprintf(stderr, "The enclave CID will be auto-generated, as the provided CID "
		                "is 0\n");
	if (!realpath(a.eif_path, real) || stat(real, &sb) < 0 || !S_ISREG(sb.st_mode))
		return cli_fail(E_FILE_OPERATION, "File: '%s', failing operation: 'Open' (%s)",
		                a.eif_path, strerror(errno ? errno : EINVAL));
	snprintf(a.eif_path, sizeof(a.eif_path), "%s", real);
	if (ne_mem_check_request(a.memory_mib, (uint64_t)sb.st_size, NULL, &d))
		return cli_fail(E_INSUFFICIENT_MEMORY_REQUESTED, "%s", d.msg);
	/* PCR3/PCR4 inputs (docs/attestation.md): a bad setting fails here, before any
	 * resource is taken, rather than in the detached enclave process. */
	rc = parent_identity_load(NULL, NULL, &parent, &d);
	if (rc)
		return cli_fail((enum cli_error)rc, "%s", d.msg);

	/* Without a pool nothing can start; say how to make one (docs/resources.md). */
	rc = pool_open(NULL, NULL, &p, &d);
	if (rc == 0)
		rc = pool_record_read(p, &rec, &d);
	if (rc == POOL_ERR_NO_POOL) {
		pool_close(p);
		return cli_fail(E_FILE_OPERATION, "%s", d.msg); /* names the fix */
	}
	if (rc) {
		pool_close(p);
		return cli_fail(E_FILE_OPERATION,
		                "cannot read the enclave resource pool in %s: %s; reserve CPUs and "
		                "hugepages with: sudo cloister allocator",
		                pool_default_state_dir(), d.msg);
	}
	/* The enclave process would only find out after taking the lock, as a failed grant
	 * write ("E29 Ioctl failure"); say here which directory and what to do. */
	rc = pool_check_writable(p, &d);
	pool_close(p);
	if (rc)
		return cli_fail(E_FILE_OPERATION, "%s", d.msg);

	fprintf(stderr, "Start allocating memory...\n");
	fd = spawn_enclave_process(&a, &parent, (uint64_t)sb.st_size);
	if (fd < 0)
		return cli_fail(E_PROCESS_SPAWN, "cannot start the enclave process: %s",
		                strerror(errno));
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return cli_fail(E_PROCESS_SPAWN, "fdopen: %s", strerror(errno));
	}
	rc = -1;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "started ", 8)) {
			started = parse_started(line + 8, &st) == 0;
		} else if (!strcmp(line, "booted") && started) {
			rc = print_started(&st);
			break;
		} else if (!strncmp(line, "warning ", 8)) {
			fprintf(stderr, "Warning: %s\n", line + 8);
		} else if (!strncmp(line, "error ", 6)) {
			char *msg;
			long code = strtol(line + 6, &msg, 10);

			if (code <= 0 || code >= E_COUNT)
				code = E_UNSPECIFIED;
			rc = cli_fail((enum cli_error)code, "%s", *msg ? msg + 1 : "");
			break;
		}
	}
	fclose(f);
	free(line);
	if (rc < 0)
		rc = cli_fail(E_ENCLAVE_BOOT_FAILURE,
		              "the enclave process %s before the enclave booted; its log is in %s",
		              started ? "ended" : "failed", enclave_logs_dir());
	if (rc == 0 && a.attach_console) {
		char sock[PATH_MAX];
		uint64_t slot;

		if (pool_enclave_id_parse(st.id, &slot) != 0)
			return cli_fail(E_ENCLAVE_CONSOLE_CONNECTION, "bad EnclaveID %s", st.id);
		enclave_socket_path(pool_default_state_dir(), slot, sock, sizeof(sock));
		printf("Connecting to the console for enclave %" PRIu64 "...\n", st.cid);
		printf("Successfully connected to the console.\n");
		fflush(stdout);
		rc = enclave_console_stream(st.id, sock, 0);
	}
	return rc;
}

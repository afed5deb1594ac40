/* SPDX-License-Identifier: Apache-2.0 */
/* cloister-monitor: one process per enclave. Parses arguments, then hands everything to the
 * monitor library (monitor.h); the exit status says how the enclave ended (docs/design.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/nsm/device.h"
#include "lib/util/file.h"
#include "lib/util/log.h"
#include "lib/vsock/vsock.h"
#include "vmm/monitor.h"
#include "vmm/sandbox/landlock.h"
#include "vmm/sandbox/seccomp.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister-monitor --eif PATH --memory MiB (--cpu-ids LIST | --cpu-count N)\n"
	        "                        [--cid N] [--debug-mode [--console PATH|-]]\n"
	        "                        [--ready-fd N] [--enclave-id ID [--ca-dir DIR]\n"
	        "                        [--parent-role ARN] [--parent-id ID]]\n"
	        "\n"
	        "Runs one enclave: a KVM virtual machine booting the EIF's kernel with its vCPUs\n"
	        "pinned to dedicated host CPUs and its memory in locked hugepages.\n"
	        "\n"
	        "  --eif PATH          enclave image (copied whole to guest-physical 8 MiB)\n"
	        "  --memory MiB        guest RAM: >= 64, a multiple of 2, >= 4 x the EIF size;\n"
	        "                      taken from 2 MiB (or 1 GiB) hugepages\n"
	        "  --cpu-ids LIST      host CPUs for the vCPUs, e.g. 2,3 or 2-5 (one vCPU each)\n"
	        "  --cpu-count N       N vCPUs on the first N CPUs this process may run on\n"
	        "  --cid N             the enclave's vsock CID (not 0-3, not 0xffffffff)\n"
	        "  --debug-mode        show the enclave console (ttyS0); without it nothing the\n"
	        "                      enclave prints leaves it\n"
	        "  --console PATH|-    debug mode: append the console to PATH, or stdout "
	        "(default)\n"
	        "  --enclave-id ID     give the enclave an NSM (virtio-nsm) with this module id;\n"
	        "                      its certificate comes from the host CA (--ca-dir DIR,\n"
	        "                      default $CLOISTER_CA_DIR or /etc/cloister/ca)\n"
	        "  --parent-role ARN   with --enclave-id: PCR3 = SHA-384(48 zero bytes || ARN),\n"
	        "                      the parent's IAM role as on Nitro (default: PCR3 zero)\n"
	        "  --parent-id ID      with --enclave-id: PCR4 = SHA-384(48 zero bytes || ID),\n"
	        "                      the parent's instance id (default: PCR4 zero)\n"
	        "  --ready-fd N        write \"ready\\n\" to fd N once the vCPUs run, then close "
	        "it\n"
	        "  --vsock-uds PATH    with --cid: the enclave's vsock host socket; the parent\n"
	        "                      connects there (CONNECT <port>), and enclave connections\n"
	        "                      to CID 3 port P go to PATH_P (docs/vsock.md)\n"
	        "  --heartbeat-timeout S  with --cid: expect the Nitro boot heartbeat (0xB7 on\n"
	        "                      CID 3 port 9000) within S seconds, else end the enclave\n"
	        "  --booted-fd N       write \"booted\\n\" to fd N when the heartbeat arrives\n"
	        "  --exit-port P       with --cid: read cloister-init's exit report on CID 3\n"
	        "                      port P (default 9001; 0 = off) and log the app's exit\n"
	        "                      status, unless something listens at the vsock-uds' _P\n"
	        "  --timeline PATH     write the boot timeline (ms from exec to set-up done,\n"
	        "                      first guest entry, first UART access, init's boot-timer\n"
	        "                      stages, first virtio access, heartbeat) to PATH as JSON\n"
	        "                      when the enclave ends (docs/benchmarks.md)\n"
	        "  --log-level LEVEL   error, warning, info (default) or debug\n"
	        "  --skip-host-probe   do not time a ring-0 loop to check that this host's KVM\n"
	        "                      can boot Linux (for callers that already checked)\n"
	        "  --kernel PATH --initrd PATH --cmdline STR\n"
	        "                      development: boot a bzImage and initrd instead of an EIF\n"
	        "\n"
	        "Exit status: 0 poweroff, 10 reboot, 11 triple fault, 12 KVM error,\n"
	        "13 guest protocol violation, 14 terminated by signal, 15 monitor error while\n"
	        "running, 16 no or wrong boot heartbeat; nothing started: 1 setup error,\n"
	        "2 usage, 3 host cannot run enclaves, 4 hugepage memory, 5 bad image, 6 CPUs.\n");
}

static int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || !*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "2,3,6-7" → cpus[]; returns the count or -1. */
static int parse_cpulist(const char *s, int *cpus, int max)
{
	int n = 0;
	char *copy = strdup(s), *save = NULL, *tok;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long long a, b;
		char *dash = strchr(tok, '-');

		if (dash)
			*dash = '\0';
		if (parse_u64(tok, CPU_SETSIZE - 1, &a) ||
		    (dash ? parse_u64(dash + 1, CPU_SETSIZE - 1, &b) : (b = a, 0)) || b < a)
			goto bad;
		for (unsigned long long c = a; c <= b; c++) {
			if (n >= max)
				goto bad;
			for (int i = 0; i < n; i++)
				if (cpus[i] == (int)c)
					goto bad;
			cpus[n++] = (int)c;
		}
	}
	free(copy);
	return n;
bad:
	free(copy);
	return -1;
}

/* --booted-fd: tell the parent the enclave's init sent its heartbeat. */
static void report_booted(void *opaque)
{
	int *fd = opaque;

	if (*fd >= 0) {
		(void)cl_write_full(*fd, "booted\n", 7);
		close(*fd);
		*fd = -1;
	}
}

/* The --timeline file: the boot timeline as one JSON object and a newline. */
static void write_timeline(int fd, const struct timeline *t, const char *path)
{
	char json[512];
	int n = timeline_json(t, json, sizeof(json) - 1);

	if (n < 0)
		return;
	json[n++] = '\n';
	if (cl_write_full(fd, json, (size_t)n) < 0)
		fprintf(stderr, "cloister-monitor: writing the timeline to %s: %s\n", path,
		        strerror(errno));
}

int main(int argc, char **argv)
{
	enum {
		O_EIF = 256,
		O_MEMORY,
		O_CPU_IDS,
		O_CPU_COUNT,
		O_CID,
		O_DEBUG,
		O_CONSOLE,
		O_READY,
		O_KERNEL,
		O_INITRD,
		O_CMDLINE,
		O_LOG,
		O_NO_PROBE,
		O_ENCLAVE_ID,
		O_CA_DIR,
		O_PARENT_ROLE,
		O_PARENT_ID,
		O_VSOCK_UDS,
		O_HEARTBEAT,
		O_BOOTED_FD,
		O_EXIT_PORT,
		O_TIMELINE,
		O_NO_SECCOMP,
		O_HELP,
		O_VERSION
	};
	static const struct option opts[] = {
		{ "eif", required_argument, NULL, O_EIF },
		{ "memory", required_argument, NULL, O_MEMORY },
		{ "cpu-ids", required_argument, NULL, O_CPU_IDS },
		{ "cpu-count", required_argument, NULL, O_CPU_COUNT },
		{ "cid", required_argument, NULL, O_CID },
		{ "debug-mode", no_argument, NULL, O_DEBUG },
		{ "console", required_argument, NULL, O_CONSOLE },
		{ "ready-fd", required_argument, NULL, O_READY },
		{ "kernel", required_argument, NULL, O_KERNEL },
		{ "initrd", required_argument, NULL, O_INITRD },
		{ "cmdline", required_argument, NULL, O_CMDLINE },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "skip-host-probe", no_argument, NULL, O_NO_PROBE },
		{ "enclave-id", required_argument, NULL, O_ENCLAVE_ID },
		{ "ca-dir", required_argument, NULL, O_CA_DIR },
		{ "parent-role", required_argument, NULL, O_PARENT_ROLE },
		{ "parent-id", required_argument, NULL, O_PARENT_ID },
		{ "vsock-uds", required_argument, NULL, O_VSOCK_UDS },
		{ "heartbeat-timeout", required_argument, NULL, O_HEARTBEAT },
		{ "booted-fd", required_argument, NULL, O_BOOTED_FD },
		{ "exit-port", required_argument, NULL, O_EXIT_PORT },
		{ "timeline", required_argument, NULL, O_TIMELINE },
#ifdef CLOISTER_DEBUG_BUILD
		{ "no-seccomp", no_argument, NULL, O_NO_SECCOMP },
#endif
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct monitor_config cfg;
	struct monitor *m = NULL;
	struct cl_diag d = { "" };
	const char *cpu_ids = NULL, *console = NULL, *timeline = NULL;
	unsigned long long v, cpu_count = 0;
	int ready_fd = -1, booted_fd = -1, timeline_fd = -1, sigfd = -1, opt, status;
	enum vmm_err e;
	enum monitor_end end;
	char why[256];
	sigset_t sigs;

	uint64_t origin = timeline_now_ns(); /* the boot timeline starts at exec */

	sandbox_prepare_process(); /* before any thread: see seccomp.h */

	memset(&cfg, 0, sizeof(cfg));
	cfg.origin_ns = origin;
	cfg.exit_port = VSOCK_EXIT_PORT;
	cfg.console_fd = -1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case O_EIF:
			cfg.eif_path = optarg;
			break;
		case O_MEMORY:
			if (parse_u64(optarg, 1ULL << 40, &v))
				goto bad_value;
			cfg.memory_mib = v;
			break;
		case O_CPU_IDS:
			cpu_ids = optarg;
			break;
		case O_CPU_COUNT:
			if (parse_u64(optarg, MONITOR_MAX_CPUS, &cpu_count) || cpu_count == 0) {
				fprintf(stderr, "cloister-monitor: --cpu-count %s: give 1 to %d\n",
				        optarg, MONITOR_MAX_CPUS);
				return MONITOR_EXIT_USAGE;
			}
			break;
		case O_CID:
			/* nitro-compat §2.4: 1, 2 (well-known), 3 (parent) and VMADDR_CID_ANY are
			 * not enclave CIDs. */
			if (parse_u64(optarg, 0xfffffffeULL, &v) || (v >= 1 && v <= 3)) {
				fprintf(stderr,
				        "cloister-monitor: --cid %s is not a usable enclave CID "
				        "(use 4..4294967294, or 0 for none)\n",
				        optarg);
				return MONITOR_EXIT_USAGE;
			}
			cfg.cid = (uint32_t)v;
			break;
		case O_DEBUG:
			cfg.debug_mode = true;
			break;
		case O_CONSOLE:
			console = optarg;
			break;
		case O_READY:
			if (parse_u64(optarg, INT_MAX, &v))
				goto bad_value;
			ready_fd = (int)v;
			break;
		case O_KERNEL:
			cfg.kernel_path = optarg;
			break;
		case O_VSOCK_UDS:
			cfg.vsock_uds = optarg;
			break;
		case O_HEARTBEAT:
			if (parse_u64(optarg, 86400, &v) || v == 0)
				goto bad_value;
			cfg.heartbeat_timeout_ms = (unsigned)v * 1000;
			break;
		case O_NO_SECCOMP:
			cfg.no_seccomp = true;
			fprintf(stderr,
			        "cloister-monitor: WARNING: --no-seccomp: this debug build runs "
			        "the enclave WITHOUT its seccomp sandbox\n");
			break;
		case O_EXIT_PORT:
			if (parse_u64(optarg, UINT32_MAX, &v) || v == VSOCK_HEARTBEAT_PORT)
				goto bad_value;
			cfg.exit_port = (uint32_t)v;
			break;
		case O_TIMELINE:
			timeline = optarg;
			break;
		case O_BOOTED_FD:
			if (parse_u64(optarg, INT_MAX, &v))
				goto bad_value;
			booted_fd = (int)v;
			break;
		case O_INITRD:
			cfg.initrd_path = optarg;
			break;
		case O_CMDLINE:
			cfg.cmdline = optarg;
			break;
		case O_NO_PROBE:
			cfg.skip_host_probe = true;
			break;
		case O_ENCLAVE_ID:
			cfg.enclave_id = optarg;
			break;
		case O_CA_DIR:
			cfg.ca_dir = optarg;
			break;
		case O_PARENT_ROLE:
		case O_PARENT_ID:
			/* Checked here, not only by the NSM setup, so a typo is a usage error
			 * before any memory is taken. */
			if (!nsm_parent_value_valid(optarg)) {
				fprintf(stderr,
				        "cloister-monitor: --%s '%.80s': give 1 to %d printable "
				        "characters without spaces\n",
				        opt == O_PARENT_ROLE ? "parent-role" : "parent-id", optarg,
				        NSM_PARENT_VALUE_MAX);
				return MONITOR_EXIT_USAGE;
			}
			if (opt == O_PARENT_ROLE)
				cfg.parent_role = optarg;
			else
				cfg.parent_id = optarg;
			break;
		case O_LOG:
			if (!strcmp(optarg, "error"))
				cl_log_set_level(CL_LOG_ERROR);
			else if (!strcmp(optarg, "warning"))
				cl_log_set_level(CL_LOG_WARN);
			else if (!strcmp(optarg, "info"))
				cl_log_set_level(CL_LOG_INFO);
			else if (!strcmp(optarg, "debug"))
				cl_log_set_level(CL_LOG_DEBUG);
			else
				goto bad_value;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			return 0;
		case O_VERSION:
			printf("cloister-monitor %s\n", CLOISTER_VERSION);
			return 0;
		default:
			usage(stderr);
			return MONITOR_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "cloister-monitor: unexpected argument '%s'\n", argv[optind]);
		return MONITOR_EXIT_USAGE;
	}
	if (!cfg.eif_path == !cfg.kernel_path) {
		fprintf(stderr,
		        "cloister-monitor: give exactly one of --eif PATH or --kernel PATH\n");
		return MONITOR_EXIT_USAGE;
	}
	if (!cfg.memory_mib) {
		fprintf(stderr, "cloister-monitor: --memory MiB is required (at least %d)\n",
		        MONITOR_MIN_MEMORY_MIB);
		return MONITOR_EXIT_USAGE;
	}
	if (!cpu_ids == !cpu_count) {
		fprintf(stderr, "cloister-monitor: give exactly one of --cpu-ids LIST or "
		                "--cpu-count N\n");
		return MONITOR_EXIT_USAGE;
	}
	if ((cfg.vsock_uds || cfg.heartbeat_timeout_ms || booted_fd >= 0) && !cfg.cid) {
		fprintf(stderr, "cloister-monitor: --vsock-uds, --heartbeat-timeout and "
		                "--booted-fd need --cid N: without a CID there is no vsock\n");
		return MONITOR_EXIT_USAGE;
	}
	if ((cfg.parent_role || cfg.parent_id) && !cfg.enclave_id) {
		fprintf(stderr, "cloister-monitor: --parent-role and --parent-id need --enclave-id "
		                "ID: they set PCR3/PCR4 of the enclave's NSM\n");
		return MONITOR_EXIT_USAGE;
	}
	if (booted_fd >= 0 && !cfg.heartbeat_timeout_ms) {
		fprintf(stderr, "cloister-monitor: --booted-fd needs --heartbeat-timeout S\n");
		return MONITOR_EXIT_USAGE;
	}
	cfg.on_booted = report_booted;
	cfg.booted_opaque = &booted_fd;
	if (console && !cfg.debug_mode) {
		fprintf(stderr, "cloister-monitor: --console needs --debug-mode: a production "
		                "enclave has no console\n");
		return MONITOR_EXIT_USAGE;
	}

	/* CPUs: each vCPU gets its own host CPU, which this process must be allowed to use. */
	{
		cpu_set_t allowed;
		int n;

		if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0) {
			perror("cloister-monitor: sched_getaffinity");
			return MONITOR_EXIT_CPU;
		}
		if (cpu_ids) {
			n = parse_cpulist(cpu_ids, cfg.cpus, MONITOR_MAX_CPUS);
			if (n <= 0) {
				fprintf(stderr,
				        "cloister-monitor: --cpu-ids %s: expected a list of "
				        "distinct CPUs such as 2,3 or 2-5 (at most %d)\n",
				        cpu_ids, MONITOR_MAX_CPUS);
				return MONITOR_EXIT_USAGE;
			}
			for (int i = 0; i < n; i++)
				if (!CPU_ISSET(cfg.cpus[i], &allowed)) {
					fprintf(stderr,
					        "cloister-monitor: CPU %d is not available to this "
					        "process (offline or outside its affinity mask)\n",
					        cfg.cpus[i]);
					return MONITOR_EXIT_CPU;
				}
		} else {
			n = 0;
			for (int c = 0; c < CPU_SETSIZE && n < (int)cpu_count; c++)
				if (CPU_ISSET(c, &allowed))
					cfg.cpus[n++] = c;
			if (n < (int)cpu_count) {
				fprintf(stderr,
				        "cloister-monitor: --cpu-count %llu but only %d CPUs are "
				        "available to this process\n",
				        cpu_count, n);
				return MONITOR_EXIT_CPU;
			}
		}
		cfg.ncpus = (unsigned)n;
	}

	if (cfg.debug_mode) {
		if (!console || !strcmp(console, "-")) {
			cfg.console_fd = STDOUT_FILENO;
		} else {
			cfg.console_fd = open(console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			                      0600);
			if (cfg.console_fd < 0) {
				fprintf(stderr,
				        "cloister-monitor: cannot open console file %s: %s\n",
				        console, strerror(errno));
				return MONITOR_EXIT_USAGE;
			}
		}
	}

	/* Opened now: once the guest runs, this process opens no files (its seccomp list). */
	if (timeline) {
		timeline_fd = open(timeline, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (timeline_fd < 0) {
			fprintf(stderr, "cloister-monitor: cannot open timeline file %s: %s\n",
			        timeline, strerror(errno));
			status = MONITOR_EXIT_USAGE;
			goto close_console;
		}
	}

	/* Termination signals are read from a signalfd by the main loop; blocking them before
	 * any thread exists keeps them away from the vCPU threads. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);

	e = monitor_create(&m, &cfg, &d);
	/* Of the file system, this process keeps only the removal of files beside its vsock
	 * socket (the socket itself, at the end), for good and for every thread it starts from
	 * here (Landlock; docs/security.md). Its seccomp lists already refuse open. */
	if (e == VMM_OK && !cfg.no_seccomp) {
		char uds[PATH_MAX];
		struct sandbox_fs_rule keep = { NULL, SANDBOX_FS_REMOVE };
		int rc;

		snprintf(uds, sizeof(uds), "%s", cfg.vsock_uds ? cfg.vsock_uds : "");
		keep.path = dirname(uds);
		rc = sandbox_confine_fs(&keep, cfg.vsock_uds ? 1 : 0, &d);
		if (rc < 0)
			e = VMM_ERR_INTERNAL;
		else if (rc == 0)
			cl_info("no Landlock in this kernel: only seccomp fences the file system");
	}
	if (e == VMM_OK)
		e = monitor_start(m, &d);
	if (e != VMM_OK) {
		fprintf(stderr, "cloister-monitor: %s: %s\n", vmm_strerror(e), d.msg);
		status = monitor_exit_for_err(e);
		goto out;
	}
	if (!cfg.no_seccomp && sandbox_enter(SANDBOX_MAIN, &d) < 0) {
		fprintf(stderr, "cloister-monitor: %s\n", d.msg);
		monitor_stop(m, MONITOR_END_MONITOR_ERROR, "%s", d.msg);
	}
	monitor_sealed(m);
	cl_info("enclave started: %u vCPU(s), %llu MiB, %s mode", cfg.ncpus,
	        (unsigned long long)cfg.memory_mib, cfg.debug_mode ? "debug" : "production");
	if (ready_fd >= 0) {
		monitor_wait_memory(m); /* "ready": running, with all of its memory in place */
		(void)cl_write_full(ready_fd, "ready\n", 6);
		close(ready_fd);
		ready_fd = -1;
	}
	end = monitor_wait(m, sigfd, why, sizeof(why));
	status = monitor_exit_for_end(end);
	fprintf(stderr, "cloister-monitor: enclave ended: %s: %s (exit status %d)\n",
	        monitor_end_name(end), why, status);
	if (timeline_fd >= 0)
		write_timeline(timeline_fd, monitor_timeline(m), timeline);
out:
	monitor_destroy(m);
	if (sigfd >= 0)
		close(sigfd);
	if (timeline_fd >= 0)
		close(timeline_fd);
close_console:
	if (cfg.console_fd > STDERR_FILENO)
		close(cfg.console_fd);
	return status;

bad_value:
	fprintf(stderr, "cloister-monitor: invalid value '%s'\n", optarg);
	return MONITOR_EXIT_USAGE;
}

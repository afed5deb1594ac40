/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enclave process (nitro-compat §2.3): one per enclave, detached from run-enclave, which
 * execs the small cloister-enclave program to run it (enclave.h). It is the
 * pool grant's owner and the process that maps the enclave memory, so it runs the monitor
 * library in-process rather than exec'ing cloister-monitor: ne_launch_prepare() needs the
 * process that will run the VM to own the hugepage mappings (docs/resources.md), and one process
 * means one death to watch — SIGKILL frees the memory (kernel), the grant (reclaimed by the next
 * cloister call) and the sockets (cleaned as stale).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/nitro/enclave.h"
#include "lib/util/file.h"
#include "lib/util/log.h"
#include "lib/vsock/vsock.h"
#include "vmm/monitor.h"
#include "vmm/sandbox/landlock.h"
#include "vmm/sandbox/seccomp.h"

#define MiB (1ULL << 20)
#define MAX_WAITERS 16

const char *enclave_logs_dir(void)
{
	const char *env = getenv("NITRO_CLI_LOGS_PATH");

	return env && *env ? env : "/var/log/cloister";
}

void enclave_console_path(const char *enclave_id, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.console", enclave_logs_dir(), enclave_id);
}

void enclave_socket_path(const char *state_dir, uint64_t slot_uid, char *out, size_t len)
{
	snprintf(out, len, "%s/%" PRIx64 ".sock", state_dir, slot_uid);
}

struct eproc {
	int report_fd;
	struct ne_launch launch;
	struct eif_image img; /* parsed from the file: checks and metadata, not measured */
	struct eif_measurements meas; /* from the monitor: what the guest boots (under lock) */
	bool debug_mode;
	struct monitor *m;
	int listen_fd;
	int stop_fd; /* eventfd: stop the control thread */
	char socket[PATH_MAX];
	atomic_bool terminating;
	pthread_mutex_t lock;
	int waiters[MAX_WAITERS]; /* terminate requests waiting for "terminated" */
	size_t nwaiters;
};

static void report(struct eproc *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct eproc *e, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	if (e->report_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	/* one line per message: the parent reads lines */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	(void)cl_write_full(e->report_fd, line, (size_t)n);
}

static int report_error(struct eproc *e, int code, const char *msg)
{
	cl_err("E%02d: %s", code, msg);
	report(e, "error %d %s", code, msg);
	return code;
}

/* The monitor calls this once the guest's init sent the 0xB7 heartbeat. */
static void on_booted(void *opaque)
{
	struct eproc *e = opaque;

	cl_info("enclave %s booted (heartbeat received)", e->launch.enclave_id);
	report(e, "booted");
	close(e->report_fd);
	e->report_fd = -1;
}

static void write_describe(struct eproc *e, int fd)
{
	const struct ne_launch *l = &e->launch;
	struct enclave_info *info = calloc(1, sizeof(*info));
	char buf[8192];
	size_t n;

	if (!info)
		return;
	snprintf(info->name, sizeof(info->name), "%s", l->name);
	snprintf(info->id, sizeof(info->id), "%s", l->enclave_id);
	info->pid = getpid();
	info->cid = l->cid;
	info->ncpus = l->ncpus;
	memcpy(info->cpus, l->cpu_ids, l->ncpus * sizeof(info->cpus[0]));
	info->memory_mib = l->memory_mib;
	info->terminating = atomic_load(&e->terminating);
	info->debug_mode = e->debug_mode;
	pthread_mutex_lock(&e->lock);
	info->meas = e->meas;
	pthread_mutex_unlock(&e->lock);
	n = enclave_describe_format(info, buf, sizeof(buf));
	free(info);
	if (n && cl_write_full(fd, buf, n) == 0 && e->img.metadata_data)
		(void)cl_write_full(fd, e->img.metadata_data, e->img.metadata_len);
}

static void serve_one(struct eproc *e, int fd)
{
	struct timeval tv = { .tv_sec = 2 };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char req[64];
	size_t got = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		close(fd);
		return;
	}
	while (got < sizeof(req) - 1) {
		ssize_t r = read(fd, req + got, 1);

		if (r <= 0)
			break;
		if (req[got] == '\n')
			break;
		got++;
	}
	req[got] = '\0';
	if (!strcmp(req, "describe")) {
		write_describe(e, fd);
	} else if (!strcmp(req, "terminate")) {
		/* nitro-compat §2.3: the socket owner's uid and root may terminate */
		if (cred.uid != getuid() && cred.uid != 0) {
			cl_warn("terminate refused for uid %u", (unsigned)cred.uid);
			(void)cl_write_full(fd, "denied\n", 7);
		} else {
			bool kept = false;

			cl_info("terminate requested by pid %ld uid %u", (long)cred.pid,
			        (unsigned)cred.uid);
			if (cl_write_full(fd, "terminating\n", 12) == 0) {
				pthread_mutex_lock(&e->lock);
				if (e->nwaiters < MAX_WAITERS) {
					e->waiters[e->nwaiters++] = fd;
					kept = true;
				}
				pthread_mutex_unlock(&e->lock);
			}
			atomic_store(&e->terminating, true);
			pthread_mutex_lock(&e->lock);
			if (e->m)
				monitor_stop(e->m, MONITOR_END_TERMINATED,
				             "terminate-enclave (uid %u)", (unsigned)cred.uid);
			pthread_mutex_unlock(&e->lock);
			if (kept)
				return;
		}
	}
	close(fd);
}

static void *control_thread(void *opaque)
{
	struct eproc *e = opaque;
	struct cl_diag d = { "" };

	/* Everything this thread needs is open (the listening socket, the stop eventfd): the
	 * requests of any local user are served under SANDBOX_CONTROL only. Without it, no
	 * requests: the enclave ends rather than run with an unfiltered control thread. */
	if (sandbox_enter(SANDBOX_CONTROL, &d) < 0) {
		cl_err("control thread: %s; ending the enclave", d.msg);
		atomic_store(&e->terminating, true);
		pthread_mutex_lock(&e->lock);
		if (e->m)
			monitor_stop(e->m, MONITOR_END_MONITOR_ERROR, "%s", d.msg);
		pthread_mutex_unlock(&e->lock);
		return NULL;
	}
	for (;;) {
		struct pollfd pfd[2] = { { .fd = e->listen_fd, .events = POLLIN },
			                 { .fd = e->stop_fd, .events = POLLIN } };
		int fd;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		fd = accept4(e->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve_one(e, fd);
	}
	return NULL;
}

static int control_listen(struct eproc *e, struct cl_diag *d)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	if (strlen(e->socket) >= sizeof(a.sun_path)) {
		cl_diag_set(d, "control socket path %s is too long", e->socket);
		return -1;
	}
	strcpy(a.sun_path, e->socket);
	unlink(e->socket); /* a stale socket of a dead slot with the same (random) uid */
	e->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (e->listen_fd < 0 || bind(e->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(e->listen_fd, 16) < 0) {
		cl_diag_set(d, "control socket %s: %s", e->socket, strerror(errno));
		return -1;
	}
	/* nitro-cli's 0766: anyone may connect (and describe); SO_PEERCRED decides the rest */
	chmod(e->socket, 0766);
	return 0;
}

static int vmm_err_to_cli(enum vmm_err err)
{
	switch (err) {
	case VMM_ERR_MEMORY:
		return E_INSUFFICIENT_MEMORY_AVAILABLE;
	case VMM_ERR_IMAGE:
		return E_EIF_PARSING;
	case VMM_ERR_CPU:
		return E_CPU_ERROR;
	case VMM_ERR_SIGNATURE:
		return E_EIF_SIGNATURE_CHECKER;
	default:
		return E_ENCLAVE_BOOT_FAILURE;
	}
}

int enclave_process_main(const struct run_args *a, const struct parent_identity *parent,
                         uint64_t eif_size, int report_fd)
{
	struct eproc e;
	struct ne_launch_req req;
	struct monitor_config cfg;
	struct monitor *m;
	struct pool *p = NULL;
	struct cl_diag d = { "" };
	char console[PATH_MAX], vsock[PATH_MAX], why[256], msg[sizeof(d.msg) + PATH_MAX + 128];
	pthread_t thread;
	bool thread_started = false;
	enum vmm_err verr;
	enum monitor_end end = MONITOR_END_NONE;
	sigset_t sigs;
	int sigfd = -1, code = 0, rc;

	memset(&e, 0, sizeof(e));
	e.report_fd = report_fd;
	e.listen_fd = -1;
	e.stop_fd = -1;
	e.debug_mode = a->debug_mode;
	pthread_mutex_init(&e.lock, NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.console_fd = -1;

	/* Signals are read by the monitor's loop (SIGTERM = terminate); block them before any
	 * thread exists. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);

	/* Checked here so a bad image fails before CPUs and memory are taken. Not measured: the
	 * PCRs are the monitor's, taken from guest memory after the copy (docs/security.md). */
	if (eif_read_layout_file(a->eif_path, 0, &e.img, &d)) {
		snprintf(msg, sizeof(msg), "Failed to parse the EIF: %s", d.msg);
		code = report_error(&e, E_EIF_PARSING, msg);
		goto out;
	}
	rc = pool_open(NULL, NULL, &p, &d);
	if (rc) {
		code = report_error(&e, E_FILE_OPERATION, d.msg);
		goto out;
	}
	run_args_to_launch_req(a, &req);
	req.image_size = eif_size;
	req.image = NULL; /* the monitor copies the EIF to 8 MiB itself, from the file */
	code = ne_launch_prepare(p, &req, &e.launch, &d);
	if (code) {
		report_error(&e, code, d.msg);
		goto out;
	}
	{
		/* the log run-enclave opened as enclave-<pid>.log gets the enclave's name */
		char from[PATH_MAX], to[PATH_MAX];

		snprintf(from, sizeof(from), "%s/enclave-%ld.log", enclave_logs_dir(),
		         (long)getpid());
		snprintf(to, sizeof(to), "%s/%s.log", enclave_logs_dir(), e.launch.enclave_id);
		(void)rename(from, to);
	}
	cl_info("enclave %s (%s): CID %" PRIu64 ", %" PRIu64 " MiB, %zu vCPU(s)",
	        e.launch.enclave_id, e.launch.name, e.launch.cid, e.launch.memory_mib,
	        e.launch.ncpus);

	if (a->debug_mode) {
		enclave_console_path(e.launch.enclave_id, console, sizeof(console));
		cfg.console_fd = open(console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
		if (cfg.console_fd < 0) {
			snprintf(msg, sizeof(msg),
			         "cannot create the console log %s: %s; set NITRO_CLI_LOGS_PATH to "
			         "a "
			         "writable directory",
			         console, strerror(errno));
			code = report_error(&e, E_FILE_OPERATION, msg);
			goto out;
		}
	}

	/* The enclave's NSM: the monitor mints its key and measures the image in guest memory. */
	cfg.enclave_id = e.launch.enclave_id;
	parent_identity_apply(parent, &cfg.parent_role, &cfg.parent_id);
	cl_info("PCR3 (parent role): %s, from %s; PCR4 (parent instance id): %s, from %s",
	        parent->role[0] ? parent->role : "zero", parent->role_from,
	        parent->id[0] ? parent->id : "zero", parent->id_from);

	enclave_socket_path(pool_state_dir(p), e.launch.slot_uid, e.socket, sizeof(e.socket));
	if (control_listen(&e, &d) < 0) {
		code = report_error(&e, E_SOCKET_ERROR, d.msg);
		goto out;
	}
	e.stop_fd = eventfd(0, EFD_CLOEXEC);
	/* answer describe while the VM is set up (a terminate then ends it right after) */
	if (e.stop_fd >= 0 && pthread_create(&thread, NULL, control_thread, &e) == 0)
		thread_started = true;

	snprintf(vsock, sizeof(vsock), "%s/%s.vsock", pool_state_dir(p), e.launch.enclave_id);
	cfg.eif_path = a->eif_path;
	cfg.memory_mib = e.launch.memory_mib;
	cfg.ram = e.launch.mem.base;
	cfg.ncpus = (unsigned)e.launch.ncpus;
	for (size_t i = 0; i < e.launch.ncpus && i < MONITOR_MAX_CPUS; i++)
		cfg.cpus[i] = (int)e.launch.cpu_ids[i];
	cfg.cid = (uint32_t)e.launch.cid;
	cfg.debug_mode = a->debug_mode;
	cfg.vsock_uds = vsock;
	cfg.heartbeat_timeout_ms = ne_heartbeat_timeout_ms(eif_size, e.launch.memory_mib * MiB);
	/* The app's exit status reaches this enclave's log, not describe-enclaves (nitro-cli's
	 * JSON has no such field): docs/vsock.md, "The exit report". */
	cfg.exit_port = VSOCK_EXIT_PORT;
	cfg.on_booted = on_booted;
	cfg.booted_opaque = &e;
	if (!cfg.ram) {
		code = report_error(&e, E_ENCLAVE_MMAP, "enclave memory has no contiguous base");
		goto out;
	}

	{
		char cpus[1024] = "";

		for (size_t i = 0; i < e.launch.ncpus; i++) {
			size_t len = strlen(cpus);

			snprintf(cpus + len, sizeof(cpus) - len, "%s%u", i ? "," : "",
			         e.launch.cpu_ids[i]);
		}
		report(&e, "started %ld %" PRIu64 " %" PRIu64 " %s %s %s", (long)getpid(),
		       e.launch.cid, e.launch.memory_mib, cpus, e.launch.enclave_id, e.launch.name);
	}
	verr = monitor_create(&m, &cfg, &d);
	pthread_mutex_lock(&e.lock);
	e.m = m;
	if (!verr)
		e.meas = *monitor_measurements(m);
	if (!verr && atomic_load(&e.terminating))
		monitor_stop(m, MONITOR_END_TERMINATED, "terminate-enclave during setup");
	pthread_mutex_unlock(&e.lock);
	/* The enclave's end reads its grant through an fd pinned now: from here on this process
	 * opens no files. Of the file system it keeps only the removal of files in the state
	 * directory (its grant, control and vsock sockets, at the end), for good and for every
	 * thread it starts from here (Landlock; docs/security.md); its seccomp lists refuse open
	 * too. */
	if (!verr && ne_release_prepare(e.launch.slot, &d) < 0)
		verr = VMM_ERR_INTERNAL;
	if (!verr) {
		struct sandbox_fs_rule keep = { pool_state_dir(p), SANDBOX_FS_REMOVE };
		int lrc = sandbox_confine_fs(&keep, 1, &d);

		if (lrc < 0)
			verr = VMM_ERR_INTERNAL;
		else if (lrc == 0)
			cl_info("no Landlock in this kernel: only seccomp fences the file system");
	}
	if (!verr)
		verr = monitor_start(e.m, &d);
	if (verr) {
		snprintf(msg, sizeof(msg), "%s: %s", vmm_strerror(verr), d.msg);
		code = report_error(&e, vmm_err_to_cli(verr), msg);
		goto out;
	}
	/* All set up: guest RAM, KVM, sockets, the NSM keys, the console and log files. From here
	 * this thread runs the guest-facing main loop, then the enclave's end, under
	 * SANDBOX_ENCLAVE_MAIN; the end's only file access is the grant, pinned above. */
	if (sandbox_enter(SANDBOX_ENCLAVE_MAIN, &d) < 0) {
		cl_err("%s; ending the enclave", d.msg);
		monitor_stop(e.m, MONITOR_END_MONITOR_ERROR, "%s", d.msg);
	}
	monitor_sealed(e.m);
	end = monitor_wait(e.m, sigfd, why, sizeof(why));
	atomic_store(&e.terminating, true);
	cl_info("enclave %s ended: %s: %s", e.launch.enclave_id, monitor_end_name(end), why);
	if (end == MONITOR_END_REBOOT)
		/* Nitro ends an enclave whose guest reboots; the reboot itself does not say why. */
		cl_info("a guest reboot ends the enclave: its init or application exited, or its "
		        "kernel panicked (panic=N reboots after N s); %s%s",
		        a->debug_mode ? "its console shows which: " : "",
		        a->debug_mode ? console : "run it with --debug-mode to see which");
	if (e.report_fd >= 0) {
		/* never booted: what run-enclave reports (nitro-compat §2.5: E36) */
		snprintf(msg, sizeof(msg), "the enclave did not boot: %s: %s",
		         monitor_end_name(end), why);
		code = report_error(&e, E_ENCLAVE_BOOT_FAILURE, msg);
	}
out:
	pthread_mutex_lock(&e.lock);
	m = e.m;
	e.m = NULL; /* the control thread may still answer describe (TERMINATING) */
	pthread_mutex_unlock(&e.lock);
	monitor_destroy(m);
	if (cfg.console_fd >= 0)
		close(cfg.console_fd);
	ne_launch_release(&e.launch); /* CPUs, memory, CID and name back to the pool */
	if (thread_started) {
		uint64_t one = 1;

		(void)!write(e.stop_fd, &one, sizeof(one));
		pthread_join(thread, NULL);
	}
	if (e.listen_fd >= 0) {
		close(e.listen_fd);
		unlink(e.socket);
	}
	if (e.stop_fd >= 0)
		close(e.stop_fd);
	for (size_t i = 0; i < e.nwaiters; i++) {
		(void)cl_write_full(e.waiters[i], "terminated\n", 11);
		close(e.waiters[i]);
	}
	if (e.report_fd >= 0)
		close(e.report_fd);
	pool_close(p);
	eif_image_release(&e.img);
	if (sigfd >= 0)
		close(sigfd);
	pthread_mutex_destroy(&e.lock);
	return code ? code : monitor_exit_for_end(end);
}

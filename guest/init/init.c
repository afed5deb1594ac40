/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister-init: PID 1 of an enclave. It follows the Nitro enclave contract (nitro-compat
 * §2.10, §2.5) so an EIF built for cloister behaves like one built by nitro-cli:
 *
 *   block signals → devtmpfs on /dev → /dev/console as stdio → load the kernel modules listed
 *   in /modules/load (finit_module) → heartbeat 0xB7 to the parent (CID 3, port 9000) → read
 *   and unlink /cmd, /env (and cloister's optional /workdir, /measure) → make /rootfs the root
 *   → mount proc, sys, dev, dev/pts, dev/shm, run, tmp → optional measured launch (PCR 16) →
 *   run the app → reap every child → when the app exits, report its status and power off.
 *
 * Every failure before the app starts prints one "cloister-init: FATAL: ..." line on the
 * console and powers the enclave off at once: a half-started enclave is worse than none.
 * The file formats and the exit report are documented in docs/build-enclave.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define CL_BOOT_TIMER_GUEST
#include "cloister/boot_timer.h"
#include "init_parse.h"

#define MODULE_DIR "/modules"
#define DEFAULT_PATH "/sbin:/usr/sbin:/bin:/usr/bin"
/* nitro's bootstrap ramdisk carries only /nsm.ko and no list (nitro-compat §2.10). */
#define NITRO_NSM_MODULE "/nsm.ko"

/* The NSM uapi (nitro-compat §4): NSM_IOCTL_RAW = _IOWR(0x0A, 0, struct nsm_raw). */
struct nsm_iovec {
	uint64_t addr;
	uint64_t len;
};
struct nsm_raw {
	struct nsm_iovec request;
	struct nsm_iovec response;
};
#define NSM_IOCTL_RAW _IOWR(0x0A, 0x0, struct nsm_raw)
#define NSM_RESPONSE_MAX 0x3000

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("cloister-init: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static __attribute__((noreturn)) void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* Only reached if the kernel refused; PID 1 must not exit (that panics). */
	for (;;)
		pause();
}

static __attribute__((noreturn, format(printf, 1, 2))) void fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("cloister-init: FATAL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; powering off\n", stderr);
	power_off();
}

/* Read a whole small file into a malloc'd buffer with one spare byte for the NUL the line
 * splitter writes. Returns NULL with errno set. */
static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size < 0 || st.st_size > (64 << 20)) {
		if (errno == 0)
			errno = EFBIG;
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto fail;
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	*len = off;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

static void setup_console(void)
{
	int fd;

	if (mount("dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL) < 0 && errno != EBUSY)
		fatal("mount devtmpfs on /dev: %s", strerror(errno));
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return; /* no console: keep whatever the kernel gave us */
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static void read_cmdline(struct init_cmdline *flags)
{
	char *text = NULL;
	size_t len = 0;

	/* /proc is not mounted yet in the initramfs; mount it briefly for /proc/cmdline. */
	mkdir("/proc", 0555);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) == 0) {
		text = slurp("/proc/cmdline", &len);
		umount("/proc");
	}
	if (text)
		text[len] = '\0';
	init_parse_cmdline(text ? text : "", flags);
	free(text);
}

static int load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		/* Absent is fine: the module may be built into this kernel. */
		return errno == ENOENT ? 0 : -errno;
	}
	rc = (int)syscall(SYS_finit_module, fd, "", 0);
	close(fd);
	if (rc < 0 && errno != EEXIST)
		return -errno;
	unlink(path); /* free the ramdisk memory it used */
	return 0;
}

static void load_modules(void)
{
	struct init_list names;
	size_t len, line;
	enum init_error err;
	char *text = slurp(MODULE_DIR "/load", &len);

	if (!text) {
		/* No list: a nitro-style bootstrap ramdisk with only /nsm.ko. */
		int rc = load_module(NITRO_NSM_MODULE);
		if (rc < 0)
			fatal("finit_module %s: %s", NITRO_NSM_MODULE, strerror(-rc));
		return;
	}
	err = init_split_lines(text, len, INIT_SPLIT_MODULES, &names, &line);
	if (err != INIT_OK)
		fatal("%s/load line %zu: %s", MODULE_DIR, line, init_strerror(err));
	for (size_t i = 0; i < names.count; i++) {
		char path[128];
		int rc;

		snprintf(path, sizeof(path), MODULE_DIR "/%s.ko", names.strings[i]);
		rc = load_module(path);
		if (rc < 0)
			fatal("finit_module %s: %s", path, strerror(-rc));
	}
	unlink(MODULE_DIR "/load");
	init_list_free(&names);
	free(text);
}

static int vsock_connect(uint32_t port, long timeout_s)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = INIT_PARENT_CID,
		.svm_port = port,
	};
	struct timeval tv = { .tv_sec = timeout_s };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (timeout_s > 0)
		setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* nitro-compat §2.5: the parent learns the enclave booted; no echo means no parent. */
static void heartbeat(void)
{
	uint8_t b = INIT_HEARTBEAT_BYTE;
	ssize_t n;
	int fd = vsock_connect(INIT_HEARTBEAT_PORT, 0);

	if (fd < 0)
		fatal("heartbeat: connect to CID %u port %u: %s (is the vsock device there and "
		      "the parent listening?)",
		      INIT_PARENT_CID, INIT_HEARTBEAT_PORT, strerror(-fd));
	do
		n = write(fd, &b, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		fatal("heartbeat: send 0x%02x: %s", INIT_HEARTBEAT_BYTE,
		      n < 0 ? strerror(errno) : "short write");
	b = 0;
	do
		n = read(fd, &b, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		fatal("heartbeat: no echo from the parent: %s", n < 0 ? strerror(errno) : "EOF");
	if (b != INIT_HEARTBEAT_BYTE)
		fatal("heartbeat: parent echoed 0x%02x, expected 0x%02x", b, INIT_HEARTBEAT_BYTE);
	close(fd);
}

static void report_exit(int wstatus, uint32_t port)
{
	char line[96];
	uint8_t rec[INIT_EXIT_RECORD_SIZE];
	int fd;

	init_exit_line(wstatus, line, sizeof(line));
	fprintf(stderr, "%s\n", line);
	if (port == 0)
		return;
	init_exit_record(wstatus, rec);
	/* Best effort: a parent that does not listen (real Nitro) refuses at once. */
	fd = vsock_connect(port, 2);
	if (fd < 0)
		return;
	if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		say("exit report to port %u: %s", port, strerror(errno));
	close(fd);
}

static void nsm_call(int fd, const uint8_t *req, size_t len, const char *op)
{
	static uint8_t resp[NSM_RESPONSE_MAX];
	struct nsm_raw raw = {
		.request = { (uint64_t)(uintptr_t)req, len },
		.response = { (uint64_t)(uintptr_t)resp, sizeof(resp) },
	};

	if (len == 0)
		fatal("measured launch: %s request does not fit in %u bytes", op,
		      INIT_NSM_REQUEST_MAX);
	if (ioctl(fd, NSM_IOCTL_RAW, &raw) < 0)
		fatal("measured launch: NSM %s: %s", op, strerror(errno));
	if (!init_nsm_response_ok(resp, (size_t)raw.response.len, op))
		fatal("measured launch: NSM refused %s of PCR %u", op, INIT_MEASURE_PCR);
}

/* Extend PCR 16 with one tagged record in chunks (docs/build-enclave.md, "Measured launch"). */
static void measure_record(int fd, const char *tag, const uint8_t *data, size_t len)
{
	static uint8_t req[INIT_NSM_REQUEST_MAX];
	size_t off = 0;

	do {
		size_t n = len - off < INIT_MEASURE_CHUNK ? len - off : INIT_MEASURE_CHUNK;
		size_t rl = init_nsm_extend_request(INIT_MEASURE_PCR, tag, data + off, n, req,
		                                    sizeof(req));
		nsm_call(fd, req, rl, "ExtendPCR");
		off += n;
	} while (off < len);
}

static void measure_launch(const char *cmd, size_t cmd_len, const char *env, size_t env_len,
                           const char *workdir, size_t workdir_len)
{
	uint8_t req[64];
	int fd = open("/dev/nsm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fatal("measured launch requested but /dev/nsm: %s (is the nsm module in the "
		      "bootstrap ramdisk?)",
		      strerror(errno));
	measure_record(fd, "cloister:cmd:", (const uint8_t *)cmd, cmd_len);
	measure_record(fd, "cloister:env:", (const uint8_t *)env, env_len);
	if (workdir)
		measure_record(fd, "cloister:workdir:", (const uint8_t *)workdir, workdir_len);
	nsm_call(fd, req, init_nsm_lock_request(INIT_MEASURE_PCR, req, sizeof(req)), "LockPCR");
	close(fd);
	say("measured launch: PCR %u extended and locked", INIT_MEASURE_PCR);
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                       const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0)
		fatal("mount %s on %s: %s", type ? type : src, dst, strerror(errno));
}

static void enter_rootfs(void)
{
	/* Nitro's sequence: the rootfs directory becomes a mount point, moves over /, and the
	 * process chroots into it; the initramfs underneath stays out of reach. */
	if (mount("/rootfs", "/rootfs", NULL, MS_BIND | MS_REC, NULL) < 0)
		fatal("bind mount /rootfs: %s", strerror(errno));
	if (chdir("/rootfs") < 0)
		fatal("chdir /rootfs: %s", strerror(errno));
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		fatal("move /rootfs onto /: %s", strerror(errno));
	if (chroot(".") < 0 || chdir("/") < 0)
		fatal("chroot into /rootfs: %s", strerror(errno));

	must_mount("proc", "/proc", "proc", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL);
	must_mount("sysfs", "/sys", "sysfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL);
	must_mount("dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL);
	must_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	           "newinstance,ptmxmode=0666,mode=0620");
	must_mount("shm", "/dev/shm", "tmpfs", MS_NODEV | MS_NOSUID, "mode=1777");
	must_mount("tmpfs", "/run", "tmpfs", MS_NODEV | MS_NOSUID, "mode=0755");
	must_mount("tmpfs", "/tmp", "tmpfs", MS_NODEV | MS_NOSUID, "mode=1777");
	/* cgroups are a convenience for apps that read them; not having them is not fatal. */
	if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL) <
	    0)
		say("cgroup2 not mounted: %s", strerror(errno));
}

/* Read an optional file; returns NULL if absent, fatal on any other error. */
static char *read_optional(const char *path, size_t *len)
{
	char *s = slurp(path, len);

	if (!s && errno != ENOENT)
		fatal("read %s: %s", path, strerror(errno));
	if (s)
		unlink(path);
	return s;
}

int main(void)
{
	struct init_cmdline flags;
	struct init_list argv_list, env_list;
	size_t cmd_len = 0, env_len = 0, wd_len = 0, line;
	char *cmd, *env, *workdir, *cmd_copy, *env_copy, *measure;
	enum init_error err;
	sigset_t all;
	pid_t app;
	int wstatus = 0;

	cl_boot_timer_mark(CL_BOOT_STAGE_INIT); /* first: the monitor's boot timeline */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	setup_console();
	read_cmdline(&flags);
	load_modules();
	cl_boot_timer_mark(CL_BOOT_STAGE_DEVICES);
	if (flags.heartbeat)
		heartbeat();
	else
		say("heartbeat skipped (cloister.heartbeat=0)");

	cmd = read_optional("/cmd", &cmd_len);
	if (!cmd)
		fatal("could not open /cmd: %s (is the customer ramdisk in the image, and is "
		      "the enclave memory at least 4 times the EIF size?)",
		      strerror(errno));
	env = read_optional("/env", &env_len);
	if (!env)
		fatal("could not open /env: %s", strerror(errno));
	workdir = read_optional("/workdir", &wd_len);
	if (workdir) {
		while (wd_len && workdir[wd_len - 1] == '\n')
			wd_len--;
		workdir[wd_len] = '\0';
	}
	measure = read_optional("/measure", &line);
	if (measure)
		flags.measure = true;
	free(measure);

	/* Keep the exact bytes for the measurement before the splitter rewrites newlines. */
	cmd_copy = malloc(cmd_len + 1);
	env_copy = malloc(env_len + 1);
	if (!cmd_copy || !env_copy)
		fatal("out of memory");
	memcpy(cmd_copy, cmd, cmd_len);
	memcpy(env_copy, env, env_len);
	err = init_split_lines(cmd, cmd_len, INIT_SPLIT_KEEP_EMPTY, &argv_list, &line);
	if (err != INIT_OK)
		fatal("/cmd line %zu: %s", line, init_strerror(err));
	err = init_split_lines(env, env_len, INIT_SPLIT_SKIP_EMPTY, &env_list, &line);
	if (err != INIT_OK)
		fatal("/env line %zu: %s", line, init_strerror(err));

	enter_rootfs();
	if (flags.measure)
		measure_launch(cmd_copy, cmd_len, env_copy, env_len, workdir, wd_len);
	free(cmd_copy);
	free(env_copy);

	cl_boot_timer_mark(CL_BOOT_STAGE_APP);
	app = fork();
	if (app < 0)
		fatal("fork: %s", strerror(errno));
	if (app == 0) {
		const char *path = init_env_path(&env_list);
		sigset_t none;

		setsid();
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (workdir && workdir[0] && chdir(workdir) < 0) {
			say("chdir %s: %s", workdir, strerror(errno));
			_exit(126);
		}
		/* execvpe searches the PATH of *this* process, so give it the app's PATH. */
		setenv("PATH", path ? path : DEFAULT_PATH, 1);
		execvpe(argv_list.strings[0], argv_list.strings, env_list.strings);
		say("exec %s: %s", argv_list.strings[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}

	/* PID 1 adopts orphans: reap everything until the app itself is gone. */
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, 0);

		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0) {
			say("waitpid: %s", strerror(errno));
			break;
		}
		if (p == app) {
			wstatus = st;
			break;
		}
	}
	report_exit(wstatus, flags.exit_port);
	power_off();
}

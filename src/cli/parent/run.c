/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister parent-instance run`: boot the parent instance, run one command in it, stream its
 * output, return its exit status.
 *
 * Channels, kept apart so nothing gets mixed (docs/parent-instance.md):
 *   - the command's stdout and stderr: two virtio-serial ports → pipes → our stdout/stderr;
 *   - the L1 kernel console (ttyS0): a pipe we keep the tail of (shown on failure, --verbose);
 *   - QEMU's own stderr: same;
 *   - the exit status: a file the L1 init writes into a private per-run 9p share.
 * QEMU runs in its own process group with PR_SET_PDEATHSIG, and every exit path of ours (end,
 * timeout, SIGINT/SIGTERM/SIGHUP, failure) stops it and waits for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/parent/parent.h"
#include "lib/util/file.h"

extern char **environ;

#define DEFAULT_MEMORY_MIB 2048u
#define DEFAULT_CPUS 2u
#define DEFAULT_TIMEOUT_S 1800u
#define DEFAULT_HUGEPAGES_MIB 512u
/* L1 is ready 10-40 s after QEMU starts on these machines (longer with the host loaded); a
 * boot that has not got there in 5 minutes has stalled (seen once: QEMU idle, no progress). */
#define DEFAULT_BOOT_TIMEOUT_S 300u
#define DEFAULT_BOOT_ATTEMPTS 3u
#define MAX_ENV 64
#define TAIL_BYTES 8192u

/* Guest side of the channels: the fds QEMU inherits and opens as /proc/self/fd/N. */
#define QEMU_FD_OUT 3
#define QEMU_FD_ERR 4
#define QEMU_FD_CONSOLE 5

struct run_opts {
	unsigned memory_mib;
	unsigned cpus;
	unsigned timeout_s;
	unsigned hugepages_mib;
	unsigned boot_timeout_s; /* for L1 to reach "ready"; 0 = only --timeout */
	unsigned boot_attempts; /* boots tried when QEMU fails before "ready" */
	char workdir[PATH_MAX];
	char cwd[PATH_MAX];
	const char *kernel_dir;
	const char *kernel_args; /* appended to the L1 kernel command line (debugging) */
	bool verbose;
	const char *env[MAX_ENV];
	size_t nenv;
	char **cmd;
};

/* A ring of the last TAIL_BYTES bytes of a stream. */
struct tail {
	char buf[TAIL_BYTES];
	size_t len; /* bytes held (≤ TAIL_BYTES) */
	size_t head;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("cloister parent-instance: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister parent-instance run [OPTIONS] -- CMD [ARG...]\n"
	        "\n"
	        "  --memory MiB      L1 memory (default %u; suffixes M, G)\n"
	        "  --cpus N          L1 vCPUs (default %u)\n"
	        "  --timeout S       stop the parent instance after S seconds, exit %d\n"
	        "                    (default %u; 0 = no limit)\n"
	        "  --workdir DIR     shared writable at the same path (default: current dir)\n"
	        "  --hugepages MiB   2 MiB pages reserved in L1 for enclaves (default %u)\n"
	        "  --boot-timeout S  boot again if L1 has not started CMD after S seconds\n"
	        "                    (default %u; 0 = no limit)\n"
	        "  --boot-attempts N boot up to N times when QEMU dies or stalls before CMD\n"
	        "                    starts (default %u; TCG's rare assertion failures)\n"
	        "  --kernel-dir DIR  unpacked kernel package (default: scripts/fetch-kernel.sh\n"
	        "                    parent; env CLOISTER_PARENT_KERNEL_DIR, "
	        "CLOISTER_FETCH_KERNEL)\n"
	        "  --env NAME=VALUE  set in CMD's environment (repeatable)\n"
	        "  --verbose         show the L1 console and QEMU messages, and timings\n"
	        "  --kernel-args S   append S to the L1 kernel command line (e.g. loglevel=7)\n"
	        "\n"
	        "CMD runs in the current directory with stdin from /dev/null; the host's / is\n"
	        "read-only, /tmp /run /var/tmp are tmpfs. Exit status: CMD's, or %d (timeout),\n"
	        "%d (the parent instance failed), 128+N (we got signal N).\n",
	        DEFAULT_MEMORY_MIB, DEFAULT_CPUS, PARENT_EXIT_TIMEOUT, DEFAULT_TIMEOUT_S,
	        DEFAULT_HUGEPAGES_MIB, DEFAULT_BOOT_TIMEOUT_S, DEFAULT_BOOT_ATTEMPTS,
	        PARENT_EXIT_TIMEOUT, PARENT_EXIT_FAILED);
}

/* "2048", "2048M", "2G" → MiB. */
static bool parse_mib(const char *s, unsigned *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	if (*end == 'G' || *end == 'g') {
		v *= 1024;
		end++;
	} else if (*end == 'M' || *end == 'm') {
		end++;
	}
	if (!strcmp(end, "iB") || !strcmp(end, "B"))
		end += strlen(end);
	if (*end || v == 0 || v > 1024ull * 1024)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

static int parse_opts(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "hugepages", required_argument, NULL, 'H' },
		{ "kernel-dir", required_argument, NULL, 'k' },
		{ "env", required_argument, NULL, 'e' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "kernel-args", required_argument, NULL, 'a' },
		{ "boot-timeout", required_argument, NULL, 'B' },
		{ "boot-attempts", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *workdir = NULL;
	int c;

	memset(o, 0, sizeof(*o));
	o->memory_mib = DEFAULT_MEMORY_MIB;
	o->cpus = DEFAULT_CPUS;
	o->timeout_s = DEFAULT_TIMEOUT_S;
	o->hugepages_mib = DEFAULT_HUGEPAGES_MIB;
	o->boot_timeout_s = DEFAULT_BOOT_TIMEOUT_S;
	o->boot_attempts = DEFAULT_BOOT_ATTEMPTS;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (!parse_mib(optarg, &o->memory_mib) || o->memory_mib < 256) {
				say("--memory '%s' is not a size of at least 256 MiB (e.g. 2048 or "
				    "2G)",
				    optarg);
				return -1;
			}
			break;
		case 'c':
			if (!parse_uint(optarg, 64, &o->cpus) || o->cpus == 0) {
				say("--cpus '%s' is not a number from 1 to 64", optarg);
				return -1;
			}
			break;
		case 't':
			if (!parse_uint(optarg, 7 * 24 * 3600, &o->timeout_s)) {
				say("--timeout '%s' is not a number of seconds (0 = no limit)",
				    optarg);
				return -1;
			}
			break;
		case 'B':
			if (!parse_uint(optarg, 7 * 24 * 3600, &o->boot_timeout_s)) {
				say("--boot-timeout '%s' is not a number of seconds (0 = no limit)",
				    optarg);
				return -1;
			}
			break;
		case 'A':
			if (!parse_uint(optarg, 10, &o->boot_attempts) || o->boot_attempts == 0) {
				say("--boot-attempts '%s' is not a number from 1 to 10", optarg);
				return -1;
			}
			break;
		case 'w':
			workdir = optarg;
			break;
		case 'H':
			if (!strcmp(optarg, "0")) {
				o->hugepages_mib = 0;
			} else if (!parse_mib(optarg, &o->hugepages_mib)) {
				say("--hugepages '%s' is not a size in MiB", optarg);
				return -1;
			}
			break;
		case 'k':
			o->kernel_dir = optarg;
			break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				say("--env '%s' is not NAME=VALUE", optarg);
				return -1;
			}
			if (o->nenv == MAX_ENV) {
				say("more than %d --env options", MAX_ENV);
				return -1;
			}
			o->env[o->nenv++] = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'a':
			o->kernel_args = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind >= argc) {
		say("no command given: cloister parent-instance run [OPTIONS] -- CMD [ARG...]");
		return -1;
	}
	o->cmd = argv + optind;
	if (o->hugepages_mib > o->memory_mib / 2) {
		say("--hugepages %u MiB is more than half of --memory %u MiB; use --memory %u",
		    o->hugepages_mib, o->memory_mib, o->hugepages_mib * 2);
		return -1;
	}
	if (!getcwd(o->cwd, sizeof(o->cwd))) {
		say("cannot get the current directory: %s", strerror(errno));
		return -1;
	}
	if (!realpath(workdir ? workdir : o->cwd, o->workdir)) {
		say("--workdir %s: %s", workdir ? workdir : o->cwd, strerror(errno));
		return -1;
	}
	if (!strcmp(o->workdir, "/")) {
		say("--workdir / would make the whole host writable; pick a project directory");
		return -1;
	}
	return 0;
}

/* $CLOISTER_QEMU, else qemu-system-x86_64 on PATH. */
static int find_qemu(char *out, size_t cap)
{
	const char *env = getenv("CLOISTER_QEMU");
	const char *path = getenv("PATH");
	char *copy, *save = NULL;

	if (env && *env) {
		snprintf(out, cap, "%s", env);
		return access(out, X_OK);
	}
	copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (!copy)
		return -1;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, cap, "%s/qemu-system-x86_64", dir);
		if (access(out, X_OK) == 0) {
			free(copy);
			return 0;
		}
	}
	free(copy);
	return -1;
}

/* Single-quote @s for sh. */
static void fput_sh_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

static bool env_passes(const char *kv)
{
	static const char *const names[] = { "PATH", "HOME", "TERM",    "LANG", "LC_ALL",
		                             "TZ",   "USER", "LOGNAME", "CI",   NULL };
	size_t n = strcspn(kv, "=");

	if (!strncmp(kv, "CLOISTER_", 9))
		return true;
	for (size_t i = 0; names[i]; i++)
		if (strlen(names[i]) == n && !strncmp(kv, names[i], n))
			return true;
	return false;
}

static void fput_export(FILE *f, const char *kv)
{
	size_t n = strcspn(kv, "=");

	fprintf(f, "export %.*s=", (int)n, kv);
	fput_sh_quoted(f, kv + n + 1);
	fputc('\n', f);
}

static int write_ctl(const char *ctl, const struct run_opts *o)
{
	char path[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/config", ctl);
	f = fopen(path, "we");
	if (!f)
		return -1;
	fputs("WORKDIR=", f);
	fput_sh_quoted(f, o->workdir);
	fprintf(f, "\nHUGEPAGES=%u\n", o->hugepages_mib / 2);
	if (fclose(f) != 0)
		return -1;

	snprintf(path, sizeof(path), "%s/cmd.sh", ctl);
	f = fopen(path, "we");
	if (!f)
		return -1;
	fputs("# written by cloister parent-instance run\n", f);
	if (!getenv("PATH"))
		fputs("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
		      f);
	for (char **e = environ; *e; e++)
		if (env_passes(*e))
			fput_export(f, *e);
	fputs("export CLOISTER_PARENT_INSTANCE=1\n", f);
	for (size_t i = 0; i < o->nenv; i++)
		fput_export(f, o->env[i]);
	fputs("cd ", f);
	fput_sh_quoted(f, o->cwd);
	fputs(" || exit 125\nexec", f);
	for (char **a = o->cmd; *a; a++) {
		fputc(' ', f);
		fput_sh_quoted(f, *a);
	}
	fputc('\n', f);
	return fclose(f) == 0 ? 0 : -1;
}

static void rm_ctl(const char *ctl)
{
	static const char *const files[] = { "config", "cmd.sh", "status", "status.tmp", "owner" };
	char path[PATH_MAX + 32];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", ctl, files[i]);
		unlink(path);
	}
	rmdir(ctl);
}

/* Control directories whose owner (a `run` killed with SIGKILL) is gone: remove them. */
static void rm_stale_ctls(const char *tmpdir)
{
	char pattern[PATH_MAX], owner[PATH_MAX + 16];
	glob_t g;

	snprintf(pattern, sizeof(pattern), "%s/cloister-parent.??????", tmpdir);
	if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		uint8_t *text = NULL;
		size_t len = 0;
		struct cl_diag ignored;
		unsigned pid;

		snprintf(owner, sizeof(owner), "%s/owner", g.gl_pathv[i]);
		if (cl_file_read_all(owner, 32, &text, &len, &ignored) < 0)
			continue; /* not ours to judge (or not written yet) */
		text[strcspn((char *)text, "\n")] = '\0';
		if (parse_uint((char *)text, INT_MAX, &pid) && pid > 0 && kill((pid_t)pid, 0) < 0 &&
		    errno == ESRCH)
			rm_ctl(g.gl_pathv[i]);
		free(text);
	}
	globfree(&g);
}

/* QEMU option values separate with ','; a literal comma is written ',,'. */
static char *qemu_escape(const char *s)
{
	size_t n = strlen(s), extra = 0;
	char *out, *p;

	for (size_t i = 0; i < n; i++)
		extra += s[i] == ',';
	out = malloc(n + extra + 1);
	if (!out)
		return NULL;
	for (p = out; *s; s++) {
		*p++ = *s;
		if (*s == ',')
			*p++ = ',';
	}
	*p = '\0';
	return out;
}

struct argv_builder {
	char *v[64];
	size_t n;
	bool oom;
};

static void arg(struct argv_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void arg(struct argv_builder *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	if (b->n + 1 >= sizeof(b->v) / sizeof(b->v[0])) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		s = NULL;
		b->oom = true;
	}
	va_end(ap);
	if (s)
		b->v[b->n++] = s;
	b->v[b->n] = NULL;
}

static void argv_free(struct argv_builder *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i]);
	b->n = 0;
}

static int build_qemu_argv(struct argv_builder *b, const char *qemu, const struct run_opts *o,
                           const struct parent_kernel *k, const char *initrd, const char *ctl)
{
	char *work = qemu_escape(o->workdir), *ctl_e = qemu_escape(ctl);
	char *kern = qemu_escape(k->vmlinuz), *rd = qemu_escape(initrd);
	static const char fs[] = "security_model=none,multidevs=remap";

	if (!work || !ctl_e || !kern || !rd) {
		b->oom = true;
		goto out;
	}
	arg(b, "%s", qemu);
	arg(b, "-nodefaults");
	arg(b, "-no-user-config");
	arg(b, "-display");
	arg(b, "none");
	arg(b, "-monitor");
	arg(b, "none");
	arg(b, "-no-reboot");
	/* The recipe of docs/parent-instance.md: TCG with an AMD CPU model that has SVM, so the
	 * L1 kernel's kvm-amd is real whatever the host's KVM is. */
	arg(b, "-machine");
	arg(b, "q35");
	arg(b, "-accel");
	arg(b, "tcg,thread=multi");
	arg(b, "-cpu");
	arg(b, "EPYC,+svm");
	arg(b, "-smp");
	arg(b, "%u", o->cpus);
	arg(b, "-m");
	arg(b, "%u", o->memory_mib);
	arg(b, "-kernel");
	arg(b, "%s", k->vmlinuz);
	arg(b, "-initrd");
	arg(b, "%s", initrd);
	arg(b, "-append");
	/* init_on_alloc=0: Debian zeroes every allocation by default, which made reserving the
	 * hugepage pool take 2-5 s under TCG instead of 0.06 s. Hugetlb pages are still cleared
	 * when first mapped, so nothing leaks between enclaves. */
	arg(b, "console=ttyS0 panic=-1 quiet mitigations=off init_on_alloc=0 rdinit=/init%s%s",
	    o->kernel_args ? " " : "", o->kernel_args ? o->kernel_args : "");
	arg(b, "-chardev");
	arg(b, "file,id=con,path=/proc/self/fd/%d,append=on", QEMU_FD_CONSOLE);
	arg(b, "-serial");
	arg(b, "chardev:con");
	arg(b, "-device");
	arg(b, "virtio-serial-pci,id=vser0");
	arg(b, "-chardev");
	arg(b, "file,id=out,path=/proc/self/fd/%d,append=on", QEMU_FD_OUT);
	arg(b, "-device");
	arg(b, "virtserialport,bus=vser0.0,chardev=out,name=cloister.stdout");
	arg(b, "-chardev");
	arg(b, "file,id=err,path=/proc/self/fd/%d,append=on", QEMU_FD_ERR);
	arg(b, "-device");
	arg(b, "virtserialport,bus=vser0.0,chardev=err,name=cloister.stderr");
	arg(b, "-virtfs");
	arg(b, "local,path=/,mount_tag=hostroot,readonly=on,%s", fs);
	arg(b, "-virtfs");
	arg(b, "local,path=%s,mount_tag=work,%s", work, fs);
	arg(b, "-virtfs");
	arg(b, "local,path=%s,mount_tag=ctl,%s", ctl_e, fs);
out:
	free(work);
	free(ctl_e);
	free(kern);
	free(rd);
	return b->oom ? -1 : 0;
}

static void tail_add(struct tail *t, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		t->buf[t->head] = data[i];
		t->head = (t->head + 1) % TAIL_BYTES;
		if (t->len < TAIL_BYTES)
			t->len++;
	}
}

static void tail_print(const struct tail *t, const char *label)
{
	size_t start = (t->head + TAIL_BYTES - t->len) % TAIL_BYTES;

	if (!t->len)
		return;
	fprintf(stderr, "---- %s (last %zu bytes) ----\n", label, t->len);
	for (size_t i = 0; i < t->len; i++)
		fputc(t->buf[(start + i) % TAIL_BYTES], stderr);
	if (t->buf[(t->head + TAIL_BYTES - 1) % TAIL_BYTES] != '\n')
		fputc('\n', stderr);
	fprintf(stderr, "---- end of %s ----\n", label);
}

/* Has @needle appeared in the tail (checked after each read, so it is still in the ring)? */
static bool tail_contains(const struct tail *t, const char *needle)
{
	char flat[TAIL_BYTES + 1];
	size_t start = (t->head + TAIL_BYTES - t->len) % TAIL_BYTES;

	for (size_t i = 0; i < t->len; i++)
		flat[i] = t->buf[(start + i) % TAIL_BYTES];
	flat[t->len] = '\0';
	for (size_t i = 0; i < t->len; i++)
		if (flat[i] == '\0')
			flat[i] = ' ';
	return strstr(flat, needle) != NULL;
}

/* Stop QEMU: SIGTERM, up to 3 s to exit, then SIGKILL. Always reaps it. Returns its status. */
static int stop_qemu(pid_t pid)
{
	int status = 0;

	kill(pid, SIGTERM);
	for (int i = 0; i < 150; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return status;
		nanosleep(&(struct timespec){ .tv_sec = 0, .tv_nsec = 20000000 }, NULL);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static pid_t spawn_qemu(char *const *qv, int fds[4][2], const sigset_t *oldmask)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* Child: QEMU. Its own process group, so a terminal's ^C reaches us and we stop it in
	 * order; killed if we die, even by SIGKILL. */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(PARENT_EXIT_FAILED);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	{
		int devnull = open("/dev/null", O_RDWR);

		if (devnull < 0)
			_exit(PARENT_EXIT_FAILED);
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
	}
	/* dup2 clears O_CLOEXEC on the targets: exactly these survive the exec. */
	if (dup2(fds[3][1], STDERR_FILENO) < 0 || dup2(fds[0][1], QEMU_FD_OUT) < 0 ||
	    dup2(fds[1][1], QEMU_FD_ERR) < 0 || dup2(fds[2][1], QEMU_FD_CONSOLE) < 0)
		_exit(PARENT_EXIT_FAILED);
	execv(qv[0], qv);
	fprintf(stderr, "exec %s: %s\n", qv[0], strerror(errno));
	_exit(PARENT_EXIT_FAILED);
}

/* How one boot of QEMU ended. */
enum attempt_end {
	ATTEMPT_EXITED, /* QEMU exited or was killed by a signal not ours: reaped, see status */
	ATTEMPT_SIGNAL, /* we got got_signal: QEMU stopped */
	ATTEMPT_TIMEOUT, /* --timeout passed: QEMU stopped */
	ATTEMPT_STALLED, /* L1 not ready within --boot-timeout: QEMU stopped */
	ATTEMPT_ERROR, /* pipe/fork/ppoll failed (said so): QEMU, if started, stopped */
};

struct attempt {
	uint64_t t_ready; /* when L1 said it starts the command; 0 if it never did */
	int qstatus; /* QEMU's wait status */
};

/*
 * Boot QEMU once with @qv and stream its channels until it ends, @deadline (the whole run's)
 * or @boot_deadline (for L1 to become ready) passes, or a signal arrives. QEMU is always reaped
 * and every pipe closed on return. Signals are blocked by the caller except inside ppoll.
 */
static enum attempt_end attempt_run(const struct run_opts *o, char *const *qv,
                                    const sigset_t *oldmask, uint64_t t_start, uint64_t deadline,
                                    uint64_t boot_deadline, struct tail *console, struct tail *qerr,
                                    struct attempt *a)
{
	int fds[4][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 } };
	enum attempt_end end = ATTEMPT_ERROR;
	pid_t pid = -1;

	memset(console, 0, sizeof(*console));
	memset(qerr, 0, sizeof(*qerr));
	a->t_ready = 0;
	a->qstatus = 0;
	for (int i = 0; i < 4; i++) {
		if (pipe2(fds[i], O_CLOEXEC) < 0) {
			say("pipe: %s", strerror(errno));
			goto out;
		}
	}
	fflush(stdout);
	fflush(stderr);
	pid = spawn_qemu(qv, fds, oldmask);
	if (pid < 0) {
		say("fork: %s", strerror(errno));
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		close(fds[i][1]);
		fds[i][1] = -1;
	}

	for (;;) {
		struct pollfd pfd[4];
		struct timespec ts, *tsp = NULL;
		sigset_t waitmask = *oldmask;
		uint64_t limit = deadline;
		int open_fds = 0, r;
		char buf[65536];

		for (int i = 0; i < 4; i++) {
			pfd[i].fd = fds[i][0];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			open_fds += fds[i][0] >= 0;
		}
		if (!open_fds)
			break; /* QEMU has exited (or closed everything): reap it below */
		if (!a->t_ready && boot_deadline && (!limit || boot_deadline < limit))
			limit = boot_deadline;
		if (limit) {
			uint64_t now = now_ms();

			if (now >= limit) {
				end = limit == deadline ? ATTEMPT_TIMEOUT : ATTEMPT_STALLED;
				goto stop;
			}
			ts.tv_sec = (time_t)((limit - now) / 1000u);
			ts.tv_nsec = (long)((limit - now) % 1000u) * 1000000L;
			tsp = &ts;
		}
		sigdelset(&waitmask, SIGINT);
		sigdelset(&waitmask, SIGTERM);
		sigdelset(&waitmask, SIGHUP);
		if (got_signal) {
			end = ATTEMPT_SIGNAL;
			goto stop;
		}
		r = ppoll(pfd, 4, tsp, &waitmask);
		if (got_signal) {
			end = ATTEMPT_SIGNAL;
			goto stop;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			say("ppoll: %s", strerror(errno));
			goto stop;
		}
		for (int i = 0; i < 4; i++) {
			ssize_t n;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(fds[i][0]);
				fds[i][0] = -1;
				continue;
			}
			switch (i) {
			case 0:
				/* Nobody reads our stdout any more (`run -- yes | head`): stop, as
				 * SIGPIPE would have, instead of running on until the timeout. */
				if (cl_write_full(STDOUT_FILENO, buf, (size_t)n) == -EPIPE)
					got_signal = SIGPIPE;
				break;
			case 1:
				(void)cl_write_full(STDERR_FILENO, buf, (size_t)n);
				break;
			case 2:
				tail_add(console, buf, (size_t)n);
				if (o->verbose)
					(void)cl_write_full(STDERR_FILENO, buf, (size_t)n);
				if (!a->t_ready &&
				    tail_contains(console, "cloister-parent: ready")) {
					a->t_ready = now_ms();
					if (o->verbose)
						say("L1 ready %.1f s after start",
						    (double)(a->t_ready - t_start) / 1000.0);
				}
				break;
			case 3:
				tail_add(qerr, buf, (size_t)n);
				if (o->verbose)
					(void)cl_write_full(STDERR_FILENO, buf, (size_t)n);
				break;
			}
		}
	}
	while (waitpid(pid, &a->qstatus, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	end = ATTEMPT_EXITED;
	goto out;
stop:
	a->qstatus = stop_qemu(pid);
	pid = -1;
out:
	if (pid > 0)
		a->qstatus = stop_qemu(pid);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 2; j++)
			if (fds[i][j] >= 0)
				close(fds[i][j]);
	return end;
}

/* "exit status 1" / "killed by signal 6 (Aborted)" for a wait status. */
static void describe_status(int status, char *out, size_t cap)
{
	if (WIFSIGNALED(status))
		snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
}

int parent_cmd_run(int argc, char **argv)
{
	struct run_opts o;
	struct parent_kernel *k = NULL;
	struct argv_builder qv = { .n = 0 };
	struct cl_diag d = { { 0 } };
	struct tail *console = NULL, *qerr = NULL;
	char qemu[PATH_MAX], initrd[PATH_MAX], ctl[PATH_MAX] = "", status_path[PATH_MAX + 16];
	char how[96];
	struct sigaction sa, old_int, old_term, old_hup, old_pipe;
	sigset_t block, oldmask;
	uint64_t t_start = now_ms(), deadline;
	bool signals_set = false;
	int rc = PARENT_EXIT_FAILED, r;
	enum attempt_end end;
	struct attempt a;
	const char *tmpdir;

	r = parse_opts(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : PARENT_EXIT_FAILED;
	if (find_qemu(qemu, sizeof(qemu)) != 0) {
		say("qemu-system-x86_64 not found (PATH, or $CLOISTER_QEMU); run scripts/setup.sh, "
		    "which installs QEMU 10 from bookworm-backports");
		return PARENT_EXIT_FAILED;
	}
	k = calloc(1, sizeof(*k));
	console = calloc(1, sizeof(*console));
	qerr = calloc(1, sizeof(*qerr));
	if (!k || !console || !qerr) {
		say("out of memory");
		goto out;
	}
	if (parent_kernel_locate(o.kernel_dir, k, &d) < 0) {
		say("no kernel for the parent instance: %s", d.msg);
		goto out;
	}
	if (parent_initramfs_get(k, initrd, sizeof(initrd), &d) < 0) {
		say("cannot build the parent instance's initramfs: %s", d.msg);
		goto out;
	}
	if (o.verbose)
		say("kernel %s, initramfs %s (ready after %.1f s)", k->vmlinuz, initrd,
		    (double)(now_ms() - t_start) / 1000.0);

	tmpdir = getenv("TMPDIR");
	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	rm_stale_ctls(tmpdir);
	snprintf(ctl, sizeof(ctl), "%s/cloister-parent.XXXXXX", tmpdir);
	if (!mkdtemp(ctl)) {
		say("cannot create a control directory %s: %s", ctl, strerror(errno));
		ctl[0] = '\0';
		goto out;
	}
	{
		char owner[PATH_MAX + 16], me[32];
		int n = snprintf(me, sizeof(me), "%d\n", (int)getpid());

		snprintf(owner, sizeof(owner), "%s/owner", ctl);
		if (cl_file_write_atomic(owner, me, (size_t)n, 0600, &d) < 0) {
			say("cannot write %s: %s", owner, d.msg);
			goto out;
		}
	}
	if (write_ctl(ctl, &o) < 0) {
		say("cannot write the command files in %s: %s", ctl, strerror(errno));
		goto out;
	}
	if (build_qemu_argv(&qv, qemu, &o, k, initrd, ctl) < 0) {
		say("out of memory");
		goto out;
	}
	/* Signals are blocked except inside ppoll, so one cannot slip in between the check and
	 * the wait. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &oldmask);
	signals_set = true;
	got_signal = 0;

	deadline = o.timeout_s ? t_start + (uint64_t)o.timeout_s * 1000u : 0;
	snprintf(status_path, sizeof(status_path), "%s/status", ctl);
	for (unsigned attempt = 1;; attempt++) {
		uint64_t t_boot = now_ms();
		uint64_t boot_deadline = o.boot_timeout_s
		                                 ? t_boot + (uint64_t)o.boot_timeout_s * 1000u
		                                 : 0;
		bool stopped_early;

		end = attempt_run(&o, qv.v, &oldmask, t_start, deadline, boot_deadline, console,
		                  qerr, &a);
		/* Before "ready" the L1 has not started the command, so booting again repeats
		 * nothing. Only faults of the emulator are worth it: QEMU killed by a signal (TCG's
		 * assertions abort, e.g. iotlb_to_section or msix_table_mmio_write under
		 * thread=multi) or an L1 that stopped making progress; QEMU exiting with a status
		 * (a bad option, a missing file) would fail the same way again. */
		stopped_early = !a.t_ready && ((end == ATTEMPT_EXITED && WIFSIGNALED(a.qstatus)) ||
		                               end == ATTEMPT_STALLED);
		if (!stopped_early || attempt >= o.boot_attempts)
			break;
		if (end == ATTEMPT_STALLED)
			snprintf(how, sizeof(how), "not ready after %u s (--boot-timeout)",
			         o.boot_timeout_s);
		else
			describe_status(a.qstatus, how, sizeof(how));
		say("QEMU stopped before the parent instance was ready (%s, %.1f s into boot "
		    "attempt %u of %u); no command had started, booting again",
		    how, (double)(now_ms() - t_boot) / 1000.0, attempt, o.boot_attempts);
		tail_print(qerr, "QEMU messages");
		unlink(status_path);
	}

	switch (end) {
	case ATTEMPT_ERROR:
		goto out;
	case ATTEMPT_SIGNAL:
		if (got_signal == SIGPIPE) {
			rc = 128 + SIGPIPE; /* quietly, like any pipeline member */
		} else {
			say("got signal %d (%s); stopped the parent instance", (int)got_signal,
			    strsignal(got_signal));
			rc = 128 + got_signal;
		}
		goto out;
	case ATTEMPT_TIMEOUT:
		say("timed out after %u s (--timeout); stopped the parent instance", o.timeout_s);
		tail_print(console, "parent instance console");
		rc = PARENT_EXIT_TIMEOUT;
		goto out;
	case ATTEMPT_STALLED:
		say("the parent instance was not ready after %u s in %u boot attempts "
		    "(--boot-timeout, --boot-attempts); stopped it",
		    o.boot_timeout_s, o.boot_attempts);
		tail_print(console, "parent instance console");
		tail_print(qerr, "QEMU messages");
		rc = PARENT_EXIT_FAILED;
		goto out;
	case ATTEMPT_EXITED:
		break;
	}

	{
		uint8_t *s = NULL;
		size_t len = 0;
		unsigned v;

		if (cl_file_read_all(status_path, 64, &s, &len, &d) == 0) {
			s[strcspn((char *)s, "\n")] = '\0';
			if (parse_uint((char *)s, 255, &v))
				rc = (int)v;
			else
				say("bad exit status '%s' from the parent instance", (char *)s);
			free(s);
		} else {
			describe_status(a.qstatus, how, sizeof(how));
			if (!a.t_ready && WIFSIGNALED(a.qstatus))
				say("QEMU was %s before the parent instance was ready, in each of "
				    "%u "
				    "boot attempts (--boot-attempts)",
				    how, o.boot_attempts);
			else
				say("the parent instance stopped before the command finished (QEMU "
				    "%s)",
				    how);
			tail_print(console, "parent instance console");
			tail_print(qerr, "QEMU messages");
			rc = PARENT_EXIT_FAILED;
		}
	}
	if (o.verbose)
		say("command exit status %d; %.1f s in all", rc,
		    (double)(now_ms() - t_start) / 1000.0);

out:
	if (signals_set) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGHUP, &old_hup, NULL);
		sigaction(SIGPIPE, &old_pipe, NULL);
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
	}
	if (ctl[0])
		rm_ctl(ctl);
	argv_free(&qv);
	free(k);
	free(console);
	free(qerr);
	return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE 1 /* dladdr, program_invocation_short_name, CLONE_THREAD */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <linux/kvm.h>
#include <malloc.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/sandbox/seccomp.h"

/* Every class: what any thread of the process needs from glibc and for its own fds. */
static const struct sandbox_rule thread_rules[] = {
	{ "futex", "mutexes and condition variables (device transport locks, the end lock)" },
	{ "read", "eventfds, the signalfd, sockets (vsock host sockets, control requests)" },
	{ "write", "console and log output, eventfds, sockets" },
	{ "close", "connections that end" },
	{ "brk", "malloc" },
	{ "mmap", "malloc of large blocks (vsock buffers, CBOR documents)" },
	{ "munmap", "free of large blocks; thread stacks; guest RAM at exit" },
	{ "mremap", "realloc of large blocks" },
	{ "madvise", "glibc returns freed memory and thread stacks" },
	{ "rt_sigreturn", "return from the vCPU kick handler" },
	{ "rt_sigprocmask", "glibc masks signals around thread start and exit" },
	{ "clock_gettime", "timestamps (vDSO fallback)" },
	{ "gettimeofday", "timestamps (vDSO fallback)" },
	{ "getpid", "logging, raise()" },
	{ "gettid", "raise(), pthread_kill()" },
	{ "sched_yield", "glibc lock back-off" },
	{ "fstat", "stdio's first write to a stream" },
	{ "newfstatat", "stdio's first write to a stream (fstat on newer glibc)" },
	{ "exit", "a thread ends" },
	{ "exit_group", "the monitor ends" },
	{ NULL, NULL },
};

/* The monitor's classes (vCPU and main threads): the guest's devices. */
static const struct sandbox_rule monitor_rules[] = {
	{ "sendto", "send() on vsock host sockets" },
	{ "recvfrom", "recv() on vsock host sockets" },
	{ "sendmsg", "glibc may send through sendmsg" },
	{ "recvmsg", "glibc may receive through recvmsg" },
	{ "shutdown", "half-close of a vsock host socket when the guest shuts down its side" },
	{ "connect", "the guest connects to a parent port: a Unix socket to <uds>_<port> (socket "
	             "is allowed separately, AF_UNIX stream sockets only)" },
	{ "epoll_ctl", "the vsock engine changes which host sockets it watches" },
	{ "getrandom", "NSM GetRandom, and the nonce of each ECDSA attestation signature" },
	{ NULL, NULL },
};

/* vCPU threads; ioctl is allowed separately, for KVM_RUN and KVM_IRQ_LINE only. */
static const struct sandbox_rule vcpu_rules[] = {
	{ NULL, NULL },
};

/* The main thread; ioctl is allowed separately, for KVM_IRQ_LINE only. */
static const struct sandbox_rule main_rules[] = {
	{ "poll", "the main loop" },
	{ "ppoll", "the main loop (poll on newer glibc)" },
	{ "epoll_wait", "the vsock engine collects ready host sockets" },
	{ "epoll_pwait", "the same, on newer glibc" },
	{ "accept4", "the parent connects to the enclave's vsock socket" },
	{ "unlink", "the vsock socket file is removed when the enclave ends" },
	{ "unlinkat", "the same, on newer glibc" },
	{ NULL, NULL },
};

/* The enclave process's main thread, on top of main_rules: its end after the VM's. Files it
 * needs then were opened before the filter (the pool lock, the grant: ne_release_prepare). */
static const struct sandbox_rule enclave_end_rules[] = {
	{ "flock", "the pool lock, held while the enclave's grant is removed" },
	{ "pread64", "reads the enclave's grant through the fd pinned before the filter" },
	{ NULL, NULL },
};

/* The enclave process's control thread; getsockopt (SO_PEERCRED) and setsockopt (SO_RCVTIMEO,
 * SO_SNDTIMEO) are allowed separately. */
static const struct sandbox_rule control_rules[] = {
	{ "poll", "waits for a control connection or the stop eventfd" },
	{ "ppoll", "the same (poll on newer glibc)" },
	{ "accept4", "a nitro-cli command connects to the control socket" },
	{ "getuid", "terminate: only the enclave's owner (or root) may end it" },
	{ NULL, NULL },
};

/* cloister-nsmd: the host's NSM, which holds every enclave's leaf key and parses the guests'
 * NSM requests (CBOR) the monitors forward. It must read and write the CA it is pointed at
 * (created on first use), so files stay open to it; what it never needs is to start a
 * program, open a socket, touch another process or reach the kernel's rarer interfaces.
 * getsockopt (SO_PEERCRED), clone (threads only) and mprotect (never executable) are
 * allowed separately, with their arguments checked; clone3 fails with ENOSYS, so glibc
 * starts threads with clone. */
static const struct sandbox_rule nsmd_rules[] = {
	{ "poll", "waits for a monitor or the end of a session" },
	{ "ppoll", "the same (poll on newer glibc)" },
	{ "accept4", "a monitor connects" },
	{ "geteuid", "only this user's monitors get a session" },
	{ "recvmsg", "session messages, the image's memfd with the first" },
	{ "sendmsg", "session answers" },
	{ "openat", "the CA's files, /proc/PID/status of a peer, OpenSSL's configuration" },
	{ "pread64", "reading files (glibc, OpenSSL)" },
	{ "lseek", "stdio on the CA's files and the time zone" },
	{ "fcntl", "the image memfd's seals" },
	{ "fsync", "a CA file is on disk before it replaces the old one" },
	{ "rename", "a CA file replaces the old one whole" },
	{ "renameat", "the same (rename on other glibc builds)" },
	{ "renameat2", "the same" },
	{ "unlink", "a CA file's temporary copy after a failed write" },
	{ "unlinkat", "the same (unlink on other glibc builds)" },
	{ "mkdir", "the CA's directory, made on first use" },
	{ "mkdirat", "the same (mkdir on other glibc builds)" },
	{ "access", "whether the CA exists yet" },
	{ "faccessat", "the same (access on other glibc builds)" },
	{ "faccessat2", "the same" },
	{ "flock", "the CA's lock: one process mints at a time" },
	{ "uname", "OpenSSL, while making certificates" },
	{ "getrandom", "keys, serial numbers, signature nonces, NSM GetRandom" },
	{ "set_robust_list", "a new session thread (glibc)" },
	{ "rseq", "a new session thread (glibc)" },
	{ "rt_sigaction", "glibc sets up its thread signals at the first pthread_create" },
	{ "sigaltstack", "a session thread's start and end in sanitizer builds" },
	{ "sched_getaffinity", "a session thread's start in sanitizer builds" },
	{ NULL, NULL },
};

/* Each class's allow-list, as the union of its parts (NULL-terminated). */
#define CLASS_PARTS_MAX 5
static const struct sandbox_rule *const class_parts[SANDBOX_NCLASSES][CLASS_PARTS_MAX] = {
	[SANDBOX_VCPU] = { thread_rules, monitor_rules, vcpu_rules, NULL },
	[SANDBOX_MAIN] = { thread_rules, monitor_rules, main_rules, NULL },
	[SANDBOX_ENCLAVE_MAIN] = { thread_rules, monitor_rules, main_rules, enclave_end_rules,
	                           NULL },
	[SANDBOX_CONTROL] = { thread_rules, control_rules, NULL },
	[SANDBOX_NSMD] = { thread_rules, nsmd_rules, NULL },
};

const struct sandbox_rule *sandbox_rules(enum sandbox_class cls, unsigned part)
{
	if ((unsigned)cls >= SANDBOX_NCLASSES || part >= CLASS_PARTS_MAX)
		return NULL;
	return class_parts[cls][part];
}

static void sigsys_handler(int sig, siginfo_t *si, void *uctx)
{
	char msg[160];
	char *name;
	int n;

	(void)uctx;
	name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, si->si_syscall);
	n = snprintf(msg, sizeof(msg),
	             "%s: seccomp: syscall %d (%s) is not on this thread's allow-list; ending "
	             "the process (docs/security.md)\n",
	             program_invocation_short_name, si->si_syscall, name ? name : "?");
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n);
	/* Where it came from: a syscall nobody wrote on purpose is usually glibc's (a thread
	 * heap's shrink reading overcommit_memory, a fatal error opening /dev/tty), so the
	 * caller's frames are what matters.
	 * backtrace() was warmed up before the filter went in (it loads the unwinder). */
	{
		void *frames[32];
		int nf = backtrace(frames, 32);

		for (int i = 1; i < nf; i++) { /* frame 0 is this handler */
			Dl_info info;
			const char *obj = "?";
			uintptr_t off = (uintptr_t)frames[i];

			if (dladdr(frames[i], &info) && info.dli_fname) {
				obj = info.dli_fname;
				off -= (uintptr_t)info.dli_fbase;
			}
			/* backtrace_symbols_fd would need writev: format it ourselves. */
			n = snprintf(msg, sizeof(msg), "  #%d %s+0x%lx\n", i, obj,
			             (unsigned long)off);
			if (n > 0)
				(void)!write(STDERR_FILENO, msg, (size_t)n);
		}
	}
	/* SA_RESETHAND restored the default action: this kills the process with SIGSYS. */
	raise(sig);
}

static int add_rules(scmp_filter_ctx ctx, const struct sandbox_rule *r, struct cl_diag *d)
{
	for (; r->name; r++) {
		int nr = seccomp_syscall_resolve_name(r->name);
		int rc;

		if (nr == __NR_SCMP_ERROR) {
			cl_diag_set(d, "seccomp: unknown syscall '%s'", r->name);
			return -1;
		}
		if (nr < 0)
			continue; /* a pseudo-syscall: not on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0) {
			cl_diag_set(d, "seccomp: cannot allow %s: %s", r->name, strerror(-rc));
			return -1;
		}
	}
	return 0;
}

static int allow_ioctl(scmp_filter_ctx ctx, unsigned long req, struct cl_diag *d)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, req));

	if (rc < 0)
		cl_diag_set(d, "seccomp: cannot allow ioctl 0x%lx: %s", req, strerror(-rc));
	return rc < 0 ? -1 : 0;
}

/* @nr (getsockopt or setsockopt) on level SOL_SOCKET, option @opt only. */
static int allow_sockopt(scmp_filter_ctx ctx, int nr, int opt, struct cl_diag *d)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2,
	                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, SOL_SOCKET),
	                          SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffUL, (scmp_datum_t)opt));

	if (rc < 0)
		cl_diag_set(d, "seccomp: cannot allow socket option %d: %s", opt, strerror(-rc));
	return rc < 0 ? -1 : 0;
}

/* tgkill to this process's own threads only (pthread_kill() kicks a vCPU out of KVM_RUN,
 * raise() on a fatal error): no signal for any other process, whoever runs the monitor. */
static int allow_own_signals(scmp_filter_ctx ctx, struct cl_diag *d)
{
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
	                     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid())) < 0) {
		cl_diag_set(d, "seccomp: cannot allow tgkill");
		return -1;
	}
	return 0;
}

/* socket(AF_UNIX, SOCK_STREAM[|flags], 0) only: the guest's connections to parent ports are
 * Unix stream sockets (<uds>_<port>); no network, no netlink, no other kind. */
static int allow_unix_stream_sockets(scmp_filter_ctx ctx, struct cl_diag *d)
{
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3,
	                     SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffUL, AF_UNIX),
	                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM),
	                     SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffUL, 0)) < 0) {
		cl_diag_set(d, "seccomp: cannot allow Unix sockets");
		return -1;
	}
	return 0;
}

/* clone for threads only (CLONE_THREAD set: no new process), clone3 refused with ENOSYS (its
 * flags are in memory the filter cannot read), so glibc falls back to clone. */
static int allow_threads(scmp_filter_ctx ctx, struct cl_diag *d)
{
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	                     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) < 0) {
		cl_diag_set(d, "seccomp: cannot allow threads");
		return -1;
	}
	return 0;
}

int sandbox_enter(enum sandbox_class cls, struct cl_diag *d)
{
	struct sigaction sa;
	scmp_filter_ctx ctx;
	int rc = -1;

	if ((unsigned)cls >= SANDBOX_NCLASSES) {
		cl_diag_set(d, "seccomp: no sandbox class %d", (int)cls);
		return -1;
	}
	{
		/* The first backtrace() dlopens libgcc_s: do it now, while open is still allowed. */
		void *frame;

		(void)backtrace(&frame, 1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigsys_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		cl_diag_set(d, "seccomp: sigaction(SIGSYS): %s", strerror(errno));
		return -1;
	}
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		cl_diag_set(d, "seccomp: cannot create a filter");
		return -1;
	}
	for (unsigned part = 0; sandbox_rules(cls, part); part++)
		if (add_rules(ctx, sandbox_rules(cls, part), d) < 0)
			goto out;
	if (allow_own_signals(ctx, d) < 0)
		goto out;
	if (cls == SANDBOX_NSMD) {
		if (allow_sockopt(ctx, SCMP_SYS(getsockopt), SO_PEERCRED, d) < 0 || /* whose */
		    allow_threads(ctx, d) < 0)
			goto out;
	} else if (cls == SANDBOX_CONTROL) {
		if (allow_sockopt(ctx, SCMP_SYS(getsockopt), SO_PEERCRED, d) < 0 || /* who asks */
		    allow_sockopt(ctx, SCMP_SYS(setsockopt), SO_RCVTIMEO, d) < 0 || /* a slow */
		    allow_sockopt(ctx, SCMP_SYS(setsockopt), SO_SNDTIMEO, d) < 0) /* client */
			goto out;
	} else {
		if (allow_unix_stream_sockets(ctx, d) < 0)
			goto out;
		if (cls == SANDBOX_VCPU && allow_ioctl(ctx, KVM_RUN, d) < 0)
			goto out;
		if (allow_ioctl(ctx, KVM_IRQ_LINE, d) < 0) /* devices and the UART raise IRQs */
			goto out;
	}
	/* malloc grows a thread's arena by making reserved heap readable and writable; never
	 * executable. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) < 0) {
		cl_diag_set(d, "seccomp: cannot allow mprotect");
		goto out;
	}
	rc = seccomp_load(ctx);
	if (rc < 0) {
		cl_diag_set(d, "seccomp: cannot install the filter: %s", strerror(-rc));
		rc = -1;
	}
out:
	seccomp_release(ctx);
	return rc;
}

void sandbox_prepare_process(void)
{
	/* One arena: no per-thread heaps, so no shrink_heap() and its file read (seccomp.h). */
	mallopt(M_ARENA_MAX, 1);
}

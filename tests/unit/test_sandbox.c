/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/sandbox/seccomp.h"

enum action {
	DO_WRITE,
	DO_GETPPID,
	DO_TCGETS,
	DO_KVM_RUN,
	DO_KVM_IRQ_LINE,
	DO_MPROTECT_RW,
	DO_MPROTECT_X,
	DO_OPENAT,
	DO_EXECVE,
	DO_FLOCK,
	DO_PREAD,
	DO_ACCEPT4,
	DO_PEERCRED,
	DO_SO_TYPE,
	DO_RCVTIMEO,
	DO_SOCKET, /* AF_UNIX stream, as the vsock engine opens them */
	DO_SOCKET_INET,
	DO_SOCKET_DGRAM,
	DO_TGKILL_SELF, /* signal 0 to this thread */
	DO_TGKILL_OTHER, /* signal 0 to the parent (the test process) */
	DO_GETUID,
	DO_THREAD,
	DO_FORK,
};

static void *nothing(void *arg)
{
	return arg;
}

/* Run @act in a child that entered @cls; return its wait status. The child's stderr and a
 * "before" marker go to *@out (up to @len bytes). */
static int run_sandboxed(enum sandbox_class cls, enum action act, char *out, size_t len)
{
	int p[2], status = 0;
	pid_t pid;
	ssize_t n, got = 0;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cl_diag d;
		pid_t parent = getppid(), self = getpid();

		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		if (sandbox_enter(cls, &d) < 0) {
			(void)!write(p[1], d.msg, strlen(d.msg));
			_exit(2);
		}
		(void)!write(p[1], "before;", 7);
		switch (act) {
		case DO_WRITE:
			break;
		case DO_GETPPID:
			syscall(SYS_getppid);
			break;
		case DO_TCGETS: {
			struct termios t;

			ioctl(p[1], TCGETS, &t);
			break;
		}
		case DO_KVM_RUN:
			ioctl(-1, KVM_RUN, 0);
			break;
		case DO_MPROTECT_RW:
		case DO_MPROTECT_X: {
			static char page[4096] __attribute__((aligned(4096)));

			mprotect(page, sizeof(page),
			         PROT_READ | (act == DO_MPROTECT_X ? PROT_EXEC : PROT_WRITE));
			break;
		}
		case DO_KVM_IRQ_LINE: {
			struct kvm_irq_level l = { 0 };

			ioctl(-1, KVM_IRQ_LINE, &l); /* EBADF, but allowed */
			break;
		}
		/* The rest fail harmlessly (EBADF, ENOENT) where they are allowed: the filter
		 * decides before the kernel looks at the arguments. */
		case DO_OPENAT:
			syscall(SYS_openat, AT_FDCWD, "/nonexistent", O_RDONLY);
			break;
		case DO_EXECVE: {
			char *const argv[] = { (char *)"/nonexistent", NULL };

			syscall(SYS_execve, argv[0], argv, argv + 1);
			break;
		}
		case DO_FLOCK:
			flock(-1, LOCK_EX);
			break;
		case DO_PREAD: {
			char c;

			(void)!pread(-1, &c, 1, 0);
			break;
		}
		case DO_ACCEPT4:
			accept4(-1, NULL, NULL, SOCK_CLOEXEC);
			break;
		case DO_PEERCRED:
		case DO_SO_TYPE: {
			struct ucred cred;
			socklen_t clen = sizeof(cred);

			getsockopt(-1, SOL_SOCKET, act == DO_PEERCRED ? SO_PEERCRED : SO_TYPE,
			           &cred, &clen);
			break;
		}
		case DO_RCVTIMEO: {
			struct timeval tv = { .tv_sec = 2 };

			setsockopt(-1, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			break;
		}
		case DO_SOCKET:
			syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			break;
		case DO_SOCKET_INET:
			syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
			break;
		case DO_SOCKET_DGRAM:
			syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
			break;
		case DO_TGKILL_SELF:
			syscall(SYS_tgkill, self, self, 0);
			break;
		case DO_TGKILL_OTHER:
			syscall(SYS_tgkill, parent, parent, 0);
			break;
		case DO_GETUID:
			syscall(SYS_getuid);
			break;
		case DO_THREAD: { /* a thread starts and is joined (clone3 refused, clone used) */
			pthread_t t;

			if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL))
				syscall(SYS_exit_group, 3);
			break;
		}
		case DO_FORK: /* a new process: clone without CLONE_THREAD */
			syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
			break;
		}
		/* exit_group directly: ASan's _exit interceptor calls sigaltstack, which the
		 * monitor never needs and the filter rightly refuses. */
		syscall(SYS_exit_group, 0);
	}
	close(p[1]);
	/* Read to the end even past @len: a child whose report (the SIGSYS backtrace) met a
	 * closed pipe would die of SIGPIPE instead of the signal the test is about. */
	for (;;) {
		char sink[256];
		bool keep = got < (ssize_t)len - 1;

		n = keep ? read(p[0], out + got, len - 1 - (size_t)got)
		         : read(p[0], sink, sizeof(sink));
		if (n <= 0)
			break;
		if (keep)
			got += n;
	}
	out[got] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static bool killed_by_sigsys(int status)
{
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

/* A sandboxed thread that allocates and frees vsock-sized buffers, as the vCPU threads do when
 * connections come and go. */
static void *churn_heap(void *arg)
{
	struct cl_diag d;
	void *blocks[64];

	(void)arg;
	if (sandbox_enter(SANDBOX_VCPU, &d) < 0)
		syscall(SYS_exit_group, 5);
	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < 64; i++)
			blocks[i] = malloc(256 * 1024);
		for (int i = 0; i < 64; i++)
			free(blocks[i]);
	}
	/* End the whole child from here: a returning thread runs ASan's thread teardown
	 * (sigaltstack), which no allow-list has. */
	syscall(SYS_exit_group, 0);
	return NULL;
}

/* glibc gives each thread its own heap; freeing enough of it makes glibc read
 * /proc/sys/vm/overcommit_memory (check_may_shrink_heap), an openat no allow-list has. A
 * monitor caught that way died of SIGSYS in the middle of a vsock transfer. After
 * sandbox_prepare_process(), threads share the main heap, which shrinks with brk. */
static void test_sandbox_threads_may_free_memory(void **state)
{
	int status = 0;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_t t;

		sandbox_prepare_process();
		if (pthread_create(&t, NULL, churn_heap, NULL) != 0)
			_exit(3);
		pthread_join(t, NULL); /* never returns: the thread ends the process */
		syscall(SYS_exit_group, 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_sandbox_every_rule_has_a_reason_and_resolves(void **state)
{
	(void)state;
	for (int cls = 0; cls < SANDBOX_NCLASSES; cls++) {
		unsigned part = 0;

		for (; sandbox_rules(cls, part); part++)
			for (const struct sandbox_rule *r = sandbox_rules(cls, part); r->name;
			     r++) {
				assert_non_null(r->why);
				assert_true(strlen(r->why) > 3);
				assert_int_not_equal(seccomp_syscall_resolve_name(r->name),
				                     __NR_SCMP_ERROR);
			}
		assert_true(part >= 2); /* the glibc basics and the class's own */
	}
	assert_null(sandbox_rules(SANDBOX_NCLASSES, 0));
}

/* Whether @cls lists @name (in any part). */
static bool class_lists(enum sandbox_class cls, const char *name)
{
	for (unsigned part = 0; sandbox_rules(cls, part); part++)
		for (const struct sandbox_rule *r = sandbox_rules(cls, part); r->name; r++)
			if (!strcmp(r->name, name))
				return true;
	return false;
}

static void test_sandbox_no_class_lists_exec_open_or_ptrace(void **state)
{
	static const char *const never[] = { "execve",  "execveat", "open",   "openat",
		                             "openat2", "creat",    "ptrace", "mount",
		                             "clone",   "clone3",   "fork",   "vfork",
		                             "chmod",   "fchmod",   "rename", "renameat2",
		                             "bind",    "listen",   "kill",   "process_vm_writev" };

	(void)state;
	for (int cls = 0; cls < SANDBOX_NCLASSES; cls++)
		for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
			if (cls != SANDBOX_NSMD && class_lists(cls, never[i]))
				fail_msg("class %d lists %s", cls, never[i]);
}

/* The NSM daemon keeps files (its CA) and threads (clone, checked apart), nothing more. */
static void test_sandbox_nsmd_lists_no_programs_sockets_or_processes(void **state)
{
	char never[] = "execve execveat fork vfork clone clone3 ptrace kill tkill process_vm_readv "
	               "process_vm_writev socket connect bind listen sendto mount bpf keyctl "
	               "io_uring_setup perf_event_open userfaultfd chmod fchmod symlink link "
	               "setuid pidfd_open";
	char *save = NULL;

	(void)state;
	for (char *n = strtok_r(never, " ", &save); n; n = strtok_r(NULL, " ", &save))
		if (class_lists(SANDBOX_NSMD, n))
			fail_msg("the NSM daemon's list has %s", n);
}

/* The standalone monitor's list is the enclave process's minus its end: nothing of the
 * enclave process leaks into it. */
static void test_sandbox_main_is_enclave_main_minus_its_end(void **state)
{
	(void)state;
	for (unsigned part = 0; sandbox_rules(SANDBOX_MAIN, part); part++)
		for (const struct sandbox_rule *r = sandbox_rules(SANDBOX_MAIN, part); r->name; r++)
			assert_true(class_lists(SANDBOX_ENCLAVE_MAIN, r->name));
	assert_false(class_lists(SANDBOX_MAIN, "flock"));
	assert_false(class_lists(SANDBOX_MAIN, "pread64"));
}

static void test_sandbox_allows_listed_syscalls(void **state)
{
	char out[512];
	int st;

	(void)state;
	st = run_sandboxed(SANDBOX_VCPU, DO_WRITE, out, sizeof(out));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_string_equal(out, "before;");
	st = run_sandboxed(SANDBOX_MAIN, DO_KVM_IRQ_LINE, out, sizeof(out));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_sandbox_forbidden_syscall_kills_and_names_it(void **state)
{
	char out[512];
	int st;

	(void)state;
	st = run_sandboxed(SANDBOX_VCPU, DO_GETPPID, out, sizeof(out));
	assert_true(killed_by_sigsys(st));
	assert_non_null(strstr(out, "before;"));
	assert_non_null(strstr(out, "getppid"));
	st = run_sandboxed(SANDBOX_MAIN, DO_GETPPID, out, sizeof(out));
	assert_true(killed_by_sigsys(st));
}

static void test_sandbox_vcpu_ioctl_is_limited_to_kvm(void **state)
{
	char out[512];
	int st;

	(void)state;
	st = run_sandboxed(SANDBOX_VCPU, DO_TCGETS, out, sizeof(out));
	assert_true(killed_by_sigsys(st));
	assert_non_null(strstr(out, "ioctl"));
}

static void test_sandbox_memory_may_never_become_executable(void **state)
{
	char out[512];
	int st;

	(void)state;
	st = run_sandboxed(SANDBOX_VCPU, DO_MPROTECT_RW, out, sizeof(out));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = run_sandboxed(SANDBOX_VCPU, DO_MPROTECT_X, out, sizeof(out));
	assert_true(killed_by_sigsys(st));
	assert_non_null(strstr(out, "mprotect"));
}

static void test_sandbox_main_thread_cannot_run_a_vcpu(void **state)
{
	char out[512];
	int st;

	(void)state;
	st = run_sandboxed(SANDBOX_MAIN, DO_KVM_RUN, out, sizeof(out));
	assert_true(killed_by_sigsys(st));
}

static void expect_allowed(enum sandbox_class cls, enum action act)
{
	char out[512];
	int st = run_sandboxed(cls, act, out, sizeof(out));

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("class %d, action %d: status 0x%x: %s", cls, act, st, out);
}

static void expect_killed(enum sandbox_class cls, enum action act, const char *syscall_name)
{
	char out[2048];
	int st = run_sandboxed(cls, act, out, sizeof(out));

	if (!killed_by_sigsys(st))
		fail_msg("class %d, action %d: not killed by SIGSYS (status 0x%x)", cls, act, st);
	assert_non_null(strstr(out, "before;"));
	if (!strstr(out, syscall_name))
		fail_msg("class %d: the report does not name %s: %s", cls, syscall_name, out);
}

static void test_sandbox_enclave_main_allows_the_enclave_end(void **state)
{
	(void)state;
	expect_allowed(SANDBOX_ENCLAVE_MAIN, DO_WRITE);
	expect_allowed(SANDBOX_ENCLAVE_MAIN, DO_KVM_IRQ_LINE);
	expect_allowed(SANDBOX_ENCLAVE_MAIN, DO_ACCEPT4); /* vsock socket */
	expect_allowed(SANDBOX_ENCLAVE_MAIN, DO_FLOCK); /* pool lock */
	expect_allowed(SANDBOX_ENCLAVE_MAIN, DO_PREAD); /* the pinned grant */
	expect_allowed(SANDBOX_ENCLAVE_MAIN, DO_MPROTECT_RW);
	/* the standalone monitor's main thread does not get the enclave process's end */
	expect_killed(SANDBOX_MAIN, DO_FLOCK, "flock");
	expect_killed(SANDBOX_MAIN, DO_PREAD, "pread64");
}

static void test_sandbox_enclave_main_refuses_open_exec_and_vcpus(void **state)
{
	(void)state;
	expect_killed(SANDBOX_ENCLAVE_MAIN, DO_OPENAT, "openat");
	expect_killed(SANDBOX_ENCLAVE_MAIN, DO_EXECVE, "execve");
	expect_killed(SANDBOX_ENCLAVE_MAIN, DO_KVM_RUN, "ioctl");
	expect_killed(SANDBOX_ENCLAVE_MAIN, DO_TCGETS, "ioctl");
	expect_killed(SANDBOX_ENCLAVE_MAIN, DO_MPROTECT_X, "mprotect");
	expect_killed(SANDBOX_ENCLAVE_MAIN, DO_GETPPID, "getppid");
}

static void test_sandbox_control_allows_serving_requests(void **state)
{
	(void)state;
	expect_allowed(SANDBOX_CONTROL, DO_WRITE);
	expect_allowed(SANDBOX_CONTROL, DO_ACCEPT4);
	expect_allowed(SANDBOX_CONTROL, DO_PEERCRED);
	expect_allowed(SANDBOX_CONTROL, DO_RCVTIMEO);
	expect_allowed(SANDBOX_CONTROL, DO_GETUID);
	expect_allowed(SANDBOX_CONTROL, DO_MPROTECT_RW);
}

static void test_sandbox_control_refuses_everything_else(void **state)
{
	(void)state;
	expect_killed(SANDBOX_CONTROL, DO_OPENAT, "openat");
	expect_killed(SANDBOX_CONTROL, DO_EXECVE, "execve");
	expect_killed(SANDBOX_CONTROL, DO_SOCKET, "socket"); /* no new connections */
	expect_killed(SANDBOX_CONTROL, DO_SO_TYPE, "getsockopt"); /* SO_PEERCRED only */
	expect_killed(SANDBOX_CONTROL, DO_KVM_IRQ_LINE, "ioctl"); /* no ioctl at all */
	expect_killed(SANDBOX_CONTROL, DO_FLOCK, "flock"); /* the pool is the main thread's */
	expect_killed(SANDBOX_CONTROL, DO_MPROTECT_X, "mprotect");
}

static void test_sandbox_nsmd_allows_files_threads_and_sessions(void **state)
{
	(void)state;
	expect_allowed(SANDBOX_NSMD, DO_OPENAT); /* the CA, a peer's status */
	expect_allowed(SANDBOX_NSMD, DO_FLOCK); /* the CA's lock */
	expect_allowed(SANDBOX_NSMD, DO_ACCEPT4);
	expect_allowed(SANDBOX_NSMD, DO_PEERCRED);
	expect_allowed(SANDBOX_NSMD, DO_THREAD); /* a session */
	expect_allowed(SANDBOX_NSMD, DO_MPROTECT_RW);
}

static void test_sandbox_nsmd_refuses_programs_processes_and_sockets(void **state)
{
	(void)state;
	expect_killed(SANDBOX_NSMD, DO_EXECVE, "execve");
	expect_killed(SANDBOX_NSMD, DO_FORK, "clone");
	expect_killed(SANDBOX_NSMD, DO_SOCKET, "socket");
	expect_killed(SANDBOX_NSMD, DO_SO_TYPE, "getsockopt");
	expect_killed(SANDBOX_NSMD, DO_KVM_IRQ_LINE, "ioctl");
	expect_killed(SANDBOX_NSMD, DO_MPROTECT_X, "mprotect");
	expect_killed(SANDBOX_NSMD, DO_GETPPID, "getppid");
}

/* The monitor's sockets are the guest's connections to parent ports: Unix stream sockets,
 * nothing that reaches a network. */
static void test_sandbox_monitor_sockets_are_unix_streams_only(void **state)
{
	(void)state;
	expect_allowed(SANDBOX_MAIN, DO_SOCKET);
	expect_allowed(SANDBOX_VCPU, DO_SOCKET);
	expect_killed(SANDBOX_MAIN, DO_SOCKET_INET, "socket");
	expect_killed(SANDBOX_VCPU, DO_SOCKET_INET, "socket");
	expect_killed(SANDBOX_ENCLAVE_MAIN, DO_SOCKET_INET, "socket");
	expect_killed(SANDBOX_MAIN, DO_SOCKET_DGRAM, "socket");
}

/* Signals only within the process (vCPU kicks, raise), in every class: a sandboxed thread
 * cannot signal anyone else, even when the monitor runs as root. */
static void test_sandbox_signals_stay_in_the_process(void **state)
{
	static const enum sandbox_class all[] = { SANDBOX_VCPU, SANDBOX_MAIN, SANDBOX_ENCLAVE_MAIN,
		                                  SANDBOX_CONTROL, SANDBOX_NSMD };

	(void)state;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		expect_allowed(all[i], DO_TGKILL_SELF);
		expect_killed(all[i], DO_TGKILL_OTHER, "tgkill");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sandbox_every_rule_has_a_reason_and_resolves),
		cmocka_unit_test(test_sandbox_allows_listed_syscalls),
		cmocka_unit_test(test_sandbox_forbidden_syscall_kills_and_names_it),
		cmocka_unit_test(test_sandbox_vcpu_ioctl_is_limited_to_kvm),
		cmocka_unit_test(test_sandbox_memory_may_never_become_executable),
		cmocka_unit_test(test_sandbox_main_thread_cannot_run_a_vcpu),
		cmocka_unit_test(test_sandbox_threads_may_free_memory),
		cmocka_unit_test(test_sandbox_no_class_lists_exec_open_or_ptrace),
		cmocka_unit_test(test_sandbox_main_is_enclave_main_minus_its_end),
		cmocka_unit_test(test_sandbox_enclave_main_allows_the_enclave_end),
		cmocka_unit_test(test_sandbox_enclave_main_refuses_open_exec_and_vcpus),
		cmocka_unit_test(test_sandbox_control_allows_serving_requests),
		cmocka_unit_test(test_sandbox_control_refuses_everything_else),
		cmocka_unit_test(test_sandbox_nsmd_lists_no_programs_sockets_or_processes),
		cmocka_unit_test(test_sandbox_nsmd_allows_files_threads_and_sessions),
		cmocka_unit_test(test_sandbox_nsmd_refuses_programs_processes_and_sockets),
		cmocka_unit_test(test_sandbox_monitor_sockets_are_unix_streams_only),
		cmocka_unit_test(test_sandbox_signals_stay_in_the_process),
	};

	return cmocka_run_group_tests_name("sandbox", tests, NULL, NULL);
}

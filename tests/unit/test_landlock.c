/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox_confine_fs() (src/vmm/sandbox/landlock.h), in children so the test process stays
 * free: what a rule grants beneath its directory works, the rest of the file system is closed,
 * also to threads started later; a rule that cannot be made confines nothing and says why.
 * Skipped where the kernel has no Landlock.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util/file.h"
#include "vmm/sandbox/landlock.h"

static char root[] = "/tmp/cloister-landlock-XXXXXX";
static char kept[sizeof(root) + 8], other[sizeof(root) + 8], readonly[sizeof(root) + 8];
static char removable[sizeof(root) + 8];

static char *in(const char *dir, const char *name)
{
	static char buf[4][300];
	static unsigned next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static bool can_read(const char *path)
{
	char c;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && read(fd, &c, 1) >= 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static bool can_create(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, "x", 1) == 1;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* What a confined process may do, one bit each (the bit set means "it could"). */
enum {
	KEPT_CREATE = 1 << 0,
	KEPT_READ = 1 << 1,
	KEPT_REPLACE = 1 << 2, /* write a temporary, rename it over the file */
	KEPT_UNLINK = 1 << 3,
	KEPT_MKDIR = 1 << 4,
	PROC_READ = 1 << 5,
	OTHER_READ = 1 << 6,
	OTHER_CREATE = 1 << 7,
	ETC_READ = 1 << 8,
	RO_READ = 1 << 9,
	RO_CREATE = 1 << 10,
	THREAD_OTHER_READ = 1 << 11,
	RM_READ = 1 << 12,
	RM_CREATE = 1 << 13,
	RM_UNLINK = 1 << 14,
};

static void *thread_reads_other(void *arg)
{
	*(bool *)arg = can_read(in(other, "old"));
	return NULL;
}

static unsigned probe(void)
{
	struct cl_diag d = { "" };
	unsigned got = 0;
	pthread_t t;
	bool thread_read = false;

	got |= can_create(in(kept, "new")) ? KEPT_CREATE : 0;
	got |= can_read(in(kept, "new")) ? KEPT_READ : 0;
	got |= cl_file_write_atomic(in(kept, "new"), "y", 1, 0600, &d) == 0 ? KEPT_REPLACE : 0;
	got |= unlink(in(kept, "new")) == 0 ? KEPT_UNLINK : 0;
	got |= mkdir(in(kept, "sub"), 0700) == 0 ? KEPT_MKDIR : 0;
	got |= can_read("/proc/self/status") ? PROC_READ : 0;
	got |= can_read(in(other, "old")) ? OTHER_READ : 0;
	got |= can_create(in(other, "new")) ? OTHER_CREATE : 0;
	got |= can_read("/etc/passwd") ? ETC_READ : 0;
	got |= can_read(in(readonly, "old")) ? RO_READ : 0;
	got |= can_create(in(readonly, "new")) ? RO_CREATE : 0;
	got |= can_read(in(removable, "old")) ? RM_READ : 0;
	got |= can_create(in(removable, "new")) ? RM_CREATE : 0;
	got |= unlink(in(removable, "old")) == 0 ? RM_UNLINK : 0;
	if (pthread_create(&t, NULL, thread_reads_other, &thread_read) == 0) {
		pthread_join(t, NULL);
		got |= thread_read ? THREAD_OTHER_READ : 0;
	}
	return got;
}

/* Confine a child with @rules (NULL: leave it free), probe, and return what it could do; -1
 * if confining failed (its message in @msg), -2 if the kernel has no Landlock. */
static int probe_in_child(const struct sandbox_fs_rule *rules, size_t n, char *msg, size_t len)
{
	int p[2], status;
	unsigned got = 0;
	pid_t pid;
	ssize_t k;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cl_diag d = { "" };
		int rc = rules ? sandbox_confine_fs(rules, n, &d) : 1;

		close(p[0]);
		if (rc < 0) {
			(void)!write(p[1], d.msg, strlen(d.msg));
			_exit(1);
		}
		if (rc == 0)
			_exit(2);
		got = probe();
		(void)!write(p[1], &got, sizeof(got));
		_exit(0);
	}
	close(p[1]);
	k = read(p[0], msg, len - 1);
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 1) {
		msg[k > 0 ? k : 0] = '\0';
		return -1;
	}
	if (WEXITSTATUS(status) == 2)
		return -2;
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(k, (ssize_t)sizeof(got));
	memcpy(&got, msg, sizeof(got));
	return (int)got;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(root))
		return -1;
	snprintf(kept, sizeof(kept), "%s/kept", root);
	snprintf(other, sizeof(other), "%s/other", root);
	snprintf(readonly, sizeof(readonly), "%s/ro", root);
	snprintf(removable, sizeof(removable), "%s/rm", root);
	if (mkdir(kept, 0700) || mkdir(other, 0700) || mkdir(readonly, 0700) ||
	    mkdir(removable, 0700) || !can_create(in(other, "old")) ||
	    !can_create(in(readonly, "old")))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void reset(void)
{
	if (access(in(removable, "old"), F_OK) < 0)
		assert_true(can_create(in(removable, "old")));
	unlink(in(removable, "new"));
	unlink(in(other, "new"));
	unlink(in(readonly, "new"));
	rmdir(in(kept, "sub"));
}

static void test_landlock_keeps_what_the_rules_grant_and_closes_the_rest(void **state)
{
	const struct sandbox_fs_rule rules[] = {
		{ kept, SANDBOX_FS_READ | SANDBOX_FS_WRITE },
		{ readonly, SANDBOX_FS_READ },
		{ removable, SANDBOX_FS_REMOVE },
		{ "/proc", SANDBOX_FS_READ },
	};
	char msg[256];
	int got;

	(void)state;
	reset();
	got = probe_in_child(rules, 4, msg, sizeof(msg));
	if (got == -2)
		skip();
	if (got == -1)
		fail_msg("confining failed: %s", msg);
	/* granted */
	assert_true(got & KEPT_CREATE);
	assert_true(got & KEPT_READ);
	assert_true(got & KEPT_REPLACE);
	assert_true(got & KEPT_UNLINK);
	assert_true(got & PROC_READ);
	assert_true(got & RO_READ);
	assert_true(got & RM_UNLINK); /* a monitor removes its socket file at the end */
	/* not granted: directories, writes where only reads are kept, everything elsewhere */
	assert_false(got & KEPT_MKDIR);
	assert_false(got & RO_CREATE);
	assert_false(got & OTHER_READ);
	assert_false(got & OTHER_CREATE);
	assert_false(got & ETC_READ);
	assert_false(got & THREAD_OTHER_READ);
	assert_false(got & RM_READ); /* removal only */
	assert_false(got & RM_CREATE);
	/* and nothing was made where it was refused */
	assert_int_equal(access(in(other, "new"), F_OK), -1);
	assert_int_equal(access(in(readonly, "new"), F_OK), -1);
}

static void test_landlock_unconfined_child_reaches_everything(void **state)
{
	char msg[256];
	int got;

	(void)state;
	reset();
	/* The probe itself, without a sandbox: each refusal above is Landlock's doing. */
	got = probe_in_child(NULL, 0, msg, sizeof(msg));
	assert_true(got >= 0);
	assert_true(got & OTHER_READ);
	assert_true(got & OTHER_CREATE);
	assert_true(got & ETC_READ);
	assert_true(got & RO_CREATE);
	assert_true(got & KEPT_MKDIR);
	assert_true(got & THREAD_OTHER_READ);
	assert_true(got & RM_READ);
	assert_true(got & RM_CREATE);
	assert_true(got & RM_UNLINK);
}

static void test_landlock_missing_path_confines_nothing_and_names_it(void **state)
{
	const struct sandbox_fs_rule rules[] = {
		{ kept, SANDBOX_FS_READ | SANDBOX_FS_WRITE },
		{ "/nonexistent/cloister-ca", SANDBOX_FS_READ | SANDBOX_FS_WRITE },
	};
	char msg[256];
	int got;

	(void)state;
	if (!sandbox_landlock_abi())
		skip();
	got = probe_in_child(rules, 2, msg, sizeof(msg));
	assert_int_equal(got, -1);
	assert_non_null(strstr(msg, "/nonexistent/cloister-ca"));
	assert_non_null(strstr(msg, "No such file or directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_landlock_keeps_what_the_rules_grant_and_closes_the_rest),
		cmocka_unit_test(test_landlock_unconfined_child_reaches_everything),
		cmocka_unit_test(test_landlock_missing_path_confines_nothing_and_names_it),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

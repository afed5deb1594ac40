/* SPDX-License-Identifier: Apache-2.0 */
/* `cloister allocator` and `cloister explain` as a user runs them, against a fake sysfs tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "lib/ne/ne.h"
#include "test_pool_sysfs.h"

struct fixture {
	char root[PATH_MAX];
	char state[PATH_MAX + 16];
	char yaml[PATH_MAX + 16];
	char err[4096]; /* stderr of the last run */
	char out[4096]; /* stdout of the last run */
};

#define HP1 "sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	fake_sysfs_build(f->root);
	snprintf(f->state, sizeof(f->state), "%s/state", f->root);
	snprintf(f->yaml, sizeof(f->yaml), "%s/allocator.yaml", f->root);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fake_rm_rf(f->root);
	free(f);
	return 0;
}

static void slurp(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n = 0;

	if (fp) {
		n = fread(buf, 1, len - 1, fp);
		fclose(fp);
	}
	buf[n] = '\0';
}

/* Run `cloister <args...>` with the fixture's state dir and sysfs root; returns the exit
 * status, stdout/stderr in f->out / f->err. */
static int run(struct fixture *f, ...)
{
	char *argv[16], errpath[PATH_MAX + 16], outpath[PATH_MAX + 16];
	int n = 0, status;
	va_list ap;
	pid_t pid;

	argv[n++] = (char *)CLOISTER_BIN;
	va_start(ap, f);
	while (n < 15 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	snprintf(errpath, sizeof(errpath), "%s/stderr", f->root);
	snprintf(outpath, sizeof(outpath), "%s/stdout", f->root);
	pid = fork();
	if (pid == 0) {
		int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (e < 0 || o < 0 || dup2(e, 2) < 0 || dup2(o, 1) < 0)
			_exit(127);
		setenv("NITRO_CLI_SOCKETS_PATH", f->state, 1);
		setenv("CLOISTER_SYSFS_ROOT", f->root, 1);
		setenv("NITRO_CLI_LOGS_PATH", f->root, 1);
		execv(CLOISTER_BIN, argv);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	slurp(errpath, f->err, sizeof(f->err));
	slurp(outpath, f->out, sizeof(f->out));
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void read_pool_conf(struct fixture *f, char *buf, size_t len)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/pool.conf", f->state);
	slurp(path, buf, len);
}

static void test_allocator_reserves_cpu_count_cores_and_hugepages(void **state)
{
	struct fixture *f = *state;
	char conf[1024], v[32];

	fake_write(f->root, "---\nmemory_mib: 512\ncpu_count: 4\n", "allocator.yaml");
	assert_int_equal(run(f, "allocator", "--config", f->yaml, NULL), 0);
	/* Node 0 has one core besides CPU 0's, so the 4 CPUs come from node 1. */
	assert_non_null(strstr(f->out, "CPUs 2-3,6-7 (NUMA node 1"));
	read_pool_conf(f, conf, sizeof(conf));
	assert_non_null(strstr(conf, "cpus=2-3,6-7\n"));
	assert_non_null(strstr(conf, "node=1\n"));
	assert_non_null(strstr(conf, "memory_mib=512\n"));
	fake_read(f->root, HP1, v, sizeof(v));
	assert_string_equal(v, "256");

	assert_int_equal(run(f, "allocator", "--release", NULL), 0);
	fake_read(f->root, HP1, v, sizeof(v));
	assert_string_equal(v, "0");
	read_pool_conf(f, conf, sizeof(conf));
	assert_string_equal(conf, "");
}

static void test_allocator_bad_cpu_pool_leaves_current_pool_untouched(void **state)
{
	struct fixture *f = *state;
	char before[1024], after[1024], v[32];

	fake_write(f->root, "cpu_pool: 3,7\nmemory_mib: 64\n", "allocator.yaml");
	assert_int_equal(run(f, "allocator", "--config", f->yaml, NULL), 0);
	read_pool_conf(f, before, sizeof(before));
	fake_write(f->root, "cpu_pool: 1\n", "allocator.yaml");
	assert_int_equal(run(f, "allocator", "--config", f->yaml, NULL), 20);
	assert_non_null(strstr(f->err, "[ E20 ]"));
	assert_non_null(strstr(f->err, "sibling(s) 5"));
	read_pool_conf(f, after, sizeof(after));
	assert_string_equal(before, after);
	fake_read(f->root, HP1, v, sizeof(v));
	assert_string_equal(v, "32");
	fake_write(f->root, "cpu_count: 6\n", "allocator.yaml");
	assert_int_equal(run(f, "allocator", "--config", f->yaml, NULL), 22);
	fake_write(f->root, "cpu_count: 2\ncpu_pool: 1,5\n", "allocator.yaml");
	assert_int_equal(run(f, "allocator", "--config", f->yaml, NULL), 3);
	assert_non_null(strstr(f->err, "conflict"));
	read_pool_conf(f, after, sizeof(after));
	assert_string_equal(before, after);
}

static void test_allocator_refuses_while_an_enclave_holds_resources(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = NULL;
	struct pool *p;
	char v[32];

	fake_write(f->root, "cpu_pool: 3,7\nmemory_mib: 64\n", "allocator.yaml");
	assert_int_equal(run(f, "allocator", "--config", f->yaml, NULL), 0);
	assert_int_equal(pool_open(f->state, f->root, &p, NULL), POOL_OK);
	assert_int_equal(ne_create_slot(p, &s, NULL), 0);
	fake_write(f->root, "cpu_pool: 2,6\nmemory_mib: 128\n", "allocator.yaml");
	assert_int_equal(run(f, "allocator", "--config", f->yaml, NULL), 24);
	assert_non_null(strstr(f->err, "running"));
	fake_read(f->root, HP1, v, sizeof(v));
	assert_string_equal(v, "32");
	ne_release(s);
	/* Once the enclave is gone, reconfiguring works and swaps the reservation. */
	assert_int_equal(run(f, "allocator", "--config", f->yaml, NULL), 0);
	fake_read(f->root, HP1, v, sizeof(v));
	assert_string_equal(v, "64");
	pool_close(p);
}

static void test_allocator_dry_run_changes_nothing(void **state)
{
	struct fixture *f = *state;
	char conf[64], v[32];

	fake_write(f->root, "cpu_count: 2\n", "allocator.yaml");
	assert_int_equal(run(f, "allocator", "--config", f->yaml, "--dry-run", NULL), 0);
	assert_non_null(strstr(f->out, "would reserve CPUs 1,5"));
	read_pool_conf(f, conf, sizeof(conf));
	assert_string_equal(conf, "");
	fake_read(f->root, "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
	          v, sizeof(v));
	assert_string_equal(v, "0");
}

static void test_explain_prints_description_and_rejects_unknown_codes(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, "explain", "--error-code", "E26", NULL), 0);
	assert_non_null(strstr(f->err, "[ E26 ] Insufficient memory requested."));
	assert_non_null(strstr(f->err, "4 times the EIF file size"));
	assert_int_equal(run(f, "explain", "--error-code", "27", NULL), 0);
	assert_non_null(strstr(f->err, "[ E27 ]"));
	assert_int_equal(run(f, "explain", "--error-code", "E61", NULL), 3);
	assert_int_equal(run(f, "explain", NULL), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		        test_allocator_reserves_cpu_count_cores_and_hugepages, setup, teardown),
		cmocka_unit_test_setup_teardown(
		        test_allocator_bad_cpu_pool_leaves_current_pool_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(
		        test_allocator_refuses_while_an_enclave_holds_resources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocator_dry_run_changes_nothing, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(
		        test_explain_prints_description_and_rejects_unknown_codes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

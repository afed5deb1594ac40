/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/pool/pool.h"
#include "test_pool_sysfs.h"

struct fixture {
	char root[PATH_MAX];
	struct pool_topology *topo;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	fake_sysfs_build(f->root);
	if (pool_topology_read(f->root, &f->topo, NULL))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pool_topology_free(f->topo);
	fake_rm_rf(f->root);
	free(f);
	return 0;
}

static struct cpuset set_of(const char *list)
{
	struct cpuset s;

	if (pool_cpulist_parse(list, strlen(list), &s, NULL))
		abort();
	return s;
}

/* ---- topology ---- */

static void test_topology_reads_siblings_and_nodes(void **state)
{
	struct fixture *f = *state;
	struct cpuset want = set_of("1,5");

	assert_int_equal(f->topo->nr_cpus, 8);
	assert_int_equal(f->topo->nr_nodes, 2);
	assert_true(cpuset_equal(&f->topo->cpu[5].siblings, &want));
	assert_int_equal(f->topo->cpu[5].node, 0);
	assert_int_equal(f->topo->cpu[6].node, 1);
	assert_true(f->topo->cpu[7].online);
}

static void test_topology_without_present_file_fails_with_path(void **state)
{
	struct fixture *f = *state;
	struct pool_topology *t = NULL;
	struct cl_diag d = { "" };
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/sys/devices/system/cpu/present", f->root);
	unlink(path);
	assert_int_equal(pool_topology_read(f->root, &t, &d), POOL_ERR_SYSFS);
	assert_null(t);
	assert_non_null(strstr(d.msg, "present"));
	fake_write(f->root, "0-7\n", "sys/devices/system/cpu/present");
}

/* ---- pool validation, in the driver's order (nitro-compat §5.2) ---- */

static void test_validate_accepts_whole_core_on_one_node(void **state)
{
	struct fixture *f = *state;
	struct cpuset s = set_of("1,5");
	unsigned tpc = 0;
	int node = -1;

	assert_int_equal(pool_validate_cpus(f->topo, &s, &node, &tpc, NULL), POOL_OK);
	assert_int_equal(node, 0);
	assert_int_equal(tpc, 2);
	s = set_of("2-3,6-7");
	assert_int_equal(pool_validate_cpus(f->topo, &s, &node, NULL, NULL), POOL_OK);
	assert_int_equal(node, 1);
}

static void test_validate_rejects_empty_pool(void **state)
{
	struct fixture *f = *state;
	struct cpuset s;

	cpuset_zero(&s);
	assert_int_equal(pool_validate_cpus(f->topo, &s, NULL, NULL, NULL), POOL_ERR_POOL_EMPTY);
}

static void test_validate_rejects_absent_cpu(void **state)
{
	struct fixture *f = *state;
	struct cpuset s = set_of("8");

	assert_int_equal(pool_validate_cpus(f->topo, &s, NULL, NULL, NULL), POOL_ERR_CPU_RANGE);
}

static void test_validate_rejects_offline_cpu_before_other_rules(void **state)
{
	struct fixture *f = *state;
	struct pool_topology *t;
	struct cl_diag d = { "" };
	/* CPU 7 offline; "3,7" also... is fine otherwise, "7,0" would also break the CPU 0 rule
	 * but the online check comes first. */
	struct cpuset s = set_of("0,7");

	fake_write(f->root, "0-6\n", "sys/devices/system/cpu/online");
	assert_int_equal(pool_topology_read(f->root, &t, NULL), POOL_OK);
	assert_int_equal(pool_validate_cpus(t, &s, NULL, NULL, &d), POOL_ERR_CPU_OFFLINE);
	assert_non_null(strstr(d.msg, "CPU 7"));
	pool_topology_free(t);
	fake_write(f->root, "0-7\n", "sys/devices/system/cpu/online");
}

static void test_validate_rejects_pool_spanning_numa_nodes(void **state)
{
	struct fixture *f = *state;
	struct cpuset s = set_of("1-2,5-6");
	struct cl_diag d = { "" };

	assert_int_equal(pool_validate_cpus(f->topo, &s, NULL, NULL, &d), POOL_ERR_NUMA);
	assert_non_null(strstr(d.msg, "NUMA"));
}

static void test_validate_rejects_cpu0_and_its_sibling(void **state)
{
	struct fixture *f = *state;
	struct cpuset s = set_of("0,4");
	struct cl_diag d = { "" };

	assert_int_equal(pool_validate_cpus(f->topo, &s, NULL, NULL, NULL), POOL_ERR_CPU0);
	/* CPU 4 alone: the CPU 0 rule fires before the whole-core rule. */
	s = set_of("4");
	assert_int_equal(pool_validate_cpus(f->topo, &s, NULL, NULL, &d), POOL_ERR_CPU0);
	assert_non_null(strstr(d.msg, "sibling of CPU 0"));
}

static void test_validate_rejects_partial_core_naming_missing_sibling(void **state)
{
	struct fixture *f = *state;
	struct cpuset s = set_of("1");
	struct cl_diag d = { "" };

	assert_int_equal(pool_validate_cpus(f->topo, &s, NULL, NULL, &d), POOL_ERR_PARTIAL_CORE);
	assert_non_null(strstr(d.msg, "sibling(s) 5"));
}

static void test_choose_takes_whole_cores_skipping_cpu0_core(void **state)
{
	struct fixture *f = *state;
	struct cpuset s, want = set_of("1,5");

	assert_int_equal(pool_choose_cpus(f->topo, 2, 0, &s, NULL), POOL_OK);
	assert_true(cpuset_equal(&s, &want));
	want = set_of("2-3,6-7");
	assert_int_equal(pool_choose_cpus(f->topo, 4, 1, &s, NULL), POOL_OK);
	assert_true(cpuset_equal(&s, &want));
	/* Node 0 has one core besides CPU 0's. */
	assert_int_equal(pool_choose_cpus(f->topo, 4, 0, &s, NULL), POOL_ERR_CPU_COUNT);
	assert_int_equal(cpuset_count(&s), 0);
}

static void test_choose_rejects_count_not_multiple_of_threads(void **state)
{
	struct fixture *f = *state;
	struct cl_diag d = { "" };
	struct cpuset s;

	assert_int_equal(pool_choose_cpus(f->topo, 3, 1, &s, &d), POOL_ERR_CPU_COUNT);
	assert_non_null(strstr(d.msg, "multiple"));
	assert_int_equal(pool_choose_cpus(f->topo, 0, 1, &s, NULL), POOL_ERR_CPU_COUNT);
}

/* ---- allocator.yaml ---- */

static int cfg(const char *text, struct pool_config *c, struct cl_diag *d)
{
	return pool_config_parse(text, strlen(text), c, d);
}

static void test_config_parses_nitro_shipped_file(void **state)
{
	static const char text[] = "---\n"
	                           "# Enclave configuration file.\n"
	                           "#\n"
	                           "# How much memory to allocate for enclaves (in MiB).\n"
	                           "memory_mib: 512\n"
	                           "#\n"
	                           "# How many CPUs to reserve for enclaves.\n"
	                           "cpu_count: 2\n"
	                           "#\n"
	                           "# cpu_pool: 2,3,6-9\n";
	struct pool_config c;

	(void)state;
	assert_int_equal(cfg(text, &c, NULL), POOL_OK);
	assert_int_equal(c.memory_mib, 512);
	assert_false(c.has_cpu_pool);
	assert_int_equal(c.cpu_count, 2);
}

static void test_config_parses_cpu_pool_quoted_or_not(void **state)
{
	struct pool_config c;
	struct cpuset want = set_of("2-3,6-9");

	(void)state;
	assert_int_equal(cfg("memory_mib: 2048   # two GiB\ncpu_pool: 2,3,6-9\n", &c, NULL),
	                 POOL_OK);
	assert_true(c.has_cpu_pool);
	assert_true(cpuset_equal(&c.cpu_pool, &want));
	assert_int_equal(c.memory_mib, 2048);
	assert_int_equal(cfg("cpu_pool: \"2, 3, 6-9\"\r\n", &c, NULL), POOL_OK);
	assert_true(cpuset_equal(&c.cpu_pool, &want));
	assert_int_equal(cfg("cpu_pool: '2,3,6-9'", &c, NULL), POOL_OK);
	assert_true(cpuset_equal(&c.cpu_pool, &want));
}

static void test_config_defaults_when_keys_missing(void **state)
{
	struct pool_config c;

	(void)state;
	assert_int_equal(cfg("---\n# nothing\n\n", &c, NULL), POOL_OK);
	assert_int_equal(c.memory_mib, 512);
	assert_int_equal(c.cpu_count, 2);
	assert_false(c.has_cpu_pool);
}

static void test_config_rejects_cpu_count_with_cpu_pool(void **state)
{
	struct cl_diag d = { "" };
	struct pool_config c;

	(void)state;
	assert_int_equal(cfg("cpu_count: 2\ncpu_pool: 1,5\n", &c, &d), POOL_ERR_CONFIG);
	assert_non_null(strstr(d.msg, "line 2"));
	assert_non_null(strstr(d.msg, "conflict"));
}

static void test_config_rejects_unknown_duplicate_indented_and_bad_values(void **state)
{
	static const char *const bad[] = {
		"memory: 512\n",
		"memory_mib: 512\nmemory_mib: 256\n",
		"  memory_mib: 512\n",
		"memory_mib:512\n",
		"memory_mib: -5\n",
		"memory_mib: 0\n",
		"memory_mib: 12abc\n",
		"memory_mib: 99999999999999999999999\n",
		"cpu_count: 0\n",
		"cpu_count: 5000\n",
		"memory_mib:\n",
		"just text\n",
		"---\nmemory_mib: 1\n---\n",
		"memory_mib: 1\n...\ncpu_count: 2\n",
		"cpu_pool: [1, 5]\n",
	};
	struct pool_config c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cl_diag d = { "" };

		assert_int_not_equal(cfg(bad[i], &c, &d), POOL_OK);
		assert_non_null(strstr(d.msg, "line "));
	}
}

/* ---- hugepage reservation ---- */

#define HP(node, kib) \
	"sys/devices/system/node/node" #node "/hugepages/hugepages-" #kib "kB/nr_hugepages"

static void test_hugepages_fill_largest_size_first(void **state)
{
	struct fixture *f = *state;
	struct pool_hugepages res;
	char v[32];

	/* 1536 MiB = one 1 GiB page + 256 2 MiB pages. */
	assert_int_equal(pool_hugepages_reserve(f->root, 1, 1536, NULL, &res, NULL), POOL_OK);
	fake_read(f->root, HP(1, 1048576), v, sizeof(v));
	assert_string_equal(v, "1");
	fake_read(f->root, HP(1, 2048), v, sizeof(v));
	assert_string_equal(v, "256");
	/* Node 0 untouched. */
	fake_read(f->root, HP(0, 2048), v, sizeof(v));
	assert_string_equal(v, "0");
	assert_int_equal(pool_hugepages_release(f->root, 1, &res, NULL, NULL), POOL_OK);
	fake_read(f->root, HP(1, 1048576), v, sizeof(v));
	assert_string_equal(v, "0");
	fake_read(f->root, HP(1, 2048), v, sizeof(v));
	assert_string_equal(v, "0");
}

static void test_hugepages_round_up_to_smallest_page(void **state)
{
	struct fixture *f = *state;
	struct pool_hugepages res;
	char v[32];

	assert_int_equal(pool_hugepages_reserve(f->root, 0, 3, NULL, &res, NULL), POOL_OK);
	fake_read(f->root, HP(0, 2048), v, sizeof(v));
	assert_string_equal(v, "2");
	assert_int_equal(pool_hugepages_release(f->root, 0, &res, NULL, NULL), POOL_OK);
}

/* Like the kernel when memory is short: store at most a per-size cap instead of the value.
 * A write to a node's compact file counts, and raises the 2 MiB cap by @compact_2m (memory
 * that was free but scattered). */
struct clamp {
	uint64_t max_1g, max_2m, compact_2m;
	unsigned compactions;
};

static int clamp_write(const char *path, const char *value, void *opaque)
{
	struct clamp *c = opaque;
	unsigned long long v = strtoull(value, NULL, 10);
	char buf[32];
	FILE *fp;

	if (strstr(path, "/node0/compact")) {
		assert_string_equal(value, "1");
		c->compactions++;
		c->max_2m += c->compact_2m;
		return 0;
	}

	if (strstr(path, "1048576kB") && v > c->max_1g)
		v = c->max_1g;
	if (strstr(path, "2048kB") && v > c->max_2m)
		v = c->max_2m;
	fp = fopen(path, "w");
	if (!fp)
		return -errno;
	snprintf(buf, sizeof(buf), "%llu\n", v);
	fputs(buf, fp);
	fclose(fp);
	return 0;
}

static void test_hugepages_fall_back_to_smaller_pages(void **state)
{
	struct fixture *f = *state;
	struct clamp c = { 0, 100000 };
	struct pool_sysfs_ops ops = { clamp_write, &c };
	struct pool_hugepages res;
	char v[32];

	assert_int_equal(pool_hugepages_reserve(f->root, 0, 1024, &ops, &res, NULL), POOL_OK);
	fake_read(f->root, HP(0, 1048576), v, sizeof(v));
	assert_string_equal(v, "0");
	fake_read(f->root, HP(0, 2048), v, sizeof(v));
	assert_string_equal(v, "512");
	assert_int_equal(pool_hugepages_release(f->root, 0, &res, &ops, NULL), POOL_OK);
}

static void test_hugepages_shortfall_rolls_back_to_previous_counts(void **state)
{
	struct fixture *f = *state;
	struct clamp c = { 1 + 0, 10 + 100 };
	struct pool_sysfs_ops ops = { clamp_write, &c };
	struct pool_hugepages res;
	struct cl_diag d = { "" };
	char v[32];

	/* Someone else already holds 10 2 MiB pages: they must survive the rollback. */
	fake_write(f->root, "10\n", HP(0, 2048));
	c.max_1g = 0;
	assert_int_equal(pool_hugepages_reserve(f->root, 0, 1024, &ops, &res, &d),
	                 POOL_ERR_HUGEPAGES);
	fake_read(f->root, HP(0, 2048), v, sizeof(v));
	assert_string_equal(v, "10");
	fake_read(f->root, HP(0, 1048576), v, sizeof(v));
	assert_string_equal(v, "0");
	/* Memory was compacted before giving up; the message names the shortfall and the fix. */
	assert_int_equal(c.compactions, 1);
	assert_non_null(strstr(d.msg, "even after compacting memory"));
	assert_non_null(strstr(d.msg, "only 200 of 1024 MiB"));
	assert_non_null(strstr(d.msg, "got 100 of 512"));
	assert_non_null(strstr(d.msg, "memory_mib"));
	fake_write(f->root, "0\n", HP(0, 2048));
}

/* Free but scattered memory: short at first, enough once the kernel compacted it. */
static void test_hugepages_compact_memory_when_short(void **state)
{
	struct fixture *f = *state;
	struct clamp c = { 0, 100, 1000, 0 };
	struct pool_sysfs_ops ops = { clamp_write, &c };
	struct pool_hugepages res;
	char v[32];

	assert_int_equal(pool_hugepages_reserve(f->root, 0, 1024, &ops, &res, NULL), POOL_OK);
	assert_int_equal(c.compactions, 1);
	fake_read(f->root, HP(0, 2048), v, sizeof(v));
	assert_string_equal(v, "512");
	assert_int_equal(pool_hugepages_release(f->root, 0, &res, &ops, NULL), POOL_OK);
	fake_read(f->root, HP(0, 2048), v, sizeof(v));
	assert_string_equal(v, "0");
	/* Enough at once: no compaction. */
	c.max_2m = 100000;
	assert_int_equal(pool_hugepages_reserve(f->root, 0, 1024, &ops, &res, NULL), POOL_OK);
	assert_int_equal(c.compactions, 1);
	assert_int_equal(pool_hugepages_release(f->root, 0, &res, &ops, NULL), POOL_OK);
}

static void test_hugepages_missing_node_is_an_error(void **state)
{
	struct fixture *f = *state;
	struct pool_hugepages res;

	assert_int_equal(pool_hugepages_reserve(f->root, 5, 2, NULL, &res, NULL), POOL_ERR_NUMA);
}

/* ---- state: records, grants, owners ---- */

static void test_pool_record_round_trips(void **state)
{
	struct fixture *f = *state;
	struct pool_record r = { 0 }, back;
	struct pool *p;
	char dir[PATH_MAX + 16];

	snprintf(dir, sizeof(dir), "%s/state", f->root);
	assert_int_equal(pool_open(dir, f->root, &p, NULL), POOL_OK);
	assert_int_equal(pool_record_read(p, &back, NULL), POOL_ERR_NO_POOL);
	r.cpus = set_of("2-3,6-7");
	r.node = 1;
	r.threads_per_core = 2;
	r.memory_mib = 1536;
	r.reserved.nsizes = 2;
	r.reserved.size[0].kib = 1048576;
	r.reserved.size[0].added = 1;
	r.reserved.size[1].kib = 2048;
	r.reserved.size[1].added = 256;
	assert_int_equal(pool_lock(p, NULL), POOL_OK);
	assert_int_equal(pool_record_write(p, &r, NULL), POOL_OK);
	pool_unlock(p);
	assert_int_equal(pool_record_read(p, &back, NULL), POOL_OK);
	assert_true(cpuset_equal(&back.cpus, &r.cpus));
	assert_int_equal(back.node, 1);
	assert_int_equal(back.memory_mib, 1536);
	assert_int_equal(back.reserved.nsizes, 2);
	assert_int_equal(back.reserved.size[1].added, 256);
	pool_close(p);
}

/* pool_check_writable() in a child that is not root (root passes any mode check): 0 when the
 * state directory and enclaves/ are writable, else 1 + (2 when the message names @want and
 * says "not writable"). */
static int writable_as_nobody(struct pool *p, const char *want)
{
	struct cl_diag d = { "" };
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		if (geteuid() == 0 &&
		    (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0))
			_exit(9);
		if (pool_check_writable(p, &d) == POOL_OK)
			_exit(0);
		_exit(1 + 2 * (strstr(d.msg, want) && strstr(d.msg, "not writable")));
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_state_dir_not_writable_is_named_with_the_fix(void **state)
{
	struct fixture *f = *state;
	struct pool *p;
	char dir[PATH_MAX + 16], sub[PATH_MAX + 32];

	snprintf(dir, sizeof(dir), "%s/state", f->root);
	snprintf(sub, sizeof(sub), "%s/enclaves", dir);
	assert_int_equal(pool_open(dir, f->root, &p, NULL), POOL_OK);
	assert_int_equal(pool_check_writable(p, NULL), POOL_OK);
	assert_int_equal(chmod(f->root, 0755), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(chmod(sub, 0777), 0);
	assert_int_equal(writable_as_nobody(p, dir), 0);
	assert_int_equal(chmod(dir, 0555), 0);
	assert_int_equal(writable_as_nobody(p, dir), 3);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(chmod(sub, 0555), 0);
	assert_int_equal(writable_as_nobody(p, sub), 3);
	chmod(sub, 0755);
	chmod(dir, 0755);
	pool_close(p);
}

static void test_grant_round_trips_and_dead_owner_is_reclaimed(void **state)
{
	struct fixture *f = *state;
	struct pool_grant g = { 0 }, back, *list;
	char dir[PATH_MAX + 16];
	struct pool *p;
	size_t n, gone;
	pid_t child;
	int status;

	snprintf(dir, sizeof(dir), "%s/state2", f->root);
	assert_int_equal(pool_open(dir, f->root, &p, NULL), POOL_OK);

	/* A child that will be SIGKILLed owns one grant; this process owns another. */
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	g.slot_uid = 0xabc;
	snprintf(g.enclave_id, sizeof(g.enclave_id), "i-0000000000000000-encabc");
	snprintf(g.name, sizeof(g.name), "victim");
	g.owner_pid = child;
	assert_int_equal(pool_process_start_time(child, &g.owner_start), POOL_OK);
	g.cores = set_of("1,5");
	g.vcpus = set_of("1,5");
	g.memory_mib = 128;
	g.cid = 16;
	assert_int_equal(pool_lock(p, NULL), POOL_OK);
	assert_int_equal(pool_grant_write(p, &g, NULL), POOL_OK);
	g.slot_uid = 0xdef;
	snprintf(g.name, sizeof(g.name), "survivor");
	g.owner_pid = getpid();
	assert_int_equal(pool_process_start_time(getpid(), &g.owner_start), POOL_OK);
	g.cid = 17;
	assert_int_equal(pool_grant_write(p, &g, NULL), POOL_OK);

	assert_int_equal(pool_grant_read(p, 0xabc, &back, NULL), POOL_OK);
	assert_string_equal(back.name, "victim");
	assert_int_equal(back.cid, 16);
	assert_int_equal(back.memory_mib, 128);
	assert_true(cpuset_equal(&back.cores, &g.cores));

	assert_int_equal(pool_grants_list(p, &list, &n, &gone, NULL), POOL_OK);
	assert_int_equal(n, 2);
	assert_int_equal(gone, 0);
	free(list);

	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	assert_int_equal(pool_grants_list(p, &list, &n, &gone, NULL), POOL_OK);
	assert_int_equal(n, 1);
	assert_int_equal(gone, 1);
	assert_string_equal(list[0].name, "survivor");
	free(list);
	assert_int_equal(pool_grant_read(p, 0xabc, &back, NULL), POOL_ERR_NOT_FOUND);

	/* A temporary file left by a writer that died (the child's pid) is cleaned up; one of a
	 * live writer (this process) is left alone. */
	{
		char dead[PATH_MAX + 64], live[PATH_MAX + 64];

		snprintf(dead, sizeof(dead), "state2/enclaves/abc.grant.tmp.%ld", (long)child);
		snprintf(live, sizeof(live), "state2/enclaves/def.grant.tmp.%ld", (long)getpid());
		fake_write(f->root, "half", "%s", dead);
		fake_write(f->root, "half", "%s", live);
		assert_int_equal(pool_grants_list(p, &list, &n, NULL, NULL), POOL_OK);
		free(list);
		snprintf(dead, sizeof(dead), "%s/state2/enclaves/abc.grant.tmp.%ld", f->root,
		         (long)child);
		snprintf(live, sizeof(live), "%s/state2/enclaves/def.grant.tmp.%ld", f->root,
		         (long)getpid());
		assert_int_equal(access(dead, F_OK), -1);
		assert_int_equal(access(live, F_OK), 0);
		unlink(live);
	}
	pool_unlock(p);
	pool_close(p);
}

/* The enclave process's end, under seccomp: the grant is read through an fd opened before. */
static void test_pinned_grant_reads_until_replaced_or_removed(void **state)
{
	struct fixture *f = *state;
	struct pool_grant g = { 0 }, back;
	char dir[PATH_MAX + 16];
	struct pool *p;
	int fd = -1;

	snprintf(dir, sizeof(dir), "%s/state3", f->root);
	assert_int_equal(pool_open(dir, f->root, &p, NULL), POOL_OK);
	assert_int_equal(pool_grant_open(p, 0x123, &fd, NULL), POOL_ERR_NOT_FOUND);
	g.slot_uid = 0x123;
	snprintf(g.name, sizeof(g.name), "pinned");
	g.owner_pid = getpid();
	g.cid = 20;
	assert_int_equal(pool_lock(p, NULL), POOL_OK);
	assert_int_equal(pool_grant_write(p, &g, NULL), POOL_OK);
	assert_int_equal(pool_grant_open(p, 0x123, &fd, NULL), POOL_OK);
	assert_int_equal(pool_grant_read_fd(fd, &back, NULL), POOL_OK);
	assert_string_equal(back.name, "pinned");
	assert_int_equal(back.owner_pid, getpid());
	assert_int_equal(back.cid, 20);

	/* Someone else takes the slot over: a rename over the file. The pinned fd still reads
	 * the old contents, but must not pass for the slot's grant any more. */
	g.owner_pid = getpid() + 1;
	assert_int_equal(pool_grant_write(p, &g, NULL), POOL_OK);
	assert_int_equal(pool_grant_read_fd(fd, &back, NULL), POOL_ERR_NOT_FOUND);
	close(fd);

	/* Removed: likewise. */
	assert_int_equal(pool_grant_open(p, 0x123, &fd, NULL), POOL_OK);
	assert_int_equal(pool_grant_remove(p, 0x123, NULL), POOL_OK);
	assert_int_equal(pool_grant_read_fd(fd, &back, NULL), POOL_ERR_NOT_FOUND);
	close(fd);
	pool_unlock(p);
	pool_close(p);
}

static void test_grant_with_reused_pid_counts_as_dead(void **state)
{
	struct pool_grant g = { 0 };
	uint64_t start;

	(void)state;
	g.owner_pid = getpid();
	assert_int_equal(pool_process_start_time(getpid(), &start), POOL_OK);
	g.owner_start = start;
	assert_true(pool_grant_owner_alive(&g));
	g.owner_start = start + 1;
	assert_false(pool_grant_owner_alive(&g));
}

/* ---- CIDs, names, IDs ---- */

static void test_cid_reserved_values(void **state)
{
	(void)state;
	for (uint64_t c = 0; c <= 3; c++)
		assert_true(pool_cid_reserved(c));
	assert_false(pool_cid_reserved(4));
	assert_false(pool_cid_reserved(0xFFFFFFFEULL));
	assert_true(pool_cid_reserved(0xFFFFFFFFULL));
	assert_true(pool_cid_reserved(0x100000000ULL));
}

static void test_cid_auto_starts_at_16_and_skips_used(void **state)
{
	struct pool_grant g[2] = { { 0 } };
	uint64_t cid;

	(void)state;
	assert_int_equal(pool_cid_pick(NULL, 0, 1, 0, &cid, NULL), POOL_OK);
	assert_int_equal(cid, 16);
	g[0].slot_uid = 10;
	g[0].cid = 16;
	g[1].slot_uid = 11;
	g[1].cid = 17;
	assert_int_equal(pool_cid_pick(g, 2, 1, 0, &cid, NULL), POOL_OK);
	assert_int_equal(cid, 18);
	/* Its own grant does not block it. */
	assert_int_equal(pool_cid_pick(g, 2, 10, 0, &cid, NULL), POOL_OK);
	assert_int_equal(cid, 16);
}

static void test_cid_explicit_rejected_when_reserved_or_used(void **state)
{
	struct pool_grant g = { 0 };
	struct cl_diag d = { "" };
	uint64_t cid;

	(void)state;
	g.slot_uid = 10;
	g.cid = 20;
	snprintf(g.name, sizeof(g.name), "web");
	assert_int_equal(pool_cid_pick(&g, 1, 1, 3, &cid, NULL), POOL_ERR_CID);
	assert_int_equal(pool_cid_pick(&g, 1, 1, 0xFFFFFFFFULL, &cid, NULL), POOL_ERR_CID);
	assert_int_equal(pool_cid_pick(&g, 1, 1, 20, &cid, &d), POOL_ERR_CID);
	assert_non_null(strstr(d.msg, "web"));
	assert_int_equal(pool_cid_pick(&g, 1, 1, 4, &cid, NULL), POOL_OK);
	assert_int_equal(cid, 4);
}

static void test_name_collisions_get_numbered_suffixes(void **state)
{
	struct pool_grant g[2] = { { 0 } };
	char out[POOL_NAME_MAX];

	(void)state;
	assert_int_equal(pool_name_pick(NULL, 0, 1, "hello", out, NULL), POOL_OK);
	assert_string_equal(out, "hello");
	g[0].slot_uid = 10;
	snprintf(g[0].name, sizeof(g[0].name), "hello");
	assert_int_equal(pool_name_pick(g, 1, 1, "hello", out, NULL), POOL_OK);
	assert_string_equal(out, "hello_1");
	g[1].slot_uid = 11;
	snprintf(g[1].name, sizeof(g[1].name), "hello_1");
	assert_int_equal(pool_name_pick(g, 2, 1, "hello", out, NULL), POOL_OK);
	assert_string_equal(out, "hello_2");
	assert_int_equal(pool_name_pick(g, 2, 1, "a/b", out, NULL), POOL_ERR_NAME);
	assert_int_equal(pool_name_pick(g, 2, 1, "", out, NULL), POOL_ERR_NAME);
	assert_int_equal(pool_name_pick(g, 2, 1, "a\nb", out, NULL), POOL_ERR_NAME);
}

static void test_enclave_id_uses_asset_tag_without_whitespace(void **state)
{
	struct fixture *f = *state;
	char id[POOL_ID_MAX];
	uint64_t slot;

	pool_enclave_id(f->root, 0x17ad2edcbfdad4bULL, id);
	assert_string_equal(id, "i-0000000000000000-enc17ad2edcbfdad4b");
	fake_write(f->root, " i-0584873aac8fea23b \n",
	           "sys/devices/virtual/dmi/id/board_asset_tag");
	pool_enclave_id(f->root, 0x17ad2edcbfdad4bULL, id);
	assert_string_equal(id, "i-0584873aac8fea23b-enc17ad2edcbfdad4b");
	assert_int_equal(pool_enclave_id_parse(id, &slot), POOL_OK);
	assert_true(slot == 0x17ad2edcbfdad4bULL);
	assert_int_equal(pool_enclave_id_parse("i-123", &slot), POOL_ERR_NOT_FOUND);
	assert_int_equal(pool_enclave_id_parse("x-encZZ", &slot), POOL_ERR_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topology_reads_siblings_and_nodes),
		cmocka_unit_test(test_topology_without_present_file_fails_with_path),
		cmocka_unit_test(test_validate_accepts_whole_core_on_one_node),
		cmocka_unit_test(test_validate_rejects_empty_pool),
		cmocka_unit_test(test_validate_rejects_absent_cpu),
		cmocka_unit_test(test_validate_rejects_offline_cpu_before_other_rules),
		cmocka_unit_test(test_validate_rejects_pool_spanning_numa_nodes),
		cmocka_unit_test(test_validate_rejects_cpu0_and_its_sibling),
		cmocka_unit_test(test_validate_rejects_partial_core_naming_missing_sibling),
		cmocka_unit_test(test_choose_takes_whole_cores_skipping_cpu0_core),
		cmocka_unit_test(test_choose_rejects_count_not_multiple_of_threads),
		cmocka_unit_test(test_config_parses_nitro_shipped_file),
		cmocka_unit_test(test_config_parses_cpu_pool_quoted_or_not),
		cmocka_unit_test(test_config_defaults_when_keys_missing),
		cmocka_unit_test(test_config_rejects_cpu_count_with_cpu_pool),
		cmocka_unit_test(test_config_rejects_unknown_duplicate_indented_and_bad_values),
		cmocka_unit_test(test_hugepages_fill_largest_size_first),
		cmocka_unit_test(test_hugepages_round_up_to_smallest_page),
		cmocka_unit_test(test_hugepages_fall_back_to_smaller_pages),
		cmocka_unit_test(test_hugepages_shortfall_rolls_back_to_previous_counts),
		cmocka_unit_test(test_hugepages_compact_memory_when_short),
		cmocka_unit_test(test_hugepages_missing_node_is_an_error),
		cmocka_unit_test(test_pool_record_round_trips),
		cmocka_unit_test(test_state_dir_not_writable_is_named_with_the_fix),
		cmocka_unit_test(test_grant_round_trips_and_dead_owner_is_reclaimed),
		cmocka_unit_test(test_pinned_grant_reads_until_replaced_or_removed),
		cmocka_unit_test(test_grant_with_reused_pid_counts_as_dead),
		cmocka_unit_test(test_cid_reserved_values),
		cmocka_unit_test(test_cid_auto_starts_at_16_and_skips_used),
		cmocka_unit_test(test_cid_explicit_rejected_when_reserved_or_used),
		cmocka_unit_test(test_name_collisions_get_numbered_suffixes),
		cmocka_unit_test(test_enclave_id_uses_asset_tag_without_whitespace),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

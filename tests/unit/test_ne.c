/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <pthread.h>

#include <cmocka.h>

#include "lib/ne/ne.h"
#include "lib/ne/ne_internal.h"
#include "test_pool_sysfs.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
/* A 2 MiB-aligned fake user address; the fake page inspection never dereferences it. */
#define ADDR 0x7f0000000000ULL

struct fake_pages {
	uint64_t page_size;
	int node;
	int fault;
};

static int fake_page_info(uint64_t addr, uint64_t len, uint64_t *ps, int *node, void *opaque)
{
	struct fake_pages *f = opaque;

	(void)addr;
	(void)len;
	if (f->fault)
		return -EFAULT;
	*ps = f->page_size;
	*node = f->node;
	return 0;
}

struct fixture {
	char root[PATH_MAX];
	char state[PATH_MAX + 16];
	struct pool *pool;
	struct fake_pages pages;
	struct ne_host_ops ops;
};

/* Pool: cores {2,6} and {3,7} on node 1, 1024 MiB. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pool_record r = { 0 };

	fake_sysfs_build(f->root);
	snprintf(f->state, sizeof(f->state), "%s/state", f->root);
	if (pool_open(f->state, f->root, &f->pool, NULL))
		return -1;
	if (pool_cpulist_parse("2-3,6-7", 7, &r.cpus, NULL))
		return -1;
	r.node = 1;
	r.threads_per_core = 2;
	r.memory_mib = 1024;
	if (pool_record_write(f->pool, &r, NULL))
		return -1;
	f->pages.page_size = 2 * MiB;
	f->pages.node = 1;
	f->ops.page_info = fake_page_info;
	f->ops.opaque = &f->pages;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pool_close(f->pool);
	fake_rm_rf(f->root);
	free(f);
	return 0;
}

static struct ne_slot *new_slot(struct fixture *f)
{
	struct ne_slot *s = NULL;
	struct cl_diag d = { "" };
	int rc = ne_create_slot(f->pool, &s, &d);

	if (rc)
		fail_msg("ne_create_slot: %d %s", rc, d.msg);
	ne_slot_set_host_ops(s, &f->ops);
	return s;
}

static uint32_t add(struct ne_slot *s, uint32_t id, int want_rc)
{
	struct cl_diag d = { "" };
	int rc = ne_add_vcpu(s, &id, &d);

	if (rc != want_rc)
		fail_msg("ne_add_vcpu: got %d (%s), want %d", rc, d.msg, want_rc);
	return id;
}

/* A slot with one whole core and 128 MiB, ready to start. */
static struct ne_slot *ready_slot(struct fixture *f, uint64_t addr)
{
	struct ne_slot *s = new_slot(f);

	add(s, 0, 0);
	add(s, 0, 0);
	assert_int_equal(ne_set_user_memory_region(s, 0, 128 * MiB, addr, NULL), 0);
	return s;
}

/* ---- create, IDs, names ---- */

static void test_create_slot_records_grant_with_enclave_id(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = new_slot(f);
	struct pool_grant g;
	char want[64];

	assert_int_equal(ne_slot_info(s, &g, NULL), 0);
	snprintf(want, sizeof(want), "i-0000000000000000-enc%llx",
	         (unsigned long long)ne_slot_uid(s));
	assert_string_equal(g.enclave_id, want);
	assert_int_equal(g.owner_pid, getpid());
	assert_int_equal(g.state, POOL_GRANT_INIT);
	assert_int_equal(cpuset_count(&g.cores), 0);
	ne_release(s);
	assert_int_equal(pool_grant_read(f->pool, g.slot_uid, &g, NULL), POOL_ERR_NOT_FOUND);
}

/* The enclave process releases under seccomp: the grant pinned before, no open at the end. */
static void test_release_through_the_pinned_grant(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = new_slot(f), *other;
	struct pool_grant g;
	uint64_t uid = ne_slot_uid(s);

	assert_int_equal(ne_release_prepare(s, NULL), 0);
	ne_release(s);
	assert_int_equal(pool_grant_read(f->pool, uid, &g, NULL), POOL_ERR_NOT_FOUND);

	/* A grant another process rewrote after the pin is not this process's to remove. */
	s = new_slot(f);
	uid = ne_slot_uid(s);
	assert_int_equal(ne_release_prepare(s, NULL), 0);
	assert_int_equal(pool_grant_read(f->pool, uid, &g, NULL), POOL_OK);
	g.owner_pid = getpid() + 1;
	assert_int_equal(pool_lock(f->pool, NULL), POOL_OK);
	assert_int_equal(pool_grant_write(f->pool, &g, NULL), POOL_OK);
	pool_unlock(f->pool);
	ne_release(s);
	assert_int_equal(pool_grant_read(f->pool, uid, &g, NULL), POOL_OK);
	assert_int_equal(pool_grant_remove(f->pool, uid, NULL), POOL_OK);
	other = new_slot(f); /* the pool is usable afterwards */
	ne_release(other);
}

static void test_create_slot_without_pool_says_run_allocator(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = NULL;
	struct cl_diag d = { "" };
	char dir[PATH_MAX + 32];
	struct pool *p;

	snprintf(dir, sizeof(dir), "%s/empty-state", f->root);
	assert_int_equal(pool_open(dir, f->root, &p, NULL), POOL_OK);
	assert_int_equal(ne_create_slot(p, &s, &d), NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	assert_null(s);
	assert_non_null(strstr(d.msg, "cloister allocator"));
	pool_close(p);
}

static void test_names_get_suffixes_among_live_enclaves(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *a = new_slot(f), *b = new_slot(f);
	char name[POOL_NAME_MAX];

	assert_int_equal(ne_set_name(a, "app", name, NULL), 0);
	assert_string_equal(name, "app");
	assert_int_equal(ne_set_name(b, "app", name, NULL), 0);
	assert_string_equal(name, "app_1");
	ne_release(a);
	ne_release(b);
}

/* ---- NE_ADD_VCPU ---- */

static void test_add_vcpu_auto_fills_owned_core_before_taking_next(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = new_slot(f);
	struct pool_grant g;

	assert_int_equal(add(s, 0, 0), 2);
	assert_int_equal(add(s, 0, 0), 6); /* 2's sibling before a new core */
	assert_int_equal(add(s, 0, 0), 3);
	assert_int_equal(add(s, 0, 0), 7);
	add(s, 0, NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	assert_int_equal(ne_slot_info(s, &g, NULL), 0);
	assert_int_equal(cpuset_count(&g.vcpus), 4);
	ne_release(s);
}

static void test_add_vcpu_explicit_checks_in_driver_order(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *a = new_slot(f), *b = new_slot(f);
	struct cl_diag d = { "" };
	uint32_t id;

	add(a, 8, NE_ERR_INVALID_VCPU); /* beyond the 8 host CPUs */
	add(a, 1, NE_ERR_VCPU_NOT_IN_CPU_POOL);
	assert_int_equal(add(a, 3, 0), 3);
	add(a, 3, NE_ERR_VCPU_ALREADY_USED);
	assert_int_equal(add(a, 7, 0), 7); /* sibling of an owned core */
	/* Another enclave cannot take CPUs of a's core. */
	id = 7;
	assert_int_equal(ne_add_vcpu(b, &id, &d), NE_ERR_VCPU_NOT_IN_CPU_POOL);
	assert_non_null(strstr(d.msg, "another enclave"));
	assert_int_equal(add(b, 0, 0), 2);
	ne_release(a);
	ne_release(b);
}

static void test_add_vcpu_after_start_is_not_in_init_state_before_id_check(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = ready_slot(f, ADDR);
	uint64_t cid = 0;

	assert_int_equal(ne_start(s, 0, &cid, NULL), 0);
	add(s, 100, NE_ERR_NOT_IN_INIT_STATE);
	ne_release(s);
}

/* ---- NE_GET_IMAGE_LOAD_INFO ---- */

static void test_image_load_info_needs_eif_flag_and_returns_8_mib(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = ready_slot(f, ADDR);
	uint64_t off = 0, cid = 0;

	assert_int_equal(ne_get_image_load_info(s, 0, &off, NULL), NE_ERR_INVALID_FLAG_VALUE);
	assert_int_equal(ne_get_image_load_info(s, 2, &off, NULL), NE_ERR_INVALID_FLAG_VALUE);
	assert_int_equal(ne_get_image_load_info(s, NE_EIF_IMAGE, &off, NULL), 0);
	assert_true(off == 8 * MiB);
	assert_int_equal(ne_start(s, 0, &cid, NULL), 0);
	/* State is checked before the flags. */
	assert_int_equal(ne_get_image_load_info(s, 0, &off, NULL), NE_ERR_NOT_IN_INIT_STATE);
	ne_release(s);
}

/* ---- NE_SET_USER_MEMORY_REGION ---- */

static void test_memory_region_checks_in_driver_order(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = new_slot(f);

	/* Flags first, even with a bad size. */
	assert_int_equal(ne_set_user_memory_region(s, 1, 3 * MiB, ADDR + 1, NULL),
	                 NE_ERR_INVALID_FLAG_VALUE);
	assert_int_equal(ne_set_user_memory_region(s, 0, 0, ADDR, NULL),
	                 NE_ERR_INVALID_MEM_REGION_SIZE);
	/* Size before alignment. */
	assert_int_equal(ne_set_user_memory_region(s, 0, 3 * MiB, ADDR + 4096, NULL),
	                 NE_ERR_INVALID_MEM_REGION_SIZE);
	assert_int_equal(ne_set_user_memory_region(s, 0, 2 * MiB, ADDR + MiB, NULL),
	                 NE_ERR_UNALIGNED_MEM_REGION_ADDR);
	assert_int_equal(ne_set_user_memory_region(s, 0, 4 * MiB, UINT64_MAX - 2 * MiB + 1, NULL),
	                 NE_ERR_INVALID_MEM_REGION_ADDR);
	assert_int_equal(ne_set_user_memory_region(s, 0, 4 * MiB, 0xffff800000000000ULL, NULL),
	                 NE_ERR_INVALID_MEM_REGION_ADDR);
	assert_int_equal(ne_set_user_memory_region(s, 0, 4 * MiB, ADDR, NULL), 0);
	assert_int_equal(ne_set_user_memory_region(s, 0, 4 * MiB, ADDR + 2 * MiB, NULL),
	                 NE_ERR_MEM_REGION_ALREADY_USED);
	assert_int_equal(ne_set_user_memory_region(s, 0, 4 * MiB, ADDR - 2 * MiB, NULL),
	                 NE_ERR_MEM_REGION_ALREADY_USED);
	f->pages.fault = 1;
	assert_int_equal(ne_set_user_memory_region(s, 0, 2 * MiB, ADDR + 64 * MiB, NULL), -EFAULT);
	f->pages.fault = 0;
	f->pages.page_size = 0;
	assert_int_equal(ne_set_user_memory_region(s, 0, 2 * MiB, ADDR + 64 * MiB, NULL),
	                 NE_ERR_MEM_NOT_HUGE_PAGE);
	f->pages.page_size = MiB;
	assert_int_equal(ne_set_user_memory_region(s, 0, 2 * MiB, ADDR + 64 * MiB, NULL),
	                 NE_ERR_INVALID_PAGE_SIZE);
	f->pages.page_size = GiB;
	f->pages.node = 0;
	assert_int_equal(ne_set_user_memory_region(s, 0, 2 * MiB, ADDR + 64 * MiB, NULL),
	                 NE_ERR_MEM_DIFFERENT_NUMA_NODE);
	f->pages.node = 1;
	assert_int_equal(ne_set_user_memory_region(s, 0, 2 * MiB, ADDR + 64 * MiB, NULL), 0);
	f->pages.page_size = 2 * MiB;
	ne_release(s);
}

static void test_memory_beyond_pool_budget_is_refused(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *a = new_slot(f), *b = new_slot(f);
	struct cl_diag d = { "" };

	assert_int_equal(ne_set_user_memory_region(a, 0, 768 * MiB, ADDR, NULL), 0);
	assert_int_equal(ne_set_user_memory_region(b, 0, 512 * MiB, ADDR + GiB, &d), -ENOMEM);
	assert_non_null(strstr(d.msg, "256 MiB of its 1024 MiB free"));
	assert_int_equal(ne_set_user_memory_region(b, 0, 256 * MiB, ADDR + GiB, NULL), 0);
	/* Released memory is available again. */
	ne_release(a);
	assert_int_equal(ne_set_user_memory_region(b, 0, 512 * MiB, ADDR + 2 * GiB, NULL), 0);
	ne_release(b);
}

/* ---- NE_START_ENCLAVE ---- */

static void test_start_checks_in_driver_order(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = new_slot(f);
	uint64_t cid;

	cid = 0;
	assert_int_equal(ne_start(s, 2, &cid, NULL), NE_ERR_INVALID_FLAG_VALUE);
	/* CID before state and resources. */
	for (uint64_t bad = 1; bad <= 3; bad++) {
		cid = bad;
		assert_int_equal(ne_start(s, 0, &cid, NULL), NE_ERR_INVALID_ENCLAVE_CID);
	}
	cid = 0xFFFFFFFFULL;
	assert_int_equal(ne_start(s, 0, &cid, NULL), NE_ERR_INVALID_ENCLAVE_CID);
	cid = 0x100000010ULL;
	assert_int_equal(ne_start(s, 0, &cid, NULL), NE_ERR_INVALID_ENCLAVE_CID);
	cid = 0;
	assert_int_equal(ne_start(s, 0, &cid, NULL), NE_ERR_NO_MEM_REGIONS_ADDED);
	assert_int_equal(ne_set_user_memory_region(s, 0, 32 * MiB, ADDR, NULL), 0);
	assert_int_equal(ne_start(s, 0, &cid, NULL), NE_ERR_ENCLAVE_MEM_MIN_SIZE);
	assert_int_equal(ne_set_user_memory_region(s, 0, 32 * MiB, ADDR + 32 * MiB, NULL), 0);
	assert_int_equal(ne_start(s, 0, &cid, NULL), NE_ERR_NO_VCPUS_ADDED);
	add(s, 0, 0);
	assert_int_equal(ne_start(s, 0, &cid, NULL), NE_ERR_FULL_CORES_NOT_USED);
	add(s, 0, 0);
	assert_int_equal(ne_start(s, NE_ENCLAVE_DEBUG_MODE, &cid, NULL), 0);
	assert_true(cid == 16);
	assert_int_equal(ne_start(s, 0, &cid, NULL), NE_ERR_NOT_IN_INIT_STATE);
	ne_release(s);
}

static void test_cids_are_unique_among_running_enclaves(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *a = ready_slot(f, ADDR), *b = ready_slot(f, ADDR + GiB);
	struct cl_diag d = { "" };
	struct pool_grant g;
	uint64_t ca = 0, cb = 0;

	assert_int_equal(ne_start(a, 0, &ca, NULL), 0);
	assert_true(ca == 16);
	cb = 16;
	assert_int_equal(ne_start(b, 0, &cb, &d), -EADDRINUSE);
	assert_non_null(strstr(d.msg, "already used"));
	cb = 0;
	assert_int_equal(ne_start(b, 0, &cb, NULL), 0);
	assert_true(cb == 17);
	assert_int_equal(ne_slot_info(b, &g, NULL), 0);
	assert_int_equal(g.state, POOL_GRANT_RUNNING);
	assert_true(g.cid == 17);
	ne_release(a);
	ne_release(b);
}

static void test_release_returns_cores_to_pool(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *a = new_slot(f), *b = new_slot(f), *c;

	add(a, 0, 0);
	add(b, 0, 0);
	/* Both cores taken: a third enclave cannot be created. */
	assert_int_equal(ne_create_slot(f->pool, &c, NULL), NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	ne_release(a);
	c = new_slot(f);
	assert_int_equal(add(c, 0, 0), 2);
	ne_release(b);
	ne_release(c);
}

/* ---- cross-process: races, dead owners, adoption ---- */

static void test_concurrent_allocations_never_share_a_cpu(void **state)
{
	struct fixture *f = *state;
	enum { N = 4 };
	int pipes[N][2], go[2];
	pid_t kids[N];
	struct cpuset seen;
	int ok = 0, refused = 0;

	cpuset_zero(&seen);
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(pipe(pipes[i]), 0);
		kids[i] = fork();
		if (kids[i] == 0) {
			struct pool *p;
			struct ne_slot *s;
			char buf[64] = "refused";
			char c;
			uint32_t a = 0, b = 0;

			close(go[1]);
			/* Everyone starts at once: block until the parent closes the pipe. */
			if (read(go[0], &c, 1) < 0)
				_exit(2);
			if (pool_open(f->state, f->root, &p, NULL))
				_exit(2);
			if (ne_create_slot(p, &s, NULL) == 0) {
				if (ne_add_vcpu(s, &a, NULL) == 0 && ne_add_vcpu(s, &b, NULL) == 0)
					snprintf(buf, sizeof(buf), "%u,%u", a, b);
			}
			if (write(pipes[i][1], buf, strlen(buf) + 1) < 0)
				_exit(2);
			/* Stay alive (holding the grant) until the parent has read everyone. */
			pause();
			_exit(0);
		}
		close(pipes[i][1]);
	}
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < N; i++) {
		char buf[64] = "";
		struct cpuset got;

		assert_true(read(pipes[i][0], buf, sizeof(buf)) > 0);
		close(pipes[i][0]);
		if (!strcmp(buf, "refused")) {
			refused++;
			continue;
		}
		ok++;
		assert_int_equal(pool_cpulist_parse(buf, strlen(buf), &got, NULL), POOL_OK);
		assert_int_equal(cpuset_count(&got), 2);
		assert_false(cpuset_intersects(&got, &seen));
		cpuset_or(&seen, &got);
	}
	for (int i = 0; i < N; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	/* Two cores in the pool: exactly two winners, whole cores each. */
	assert_int_equal(ok, 2);
	assert_int_equal(refused, N - 2);
}

static void test_sigkilled_owner_resources_are_reclaimed(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = NULL;
	int sync[2];
	pid_t kid;
	char c;

	assert_int_equal(pipe(sync), 0);
	kid = fork();
	if (kid == 0) {
		struct pool *p;
		struct ne_slot *k;
		uint32_t id = 0;

		if (pool_open(f->state, f->root, &p, NULL) || ne_create_slot(p, &k, NULL))
			_exit(2);
		for (int i = 0; i < 4; i++) {
			id = 0;
			if (ne_add_vcpu(k, &id, NULL))
				_exit(2);
		}
		if (write(sync[1], "x", 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	assert_int_equal(read(sync[0], &c, 1), 1);
	/* The child holds the whole pool. */
	assert_int_equal(ne_create_slot(f->pool, &s, NULL), NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	/* The next call reclaims the dead owner's grant. */
	s = new_slot(f);
	assert_int_equal(add(s, 0, 0), 2);
	ne_release(s);
	close(sync[0]);
	close(sync[1]);
}

static void test_adopted_slot_belongs_to_the_adopter(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *s = new_slot(f);
	uint64_t slot = ne_slot_uid(s);
	struct pool_grant g;
	int status;
	pid_t kid;

	add(s, 0, 0);
	kid = fork();
	if (kid == 0) {
		struct pool *p;
		struct ne_slot *k;
		uint32_t id = 0;

		if (pool_open(f->state, f->root, &p, NULL) || ne_slot_adopt(p, slot, &k, NULL))
			_exit(2);
		/* The adopter continues where the creator stopped: the sibling of CPU 2. */
		if (ne_add_vcpu(k, &id, NULL) || id != 6)
			_exit(3);
		ne_slot_forget(k);
		pool_close(p);
		_exit(0);
	}
	waitpid(kid, &status, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The creator no longer owns it (the adopter died, so the grant was reclaimed, or it
	 * belongs to another process): either way its calls fail like the driver's EIO. */
	add(s, 0, -EIO);
	(void)g;
	ne_slot_forget(s);
}

/* ---- threads racing (each with its own pool handle, as each run-enclave would have) ---- */

enum { RACERS = 6 };

struct racer {
	struct fixture *f;
	pthread_barrier_t *start, *done;
	int ok;
	struct cpuset got;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;
	struct ne_slot *s = NULL;
	struct pool *p;
	uint32_t a = 0, b = 0;

	if (pool_open(r->f->state, r->f->root, &p, NULL))
		return NULL;
	pthread_barrier_wait(r->start);
	if (ne_create_slot(p, &s, NULL) == 0 && ne_add_vcpu(s, &a, NULL) == 0 &&
	    ne_add_vcpu(s, &b, NULL) == 0) {
		r->ok = 1;
		cpuset_add(&r->got, a);
		cpuset_add(&r->got, b);
	}
	/* Hold the grant until every racer has tried. */
	pthread_barrier_wait(r->done);
	ne_release(s);
	pool_close(p);
	return NULL;
}

static void test_concurrent_threads_never_share_a_cpu(void **state)
{
	struct fixture *f = *state;
	struct ne_slot *hold = new_slot(f);
	pthread_barrier_t start, done;
	struct racer r[RACERS];
	pthread_t t[RACERS];
	struct cpuset want;
	int winners = 0;

	/* Core {2,6} is held throughout; the racers compete for core {3,7}. */
	add(hold, 2, 0);
	add(hold, 6, 0);
	pthread_barrier_init(&start, NULL, RACERS);
	pthread_barrier_init(&done, NULL, RACERS);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < RACERS; i++) {
		r[i].f = f;
		r[i].start = &start;
		r[i].done = &done;
		assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	cpuset_zero(&want);
	cpuset_add(&want, 3);
	cpuset_add(&want, 7);
	for (int i = 0; i < RACERS; i++) {
		if (!r[i].ok)
			continue;
		winners++;
		assert_true(cpuset_equal(&r[i].got, &want));
	}
	assert_int_equal(winners, 1);
	pthread_barrier_destroy(&start);
	pthread_barrier_destroy(&done);
	ne_release(hold);
}

/* ---- error codes ---- */

static void test_error_names_and_cli_codes(void **state)
{
	(void)state;
	assert_string_equal(ne_err_name(256), "NE_ERR_VCPU_ALREADY_USED");
	assert_string_equal(ne_err_name(265), "NE_ERR_MEM_MAX_REGIONS");
	assert_string_equal(ne_err_name(275), "NE_ERR_INVALID_ENCLAVE_CID");
	assert_string_equal(ne_err_name(-ENOMEM), "ENOMEM");
	for (int e = 256; e <= 275; e++) {
		assert_non_null(ne_err_name(e));
		assert_true(strlen(ne_strerror(e)) > 10);
	}
	assert_int_equal(ne_err_to_cli(NE_OP_CREATE_SLOT, NE_ERR_NO_CPUS_AVAIL_IN_POOL), 22);
	assert_int_equal(ne_err_to_cli(NE_OP_ADD_VCPU, NE_ERR_VCPU_NOT_IN_CPU_POOL), 21);
	assert_int_equal(ne_err_to_cli(NE_OP_ADD_VCPU, NE_ERR_VCPU_ALREADY_USED), 20);
	assert_int_equal(ne_err_to_cli(NE_OP_ADD_VCPU, NE_ERR_NOT_IN_INIT_STATE), 32);
	assert_int_equal(ne_err_to_cli(NE_OP_GET_IMAGE_LOAD_INFO, NE_ERR_INVALID_FLAG_VALUE), 30);
	assert_int_equal(ne_err_to_cli(NE_OP_SET_USER_MEMORY_REGION, NE_ERR_MEM_NOT_HUGE_PAGE), 31);
	assert_int_equal(ne_err_to_cli(NE_OP_START, NE_ERR_FULL_CORES_NOT_USED), 33);
	assert_int_equal(ne_err_to_cli(NE_OP_MEM_CHECK, -EINVAL), 26);
	assert_int_equal(ne_err_to_cli(NE_OP_MEM_ALLOC, -ENOMEM), 27);
}

/* ---- memory allocation algorithm (nitro-compat §2.7) with a fake mapper ---- */

struct fake_mapper {
	uint64_t avail[64]; /* pages left per log2(size) */
	unsigned maps, unmaps;
	uint64_t next;
	bool real; /* hand out real (malloc'd) memory */
};

static void *fm_map(uint64_t size, void *opaque)
{
	struct fake_mapper *m = opaque;
	unsigned lg = (unsigned)__builtin_ctzll(size);

	if (!m->avail[lg])
		return NULL;
	m->avail[lg]--;
	m->maps++;
	if (m->real)
		return aligned_alloc(2 * MiB, size);
	m->next += size;
	return (void *)(uintptr_t)(0x100000000000ULL + m->next);
}

static void fm_unmap(void *addr, uint64_t size, void *opaque)
{
	struct fake_mapper *m = opaque;

	m->unmaps++;
	m->avail[__builtin_ctzll(size)]++;
	if (m->real)
		free(addr);
}

#define LG_2M 21
#define LG_1G 30

static void test_alloc_uses_largest_pages_first(void **state)
{
	struct fake_mapper fm = { .avail = { [LG_2M] = 1000, [LG_1G] = 4 } };
	struct ne_mem_mapper mp = { fm_map, fm_unmap, &fm };
	struct ne_mem m;

	(void)state;
	assert_int_equal(ne_mem_alloc_with(&mp, 1026 * MiB, &m, NULL), 0);
	assert_int_equal(m.count, 2);
	assert_true(m.regions[0].size == GiB);
	assert_true(m.regions[1].size == 2 * MiB);
	assert_true(m.total == 1026 * MiB);
	ne_mem_free_with(&mp, &m);
	assert_int_equal(fm.maps, fm.unmaps);
}

static void test_alloc_falls_back_to_smaller_pages(void **state)
{
	struct fake_mapper fm = { .avail = { [LG_2M] = 1000 } };
	struct ne_mem_mapper mp = { fm_map, fm_unmap, &fm };
	struct ne_mem m;

	(void)state;
	assert_int_equal(ne_mem_alloc_with(&mp, 1 * GiB, &m, NULL), 0);
	assert_int_equal(m.count, 512);
	assert_true(m.total == GiB);
	ne_mem_free_with(&mp, &m);
}

static void test_alloc_pass2_overshoots_then_trims_unneeded_tail(void **state)
{
	/* 5 MiB with two 2 MiB pages and one 1 GiB page: pass 1 maps 2+2, pass 2 finds no third
	 * 2 MiB page and maps 1 GiB; sorted largest first, the 1 GiB page alone covers 5 MiB and
	 * both 2 MiB pages are unmapped. */
	struct fake_mapper fm = { .avail = { [LG_2M] = 2, [LG_1G] = 1 } };
	struct ne_mem_mapper mp = { fm_map, fm_unmap, &fm };
	struct ne_mem m;

	(void)state;
	assert_int_equal(ne_mem_alloc_with(&mp, 5 * MiB, &m, NULL), 0);
	assert_int_equal(m.count, 1);
	assert_true(m.regions[0].size == GiB);
	assert_true(m.total == GiB);
	assert_int_equal(fm.unmaps, 2);
	ne_mem_free_with(&mp, &m);
}

static void test_alloc_pass2_rounds_up_to_whole_page(void **state)
{
	struct fake_mapper fm = { .avail = { [LG_2M] = 10 } };
	struct ne_mem_mapper mp = { fm_map, fm_unmap, &fm };
	struct ne_mem m;

	(void)state;
	assert_int_equal(ne_mem_alloc_with(&mp, 3 * MiB, &m, NULL), 0);
	assert_int_equal(m.count, 2);
	assert_true(m.total == 4 * MiB);
	ne_mem_free_with(&mp, &m);
}

static void test_alloc_shortfall_unmaps_everything(void **state)
{
	struct fake_mapper fm = { .avail = { [LG_2M] = 1 } };
	struct ne_mem_mapper mp = { fm_map, fm_unmap, &fm };
	struct cl_diag d = { "" };
	struct ne_mem m;

	(void)state;
	assert_int_equal(ne_mem_alloc_with(&mp, 4 * MiB, &m, &d), -ENOMEM);
	assert_int_equal(fm.maps, fm.unmaps);
	assert_int_equal(m.count, 0);
	assert_null(m.regions);
	assert_non_null(strstr(d.msg, "only 2 of the 4 MiB"));
}

static void test_mem_write_spans_regions_in_order(void **state)
{
	struct fake_mapper fm = { .avail = { [LG_2M] = 3 }, .real = true };
	struct ne_mem_mapper mp = { fm_map, fm_unmap, &fm };
	uint8_t data[100];
	struct ne_mem m;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i + 1);
	assert_int_equal(ne_mem_alloc_with(&mp, 6 * MiB, &m, NULL), 0);
	/* 50 bytes at the end of region 0, 50 at the start of region 1. */
	assert_int_equal(ne_mem_write(&m, 2 * MiB - 50, data, sizeof(data), NULL), 0);
	assert_memory_equal((uint8_t *)m.regions[0].addr + 2 * MiB - 50, data, 50);
	assert_memory_equal(m.regions[1].addr, data + 50, 50);
	assert_int_equal(ne_mem_write(&m, 6 * MiB - 10, data, 11, NULL), -ERANGE);
	assert_int_equal(ne_mem_write(&m, UINT64_MAX, data, 2, NULL), -ERANGE);
	ne_mem_free_with(&mp, &m);
}

static void test_memory_request_must_be_four_times_eif(void **state)
{
	struct cl_diag d = { "" };
	uint64_t n;

	(void)state;
	/* The rule is memory >= 4 × size in bytes: 124 MiB < 4 × (31 MiB + 1 byte) <= 125 MiB.
	 * The message rounds as nitro-cli does: ceil(bytes / 1024) = 31745 KiB, ceil(/1024) =
	 * 32 MiB, × 4 = 128. */
	assert_int_equal(ne_mem_check_request(124, 31 * MiB + 1, &n, &d), -EINVAL);
	assert_int_equal(n, 128);
	assert_non_null(strstr(d.msg, "At least 128 MB must be allocated"));
	assert_int_equal(ne_mem_check_request(125, 31 * MiB + 1, NULL, NULL), 0);
	assert_int_equal(ne_mem_check_request(0, 1, NULL, NULL), -EINVAL);
	/* Huge requests cannot overflow into a false refusal. */
	assert_int_equal(ne_mem_check_request(UINT64_MAX, 1, NULL, NULL), 0);
	assert_int_equal(ne_mem_check_request(1, UINT64_MAX, NULL, NULL), -EINVAL);
}

/* nitro-compat §2.5, written out here independently of launch.c: each term is a whole number
 * of 90 s units, ceil(eif / 6 GiB) and ceil(memory / 100 GiB). */
static uint64_t expected_heartbeat_ms(uint64_t eif, uint64_t mem)
{
	uint64_t a = eif / (6 * GiB), b = mem / (100 * GiB);

	if (eif % (6 * GiB))
		a++;
	if (mem % (100 * GiB))
		b++;
	return (a + b) * 90 * 1000;
}

static void test_heartbeat_timeout_follows_nitro_cli_formula(void **state)
{
	static const uint64_t eifs[] = { 1,           31 * MiB, 6 * GiB - 1,  6 * GiB,
		                         6 * GiB + 1, 12 * GiB, 12 * GiB + 1, 60 * GiB };
	static const uint64_t mems[] = { 64 * MiB,  100 * GiB - 1, 100 * GiB, 100 * GiB + 1,
		                         200 * GiB, 200 * GiB + 1, 1024 * GiB };

	(void)state;
	for (size_t i = 0; i < sizeof(eifs) / sizeof(eifs[0]); i++)
		for (size_t j = 0; j < sizeof(mems) / sizeof(mems[0]); j++)
			assert_int_equal(ne_heartbeat_timeout_ms(eifs[i], mems[j]),
			                 expected_heartbeat_ms(eifs[i], mems[j]));
	/* The boundaries, spelled out: an exact multiple stays, one byte more is one more unit. */
	assert_int_equal(ne_heartbeat_timeout_ms(1, 1), 180000); /* nitro-cli's minimum */
	assert_int_equal(ne_heartbeat_timeout_ms(6 * GiB, 100 * GiB), 180000);
	assert_int_equal(ne_heartbeat_timeout_ms(6 * GiB + 1, 100 * GiB), 270000);
	assert_int_equal(ne_heartbeat_timeout_ms(6 * GiB, 100 * GiB + 1), 270000);
	assert_int_equal(ne_heartbeat_timeout_ms(6 * GiB + 1, 100 * GiB + 1), 360000);
}

static void test_heartbeat_timeout_never_zero_and_never_wraps(void **state)
{
	(void)state;
	/* 0 would switch the heartbeat off in the monitor: a zero input counts as one unit. */
	assert_int_equal(ne_heartbeat_timeout_ms(0, 0), 180000);
	assert_int_equal(ne_heartbeat_timeout_ms(0, 64 * MiB), 180000);
	assert_int_equal(ne_heartbeat_timeout_ms(31 * MiB, 0), 180000);
	/* The largest sum that fits a poll() timeout is exact; past it, INT_MAX, not a wrap. With
	 * memory at 1 unit, INT_MAX / 90000 = 23860 units leaves 23859 for the EIF. */
	assert_int_equal(ne_heartbeat_timeout_ms(23859 * 6 * GiB, 1), 23860ULL * 90000);
	assert_true(23860ULL * 90000 <= INT_MAX && 23861ULL * 90000 > INT_MAX);
	assert_int_equal(ne_heartbeat_timeout_ms(23860 * 6 * GiB, 1), INT_MAX);
	assert_int_equal(ne_heartbeat_timeout_ms(UINT64_MAX, 1), INT_MAX);
	assert_int_equal(ne_heartbeat_timeout_ms(1, UINT64_MAX), INT_MAX);
	assert_int_equal(ne_heartbeat_timeout_ms(UINT64_MAX, UINT64_MAX), INT_MAX);
	/* where v + step - 1 would wrap to a small number */
	assert_int_equal(ne_heartbeat_timeout_ms(UINT64_MAX - 6 * GiB + 2, 1), INT_MAX);
}

/* ---- ne_launch_prepare: run-enclave's sequence ---- */

static struct ne_launch_req launch_req(struct fixture *f, struct fake_mapper *fm,
                                       struct ne_mem_mapper *mp)
{
	struct ne_launch_req q = { 0 };

	mp->map = fm_map;
	mp->unmap = fm_unmap;
	mp->opaque = fm;
	q.memory_mib = 128;
	q.cpu_count = 2;
	q.name = "hello";
	q.host_ops = &f->ops;
	q.mapper = mp;
	return q;
}

static size_t live_grants(struct fixture *f)
{
	struct pool_grant *gl;
	size_t n;

	assert_int_equal(pool_grants_list(f->pool, &gl, &n, NULL, NULL), POOL_OK);
	free(gl);
	return n;
}

static void test_launch_runs_the_whole_sequence(void **state)
{
	struct fixture *f = *state;
	struct fake_mapper fm = { .avail = { [LG_2M] = 512 }, .real = true };
	struct ne_mem_mapper mp;
	struct ne_launch_req q = launch_req(f, &fm, &mp);
	static uint8_t image[3 * 1024 * 1024];
	struct ne_launch l, l2, l3;
	struct cl_diag d = { "" };
	struct pool_grant g;

	for (size_t i = 0; i < sizeof(image); i++)
		image[i] = (uint8_t)(i * 7 + 1);
	q.image = image;
	q.image_size = sizeof(image);
	q.debug_mode = true;
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l, &d), 0);
	assert_int_equal(l.ncpus, 2);
	assert_int_equal(l.cpu_ids[0], 2);
	assert_int_equal(l.cpu_ids[1], 6);
	assert_true(l.cid == 16);
	assert_true(l.memory_mib == 128);
	assert_string_equal(l.name, "hello");
	assert_non_null(strstr(l.enclave_id, "-enc"));
	/* The EIF sits at 8 MiB: the start of the fifth 2 MiB region, and continues. */
	assert_memory_equal(l.mem.regions[4].addr, image, 2 * MiB);
	assert_memory_equal(l.mem.regions[5].addr, image + 2 * MiB, MiB);
	assert_int_equal(ne_slot_info(l.slot, &g, NULL), 0);
	assert_int_equal(g.state, POOL_GRANT_RUNNING);
	assert_true(g.flags == NE_ENCLAVE_DEBUG_MODE);

	/* A second enclave gets the other core, the next CID and a suffixed name. */
	q.image = NULL;
	q.debug_mode = false;
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l2, &d), 0);
	assert_int_equal(l2.cpu_ids[0], 3);
	assert_true(l2.cid == 17);
	assert_string_equal(l2.name, "hello_1");
	/* The pool is now full: E22, and the failed attempt holds nothing. */
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l3, &d), 22);
	assert_int_equal(live_grants(f), 2);
	ne_launch_release(&l);
	ne_launch_release(&l); /* twice is harmless */
	assert_int_equal(live_grants(f), 1);
	assert_int_equal(fm.maps - fm.unmaps, 64); /* only the second enclave's 128 MiB */
	ne_launch_release(&l2);
	assert_int_equal(live_grants(f), 0);
	assert_int_equal(fm.maps, fm.unmaps);
}

static void test_launch_precheck_codes_and_nothing_leaks(void **state)
{
	struct fixture *f = *state;
	struct fake_mapper fm = { .avail = { [LG_2M] = 40 } };
	struct ne_mem_mapper mp;
	struct ne_launch_req q = launch_req(f, &fm, &mp);
	uint32_t dup[2] = { 2, 2 }, outside[2] = { 1, 5 }, half[1] = { 3 };
	struct cl_diag d = { "" };
	struct ne_launch l;

	q.image_size = 40 * MiB; /* 128 MiB < 160 MiB */
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l, &d), 26);
	assert_non_null(strstr(d.msg, "At least 160 MB"));
	q.image_size = 0;
	q.memory_mib = 0;
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l, &d), 26);
	q.memory_mib = 64;
	q.cpu_ids = dup;
	q.ncpu_ids = 2;
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l, &d), 20);
	q.cpu_ids = outside;
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l, &d), 21);
	q.ncpu_ids = 0;
	q.cpu_count = 6;
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l, &d), 22);
	/* 128 MiB needs 64 pages; the mapper has 40: E27. */
	q.cpu_count = 2;
	q.memory_mib = 128;
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l, &d), 27);
	/* Half a core: the driver refuses at start (E33). */
	q.memory_mib = 64;
	q.cpu_ids = half;
	q.ncpu_ids = 1;
	assert_int_equal(ne_launch_prepare(f->pool, &q, &l, &d), 33);
	assert_non_null(strstr(d.msg, "NE_ERR_FULL_CORES_NOT_USED"));
	assert_int_equal(live_grants(f), 0);
	assert_int_equal(fm.maps, fm.unmaps);
}

/* ---- the real page inspection against this process's own mappings ---- */

static void test_host_page_info_sees_ordinary_memory_as_not_hugetlb(void **state)
{
	uint64_t ps = 99;
	int node = 5;
	void *p = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	assert_true(p != MAP_FAILED);
	assert_int_equal(ne_host_page_info((uintptr_t)p, 4 * MiB, &ps, &node, NULL), 0);
	assert_true(ps == 0);
	munmap(p, 4 * MiB);
	/* Now unmapped: the range is not covered. */
	assert_int_equal(ne_host_page_info((uintptr_t)p, 4 * MiB, &ps, &node, NULL), -EFAULT);
}

static void test_host_page_info_sees_hugetlb_memory_when_available(void **state)
{
	uint64_t ps = 0;
	int node = -1;
	void *p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

	(void)state;
	if (p == MAP_FAILED) {
		/* No free hugepages on this host (the usual case in CI): nothing to inspect. */
		assert_int_equal(errno, ENOMEM);
		return;
	}
	assert_int_equal(ne_host_page_info((uintptr_t)p, 2 * MiB, &ps, &node, NULL), 0);
	assert_true(ps >= 2 * MiB);
	munmap(p, 2 * MiB);
}

static void test_real_alloc_is_contiguous_and_zeroed_on_reuse_when_available(void **state)
{
	struct ne_mem m;
	uint8_t *b;
	uint64_t ps;
	int node;

	(void)state;
	if (ne_mem_alloc(NULL, 4, &m, NULL) == -ENOMEM)
		return; /* no free hugepages on this host (the usual case in CI) */
	assert_non_null(m.base);
	assert_true(m.total == 4 * MiB);
	assert_true((uintptr_t)m.base % m.regions[0].size == 0);
	for (size_t i = 1; i < m.count; i++)
		assert_true((uint8_t *)m.regions[i].addr ==
		            (uint8_t *)m.regions[i - 1].addr + m.regions[i - 1].size);
	assert_int_equal(ne_host_page_info((uintptr_t)m.base, m.total, &ps, &node, NULL), 0);
	assert_true(ps >= 2 * MiB);
	memset(m.base, 0xab, m.total);
	ne_mem_free(&m);
	assert_null(m.base);
	/* The same pages come back to the next enclave, cleared by the kernel. */
	assert_int_equal(ne_mem_alloc(NULL, 4, &m, NULL), 0);
	b = m.base;
	for (uint64_t i = 0; i < m.total; i++)
		if (b[i])
			fail_msg("byte %llu of reused hugepage memory is 0x%02x",
			         (unsigned long long)i, b[i]);
	ne_mem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_release_through_the_pinned_grant, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_create_slot_records_grant_with_enclave_id,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_slot_without_pool_says_run_allocator,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_get_suffixes_among_live_enclaves, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(
		        test_add_vcpu_auto_fills_owned_core_before_taking_next, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_vcpu_explicit_checks_in_driver_order,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(
		        test_add_vcpu_after_start_is_not_in_init_state_before_id_check, setup,
		        teardown),
		cmocka_unit_test_setup_teardown(
		        test_image_load_info_needs_eif_flag_and_returns_8_mib, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_region_checks_in_driver_order, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_memory_beyond_pool_budget_is_refused, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_start_checks_in_driver_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cids_are_unique_among_running_enclaves, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_release_returns_cores_to_pool, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_allocations_never_share_a_cpu,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigkilled_owner_resources_are_reclaimed, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_adopted_slot_belongs_to_the_adopter, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_threads_never_share_a_cpu, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_launch_runs_the_whole_sequence, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_launch_precheck_codes_and_nothing_leaks, setup,
		                                teardown),
		cmocka_unit_test(test_error_names_and_cli_codes),
		cmocka_unit_test(test_alloc_uses_largest_pages_first),
		cmocka_unit_test(test_alloc_falls_back_to_smaller_pages),
		cmocka_unit_test(test_alloc_pass2_overshoots_then_trims_unneeded_tail),
		cmocka_unit_test(test_alloc_pass2_rounds_up_to_whole_page),
		cmocka_unit_test(test_alloc_shortfall_unmaps_everything),
		cmocka_unit_test(test_mem_write_spans_regions_in_order),
		cmocka_unit_test(test_memory_request_must_be_four_times_eif),
		cmocka_unit_test(test_heartbeat_timeout_follows_nitro_cli_formula),
		cmocka_unit_test(test_heartbeat_timeout_never_zero_and_never_wraps),
		cmocka_unit_test(test_host_page_info_sees_ordinary_memory_as_not_hugetlb),
		cmocka_unit_test(test_host_page_info_sees_hugetlb_memory_when_available),
		cmocka_unit_test(test_real_alloc_is_contiguous_and_zeroed_on_reuse_when_available),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NE driver semantics over cloister's pool (nitro-compat §5, docs/resources.md). Every call
 * takes the pool lock, re-reads this slot's grant and the other grants (reclaiming dead
 * owners), applies the driver's checks in the driver's order, and writes the grant back before
 * unlocking, so concurrent run-enclave calls in different processes never see or take the same
 * core.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/ne/ne.h"
#include "lib/ne/ne_internal.h"

/* Top of the x86-64 user address space with 4-level paging (the kernel's access_ok limit for
 * most processes). */
#define NE_USER_ADDR_END 0x00007ffffffff000ULL

static const char *const err_names[] = {
	[NE_ERR_VCPU_ALREADY_USED - 256] = "NE_ERR_VCPU_ALREADY_USED",
	[NE_ERR_VCPU_NOT_IN_CPU_POOL - 256] = "NE_ERR_VCPU_NOT_IN_CPU_POOL",
	[NE_ERR_VCPU_INVALID_CPU_CORE - 256] = "NE_ERR_VCPU_INVALID_CPU_CORE",
	[NE_ERR_INVALID_MEM_REGION_SIZE - 256] = "NE_ERR_INVALID_MEM_REGION_SIZE",
	[NE_ERR_INVALID_MEM_REGION_ADDR - 256] = "NE_ERR_INVALID_MEM_REGION_ADDR",
	[NE_ERR_UNALIGNED_MEM_REGION_ADDR - 256] = "NE_ERR_UNALIGNED_MEM_REGION_ADDR",
	[NE_ERR_MEM_REGION_ALREADY_USED - 256] = "NE_ERR_MEM_REGION_ALREADY_USED",
	[NE_ERR_MEM_NOT_HUGE_PAGE - 256] = "NE_ERR_MEM_NOT_HUGE_PAGE",
	[NE_ERR_MEM_DIFFERENT_NUMA_NODE - 256] = "NE_ERR_MEM_DIFFERENT_NUMA_NODE",
	[NE_ERR_MEM_MAX_REGIONS - 256] = "NE_ERR_MEM_MAX_REGIONS",
	[NE_ERR_NO_MEM_REGIONS_ADDED - 256] = "NE_ERR_NO_MEM_REGIONS_ADDED",
	[NE_ERR_NO_VCPUS_ADDED - 256] = "NE_ERR_NO_VCPUS_ADDED",
	[NE_ERR_ENCLAVE_MEM_MIN_SIZE - 256] = "NE_ERR_ENCLAVE_MEM_MIN_SIZE",
	[NE_ERR_FULL_CORES_NOT_USED - 256] = "NE_ERR_FULL_CORES_NOT_USED",
	[NE_ERR_NOT_IN_INIT_STATE - 256] = "NE_ERR_NOT_IN_INIT_STATE",
	[NE_ERR_INVALID_VCPU - 256] = "NE_ERR_INVALID_VCPU",
	[NE_ERR_NO_CPUS_AVAIL_IN_POOL - 256] = "NE_ERR_NO_CPUS_AVAIL_IN_POOL",
	[NE_ERR_INVALID_PAGE_SIZE - 256] = "NE_ERR_INVALID_PAGE_SIZE",
	[NE_ERR_INVALID_FLAG_VALUE - 256] = "NE_ERR_INVALID_FLAG_VALUE",
	[NE_ERR_INVALID_ENCLAVE_CID - 256] = "NE_ERR_INVALID_ENCLAVE_CID",
};

static const char *const err_text[] = {
	[NE_ERR_VCPU_ALREADY_USED - 256] = "The provided vCPU is already used by this enclave",
	[NE_ERR_VCPU_NOT_IN_CPU_POOL -
	        256] = "The provided vCPU is not available in the enclave CPU pool",
	[NE_ERR_VCPU_INVALID_CPU_CORE - 256] = "The core id of the provided vCPU is invalid",
	[NE_ERR_INVALID_MEM_REGION_SIZE -
	        256] = "The memory region size is not a multiple of 2 MiB",
	[NE_ERR_INVALID_MEM_REGION_ADDR - 256] = "The memory region address is invalid",
	[NE_ERR_UNALIGNED_MEM_REGION_ADDR -
	        256] = "The memory region address is not aligned to 2 MiB",
	[NE_ERR_MEM_REGION_ALREADY_USED -
	        256] = "The memory region overlaps one already added to the enclave",
	[NE_ERR_MEM_NOT_HUGE_PAGE - 256] = "The memory region is not backed by hugetlb pages",
	[NE_ERR_MEM_DIFFERENT_NUMA_NODE -
	        256] = "The memory region is on a different NUMA node than the enclave CPUs",
	[NE_ERR_MEM_MAX_REGIONS - 256] = "The enclave has the maximum number of memory regions",
	[NE_ERR_NO_MEM_REGIONS_ADDED - 256] = "No memory regions were added to the enclave",
	[NE_ERR_NO_VCPUS_ADDED - 256] = "No vCPUs were added to the enclave",
	[NE_ERR_ENCLAVE_MEM_MIN_SIZE - 256] = "The enclave memory is below the 64 MiB minimum",
	[NE_ERR_FULL_CORES_NOT_USED -
	        256] = "The enclave does not use every thread of its CPU cores",
	[NE_ERR_NOT_IN_INIT_STATE - 256] = "The enclave is not in its init state",
	[NE_ERR_INVALID_VCPU - 256] = "The provided vCPU id is beyond the host's CPUs",
	[NE_ERR_NO_CPUS_AVAIL_IN_POOL - 256] = "No CPUs are available in the enclave CPU pool",
	[NE_ERR_INVALID_PAGE_SIZE - 256] = "The memory page size is not a multiple of 2 MiB",
	[NE_ERR_INVALID_FLAG_VALUE - 256] = "The provided flag value is invalid",
	[NE_ERR_INVALID_ENCLAVE_CID - 256] = "The provided enclave CID is invalid",
};

const char *ne_err_name(int err)
{
	if (err == 0)
		return "NE_OK";
	if (err >= 256 && err <= 275)
		return err_names[err - 256];
	switch (-err) {
	case EINVAL:
		return "EINVAL";
	case ENOMEM:
		return "ENOMEM";
	case EIO:
		return "EIO";
	case EPERM:
		return "EPERM";
	case EFAULT:
		return "EFAULT";
	case EADDRINUSE:
		return "EADDRINUSE";
	case ERANGE:
		return "ERANGE";
	}
	return "E?";
}

const char *ne_strerror(int err)
{
	if (err == 0)
		return "Success";
	if (err >= 256 && err <= 275)
		return err_text[err - 256];
	if (err < 0)
		return strerror(-err);
	return "Unknown NE error";
}

int ne_err_to_cli(enum ne_op op, int err)
{
	switch (err) {
	case NE_ERR_VCPU_ALREADY_USED:
		return 20; /* E20 invalid CPU configuration (duplicate) */
	case NE_ERR_VCPU_NOT_IN_CPU_POOL:
	case NE_ERR_INVALID_VCPU:
		return 21; /* E21 CPU not in pool */
	case NE_ERR_NO_CPUS_AVAIL_IN_POOL:
		return 22; /* E22 insufficient CPUs */
	}
	switch (op) {
	case NE_OP_CREATE_SLOT:
		return 29;
	case NE_OP_ADD_VCPU:
		return 32;
	case NE_OP_GET_IMAGE_LOAD_INFO:
		return 30;
	case NE_OP_SET_USER_MEMORY_REGION:
		return err == -ENOMEM ? 27 : 31;
	case NE_OP_START:
		return 33;
	case NE_OP_MEM_CHECK:
		return 26;
	case NE_OP_MEM_ALLOC:
		return err == -ENOMEM ? 27 : 42;
	}
	return 29;
}

/* ---- slot handle --------------------------------------------------------------------------- */

static int lock_and_load(struct ne_slot *s, struct pool_grant *g, struct cl_diag *d)
{
	int rc;

	if (pool_lock(s->pool, d))
		return -EIO;
	rc = pool_grant_read(s->pool, s->slot_uid, g, d);
	if (rc) {
		pool_unlock(s->pool);
		return -EIO;
	}
	if (g->owner_pid != getpid()) {
		pool_unlock(s->pool);
		cl_diag_set(d,
		            "enclave slot %" PRIx64 " belongs to process %ld, not this one (%ld)",
		            s->slot_uid, (long)g->owner_pid, (long)getpid());
		return -EIO;
	}
	return 0;
}

static int store_and_unlock(struct ne_slot *s, const struct pool_grant *g, struct cl_diag *d)
{
	int rc = pool_grant_write(s->pool, g, d);

	pool_unlock(s->pool);
	return rc ? -EIO : 0;
}

/* Pool CPUs no other live enclave holds. Caller holds the lock. */
static int free_pool_cpus(struct ne_slot *s, struct cpuset *free_cpus, struct pool_grant **gl,
                          size_t *gn, struct cl_diag *d)
{
	int rc = pool_grants_list(s->pool, gl, gn, NULL, d);

	if (rc)
		return rc == POOL_ERR_NOMEM ? -ENOMEM : -EIO;
	*free_cpus = s->rec.cpus;
	for (size_t i = 0; i < *gn; i++)
		if ((*gl)[i].slot_uid != s->slot_uid)
			cpuset_andnot(free_cpus, &(*gl)[i].cores);
	return 0;
}

static int slot_new(struct pool *p, uint64_t slot_uid, struct ne_slot **out, struct cl_diag *d)
{
	struct ne_slot *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		cl_diag_set(d, "out of memory");
		return -ENOMEM;
	}
	s->pool = p;
	s->slot_uid = slot_uid;
	s->grant_fd = -1;
	rc = pool_record_read(p, &s->rec, d);
	if (rc) {
		free(s);
		return rc == POOL_ERR_NO_POOL ? NE_ERR_NO_CPUS_AVAIL_IN_POOL : -EIO;
	}
	rc = pool_topology_read(pool_sysroot(p), &s->topo, d);
	if (rc) {
		free(s);
		return rc == POOL_ERR_NOMEM ? -ENOMEM : -EIO;
	}
	*out = s;
	return 0;
}

int ne_create_slot(struct pool *p, struct ne_slot **out, struct cl_diag *d)
{
	struct pool_grant g = { 0 }, *gl = NULL;
	struct ne_slot *s = NULL;
	struct cpuset free_cpus;
	size_t gn = 0;
	int rc;

	*out = NULL;
	if (pool_lock(p, d))
		return -EIO;
	rc = slot_new(p, 0, &s, d);
	if (rc)
		goto out;
	rc = free_pool_cpus(s, &free_cpus, &gl, &gn, d);
	if (rc)
		goto out;
	if (!cpuset_count(&free_cpus)) {
		char list[256];

		pool_cpulist_format(&s->rec.cpus, list, sizeof(list));
		cl_diag_set(d,
		            "all %u CPUs of the enclave pool (%s) are used by %zu running "
		            "enclave(s); terminate one, or add cores to cpu_pool in "
		            "/etc/cloister/allocator.yaml and rerun `cloister allocator`",
		            cpuset_count(&s->rec.cpus), list, gn);
		rc = NE_ERR_NO_CPUS_AVAIL_IN_POOL;
		goto out;
	}
	/* A random, unused slot uid (the device hands out opaque 64-bit ids; cloister keeps the
	 * top bit clear so the id survives signed parsing). */
	for (int tries = 0;; tries++) {
		uint64_t v;
		bool used = false;

		if (tries == 64 || getrandom(&v, sizeof(v), 0) != sizeof(v)) {
			cl_diag_set(d, "cannot generate a slot id: %s", strerror(errno));
			rc = -EIO;
			goto out;
		}
		v &= 0x7fffffffffffffffULL;
		for (size_t i = 0; i < gn; i++)
			used |= gl[i].slot_uid == v;
		if (v && !used && pool_grant_read(p, v, &g, NULL) == POOL_ERR_NOT_FOUND) {
			s->slot_uid = v;
			break;
		}
	}
	memset(&g, 0, sizeof(g));
	g.slot_uid = s->slot_uid;
	pool_enclave_id(pool_sysroot(p), g.slot_uid, g.enclave_id);
	g.state = POOL_GRANT_INIT;
	g.owner_pid = getpid();
	g.owner_uid = getuid();
	if (pool_process_start_time(g.owner_pid, &g.owner_start)) {
		cl_diag_set(d, "cannot read this process's start time from /proc");
		rc = -EIO;
		goto out;
	}
	if (pool_grant_write(p, &g, d)) {
		rc = -EIO;
		goto out;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	pool_unlock(p);
	free(gl);
	if (s) {
		pool_topology_free(s->topo);
		free(s);
	}
	return rc;
}

int ne_slot_adopt(struct pool *p, uint64_t slot_uid, struct ne_slot **out, struct cl_diag *d)
{
	struct ne_slot *s = NULL;
	struct pool_grant g;
	int rc;

	*out = NULL;
	if (pool_lock(p, d))
		return -EIO;
	rc = pool_grant_read(p, slot_uid, &g, d);
	if (rc) {
		rc = -EIO;
		goto out;
	}
	if (getuid() != 0 && getuid() != g.owner_uid) {
		cl_diag_set(
		        d, "enclave %s belongs to uid %lu; only that user or root may take it over",
		        g.enclave_id, (unsigned long)g.owner_uid);
		rc = -EPERM;
		goto out;
	}
	rc = slot_new(p, slot_uid, &s, d);
	if (rc)
		goto out;
	g.owner_pid = getpid();
	if (pool_process_start_time(g.owner_pid, &g.owner_start) || pool_grant_write(p, &g, d)) {
		rc = -EIO;
		goto out;
	}
	*out = s;
	s = NULL;
out:
	pool_unlock(p);
	if (s) {
		pool_topology_free(s->topo);
		free(s);
	}
	return rc;
}

void ne_slot_set_host_ops(struct ne_slot *s, const struct ne_host_ops *ops)
{
	if (ops)
		s->ops = *ops;
	else
		memset(&s->ops, 0, sizeof(s->ops));
}

uint64_t ne_slot_uid(const struct ne_slot *s)
{
	return s->slot_uid;
}

int ne_slot_info(struct ne_slot *s, struct pool_grant *g, struct cl_diag *d)
{
	return pool_grant_read(s->pool, s->slot_uid, g, d) ? -EIO : 0;
}

int ne_set_name(struct ne_slot *s, const char *requested, char *out, struct cl_diag *d)
{
	struct pool_grant g, *gl = NULL;
	char name[POOL_NAME_MAX];
	size_t gn = 0;
	int rc;

	rc = lock_and_load(s, &g, d);
	if (rc)
		return rc;
	if (pool_grants_list(s->pool, &gl, &gn, NULL, d)) {
		pool_unlock(s->pool);
		return -EIO;
	}
	rc = pool_name_pick(gl, gn, s->slot_uid, requested, name, d);
	free(gl);
	if (rc) {
		pool_unlock(s->pool);
		return -EINVAL;
	}
	memcpy(g.name, name, sizeof(g.name));
	rc = store_and_unlock(s, &g, d);
	if (!rc && out)
		memcpy(out, name, POOL_NAME_MAX);
	return rc;
}

int ne_add_vcpu(struct ne_slot *s, uint32_t *vcpu_id, struct cl_diag *d)
{
	struct pool_grant g, *gl = NULL;
	struct cpuset free_cpus, unused;
	uint32_t id = *vcpu_id;
	size_t gn = 0;
	int rc;

	rc = lock_and_load(s, &g, d);
	if (rc)
		return rc;
	if (g.state != POOL_GRANT_INIT) {
		cl_diag_set(d,
		            "enclave %s is already running; vCPUs can only be added before start",
		            g.enclave_id);
		rc = NE_ERR_NOT_IN_INIT_STATE;
		goto fail;
	}
	if (id >= s->topo->nr_cpus) {
		cl_diag_set(d, "vCPU %u does not exist: this host has CPUs 0-%u", id,
		            s->topo->nr_cpus - 1);
		rc = NE_ERR_INVALID_VCPU;
		goto fail;
	}
	rc = free_pool_cpus(s, &free_cpus, &gl, &gn, d);
	if (rc)
		goto fail;

	if (id == 0) {
		/* First an unused thread of a core the enclave already owns ... */
		unused = g.cores;
		cpuset_andnot(&unused, &g.vcpus);
		int cpu = cpuset_next(&unused, -1);

		if (cpu < 0) {
			/* ... else the first free pool core, which moves to the enclave whole. */
			cpuset_andnot(&free_cpus, &g.cores);
			cpu = cpuset_next(&free_cpus, -1);
			if (cpu < 0) {
				char list[256];

				pool_cpulist_format(&s->rec.cpus, list, sizeof(list));
				cl_diag_set(d,
				            "no free CPU left in the enclave pool (%s): the "
				            "other %zu enclave(s) hold the rest; ask for fewer "
				            "CPUs or terminate an enclave",
				            list, gn > 0 ? gn - 1 : 0);
				rc = NE_ERR_NO_CPUS_AVAIL_IN_POOL;
				goto fail;
			}
			cpuset_or(&g.cores, &s->topo->cpu[cpu].siblings);
		}
		id = (uint32_t)cpu;
	} else {
		if (cpuset_has(&g.vcpus, id)) {
			cl_diag_set(d,
			            "vCPU %u is already added to this enclave; each CPU id may "
			            "appear once",
			            id);
			rc = NE_ERR_VCPU_ALREADY_USED;
			goto fail;
		}
		if (!cpuset_has(&g.cores, id)) {
			if (!cpuset_has(&free_cpus, id)) {
				char list[256];

				pool_cpulist_format(&s->rec.cpus, list, sizeof(list));
				cl_diag_set(d, "CPU %u is %s (pool: %s)", id,
				            cpuset_has(&s->rec.cpus, id)
				                    ? "used by another enclave"
				                    : "not in the enclave CPU pool",
				            list);
				rc = NE_ERR_VCPU_NOT_IN_CPU_POOL;
				goto fail;
			}
			if (!s->topo->cpu[id].known) {
				cl_diag_set(d, "CPU %u has no readable core topology", id);
				rc = NE_ERR_VCPU_INVALID_CPU_CORE;
				goto fail;
			}
			cpuset_or(&g.cores, &s->topo->cpu[id].siblings);
		}
	}
	cpuset_add(&g.vcpus, id);
	free(gl);
	rc = store_and_unlock(s, &g, d);
	if (!rc)
		*vcpu_id = id;
	return rc;
fail:
	free(gl);
	pool_unlock(s->pool);
	return rc;
}

int ne_get_image_load_info(struct ne_slot *s, uint64_t flags, uint64_t *offset, struct cl_diag *d)
{
	struct pool_grant g;
	int rc = lock_and_load(s, &g, d);

	if (rc)
		return rc;
	pool_unlock(s->pool);
	if (g.state != POOL_GRANT_INIT) {
		cl_diag_set(d, "enclave %s is already running", g.enclave_id);
		return NE_ERR_NOT_IN_INIT_STATE;
	}
	if (flags == 0 || flags >= NE_IMAGE_LOAD_MAX_FLAG_VAL) {
		cl_diag_set(d, "image load flags 0x%" PRIx64 " are invalid; use NE_EIF_IMAGE (0x1)",
		            flags);
		return NE_ERR_INVALID_FLAG_VALUE;
	}
	*offset = NE_EIF_LOAD_OFFSET;
	return 0;
}

int ne_memory_budget_check(struct ne_slot *s, uint64_t self_mib, struct cl_diag *d)
{
	struct pool_grant *gl = NULL;
	uint64_t used = 0;
	size_t gn = 0;

	if (pool_grants_list(s->pool, &gl, &gn, NULL, d))
		return -EIO;
	for (size_t i = 0; i < gn; i++)
		if (gl[i].slot_uid != s->slot_uid)
			used += gl[i].memory_mib;
	free(gl);
	if (used > s->rec.memory_mib || self_mib > s->rec.memory_mib - used) {
		uint64_t avail = used > s->rec.memory_mib ? 0 : s->rec.memory_mib - used;

		cl_diag_set(d,
		            "the enclave pool has %" PRIu64 " MiB of its %" PRIu64
		            " MiB free (other enclaves hold %" PRIu64 " MiB) but %" PRIu64
		            " MiB are needed; terminate an enclave, or raise memory_mib in "
		            "/etc/cloister/allocator.yaml and rerun `cloister allocator`",
		            avail, s->rec.memory_mib, used, self_mib);
		return -ENOMEM;
	}
	return 0;
}

int ne_set_user_memory_region(struct ne_slot *s, uint64_t flags, uint64_t size, uint64_t addr,
                              struct cl_diag *d)
{
	struct pool_grant g;
	uint64_t page_size = 0, end, total_mib;
	int node = -1, rc;

	if (flags >= NE_MEMORY_REGION_MAX_FLAG_VAL) {
		cl_diag_set(d, "memory region flags 0x%" PRIx64 " are invalid; use 0", flags);
		return NE_ERR_INVALID_FLAG_VALUE;
	}
	rc = lock_and_load(s, &g, d);
	if (rc)
		return rc;
	if (g.state != POOL_GRANT_INIT) {
		cl_diag_set(d,
		            "enclave %s is already running; memory can only be added before start",
		            g.enclave_id);
		rc = NE_ERR_NOT_IN_INIT_STATE;
		goto out;
	}
	if (size == 0 || size % NE_MIN_MEM_REGION_SIZE) {
		cl_diag_set(d,
		            "memory region size %" PRIu64 " bytes is not a non-zero multiple of "
		            "2 MiB",
		            size);
		rc = NE_ERR_INVALID_MEM_REGION_SIZE;
		goto out;
	}
	if (addr % NE_MIN_MEM_REGION_SIZE) {
		cl_diag_set(d, "memory region address 0x%" PRIx64 " is not 2 MiB aligned", addr);
		rc = NE_ERR_UNALIGNED_MEM_REGION_ADDR;
		goto out;
	}
	if (__builtin_add_overflow(addr, size, &end) || end > NE_USER_ADDR_END || addr == 0) {
		cl_diag_set(d, "memory region 0x%" PRIx64 " + 0x%" PRIx64 " is outside user space",
		            addr, size);
		rc = NE_ERR_INVALID_MEM_REGION_ADDR;
		goto out;
	}
	for (size_t i = 0; i < s->nregions; i++) {
		if (addr < s->regions[i].addr + s->regions[i].size && s->regions[i].addr < end) {
			cl_diag_set(d,
			            "memory region 0x%" PRIx64 "-0x%" PRIx64 " overlaps region %zu "
			            "(0x%" PRIx64 "-0x%" PRIx64 ") already added",
			            addr, end, i, s->regions[i].addr,
			            s->regions[i].addr + s->regions[i].size);
			rc = NE_ERR_MEM_REGION_ALREADY_USED;
			goto out;
		}
	}
	rc = s->ops.page_info ? s->ops.page_info(addr, size, &page_size, &node, s->ops.opaque)
	                      : ne_host_page_info(addr, size, &page_size, &node, NULL);
	if (rc) {
		cl_diag_set(d, "memory region 0x%" PRIx64 " + 0x%" PRIx64 " is not (fully) mapped",
		            addr, size);
		goto out;
	}
	if (!page_size) {
		cl_diag_set(d,
		            "memory region 0x%" PRIx64 " is not hugetlb memory; map it with "
		            "MAP_HUGETLB (ne_mem_alloc does)",
		            addr);
		rc = NE_ERR_MEM_NOT_HUGE_PAGE;
		goto out;
	}
	if (page_size % NE_MIN_MEM_REGION_SIZE) {
		cl_diag_set(d,
		            "memory region 0x%" PRIx64 " uses %" PRIu64 " kB pages, not a multiple "
		            "of 2 MiB",
		            addr, page_size >> 10);
		rc = NE_ERR_INVALID_PAGE_SIZE;
		goto out;
	}
	if (node >= 0 && node != s->rec.node) {
		cl_diag_set(d,
		            "memory region 0x%" PRIx64
		            " is on NUMA node %d but the enclave pool is "
		            "on node %d; reserve hugepages on node %d",
		            addr, node, s->rec.node, s->rec.node);
		rc = NE_ERR_MEM_DIFFERENT_NUMA_NODE;
		goto out;
	}
	if (s->nregions >= NE_MAX_MEM_REGIONS) {
		cl_diag_set(d, "the enclave already has %d memory regions; use larger pages",
		            NE_MAX_MEM_REGIONS);
		rc = NE_ERR_MEM_MAX_REGIONS;
		goto out;
	}
	total_mib = (s->mem_total + size) >> 20;
	if (total_mib > g.memory_mib) {
		rc = ne_memory_budget_check(s, total_mib, d);
		if (rc)
			goto out;
		g.memory_mib = total_mib;
	}
	s->regions[s->nregions].addr = addr;
	s->regions[s->nregions].size = size;
	s->nregions++;
	s->mem_total += size;
	return store_and_unlock(s, &g, d);
out:
	pool_unlock(s->pool);
	return rc;
}

int ne_start(struct ne_slot *s, uint64_t flags, uint64_t *cid, struct cl_diag *d)
{
	struct pool_grant g, *gl = NULL;
	size_t gn = 0;
	uint64_t chosen;
	int rc;

	if (flags >= NE_ENCLAVE_START_MAX_FLAG_VAL) {
		cl_diag_set(d,
		            "start flags 0x%" PRIx64 " are invalid; use 0 or NE_ENCLAVE_DEBUG_MODE",
		            flags);
		return NE_ERR_INVALID_FLAG_VALUE;
	}
	if (*cid != 0 && pool_cid_reserved(*cid)) {
		cl_diag_set(d,
		            "enclave CID %" PRIu64 " is reserved (0-3 and 4294967295 and above "
		            "cannot be used); pick 4-4294967294 or 0 for automatic",
		            *cid);
		return NE_ERR_INVALID_ENCLAVE_CID;
	}
	rc = lock_and_load(s, &g, d);
	if (rc)
		return rc;
	if (g.state != POOL_GRANT_INIT) {
		cl_diag_set(d, "enclave %s is already running", g.enclave_id);
		rc = NE_ERR_NOT_IN_INIT_STATE;
		goto out;
	}
	if (!s->nregions) {
		cl_diag_set(d, "no memory regions were added to enclave %s", g.enclave_id);
		rc = NE_ERR_NO_MEM_REGIONS_ADDED;
		goto out;
	}
	if (s->mem_total < NE_MIN_ENCLAVE_MEM_SIZE) {
		cl_diag_set(d, "enclave memory is %" PRIu64 " MiB, below the 64 MiB minimum",
		            s->mem_total >> 20);
		rc = NE_ERR_ENCLAVE_MEM_MIN_SIZE;
		goto out;
	}
	if (!cpuset_count(&g.vcpus)) {
		cl_diag_set(d, "no vCPUs were added to enclave %s", g.enclave_id);
		rc = NE_ERR_NO_VCPUS_ADDED;
		goto out;
	}
	if (!cpuset_equal(&g.vcpus, &g.cores)) {
		struct cpuset missing = g.cores;
		char list[256];

		cpuset_andnot(&missing, &g.vcpus);
		pool_cpulist_format(&missing, list, sizeof(list));
		cl_diag_set(d,
		            "the enclave owns whole cores but CPUs %s were not added; add them "
		            "(CPU counts must be a multiple of %u)",
		            list, s->rec.threads_per_core);
		rc = NE_ERR_FULL_CORES_NOT_USED;
		goto out;
	}
	if (pool_grants_list(s->pool, &gl, &gn, NULL, d)) {
		rc = -EIO;
		goto out;
	}
	rc = pool_cid_pick(gl, gn, s->slot_uid, *cid, &chosen, d);
	free(gl);
	if (rc) {
		rc = -EADDRINUSE;
		goto out;
	}
	g.cid = chosen;
	g.flags = flags;
	g.state = POOL_GRANT_RUNNING;
	rc = store_and_unlock(s, &g, d);
	if (!rc)
		*cid = chosen;
	return rc;
out:
	pool_unlock(s->pool);
	return rc;
}

void ne_slot_forget(struct ne_slot *s)
{
	if (!s)
		return;
	if (s->grant_fd >= 0)
		close(s->grant_fd);
	pool_topology_free(s->topo);
	free(s);
}

int ne_release_prepare(struct ne_slot *s, struct cl_diag *d)
{
	if (s->grant_fd >= 0)
		return 0;
	return pool_grant_open(s->pool, s->slot_uid, &s->grant_fd, d) ? -EIO : 0;
}

void ne_release(struct ne_slot *s)
{
	struct pool_grant g;
	int rc;

	if (!s)
		return;
	if (pool_lock(s->pool, NULL) == POOL_OK) {
		/* Pinned (the enclave process, which may not open files by now): the fd shows
		 * whether the slot's grant is still the file this process last wrote. */
		if (s->grant_fd >= 0)
			rc = pool_grant_read_fd(s->grant_fd, &g, NULL);
		else
			rc = pool_grant_read(s->pool, s->slot_uid, &g, NULL);
		if (rc == POOL_OK && g.owner_pid == getpid())
			pool_grant_remove(s->pool, s->slot_uid, NULL);
		pool_unlock(s->pool);
	}
	ne_slot_forget(s);
}

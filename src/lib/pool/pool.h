/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_POOL_H
#define CLOISTER_POOL_H

/*
 * The enclave resource pool: the host CPUs and hugepage memory set aside for enclaves, and who
 * holds which part of it (docs/resources.md).
 *
 * On Nitro hardware the NE driver owns this: `ne_cpus` takes whole cores out of the parent VM and
 * the hypervisor hands them to enclaves. cloister runs enclaves as KVM VMs on the same host, so
 * there is nobody to give offlined CPUs to; the pool is instead a reservation that cloister
 * enforces among its own enclaves: each enclave's grant (cores, memory, CID, name) is a file in a
 * state directory, every change happens under one flock'd lock file, and a grant whose owner
 * process has died is reclaimed by the next caller. Non-cloister processes are not kept off the
 * pool CPUs (use isolcpus= or cgroup cpusets for that; docs/resources.md says how).
 *
 * Everything here takes explicit paths (a state directory and a sysfs root prefix) so the unit
 * tests run against fake trees in a temporary directory.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cloister/diag.h"

/* Highest CPU number + 1 that cloister handles; the cpulist parser refuses anything beyond. */
#define POOL_MAX_CPUS 1024
/* Longest cpulist text accepted (the NE driver's ne_cpus parameter takes at most 512). */
#define POOL_CPULIST_MAX 4096

enum pool_err {
	POOL_OK = 0,
	POOL_ERR_CPULIST, /* malformed cpulist text */
	POOL_ERR_CPU_RANGE, /* CPU number out of range or not present on this host */
	POOL_ERR_SYSFS, /* CPU / NUMA topology could not be read */
	POOL_ERR_CONFIG, /* allocator.yaml malformed */
	POOL_ERR_POOL_EMPTY, /* the CPU pool is empty */
	POOL_ERR_CPU_OFFLINE, /* a pool CPU is offline */
	POOL_ERR_NUMA, /* pool CPUs span NUMA nodes, or the node does not exist */
	POOL_ERR_CPU0, /* CPU 0 or one of its siblings is in the pool */
	POOL_ERR_PARTIAL_CORE, /* a core's hyper-thread siblings are not all in the pool */
	POOL_ERR_CPU_COUNT, /* cpu_count unusable: not whole cores or not enough cores */
	POOL_ERR_HUGEPAGES, /* hugepages could not be reserved (shortfall; rolled back) */
	POOL_ERR_IO, /* a state or sysfs file could not be read or written */
	POOL_ERR_LOCK, /* the pool lock could not be taken */
	POOL_ERR_NO_POOL, /* no pool configured (`cloister allocator` never ran) */
	POOL_ERR_STATE, /* a state file is malformed */
	POOL_ERR_BUSY, /* enclaves are running (pool cannot be reconfigured) */
	POOL_ERR_CID, /* CID invalid or in use */
	POOL_ERR_NAME, /* enclave name invalid */
	POOL_ERR_NOT_FOUND, /* no such grant */
	POOL_ERR_NOMEM, /* out of memory */
};

/* A short description of @err ("CPU pool spans NUMA nodes"). */
const char *pool_strerror(int err);

/* ---- CPU sets ---------------------------------------------------------------------------- */

struct cpuset {
	uint64_t bits[POOL_MAX_CPUS / 64];
};

static inline void cpuset_zero(struct cpuset *s)
{
	for (size_t i = 0; i < POOL_MAX_CPUS / 64; i++)
		s->bits[i] = 0;
}

static inline void cpuset_add(struct cpuset *s, unsigned cpu)
{
	if (cpu < POOL_MAX_CPUS)
		s->bits[cpu / 64] |= 1ULL << (cpu % 64);
}

static inline void cpuset_del(struct cpuset *s, unsigned cpu)
{
	if (cpu < POOL_MAX_CPUS)
		s->bits[cpu / 64] &= ~(1ULL << (cpu % 64));
}

static inline bool cpuset_has(const struct cpuset *s, unsigned cpu)
{
	return cpu < POOL_MAX_CPUS && (s->bits[cpu / 64] >> (cpu % 64) & 1);
}

/* Number of CPUs in @s. */
unsigned cpuset_count(const struct cpuset *s);
/* The lowest CPU in @s greater than @after (pass -1 to start), or -1 when there is none. */
int cpuset_next(const struct cpuset *s, int after);
/* True when every CPU of @a is in @b. */
bool cpuset_subset(const struct cpuset *a, const struct cpuset *b);
/* True when @a and @b share a CPU. */
bool cpuset_intersects(const struct cpuset *a, const struct cpuset *b);
/* @dst |= @src. */
void cpuset_or(struct cpuset *dst, const struct cpuset *src);
/* @dst &= ~@src. */
void cpuset_andnot(struct cpuset *dst, const struct cpuset *src);
bool cpuset_equal(const struct cpuset *a, const struct cpuset *b);

#define cpuset_foreach(cpu, set) \
	for (int cpu = cpuset_next(set, -1); cpu >= 0; cpu = cpuset_next(set, cpu))

/*
 * Parse Linux cpulist text ("2,3,6-9"; the format of sysfs cpulist files, ne_cpus and nitro-cli's
 * cpu_pool) from @len bytes at @s (need not be NUL-terminated). Whitespace anywhere is ignored,
 * as nitro-cli does; a trailing newline is fine. An empty list is valid (an empty set). Numbers
 * must be below POOL_MAX_CPUS, ranges must not be reversed, and the text must not be longer than
 * POOL_CPULIST_MAX. Returns POOL_OK or POOL_ERR_CPULIST / POOL_ERR_CPU_RANGE with @d naming the
 * offending token.
 */
int pool_cpulist_parse(const char *s, size_t len, struct cpuset *out, struct cl_diag *d);

/* Format @s as canonical cpulist text ("2-3,6") into @buf (NUL-terminated). Returns POOL_OK, or
 * POOL_ERR_NOMEM when @len is too small (buf then holds a truncated, NUL-terminated prefix). */
int pool_cpulist_format(const struct cpuset *s, char *buf, size_t len);

/* ---- topology ---------------------------------------------------------------------------- */

struct pool_cpu {
	bool present;
	bool online;
	bool known; /* topology (core, siblings) could be read */
	int node; /* NUMA node, 0 on hosts without NUMA information */
	int core_id; /* topology/core_id (repeats across packages) */
	struct cpuset siblings; /* thread_siblings_list, always contains the CPU itself */
};

struct pool_topology {
	unsigned nr_cpus; /* highest present CPU + 1 */
	unsigned nr_nodes; /* highest node + 1 */
	struct pool_cpu cpu[POOL_MAX_CPUS];
};

/*
 * Read the CPU topology from <sysroot>/sys/devices/system/{cpu,node} (@sysroot "" or NULL for
 * the real /sys). Present CPUs come from cpu/present; a CPU without an `online` file counts as
 * online (CPU 0 usually has none). On success *out is a heap object the caller frees with
 * pool_topology_free(). Returns POOL_OK, POOL_ERR_SYSFS or POOL_ERR_NOMEM.
 */
int pool_topology_read(const char *sysroot, struct pool_topology **out, struct cl_diag *d);
void pool_topology_free(struct pool_topology *t);

/*
 * Validate a CPU pool the way the NE driver validates ne_cpus (nitro-compat §5.2), in its order:
 * non-empty, every CPU present and online, all on one NUMA node, neither CPU 0 nor any sibling of
 * CPU 0, and whole cores (every sibling of every CPU is in the pool). On success stores the node
 * in *node and the threads per core in *threads_per_core (either may be NULL).
 */
int pool_validate_cpus(const struct pool_topology *t, const struct cpuset *cpus, int *node,
                       unsigned *threads_per_core, struct cl_diag *d);

/*
 * Choose @count CPUs on NUMA node @node as nitro-cli's allocator does for cpu_count: @count must
 * be a multiple of the threads per core; whole online cores are taken in ascending order,
 * skipping CPU 0's core. Returns POOL_ERR_CPU_COUNT (with what is available) when the node has
 * too few cores.
 */
int pool_choose_cpus(const struct pool_topology *t, unsigned count, int node, struct cpuset *out,
                     struct cl_diag *d);

/* ---- allocator.yaml ---------------------------------------------------------------------- */

#define POOL_DEFAULT_MEMORY_MIB 512
#define POOL_DEFAULT_CPU_COUNT 2

struct pool_config {
	uint64_t memory_mib;
	bool has_cpu_pool; /* cpu_pool given (else cpu_count) */
	unsigned cpu_count; /* when !has_cpu_pool */
	struct cpuset cpu_pool; /* when has_cpu_pool */
};

/*
 * Parse allocator.yaml (nitro-compat §2.8): an optional `---` document start line, comments
 * (`#` to end of line), blank lines, and the top-level scalar keys memory_mib, cpu_count and
 * cpu_pool (a cpulist, optionally quoted). Strict: unknown keys, repeated keys, indentation,
 * both cpu_count and cpu_pool, and non-numeric values are errors naming the line. Missing keys
 * take nitro-cli's defaults (memory_mib 512, cpu_count 2). Plain byte buffer: fuzzable.
 * Returns POOL_OK, POOL_ERR_CONFIG, POOL_ERR_CPULIST or POOL_ERR_CPU_RANGE.
 */
int pool_config_parse(const char *buf, size_t len, struct pool_config *out, struct cl_diag *d);

/* ---- hugepage reservation ---------------------------------------------------------------- */

#define POOL_MAX_PAGE_SIZES 8

/* What a reservation added per page size on one node (so it can be given back exactly). */
struct pool_hugepages {
	unsigned nsizes;
	struct {
		uint64_t kib; /* page size */
		uint64_t added; /* pages cloister added to nr_hugepages */
	} size[POOL_MAX_PAGE_SIZES];
};

/* How sysfs values are written. NULL ops = a plain write(2). Tests install a writer that, like
 * the kernel when memory is short, stores a smaller value than asked. */
struct pool_sysfs_ops {
	int (*write)(const char *path, const char *value, void *opaque); /* 0 or -errno */
	void *opaque;
};

/*
 * Add hugepages worth @mib MiB on NUMA node @node through
 * <sysroot>/sys/devices/system/node/node<N>/hugepages/hugepages-<K>kB/nr_hugepages, largest page
 * size first (the request is rounded up to the smallest size), reading back what the kernel
 * actually allocated; when short, once more after asking the kernel to compact the node's
 * memory (<sysroot>/sys/devices/system/node/node<N>/compact, else
 * <sysroot>/proc/sys/vm/compact_memory). On a shortfall every size is restored to its previous
 * count and POOL_ERR_HUGEPAGES is returned with @d saying how much was short and how to fix it.
 * On success *res records what was added. Needs root on a real host.
 */
int pool_hugepages_reserve(const char *sysroot, int node, uint64_t mib,
                           const struct pool_sysfs_ops *ops, struct pool_hugepages *res,
                           struct cl_diag *d);

/* Give back what pool_hugepages_reserve() added (nr_hugepages -= added, never below 0). */
int pool_hugepages_release(const char *sysroot, int node, const struct pool_hugepages *res,
                           const struct pool_sysfs_ops *ops, struct cl_diag *d);

/* ---- state directory, lock, pool record, grants ------------------------------------------ */

/* The state directory: $NITRO_CLI_SOCKETS_PATH if set and non-empty, else /run/cloister. */
const char *pool_default_state_dir(void);
/* The sysfs root prefix: $CLOISTER_SYSFS_ROOT if set, else "" (the real /sys). */
const char *pool_default_sysroot(void);

struct pool;

/*
 * Open the pool state in @state_dir (NULL: pool_default_state_dir()), creating the directory,
 * its `enclaves/` subdirectory and `pool.lock` as needed; @sysroot (NULL:
 * pool_default_sysroot()) is where topology and DMI files are read. The lock is not taken.
 * Each thread or process needs its own struct pool (the lock is per open file). Free with
 * pool_close(). Returns POOL_OK, POOL_ERR_IO or POOL_ERR_NOMEM.
 */
int pool_open(const char *state_dir, const char *sysroot, struct pool **out, struct cl_diag *d);
void pool_close(struct pool *p);
/*
 * Whether this process may create files in the state directory and its `enclaves/`
 * subdirectory, as run-enclave must (the grant, the control and vsock sockets). Checked with
 * access(2), so a read-only mount (EROFS, also for root) and missing permissions (EACCES) both
 * count. Returns POOL_OK, or POOL_ERR_IO with @d naming the directory, the reason and the fix.
 */
int pool_check_writable(const struct pool *p, struct cl_diag *d);
const char *pool_state_dir(const struct pool *p);
const char *pool_sysroot(const struct pool *p);

/* Take / drop the exclusive pool lock (flock on <state>/pool.lock; blocks until free).
 * Recursive within one struct pool. */
int pool_lock(struct pool *p, struct cl_diag *d);
void pool_unlock(struct pool *p);

/* The pool as configured by `cloister allocator` (<state>/pool.conf). */
struct pool_record {
	struct cpuset cpus;
	int node;
	unsigned threads_per_core;
	uint64_t memory_mib; /* enclave memory budget (sum of grants may not exceed it) */
	struct pool_hugepages reserved; /* what the allocator added to nr_hugepages */
};

/* Read the pool record. POOL_ERR_NO_POOL when none is configured. */
int pool_record_read(struct pool *p, struct pool_record *r, struct cl_diag *d);
/* Write (atomically replace) the pool record. Caller holds the lock. */
int pool_record_write(struct pool *p, const struct pool_record *r, struct cl_diag *d);
/* Remove the pool record. Caller holds the lock. */
int pool_record_remove(struct pool *p, struct cl_diag *d);

enum pool_grant_state {
	POOL_GRANT_INIT = 0, /* slot created, resources being added */
	POOL_GRANT_RUNNING, /* ne_start() succeeded */
};

#define POOL_NAME_MAX 128
#define POOL_ID_MAX 96

/* One enclave's share of the pool: <state>/enclaves/<slot_uid hex>.grant. */
struct pool_grant {
	uint64_t slot_uid;
	char enclave_id[POOL_ID_MAX];
	char name[POOL_NAME_MAX]; /* "" until named */
	enum pool_grant_state state;
	pid_t owner_pid; /* the process holding the resources (its death frees them) */
	uint64_t owner_start; /* its start time (/proc/<pid>/stat field 22) against pid reuse */
	uid_t owner_uid;
	struct cpuset cores; /* whole cores taken from the pool */
	struct cpuset vcpus; /* threads added with ne_add_vcpu (subset of cores) */
	uint64_t memory_mib; /* hugepage memory reserved or added */
	uint64_t cid; /* 0 until started */
	uint64_t flags; /* NE start flags (debug mode) */
};

/*
 * All live grants, reclaiming (deleting) those whose owner is dead first. Caller holds the lock.
 * *out is a malloc'd array the caller frees (NULL when *n is 0). *reclaimed (may be NULL) gets
 * how many dead grants were removed.
 */
int pool_grants_list(struct pool *p, struct pool_grant **out, size_t *n, size_t *reclaimed,
                     struct cl_diag *d);
/* Read one grant by slot uid. POOL_ERR_NOT_FOUND if absent. Does not check the owner. */
int pool_grant_read(struct pool *p, uint64_t slot_uid, struct pool_grant *g, struct cl_diag *d);
/*
 * Open one grant read-only, for pool_grant_read_fd() later, when the process may no longer open
 * files (the enclave process's seccomp list). *fd belongs to the caller. POOL_ERR_NOT_FOUND if
 * absent.
 */
int pool_grant_open(struct pool *p, uint64_t slot_uid, int *fd, struct cl_diag *d);
/*
 * Read the grant behind @fd from pool_grant_open(), without opening anything (fstat + pread).
 * POOL_ERR_NOT_FOUND once that file is no longer the slot's grant: it was removed, or replaced
 * (every write is a rename over it). Take the lock first to make that answer stick.
 */
int pool_grant_read_fd(int fd, struct pool_grant *g, struct cl_diag *d);
/* Write (atomically replace) a grant. Caller holds the lock. */
int pool_grant_write(struct pool *p, const struct pool_grant *g, struct cl_diag *d);
/* Delete a grant. Caller holds the lock. POOL_ERR_NOT_FOUND if absent. */
int pool_grant_remove(struct pool *p, uint64_t slot_uid, struct cl_diag *d);

/* Start time of process @pid (clock ticks since boot, /proc/<pid>/stat field 22). Returns
 * POOL_OK or POOL_ERR_NOT_FOUND if the process does not exist (or is a zombie). */
int pool_process_start_time(pid_t pid, uint64_t *start);
/* True when the grant's owner process still exists and is the same process. */
bool pool_grant_owner_alive(const struct pool_grant *g);

/* ---- CIDs, names, enclave IDs (nitro-compat §2.3, §2.4) ---------------------------------- */

/* First CID handed out automatically; observed Nitro enclaves get 16 and up. */
#define POOL_CID_AUTO_FIRST 16

/* True for CIDs an enclave may never have: 0-3 (hypervisor, local, well-known, parent) and
 * anything >= 0xFFFFFFFF (VMADDR_CID_ANY and beyond 32 bits). 0 itself means "auto". */
bool pool_cid_reserved(uint64_t cid);

/*
 * Pick the CID for an enclave among the running grants @g[0..n) (the grant with @self_slot is
 * ignored): @requested 0 → the lowest free CID ≥ POOL_CID_AUTO_FIRST; otherwise @requested
 * itself, refused (POOL_ERR_CID) when reserved or used by another enclave.
 */
int pool_cid_pick(const struct pool_grant *g, size_t n, uint64_t self_slot, uint64_t requested,
                  uint64_t *out, struct cl_diag *d);

/*
 * Make @requested unique among the grants' names (ignoring @self_slot): it is kept if free,
 * else `_1`, `_2`, ... is appended (nitro-cli's rule). Names must be 1..POOL_NAME_MAX-8 bytes
 * of printable ASCII other than '/' (POOL_ERR_NAME otherwise). Result in @out (POOL_NAME_MAX).
 */
int pool_name_pick(const struct pool_grant *g, size_t n, uint64_t self_slot, const char *requested,
                   char *out, struct cl_diag *d);

/* EnclaveID `<prefix>-enc<slot_uid lowercase hex>`; prefix = board_asset_tag under @sysroot
 * (/sys/devices/virtual/dmi/id/board_asset_tag, whitespace removed) or i-0000000000000000. */
void pool_enclave_id(const char *sysroot, uint64_t slot_uid, char out[POOL_ID_MAX]);
/* Just the prefix (on EC2 the parent's instance id; run-enclave's default PCR4 input), at most
 * POOL_ID_PREFIX_MAX - 1 bytes. */
#define POOL_ID_PREFIX_MAX 64
void pool_enclave_id_prefix(const char *sysroot, char out[POOL_ID_PREFIX_MAX]);
/* Slot uid from an EnclaveID (the hex after the last "-enc"). POOL_ERR_NOT_FOUND if malformed. */
int pool_enclave_id_parse(const char *id, uint64_t *slot_uid);

#endif

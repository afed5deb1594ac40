/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_NE_H
#define CLOISTER_NE_H

/*
 * The Nitro Enclaves driver's ioctl semantics as a C API over cloister's resource pool
 * (nitro-compat §5.1-§5.3, docs/resources.md). run-enclave and the monitor go through this one
 * path:
 *
 *   ne_create_slot()                 NE_CREATE_VM: a slot + EnclaveID, needs a free pool core
 *   ne_add_vcpu(slot, &id)           NE_ADD_VCPU: 0 = pick; whole cores move to the enclave
 *   ne_mem_alloc(slot, mib, &mem)    nitro-cli's hugepage allocation (§2.7), within the pool
 *   ne_get_image_load_info()         NE_GET_IMAGE_LOAD_INFO: EIF goes at 8 MiB
 *   ne_set_user_memory_region()      NE_SET_USER_MEMORY_REGION, for each region
 *   ne_start(slot, flags, &cid)      NE_START_ENCLAVE: CID assigned, state RUNNING
 *   ... the monitor runs the VM ...
 *   ne_mem_free(&mem); ne_release()  cores, CID and name go back to the pool
 *
 * If the owning process dies instead (SIGKILL), the kernel frees its hugepage mappings and the
 * next pool user reclaims the grant: nothing leaks.
 *
 * Return values: 0 on success, one of the driver's NE_ERR_* codes (256-275, the same numbers
 * user space sees as errno from the real driver), or a negative errno for the generic failures
 * the driver also uses (-EINVAL, -ENOMEM, -EIO, -EPERM, -EFAULT). Every failure fills the
 * optional struct cl_diag with the reason and the fix.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "lib/pool/pool.h"

/* uapi flag values (include/uapi/linux/nitro_enclaves.h). */
#define NE_EIF_IMAGE 0x01ULL
#define NE_IMAGE_LOAD_MAX_FLAG_VAL 0x02ULL
#define NE_DEFAULT_MEMORY_REGION 0x00ULL
#define NE_MEMORY_REGION_MAX_FLAG_VAL 0x01ULL
#define NE_ENCLAVE_PRODUCTION_MODE 0x00ULL
#define NE_ENCLAVE_DEBUG_MODE 0x01ULL
#define NE_ENCLAVE_START_MAX_FLAG_VAL 0x02ULL

/* Where the EIF goes in enclave memory, the smallest enclave, and region granularity. */
#define NE_EIF_LOAD_OFFSET (8ULL << 20)
#define NE_MIN_ENCLAVE_MEM_SIZE (64ULL << 20)
#define NE_MIN_MEM_REGION_SIZE (2ULL << 20)
/* Regions per enclave. The device reports its own limit; cloister's monitor maps each region
 * as a KVM memory slot, so keep well below KVM's 32764 slots. nitro-cli's 2 MiB fallback can
 * produce many regions (1 GiB = 512). */
#define NE_MAX_MEM_REGIONS 4096

enum ne_err {
	NE_OK = 0,
	NE_ERR_VCPU_ALREADY_USED = 256,
	NE_ERR_VCPU_NOT_IN_CPU_POOL = 257,
	NE_ERR_VCPU_INVALID_CPU_CORE = 258,
	NE_ERR_INVALID_MEM_REGION_SIZE = 259,
	NE_ERR_INVALID_MEM_REGION_ADDR = 260,
	NE_ERR_UNALIGNED_MEM_REGION_ADDR = 261,
	NE_ERR_MEM_REGION_ALREADY_USED = 262,
	NE_ERR_MEM_NOT_HUGE_PAGE = 263,
	NE_ERR_MEM_DIFFERENT_NUMA_NODE = 264,
	NE_ERR_MEM_MAX_REGIONS = 265,
	NE_ERR_NO_MEM_REGIONS_ADDED = 266,
	NE_ERR_NO_VCPUS_ADDED = 267,
	NE_ERR_ENCLAVE_MEM_MIN_SIZE = 268,
	NE_ERR_FULL_CORES_NOT_USED = 269,
	NE_ERR_NOT_IN_INIT_STATE = 270,
	NE_ERR_INVALID_VCPU = 271,
	NE_ERR_NO_CPUS_AVAIL_IN_POOL = 272,
	NE_ERR_INVALID_PAGE_SIZE = 273,
	NE_ERR_INVALID_FLAG_VALUE = 274,
	NE_ERR_INVALID_ENCLAVE_CID = 275,
};

/* The driver's name for @err ("NE_ERR_VCPU_ALREADY_USED"), or the errno name for negative
 * values ("ENOMEM"), or "NE_OK". Never NULL. */
const char *ne_err_name(int err);
/* A sentence for @err ("The provided vCPU is already used by this enclave"). Never NULL. */
const char *ne_strerror(int err);

/* Which operation failed, for mapping to nitro-cli's error codes. */
enum ne_op {
	NE_OP_CREATE_SLOT,
	NE_OP_ADD_VCPU,
	NE_OP_GET_IMAGE_LOAD_INFO,
	NE_OP_SET_USER_MEMORY_REGION,
	NE_OP_START,
	NE_OP_MEM_CHECK, /* ne_mem_check_request() */
	NE_OP_MEM_ALLOC, /* ne_mem_alloc() */
};

/*
 * The nitro-cli error code number (the `Exx` and process exit status, see src/cli/cli.h) for
 * @err returned by @op: pool-level CPU errors keep nitro-cli's pre-check codes (E20 duplicate
 * CPU, E21 CPU not in pool, E22 no CPUs left), memory E26/E27, otherwise the per-ioctl codes
 * E29-E33.
 */
int ne_err_to_cli(enum ne_op op, int err);

struct ne_slot;

/* How ne_set_user_memory_region() inspects a user range. The default reads /proc/self/smaps
 * (hugetlb VMAs carry the "ht" flag and their KernelPageSize) and asks move_pages(2) for the
 * NUMA node after faulting the range in. Tests install a fake. */
struct ne_host_ops {
	/* Fill *page_size (0 if any part is not hugetlb) and *node (-1 if unknown) for
	 * [addr, addr + len). Return 0, or -EFAULT if part of the range is not mapped. */
	int (*page_info)(uint64_t addr, uint64_t len, uint64_t *page_size, int *node, void *opaque);
	void *opaque;
};

/*
 * NE_CREATE_VM. Under the pool lock: reclaim dead owners' grants, refuse with
 * NE_ERR_NO_CPUS_AVAIL_IN_POOL when no pool core is free (or no pool is configured), pick a
 * random unique slot uid and record a grant owned by the calling process (state INIT, no CPUs
 * yet). @p stays owned by the caller and must outlive the slot. *out is freed by ne_release()
 * or ne_slot_forget().
 */
int ne_create_slot(struct pool *p, struct ne_slot **out, struct cl_diag *d);

/*
 * Take over slot @slot_uid in this process (e.g. the monitor after run-enclave created it and
 * exec'd it): the grant's owner becomes the caller, so the grant lives as long as the caller.
 * Allowed for the grant's owner uid and root (-EPERM otherwise). The previous owner's handle
 * then fails with -EIO (the driver's "different mm" rule) and should be ne_slot_forget()'d.
 */
int ne_slot_adopt(struct pool *p, uint64_t slot_uid, struct ne_slot **out, struct cl_diag *d);

/* Use @ops instead of the real /proc and move_pages inspection (tests). */
void ne_slot_set_host_ops(struct ne_slot *s, const struct ne_host_ops *ops);

uint64_t ne_slot_uid(const struct ne_slot *s);

/* A copy of the slot's grant (EnclaveID, name, CPUs, memory, CID, state, owner). */
int ne_slot_info(struct ne_slot *s, struct pool_grant *g, struct cl_diag *d);

/*
 * Name the enclave: @requested, or with `_1`, `_2`, ... appended when another live enclave has
 * that name (nitro-compat §2.3). The chosen name is stored in the grant and copied to @out
 * (POOL_NAME_MAX bytes, may be NULL). Returns 0, -EINVAL for an invalid name, -EIO.
 */
int ne_set_name(struct ne_slot *s, const char *requested, char *out, struct cl_diag *d);

/*
 * NE_ADD_VCPU. *vcpu_id 0 = pick: first an unused thread of a core this enclave already owns,
 * else the first pool core with no owner (the whole core moves to the enclave) and its lowest
 * thread; the chosen id is stored back. An explicit id is checked in the driver's order:
 * NOT_IN_INIT_STATE, INVALID_VCPU (beyond the host's CPUs), VCPU_ALREADY_USED,
 * (ok if in an owned core), VCPU_NOT_IN_CPU_POOL (not in the pool or owned by another
 * enclave), VCPU_INVALID_CPU_CORE (topology unknown).
 */
int ne_add_vcpu(struct ne_slot *s, uint32_t *vcpu_id, struct cl_diag *d);

/* NE_GET_IMAGE_LOAD_INFO: NOT_IN_INIT_STATE, then @flags must be NE_EIF_IMAGE
 * (INVALID_FLAG_VALUE); *offset = NE_EIF_LOAD_OFFSET. */
int ne_get_image_load_info(struct ne_slot *s, uint64_t flags, uint64_t *offset, struct cl_diag *d);

/*
 * NE_SET_USER_MEMORY_REGION, checks in the driver's order: flags (INVALID_FLAG_VALUE), state,
 * size a non-zero multiple of 2 MiB (INVALID_MEM_REGION_SIZE), address 2 MiB aligned
 * (UNALIGNED_MEM_REGION_ADDR), range inside user space (INVALID_MEM_REGION_ADDR), no overlap
 * with earlier regions (MEM_REGION_ALREADY_USED), mapped (-EFAULT) hugetlb memory
 * (MEM_NOT_HUGE_PAGE) with a page size multiple of 2 MiB (INVALID_PAGE_SIZE) on the pool's NUMA
 * node (MEM_DIFFERENT_NUMA_NODE), region count (MEM_MAX_REGIONS). cloister adds one rule the
 * hardware enforces by itself: the sum of all enclaves' memory stays within the pool's
 * memory_mib (-ENOMEM). The range is faulted in (the driver pins it). The memory stays the
 * caller's: unmap it after the enclave ends.
 */
int ne_set_user_memory_region(struct ne_slot *s, uint64_t flags, uint64_t memory_size,
                              uint64_t userspace_addr, struct cl_diag *d);

/*
 * NE_START_ENCLAVE: flags (INVALID_FLAG_VALUE), *cid (INVALID_ENCLAVE_CID for 1-3,
 * 0xFFFFFFFF and above; 0 = auto), state, at least one region (NO_MEM_REGIONS_ADDED),
 * >= 64 MiB (ENCLAVE_MEM_MIN_SIZE), at least one vCPU (NO_VCPUS_ADDED), every thread of every
 * owned core (FULL_CORES_NOT_USED). Then the CID: 0 picks the lowest free CID >= 16; an
 * explicit CID another enclave uses gives -EADDRINUSE. *cid receives the CID; the grant is
 * RUNNING. Booting the VM is the monitor's job after this returns.
 */
int ne_start(struct ne_slot *s, uint64_t flags, uint64_t *cid, struct cl_diag *d);

/* Give everything back (delete the grant: cores, memory budget, CID, name) and free @s.
 * Unmap the enclave memory first (ne_mem_free) so the next enclave finds the hugepages free.
 * NULL is fine. Only the owner's release deletes the grant. */
void ne_release(struct ne_slot *s);

/* Make ne_release() (and ne_launch_release()) work without opening a file: pins the slot's grant
 * by an fd, for a process that is about to enter a seccomp list without open (the enclave
 * process). Call after this process's last change to the grant; a later change by anyone
 * replaces the file, and ne_release then leaves the new grant alone. 0, or -EIO with @d set. */
int ne_release_prepare(struct ne_slot *s, struct cl_diag *d);

/* Free the handle but keep the grant (another process adopted it, or this process is about to
 * exec the owner). */
void ne_slot_forget(struct ne_slot *s);

/* ---- enclave memory (nitro-compat §2.7) ----------------------------------------------------- */

struct ne_mem_region {
	void *addr;
	uint64_t size;
};

struct ne_mem {
	struct ne_mem_region *regions; /* largest first; the EIF goes across them in this order */
	size_t count;
	uint64_t total; /* bytes; MemoryMiB = total >> 20 */
	/* ne_mem_alloc(): the regions lie back to back from here, so [base, base + total) can be
	 * used as one guest RAM mapping (aligned to the largest page). NULL from a test mapper. */
	void *base;
};

/*
 * nitro-cli's pre-check: @memory_mib MiB must be at least 4 × @eif_size bytes (the kernel
 * unpacks the initramfs in enclave memory). Returns 0, or -EINVAL with @d saying "At least N MB
 * must be allocated (which is 4 times the EIF file size)", N = ceil(ceil(size/1024)/1024) × 4.
 * *min_mib (may be NULL) gets N.
 */
int ne_mem_check_request(uint64_t memory_mib, uint64_t eif_size, uint64_t *min_mib,
                         struct cl_diag *d);

/* How regions are mapped (tests replace it). map returns NULL on failure. */
struct ne_mem_mapper {
	void *(*map)(uint64_t size, void *opaque);
	void (*unmap)(void *addr, uint64_t size, void *opaque);
	void *opaque;
};

/*
 * nitro-cli's hugepage allocation for @bytes: candidate page sizes 16 GiB, 2 GiB, 1 GiB,
 * 512 MiB, 256 MiB, 32 MiB, 16 MiB, 8 MiB, 2 MiB; pass 1 descending maps a size while the
 * remainder is at least that size; pass 2 ascending maps while anything remains; then regions
 * are sorted largest first and the tail not needed to cover @bytes is unmapped. Returns 0, or
 * -ENOMEM (nitro-cli E27) with everything unmapped. @m NULL = real mmap (ne_mem_alloc).
 */
int ne_mem_alloc_with(const struct ne_mem_mapper *m, uint64_t bytes, struct ne_mem *out,
                      struct cl_diag *d);

/*
 * Allocate @mib MiB of enclave memory for @s (NULL: no pool accounting) with the algorithm
 * above using mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_<size>). The chosen
 * regions are then laid out back to back from out->base (largest first, so each stays aligned
 * to its page size), bound to the pool's NUMA node (mbind) and faulted in
 * (MADV_POPULATE_WRITE, which reports a shortage as an error instead of SIGBUS). The pages are zero: the kernel clears every hugetlb
 * page when it is first faulted into a new private anonymous mapping, and cloister never reuses
 * a mapping for a second enclave. With a slot, the request must fit the pool's free memory
 * budget (-ENOMEM naming who holds the rest) and is recorded in the grant. The caller owns the
 * regions: ne_mem_free() them after the enclave ends.
 */
int ne_mem_alloc(struct ne_slot *s, uint64_t mib, struct ne_mem *out, struct cl_diag *d);

/* ne_mem_alloc() with regions from @mapper (NULL: the real hugetlb mapper); for tests. */
int ne_mem_alloc_mapped(struct ne_slot *s, uint64_t mib, const struct ne_mem_mapper *mapper,
                        struct ne_mem *out, struct cl_diag *d);

/* Unmap every region and reset @m. Safe on a zeroed or already freed struct. */
void ne_mem_free(struct ne_mem *m);
/* The same for regions from ne_mem_alloc_with(@mp). */
void ne_mem_free_with(const struct ne_mem_mapper *mp, struct ne_mem *m);

/* Copy @len bytes to enclave-physical offset @offset of @m (regions concatenated in order),
 * e.g. the whole EIF at NE_EIF_LOAD_OFFSET. Returns 0 or -ERANGE if it does not fit. */
int ne_mem_write(const struct ne_mem *m, uint64_t offset, const void *data, uint64_t len,
                 struct cl_diag *d);

/* ---- run-enclave's whole sequence ------------------------------------------------------------ */

#define NE_LAUNCH_MAX_CPUS 256

struct ne_launch_req {
	uint64_t memory_mib; /* --memory */
	unsigned cpu_count; /* --cpu-count (when ncpu_ids is 0) */
	const uint32_t *cpu_ids; /* --cpu-ids */
	size_t ncpu_ids;
	uint64_t cid; /* --enclave-cid, 0 = auto */
	const char *name; /* --enclave-name or the EIF file name without .eif */
	bool debug_mode; /* --debug-mode */
	uint64_t image_size; /* EIF file size, for the 4x pre-check (0: skip it) */
	const void *image; /* EIF bytes copied to NE_EIF_LOAD_OFFSET; NULL: caller copies */
	/* Test hooks; NULL in production. */
	const struct ne_host_ops *host_ops;
	const struct ne_mem_mapper *mapper;
};

struct ne_launch {
	struct ne_slot *slot;
	struct ne_mem mem; /* guest RAM, regions in order from GPA 0 */
	uint32_t cpu_ids[NE_LAUNCH_MAX_CPUS]; /* host CPUs, in the order added (CPUIDs) */
	size_t ncpus;
	uint64_t cid; /* EnclaveCID */
	uint64_t memory_mib; /* MemoryMiB (may exceed the request) */
	uint64_t slot_uid;
	char name[POOL_NAME_MAX]; /* EnclaveName after _N de-duplication */
	char enclave_id[POOL_ID_MAX]; /* EnclaveID */
	const struct ne_mem_mapper *mapper;
};

/*
 * Everything run-enclave does with resources, in nitro-cli's order: the E26 memory pre-check;
 * the CPU request against the pool (E20 duplicate id, E21 id not in pool, E22 count larger than
 * the pool); NE_CREATE_VM; the unique name; nitro-cli's hugepage allocation; image load info;
 * the EIF copy (if @req->image); every region; the vCPUs; NE_START_ENCLAVE. The calling process
 * becomes the owner (its death frees everything). Returns 0 with @out filled, or the nitro-cli
 * error code number (for cli_fail) with @d naming the NE_ERR_* and the reason; nothing is held
 * then. Release with ne_launch_release() after the VM is gone.
 */
int ne_launch_prepare(struct pool *p, const struct ne_launch_req *req, struct ne_launch *out,
                      struct cl_diag *d);

/* Unmap the memory and release the slot. Safe to call twice. */
void ne_launch_release(struct ne_launch *l);

/*
 * How long run-enclave waits for the boot heartbeat (nitro-compat §2.5), in milliseconds:
 * ceil(@eif_size / 6 GiB) × 90 s + ceil(@mem_bytes / 100 GiB) × 90 s, @mem_bytes being the
 * memory actually allocated (MemoryMiB, not the request). Each term counts at least once, so the
 * result is never below nitro-cli's 180 s (and never 0, which the monitor reads as "no
 * heartbeat"); inputs of 0 cannot come from a real launch. The result saturates at INT_MAX
 * (about 24.8 days), the longest timeout poll() takes, instead of wrapping for absurd sizes.
 */
unsigned ne_heartbeat_timeout_ms(uint64_t eif_size, uint64_t mem_bytes);

#endif

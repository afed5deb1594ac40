/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enclave memory: nitro-cli's hugepage allocation (nitro-compat §2.7) and the page inspection
 * behind ne_set_user_memory_region().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/ne/ne.h"
#include "lib/ne/ne_internal.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define NE_MPOL_BIND 2

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* nitro-cli's candidate page sizes, largest first. Sizes the CPU lacks fail mmap at once. */
static const uint64_t page_sizes[] = { 16 * GiB, 2 * GiB,  1 * GiB, 512 * MiB, 256 * MiB,
	                               32 * MiB, 16 * MiB, 8 * MiB, 2 * MiB };
#define NSIZES (sizeof(page_sizes) / sizeof(page_sizes[0]))

int ne_mem_check_request(uint64_t memory_mib, uint64_t eif_size, uint64_t *min_mib,
                         struct cl_diag *d)
{
	/* N = ceil(ceil(size / 1 KiB) / 1 KiB) * 4, in MiB, exactly as nitro-cli words it. */
	uint64_t kib = eif_size / 1024 + (eif_size % 1024 != 0);
	uint64_t n = (kib / 1024 + (kib % 1024 != 0)) * 4;

	if (min_mib)
		*min_mib = n;
	if (memory_mib > (UINT64_MAX >> 20))
		return 0; /* more than any file can need */
	if (memory_mib == 0 || eif_size > UINT64_MAX / 4 || memory_mib * MiB < eif_size * 4) {
		cl_diag_set(d,
		            "At least %" PRIu64 " MB must be allocated (which is 4 times the EIF "
		            "file size)",
		            n);
		return -EINVAL;
	}
	return 0;
}

static int cmp_region_desc(const void *a, const void *b)
{
	const struct ne_mem_region *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? 1 : -1;
	/* Equal sizes keep allocation order (qsort is not stable; addresses are not either). */
	return 0;
}

static int push(struct ne_mem *m, size_t *cap, void *addr, uint64_t size)
{
	if (m->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct ne_mem_region *nr = realloc(m->regions, ncap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		m->regions = nr;
		*cap = ncap;
	}
	m->regions[m->count].addr = addr;
	m->regions[m->count].size = size;
	m->count++;
	m->total += size;
	return 0;
}

void ne_mem_free_with(const struct ne_mem_mapper *mp, struct ne_mem *m)
{
	for (size_t i = 0; i < m->count; i++)
		mp->unmap(m->regions[i].addr, m->regions[i].size, mp->opaque);
	free(m->regions);
	memset(m, 0, sizeof(*m));
}

int ne_mem_alloc_with(const struct ne_mem_mapper *mp, uint64_t bytes, struct ne_mem *out,
                      struct cl_diag *d)
{
	uint64_t remaining = bytes, kept = 0;
	size_t cap = 0, keep;
	void *p;

	memset(out, 0, sizeof(*out));
	if (!bytes) {
		cl_diag_set(d, "enclave memory size is 0");
		return -EINVAL;
	}
	/* Pass 1, descending: whole pages of each size while they fit in what remains. */
	for (size_t i = 0; i < NSIZES; i++) {
		while (remaining >= page_sizes[i] && (p = mp->map(page_sizes[i], mp->opaque))) {
			if (push(out, &cap, p, page_sizes[i])) {
				mp->unmap(p, page_sizes[i], mp->opaque);
				goto nomem;
			}
			remaining -= page_sizes[i];
		}
	}
	/* Pass 2, ascending: cover the rest with whatever maps, overshooting if needed. */
	for (size_t i = NSIZES; remaining && i-- > 0;) {
		while (remaining && (p = mp->map(page_sizes[i], mp->opaque))) {
			if (push(out, &cap, p, page_sizes[i])) {
				mp->unmap(p, page_sizes[i], mp->opaque);
				goto nomem;
			}
			remaining = remaining > page_sizes[i] ? remaining - page_sizes[i] : 0;
		}
	}
	if (remaining) {
		cl_diag_set(d,
		            "only %" PRIu64 " of the %" PRIu64 " MiB requested could be mapped "
		            "from hugepages; reserve more with `cloister allocator` (memory_mib in "
		            "/etc/cloister/allocator.yaml) or ask for less memory",
		            (bytes - remaining) >> 20, bytes >> 20);
		ne_mem_free_with(mp, out);
		return -ENOMEM;
	}
	/* Largest first, then drop the tail the request does not need. */
	qsort(out->regions, out->count, sizeof(*out->regions), cmp_region_desc);
	for (keep = 0; keep < out->count && kept < bytes; keep++)
		kept += out->regions[keep].size;
	for (size_t i = keep; i < out->count; i++)
		mp->unmap(out->regions[i].addr, out->regions[i].size, mp->opaque);
	out->count = keep;
	out->total = kept;
	return 0;
nomem:
	cl_diag_set(d, "out of memory tracking enclave memory regions");
	ne_mem_free_with(mp, out);
	return -ENOMEM;
}

struct real_ctx {
	int node; /* -1: no binding */
};

static int map_flags(uint64_t size)
{
	/* log2(size) in bits 26-31; 16 GiB (34) sets the sign bit, so shift unsigned as the
	 * kernel's MAP_HUGE_16GB does. */
	return MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
	       (int)((unsigned)__builtin_ctzll(size) << MAP_HUGE_SHIFT);
}

/* Pass 1 and 2 only ask whether pages of a size can be had: a private hugetlb mmap reserves
 * its pages at mmap time (ENOMEM when the pool is short), so nothing is faulted in yet. */
static void *real_map(uint64_t size, void *opaque)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, map_flags(size), -1, 0);

	(void)opaque;
	return p == MAP_FAILED ? NULL : p;
}

static void real_unmap(void *addr, uint64_t size, void *opaque)
{
	(void)opaque;
	munmap(addr, size);
}

/* Bind [p, p + size) to @node and fault it in. A shortage on the node becomes an error here
 * instead of a SIGBUS in the monitor later, and the kernel zeroes each hugetlb page at this
 * first fault. */
static int bind_and_populate(void *p, uint64_t size, int node)
{
	if (node >= 0 && node < 1024) {
		unsigned long mask[1024 / (8 * sizeof(unsigned long))] = { 0 };

		mask[node / (8 * sizeof(unsigned long))] |= 1UL
		                                            << (node % (8 * sizeof(unsigned long)));
		/* ENOSYS: kernel without NUMA; there is only one node then. */
		if (syscall(SYS_mbind, p, size, NE_MPOL_BIND, mask, 1024 + 1, 0) < 0 &&
		    errno != ENOSYS)
			return -errno;
	}
	if (madvise(p, size, MADV_POPULATE_WRITE) < 0 && errno != EINVAL)
		return -errno;
	return 0;
}

/*
 * Re-map the chosen regions back to back, largest first, in one reserved address range, so the
 * monitor can use [base, base + total) as guest RAM like a single mapping (a KVM memslot may
 * span several VMAs). Largest first keeps every region aligned to its own page size when the
 * base is aligned to the largest. The pages are given back and taken again in between; under
 * the pool lock only non-cloister hugepage users can take them meanwhile (then -ENOMEM).
 */
static int make_contiguous(struct ne_mem *m, int node, struct cl_diag *d)
{
	uint64_t align = m->regions[0].size, off = 0;
	uint8_t *va, *base;
	int err;

	va = mmap(NULL, m->total + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	          -1, 0);
	if (va == MAP_FAILED) {
		err = -errno;
		cl_diag_set(d, "cannot reserve %" PRIu64 " MiB of address space: %s",
		            m->total >> 20, strerror(errno));
		goto fail_regions;
	}
	base = (uint8_t *)(((uintptr_t)va + align - 1) & ~(uintptr_t)(align - 1));
	if (base > va)
		munmap(va, (size_t)(base - va));
	if (base + m->total < va + m->total + align)
		munmap(base + m->total, (size_t)(va + m->total + align - (base + m->total)));
	for (size_t i = 0; i < m->count; i++)
		munmap(m->regions[i].addr, m->regions[i].size);
	for (size_t i = 0; i < m->count; i++) {
		void *want = base + off;
		void *p = mmap(want, m->regions[i].size, PROT_READ | PROT_WRITE,
		               map_flags(m->regions[i].size) | MAP_FIXED, -1, 0);

		if (p == MAP_FAILED) {
			err = -errno;
			cl_diag_set(d,
			            "hugepages vanished while laying out enclave memory (another "
			            "program took them): %s",
			            strerror(errno));
			goto fail_range;
		}
		err = bind_and_populate(p, m->regions[i].size, node);
		if (err) {
			cl_diag_set(d,
			            "cannot fault in %" PRIu64
			            " MiB of hugepages on NUMA node %d: %s; "
			            "reserve them on that node with `cloister allocator`",
			            m->regions[i].size >> 20, node, strerror(-err));
			goto fail_range;
		}
		m->regions[i].addr = p;
		off += m->regions[i].size;
	}
	m->base = base;
	return 0;
fail_range:
	munmap(base, m->total);
	goto out;
fail_regions:
	for (size_t i = 0; i < m->count; i++)
		munmap(m->regions[i].addr, m->regions[i].size);
out:
	free(m->regions);
	memset(m, 0, sizeof(*m));
	return err == -ENOMEM || err == -EFAULT ? -ENOMEM : err;
}

int ne_mem_alloc_mapped(struct ne_slot *s, uint64_t mib, const struct ne_mem_mapper *mapper,
                        struct ne_mem *out, struct cl_diag *d)
{
	struct real_ctx ctx = { s ? s->rec.node : -1 };
	struct ne_mem_mapper real = { real_map, real_unmap, &ctx };
	const struct ne_mem_mapper *mp = mapper ? mapper : &real;
	struct pool_grant g;
	int rc;

	memset(out, 0, sizeof(*out));
	if (mib == 0 || mib > (UINT64_MAX >> 21)) {
		cl_diag_set(d, "enclave memory of %" PRIu64 " MiB is invalid", mib);
		return -EINVAL;
	}
	if (!s) {
		rc = ne_mem_alloc_with(mp, mib * MiB, out, d);
		if (!rc && !mapper)
			rc = make_contiguous(out, -1, d);
		return rc;
	}

	/* Under the lock the whole time, so two enclaves cannot both count the same free
	 * budget. */
	rc = pool_lock(s->pool, d) ? -EIO : 0;
	if (rc)
		return rc;
	rc = pool_grant_read(s->pool, s->slot_uid, &g, d) ? -EIO : 0;
	if (rc)
		goto out;
	if (g.owner_pid != getpid()) {
		cl_diag_set(d, "enclave slot %" PRIx64 " belongs to process %ld, not this one",
		            s->slot_uid, (long)g.owner_pid);
		rc = -EIO;
		goto out;
	}
	rc = ne_memory_budget_check(s, g.memory_mib + mib, d);
	if (rc)
		goto out;
	rc = ne_mem_alloc_with(mp, mib * MiB, out, d);
	if (rc)
		goto out;
	/* Pass 2 may overshoot the request (nitro-cli reports the larger MemoryMiB); the
	 * overshoot must fit the budget too. */
	rc = ne_memory_budget_check(s, g.memory_mib + (out->total >> 20), d);
	if (rc) {
		ne_mem_free_with(mp, out);
		goto out;
	}
	if (!mapper) {
		rc = make_contiguous(out, s->rec.node, d);
		if (rc)
			goto out;
	}
	g.memory_mib += out->total >> 20;
	if (pool_grant_write(s->pool, &g, d)) {
		ne_mem_free_with(mp, out);
		rc = -EIO;
	}
out:
	pool_unlock(s->pool);
	return rc;
}

int ne_mem_alloc(struct ne_slot *s, uint64_t mib, struct ne_mem *out, struct cl_diag *d)
{
	return ne_mem_alloc_mapped(s, mib, NULL, out, d);
}

void ne_mem_free(struct ne_mem *m)
{
	struct ne_mem_mapper mp = { real_map, real_unmap, NULL };

	if (m->base) {
		munmap(m->base, m->total);
		free(m->regions);
		memset(m, 0, sizeof(*m));
		return;
	}
	ne_mem_free_with(&mp, m);
}

int ne_mem_write(const struct ne_mem *m, uint64_t offset, const void *data, uint64_t len,
                 struct cl_diag *d)
{
	const uint8_t *src = data;
	uint64_t end;

	if (__builtin_add_overflow(offset, len, &end) || end > m->total) {
		cl_diag_set(d,
		            "%" PRIu64 " bytes at offset %" PRIu64 " do not fit in %" PRIu64
		            " bytes of enclave memory",
		            len, offset, m->total);
		return -ERANGE;
	}
	for (size_t i = 0; i < m->count && len; i++) {
		uint64_t rs = m->regions[i].size, n;

		if (offset >= rs) {
			offset -= rs;
			continue;
		}
		n = rs - offset < len ? rs - offset : len;
		memcpy((uint8_t *)m->regions[i].addr + offset, src, n);
		src += n;
		len -= n;
		offset = 0;
	}
	return 0;
}

/* ---- page inspection ----------------------------------------------------------------------- */

int ne_host_page_info(uint64_t addr, uint64_t len, uint64_t *page_size, int *node, void *opaque)
{
	uint64_t cursor = addr, end = addr + len, min_ps = UINT64_MAX;
	uint64_t vstart = 0, vend = 0, vps = 0;
	bool in_vma = false, vht = false;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int rc = 0;

	(void)opaque;
	*page_size = 0;
	*node = -1;
	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -EFAULT;
	/* smaps lists VMAs in address order; walk them and check that [addr, end) is covered
	 * without gaps, remembering the smallest page size (0 for a non-hugetlb VMA). */
	for (;;) {
		ssize_t n = getline(&line, &cap, f);
		unsigned long long a, b, v;
		bool header = n > 0 && sscanf(line, "%llx-%llx ", &a, &b) == 2 &&
		              strchr(line, '-') && line[0] != 'V' && line[0] != 'K';

		if (n <= 0 || header) {
			if (in_vma && vstart <= cursor && cursor < vend) {
				uint64_t ps = vht ? vps : 0;

				if (ps < min_ps)
					min_ps = ps;
				cursor = vend < end ? vend : end;
			}
			if (n <= 0 || cursor >= end)
				break;
			in_vma = true;
			vstart = a;
			vend = b;
			vps = 0;
			vht = false;
			continue;
		}
		if (sscanf(line, "KernelPageSize: %llu kB", &v) == 1)
			vps = v * 1024;
		else if (!strncmp(line, "VmFlags:", 8))
			vht = strstr(line, " ht") != NULL;
	}
	free(line);
	fclose(f);
	if (cursor < end)
		return -EFAULT;
	*page_size = min_ps == UINT64_MAX ? 0 : min_ps;
	if (!*page_size)
		return 0;

	/* The driver pins the pages; fault them in so move_pages can report their node. */
	if (madvise((void *)(uintptr_t)addr, len, MADV_POPULATE_WRITE) < 0 && errno != EINVAL)
		return -errno;
	{
		size_t count = len / *page_size;
		void **pages = calloc(count, sizeof(*pages));
		int *status = calloc(count, sizeof(*status));

		if (!pages || !status) {
			rc = -ENOMEM;
			goto done;
		}
		for (size_t i = 0; i < count; i++)
			pages[i] = (void *)(uintptr_t)(addr + i * *page_size);
		if (syscall(SYS_move_pages, 0, count, pages, NULL, status, 0) < 0)
			goto done; /* ENOSYS: no NUMA, node stays unknown (-1) */
		for (size_t i = 0; i < count; i++) {
			if (status[i] < 0)
				continue;
			if (*node < 0)
				*node = status[i];
			else if (status[i] != *node) {
				*node = status[i];
				break;
			}
		}
	done:
		free(pages);
		free(status);
	}
	return rc;
}

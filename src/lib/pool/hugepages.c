/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hugepage reservation through sysfs, per NUMA node, as nitro-cli's allocator does it
 * (nitro-compat §2.8): largest page size first, read back what the kernel really allocated (it
 * silently allocates fewer pages when memory is short or fragmented), once more after asking
 * the kernel to compact memory, roll everything back on a shortfall.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/pool/internal.h"
#include "lib/pool/pool.h"

/* Directory holding hugepages-<K>kB/ for @node: the per-node one, or on a kernel without NUMA
 * support the global /sys/kernel/mm/hugepages (node 0 only). */
static int hugepage_dir(const char *sysroot, int node, char *out, size_t len, struct cl_diag *d)
{
	struct stat st;

	snprintf(out, len, "%s/sys/devices/system/node/node%d/hugepages", sysroot, node);
	if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
		return POOL_OK;
	if (node == 0) {
		char node_dir[PATH_MAX];

		snprintf(node_dir, sizeof(node_dir), "%s/sys/devices/system/node", sysroot);
		if (stat(node_dir, &st) != 0) {
			snprintf(out, len, "%s/sys/kernel/mm/hugepages", sysroot);
			if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
				return POOL_OK;
		}
	}
	cl_diag_set(d,
	            "NUMA node %d has no hugepage directory (%s); the node does not exist or "
	            "the kernel lacks CONFIG_HUGETLBFS",
	            node, out);
	return POOL_ERR_NUMA;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Page sizes available in @dir, largest first. */
static int list_sizes(const char *dir, uint64_t *kib, unsigned *n, struct cl_diag *d)
{
	DIR *dp = opendir(dir);
	struct dirent *e;

	*n = 0;
	if (!dp) {
		cl_diag_set(d, "cannot list %s: %s", dir, strerror(errno));
		return POOL_ERR_IO;
	}
	while ((e = readdir(dp))) {
		unsigned long long v;
		char num[32];
		size_t l = strlen(e->d_name);

		if (l < 13 || strncmp(e->d_name, "hugepages-", 10) ||
		    strcmp(e->d_name + l - 2, "kB"))
			continue;
		if (l - 12 >= sizeof(num))
			continue;
		memcpy(num, e->d_name + 10, l - 12);
		num[l - 12] = '\0';
		if (pool_parse_u64(num, &v) || !v || *n == POOL_MAX_PAGE_SIZES)
			continue;
		kib[(*n)++] = v;
	}
	closedir(dp);
	qsort(kib, *n, sizeof(*kib), cmp_desc);
	if (!*n) {
		cl_diag_set(d, "%s lists no hugepage sizes", dir);
		return POOL_ERR_HUGEPAGES;
	}
	return POOL_OK;
}

static int read_count(const char *path, uint64_t *v, struct cl_diag *d)
{
	char buf[64];
	unsigned long long x;
	long n = pool_read_small(path, buf, sizeof(buf));

	if (n < 0) {
		cl_diag_set(d, "cannot read %s: %s", path, strerror((int)-n));
		return POOL_ERR_IO;
	}
	if (pool_parse_u64(buf, &x)) {
		cl_diag_set(d, "%s holds '%.20s', not a page count", path, buf);
		return POOL_ERR_IO;
	}
	*v = x;
	return POOL_OK;
}

/* Write @value to the sysfs/procfs file @path, through @ops when the caller gave one (tests). */
static int sysfs_write(const char *path, const char *value, const struct pool_sysfs_ops *ops)
{
	return ops && ops->write ? ops->write(path, value, ops->opaque)
	                         : pool_write_small(path, value);
}

static int write_count(const char *path, uint64_t v, const struct pool_sysfs_ops *ops,
                       struct cl_diag *d)
{
	char buf[32];
	int err;

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	err = sysfs_write(path, buf, ops);
	if (err) {
		cl_diag_set(d, "cannot write %s to %s: %s%s", buf, path, strerror(-err),
		            err == -EACCES || err == -EPERM ? " (run as root)" : "");
		return POOL_ERR_IO;
	}
	return POOL_OK;
}

/*
 * One pass over the page sizes, largest first: ask for what is still @remaining (KiB) of
 * each size on top of what it has (@before plus what earlier passes added), and read back
 * what the kernel really added. @asked counts the pages requested per size.
 */
static int reserve_pass(const char *dir, const uint64_t *kib, unsigned n, const uint64_t *before,
                        const struct pool_sysfs_ops *ops, struct pool_hugepages *res,
                        uint64_t *asked, uint64_t *remaining, struct cl_diag *d)
{
	char path[PATH_MAX + 64];
	int rc;

	for (unsigned i = 0; i < n && *remaining; i++) {
		uint64_t want = *remaining / kib[i], now = before[i] + res->size[i].added, after,
		         got;

		if (!want)
			continue;
		snprintf(path, sizeof(path), "%s/hugepages-%llukB/nr_hugepages", dir,
		         (unsigned long long)kib[i]);
		rc = write_count(path, now + want, ops, d);
		if (rc)
			return rc;
		rc = read_count(path, &after, d);
		if (rc)
			return rc;
		/* The kernel may allocate fewer pages than asked (never more). */
		got = after > now ? after - now : 0;
		if (got > want)
			got = want;
		if (!asked[i])
			asked[i] = want;
		res->size[i].added += got;
		*remaining -= got * kib[i];
	}
	return POOL_OK;
}

/*
 * Ask the kernel to compact node @node's memory (or all memory, without per-node files):
 * free hugepages need physically contiguous memory, and on a host that has run for a while
 * it is there but scattered. Best effort; nothing to report if it cannot.
 */
static void compact(const char *sysroot, int node, const struct pool_sysfs_ops *ops)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/sys/devices/system/node/node%d/compact", sysroot, node);
	if (sysfs_write(path, "1", ops) == -ENOENT) {
		snprintf(path, sizeof(path), "%s/proc/sys/vm/compact_memory", sysroot);
		(void)sysfs_write(path, "1", ops);
	}
}

int pool_hugepages_reserve(const char *sysroot, int node, uint64_t mib,
                           const struct pool_sysfs_ops *ops, struct pool_hugepages *res,
                           struct cl_diag *d)
{
	char dir[PATH_MAX], path[PATH_MAX + 64], detail[256] = "";
	uint64_t kib[POOL_MAX_PAGE_SIZES], before[POOL_MAX_PAGE_SIZES],
	        asked[POOL_MAX_PAGE_SIZES] = { 0 }, remaining, want_kib;
	size_t dl = 0;
	unsigned n;
	int rc;

	if (!sysroot)
		sysroot = "";
	memset(res, 0, sizeof(*res));
	rc = hugepage_dir(sysroot, node, dir, sizeof(dir), d);
	if (rc)
		return rc;
	rc = list_sizes(dir, kib, &n, d);
	if (rc)
		return rc;
	if (mib > (UINT64_MAX >> 11)) {
		cl_diag_set(d, "memory_mib %llu is too large", (unsigned long long)mib);
		return POOL_ERR_HUGEPAGES;
	}
	/* Round up to the smallest page size so the request can be met exactly. */
	want_kib = (mib * 1024 + kib[n - 1] - 1) / kib[n - 1] * kib[n - 1];
	remaining = want_kib;
	res->nsizes = n;
	for (unsigned i = 0; i < n; i++) {
		res->size[i].kib = kib[i];
		snprintf(path, sizeof(path), "%s/hugepages-%llukB/nr_hugepages", dir,
		         (unsigned long long)kib[i]);
		rc = read_count(path, &before[i], d);
		if (rc)
			goto rollback;
	}
	rc = reserve_pass(dir, kib, n, before, ops, res, asked, &remaining, d);
	if (!rc && remaining) {
		/* Short: memory may be free but fragmented. Compact it and ask once more. */
		compact(sysroot, node, ops);
		rc = reserve_pass(dir, kib, n, before, ops, res, asked, &remaining, d);
	}
	if (rc)
		goto rollback;
	for (unsigned i = 0; i < n && remaining && dl < sizeof(detail); i++)
		if (res->size[i].added < asked[i])
			dl += (size_t)snprintf(detail + dl, sizeof(detail) - dl,
			                       "%s%llu kB pages: got %llu of %llu", dl ? "; " : "",
			                       (unsigned long long)kib[i],
			                       (unsigned long long)res->size[i].added,
			                       (unsigned long long)asked[i]);
	if (!remaining)
		return POOL_OK;
	cl_diag_set(d,
	            "NUMA node %d: only %llu of %llu MiB of hugepages could be reserved (%s), even "
	            "after compacting memory; free memory on that node (or reserve hugepages at "
	            "boot with hugepages= on the kernel command line), or lower memory_mib",
	            node, (unsigned long long)((want_kib - remaining) / 1024),
	            (unsigned long long)(want_kib / 1024), detail);
	rc = POOL_ERR_HUGEPAGES;
rollback:
	for (unsigned i = 0; i < n; i++) {
		if (!res->size[i].added)
			continue;
		snprintf(path, sizeof(path), "%s/hugepages-%llukB/nr_hugepages", dir,
		         (unsigned long long)kib[i]);
		/* Keep the first error's message; a failing rollback is reported after it. */
		if (write_count(path, before[i], ops, NULL))
			cl_diag_prefix(d, "ROLLBACK FAILED for %s (set it to %llu by hand)", path,
			               (unsigned long long)before[i]);
		res->size[i].added = 0;
	}
	return rc;
}

int pool_hugepages_release(const char *sysroot, int node, const struct pool_hugepages *res,
                           const struct pool_sysfs_ops *ops, struct cl_diag *d)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	int rc, first = POOL_OK;

	if (!sysroot)
		sysroot = "";
	rc = hugepage_dir(sysroot, node, dir, sizeof(dir), d);
	if (rc)
		return rc;
	for (unsigned i = 0; i < res->nsizes && i < POOL_MAX_PAGE_SIZES; i++) {
		uint64_t cur;

		if (!res->size[i].added)
			continue;
		snprintf(path, sizeof(path), "%s/hugepages-%llukB/nr_hugepages", dir,
		         (unsigned long long)res->size[i].kib);
		rc = read_count(path, &cur, d);
		if (!rc)
			rc = write_count(path,
			                 cur > res->size[i].added ? cur - res->size[i].added : 0,
			                 ops, d);
		if (rc && !first)
			first = rc;
	}
	return first;
}

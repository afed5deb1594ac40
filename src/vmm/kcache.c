/* SPDX-License-Identifier: Apache-2.0 */
/* The unpacked-kernel cache (kcache.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util/checked.h"
#include "lib/util/file.h"
#include "vmm/arch/x86_64/vmlinux.h"
#include "vmm/kcache.h"

#define DEFAULT_DIR "/var/cache/cloister/kernels"

const char *kcache_default_dir(void)
{
	const char *env = getenv("CLOISTER_KERNEL_CACHE");

	if (env && !strcmp(env, "off"))
		return NULL;
	return env && *env ? env : DEFAULT_DIR;
}

static bool fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return false;
}

/* Ours alone: owned by this user, writable by nobody else. */
static bool private_to_us(const struct stat *st)
{
	return st->st_uid == geteuid() && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* @dir exists (created with its parents if not) and is ours alone. */
static bool usable_dir(const char *dir, char *why, size_t why_len)
{
	char path[4096];
	struct stat st;
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return fail(why, why_len, "cache directory name is empty or too long");
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) /* mkdir -p; errors show in the lstat below */
		if (*p == '/') {
			*p = '\0';
			(void)mkdir(path, 0755);
			*p = '/';
		}
	(void)mkdir(path, 0700);
	if (lstat(path, &st) < 0)
		return fail(why, why_len, "cache directory %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || !private_to_us(&st))
		return fail(why, why_len,
		            "cache directory %s is not a directory owned by uid %u and writable "
		            "only by it",
		            dir, (unsigned)geteuid());
	return true;
}

/*
 * An entry: a header, the bzImage's own bytes, then (page-aligned) its unpacked kernel. The name
 * comes from a fingerprint of the bzImage (its length and its first and last KC_WINDOW bytes),
 * cheap to compute; what makes an entry match is the stored bzImage being byte-for-byte the one
 * being launched. Comparing 11 MB costs a fraction of hashing them (SHA-384 of the Debian
 * kernel: 0.22-0.33 s in a parent instance, on the launch's critical path), and it is exact.
 * Another kernel with the same fingerprint is a miss and replaces the entry, so the name need
 * not resist anyone: anyone can make a kernel with the same ends. Not hashing with libcrypto
 * also keeps a monitor without an NSM from initialising it (~2 MiB of its pages resident).
 */
#define KC_MAGIC "CLKCACH1"
#define KC_HEADER 32u /* magic, le64 bzImage length, le64 kernel offset, le64 kernel length */
#define KC_WINDOW 4096u
#define KC_KEEP 8u /* entries kept (~70 MB each for a Debian cloud kernel) */

static uint64_t kernel_offset(uint64_t bz_len)
{
	return (KC_HEADER + bz_len + 4095) & ~(uint64_t)4095;
}

/* FNV-1a, 64-bit: a name, not a check (map_entry compares every byte). */
static uint64_t fnv1a(uint64_t h, const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t fingerprint(const uint8_t *kernel, uint64_t len)
{
	uint64_t w = len < KC_WINDOW ? len : KC_WINDOW, h = 0xcbf29ce484222325ULL;
	uint8_t n[8];

	cl_put_le64(n, len);
	h = fnv1a(h, n, sizeof(n));
	h = fnv1a(h, kernel, w);
	return fnv1a(h, kernel + len - w, w);
}

/* The entry in @fd, if it holds exactly @kernel and its @unpacked_len-byte kernel. */
static void *map_entry(int fd, const uint8_t *kernel, uint64_t len, uint64_t unpacked_len)
{
	uint64_t off = kernel_offset(len), total = off + unpacked_len;
	struct stat st;
	uint8_t *map;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !private_to_us(&st) ||
	    (uint64_t)st.st_size != total)
		return NULL;
	map = mmap(NULL, (size_t)total, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return NULL;
	if (memcmp(map, KC_MAGIC, 8) != 0 || cl_get_le64(map + 8) != len ||
	    cl_get_le64(map + 16) != off || cl_get_le64(map + 24) != unpacked_len ||
	    memcmp(map + KC_HEADER, kernel, (size_t)len) != 0) {
		munmap(map, (size_t)total);
		return NULL;
	}
	return map;
}

/*
 * Keep the cache from growing without end: after storing an entry, drop what an older format
 * left (`*.vmlinux`) and, beyond KC_KEEP entries, the least recently used (a hit touches its
 * entry's mtime). Files that are not ours are left alone; failures only leave files behind.
 */
static void prune(const char *dir)
{
	struct {
		char name[64];
		struct timespec mtime;
	} kept[KC_KEEP + 1];
	unsigned n = 0;
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		bool legacy = len > 8 && !strcmp(e->d_name + len - 8, ".vmlinux");
		unsigned oldest = 0;

		if ((!legacy && !(len > 3 && !strcmp(e->d_name + len - 3, ".kc"))) ||
		    len >= sizeof(kept[0].name) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || !private_to_us(&st))
			continue;
		if (legacy) {
			(void)unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		memcpy(kept[n].name, e->d_name, len + 1);
		kept[n].mtime = st.st_mtim;
		if (++n <= KC_KEEP)
			continue;
		for (unsigned i = 1; i < n; i++)
			if (kept[i].mtime.tv_sec < kept[oldest].mtime.tv_sec ||
			    (kept[i].mtime.tv_sec == kept[oldest].mtime.tv_sec &&
			     kept[i].mtime.tv_nsec < kept[oldest].mtime.tv_nsec))
				oldest = i;
		(void)unlinkat(dirfd(d), kept[oldest].name, 0);
		kept[oldest] = kept[--n];
	}
	closedir(d);
}

bool kcache_get(const char *dir, const uint8_t *kernel, uint64_t len, const struct bzimage_info *bi,
                struct unpacked_kernel *out, char *why, size_t why_len)
{
	struct bzimage_payload p;
	struct cl_diag d = { "" };
	char path[4200];
	uint64_t off;
	int fd;

	memset(out, 0, sizeof(*out));
	if (!dir)
		return fail(why, why_len, "the kernel cache is off");
	if (bzimage_find_payload(kernel, len, bi, &p, &d) != BOOT_OK)
		return fail(why, why_len, "%s", d.msg);
	if (!p.zstd)
		return fail(why, why_len, "the kernel payload is not zstd");
	if (!usable_dir(dir, why, why_len))
		return false;
	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".kc", dir, fingerprint(kernel, len));
	off = kernel_offset(len);

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		uint8_t *map = map_entry(fd, kernel, len, p.unpacked_len);

		if (map)
			(void)futimens(fd, NULL); /* recently used: prune() keeps it */
		close(fd);
		if (map) {
			out->map = map;
			out->map_len = off + p.unpacked_len;
			out->data = map + off;
			out->len = p.unpacked_len;
			out->from_cache = true;
			return true;
		}
		/* Not ours, another kernel with the same fingerprint, or the wrong size (a torn
		 * write cannot happen: files are renamed into place): unpack and replace it. */
		(void)unlink(path);
	}

	out->owned = malloc((size_t)(off + p.unpacked_len));
	if (!out->owned)
		return fail(why, why_len, "no memory to unpack the kernel");
	memset(out->owned, 0, (size_t)off);
	memcpy(out->owned, KC_MAGIC, 8);
	cl_put_le64(out->owned + 8, len);
	cl_put_le64(out->owned + 16, off);
	cl_put_le64(out->owned + 24, p.unpacked_len);
	memcpy(out->owned + KC_HEADER, kernel, (size_t)len);
	if (bzimage_unpack(&p, out->owned + off, &d) != BOOT_OK) {
		kcache_release(out);
		return fail(why, why_len, "%s", d.msg);
	}
	out->data = out->owned + off;
	out->len = p.unpacked_len;
	/* A failed store only costs the next launch the same work again. */
	if (cl_file_write_atomic(path, out->owned, (size_t)(off + out->len), 0644, &d) == 0)
		prune(dir);
	return true;
}

void kcache_release(struct unpacked_kernel *k)
{
	if (k->map)
		munmap(k->map, (size_t)k->map_len);
	free(k->owned);
	memset(k, 0, sizeof(*k));
}

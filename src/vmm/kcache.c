/* SPDX-License-Identifier: Apache-2.0 */
/* The unpacked-kernel cache (kcache.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/util/file.h"
#include "lib/util/hex.h"
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

bool kcache_get(const char *dir, const uint8_t *kernel, uint64_t len, const struct bzimage_info *bi,
                struct unpacked_kernel *out, char *why, size_t why_len)
{
	struct bzimage_payload p;
	struct cl_diag d = { "" };
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	char hex[2 * 48 + 1], path[4200];
	struct stat st;
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
	if (!EVP_Digest(kernel, (size_t)len, md, &md_len, EVP_sha384(), NULL) || md_len != 48)
		return fail(why, why_len, "SHA-384 of the kernel failed");
	cl_hex_encode(md, md_len, hex);
	snprintf(path, sizeof(path), "%s/%s.vmlinux", dir, hex);

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		void *map = MAP_FAILED;

		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && private_to_us(&st) &&
		    (uint64_t)st.st_size == p.unpacked_len)
			map = mmap(NULL, (size_t)p.unpacked_len, PROT_READ, MAP_PRIVATE, fd, 0);
		close(fd);
		if (map != MAP_FAILED) {
			out->map = map;
			out->data = map;
			out->len = p.unpacked_len;
			out->from_cache = true;
			return true;
		}
		/* Not ours, or the wrong size (a torn write cannot happen: files are renamed
		 * into place): unpack again and replace it. */
		(void)unlink(path);
	}

	out->owned = malloc((size_t)p.unpacked_len);
	if (!out->owned)
		return fail(why, why_len, "no memory to unpack the kernel");
	if (bzimage_unpack(&p, out->owned, &d) != BOOT_OK) {
		kcache_release(out);
		return fail(why, why_len, "%s", d.msg);
	}
	out->data = out->owned;
	out->len = p.unpacked_len;
	/* A failed store only costs the next launch the same work again. */
	(void)cl_file_write_atomic(path, out->owned, (size_t)out->len, 0644, &d);
	return true;
}

void kcache_release(struct unpacked_kernel *k)
{
	if (k->map)
		munmap(k->map, (size_t)k->len);
	free(k->owned);
	memset(k, 0, sizeof(*k));
}

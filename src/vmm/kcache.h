/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_KCACHE_H
#define CLOISTER_VMM_KCACHE_H

/*
 * The unpacked-kernel cache (vmlinux.h, docs/design.md): one file per bzImage, holding the
 * bzImage's bytes and what its decompressor would produce, used only when those bytes equal the
 * kernel being launched (kcache.c). A launch of a kernel seen before maps that file instead of
 * having the guest decompress ~11 MB of zstd;
 * the first launch unpacks it here and stores it. The directory and its files must belong to
 * the user running the monitor and be writable by nobody else (anyone who could write them
 * could choose the enclave's kernel); otherwise, or when it cannot be created, the cache is
 * not used and the guest decompresses its kernel as always.
 *
 * Default directory: $CLOISTER_KERNEL_CACHE, else /var/cache/cloister/kernels; "off" turns
 * the cache (and with it the unpacked boot) off.
 */

#include <stdbool.h>
#include <stdint.h>

#include "vmm/arch/x86_64/boot.h"

struct unpacked_kernel {
	const uint8_t *data;
	uint64_t len;
	bool from_cache;
	void *map; /* mmap of the cache file, or NULL */
	uint64_t map_len;
	uint8_t *owned; /* malloc'd, or NULL */
};

/* The default directory (see above), or NULL when turned off. */
const char *kcache_default_dir(void);

/*
 * The unpacked kernel of the bzImage @kernel (@len bytes, header parsed into @bi), from the
 * cache in @dir (NULL: no cache) or unpacked now and stored there. Returns false — boot the
 * bzImage as it is — when there is no usable cache, the payload is not zstd, or anything else
 * stands in the way; @why then says what (for the debug log).
 */
bool kcache_get(const char *dir, const uint8_t *kernel, uint64_t len, const struct bzimage_info *bi,
                struct unpacked_kernel *out, char *why, size_t why_len);

/* Release what kcache_get() returned (safe on a zeroed struct). */
void kcache_release(struct unpacked_kernel *k);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* Unpacking and placing the kernel a bzImage carries (vmlinux.h). */
#include <dlfcn.h>
#include <string.h>

#include <zstd.h>

#include "lib/util/checked.h"
#include "vmm/arch/x86_64/vmlinux.h"

#define BP_VERSION 0x206
#define BP_PAYLOAD_OFFSET 0x248
#define BP_PAYLOAD_LENGTH 0x24c

#define MiB (1024ULL * 1024)
#define KERNEL_IMAGE_SIZE (1024 * MiB) /* x86_64 with RANDOMIZE_BASE */
#define PHYSICAL_ALIGN (2 * MiB)
#define START_KERNEL_MAP 0xffffffff80000000ULL

/* The most we unpack: more than any kernel's image, less than a hostile size field could ask. */
#define UNPACKED_MAX (512 * MiB)

#define ELF_PHDR_SIZE 56
#define PT_LOAD 1

enum boot_err bzimage_find_payload(const uint8_t *kernel, uint64_t len,
                                   const struct bzimage_info *bi, struct bzimage_payload *out,
                                   struct cl_diag *d)
{
	static const uint8_t zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	uint64_t off, plen;

	memset(out, 0, sizeof(*out));
	if (bi->version < 0x0208 || len < BP_PAYLOAD_LENGTH + 4) {
		cl_diag_set(d, "boot protocol %u.%02u has no payload fields", bi->version >> 8,
		            bi->version & 0xff);
		return BOOT_ERR_OLD_PROTOCOL;
	}
	off = bi->pm_offset + cl_get_le32(kernel + BP_PAYLOAD_OFFSET);
	plen = cl_get_le32(kernel + BP_PAYLOAD_LENGTH);
	if (plen < 8 || off > len || plen > len - off) {
		cl_diag_set(
		        d, "kernel payload [0x%llx, +0x%llx) is not inside the %llu-byte bzImage",
		        (unsigned long long)off, (unsigned long long)plen, (unsigned long long)len);
		return BOOT_ERR_NOT_BZIMAGE;
	}
	out->data = kernel + off;
	out->len = plen;
	out->unpacked_len = cl_get_le32(out->data + plen - 4);
	out->zstd = memcmp(out->data, zstd_magic, sizeof(zstd_magic)) == 0;
	if (out->unpacked_len < 64 || out->unpacked_len > UNPACKED_MAX) {
		cl_diag_set(d, "kernel payload claims %llu bytes unpacked",
		            (unsigned long long)out->unpacked_len);
		return BOOT_ERR_NOT_BZIMAGE;
	}
	return BOOT_OK;
}

/* libzstd is loaded only while a kernel is unpacked (a kernel-cache miss) and unloaded after,
 * so a running enclave's process maps no decompressor: less memory per enclave and less code in
 * the process that handles the guest's input. */
struct zstd_lib {
	void *handle;
	__typeof__(ZSTD_decompress) *decompress;
	__typeof__(ZSTD_isError) *is_error;
	__typeof__(ZSTD_getErrorName) *error_name;
};

static int zstd_open(struct zstd_lib *z, struct cl_diag *d)
{
	const char *err;

	z->handle = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!z->handle) {
		err = dlerror();
		cl_diag_set(d,
		            "cannot load libzstd.so.1 to unpack the kernel (%s): install libzstd1",
		            err ? err : "not found");
		return -1;
	}
	z->decompress = (__typeof__(z->decompress))dlsym(z->handle, "ZSTD_decompress");
	z->is_error = (__typeof__(z->is_error))dlsym(z->handle, "ZSTD_isError");
	z->error_name = (__typeof__(z->error_name))dlsym(z->handle, "ZSTD_getErrorName");
	if (!z->decompress || !z->is_error || !z->error_name) {
		cl_diag_set(d, "libzstd.so.1 lacks ZSTD_decompress, ZSTD_isError or "
		               "ZSTD_getErrorName");
		dlclose(z->handle);
		return -1;
	}
	return 0;
}

enum boot_err bzimage_unpack(const struct bzimage_payload *p, uint8_t *dst, struct cl_diag *d)
{
	enum boot_err e = BOOT_OK;
	struct zstd_lib z;
	size_t n;

	if (!p->zstd) {
		cl_diag_set(d, "kernel payload is not zstd-compressed");
		return BOOT_ERR_NOT_BZIMAGE;
	}
	if (zstd_open(&z, d) < 0)
		return BOOT_ERR_NOT_BZIMAGE;
	/* The size trailer is outside the zstd frame: give the decoder the frame alone. */
	n = z.decompress(dst, (size_t)p->unpacked_len, p->data, (size_t)p->len - 4);
	if (z.is_error(n) || n != p->unpacked_len) {
		cl_diag_set(d, "unpacking the kernel: %s",
		            z.is_error(n) ? z.error_name(n) : "size differs from its trailer");
		e = BOOT_ERR_NOT_BZIMAGE;
	}
	dlclose(z.handle);
	return e;
}

uint64_t vmlinux_kaslr_offset(uint64_t random, uint64_t image_size)
{
	uint64_t room = KERNEL_IMAGE_SIZE - 16 * MiB;

	if (image_size >= room)
		return 0;
	return (random % (1 + (room - image_size) / PHYSICAL_ALIGN)) * PHYSICAL_ALIGN;
}

/* One table of the relocation list, walked backwards from *@at (an index into the 32-bit
 * entries, never below @floor) to its zero terminator, which is left behind. Applies (kind 0)
 * a 32-bit add, (kind 1) a 32-bit subtract, (kind 2) a 64-bit add of @delta. */
static enum boot_err relocate(const struct gpa_space *mem, const uint8_t *table, uint64_t *at,
                              uint64_t floor, const struct vmlinux_layout *k, int kind,
                              uint64_t delta, unsigned *count, struct cl_diag *d)
{
	static const char *const names[3] = { "32-bit", "inverse 32-bit", "64-bit" };
	unsigned width = kind == 2 ? 8 : 4;

	for (;;) {
		int32_t entry;
		uint64_t pa;
		uint8_t *p;

		if (*at <= floor) {
			cl_diag_set(d, "kernel relocation table has no end (%s)", names[kind]);
			return BOOT_ERR_NOT_BZIMAGE;
		}
		entry = (int32_t)cl_get_le32(table + 4 * --*at);
		if (entry == 0)
			return BOOT_OK;
		/* A kernel virtual address, sign-extended; its physical place is its offset from
		 * the start of the kernel map (the kernel sits at its link address). */
		pa = (uint64_t)(int64_t)entry - START_KERNEL_MAP;
		if (pa < k->start || pa > k->end - width || !(p = gpa_translate(mem, pa, width))) {
			cl_diag_set(d, "kernel %s relocation at 0x%llx is outside the kernel",
			            names[kind], (unsigned long long)pa);
			return BOOT_ERR_NOT_BZIMAGE;
		}
		if (kind == 2) {
			uint64_t v;

			memcpy(&v, p, 8);
			v += delta;
			memcpy(p, &v, 8);
		} else {
			uint32_t v;

			memcpy(&v, p, 4);
			v = kind == 0 ? v + (uint32_t)delta : v - (uint32_t)delta;
			memcpy(p, &v, 4);
		}
		++*count;
	}
}

enum boot_err vmlinux_load(const struct gpa_space *mem, const uint8_t *img, uint64_t len,
                           uint64_t min_addr, uint64_t max_addr, uint64_t virt_offset,
                           struct vmlinux_layout *out, struct cl_diag *d)
{
	uint64_t phoff, elf_end = 0;
	unsigned phnum;

	memset(out, 0, sizeof(*out));
	if (len < 64 || memcmp(img, "\177ELF", 4) != 0 || img[4] != 2 /* ELFCLASS64 */ ||
	    img[5] != 1 /* little-endian */ || cl_get_le16(img + 18) != 62 /* EM_X86_64 */) {
		cl_diag_set(d, "the unpacked kernel is not an x86_64 ELF file");
		return BOOT_ERR_NOT_BZIMAGE;
	}
	phoff = cl_get_le64(img + 32);
	phnum = cl_get_le16(img + 56);
	if (cl_get_le16(img + 54) != ELF_PHDR_SIZE || phnum == 0 || phoff > len ||
	    (uint64_t)phnum * ELF_PHDR_SIZE > len - phoff) {
		cl_diag_set(d, "the unpacked kernel's program headers are not inside it");
		return BOOT_ERR_NOT_BZIMAGE;
	}
	out->start = UINT64_MAX;
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = img + phoff + (uint64_t)i * ELF_PHDR_SIZE;
		uint64_t off = cl_get_le64(ph + 8), pa = cl_get_le64(ph + 24),
		         filesz = cl_get_le64(ph + 32), memsz = cl_get_le64(ph + 40);
		uint8_t *dst;

		if (cl_get_le32(ph) != PT_LOAD)
			continue;
		if (filesz > memsz || off > len || filesz > len - off || pa < min_addr ||
		    pa > max_addr || memsz > max_addr - pa ||
		    !(dst = gpa_translate(mem, pa, memsz))) {
			cl_diag_set(d,
			            "kernel segment %u (0x%llx bytes at 0x%llx) does not fit in "
			            "[0x%llx, 0x%llx) or in its file",
			            i, (unsigned long long)memsz, (unsigned long long)pa,
			            (unsigned long long)min_addr, (unsigned long long)max_addr);
			return BOOT_ERR_TOO_BIG;
		}
		memcpy(dst, img + off, filesz);
		memset(dst + filesz, 0, memsz - filesz);
		if (pa < out->start)
			out->start = pa;
		if (pa + memsz > out->end)
			out->end = pa + memsz;
		if (off + filesz > elf_end)
			elf_end = off + filesz;
	}
	if (out->start == UINT64_MAX) {
		cl_diag_set(d, "the unpacked kernel has no loadable segment");
		return BOOT_ERR_NOT_BZIMAGE;
	}
	out->entry = cl_get_le64(img + 24);
	if (out->entry < out->start || out->entry >= out->end) {
		cl_diag_set(d, "the kernel's entry point 0x%llx is outside its segments",
		            (unsigned long long)out->entry);
		return BOOT_ERR_NOT_BZIMAGE;
	}
	if (virt_offset) {
		/* The table ends the unpacked image: 32-bit entries, walked from the end; three
		 * lists, each after (below) a zero. It lies past every segment's bytes. */
		uint64_t at = len / 4;
		enum boot_err e;

		if (len % 4 || len - elf_end < 12) {
			cl_diag_set(d, "the unpacked kernel carries no relocation table");
			return BOOT_ERR_NOT_BZIMAGE;
		}
		for (int kind = 0; kind < 3; kind++) {
			e = relocate(mem, img, &at, (elf_end + 3) / 4, out, kind, virt_offset,
			             &out->relocations, d);
			if (e != BOOT_OK)
				return e;
		}
	}
	return BOOT_OK;
}

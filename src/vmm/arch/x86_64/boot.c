/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "lib/util/checked.h"
#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/vmlinux.h"

/* struct boot_params / setup header offsets (Documentation/arch/x86/zero-page.rst, boot.rst) */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_SETUP_SECTS 0x1f1
#define BP_VID_MODE 0x1fa
#define BP_BOOT_FLAG 0x1fe
#define BP_JUMP 0x200
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_INIT_SIZE 0x260
#define BP_E820_TABLE 0x2d0
#define BP_SIZE 0x1000
#define E820_MAX 128

#define LOADFLAGS_LOADED_HIGH 0x01
#define LOADFLAGS_KASLR 0x02
#define XLF_KERNEL_64 0x01
#define E820_RAM 1
#define E820_RESERVED 2

#define MiB (1024ULL * 1024)

const char *boot_strerror(enum boot_err e)
{
	switch (e) {
	case BOOT_OK:
		return "success";
	case BOOT_ERR_NOT_BZIMAGE:
		return "the kernel is not an x86 bzImage";
	case BOOT_ERR_OLD_PROTOCOL:
		return "the kernel has no 64-bit boot entry";
	case BOOT_ERR_TOO_BIG:
		return "the boot image does not fit in enclave memory";
	case BOOT_ERR_BAD_SOURCE:
		return "a boot image section lies outside enclave memory";
	case BOOT_ERR_CMDLINE:
		return "the kernel command line is invalid";
	}
	return "unknown boot error";
}

enum boot_err bzimage_parse(const uint8_t *buf, uint64_t len, struct bzimage_info *out,
                            struct cl_diag *d)
{
	struct bzimage_info bi;

	memset(&bi, 0, sizeof(bi));
	if (len < BP_INIT_SIZE + 4) {
		cl_diag_set(d, "kernel is %llu bytes, too short for a bzImage setup header",
		            (unsigned long long)len);
		return BOOT_ERR_NOT_BZIMAGE;
	}
	if (cl_get_le16(buf + BP_BOOT_FLAG) != 0xaa55 || memcmp(buf + BP_HEADER, "HdrS", 4) != 0) {
		cl_diag_set(d,
		            "kernel has no bzImage signature (boot_flag 0x%04x, header "
		            "0x%08x; expected 0xaa55 and \"HdrS\")",
		            cl_get_le16(buf + BP_BOOT_FLAG), cl_get_le32(buf + BP_HEADER));
		return BOOT_ERR_NOT_BZIMAGE;
	}
	bi.version = cl_get_le16(buf + BP_VERSION);
	bi.xloadflags = cl_get_le16(buf + BP_XLOADFLAGS);
	/* 2.12 added xloadflags; we need XLF_KERNEL_64 to enter at +0x200 in long mode. */
	if (bi.version < 0x020c || !(bi.xloadflags & XLF_KERNEL_64)) {
		cl_diag_set(d,
		            "kernel boot protocol %u.%02u with xloadflags 0x%x has no 64-bit "
		            "entry (need protocol >= 2.12 and XLF_KERNEL_64)",
		            bi.version >> 8, bi.version & 0xff, bi.xloadflags);
		return BOOT_ERR_OLD_PROTOCOL;
	}
	bi.setup_sects = buf[BP_SETUP_SECTS] ? buf[BP_SETUP_SECTS] : 4;
	bi.pm_offset = ((uint64_t)bi.setup_sects + 1) * 512;
	if (bi.pm_offset + LAYOUT_KERNEL_ENTRY64_OFF >= len) {
		cl_diag_set(d,
		            "kernel setup (%u sectors) leaves no protected-mode code in a "
		            "%llu-byte file",
		            bi.setup_sects, (unsigned long long)len);
		return BOOT_ERR_NOT_BZIMAGE;
	}
	bi.pm_size = len - bi.pm_offset;
	bi.hdr_end = BP_HEADER + buf[BP_JUMP + 1];
	if (bi.hdr_end > len || bi.hdr_end > BP_SIZE) {
		cl_diag_set(d, "kernel setup header ends at 0x%x, past the end", bi.hdr_end);
		return BOOT_ERR_NOT_BZIMAGE;
	}
	bi.initrd_addr_max = cl_get_le32(buf + BP_INITRD_ADDR_MAX);
	bi.cmdline_size = cl_get_le32(buf + BP_CMDLINE_SIZE);
	bi.init_size = cl_get_le32(buf + BP_INIT_SIZE);
	*out = bi;
	return BOOT_OK;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void e820_add(uint8_t *zp, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t n = zp[BP_E820_ENTRIES];
	uint8_t *e = zp + BP_E820_TABLE + 20 * n;

	cl_put_le64(e, addr);
	cl_put_le64(e + 8, size);
	cl_put_le32(e + 16, type);
	zp[BP_E820_ENTRIES] = (uint8_t)(n + 1);
}

/* GDT: null, null, 64-bit code (0x10), flat data (0x18). */
static void write_gdt(uint8_t *gdt)
{
	static const uint64_t entries[4] = { 0, 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL };

	for (int i = 0; i < 4; i++)
		cl_put_le64(gdt + 8 * i, entries[i]);
}

/* Identity map of the low 4 GiB with 2 MiB pages: enough for the kernel's own early code, which
 * builds its own tables at once. */
static void write_page_tables(uint8_t *pml4, uint8_t *pdpt, uint8_t *pd)
{
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	cl_put_le64(pml4, LAYOUT_PDPT_ADDR | 0x3);
	for (uint64_t i = 0; i < 4; i++)
		cl_put_le64(pdpt + 8 * i, (LAYOUT_PD_ADDR + 4096 * i) | 0x3);
	for (uint64_t j = 0; j < 4 * 512; j++)
		cl_put_le64(pd + 8 * j, (j * 2 * MiB) | 0x83); /* present, writable, 2 MiB page */
}

enum boot_err boot_setup(const struct gpa_space *mem, uint64_t low_ram_end, uint64_t high_ram,
                         const struct boot_image *img, uint64_t rsdp_addr, struct boot_layout *out,
                         struct cl_diag *d)
{
	const uint8_t *kernel;
	struct bzimage_info bi;
	uint8_t *zp, *cmdline, *gdt, *pml4, *pdpt, *pd;
	uint64_t initrd_size = 0, initrd_addr = 0, kernel_end, limit;
	enum boot_err e;

	memset(out, 0, sizeof(*out));
	kernel = gpa_translate(mem, img->kernel.gpa, img->kernel.len);
	if (!kernel) {
		cl_diag_set(d, "kernel section [0x%llx, +0x%llx) is outside enclave memory",
		            (unsigned long long)img->kernel.gpa,
		            (unsigned long long)img->kernel.len);
		return BOOT_ERR_BAD_SOURCE;
	}
	e = bzimage_parse(kernel, img->kernel.len, &bi, d);
	if (e != BOOT_OK)
		return e;

	zp = gpa_translate(mem, LAYOUT_ZERO_PAGE_ADDR, BP_SIZE);
	cmdline = gpa_translate(mem, LAYOUT_CMDLINE_ADDR, LAYOUT_CMDLINE_MAX);
	gdt = gpa_translate(mem, LAYOUT_GDT_ADDR, 32);
	pml4 = gpa_translate(mem, LAYOUT_PML4_ADDR, 4096);
	pdpt = gpa_translate(mem, LAYOUT_PDPT_ADDR, 4096);
	pd = gpa_translate(mem, LAYOUT_PD_ADDR, 4 * 4096);
	if (!zp || !cmdline || !gdt || !pml4 || !pdpt || !pd) {
		cl_diag_set(d, "enclave memory does not cover the boot structures below 1 MiB");
		return BOOT_ERR_TOO_BIG;
	}

	/* 1. Command line (below 1 MiB: never overlaps the image at 8 MiB). */
	{
		const uint8_t *src = gpa_translate(mem, img->cmdline.gpa, img->cmdline.len);
		uint64_t max = bi.cmdline_size < LAYOUT_CMDLINE_MAX - 1 ? bi.cmdline_size
		                                                        : LAYOUT_CMDLINE_MAX - 1;

		if (!src) {
			cl_diag_set(d, "command line section is outside enclave memory");
			return BOOT_ERR_BAD_SOURCE;
		}
		if (img->cmdline.len > max || memchr(src, 0, img->cmdline.len)) {
			cl_diag_set(d,
			            "kernel command line of %llu bytes is longer than the "
			            "kernel's %llu or contains a NUL byte",
			            (unsigned long long)img->cmdline.len, (unsigned long long)max);
			return BOOT_ERR_CMDLINE;
		}
		memcpy(cmdline, src, img->cmdline.len);
		cmdline[img->cmdline.len] = '\0';
	}

	/* 2. The ramdisks, concatenated, page-aligned at the top of low RAM below
	 * initrd_addr_max (nitro-compat §1.1: the hypervisor concatenates all ramdisks). */
	for (unsigned i = 0; i < img->nramdisks; i++)
		if (!cl_add_u64(initrd_size, img->ramdisk[i].len, &initrd_size)) {
			cl_diag_set(d, "ramdisk sizes overflow");
			return BOOT_ERR_TOO_BIG;
		}
	/* The decompressor runs from 1 MiB and, without KASLR, extracts to the kernel's
	 * LOAD_PHYSICAL_ADDR: keep both free of the initrd. */
	kernel_end = LAYOUT_KERNEL_ADDR + bi.pm_size;
	if (LAYOUT_KERNEL_EXTRACT_ADDR + bi.init_size > kernel_end)
		kernel_end = LAYOUT_KERNEL_EXTRACT_ADDR + bi.init_size;
	if (initrd_size) {
		limit = (uint64_t)bi.initrd_addr_max + 1;
		if (limit > low_ram_end)
			limit = low_ram_end;
		if (initrd_size > limit || ((limit - initrd_size) & ~4095ULL) < kernel_end) {
			cl_diag_set(d,
			            "the %llu MiB of ramdisks and the %llu MiB kernel do not fit "
			            "below %llu MiB; give the enclave more memory",
			            (unsigned long long)(initrd_size / MiB),
			            (unsigned long long)((kernel_end - LAYOUT_KERNEL_ADDR) / MiB),
			            (unsigned long long)(limit / MiB));
			return BOOT_ERR_TOO_BIG;
		}
		initrd_addr = (limit - initrd_size) & ~4095ULL;
		if (overlaps(initrd_addr, initrd_size, img->image.gpa, img->image.len)) {
			cl_diag_set(d,
			            "the initrd at 0x%llx would overwrite the image at 0x%llx "
			            "before it is read; give the enclave more memory",
			            (unsigned long long)initrd_addr,
			            (unsigned long long)img->image.gpa);
			return BOOT_ERR_TOO_BIG;
		}
		uint64_t at = initrd_addr;
		for (unsigned i = 0; i < img->nramdisks; i++) {
			const struct boot_src *r = &img->ramdisk[i];
			const void *src = gpa_translate(mem, r->gpa, r->len);
			void *dst = gpa_translate(mem, at, r->len);

			if (!src || !dst) {
				cl_diag_set(
				        d, "ramdisk %u [0x%llx, +0x%llx) is outside enclave memory",
				        i, (unsigned long long)r->gpa, (unsigned long long)r->len);
				return BOOT_ERR_BAD_SOURCE;
			}
			memmove(dst, src, r->len);
			at += r->len;
		}
	}

	/* 3. The kernel. The zero page takes the setup header from the source first: the kernel
	 * may overwrite its own source inside the image. Either the unpacked kernel at its link
	 * address (16 MiB; nothing reads the image any more), its decompressor skipped, or the
	 * bzImage's protected-mode code at 1 MiB (memmove copes with the overlap). */
	if (kernel_end > low_ram_end) {
		cl_diag_set(d,
		            "the kernel needs memory up to %llu MiB; give the enclave more memory",
		            (unsigned long long)(kernel_end / MiB));
		return BOOT_ERR_TOO_BIG;
	}
	memset(zp, 0, BP_SIZE);
	memcpy(zp + BP_SETUP_SECTS, kernel + BP_SETUP_SECTS, bi.hdr_end - BP_SETUP_SECTS);
	if (img->vmlinux) {
		struct vmlinux_layout vl;

		e = vmlinux_load(mem, img->vmlinux, img->vmlinux_len, LAYOUT_KERNEL_EXTRACT_ADDR,
		                 LAYOUT_KERNEL_EXTRACT_ADDR + bi.init_size, img->virt_offset, &vl,
		                 d);
		if (e != BOOT_OK)
			return e;
		if (img->kaslr)
			zp[BP_LOADFLAGS] |= LOADFLAGS_KASLR;
		out->entry = vl.entry;
		out->kernel_size = vl.end - vl.start;
		out->unpacked = true;
	} else {
		uint8_t *dst = gpa_translate(mem, LAYOUT_KERNEL_ADDR, bi.pm_size);

		if (!dst) {
			cl_diag_set(
			        d,
			        "the kernel does not fit from 1 MiB; give the enclave more memory");
			return BOOT_ERR_TOO_BIG;
		}
		memmove(dst, kernel + bi.pm_offset, bi.pm_size);
		out->entry = LAYOUT_KERNEL_ADDR + LAYOUT_KERNEL_ENTRY64_OFF;
		out->kernel_size = bi.pm_size;
	}

	/* 4. Zero page: the fields a boot loader fills in. */
	zp[BP_TYPE_OF_LOADER] = 0xff;
	zp[BP_LOADFLAGS] |= LOADFLAGS_LOADED_HIGH;
	cl_put_le16(zp + BP_VID_MODE, 0xffff);
	cl_put_le32(zp + BP_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE_ADDR);
	cl_put_le32(zp + BP_EXT_CMD_LINE_PTR, 0);
	cl_put_le32(zp + BP_RAMDISK_IMAGE, (uint32_t)initrd_addr);
	cl_put_le32(zp + BP_RAMDISK_SIZE, (uint32_t)initrd_size);
	cl_put_le32(zp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_addr >> 32));
	cl_put_le32(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	cl_put_le64(zp + BP_ACPI_RSDP_ADDR, rsdp_addr);
	e820_add(zp, 0, LAYOUT_EBDA_ADDR, E820_RAM);
	e820_add(zp, LAYOUT_EBDA_ADDR, LAYOUT_EBDA_SIZE, E820_RESERVED);
	e820_add(zp, LAYOUT_ACPI_ADDR, LAYOUT_ACPI_SIZE, E820_RESERVED);
	e820_add(zp, LAYOUT_KERNEL_ADDR, low_ram_end - LAYOUT_KERNEL_ADDR, E820_RAM);
	if (high_ram)
		e820_add(zp, LAYOUT_HIGH_RAM_ADDR, high_ram, E820_RAM);

	write_gdt(gdt);
	write_page_tables(pml4, pdpt, pd);

	out->zero_page = LAYOUT_ZERO_PAGE_ADDR;
	out->pml4 = LAYOUT_PML4_ADDR;
	out->initrd_addr = initrd_addr;
	out->initrd_size = initrd_size;
	return BOOT_OK;
}

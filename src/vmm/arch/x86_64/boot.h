/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_BOOT_H
#define CLOISTER_VMM_BOOT_H

/*
 * Direct Linux boot on x86_64 (the kernel's boot protocol, Documentation/arch/x86/boot.rst),
 * with no firmware: the monitor lays out the kernel, command line, initrd, zero page (struct
 * boot_params with e820), GDT and identity page tables in guest memory and enters the bzImage's
 * 64-bit entry point directly. What worked is recorded in docs/direct-boot.md.
 */

#include <stdbool.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "vmm/kvm/gpa.h"

enum boot_err {
	BOOT_OK = 0,
	BOOT_ERR_NOT_BZIMAGE, /* no boot sector signature / "HdrS" header, or too short */
	BOOT_ERR_OLD_PROTOCOL, /* boot protocol < 2.12 or no 64-bit entry */
	BOOT_ERR_TOO_BIG, /* kernel, initrd or command line do not fit in guest RAM */
	BOOT_ERR_BAD_SOURCE, /* a section does not lie inside guest RAM */
	BOOT_ERR_CMDLINE, /* command line too long or contains a NUL */
};

const char *boot_strerror(enum boot_err e);

/* What the monitor needs from a bzImage's setup header. */
struct bzimage_info {
	uint16_t version; /* boot protocol, e.g. 0x020f */
	uint8_t setup_sects; /* 512-byte setup sectors (0 means 4) */
	uint64_t pm_offset; /* file offset of the protected-mode code */
	uint64_t pm_size; /* its size */
	uint32_t hdr_end; /* setup header ends here (0x202 + byte at 0x201) */
	uint32_t initrd_addr_max; /* highest address the initrd may occupy */
	uint32_t cmdline_size; /* longest command line without the NUL */
	uint32_t init_size; /* memory the kernel needs from its load address */
	uint16_t xloadflags;
};

/*
 * Parse the setup header of the bzImage in @buf (@len bytes, untrusted). Fills @out, or returns
 * an error with @d naming the offending field. A plain byte-buffer function (fuzzable).
 */
enum boot_err bzimage_parse(const uint8_t *buf, uint64_t len, struct bzimage_info *out,
                            struct cl_diag *d);

/* A piece of the boot image, already in guest memory (inside the EIF copied to 8 MiB). */
struct boot_src {
	uint64_t gpa;
	uint64_t len;
};

#define BOOT_MAX_RAMDISKS 32

struct boot_image {
	struct boot_src kernel;
	struct boot_src cmdline; /* no NUL terminator (EIF cmdline sections have none) */
	struct boot_src ramdisk[BOOT_MAX_RAMDISKS];
	unsigned nramdisks;
	/* Guest range that still holds sources while we lay out (the EIF): destinations that
	 * overlap it are refused, except the kernel which is moved last. */
	struct boot_src image;
	/* Optional (vmlinux.h): the kernel the bzImage carries, already unpacked (host memory,
	 * @vmlinux_len bytes). When set, its segments are placed and its entry point entered,
	 * and the bzImage's decompressor never runs; its setup header still fills the zero
	 * page. @virt_offset is the KASLR virtual offset to relocate by (0: none); @kaslr says
	 * whether to tell the kernel KASLR is on (it is, unless the command line says
	 * nokaslr), as the decompressor does. */
	const uint8_t *vmlinux;
	uint64_t vmlinux_len;
	uint64_t virt_offset;
	bool kaslr;
};

/* Where things ended up, for the vCPU setup and the log. */
struct boot_layout {
	uint64_t entry; /* RIP of the boot vCPU */
	uint64_t zero_page; /* RSI */
	uint64_t pml4; /* CR3 */
	uint64_t initrd_addr; /* 0 when there is no initrd */
	uint64_t initrd_size;
	uint64_t kernel_size;
	bool unpacked; /* the kernel was placed unpacked (boot_image.vmlinux) */
};

/*
 * Lay out @img in guest memory @mem (RAM from 0 up to @low_ram_end, plus @high_ram bytes at
 * 4 GiB): command line, concatenated ramdisks at the top of low RAM, kernel at 1 MiB, zero page
 * with e820 and @rsdp_addr, GDT and page tables. Every guest range goes through gpa_translate.
 */
enum boot_err boot_setup(const struct gpa_space *mem, uint64_t low_ram_end, uint64_t high_ram,
                         const struct boot_image *img, uint64_t rsdp_addr, struct boot_layout *out,
                         struct cl_diag *d);

#endif

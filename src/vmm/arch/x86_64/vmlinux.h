/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_VMLINUX_H
#define CLOISTER_VMM_VMLINUX_H

/*
 * Booting a bzImage without its decompressor: the monitor unpacks the kernel the bzImage
 * carries (its payload: the ELF vmlinux followed by the relocation table, zstd-compressed in
 * the Debian kernels), places its segments where the decompressor would, applies the same
 * KASLR relocations, and enters the kernel's own 64-bit entry point. The unpacked kernel is
 * cached per bzImage (monitor.c), so later launches of the same kernel skip the unpacking
 * altogether: the guest's decompression was ~0.55 s of a ~3 s launch in the parent instance
 * (docs/direct-boot.md). Measurements (PCRs) are of the EIF's bytes and do not change.
 *
 * Everything here takes untrusted bytes (the EIF's kernel) and checks every offset and size.
 */

#include <stdint.h>

#include "cloister/diag.h"
#include "vmm/arch/x86_64/boot.h"
#include "vmm/kvm/gpa.h"

/* The compressed kernel inside a bzImage (setup header payload_offset/payload_length). */
struct bzimage_payload {
	const uint8_t *data;
	uint64_t len;
	uint64_t unpacked_len; /* from its last four bytes (le32), as the decompressor reads it */
	bool zstd; /* the only format unpacked here; others boot through the decompressor */
};

/*
 * Find the payload of the bzImage @kernel (@len bytes, header already parsed into @bi). Returns
 * BOOT_OK and fills @out, or an error (with @d) when the header's payload fields are missing
 * (protocol < 2.08) or point outside the file, or the unpacked size is implausible.
 */
enum boot_err bzimage_find_payload(const uint8_t *kernel, uint64_t len,
                                   const struct bzimage_info *bi, struct bzimage_payload *out,
                                   struct cl_diag *d);

/* Unpack a zstd payload into @dst (@p->unpacked_len bytes). */
enum boot_err bzimage_unpack(const struct bzimage_payload *p, uint8_t *dst, struct cl_diag *d);

/* Where an unpacked kernel went. */
struct vmlinux_layout {
	uint64_t entry; /* guest-physical entry point (the ELF's e_entry) */
	uint64_t start, end; /* guest-physical span of its segments */
	unsigned relocations; /* entries applied (0 without a virtual offset) */
};

/*
 * Place the unpacked kernel @img (@len bytes: ELF64 x86_64 vmlinux, then its relocation
 * table) in guest memory: each PT_LOAD at its p_paddr (which must lie in [@min_addr,
 * @max_addr)), bss zeroed; then, when @virt_offset is non-zero, the relocations the bzImage's
 * decompressor applies for a KASLR virtual offset (arch/x86/boot/compressed/misc.c): 32-bit,
 * inverse 32-bit and 64-bit entries, each checked to fall inside the placed kernel.
 */
enum boot_err vmlinux_load(const struct gpa_space *mem, const uint8_t *img, uint64_t len,
                           uint64_t min_addr, uint64_t max_addr, uint64_t virt_offset,
                           struct vmlinux_layout *out, struct cl_diag *d);

/*
 * The KASLR virtual offset for slot @random of a kernel of @image_size bytes, as the
 * decompressor picks it: a multiple of 2 MiB keeping the kernel inside the 1 GiB kernel
 * image area above its link address. 0 = no offset.
 */
uint64_t vmlinux_kaslr_offset(uint64_t random, uint64_t image_size);

#endif

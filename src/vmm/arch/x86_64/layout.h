/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_LAYOUT_H
#define CLOISTER_VMM_LAYOUT_H

/*
 * The enclave's guest-physical memory map: every guest address the monitor uses is defined
 * here and nowhere else (Firecracker's layout.rs habit). x86_64 only.
 *
 *   0x0000_0500  GDT (4 entries)
 *   0x0000_7000  zero page (struct boot_params) — RSI at the 64-bit entry
 *   0x0000_9000  PML4, 0xa000 PDPT, 0xb000..0xefff four page directories (identity map, 4 GiB)
 *   0x0002_0000  kernel command line (up to 64 KiB)
 *   0x0009_fc00  1 KiB reserved (where a BIOS would keep its EBDA)
 *   0x000e_0000  ACPI tables, RSDP first (the kernel also scans here); reserved up to 1 MiB
 *   0x0010_0000  bzImage protected-mode code (64-bit entry at +0x200)
 *   0x0080_0000  the whole EIF file as the parent handed it over (nitro-compat §0, §2.7)
 *   top of RAM   the concatenated ramdisks, page aligned, below initrd_addr_max
 *   0xd000_0000  virtio-mmio windows, 4 KiB each
 *   0xfec0_0000  IOAPIC, 0xfee0_0000 LAPIC (in-kernel irqchip)
 *   4 GiB        RAM above LOW_RAM_MAX continues here
 */

#define LAYOUT_GDT_ADDR 0x500ULL
#define LAYOUT_ZERO_PAGE_ADDR 0x7000ULL
#define LAYOUT_PML4_ADDR 0x9000ULL
#define LAYOUT_PDPT_ADDR 0xa000ULL
#define LAYOUT_PD_ADDR 0xb000ULL /* four consecutive pages: 4 GiB in 2 MiB pages */
#define LAYOUT_CMDLINE_ADDR 0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL
#define LAYOUT_EBDA_ADDR 0x9fc00ULL
#define LAYOUT_EBDA_SIZE 0x400ULL
#define LAYOUT_ACPI_ADDR 0xe0000ULL /* RSDP here: inside the legacy scan window */
#define LAYOUT_ACPI_SIZE 0x20000ULL /* up to 1 MiB, reserved in e820 */
#define LAYOUT_KERNEL_ADDR 0x100000ULL
#define LAYOUT_KERNEL_ENTRY64_OFF 0x200ULL
/* CONFIG_PHYSICAL_START of the Debian kernels: where the decompressor extracts without KASLR. */
#define LAYOUT_KERNEL_EXTRACT_ADDR 0x1000000ULL
#define LAYOUT_EIF_ADDR 0x800000ULL /* NE_GET_IMAGE_LOAD_INFO memory_offset, nitro-compat §5.2 */

/* RAM below 4 GiB ends here; the rest goes above 4 GiB so MMIO/APIC windows stay free. */
#define LAYOUT_LOW_RAM_MAX 0xc0000000ULL
#define LAYOUT_HIGH_RAM_ADDR 0x100000000ULL

#define LAYOUT_MMIO_BASE 0xd0000000ULL
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ULL
#define LAYOUT_VIRTIO_MMIO_MAX 8
#define LAYOUT_VIRTIO_IRQ_BASE 5 /* IOAPIC pins 5..12; 4 is the UART */

#define LAYOUT_IOAPIC_ADDR 0xfec00000ULL
#define LAYOUT_LAPIC_ADDR 0xfee00000ULL
/* KVM on Intel needs three pages for the real-mode TSS and one for the identity map. */
#define LAYOUT_KVM_TSS_ADDR 0xfffbd000ULL
#define LAYOUT_KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

/* Port I/O */
#define LAYOUT_UART_PORT 0x3f8
#define LAYOUT_UART_IRQ 4
#define LAYOUT_I8042_PORT 0x64 /* reads 0; 0xfe = reset (reboot=k) */
#define LAYOUT_RESET_PORT 0xcf9 /* PCI reset control and the FADT RESET_REG */
#define LAYOUT_RESET_VALUE 0x06
#define LAYOUT_SLEEP_CTL_PORT 0x600 /* FADT SLEEP_CONTROL_REG: SLP_TYP=5|SLP_EN = S5 */
#define LAYOUT_SLEEP_STS_PORT 0x601 /* FADT SLEEP_STATUS_REG: reads 0 */
#define LAYOUT_S5_SLP_TYP 5
/* The boot-timer port, CL_BOOT_TIMER_PORT (0x440), is defined with its stages in
 * cloister/boot_timer.h: guests include that header too. */

#define LAYOUT_GDT_CODE64_SEL 0x10
#define LAYOUT_GDT_DATA_SEL 0x18

#endif

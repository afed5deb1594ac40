/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_ACPI_H
#define CLOISTER_VMM_ACPI_H

/*
 * The ACPI tables the monitor hands the enclave kernel instead of firmware: RSDP (rev 2),
 * XSDT, FADT (rev 6, hardware-reduced, with reset and sleep registers), MADT (LAPICs + IOAPIC)
 * and a DSDT written as AML bytes (the 16550 as PNP0501, each virtio-mmio device as LNRO0005,
 * \_S5_). The Debian cloud kernel has no MP tables and no command-line virtio-mmio devices, so
 * ACPI is how it learns about CPUs and devices (docs/direct-boot.md).
 */

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64

struct acpi_virtio {
	uint64_t base; /* MMIO window, LAYOUT_VIRTIO_MMIO_SIZE bytes */
	unsigned irq; /* IOAPIC pin */
};

struct acpi_config {
	unsigned ncpus;
	unsigned nvirtio;
	struct acpi_virtio virtio[8];
};

/*
 * Build all tables into @buf (@cap bytes) which the guest will see at guest-physical @gpa, the
 * RSDP first. Returns the number of bytes used, or 0 if @cap is too small or @cfg out of range.
 */
size_t acpi_build(uint8_t *buf, size_t cap, uint64_t gpa, const struct acpi_config *cfg);

#endif

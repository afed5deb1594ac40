/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_CPU_H
#define CLOISTER_VMM_CPU_H

/* Per-vCPU x86 state: the CPUID table each vCPU sees and the 64-bit entry state of the boot
 * vCPU (docs/direct-boot.md "Entry state"). The other vCPUs get no registers: the in-kernel
 * LAPIC starts them with INIT/SIPI. */

#include "vmm/arch/x86_64/boot.h"
#include "vmm/kvm/vm.h"

#include <stdbool.h>

/* The host processor's brand string (CPUID 0x80000002-4, 48 bytes, NUL-padded) into @out;
 * false, with @out all NULs, when the processor has none. */
bool cpu_host_brand(char out[48]);

/*
 * The CPUID table vCPU @id (of @ncpus) sees: KVM's supported table @supported, adjusted: its
 * APIC id in leaves 1, 0xB, 0x1F and 0x8000001E, the logical processor count, the hypervisor
 * bit, no VMX or SVM (no nested virtualization in an enclave), the TSC-deadline timer when
 * @tsc_deadline (KVM emulates it but leaves it out of the table), and @brand (48 bytes, or
 * NULL) as the processor's brand string in leaves 0x80000002-4, which KVM leaves empty (the
 * guest would call its CPU "AMD 17/01"). malloc'd; NULL when out of memory.
 */
struct kvm_cpuid2 *cpu_cpuid_table(const struct kvm_cpuid2 *supported, unsigned id, unsigned ncpus,
                                   bool tsc_deadline, const char *brand);

/* Give vCPU @id (of @ncpus) its cpu_cpuid_table() (with the host's brand string). */
enum vmm_err cpu_set_cpuid(const struct vm *vm, int vcpu_fd, unsigned id, unsigned ncpus,
                           struct cl_diag *d);

/* Long mode, flat segments, paging on, RIP at the kernel's 64-bit entry, RSI at the zero
 * page, FPU defaults. */
enum vmm_err cpu_set_boot_state(int vcpu_fd, const struct boot_layout *bl, struct cl_diag *d);

#endif

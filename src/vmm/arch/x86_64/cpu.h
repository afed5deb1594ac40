/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_CPU_H
#define CLOISTER_VMM_CPU_H

/* Per-vCPU x86 state: the CPUID table each vCPU sees and the 64-bit entry state of the boot
 * vCPU (docs/direct-boot.md "Entry state"). The other vCPUs get no registers: the in-kernel
 * LAPIC starts them with INIT/SIPI. */

#include "vmm/arch/x86_64/boot.h"
#include "vmm/kvm/vm.h"

/* Give vCPU @id (of @ncpus) KVM's supported CPUID, adjusted: its APIC id in leaves 1, 0xB,
 * 0x1F and 0x8000001E, the logical processor count, and the hypervisor bit. */
enum vmm_err cpu_set_cpuid(const struct vm *vm, int vcpu_fd, unsigned id, unsigned ncpus,
                           struct cl_diag *d);

/* Long mode, flat segments, paging on, RIP at the kernel's 64-bit entry, RSI at the zero
 * page, FPU defaults. */
enum vmm_err cpu_set_boot_state(int vcpu_fd, const struct boot_layout *bl, struct cl_diag *d);

#endif

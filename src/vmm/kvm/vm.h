/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_VM_H
#define CLOISTER_VMM_VM_H

/*
 * One KVM virtual machine: the /dev/kvm and VM file descriptors, the in-kernel irqchip and the
 * guest RAM (hugetlbfs-backed, pre-faulted, locked) registered as memory slots. The guest-physical
 * view of RAM is vm->mem, which every guest access goes through (kvm/gpa.h).
 */

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "cloister/diag.h"
#include "vmm/kvm/gpa.h"

enum vmm_err {
	VMM_OK = 0,
	VMM_ERR_USAGE, /* a configuration value is invalid */
	VMM_ERR_HOST, /* the host cannot run enclaves (KVM missing or unsuitable) */
	VMM_ERR_MEMORY, /* hugepage memory could not be allocated or locked */
	VMM_ERR_IMAGE, /* the EIF is unreadable, malformed or does not fit */
	VMM_ERR_CPU, /* the CPU grant cannot be honoured */
	VMM_ERR_SIGNATURE, /* a signed EIF whose signature does not hold for what it contains */
	VMM_ERR_INTERNAL, /* a KVM or system call failed unexpectedly */
};

const char *vmm_strerror(enum vmm_err e);

struct vm {
	int kvm_fd;
	int vm_fd;
	int run_size; /* mmap size of struct kvm_run */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, malloc'd */
	bool tsc_deadline; /* KVM emulates the LAPIC's TSC-deadline mode (not in the table above) */
	uint8_t *ram;
	uint64_t ram_size;
	bool ram_external; /* vm_ram_attach(): the caller maps and unmaps it */
	uint64_t page_size;
	uint64_t low_ram; /* bytes mapped at guest-physical 0 */
	uint64_t high_ram; /* bytes mapped at 4 GiB */
	struct gpa_space mem;
};

/* Open /dev/kvm, check the capabilities the monitor relies on, create the VM with its
 * in-kernel irqchip. On failure everything opened is closed again and @d says why. */
enum vmm_err vm_open(struct vm *vm, struct cl_diag *d);

/*
 * Allocate @size bytes of guest RAM (a multiple of 2 MiB) from hugetlbfs: 1 GiB pages when the
 * size allows and they are available, else 2 MiB pages, all reserved now (a short pool fails
 * here, with the fix in @d) and faulted in by vm_ram_populate(); registered as KVM memory slots
 * (below LAYOUT_LOW_RAM_MAX at 0, the rest at 4 GiB).
 */
enum vmm_err vm_ram_alloc(struct vm *vm, uint64_t size, struct cl_diag *d);

/*
 * Use @size bytes at @base, already mapped by the caller (hugetlb, e.g. ne_mem_alloc()'s
 * regions laid back to back), as guest RAM: registered as memory slots exactly as
 * vm_ram_alloc() does, but never unmapped here. The caller keeps the mapping until vm_close().
 * Exists because the grant owner (the enclave process) must be the process that maps the
 * enclave's memory (docs/resources.md).
 */
enum vmm_err vm_ram_attach(struct vm *vm, void *base, uint64_t size, struct cl_diag *d);

/*
 * Fault in guest RAM [off, off+len) (offsets into vm->ram) for writing, so the guest never
 * takes a host page fault there. The hugepages themselves were reserved when the RAM was
 * mapped: this cannot run out of memory. Returns 0 or -errno.
 */
int vm_ram_populate(struct vm *vm, uint64_t off, uint64_t len);

/* Pulse an edge on IOAPIC pin @irq. */
void vm_irq_pulse(struct vm *vm, unsigned irq);

/*
 * An eventfd wired to IOAPIC pin @gsi (KVM_IRQFD): each write of a count pulses an edge on it,
 * as vm_irq_pulse does, in one write() instead of two ioctls and from any thread. Returns the
 * fd (the caller closes it), or -1 with @d set.
 */
int vm_irqfd(struct vm *vm, unsigned gsi, struct cl_diag *d);

/*
 * An eventfd that KVM signals when the guest writes the 4-byte value @match to guest-physical
 * @addr (KVM_IOEVENTFD): the write completes inside the kernel and the vCPU runs on, with no
 * exit to this process. For virtio queue notifications. Returns the fd or -1 with @d set.
 */
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t match, struct cl_diag *d);

/* Release everything vm_open/vm_ram_alloc took; safe on a partly set-up or zeroed vm
 * (fds < 0 are skipped: initialise with vm_init first). */
void vm_init(struct vm *vm);
void vm_close(struct vm *vm);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#include <cpuid.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/arch/x86_64/cpu.h"
#include "vmm/arch/x86_64/layout.h"

#define CPUID_1_ECX_VMX (1u << 5)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_SVM (1u << 2)

bool cpu_host_brand(char out[48])
{
	unsigned r[4];

	memset(out, 0, 48);
	if (!__get_cpuid(0x80000000u, &r[0], &r[1], &r[2], &r[3]) || r[0] < 0x80000004u)
		return false;
	for (unsigned i = 0; i < 3; i++) {
		__cpuid(0x80000002u + i, r[0], r[1], r[2], r[3]);
		memcpy(out + 16 * i, r, 16);
	}
	return out[0] != '\0';
}

/* The entry of @fn (index 0) in @c, appended (zeroed) when the table has none: room for
 * CPU_EXTRA_LEAVES was allocated. */
#define CPU_EXTRA_LEAVES 4
static struct kvm_cpuid_entry2 *leaf(struct kvm_cpuid2 *c, uint32_t fn)
{
	struct kvm_cpuid_entry2 *e;

	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == 0)
			return &c->entries[i];
	e = &c->entries[c->nent++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	return e;
}

struct kvm_cpuid2 *cpu_cpuid_table(const struct kvm_cpuid2 *supported, unsigned id, unsigned ncpus,
                                   bool tsc_deadline, const char *brand)
{
	size_t sz = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz + CPU_EXTRA_LEAVES * sizeof(supported->entries[0]));

	if (!c)
		return NULL;
	memcpy(c, supported, sz);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (id << 24) | ((ncpus & 0xff) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			e->ecx &= ~CPUID_1_ECX_VMX;
			if (tsc_deadline)
				e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
			if (ncpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 0xb:
		case 0x1f:
			e->edx = id;
			break;
		case 0x8000001e:
			e->eax = id;
			break;
		/* No virtualization inside an enclave (nor on Nitro): nested VMX/SVM is host
		 * kernel code a guest could reach that no enclave needs. */
		case 0x80000001:
			e->ecx &= ~CPUID_80000001_ECX_SVM;
			break;
		case 0x8000000a:
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		default:
			break;
		}
	}
	if (brand && brand[0]) {
		struct kvm_cpuid_entry2 *max = leaf(c, 0x80000000u);

		if (max->eax < 0x80000004u)
			max->eax = 0x80000004u;
		for (unsigned i = 0; i < 3; i++) {
			struct kvm_cpuid_entry2 *e = leaf(c, 0x80000002u + i);

			memcpy(&e->eax, brand + 16 * i, 4);
			memcpy(&e->ebx, brand + 16 * i + 4, 4);
			memcpy(&e->ecx, brand + 16 * i + 8, 4);
			memcpy(&e->edx, brand + 16 * i + 12, 4);
		}
	}
	return c;
}

enum vmm_err cpu_set_cpuid(const struct vm *vm, int vcpu_fd, unsigned id, unsigned ncpus,
                           struct cl_diag *d)
{
	char brand[48];
	struct kvm_cpuid2 *c;
	int rc;

	cpu_host_brand(brand);
	c = cpu_cpuid_table(vm->cpuid, id, ncpus, vm->tsc_deadline, brand);
	if (!c) {
		cl_diag_set(d, "out of memory");
		return VMM_ERR_INTERNAL;
	}
	rc = ioctl(vcpu_fd, KVM_SET_CPUID2, c);
	free(c);
	if (rc < 0) {
		cl_diag_set(d, "KVM_SET_CPUID2 for vCPU %u: %s", id, strerror(errno));
		return VMM_ERR_INTERNAL;
	}
	return VMM_OK;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code64;
	s->db = !code64;
}

enum vmm_err cpu_set_boot_state(int vcpu_fd, const struct boot_layout *bl, struct cl_diag *d)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		goto fail;
	seg_flat(&sregs.cs, LAYOUT_GDT_CODE64_SEL, 0xb, true); /* execute/read, accessed */
	seg_flat(&sregs.ds, LAYOUT_GDT_DATA_SEL, 0x3, false); /* read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = LAYOUT_GDT_ADDR;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	/* A usable TSS and LDT, as VMX insists on. */
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.limit = 0xffff;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.limit = 0xffff;
	sregs.ldt.type = 0x2;
	sregs.ldt.present = 1;
	sregs.cr0 = 0x80000033; /* PG | NE | ET | MP | PE */
	sregs.cr3 = bl->pml4;
	sregs.cr4 = 0x20; /* PAE */
	sregs.efer = 0x500; /* LMA | LME */
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		goto fail;

	memset(&regs, 0, sizeof(regs));
	regs.rip = bl->entry;
	regs.rsi = bl->zero_page;
	regs.rflags = 0x2;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		goto fail;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		goto fail;
	return VMM_OK;
fail:
	cl_diag_set(d, "setting the boot vCPU's registers: %s", strerror(errno));
	return VMM_ERR_INTERNAL;
}

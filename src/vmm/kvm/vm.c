/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#include "vmm/arch/x86_64/layout.h"
#include "vmm/kvm/vm.h"

#define MiB (1024ULL * 1024)
#define GiB (1024ULL * MiB)

const char *vmm_strerror(enum vmm_err e)
{
	switch (e) {
	case VMM_OK:
		return "success";
	case VMM_ERR_USAGE:
		return "invalid configuration";
	case VMM_ERR_HOST:
		return "this host cannot run enclaves";
	case VMM_ERR_MEMORY:
		return "enclave memory could not be allocated";
	case VMM_ERR_IMAGE:
		return "the enclave image cannot be booted";
	case VMM_ERR_SIGNATURE:
		return "the enclave image's signature does not verify";
	case VMM_ERR_CPU:
		return "the CPU grant cannot be honoured";
	case VMM_ERR_INTERNAL:
		return "internal monitor error";
	}
	return "unknown monitor error";
}

void vm_init(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = -1;
	vm->vm_fd = -1;
}

enum vmm_err vm_open(struct vm *vm, struct cl_diag *d)
{
	static const struct {
		int cap;
		const char *name;
	} caps[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	};
	int n = 64, api;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		cl_diag_set(d,
		            "cannot open /dev/kvm: %s; load kvm-intel or kvm-amd and give this "
		            "user access to /dev/kvm",
		            strerror(errno));
		return VMM_ERR_HOST;
	}
	api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		cl_diag_set(d, "/dev/kvm speaks API version %d, expected %d", api, KVM_API_VERSION);
		goto fail_host;
	}
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0) {
			cl_diag_set(d, "KVM lacks %s, which the monitor needs", caps[i].name);
			goto fail_host;
		}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		cl_diag_set(d, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		goto fail_internal;
	}
	/* The table size is not known in advance: grow until KVM stops saying E2BIG. */
	for (;;) {
		free(vm->cpuid);
		vm->cpuid = calloc(1,
		                   sizeof(*vm->cpuid) + (size_t)n * sizeof(vm->cpuid->entries[0]));
		if (!vm->cpuid) {
			cl_diag_set(d, "out of memory");
			goto fail_internal;
		}
		vm->cpuid->nent = (uint32_t)n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) == 0)
			break;
		if (errno != E2BIG || n >= 4096) {
			cl_diag_set(d, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
			goto fail_internal;
		}
		n *= 2;
	}
	/* KVM leaves the TSC-deadline timer out of the supported table and reports it as a
	 * capability; a guest that has it need not calibrate its APIC timer against a clock. */
	vm->tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		cl_diag_set(d, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail_host;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS_ADDR) < 0) {
		cl_diag_set(d, "KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto fail_internal;
	}
	{
		uint64_t idmap = LAYOUT_KVM_IDENTITY_MAP_ADDR;

		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
			cl_diag_set(d, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
			goto fail_internal;
		}
	}
	/* In-kernel PIC + IOAPIC + LAPICs: INIT/SIPI for SMP and interrupt delivery need no
	 * exits to the monitor. */
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		cl_diag_set(d, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
		goto fail_internal;
	}
	return VMM_OK;

fail_host:
	vm_close(vm);
	return VMM_ERR_HOST;
fail_internal:
	vm_close(vm);
	return VMM_ERR_INTERNAL;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static void explain_hugepages(uint64_t size, struct cl_diag *d)
{
	long total = read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
	long avail = read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
	long need = (long)(size / (2 * MiB));

	if (total < 0 || avail < 0) {
		cl_diag_set(d,
		            "cannot map %llu MiB of 2 MiB hugepages and the kernel has no "
		            "hugetlbfs support (no /sys/kernel/mm/hugepages/hugepages-2048kB)",
		            (unsigned long long)(size / MiB));
		return;
	}
	cl_diag_set(d,
	            "cannot map %llu MiB of hugepages: need %ld more 2 MiB hugepages (%ld free "
	            "of %ld); run: echo %ld > /proc/sys/vm/nr_hugepages",
	            (unsigned long long)(size / MiB), need > avail ? need - avail : 0, avail, total,
	            total + (need > avail ? need - avail : 0));
}

static void *map_huge(uint64_t size, uint64_t page)
{
	int shift = page == GiB ? MAP_HUGE_1GB : MAP_HUGE_2MB;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | shift, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int set_slot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

static enum vmm_err register_ram(struct vm *vm, struct cl_diag *d);

enum vmm_err vm_ram_alloc(struct vm *vm, uint64_t size, struct cl_diag *d)
{
	void *p = NULL;

	if (size == 0 || size % (2 * MiB)) {
		cl_diag_set(d, "memory %llu bytes is not a multiple of 2 MiB",
		            (unsigned long long)size);
		return VMM_ERR_USAGE;
	}
	if (size % GiB == 0) {
		p = map_huge(size, GiB);
		if (p)
			vm->page_size = GiB;
	}
	if (!p) {
		p = map_huge(size, 2 * MiB);
		if (!p) {
			int err = errno;

			if (err == ENOMEM || err == EINVAL)
				explain_hugepages(size, d);
			else
				cl_diag_set(d, "mmap of %llu MiB hugepages: %s",
				            (unsigned long long)(size / MiB), strerror(err));
			return VMM_ERR_MEMORY;
		}
		vm->page_size = 2 * MiB;
	}
	vm->ram = p;
	vm->ram_size = size;
	return register_ram(vm, d);
}

enum vmm_err vm_ram_attach(struct vm *vm, void *base, uint64_t size, struct cl_diag *d)
{
	if (!base || size == 0 || size % (2 * MiB) || (uintptr_t)base % (2 * MiB)) {
		cl_diag_set(d, "external guest RAM at %p (%llu bytes) is not 2 MiB aligned", base,
		            (unsigned long long)size);
		return VMM_ERR_USAGE;
	}
	vm->ram = base;
	vm->ram_size = size;
	vm->ram_external = true;
	vm->page_size = 2 * MiB; /* at least; the regions may use larger pages */
	return register_ram(vm, d);
}

/* Register vm->ram as memory slots (below LAYOUT_LOW_RAM_MAX at 0, the rest at 4 GiB). Its
 * pages are hugetlb, reserved when they were mapped and never swapped: locked by nature, so no
 * mlock (which would also fault everything in right here; vm_ram_populate does that). */
static enum vmm_err register_ram(struct vm *vm, struct cl_diag *d)
{
	uint8_t *p = vm->ram;
	uint64_t size = vm->ram_size;

	/* Never in a core file, even where the kernel dumps non-dumpable processes
	 * (fs.suid_dumpable = 2): the enclave's memory is its secret. */
	if (madvise(p, size, MADV_DONTDUMP) < 0) {
		cl_diag_set(d, "madvise(MADV_DONTDUMP) on guest RAM: %s", strerror(errno));
		return VMM_ERR_INTERNAL;
	}
	vm->low_ram = size < LAYOUT_LOW_RAM_MAX ? size : LAYOUT_LOW_RAM_MAX;
	vm->high_ram = size - vm->low_ram;
	if (set_slot(vm, 0, 0, vm->low_ram, p) < 0 ||
	    (vm->high_ram &&
	     set_slot(vm, 1, LAYOUT_HIGH_RAM_ADDR, vm->high_ram, vm->ram + vm->low_ram) < 0)) {
		cl_diag_set(d, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		return VMM_ERR_INTERNAL;
	}
	gpa_add_region(&vm->mem, 0, vm->low_ram, vm->ram);
	if (vm->high_ram)
		gpa_add_region(&vm->mem, LAYOUT_HIGH_RAM_ADDR, vm->high_ram, vm->ram + vm->low_ram);
	return VMM_OK;
}

void vm_irq_pulse(struct vm *vm, unsigned irq)
{
	struct kvm_irq_level l = { .irq = irq, .level = 1 };

	ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
	l.level = 0;
	ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

int vm_ram_populate(struct vm *vm, uint64_t off, uint64_t len)
{
	if (off > vm->ram_size || len > vm->ram_size - off)
		return -EINVAL;
	if (madvise(vm->ram + off, len, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* Kernels before 5.14: touch each page with a write that changes nothing. */
	for (uint64_t o = off; o < off + len; o += vm->page_size)
		__atomic_fetch_add(vm->ram + o, 0, __ATOMIC_RELAXED);
	return 0;
}

int vm_irqfd(struct vm *vm, unsigned gsi, struct cl_diag *d)
{
	struct kvm_irqfd req;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0) {
		cl_diag_set(d, "eventfd: %s", strerror(errno));
		return -1;
	}
	memset(&req, 0, sizeof(req));
	req.fd = (uint32_t)fd;
	req.gsi = gsi;
	if (ioctl(vm->vm_fd, KVM_IRQFD, &req) < 0) {
		cl_diag_set(d, "KVM_IRQFD for IRQ %u: %s", gsi, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t match, struct cl_diag *d)
{
	struct kvm_ioeventfd req;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0) {
		cl_diag_set(d, "eventfd: %s", strerror(errno));
		return -1;
	}
	memset(&req, 0, sizeof(req));
	req.datamatch = match;
	req.addr = addr;
	req.len = 4;
	req.fd = fd;
	req.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &req) < 0) {
		cl_diag_set(d, "KVM_IOEVENTFD at 0x%llx: %s", (unsigned long long)addr,
		            strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void vm_close(struct vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->ram && !vm->ram_external)
		munmap(vm->ram, vm->ram_size);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm->cpuid);
	vm_init(vm);
}

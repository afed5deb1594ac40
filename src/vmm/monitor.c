/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloister/eif.h"
#include "lib/platform/kvm_probe.h"
#include "lib/util/file.h"
#include "lib/util/log.h"
#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/cpu.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/vmlinux.h"
#include "vmm/devices/vsock.h"
#include "vmm/kcache.h"
#include "vmm/monitor_priv.h"
#include "vmm/sandbox/seccomp.h"

#define MiB (1024ULL * 1024)

const char *monitor_end_name(enum monitor_end e)
{
	switch (e) {
	case MONITOR_END_NONE:
		return "running";
	case MONITOR_END_POWEROFF:
		return "poweroff";
	case MONITOR_END_REBOOT:
		return "reboot";
	case MONITOR_END_TRIPLE_FAULT:
		return "triple-fault";
	case MONITOR_END_KVM_ERROR:
		return "kvm-error";
	case MONITOR_END_GUEST_VIOLATION:
		return "guest-violation";
	case MONITOR_END_TERMINATED:
		return "terminated";
	case MONITOR_END_MONITOR_ERROR:
		return "monitor-error";
	case MONITOR_END_BOOT_FAILED:
		return "boot-failed";
	}
	return "unknown";
}

int monitor_exit_for_end(enum monitor_end e)
{
	switch (e) {
	case MONITOR_END_POWEROFF:
		return MONITOR_EXIT_POWEROFF;
	case MONITOR_END_REBOOT:
		return MONITOR_EXIT_REBOOT;
	case MONITOR_END_TRIPLE_FAULT:
		return MONITOR_EXIT_TRIPLE_FAULT;
	case MONITOR_END_KVM_ERROR:
		return MONITOR_EXIT_KVM_ERROR;
	case MONITOR_END_GUEST_VIOLATION:
		return MONITOR_EXIT_GUEST_VIOLATION;
	case MONITOR_END_TERMINATED:
		return MONITOR_EXIT_TERMINATED;
	case MONITOR_END_BOOT_FAILED:
		return MONITOR_EXIT_BOOT_FAILED;
	case MONITOR_END_NONE:
	case MONITOR_END_MONITOR_ERROR:
		break;
	}
	return MONITOR_EXIT_RUN_ERROR;
}

int monitor_exit_for_err(enum vmm_err e)
{
	switch (e) {
	case VMM_OK:
		return MONITOR_EXIT_POWEROFF;
	case VMM_ERR_USAGE:
		return MONITOR_EXIT_USAGE;
	case VMM_ERR_HOST:
		return MONITOR_EXIT_HOST;
	case VMM_ERR_MEMORY:
		return MONITOR_EXIT_MEMORY;
	case VMM_ERR_IMAGE:
	case VMM_ERR_SIGNATURE:
		return MONITOR_EXIT_IMAGE;
	case VMM_ERR_CPU:
		return MONITOR_EXIT_CPU;
	case VMM_ERR_INTERNAL:
		break;
	}
	return MONITOR_EXIT_SETUP_FAILED;
}

const struct gpa_space *monitor_memory(const struct monitor *m)
{
	return &m->vm.mem;
}

/* An edge on @irq: through its irqfd (@fd) when there is one, else with KVM_IRQ_LINE. */
static void pulse(struct monitor *m, int fd, unsigned irq)
{
	uint64_t one = 1;

	if (fd < 0 || write(fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		vm_irq_pulse(&m->vm, irq);
}

static void serial_irq(void *opaque)
{
	struct monitor *m = opaque;

	pulse(m, m->uart_irq_fd, LAYOUT_UART_IRQ);
}

static void virtio_irq(void *opaque, unsigned irq)
{
	struct monitor *m = opaque;
	unsigned slot = irq - LAYOUT_VIRTIO_IRQ_BASE;

	pulse(m, slot < m->nvirtio ? m->virtio_irq_fd[slot] : -1, irq);
}

/*
 * Interrupts and queue notifications through eventfds, as vhost and other monitors do: fewer
 * system calls per interrupt, and vsock kicks that never leave the kernel. Without them
 * (an old or unusual KVM) everything still works through KVM_IRQ_LINE and MMIO exits, so a
 * failure is only logged.
 */
static void wire_eventfds(struct monitor *m)
{
	struct cl_diag d = { "" };

	m->uart_irq_fd = vm_irqfd(&m->vm, LAYOUT_UART_IRQ, &d);
	for (unsigned i = 0; i < m->nvirtio; i++)
		if (m->virtio_irq_fd[i] < 0)
			m->virtio_irq_fd[i] = vm_irqfd(&m->vm, m->virtio[i]->irq, &d);
	for (unsigned q = 0; m->vsock_t && q < 2; q++)
		m->vsock_kick_fd[q] = vm_ioeventfd(
		        &m->vm, m->vsock_t->base + VIRTIO_MMIO_QUEUE_NOTIFY, q, &d);
	if (d.msg[0])
		cl_debug("%s; using KVM_IRQ_LINE and MMIO exits instead", d.msg);
}

/*
 * Fault in all guest RAM, off the launch's critical path: the hugepages were reserved when the
 * RAM was mapped, so this cannot fail for want of memory; it only moves the kernel's zeroing of
 * each page (hundreds of ms for 256 MiB in a parent instance) to this thread, started with the
 * vCPUs (monitor_start). Pages anyone touches first (the image, the kernel, the guest) are
 * faulted in by them.
 *
 * Not earlier, and one page per call: MADV_POPULATE_WRITE holds the mmap lock for reading over
 * its whole range, and the set-up needs it for writing (mapping the cached kernel, the vCPUs'
 * run areas, thread stacks). Started when the RAM was mapped, with 32 MiB per call, it made the
 * set-up take 0.9-1.0 s instead of 0.3 s in the parent instance (mapping the kernel alone
 * waited 0.58 s).
 */
static void *populate_main(void *arg)
{
	struct monitor *m = arg;
	const uint64_t chunk = m->vm.page_size;
	struct cl_diag d;

	if (!m->cfg.no_seccomp && sandbox_enter(SANDBOX_VCPU, &d) < 0) {
		m->populate_err = -EPERM;
		return NULL;
	}
	/* From the top down: Linux's early allocator (memblock) hands out memory from the top
	 * of RAM, so that is what the guest writes first. Bottom up, the guest reached the top
	 * pages first itself, and each of those faults took 0.05-0.4 s while this thread was
	 * busy, 0.27-0.69 s of stalls a boot in a parent instance against 0.11-0.2 s top down
	 * (docs/benchmarks.md). ram_size is a whole number of pages (vm.c). */
	for (uint64_t done = 0; done < m->vm.ram_size && !m->populate_err; done += chunk) {
		uint64_t off = m->vm.ram_size - done - chunk;

		if (__atomic_load_n(&m->end, __ATOMIC_ACQUIRE) != MONITOR_END_NONE)
			return NULL; /* the enclave already ended: no point */
		m->populate_err = vm_ram_populate(&m->vm, off, chunk);
	}
	if (!m->populate_err)
		timeline_mark(&m->tl, TL_MEMORY);
	return NULL;
}

void monitor_start_populate(struct monitor *m)
{
	m->populate_started = pthread_create(&m->populate_thread, NULL, populate_main, m) == 0;
	if (!m->populate_started) /* then in line: the launch is slower, nothing else changes */
		m->populate_err = vm_ram_populate(&m->vm, 0, m->vm.ram_size);
}

void monitor_wait_memory(struct monitor *m)
{
	if (!m->populate_started || m->populate_joined)
		return;
	pthread_join(m->populate_thread, NULL);
	m->populate_joined = true;
	if (m->populate_err)
		cl_warn("guest RAM not faulted in ahead (%s); the guest faults it in as it goes",
		        strerror(-m->populate_err));
}

/* Put @ops/@opaque on the next virtio-mmio slot (window and IRQ from layout.h). */
static enum vmm_err add_virtio(struct monitor *m, const struct virtio_dev_ops *ops, void *opaque,
                               struct cl_diag *d)
{
	unsigned i = m->nvirtio;
	struct virtio_mmio_dev *t;

	if (i >= LAYOUT_VIRTIO_MMIO_MAX) {
		cl_diag_set(d, "more than %d virtio devices", LAYOUT_VIRTIO_MMIO_MAX);
		return VMM_ERR_INTERNAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t || !virtio_mmio_init(t, ops, opaque, &m->vm.mem,
	                            LAYOUT_MMIO_BASE + i * LAYOUT_VIRTIO_MMIO_SIZE,
	                            LAYOUT_VIRTIO_IRQ_BASE + i, virtio_irq, m)) {
		free(t);
		cl_diag_set(d, "cannot set up the virtio %s device", ops->name);
		return VMM_ERR_INTERNAL;
	}
	m->virtio[m->nvirtio++] = t;
	return VMM_OK;
}

/* From the vsock device, under its transport lock (a vCPU or the main thread). */
static void vsock_event(void *opaque, enum vsock_event ev, uint32_t value)
{
	struct monitor *m = opaque;
	uint64_t one = 1;

	if (ev == VSOCK_EVENT_APP_EXITED || ev == VSOCK_EVENT_APP_KILLED) {
		/* Logged by monitor_wait() on the main thread: the enclave powers off next. */
		unsigned app = ev == VSOCK_EVENT_APP_EXITED ? MONITOR_APP_EXITED
		                                            : MONITOR_APP_KILLED;
		__atomic_store_n(&m->app_exit, app << 8 | (value & 0xff), __ATOMIC_RELEASE);
		return;
	}
	if (ev == VSOCK_EVENT_HEARTBEAT_BAD) {
		monitor_stop(m, MONITOR_END_BOOT_FAILED,
		             "the enclave's boot heartbeat was not the byte 0xB7");
		return;
	}
	timeline_mark(&m->tl, TL_HEARTBEAT);
	if (!__atomic_exchange_n(&m->booted, true, __ATOMIC_ACQ_REL))
		(void)!write(m->booted_fd, &one, sizeof(one)); /* the main thread reports it */
}

/* The enclave's virtio-vsock device in the next virtio-mmio slot (docs/vsock.md). */
static enum vmm_err add_vsock(struct monitor *m, struct cl_diag *d)
{
	struct vsock_dev_config vc = {
		.guest_cid = m->cfg.cid,
		.uds_path = m->cfg.vsock_uds,
		.heartbeat = m->cfg.heartbeat_timeout_ms > 0,
		.exit_port = m->cfg.exit_port,
		.on_event = vsock_event,
		.opaque = m,
	};
	enum vsock_err ve;
	enum vmm_err e;

	m->booted_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->booted_fd < 0) {
		cl_diag_set(d, "eventfd: %s", strerror(errno));
		return VMM_ERR_INTERNAL;
	}
	ve = vsock_dev_new(&vc, &m->vsock, d);
	if (ve != VSOCK_OK) {
		cl_diag_prefix(d, "vsock");
		return ve == VSOCK_ERR_INVALID ? VMM_ERR_USAGE : VMM_ERR_INTERNAL;
	}
	e = add_virtio(m, vsock_dev_ops(), m->vsock, d);
	if (e)
		return e;
	m->vsock_t = m->virtio[m->nvirtio - 1];
	vsock_dev_attach(m->vsock, m->vsock_t);
	return VMM_OK;
}

/* Whether @word is one of the space-separated words of the command line @s (@len bytes). */
static bool cmdline_has(const uint8_t *s, uint64_t len, const char *word)
{
	size_t wl = strlen(word);

	for (uint64_t i = 0; i + wl <= len; i++)
		if ((i == 0 || s[i - 1] == ' ') && !memcmp(s + i, word, wl) &&
		    (i + wl == len || s[i + wl] == ' '))
			return true;
	return false;
}

/*
 * Boot the kernel unpacked when it can be (vmlinux.h, kcache.h): from the cache, or unpacked
 * here and cached for the next launch. Anything in the way leaves @img as it was, and the
 * bzImage boots through its own decompressor; the debug log says why.
 */
static void unpack_kernel(struct monitor *m, struct boot_image *img, struct unpacked_kernel *uk)
{
	const char *dir = kcache_default_dir(); /* NULL when $CLOISTER_KERNEL_CACHE is off */
	const uint8_t *kernel = gpa_translate(&m->vm.mem, img->kernel.gpa, img->kernel.len);
	const uint8_t *cmdline = gpa_translate(&m->vm.mem, img->cmdline.gpa, img->cmdline.len);
	struct cl_diag d = { "" };
	struct bzimage_info bi;
	uint64_t random = 0;
	char why[256];

	if (!kernel || !cmdline || bzimage_parse(kernel, img->kernel.len, &bi, &d) != BOOT_OK)
		return; /* boot_setup reports it */
	if (!kcache_get(dir, kernel, img->kernel.len, &bi, uk, why, sizeof(why))) {
		cl_debug("booting the bzImage through its decompressor: %s", why);
		return;
	}
	img->vmlinux = uk->data;
	img->vmlinux_len = uk->len;
	img->kaslr = !cmdline_has(cmdline, img->cmdline.len, "nokaslr");
	if (img->kaslr && getrandom(&random, sizeof(random), 0) == (ssize_t)sizeof(random))
		img->virt_offset = vmlinux_kaslr_offset(random, bi.init_size);
	cl_debug("kernel unpacked %s (%llu bytes), KASLR %s",
	         uk->from_cache ? "from the cache" : "now", (unsigned long long)uk->len,
	         img->kaslr ? "on" : "off (nokaslr)");
}

/* Size of a regular file, or an error naming it. */
static enum vmm_err file_size(const char *what, const char *path, int *fd_out, uint64_t *size,
                              struct cl_diag *d)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		cl_diag_set(d, "cannot open %s %s: %s", what, path, strerror(errno));
		return VMM_ERR_IMAGE;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cl_diag_set(d, "%s %s is not a regular file", what, path);
		close(fd);
		return VMM_ERR_IMAGE;
	}
	*fd_out = fd;
	*size = (uint64_t)st.st_size;
	return VMM_OK;
}

/* Read all of @fd (@size bytes) into guest memory at @gpa. */
static enum vmm_err load_file(struct monitor *m, const char *path, int fd, uint64_t gpa,
                              uint64_t size, struct cl_diag *d)
{
	uint8_t *dst = gpa_translate(&m->vm.mem, gpa, size);
	long long n;

	if (!dst) {
		cl_diag_set(d, "%s (%llu bytes) does not fit in enclave memory at 0x%llx", path,
		            (unsigned long long)size, (unsigned long long)gpa);
		return VMM_ERR_IMAGE;
	}
	n = cl_pread_full(fd, dst, size, 0);
	if (n < 0 || (uint64_t)n != size) {
		cl_diag_set(d, "reading %s: %s", path, n < 0 ? strerror((int)-n) : "file shrank");
		return VMM_ERR_IMAGE;
	}
	return VMM_OK;
}

/* Milliseconds since @t0 (CLOCK_MONOTONIC), for the debug log of where launch time goes. */
static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * The enclave's NSM (--enclave-id): the module parses and measures the EIF where the guest will
 * boot it (guest memory, before any vCPU runs and before boot_setup() lays anything over the
 * image) into @ei, refuses a signed image whose signature does not hold, and mints the leaf
 * key; then the virtio-nsm device serves it.
 */
static enum vmm_err setup_nsm(struct monitor *m, const uint8_t *buf, uint64_t size,
                              struct eif_image *ei, struct cl_diag *d)
{
	const struct nsm_backend_config nc = {
		.ca_dir = m->cfg.ca_dir,
		.module_id = m->cfg.enclave_id,
		.parent_role = m->cfg.parent_role,
		.parent_id = m->cfg.parent_id,
		.debug_mode = m->cfg.debug_mode,
	};
	const struct nsm_backend *be = nsm_backend_load(d);
	struct timespec t0;
	enum vmm_err ve;
	void *st = NULL;

	if (!be)
		return VMM_ERR_INTERNAL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	switch (be->open(&nc, buf, (size_t)size, &st, ei, d)) {
	case NSM_BACKEND_OK:
		break;
	case NSM_BACKEND_IMAGE:
		cl_diag_prefix(d, "%s", m->cfg.eif_path);
		return VMM_ERR_IMAGE;
	case NSM_BACKEND_SIGNATURE:
		cl_diag_prefix(d, "%s", m->cfg.eif_path);
		return VMM_ERR_SIGNATURE;
	default:
		cl_diag_prefix(d, "setting up the enclave's NSM");
		return VMM_ERR_HOST;
	}
	m->meas = ei->meas;
	m->nsm = calloc(1, sizeof(*m->nsm));
	if (!m->nsm) {
		be->close(st);
		eif_image_release(ei);
		cl_diag_set(d, "out of memory");
		return VMM_ERR_INTERNAL;
	}
	virtio_nsm_init(m->nsm, be, st);
	cl_debug("NSM: image measured, leaf key minted: %.1f ms", ms_since(&t0));
	if ((ve = add_virtio(m, &virtio_nsm_ops, m->nsm, d))) {
		eif_image_release(ei);
		return ve;
	}
	return VMM_OK;
}

/* Find the boot pieces of the EIF now at LAYOUT_EIF_ADDR, parsing it from guest memory. */
static enum vmm_err image_from_eif(struct monitor *m, uint64_t size, struct boot_image *img,
                                   struct cl_diag *d)
{
	const uint8_t *buf = gpa_translate(&m->vm.mem, LAYOUT_EIF_ADDR, size);
	struct eif_image ei;
	enum vmm_err ve;

	/* One parse: with an NSM the module's, measured; without one no SHA-384 is spent and no
	 * libcrypto loaded. */
	if (m->cfg.enclave_id) {
		ve = setup_nsm(m, buf, size, &ei, d);
		if (ve)
			return ve;
	} else if (eif_parse_layout(buf, size, 0, &ei, d) != EIF_OK) {
		cl_diag_prefix(d, "%s", m->cfg.eif_path);
		return VMM_ERR_IMAGE;
	}
	if (ei.flags & EIF_FLAG_AARCH64) {
		cl_diag_set(d, "%s is an aarch64 image; this monitor boots x86_64 enclaves",
		            m->cfg.eif_path);
		eif_image_release(&ei);
		return VMM_ERR_IMAGE;
	}
	memset(img, 0, sizeof(*img));
	img->image = (struct boot_src){ LAYOUT_EIF_ADDR, size };
	for (unsigned i = 0; i < ei.num_sections; i++) {
		const struct eif_section *s = &ei.sections[i];
		struct boot_src src = { LAYOUT_EIF_ADDR + s->data_offset, s->size };

		if (s->type == EIF_SECTION_KERNEL)
			img->kernel = src;
		else if (s->type == EIF_SECTION_CMDLINE)
			img->cmdline = src;
		else if (s->type == EIF_SECTION_RAMDISK && img->nramdisks < BOOT_MAX_RAMDISKS)
			img->ramdisk[img->nramdisks++] = src;
	}
	eif_image_release(&ei);
	return VMM_OK;
}

static enum vmm_err load_image(struct monitor *m, struct boot_image *img, struct cl_diag *d)
{
	const struct monitor_config *c = &m->cfg;
	enum vmm_err e;
	uint64_t ksize, isize = 0, gpa, mem = c->memory_mib * MiB;
	int kfd = -1, ifd = -1;

	if (c->eif_path) {
		e = file_size("EIF", c->eif_path, &kfd, &ksize, d);
		if (e)
			return e;
		/* Checked before allocation too; the file may have grown since. */
		if (ksize > mem / 4) {
			cl_diag_set(d, "%s grew to %llu bytes while the enclave was set up",
			            c->eif_path, (unsigned long long)ksize);
			close(kfd);
			return VMM_ERR_IMAGE;
		}
		e = load_file(m, c->eif_path, kfd, LAYOUT_EIF_ADDR, ksize, d);
		close(kfd);
		if (e)
			return e;
		return image_from_eif(m, ksize, img, d);
	}

	/* Development path: kernel, initrd and cmdline placed back to back at 8 MiB, the way
	 * their EIF sections would be. */
	memset(img, 0, sizeof(*img));
	e = file_size("kernel", c->kernel_path, &kfd, &ksize, d);
	if (e)
		return e;
	if (c->initrd_path) {
		e = file_size("initrd", c->initrd_path, &ifd, &isize, d);
		if (e)
			goto out;
	}
	if (ksize + isize > mem / 4) {
		cl_diag_set(d,
		            "memory %llu MiB is less than 4 times the %llu-byte kernel and initrd",
		            (unsigned long long)c->memory_mib, (unsigned long long)(ksize + isize));
		e = VMM_ERR_USAGE;
		goto out;
	}
	gpa = LAYOUT_EIF_ADDR;
	e = load_file(m, c->kernel_path, kfd, gpa, ksize, d);
	if (e)
		goto out;
	img->kernel = (struct boot_src){ gpa, ksize };
	gpa += (ksize + 4095) & ~4095ULL;
	if (ifd >= 0) {
		e = load_file(m, c->initrd_path, ifd, gpa, isize, d);
		if (e)
			goto out;
		img->ramdisk[img->nramdisks++] = (struct boot_src){ gpa, isize };
		gpa += (isize + 4095) & ~4095ULL;
	}
	{
		const char *cmd = c->cmdline ? c->cmdline : "";
		uint8_t *dst = gpa_translate(&m->vm.mem, gpa, strlen(cmd));

		if (!dst) {
			cl_diag_set(d, "command line does not fit in enclave memory");
			e = VMM_ERR_IMAGE;
			goto out;
		}
		memcpy(dst, cmd, strlen(cmd));
		img->cmdline = (struct boot_src){ gpa, strlen(cmd) };
		gpa += strlen(cmd);
	}
	img->image = (struct boot_src){ LAYOUT_EIF_ADDR, gpa - LAYOUT_EIF_ADDR };
out:
	if (kfd >= 0)
		close(kfd);
	if (ifd >= 0)
		close(ifd);
	return e;
}

/* The 4x rule before anything is allocated, so a too-small enclave costs nothing. */
static enum vmm_err check_image_size(const struct monitor_config *c, struct cl_diag *d)
{
	uint64_t size = 0, mem = c->memory_mib * MiB;
	const char *paths[3] = { c->eif_path, c->eif_path ? NULL : c->kernel_path,
		                 c->eif_path ? NULL : c->initrd_path };
	struct stat st;

	for (int i = 0; i < 3; i++) {
		if (!paths[i])
			continue;
		if (stat(paths[i], &st) < 0) {
			cl_diag_set(d, "cannot read %s: %s", paths[i], strerror(errno));
			return VMM_ERR_IMAGE;
		}
		if (!S_ISREG(st.st_mode)) {
			cl_diag_set(d, "%s is not a regular file", paths[i]);
			return VMM_ERR_IMAGE;
		}
		size += (uint64_t)st.st_size;
	}
	/* nitro-compat §2.7 (E26): the kernel must be able to unpack the initramfs. */
	if (size > mem / 4) {
		uint64_t need = (size * 4 + MiB - 1) / MiB;

		need += need & 1;
		cl_diag_set(d,
		            "memory %llu MiB is less than 4 times the %llu-byte image %s; use "
		            "--memory %llu or more",
		            (unsigned long long)c->memory_mib, (unsigned long long)size,
		            c->eif_path ? c->eif_path : c->kernel_path, (unsigned long long)need);
		return VMM_ERR_USAGE;
	}
	return VMM_OK;
}

/* Refuse hosts whose /dev/kvm cannot boot Linux (a nested paravirtual KVM that emulates
 * ring 0) instead of hanging in an endless emulated boot (docs/parent-instance.md). */
static enum vmm_err check_host(struct cl_diag *d)
{
	struct kvm_probe_result r;
	struct cl_diag pd = { "" };

	if (kvm_probe_run(NULL, &r, &pd) != KVM_PROBE_OK) {
		cl_diag_set(d, "cannot probe /dev/kvm: %s", pd.msg);
		return VMM_ERR_HOST;
	}
	if (r.verdict == KVM_PROBE_DIRECT)
		return VMM_OK;
	/* A slow loop that still ran to its end on a KVM that is not kvm_pvm is a loaded or
	 * nested host (the parent instance under load measures 100-200 ms), not an emulated
	 * ring 0: boot, but say so. Emulation failures, timeouts and kvm_pvm are refused. */
	if (r.verdict == KVM_PROBE_NEEDS_PARENT_INSTANCE && !r.facts.kvm_pvm_loaded &&
	    r.facts.loop == KVM_PROBE_LOOP_HALTED) {
		cl_warn("slow KVM (%s); booting anyway", r.reason);
		return VMM_OK;
	}
	cl_diag_set(d, "%s", r.reason);
	return VMM_ERR_HOST;
}

static enum vmm_err check_config(const struct monitor_config *c, struct cl_diag *d)
{
	if (c->enclave_id && !c->eif_path) {
		cl_diag_set(d, "an NSM (--enclave-id) needs an EIF to measure; use --eif");
		return VMM_ERR_USAGE;
	}
	if (!c->eif_path && !c->kernel_path) {
		cl_diag_set(d, "no enclave image: give --eif PATH");
		return VMM_ERR_USAGE;
	}
	if (c->memory_mib < MONITOR_MIN_MEMORY_MIB) {
		cl_diag_set(d,
		            "memory %llu MiB is below the %u MiB minimum; use --memory %u or more",
		            (unsigned long long)c->memory_mib, MONITOR_MIN_MEMORY_MIB,
		            MONITOR_MIN_MEMORY_MIB);
		return VMM_ERR_USAGE;
	}
	if (c->memory_mib % 2) {
		cl_diag_set(d, "memory %llu MiB is not a multiple of 2 MiB; use --memory %llu",
		            (unsigned long long)c->memory_mib,
		            (unsigned long long)c->memory_mib + 1);
		return VMM_ERR_USAGE;
	}
	if (c->memory_mib > (1ULL << 24)) {
		cl_diag_set(d, "memory %llu MiB is more than this monitor supports (16 TiB)",
		            (unsigned long long)c->memory_mib);
		return VMM_ERR_USAGE;
	}
	if (c->ncpus == 0 || c->ncpus > MONITOR_MAX_CPUS) {
		cl_diag_set(d, "%u vCPUs requested; between 1 and %u are supported", c->ncpus,
		            MONITOR_MAX_CPUS);
		return VMM_ERR_USAGE;
	}
	return VMM_OK;
}

static enum vmm_err create_vcpus(struct monitor *m, struct cl_diag *d)
{
	enum vmm_err e;

	for (unsigned i = 0; i < m->ncpus; i++) {
		struct vcpu *v = &m->vcpu[i];
		void *run;

		v->fd = ioctl(m->vm.vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (v->fd < 0) {
			cl_diag_set(d, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
			return VMM_ERR_INTERNAL;
		}
		run = mmap(NULL, (size_t)m->vm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
		           0);
		if (run == MAP_FAILED) {
			cl_diag_set(d, "mmap of vCPU %u's kvm_run: %s", i, strerror(errno));
			return VMM_ERR_INTERNAL;
		}
		v->run = run;
		e = cpu_set_cpuid(&m->vm, v->fd, i, m->ncpus, d);
		if (e)
			return e;
	}
	return cpu_set_boot_state(m->vcpu[0].fd, &m->boot, d);
}

enum vmm_err monitor_create(struct monitor **out, const struct monitor_config *cfg,
                            struct cl_diag *d)
{
	uint64_t origin = cfg->origin_ns ? cfg->origin_ns : timeline_now_ns();
	struct unpacked_kernel uk = { 0 };
	struct acpi_config acfg;
	struct boot_image img;
	struct timespec t0;
	struct monitor *m;
	enum vmm_err e;
	enum boot_err be;
	uint8_t *acpi;

	*out = NULL;
	/* Guest RAM and, with an NSM, the enclave's signing key live in this process: no core
	 * file may hold them, and no other process of this uid may read them through ptrace or
	 * /proc/PID/mem (only root can, docs/security.md). For the whole process: the enclave is
	 * its purpose. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		cl_diag_set(d, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
		return VMM_ERR_INTERNAL;
	}
	e = check_config(cfg, d);
	if (!e)
		e = check_image_size(cfg, d);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!e && !cfg->skip_host_probe) {
		e = check_host(d);
		cl_debug("host probe: %.1f ms", ms_since(&t0));
	}
	if (e)
		return e;
	m = calloc(1, sizeof(*m));
	if (!m) {
		cl_diag_set(d, "out of memory");
		return VMM_ERR_INTERNAL;
	}
	m->cfg = *cfg;
	m->ncpus = cfg->ncpus;
	timeline_init(&m->tl, origin);
	m->end_fd = -1;
	m->booted_fd = -1;
	m->uart_irq_fd = -1;
	m->vsock_kick_fd[0] = m->vsock_kick_fd[1] = -1;
	for (unsigned i = 0; i < sizeof(m->virtio_irq_fd) / sizeof(m->virtio_irq_fd[0]); i++)
		m->virtio_irq_fd[i] = -1;
	pthread_mutex_init(&m->end_lock, NULL);
	pthread_cond_init(&m->sealed_cond, NULL);
	vm_init(&m->vm);
	for (unsigned i = 0; i < MONITOR_MAX_CPUS; i++) {
		m->vcpu[i].fd = -1;
		m->vcpu[i].m = m;
		m->vcpu[i].id = i;
		m->vcpu[i].host_cpu = i < cfg->ncpus ? cfg->cpus[i] : -1;
	}

	e = vm_open(&m->vm, d);
	if (e)
		goto fail;
	cl_debug("KVM VM created: %.1f ms", ms_since(&t0));
	e = cfg->ram ? vm_ram_attach(&m->vm, cfg->ram, cfg->memory_mib * MiB, d)
	             : vm_ram_alloc(&m->vm, cfg->memory_mib * MiB, d);
	if (e)
		goto fail;
	cl_debug("%llu MiB of %llu KiB pages mapped: %.1f ms", (unsigned long long)cfg->memory_mib,
	         (unsigned long long)(m->vm.page_size >> 10), ms_since(&t0));
	e = load_image(m, &img, d);
	if (e)
		goto fail;
	cl_debug("image loaded and parsed: %.1f ms", ms_since(&t0));

	if (cfg->cid) {
		e = add_vsock(m, d);
		if (e)
			goto fail;
	}

	memset(&acfg, 0, sizeof(acfg));
	acfg.ncpus = m->ncpus;
	acfg.nvirtio = m->nvirtio;
	for (unsigned i = 0; i < m->nvirtio; i++) {
		acfg.virtio[i].base = m->virtio[i]->base;
		acfg.virtio[i].irq = m->virtio[i]->irq;
	}
	acpi = gpa_translate(&m->vm.mem, LAYOUT_ACPI_ADDR, LAYOUT_ACPI_SIZE);
	if (!acpi || !acpi_build(acpi, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_ADDR, &acfg)) {
		cl_diag_set(d, "ACPI tables do not fit at 0x%llx",
		            (unsigned long long)LAYOUT_ACPI_ADDR);
		e = VMM_ERR_INTERNAL;
		goto fail;
	}
	unpack_kernel(m, &img, &uk);
	cl_debug("kernel looked up in the cache: %.1f ms", ms_since(&t0));
	be = boot_setup(&m->vm.mem, m->vm.low_ram, m->vm.high_ram, &img, LAYOUT_ACPI_ADDR, &m->boot,
	                d);
	kcache_release(&uk);
	if (be != BOOT_OK) {
		e = VMM_ERR_IMAGE;
		goto fail;
	}
	cl_debug("kernel %llu bytes (%s), entry 0x%llx; initrd %llu bytes at 0x%llx: %.1f ms",
	         (unsigned long long)m->boot.kernel_size, m->boot.unpacked ? "unpacked" : "bzImage",
	         (unsigned long long)m->boot.entry, (unsigned long long)m->boot.initrd_size,
	         (unsigned long long)m->boot.initrd_addr, ms_since(&t0));

	wire_eventfds(m);
	serial_init(&m->serial, cfg->debug_mode ? cfg->console_fd : -1, serial_irq, m);
	m->serial_ready = true;

	e = create_vcpus(m, d);
	if (e)
		goto fail;
	m->end_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->end_fd < 0) {
		cl_diag_set(d, "eventfd: %s", strerror(errno));
		e = VMM_ERR_INTERNAL;
		goto fail;
	}
	cl_debug("ready to run: %.1f ms", ms_since(&t0));
	timeline_mark(&m->tl, TL_READY);
	*out = m;
	return VMM_OK;
fail:
	monitor_destroy(m);
	return e;
}

const struct timeline *monitor_timeline(const struct monitor *m)
{
	return &m->tl;
}

enum monitor_app monitor_app_exit(const struct monitor *m, unsigned *value)
{
	unsigned v = __atomic_load_n(&m->app_exit, __ATOMIC_ACQUIRE);

	*value = v & 0xff;
	return (enum monitor_app)(v >> 8);
}

const struct eif_measurements *monitor_measurements(const struct monitor *m)
{
	return m->nsm ? &m->meas : NULL;
}

void monitor_destroy(struct monitor *m)
{
	if (!m)
		return;
	if (!m->joined) {
		/* Ends the guest if it still runs (the first reason stays) and tells the memory
		 * thread of a failed create to stop early. */
		monitor_stop(m, MONITOR_END_MONITOR_ERROR, "monitor shut down");
		vcpu_kick_all(m);
		for (unsigned i = 0; i < m->ncpus; i++)
			if (m->vcpu[i].thread_started)
				pthread_join(m->vcpu[i].thread, NULL);
	}
	monitor_wait_memory(m); /* before the RAM goes */
	for (unsigned i = 0; i < m->ncpus; i++) {
		if (m->vcpu[i].run)
			munmap(m->vcpu[i].run, (size_t)m->vm.run_size);
		if (m->vcpu[i].fd >= 0)
			close(m->vcpu[i].fd);
	}
	for (unsigned i = 0; i < m->nvirtio; i++) {
		virtio_mmio_destroy(m->virtio[i]);
		free(m->virtio[i]);
		if (m->virtio_irq_fd[i] >= 0)
			close(m->virtio_irq_fd[i]);
	}
	for (unsigned q = 0; q < 2; q++)
		if (m->vsock_kick_fd[q] >= 0)
			close(m->vsock_kick_fd[q]);
	if (m->uart_irq_fd >= 0)
		close(m->uart_irq_fd);
	vsock_dev_free(m->vsock); /* closes its sockets and removes the vsock socket file */
	if (m->booted_fd >= 0)
		close(m->booted_fd);
	if (m->nsm) {
		virtio_nsm_destroy(m->nsm);
		free(m->nsm);
	}
	if (m->serial_ready)
		serial_destroy(&m->serial);
	vm_close(&m->vm);
	if (m->end_fd >= 0)
		close(m->end_fd);
	pthread_cond_destroy(&m->sealed_cond);
	pthread_mutex_destroy(&m->end_lock);
	free(m);
}

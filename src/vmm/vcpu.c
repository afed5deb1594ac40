/* SPDX-License-Identifier: Apache-2.0 */
/* vCPU threads: run the guest, decode the exits, hand port and MMIO accesses to the devices.
 * Everything a vCPU exit carries comes from the guest and is checked before use. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lib/util/log.h"
#include "cloister/boot_timer.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/monitor_priv.h"
#include "vmm/sandbox/seccomp.h"

#define I8042_CMD_RESET 0xfe
#define CF9_RESET_CPU 0x04
#define SLP_EN 0x20

static bool ended(struct monitor *m)
{
	return __atomic_load_n(&m->end, __ATOMIC_ACQUIRE) != MONITOR_END_NONE;
}

static void pio_write(struct monitor *m, uint16_t port, uint8_t val)
{
	if (port >= LAYOUT_UART_PORT && port < LAYOUT_UART_PORT + 8) {
		timeline_mark(&m->tl, TL_UART);
		serial_out(&m->serial, port - LAYOUT_UART_PORT, val);
	} else if (port == CL_BOOT_TIMER_PORT) {
		timeline_mark_stage(&m->tl, val);
	} else if (port == LAYOUT_I8042_PORT) {
		if (val == I8042_CMD_RESET)
			monitor_stop(m, MONITOR_END_REBOOT,
			             "guest rebooted (keyboard controller reset, port 0x64)");
	} else if (port == LAYOUT_RESET_PORT) {
		/* Both `reboot=pci` (0x06/0x0e) and the FADT reset register land here. */
		if (val & CF9_RESET_CPU)
			monitor_stop(m, MONITOR_END_REBOOT,
			             "guest rebooted (reset register 0xcf9 = 0x%02x)", val);
	} else if (port == LAYOUT_SLEEP_CTL_PORT) {
		if ((val & SLP_EN) && ((val >> 2) & 7) == LAYOUT_S5_SLP_TYP)
			monitor_stop(m, MONITOR_END_POWEROFF, "guest powered off (ACPI S5)");
	}
}

static uint8_t pio_read(struct monitor *m, uint16_t port)
{
	if (port >= LAYOUT_UART_PORT && port < LAYOUT_UART_PORT + 8) {
		timeline_mark(&m->tl, TL_UART);
		return serial_in(&m->serial, port - LAYOUT_UART_PORT);
	}
	/* i8042 status 0 = "input buffer empty": reboot=k does not spin (docs/direct-boot.md). */
	if (port == LAYOUT_I8042_PORT || port == 0x60 || port == LAYOUT_RESET_PORT ||
	    port == LAYOUT_SLEEP_STS_PORT || port == LAYOUT_SLEEP_CTL_PORT)
		return 0;
	return 0xff; /* nothing there: floating bus (PCI config reads see no devices) */
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t bytes = (uint64_t)run->io.size * run->io.count;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	if (run->io.data_offset < sizeof(*run) || bytes > (uint64_t)v->m->vm.run_size ||
	    run->io.data_offset > (uint64_t)v->m->vm.run_size - bytes) {
		monitor_stop(v->m, MONITOR_END_KVM_ERROR, "port I/O exit with a bad data window");
		return;
	}
	for (uint64_t i = 0; i < bytes; i++) {
		/* Multi-byte accesses are split into bytes at consecutive ports only for the
		 * UART range, where that matches hardware; elsewhere each byte goes to the same
		 * port, which is all the platform ports need. */
		uint16_t port = run->io.port;
		if (run->io.direction == KVM_EXIT_IO_OUT)
			pio_write(v->m, port, data[i]);
		else
			data[i] = pio_read(v->m, port);
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct monitor *m = v->m;
	struct kvm_run *run = v->run;
	uint64_t addr = run->mmio.phys_addr;
	uint32_t len = run->mmio.len;

	if (len == 0 || len > sizeof(run->mmio.data)) {
		monitor_stop(m, MONITOR_END_KVM_ERROR, "MMIO exit of %u bytes", len);
		return;
	}
	for (unsigned i = 0; i < m->nvirtio; i++) {
		struct virtio_mmio_dev *t = m->virtio[i];
		int rc;

		if (addr < t->base || addr - t->base >= LAYOUT_VIRTIO_MMIO_SIZE)
			continue;
		timeline_mark(&m->tl, TL_VIRTIO);
		if (run->mmio.is_write)
			rc = virtio_mmio_write(t, addr - t->base, run->mmio.data, len);
		else
			rc = virtio_mmio_read(t, addr - t->base, run->mmio.data, len);
		/* A queue notification the device cut short (without an ioeventfd, kicks come
		 * here): go on in rounds, each under the lock, for as long as the enclave runs. */
		while (rc == VIRTIO_MMIO_MORE && !ended(m)) {
			uint32_t q;

			memcpy(&q, run->mmio.data, sizeof(q));
			rc = virtio_mmio_kick(t, q);
		}
		if (rc < 0)
			monitor_stop(m, MONITOR_END_GUEST_VIOLATION, "%s", t->why);
		return;
	}
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, len);
}

static void handle_exit(struct vcpu *v)
{
	struct monitor *m = v->m;
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		break;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		break;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT:
		break;
	case KVM_EXIT_SHUTDOWN:
		monitor_stop(m, MONITOR_END_TRIPLE_FAULT,
		             "guest triple-faulted on vCPU %u (KVM_EXIT_SHUTDOWN)", v->id);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			monitor_stop(m, MONITOR_END_POWEROFF, "guest powered off (system event)");
		else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			monitor_stop(m, MONITOR_END_REBOOT, "guest rebooted (system event)");
		else
			monitor_stop(m, MONITOR_END_KVM_ERROR, "KVM system event %u on vCPU %u",
			             run->system_event.type, v->id);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		monitor_stop(m, MONITOR_END_KVM_ERROR,
		             "KVM internal error on vCPU %u: suberror %u%s", v->id,
		             run->internal.suberror,
		             run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
		                     ? " (emulation failure)"
		                     : "");
		break;
	case KVM_EXIT_FAIL_ENTRY:
		monitor_stop(m, MONITOR_END_KVM_ERROR,
		             "KVM could not enter vCPU %u: hardware reason 0x%llx", v->id,
		             (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	default:
		monitor_stop(m, MONITOR_END_KVM_ERROR, "unexpected KVM exit %u on vCPU %u",
		             run->exit_reason, v->id);
		break;
	}
}

void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct monitor *m = v->m;
	char name[16]; /* TASK_COMM_LEN */
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(v->host_cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		monitor_stop(m, MONITOR_END_MONITOR_ERROR, "cannot pin vCPU %u to host CPU %d: %s",
		             v->id, v->host_cpu, strerror(errno));
		return NULL;
	}
	/* "vcpuN" in /proc/PID/task/TID/comm, so users (ps -L, top -H) and the e2e tests can tell
	 * the vCPU threads apart. Set after the pinning, so a thread with its name is pinned. For
	 * the calling thread glibc does this with prctl(PR_SET_NAME), no file access; before the
	 * seccomp list anyway. Only a convenience: a failure is not an error. */
	snprintf(name, sizeof(name), "vcpu%u", v->id);
	(void)pthread_setname_np(pthread_self(), name);
	if (!m->cfg.no_seccomp) {
		struct cl_diag d;

		if (sandbox_enter(SANDBOX_VCPU, &d) < 0) {
			monitor_stop(m, MONITOR_END_MONITOR_ERROR, "vCPU %u: %s", v->id, d.msg);
			return NULL;
		}
	}
	/* No guest code before the main thread is under its own filter (monitor_sealed). */
	pthread_mutex_lock(&m->end_lock);
	while (!m->sealed && !ended(m))
		pthread_cond_wait(&m->sealed_cond, &m->end_lock);
	pthread_mutex_unlock(&m->end_lock);
	if (v->id == 0)
		timeline_mark(&m->tl, TL_VCPU_RUN);
	while (!ended(m)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			monitor_stop(m, MONITOR_END_MONITOR_ERROR, "KVM_RUN on vCPU %u: %s", v->id,
			             strerror(errno));
			break;
		}
		handle_exit(v);
	}
	return NULL;
}

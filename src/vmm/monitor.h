/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_MONITOR_H
#define CLOISTER_VMM_MONITOR_H

/*
 * The enclave monitor as a library: one struct monitor is one enclave (a KVM VM with pinned
 * vCPU threads, hugepage RAM holding the EIF at 8 MiB, the in-kernel irqchip, ACPI tables, a
 * 16550 and virtio-mmio slots). cloister-monitor's main() is a thin wrapper; run-enclave builds
 * on the same calls.
 *
 * Life cycle: monitor_create() (everything prepared, nothing runs) → monitor_start() (vCPU
 * threads ready) → the caller's main thread enters its allow-list → monitor_sealed() (the
 * vCPUs run the guest) → monitor_wait() (until the guest ends or a signal arrives) →
 * monitor_destroy() (threads joined, memory unmapped, fds closed — on every path).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/eif.h"
#include "vmm/kvm/vm.h"
#include "vmm/timeline.h"

#define MONITOR_MAX_CPUS 64
#define MONITOR_MIN_MEMORY_MIB 64 /* nitro-compat §0 */

struct monitor_config {
	const char *eif_path;
	/* Development only: boot these files instead of an EIF (placed at 8 MiB the same way). */
	const char *kernel_path;
	const char *initrd_path;
	const char *cmdline;
	uint64_t memory_mib;
	/* Optional: guest RAM already mapped by the caller (memory_mib MiB of hugetlb memory,
	 * 2 MiB aligned), e.g. the enclave process's ne_mem_alloc() regions. The monitor locks
	 * and registers it but never maps or unmaps it. NULL: the monitor maps its own. */
	void *ram;
	unsigned ncpus;
	int cpus[MONITOR_MAX_CPUS]; /* host CPU of each vCPU */
	uint32_t cid;
	bool debug_mode;
	int console_fd; /* debug mode: where ttyS0 output goes; -1 for none */
	bool skip_host_probe; /* trust /dev/kvm without timing a ring-0 loop first */
	/* Debug builds only (--no-seccomp): vCPU threads run without their allow-list. The
	 * caller's main thread enters SANDBOX_MAIN itself after monitor_start (seccomp.h). */
	bool no_seccomp;
	/* Optional: give the enclave an NSM (virtio-nsm) whose module id is @enclave_id, with a
	 * leaf key and certificate minted from the host CA in @ca_dir (NULL: the default) and the
	 * EIF's measurements. EIF boots only. The PCRs are always those of the bytes the guest
	 * boots: the monitor measures the EIF in guest memory, after copying it there, and no
	 * caller can hand it measurements (or an NSM state) taken from the file earlier — the
	 * file could have been replaced in between (docs/security.md). */
	const char *enclave_id;
	const char *ca_dir;
	/* With @enclave_id: the PCR3 (parent IAM role ARN) and PCR4 (parent instance id) inputs,
	 * each extended once into a zero PCR (nitro-compat §3.4); NULL leaves the PCR zero. */
	const char *parent_role;
	const char *parent_id;
	/* vsock (docs/vsock.md): with a CID the enclave gets a virtio-vsock device; its host
	 * endpoints live at vsock_uds ("<dir>/<EnclaveID>.vsock"; NULL: no host endpoints). */
	const char *vsock_uds;
	/* The Nitro boot heartbeat (CID 3 port 9000, byte 0xB7): when non-zero it is armed
	 * before the vCPUs start, and no heartbeat within this many milliseconds ends the
	 * enclave with MONITOR_END_BOOT_FAILED (E36 in nitro-cli terms). */
	unsigned heartbeat_timeout_ms;
	/* cloister-init's exit report (docs/vsock.md): read on CID 3 this port (VSOCK_EXIT_PORT,
	 * 9001) unless a host endpoint listens there; 0 = no exit report. monitor_wait() logs
	 * "enclave application exited with status N"; monitor_app_exit() returns it. */
	uint32_t exit_port;
	/* Called once, from the monitor's main thread, when the heartbeat arrives. */
	void (*on_booted)(void *opaque);
	void *booted_opaque;
	/* When the launch began (timeline_now_ns(), CLOCK_MONOTONIC), the origin of the boot
	 * timeline; 0: when monitor_create() is called. */
	uint64_t origin_ns;
};

/* How the enclave ended. The monitor's exit status is derived from it (docs/design.md). */
enum monitor_end {
	MONITOR_END_NONE = 0,
	MONITOR_END_POWEROFF, /* ACPI S5 via the sleep control register */
	MONITOR_END_REBOOT, /* port 0x64 0xFE, port 0xCF9, FADT reset register */
	MONITOR_END_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN (also what reboot=t produces) */
	MONITOR_END_KVM_ERROR, /* KVM internal error, failed entry, unexpected exit */
	MONITOR_END_GUEST_VIOLATION, /* the guest broke a device protocol */
	MONITOR_END_TERMINATED, /* stopped on request (signal) */
	MONITOR_END_MONITOR_ERROR, /* the monitor itself failed while running */
	MONITOR_END_BOOT_FAILED, /* no heartbeat in time, or a wrong heartbeat byte */
};

const char *monitor_end_name(enum monitor_end e);

/* What the enclave's init reported about its application (the exit report). */
enum monitor_app {
	MONITOR_APP_UNKNOWN =
	        0, /* no report (yet): still running, or an init that does not report */
	MONITOR_APP_EXITED, /* it exited; value = its exit status */
	MONITOR_APP_KILLED, /* it was killed; value = the signal number */
};

/*
 * cloister-monitor's exit statuses (docs/design.md). A parent waiting on the monitor's pid
 * (waitpid/pidfd) learns from them how the enclave ended, or why it never started.
 */
enum monitor_exit {
	MONITOR_EXIT_POWEROFF = 0, /* the guest powered off */
	MONITOR_EXIT_SETUP_FAILED = 1, /* internal error before the guest ran */
	MONITOR_EXIT_USAGE = 2, /* bad arguments or configuration; nothing started */
	MONITOR_EXIT_HOST = 3, /* this host cannot run enclaves; nothing started */
	MONITOR_EXIT_MEMORY = 4, /* hugepages short or unlockable; nothing started */
	MONITOR_EXIT_IMAGE = 5, /* EIF unreadable, malformed or too big; nothing started */
	MONITOR_EXIT_CPU = 6, /* CPU grant cannot be honoured; nothing started */
	MONITOR_EXIT_REBOOT = 10, /* the guest asked for a reboot */
	MONITOR_EXIT_TRIPLE_FAULT = 11, /* the guest triple-faulted */
	MONITOR_EXIT_KVM_ERROR = 12, /* KVM internal error or unexpected exit */
	MONITOR_EXIT_GUEST_VIOLATION = 13, /* the guest broke a device protocol */
	MONITOR_EXIT_TERMINATED = 14, /* stopped by SIGTERM/SIGINT/SIGHUP */
	MONITOR_EXIT_RUN_ERROR = 15, /* the monitor failed while the guest ran */
	MONITOR_EXIT_BOOT_FAILED = 16, /* no (or a wrong) boot heartbeat */
};

int monitor_exit_for_end(enum monitor_end e);
int monitor_exit_for_err(enum vmm_err e);

struct monitor;

/*
 * Validate @cfg, allocate and lock guest RAM, copy the EIF to guest-physical 8 MiB, parse it
 * from guest memory, lay out the boot image, build ACPI tables, create and configure the vCPUs.
 * Nothing runs yet. On failure everything is released and @d names the problem and its fix.
 */
enum vmm_err monitor_create(struct monitor **out, const struct monitor_config *cfg,
                            struct cl_diag *d);

/* Start one thread per vCPU, each pinned to its host CPU. They enter their allow-list, then
 * wait for monitor_sealed() before running any guest code. */
enum vmm_err monitor_start(struct monitor *m, struct cl_diag *d);

/*
 * The caller's main thread has entered its own allow-list (or will not, under --no-seccomp,
 * or failed to and stopped the enclave): the vCPUs may run the guest now. Until then no
 * guest instruction runs, so no thread this process has is the guest's while its main
 * thread, the one other processes (the NSM daemon) see in /proc/PID/status, is unfiltered.
 */
void monitor_sealed(struct monitor *m);

/*
 * Wait until the guest ends, or until one of the signals in @sigfd (a signalfd, or -1) arrives,
 * which ends it as MONITOR_END_TERMINATED. Stops and joins every vCPU thread before returning.
 * @why receives a one-line description of the end.
 */
enum monitor_end monitor_wait(struct monitor *m, int sigfd, char *why, size_t why_len);

/* End the enclave from any thread (first reason wins). */
void monitor_stop(struct monitor *m, enum monitor_end reason, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The application's end as reported by the enclave's init, and its status or signal in
 * *@value. Any thread; the report is the guest's word, not a fact the monitor checked. */
enum monitor_app monitor_app_exit(const struct monitor *m, unsigned *value);

/* The launch measurements (PCR0, 1, 2 and, for a signed EIF, 8) of the EIF as the monitor
 * found it in guest memory, or NULL when nothing was measured (no @enclave_id). Raw values:
 * debug mode zeroes them only where the enclave and verifiers see them (the NSM). */
const struct eif_measurements *monitor_measurements(const struct monitor *m);

/* Release everything; joins threads if monitor_wait was not called. NULL is fine. */
void monitor_destroy(struct monitor *m);

/* Guest RAM, for tests and devices. */
const struct gpa_space *monitor_memory(const struct monitor *m);

/* Wait until all guest RAM is faulted in (monitor_start starts that in the background);
 * logs a warning if it could not be. monitor_wait() does this too. */
void monitor_wait_memory(struct monitor *m);

/* The boot timeline so far (timeline.h): complete once the heartbeat arrived or the guest
 * ended. monitor_wait() logs its summary when the heartbeat arrives. */
const struct timeline *monitor_timeline(const struct monitor *m);

#endif

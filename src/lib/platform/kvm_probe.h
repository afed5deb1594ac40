/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_PLATFORM_KVM_PROBE_H
#define CLOISTER_PLATFORM_KVM_PROBE_H

/*
 * Can this host's /dev/kvm boot an enclave directly?
 *
 * Having /dev/kvm is not enough. On some machines it is a nested paravirtual KVM (kvm_pvm) that
 * runs guest ring-3 natively but emulates guest ring-0 ~1000x slower and stops on instructions it
 * cannot emulate: a Linux kernel never boots there (docs/parent-instance.md). The probe therefore
 * measures instead of guessing: it times a tiny ring-0 loop in a throw-away VM. Native KVM runs
 * the loop in well under 5 ms; the emulated one needs ~0.5 s or fails outright.
 *
 * The probe is split in two so the decision can be tested without KVM:
 *   kvm_probe_measure() gathers facts (device, API version, loop timing, supporting evidence);
 *   kvm_probe_decide() turns facts into a verdict and a human reason with the numbers.
 * kvm_probe_run() does both.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

enum kvm_probe_verdict {
	/* Real hardware virtualization: enclaves can boot on this host's /dev/kvm. */
	KVM_PROBE_DIRECT = 0,
	/* /dev/kvm works but cannot boot a Linux guest (emulated ring 0): use the parent instance. */
	KVM_PROBE_NEEDS_PARENT_INSTANCE = 1,
	/* No usable /dev/kvm at all (absent, no permission, wrong API): only the parent instance,
	 * which runs under software emulation, can host enclaves. */
	KVM_PROBE_NO_KVM = 2,
};

/* How the timed ring-0 loop ended. */
enum kvm_probe_loop {
	KVM_PROBE_LOOP_NOT_RUN = 0, /* an earlier check failed */
	KVM_PROBE_LOOP_HALTED, /* ran to its HLT: loop_ns is valid */
	KVM_PROBE_LOOP_EMULATION_FAILURE, /* KVM_EXIT_INTERNAL_ERROR (e.g. emulation failure) */
	KVM_PROBE_LOOP_UNEXPECTED_EXIT, /* some other exit reason, or KVM_RUN failed */
	KVM_PROBE_LOOP_TIMEOUT, /* did not reach HLT within the time bound */
	KVM_PROBE_LOOP_SETUP_FAILED, /* creating the VM / memory / vCPU failed */
};

/* Errors of the probe machinery itself (not of the host's KVM: those are facts). */
enum kvm_probe_error {
	KVM_PROBE_OK = 0,
	KVM_PROBE_E_ARG, /* NULL argument */
	KVM_PROBE_E_SYSTEM, /* pipe/fork/wait failed in the calling process */
};

/* The loop the probe times: this many `dec ecx; jnz` iterations in 32-bit ring 0. */
#define KVM_PROBE_LOOP_ITERATIONS 1000000u
/* Slower than this for the loop (10 M iterations/s) means ring 0 is emulated, not executed.
 * Measured: emulating kvm_pvm 1-2 M/s; hardware ~1000 M/s; kvm-amd inside the TCG parent
 * instance ~74 M/s. The threshold sits between with a 5-7x margin on both sides. */
#define KVM_PROBE_SLOW_NS 100000000ull
/* Upper bound on the whole measurement; a loop that has not halted by then counts as a timeout. */
#define KVM_PROBE_TIMEOUT_MS 5000u

struct kvm_probe_facts {
	char dev_path[108]; /* the device probed, for the reason text */
	bool dev_present; /* the device node exists */
	bool dev_accessible; /* it could be opened read-write */
	int open_errno; /* errno of the failed open, else 0 */
	int api_version; /* KVM_GET_API_VERSION, or -1 if not asked */
	enum kvm_probe_loop loop;
	uint64_t loop_iterations; /* iterations requested */
	uint64_t loop_ns; /* wall time of KVM_RUN until HLT (HALTED) or until given up */
	uint32_t exit_reason; /* the KVM exit reason for UNEXPECTED_EXIT / EMULATION_FAILURE */
	uint32_t internal_suberror;
	int run_errno; /* errno of a failed setup step or KVM_RUN, else 0 */
	char setup_step[32]; /* which setup step failed ("KVM_CREATE_VM"), for the reason text */
	/* Supporting evidence only; the measurement decides. */
	bool kvm_pvm_loaded; /* /sys/module/kvm_pvm exists */
	bool cpu_svm; /* "svm" in /proc/cpuinfo flags */
	bool cpu_vmx; /* "vmx" in /proc/cpuinfo flags */
};

struct kvm_probe_result {
	enum kvm_probe_verdict verdict;
	struct kvm_probe_facts facts;
	char reason[CL_DIAG_MAX]; /* one or two sentences with the measured numbers */
};

/*
 * Gather facts about @dev_path (NULL means "/dev/kvm"). The timed VM runs in a forked child
 * process that the caller's process waits for at most KVM_PROBE_TIMEOUT_MS (then kills it), so
 * the probe never hangs and leaves no state behind: no signal handlers, timers or fds change in
 * the caller. Problems with KVM itself are facts, not errors. Returns KVM_PROBE_OK, or
 * KVM_PROBE_E_SYSTEM with @d saying which system call failed in the caller.
 */
enum kvm_probe_error kvm_probe_measure(const char *dev_path, struct kvm_probe_facts *facts,
                                       struct cl_diag *d);

/*
 * Decide from @facts (pure function, no I/O): fills @out->verdict, copies the facts, and writes
 * a reason naming the measured numbers and, where there is one, what to do.
 */
void kvm_probe_decide(const struct kvm_probe_facts *facts, struct kvm_probe_result *out);

/* kvm_probe_measure() then kvm_probe_decide(). */
enum kvm_probe_error kvm_probe_run(const char *dev_path, struct kvm_probe_result *out,
                                   struct cl_diag *d);

/* "direct", "needs-parent-instance", "no-kvm" (stable: scripts may parse them). */
const char *kvm_probe_verdict_name(enum kvm_probe_verdict v);
const char *kvm_probe_loop_name(enum kvm_probe_loop l);
const char *kvm_probe_strerror(enum kvm_probe_error e);

#endif

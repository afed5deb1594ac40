/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/platform/kvm_probe.h"
#include "lib/util/file.h"

#define PROBE_MEM_SIZE 0x10000u
#define PROBE_CODE_GPA 0x1000u

/*
 * 32-bit protected mode, ring 0, no paging:
 *   0x1000  mov ecx, KVM_PROBE_LOOP_ITERATIONS
 *   0x1005  dec ecx
 *   0x1006  jnz 0x1005
 *   0x1008  hlt
 * Ring 0 on purpose: that is the code an emulating KVM cannot run natively.
 */
static const uint8_t probe_code[] = {
	0xb9, 0,    0, 0, 0, /* mov ecx, imm32 (patched) */
	0x49, /* dec ecx */
	0x75, 0xfd, /* jnz -3 */
	0xf4, /* hlt */
};
#define PROBE_HLT_END (PROBE_CODE_GPA + sizeof(probe_code))

/* What the child reports back through the pipe. */
struct probe_report {
	enum kvm_probe_loop loop;
	uint64_t ns;
	uint32_t exit_reason;
	uint32_t suberror;
	int err;
	char step[32];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void report_step(struct probe_report *r, const char *step, int err)
{
	size_t n = strlen(step);

	if (n >= sizeof(r->step))
		n = sizeof(r->step) - 1;
	memcpy(r->step, step, n);
	r->step[n] = '\0';
	r->loop = KVM_PROBE_LOOP_SETUP_FAILED;
	r->err = err;
}

static void set_flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffffu;
	s->selector = selector;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = 1;
	s->s = 1;
	s->g = 1;
}

/*
 * Runs in the forked child: build the throw-away VM on @kvm_fd and time the loop. Everything it
 * creates dies with the child process, so there is no unwinding to do here.
 */
static void child_measure(int kvm_fd, struct probe_report *r)
{
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	uint8_t *mem;
	uint32_t iterations = KVM_PROBE_LOOP_ITERATIONS;
	uint64_t t0;
	int vm, vcpu, run_size, rc;

	vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm < 0)
		return report_step(r, "KVM_CREATE_VM", errno);
	mem = mmap(NULL, PROBE_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	           0);
	if (mem == MAP_FAILED)
		return report_step(r, "mmap", errno);
	memcpy(mem + PROBE_CODE_GPA, probe_code, sizeof(probe_code));
	memcpy(mem + PROBE_CODE_GPA + 1, &iterations, sizeof(iterations));

	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = PROBE_MEM_SIZE;
	region.userspace_addr = (uint64_t)(uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return report_step(r, "KVM_SET_USER_MEMORY_REGION", errno);
	/* VMX without unrestricted guest needs a TSS area; AMD ignores it. Failure is harmless. */
	(void)ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return report_step(r, "KVM_CREATE_VCPU", errno);
	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(*run))
		return report_step(r, "KVM_GET_VCPU_MMAP_SIZE", run_size < 0 ? errno : EINVAL);
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return report_step(r, "mmap(kvm_run)", errno);

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return report_step(r, "KVM_GET_SREGS", errno);
	set_flat_segment(&sregs.cs, 0x08, 0xb); /* execute/read, accessed */
	set_flat_segment(&sregs.ds, 0x10, 0x3); /* read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = 0x11; /* PE | ET: protected mode, no paging */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return report_step(r, "KVM_SET_SREGS", errno);
	memset(&regs, 0, sizeof(regs));
	regs.rip = PROBE_CODE_GPA;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return report_step(r, "KVM_SET_REGS", errno);

	t0 = now_ns();
	rc = ioctl(vcpu, KVM_RUN, 0);
	r->ns = now_ns() - t0;
	if (rc < 0) {
		r->loop = KVM_PROBE_LOOP_UNEXPECTED_EXIT;
		r->err = errno;
		return;
	}
	r->exit_reason = run->exit_reason;
	switch (run->exit_reason) {
	case KVM_EXIT_HLT:
		/* Make sure the loop really ran to the end rather than something else halting. */
		if (ioctl(vcpu, KVM_GET_REGS, &regs) < 0 || (uint32_t)regs.rcx != 0 ||
		    regs.rip != PROBE_HLT_END) {
			r->loop = KVM_PROBE_LOOP_UNEXPECTED_EXIT;
			return;
		}
		r->loop = KVM_PROBE_LOOP_HALTED;
		return;
	case KVM_EXIT_INTERNAL_ERROR:
		r->loop = KVM_PROBE_LOOP_EMULATION_FAILURE;
		r->suberror = run->internal.suberror;
		return;
	default:
		r->loop = KVM_PROBE_LOOP_UNEXPECTED_EXIT;
		return;
	}
}

static bool cpuinfo_has_flag(const char *line, const char *flag)
{
	size_t n = strlen(flag);
	const char *p = strchr(line, ':');

	for (p = p ? p + 1 : line; (p = strstr(p, flag)) != NULL; p += n)
		if (p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static void gather_evidence(struct kvm_probe_facts *f)
{
	struct stat st;
	char *line = NULL;
	size_t cap = 0;
	FILE *cpuinfo;

	f->kvm_pvm_loaded = stat("/sys/module/kvm_pvm", &st) == 0;
	cpuinfo = fopen("/proc/cpuinfo", "re");
	if (!cpuinfo)
		return;
	while (getline(&line, &cap, cpuinfo) > 0) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		f->cpu_svm = cpuinfo_has_flag(line, "svm");
		f->cpu_vmx = cpuinfo_has_flag(line, "vmx");
		break; /* the first CPU is representative */
	}
	free(line);
	fclose(cpuinfo);
}

/* Fork, run the VM in the child, wait at most KVM_PROBE_TIMEOUT_MS for its report. */
static enum kvm_probe_error timed_loop(int kvm_fd, struct kvm_probe_facts *f, struct cl_diag *d)
{
	struct probe_report rep;
	struct pollfd pfd;
	uint64_t t0, waited_ms;
	size_t got = 0;
	pid_t pid;
	int p[2], status;

	if (pipe2(p, O_CLOEXEC) < 0) {
		cl_diag_set(d, "kvm probe: pipe: %s", strerror(errno));
		return KVM_PROBE_E_SYSTEM;
	}
	t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		cl_diag_set(d, "kvm probe: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return KVM_PROBE_E_SYSTEM;
	}
	if (pid == 0) {
		/* Die with the caller, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		memset(&rep, 0, sizeof(rep));
		child_measure(kvm_fd, &rep);
		_exit(cl_write_full(p[1], &rep, sizeof(rep)) == 0 ? 0 : 1);
	}
	close(p[1]);

	memset(&rep, 0, sizeof(rep));
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		ssize_t n;
		int timeout;

		waited_ms = (now_ns() - t0) / 1000000u;
		if (waited_ms >= KVM_PROBE_TIMEOUT_MS)
			break;
		timeout = (int)(KVM_PROBE_TIMEOUT_MS - waited_ms);
		pfd.revents = 0;
		if (poll(&pfd, 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!pfd.revents)
			continue;
		n = read(p[0], (uint8_t *)&rep + got, sizeof(rep) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(rep))
			break;
	}
	close(p[0]);
	if (got != sizeof(rep))
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;

	if (got != sizeof(rep)) {
		f->loop = KVM_PROBE_LOOP_TIMEOUT;
		f->loop_ns = now_ns() - t0;
		return KVM_PROBE_OK;
	}
	f->loop = rep.loop;
	f->loop_ns = rep.ns;
	f->exit_reason = rep.exit_reason;
	f->internal_suberror = rep.suberror;
	f->run_errno = rep.err;
	memcpy(f->setup_step, rep.step, sizeof(f->setup_step));
	f->setup_step[sizeof(f->setup_step) - 1] = '\0';
	return KVM_PROBE_OK;
}

enum kvm_probe_error kvm_probe_measure(const char *dev_path, struct kvm_probe_facts *facts,
                                       struct cl_diag *d)
{
	enum kvm_probe_error err;
	struct stat st;
	int fd;

	if (!facts)
		return KVM_PROBE_E_ARG;
	if (!dev_path)
		dev_path = "/dev/kvm";
	memset(facts, 0, sizeof(*facts));
	snprintf(facts->dev_path, sizeof(facts->dev_path), "%s", dev_path);
	facts->api_version = -1;
	facts->loop_iterations = KVM_PROBE_LOOP_ITERATIONS;
	gather_evidence(facts);

	if (stat(dev_path, &st) < 0) {
		facts->open_errno = errno;
		return KVM_PROBE_OK;
	}
	facts->dev_present = true;
	fd = open(dev_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		facts->open_errno = errno;
		return KVM_PROBE_OK;
	}
	facts->dev_accessible = true;
	facts->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (facts->api_version != KVM_API_VERSION) {
		close(fd);
		return KVM_PROBE_OK;
	}
	err = timed_loop(fd, facts, d);
	close(fd);
	return err;
}

static void append(char *buf, size_t cap, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t cap, const char *fmt, ...)
{
	size_t used = strnlen(buf, cap);
	va_list ap;

	if (used + 1 >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, cap - used, fmt, ap);
	va_end(ap);
}

void kvm_probe_decide(const struct kvm_probe_facts *f, struct kvm_probe_result *out)
{
	char *r = out->reason;
	size_t cap = sizeof(out->reason);
	double ms = (double)f->loop_ns / 1e6;
	double mips = f->loop_ns ? (double)f->loop_iterations * 1e3 / (double)f->loop_ns : 0.0;

	out->facts = *f;
	r[0] = '\0';
	if (!f->dev_present) {
		out->verdict = KVM_PROBE_NO_KVM;
		append(r, cap,
		       "%s does not exist (%s): this host has no KVM; enable virtualization and "
		       "load "
		       "kvm-intel or kvm-amd, or run enclaves in the parent instance",
		       f->dev_path, strerror(f->open_errno ? f->open_errno : ENOENT));
	} else if (!f->dev_accessible) {
		out->verdict = KVM_PROBE_NO_KVM;
		append(r, cap,
		       "cannot open %s read-write (%s); run as root or add the user to the kvm "
		       "group",
		       f->dev_path, strerror(f->open_errno ? f->open_errno : EACCES));
	} else if (f->api_version != KVM_API_VERSION) {
		out->verdict = KVM_PROBE_NO_KVM;
		append(r, cap, "%s reports KVM API version %d, expected %d", f->dev_path,
		       f->api_version, KVM_API_VERSION);
	} else {
		switch (f->loop) {
		case KVM_PROBE_LOOP_HALTED:
			if (f->loop_ns > KVM_PROBE_SLOW_NS) {
				out->verdict = KVM_PROBE_NEEDS_PARENT_INSTANCE;
				append(r, cap,
				       "a ring-0 loop of %llu iterations took %.1f ms (%.1f M "
				       "iterations/s; native KVM needs < 5 ms): guest kernel code "
				       "is "
				       "emulated, not executed, so a Linux guest cannot boot here",
				       (unsigned long long)f->loop_iterations, ms, mips);
			} else {
				out->verdict = KVM_PROBE_DIRECT;
				append(r, cap,
				       "a ring-0 loop of %llu iterations took %.2f ms (%.0f M "
				       "iterations/s): hardware virtualization, enclaves boot "
				       "directly",
				       (unsigned long long)f->loop_iterations, ms, mips);
			}
			break;
		case KVM_PROBE_LOOP_EMULATION_FAILURE:
			out->verdict = KVM_PROBE_NEEDS_PARENT_INSTANCE;
			append(r, cap,
			       "the ring-0 test loop stopped with a KVM internal error (suberror "
			       "%u%s) "
			       "after %.1f ms: guest kernel code is emulated and the emulator "
			       "fails",
			       f->internal_suberror,
			       f->internal_suberror == KVM_INTERNAL_ERROR_EMULATION
			               ? ", emulation failure"
			               : "",
			       ms);
			break;
		case KVM_PROBE_LOOP_UNEXPECTED_EXIT:
			out->verdict = KVM_PROBE_NEEDS_PARENT_INSTANCE;
			if (f->run_errno)
				append(r, cap, "KVM_RUN of the ring-0 test loop failed: %s",
				       strerror(f->run_errno));
			else
				append(r, cap,
				       "the ring-0 test loop ended with unexpected exit reason %u "
				       "instead of HLT after %.1f ms",
				       f->exit_reason, ms);
			break;
		case KVM_PROBE_LOOP_TIMEOUT:
			out->verdict = KVM_PROBE_NEEDS_PARENT_INSTANCE;
			append(r, cap,
			       "the ring-0 test loop of %llu iterations did not finish within %.0f "
			       "ms "
			       "(native KVM needs < 5 ms): guest kernel code is emulated or stuck",
			       (unsigned long long)f->loop_iterations, ms);
			break;
		case KVM_PROBE_LOOP_SETUP_FAILED:
			out->verdict = KVM_PROBE_NO_KVM;
			append(r, cap, "creating a throw-away VM on %s failed at %s: %s",
			       f->dev_path, f->setup_step[0] ? f->setup_step : "?",
			       strerror(f->run_errno ? f->run_errno : EINVAL));
			break;
		case KVM_PROBE_LOOP_NOT_RUN:
		default:
			out->verdict = KVM_PROBE_NO_KVM;
			append(r, cap, "the ring-0 test loop was not run on %s", f->dev_path);
			break;
		}
	}
	/* Supporting evidence: never decisive, but it explains the measurement. */
	append(r, cap, " [evidence: kvm_pvm module %s; CPU flags %s]",
	       f->kvm_pvm_loaded ? "loaded (nested paravirtual KVM)" : "absent",
	       f->cpu_svm ? (f->cpu_vmx ? "svm vmx" : "svm")
	                  : (f->cpu_vmx ? "vmx" : "have neither svm nor vmx"));
}

enum kvm_probe_error kvm_probe_run(const char *dev_path, struct kvm_probe_result *out,
                                   struct cl_diag *d)
{
	struct kvm_probe_facts facts;
	enum kvm_probe_error err;

	if (!out)
		return KVM_PROBE_E_ARG;
	err = kvm_probe_measure(dev_path, &facts, d);
	if (err != KVM_PROBE_OK)
		return err;
	kvm_probe_decide(&facts, out);
	return KVM_PROBE_OK;
}

const char *kvm_probe_verdict_name(enum kvm_probe_verdict v)
{
	switch (v) {
	case KVM_PROBE_DIRECT:
		return "direct";
	case KVM_PROBE_NEEDS_PARENT_INSTANCE:
		return "needs-parent-instance";
	case KVM_PROBE_NO_KVM:
		return "no-kvm";
	}
	return "unknown";
}

const char *kvm_probe_loop_name(enum kvm_probe_loop l)
{
	switch (l) {
	case KVM_PROBE_LOOP_NOT_RUN:
		return "not run";
	case KVM_PROBE_LOOP_HALTED:
		return "halted";
	case KVM_PROBE_LOOP_EMULATION_FAILURE:
		return "emulation failure";
	case KVM_PROBE_LOOP_UNEXPECTED_EXIT:
		return "unexpected exit";
	case KVM_PROBE_LOOP_TIMEOUT:
		return "timeout";
	case KVM_PROBE_LOOP_SETUP_FAILED:
		return "setup failed";
	}
	return "unknown";
}

const char *kvm_probe_strerror(enum kvm_probe_error e)
{
	switch (e) {
	case KVM_PROBE_OK:
		return "success";
	case KVM_PROBE_E_ARG:
		return "invalid argument";
	case KVM_PROBE_E_SYSTEM:
		return "system call failed in the probing process";
	}
	return "unknown kvm probe error";
}

/* SPDX-License-Identifier: Apache-2.0 */
/* The monitor's main thread: start the vCPUs, then wait in one poll() for the guest's end or a
 * termination signal (later also the vsock/NSM backends' fds), then stop and join everything. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/log.h"
#include "vmm/devices/vsock.h"
#include "vmm/monitor_priv.h"

/* The signal that knocks a vCPU thread out of KVM_RUN. Its handler does nothing: the point is
 * the EINTR. A process-wide setting, installed once by monitor_start. */
#define KICK_SIGNAL (SIGRTMIN)

static void kick_handler(int sig)
{
	(void)sig;
}

void vcpu_kick_all(struct monitor *m)
{
	pthread_t self = pthread_self();

	for (unsigned i = 0; i < m->ncpus; i++) {
		struct vcpu *v = &m->vcpu[i];

		if (v->run)
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
		if (__atomic_load_n(&v->thread_started, __ATOMIC_ACQUIRE) &&
		    !pthread_equal(v->thread, self))
			pthread_kill(v->thread, KICK_SIGNAL);
	}
}

void monitor_sealed(struct monitor *m)
{
	pthread_mutex_lock(&m->end_lock);
	if (!m->sealed) {
		m->sealed = true;
		timeline_mark(&m->tl, TL_SEALED);
		pthread_cond_broadcast(&m->sealed_cond);
	}
	pthread_mutex_unlock(&m->end_lock);
}

void monitor_stop(struct monitor *m, enum monitor_end reason, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;
	bool first = false;

	pthread_mutex_lock(&m->end_lock);
	if (m->end == MONITOR_END_NONE) {
		va_start(ap, fmt);
		vsnprintf(m->why, sizeof(m->why), fmt, ap);
		va_end(ap);
		__atomic_store_n(&m->end, reason, __ATOMIC_RELEASE);
		first = true;
		pthread_cond_broadcast(&m->sealed_cond); /* vCPUs waiting to start: it ended */
	}
	pthread_mutex_unlock(&m->end_lock);
	if (!first)
		return;
	if (m->end_fd >= 0)
		(void)!write(m->end_fd, &one, sizeof(one));
	vcpu_kick_all(m);
}

/*
 * The enclave's CPUs belong to its vCPUs: the monitor's other threads (this one, which serves
 * the devices, and the memory thread it starts) run on the rest of the CPUs it may use, as
 * the parent's own processes do on Nitro. Threads started from here on inherit that; each
 * vCPU thread then pins itself to its CPU. If nothing would be left (the monitor was confined
 * to the enclave's CPUs), it stays as it is.
 */
static void keep_off_enclave_cpus(struct monitor *m)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->vcpu[i].host_cpu >= 0 && m->vcpu[i].host_cpu < CPU_SETSIZE)
			CPU_CLR(m->vcpu[i].host_cpu, &set);
	if (CPU_COUNT(&set) == 0) {
		cl_debug("the monitor may run only on the enclave's CPUs; its threads share them");
		return;
	}
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		cl_warn("cannot keep the monitor's threads off the enclave's CPUs: %s",
		        strerror(errno));
}

enum vmm_err monitor_start(struct monitor *m, struct cl_diag *d)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL) < 0) {
		cl_diag_set(d, "sigaction: %s", strerror(errno));
		return VMM_ERR_INTERNAL;
	}
	keep_off_enclave_cpus(m);
	for (unsigned i = 0; i < m->ncpus; i++) {
		struct vcpu *v = &m->vcpu[i];
		int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);

		if (rc != 0) {
			cl_diag_set(d, "cannot start vCPU thread %u: %s", i, strerror(rc));
			monitor_stop(m, MONITOR_END_MONITOR_ERROR, "vCPU thread %u failed to start",
			             i);
			return VMM_ERR_INTERNAL; /* monitor_destroy joins the others */
		}
		__atomic_store_n(&v->thread_started, true, __ATOMIC_RELEASE);
	}
	monitor_start_populate(m);
	return VMM_OK;
}

/* The guest kicked vsock queue @q through its ioeventfd. When the device stops early with more
 * to do (the guest keeps the queue full), the kick is signalled again for the next poll(): a
 * termination signal and the host's sockets are seen to first, then the queue again. */
static void vsock_kicked(struct monitor *m, unsigned q)
{
	uint64_t count, one = 1;
	int rc;

	(void)!read(m->vsock_kick_fd[q], &count, sizeof(count));
	rc = virtio_mmio_kick(m->vsock_t, q);
	if (rc < 0)
		monitor_stop(m, MONITOR_END_GUEST_VIOLATION, "%s", m->vsock_t->why);
	else if (rc == VIRTIO_MMIO_MORE)
		(void)!write(m->vsock_kick_fd[q], &one, sizeof(one));
}

/* Milliseconds since @t0 on the monotonic clock. */
static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - t0->tv_sec) * 1000 +
	       (uint64_t)((now.tv_nsec - t0->tv_nsec) / 1000000);
}

enum monitor_end monitor_wait(struct monitor *m, int sigfd, char *why, size_t why_len)
{
	const unsigned hb_ms = m->vsock ? m->cfg.heartbeat_timeout_ms : 0;
	struct timespec t0;
	unsigned app_value;
	char line[256];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(&m->end, __ATOMIC_ACQUIRE) == MONITOR_END_NONE) {
		struct pollfd p[6] = { { .fd = m->end_fd, .events = POLLIN },
			               { .fd = sigfd, .events = POLLIN },
			               { .fd = m->vsock ? vsock_dev_poll_fd(m->vsock) : -1,
			                 .events = POLLIN },
			               { .fd = m->booted_fd, .events = POLLIN },
			               { .fd = m->vsock_kick_fd[0], .events = POLLIN },
			               { .fd = m->vsock_kick_fd[1], .events = POLLIN } };
		bool waiting_hb = hb_ms && !__atomic_load_n(&m->booted, __ATOMIC_ACQUIRE);
		int timeout = -1, n;

		if (waiting_hb) {
			uint64_t spent = ms_since(&t0);

			if (spent >= hb_ms) {
				monitor_stop(
				        m, MONITOR_END_BOOT_FAILED,
				        "no boot heartbeat (0xB7 on vsock port 9000) within %u ms",
				        hb_ms);
				break;
			}
			timeout = (int)(hb_ms - spent);
		}
		n = poll(p, 6, timeout); /* fds of -1 are ignored */
		if (n < 0 && errno != EINTR) {
			monitor_stop(m, MONITOR_END_MONITOR_ERROR, "poll: %s", strerror(errno));
			break;
		}
		if (n <= 0)
			continue;
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				monitor_stop(m, MONITOR_END_TERMINATED, "terminated by signal %s",
				             strsignal((int)si.ssi_signo));
		}
		/* Guest kicks first (tx frees the guest's buffers), then the host's sockets. */
		for (unsigned q = 0; q < 2; q++)
			if (p[4 + q].revents & POLLIN)
				vsock_kicked(m, q);
		if (p[2].revents & POLLIN) {
			char vwhy[sizeof(m->why)];

			if (vsock_dev_host_ready(m->vsock, vwhy, sizeof(vwhy)) < 0)
				monitor_stop(m, MONITOR_END_GUEST_VIOLATION, "%s", vwhy);
		}
		if (p[3].revents & POLLIN) {
			uint64_t v;

			(void)!read(m->booted_fd, &v, sizeof(v));
			timeline_summary(&m->tl, line, sizeof(line));
			cl_info("enclave booted: %s", line);
			if (m->cfg.on_booted)
				m->cfg.on_booted(m->cfg.booted_opaque);
		}
	}
	/* A thread created after the first kick may have missed it: kick again, then join. */
	vcpu_kick_all(m);
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->vcpu[i].thread_started)
			pthread_join(m->vcpu[i].thread, NULL);
	m->joined = true;
	monitor_wait_memory(m);
	serial_flush(&m->serial);
	switch (monitor_app_exit(m, &app_value)) {
	case MONITOR_APP_EXITED:
		cl_info("enclave application exited with status %u", app_value);
		break;
	case MONITOR_APP_KILLED:
		cl_info("enclave application was killed by signal %u", app_value);
		break;
	case MONITOR_APP_UNKNOWN:
		break;
	}
	if (why)
		snprintf(why, why_len, "%s", m->why);
	return m->end;
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_MONITOR_PRIV_H
#define CLOISTER_VMM_MONITOR_PRIV_H

/* Internals shared by monitor.c (setup), vcpu.c (vCPU threads) and loop.c (waiting). */

#include <pthread.h>

#include "vmm/arch/x86_64/boot.h"
#include "vmm/devices/serial.h"
#include "cloister/eif.h"
#include "vmm/devices/nsm.h"
#include "vmm/monitor.h"
#include "vmm/timeline.h"
#include "vmm/virtio/mmio.h"

struct vcpu {
	struct monitor *m;
	unsigned id;
	int host_cpu;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
};

struct monitor {
	struct monitor_config cfg;
	struct vm vm;
	struct boot_layout boot;
	struct serial serial;
	bool serial_ready;
	unsigned nvirtio;
	struct virtio_mmio_dev *virtio[8];
	/* Interrupts through irqfds, one per virtio slot and one for the UART; -1: pulse the line
	 * with KVM_IRQ_LINE instead (irqfd unavailable). */
	int virtio_irq_fd[8];
	int uart_irq_fd;
	/* The vsock device's transport, and the ioeventfds of its rx and tx QueueNotify writes
	 * (-1: those kicks exit to the vCPU thread like any MMIO write). The main thread serves
	 * them, so a kick costs the guest no exit to this process. */
	struct virtio_mmio_dev *vsock_t;
	int vsock_kick_fd[2];
	struct virtio_nsm *nsm;
	struct eif_measurements meas; /* when the EIF was measured (enclave_id given) */

	unsigned ncpus;
	struct vcpu vcpu[MONITOR_MAX_CPUS];

	int end_fd; /* eventfd: written once when the guest ends */
	struct vsock_dev *vsock;
	bool booted; /* the heartbeat arrived */
	int booted_fd; /* eventfd: written once when it does */
	/* The exit report: 0 = none, else (enum monitor_app << 8) | value. Written once, from
	 * the vsock device's thread; read by any thread. */
	unsigned app_exit;
	pthread_mutex_t end_lock;
	pthread_cond_t sealed_cond; /* under end_lock: sealed, or the enclave ended */
	bool sealed; /* monitor_sealed() was called */
	enum monitor_end end;
	char why[256];
	bool joined;
	struct timeline tl; /* where launch time went (timeline.h) */
	/* Guest RAM is faulted in by this thread while the rest of the launch goes on
	 * (monitor_start starts it; joined by monitor_wait_memory, monitor_wait, destroy). */
	pthread_t populate_thread;
	bool populate_started, populate_joined;
	int populate_err; /* 0, or -errno from vm_ram_populate */
};

void *vcpu_thread(void *arg);
/* Start faulting in guest RAM in the background (in line if no thread can be had). */
void monitor_start_populate(struct monitor *m);
void vcpu_kick_all(struct monitor *m);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_SERIAL_H
#define CLOISTER_VMM_SERIAL_H

/*
 * A 16550A UART at 0x3f8 (ttyS0), output only. What Linux's 8250 driver needs to use it with
 * interrupts in a hardware-reduced ACPI machine (docs/direct-boot.md): the FIFO answer in IIR
 * that identifies a 16550A, MSR following MCR in loopback mode for the autoconfig probe, and a
 * THRE interrupt (IIR = 0x02 while IER.THRI is set) pulsed on IRQ 4 when the driver enables
 * THRI and after each byte written. Output goes to @out_fd only when the enclave runs in debug
 * mode; in production the device exists (the kernel expects ttyS0) but every byte is dropped.
 * Output the host cannot write (a full disk) is dropped too, never waited for; the log says
 * when that starts and when it ends (with the bytes lost), once each, not per line.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*serial_irq_fn)(void *opaque);

struct serial {
	pthread_mutex_t lock;
	int out_fd; /* -1: production, output discarded */
	serial_irq_fn irq;
	void *irq_opaque;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thre_pending;
	uint8_t buf[512]; /* output line buffer: one write() per line, not per byte */
	unsigned buflen;
	uint64_t lost_bytes; /* dropped since the last write that worked (0: none now) */
	unsigned lost_episodes; /* times writing started to fail */
};

void serial_init(struct serial *s, int out_fd, serial_irq_fn irq, void *irq_opaque);
/* Flush buffered output and release the lock. Does not close out_fd. */
void serial_destroy(struct serial *s);

/* A guest access to port 0x3f8 + @off (0..7), one byte. */
void serial_out(struct serial *s, unsigned off, uint8_t val);
uint8_t serial_in(struct serial *s, unsigned off);

void serial_flush(struct serial *s);

#endif

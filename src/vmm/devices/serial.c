/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lib/util/log.h"
#include "vmm/devices/serial.h"

/* Registers (offsets from the base port) and bits, per the 16550 data sheet. */
#define UART_RX_TX 0
#define UART_IER 1
#define UART_IIR_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_FIFO_ENABLED 0xc0
#define FCR_ENABLE_FIFO 0x01
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void serial_init(struct serial *s, int out_fd, serial_irq_fn irq, void *irq_opaque)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->irq = irq;
	s->irq_opaque = irq_opaque;
	s->mcr = 0x08; /* OUT2 */
}

/* Episodes of lost output named at warning level; later ones at debug level only. */
#define LOST_WARNINGS_MAX 3

/*
 * Write the buffered line. The guest's UART never waits for the host: when the console file
 * cannot take it (its disk full, say), the line is dropped. The log says so once when that
 * starts and once, with the count, when lines are written again, not once per line: a chatty
 * guest on a full disk must not flood a log that is likely on the same disk.
 */
static void flush_locked(struct serial *s)
{
	size_t done = 0;
	int err = 0;

	if (!s->buflen || s->out_fd < 0) {
		s->buflen = 0;
		return;
	}
	while (done < s->buflen) {
		ssize_t n = write(s->out_fd, s->buf + done, s->buflen - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			break;
		}
		done += (size_t)n;
	}
	if (err) {
		if (!s->lost_bytes) {
			s->lost_episodes++;
			cl_log(s->lost_episodes <= LOST_WARNINGS_MAX ? CL_LOG_WARN : CL_LOG_DEBUG,
			       "console: cannot write the enclave's console output: %s; it is "
			       "dropped "
			       "until it can be written again (the enclave runs on)%s",
			       strerror(err),
			       s->lost_episodes == LOST_WARNINGS_MAX ? " (from now on such "
			                                               "episodes are logged at "
			                                               "debug level only)"
			                                             : "");
		}
		s->lost_bytes += s->buflen - done;
	} else if (s->lost_bytes) {
		cl_log(s->lost_episodes <= LOST_WARNINGS_MAX ? CL_LOG_INFO : CL_LOG_DEBUG,
		       "console: writing the enclave's console output again; %llu bytes were "
		       "dropped",
		       (unsigned long long)s->lost_bytes);
		s->lost_bytes = 0;
	}
	s->buflen = 0;
}

void serial_flush(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	flush_locked(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_destroy(struct serial *s)
{
	serial_flush(s);
	pthread_mutex_destroy(&s->lock);
}

static void emit(struct serial *s, uint8_t c)
{
	if (s->out_fd < 0)
		return; /* production: the console is not observable from the host */
	s->buf[s->buflen++] = c;
	if (c == '\n' || s->buflen == sizeof(s->buf))
		flush_locked(s);
}

void serial_out(struct serial *s, unsigned off, uint8_t val)
{
	bool pulse = false;

	pthread_mutex_lock(&s->lock);
	switch (off) {
	case UART_RX_TX:
		if (s->lcr & LCR_DLAB) {
			s->dll = val;
			break;
		}
		if (!(s->mcr & MCR_LOOP))
			emit(s, val);
		/* The byte left at once: the holding register is empty again. */
		s->thre_pending = true;
		pulse = s->ier & IER_THRI;
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = val;
			break;
		}
		if ((val & IER_THRI) && !(s->ier & IER_THRI)) {
			s->thre_pending = true;
			pulse = true;
		}
		s->ier = val & 0x0f;
		break;
	case UART_IIR_FCR:
		s->fcr = val;
		break;
	case UART_LCR:
		s->lcr = val;
		break;
	case UART_MCR:
		s->mcr = val & 0x1f;
		break;
	case UART_SCR:
		s->scr = val;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&s->lock);
	if (pulse && s->irq)
		s->irq(s->irq_opaque);
}

uint8_t serial_in(struct serial *s, unsigned off)
{
	uint8_t v = 0;

	pthread_mutex_lock(&s->lock);
	switch (off) {
	case UART_RX_TX:
		v = (s->lcr & LCR_DLAB) ? s->dll : 0;
		break;
	case UART_IER:
		v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
		break;
	case UART_IIR_FCR:
		v = (s->fcr & FCR_ENABLE_FIFO) ? IIR_FIFO_ENABLED : 0;
		if ((s->ier & IER_THRI) && s->thre_pending) {
			v |= IIR_THRI;
			s->thre_pending = false; /* reading IIR clears a THRE interrupt */
		} else {
			v |= IIR_NO_INT;
		}
		break;
	case UART_LCR:
		v = s->lcr;
		break;
	case UART_MCR:
		v = s->mcr;
		break;
	case UART_LSR:
		v = LSR_THRE | LSR_TEMT;
		break;
	case UART_MSR:
		if (s->mcr & MCR_LOOP) {
			/* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
			v = (uint8_t)(((s->mcr & 0x01) ? MSR_DSR : 0) |
			              ((s->mcr & 0x02) ? MSR_CTS : 0) |
			              ((s->mcr & 0x04) ? MSR_RI : 0) |
			              ((s->mcr & 0x08) ? MSR_DCD : 0));
		} else {
			v = MSR_DCD | MSR_DSR | MSR_CTS;
		}
		break;
	case UART_SCR:
		v = s->scr;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&s->lock);
	return v;
}

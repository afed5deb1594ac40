/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_BOOT_TIMER_H
#define CLOISTER_BOOT_TIMER_H

/*
 * The boot-timer port: how an enclave's init tells the monitor how far boot has got, so the
 * monitor can say where launch time went (docs/benchmarks.md, "Boot timeline"). The guest
 * writes one byte, a stage below, to I/O port CL_BOOT_TIMER_PORT; the monitor notes the time
 * of the first write of each stage and ignores everything else written there. Nothing is
 * read back and nothing in the enclave depends on it: on Nitro hardware, or on a monitor
 * without the port, the write goes nowhere.
 *
 * The port sits in a range no PC device or Linux driver uses (0x440-0x44f is unassigned in
 * the PC I/O map; our platform has only the 16550 at 0x3f8, the i8042 at 0x64, 0xcf9 and the
 * ACPI ports at 0x600).
 */
#define CL_BOOT_TIMER_PORT 0x440

enum cl_boot_stage {
	CL_BOOT_STAGE_INIT = 1, /* init's first instruction: the kernel is done */
	CL_BOOT_STAGE_DEVICES = 2, /* init loaded its modules: vsock and NSM are there */
	CL_BOOT_STAGE_APP = 3, /* init is about to exec the application */
};

#if defined(__x86_64__) && defined(CL_BOOT_TIMER_GUEST)
#include <sys/io.h>

/* Guest side: mark @stage. Needs CAP_SYS_RAWIO (PID 1 has it); does nothing without it. The
 * first call opens this one port with ioperm(); children do not inherit that (fork drops
 * it), so the application never gets port access from here. */
static inline void cl_boot_timer_mark(enum cl_boot_stage stage)
{
	static int state; /* 0 untried, 1 open, -1 refused */

	if (state == 0)
		state = ioperm(CL_BOOT_TIMER_PORT, 1, 1) == 0 ? 1 : -1;
	if (state > 0)
		outb((unsigned char)stage, CL_BOOT_TIMER_PORT);
}
#endif

#endif

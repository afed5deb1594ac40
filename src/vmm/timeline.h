/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_TIMELINE_H
#define CLOISTER_VMM_TIMELINE_H

/*
 * The boot timeline: when each step of a launch happened, from the monitor's own clock
 * (CLOCK_MONOTONIC) and the guest's boot-timer port (cloister/boot_timer.h). Every event is
 * recorded once, the first time it happens, from whichever thread sees it; later sightings
 * are ignored. Read it once the guest has booted or ended (docs/benchmarks.md).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum timeline_event {
	TL_START, /* the launch began (the monitor's origin) */
	TL_READY, /* VM set up: memory, image, ACPI tables, vCPUs; nothing runs yet */
	TL_MEMORY, /* all guest RAM faulted in (in the background, from set-up on) */
	TL_VCPU_RUN, /* vCPU 0 entered the guest for the first time */
	TL_UART, /* the guest's first access to the 16550: the kernel is unpacked and running */
	TL_INIT, /* boot timer: init's first instruction */
	TL_DEVICES, /* boot timer: init loaded its modules */
	TL_VIRTIO, /* the guest's first access to a virtio-mmio device (a driver probing) */
	TL_HEARTBEAT, /* the Nitro heartbeat (0xB7 on CID 3 port 9000) arrived */
	TL_APP, /* boot timer: init starts the application */
	TL_SEALED, /* the main thread is under its allow-list: the vCPUs may run the guest */
	TL_COUNT
};

struct timeline {
	uint64_t at_ns[TL_COUNT]; /* CLOCK_MONOTONIC; 0 = not (yet) seen */
};

uint64_t timeline_now_ns(void);

/* Start a timeline at @origin_ns (0: now). */
void timeline_init(struct timeline *t, uint64_t origin_ns);

/* Record @e now unless it was recorded before; true if this call recorded it. Thread-safe. */
bool timeline_mark(struct timeline *t, enum timeline_event e);

/* A byte the guest wrote to the boot-timer port: record its stage; unknown values are ignored
 * (false). */
bool timeline_mark_stage(struct timeline *t, uint8_t stage);

/* Milliseconds from the start to @e, or a negative value if @e was not seen. */
double timeline_ms(const struct timeline *t, enum timeline_event e);

/* The events as one JSON object, {"unit":"ms","ready":12.1,...,"app":null}; returns the
 * length written (< @len) or -1 if @buf is too small. */
int timeline_json(const struct timeline *t, char *buf, size_t len);

/* One line for the log: "monitor set-up 31 ms, kernel 4.20 s, init 0.85 s, heartbeat after
 * 5.08 s" (phases without both ends are left out). Returns the length, as snprintf. */
int timeline_summary(const struct timeline *t, char *buf, size_t len);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* The boot timeline (timeline.h). */
#include <stdio.h>
#include <time.h>

#include "cloister/boot_timer.h"
#include "vmm/timeline.h"

static const char *const event_key[TL_COUNT] = {
	[TL_START] = "start",       [TL_MEMORY] = "memory", [TL_READY] = "ready",
	[TL_VCPU_RUN] = "vcpu_run", [TL_UART] = "uart",     [TL_INIT] = "init",
	[TL_DEVICES] = "devices",   [TL_VIRTIO] = "virtio", [TL_HEARTBEAT] = "heartbeat",
	[TL_APP] = "app",           [TL_SEALED] = "sealed",
};

uint64_t timeline_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void timeline_init(struct timeline *t, uint64_t origin_ns)
{
	for (unsigned i = 0; i < TL_COUNT; i++)
		t->at_ns[i] = 0;
	t->at_ns[TL_START] = origin_ns ? origin_ns : timeline_now_ns();
}

bool timeline_mark(struct timeline *t, enum timeline_event e)
{
	uint64_t none = 0;

	if ((unsigned)e >= TL_COUNT || __atomic_load_n(&t->at_ns[e], __ATOMIC_RELAXED))
		return false; /* the common case after boot: one load, no clock read */
	return __atomic_compare_exchange_n(&t->at_ns[e], &none, timeline_now_ns(), false,
	                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

bool timeline_mark_stage(struct timeline *t, uint8_t stage)
{
	switch (stage) {
	case CL_BOOT_STAGE_INIT:
		return timeline_mark(t, TL_INIT);
	case CL_BOOT_STAGE_DEVICES:
		return timeline_mark(t, TL_DEVICES);
	case CL_BOOT_STAGE_APP:
		return timeline_mark(t, TL_APP);
	default:
		return false;
	}
}

double timeline_ms(const struct timeline *t, enum timeline_event e)
{
	uint64_t at, start = __atomic_load_n(&t->at_ns[TL_START], __ATOMIC_RELAXED);

	if ((unsigned)e >= TL_COUNT)
		return -1;
	at = __atomic_load_n(&t->at_ns[e], __ATOMIC_RELAXED);
	if (!at || at < start)
		return -1;
	return (double)(at - start) / 1e6;
}

int timeline_json(const struct timeline *t, char *buf, size_t len)
{
	size_t off = 0;
	int n;

	n = snprintf(buf, len, "{\"unit\":\"ms\"");
	for (unsigned i = TL_READY; n >= 0 && i < TL_COUNT; i++) {
		double ms = timeline_ms(t, (enum timeline_event)i);

		off += (size_t)n;
		if (off >= len)
			return -1;
		n = ms < 0 ? snprintf(buf + off, len - off, ",\"%s\":null", event_key[i])
		           : snprintf(buf + off, len - off, ",\"%s\":%.3f", event_key[i], ms);
	}
	if (n < 0)
		return -1;
	off += (size_t)n;
	if (off >= len)
		return -1;
	n = snprintf(buf + off, len - off, "}");
	if (n < 0 || off + (size_t)n >= len)
		return -1;
	return (int)(off + (size_t)n);
}

/* Append "label X" for the span @a → @b when both ends were seen. */
static void span(const struct timeline *t, char *buf, size_t len, size_t *off, const char *label,
                 enum timeline_event a, enum timeline_event b)
{
	double ta = a == TL_START ? 0 : timeline_ms(t, a), tb = timeline_ms(t, b);
	int n;

	if (ta < 0 || tb < 0 || *off >= len)
		return;
	n = tb - ta < 1000 ? snprintf(buf + *off, len - *off, "%s%s %.0f ms", *off ? ", " : "",
	                              label, tb - ta)
	                   : snprintf(buf + *off, len - *off, "%s%s %.2f s", *off ? ", " : "",
	                              label, (tb - ta) / 1000);
	if (n > 0)
		*off += (size_t)n;
}

int timeline_summary(const struct timeline *t, char *buf, size_t len)
{
	size_t off = 0;
	bool init = timeline_ms(t, TL_INIT) >= 0;

	if (len)
		buf[0] = '\0';
	span(t, buf, len, &off, "monitor set-up", TL_START, TL_VCPU_RUN);
	if (init) {
		span(t, buf, len, &off, "kernel", TL_VCPU_RUN, TL_INIT);
		span(t, buf, len, &off, "init to heartbeat", TL_INIT, TL_HEARTBEAT);
	} else {
		span(t, buf, len, &off, "kernel and init", TL_VCPU_RUN, TL_HEARTBEAT);
	}
	span(t, buf, len, &off, "heartbeat after", TL_START, TL_HEARTBEAT);
	return (int)(off < len ? off : len ? len - 1 : 0);
}

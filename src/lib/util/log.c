/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cloister/diag.h"
#include "lib/util/log.h"

static enum cl_log_level log_level = CL_LOG_INFO;
static cl_log_sink_fn log_sink;
static void *log_opaque;

void cl_log_set_level(enum cl_log_level level)
{
	log_level = level;
}

enum cl_log_level cl_log_get_level(void)
{
	return log_level;
}

void cl_log_set_sink(cl_log_sink_fn fn, void *opaque)
{
	log_sink = fn;
	log_opaque = opaque;
}

void cl_vlog(enum cl_log_level level, const char *fmt, va_list ap)
{
	static const char *const prefix[] = { "error", "warning", "info", "debug" };
	char buf[1024];

	if (level > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_sink) {
		log_sink(level, buf, log_opaque);
		return;
	}
	fprintf(stderr, "cloister: %s: %s\n", prefix[level], buf);
}

void cl_log(enum cl_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cl_vlog(level, fmt, ap);
	va_end(ap);
}

void cl_diag_vset(struct cl_diag *d, const char *fmt, va_list ap)
{
	if (!d)
		return;
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
}

void cl_diag_set(struct cl_diag *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cl_diag_vset(d, fmt, ap);
	va_end(ap);
}

void cl_diag_prefix(struct cl_diag *d, const char *fmt, ...)
{
	char old[CL_DIAG_MAX];
	size_t n;
	va_list ap;
	int w;

	if (!d)
		return;
	memcpy(old, d->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	va_start(ap, fmt);
	w = vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
	n = w < 0 ? 0 : (size_t)w;
	if (n + 2 < sizeof(d->msg)) {
		memcpy(d->msg + n, ": ", 3);
		n += 2;
		strncat(d->msg + n, old, sizeof(d->msg) - n - 1);
	}
}

void cl_diag_clear(struct cl_diag *d)
{
	if (d)
		d->msg[0] = '\0';
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_UTIL_LOG_H
#define CLOISTER_UTIL_LOG_H

#include <stdarg.h>

enum cl_log_level {
	CL_LOG_ERROR = 0,
	CL_LOG_WARN = 1,
	CL_LOG_INFO = 2,
	CL_LOG_DEBUG = 3,
};

/*
 * Logging for programs built on libcloister. The library itself logs only through these calls;
 * the default sink is stderr with a level prefix, at CL_LOG_INFO. A program may install its own
 * sink (the monitor writes to its log file). The sink and level are per-process settings owned
 * by the program's main(), not hidden library state that changes behaviour.
 */
typedef void (*cl_log_sink_fn)(enum cl_log_level level, const char *msg, void *opaque);

void cl_log_set_level(enum cl_log_level level);
enum cl_log_level cl_log_get_level(void);
void cl_log_set_sink(cl_log_sink_fn fn, void *opaque);
void cl_log(enum cl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cl_vlog(enum cl_log_level level, const char *fmt, va_list ap);

#define cl_err(...) cl_log(CL_LOG_ERROR, __VA_ARGS__)
#define cl_warn(...) cl_log(CL_LOG_WARN, __VA_ARGS__)
#define cl_info(...) cl_log(CL_LOG_INFO, __VA_ARGS__)
#define cl_debug(...) cl_log(CL_LOG_DEBUG, __VA_ARGS__)

#endif

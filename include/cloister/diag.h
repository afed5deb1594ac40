/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_DIAG_H
#define CLOISTER_DIAG_H

/*
 * Diagnostics shared by every libcloister module.
 *
 * Each module returns its own error enum and has a *_strerror() for it; on failure it may also
 * fill a caller-provided struct cl_diag with a precise sentence that names the problem, the
 * value that was wrong and, where there is one, the fix ("section 3 (ramdisk) at offset 0x2f4
 * ends at 0x9000, past the end of the file at 0x8000"). The library never prints and never
 * exits: the caller decides what to do with the text.
 */

#include <stdarg.h>
#include <stddef.h>

#define CL_DIAG_MAX 512

struct cl_diag {
	char msg[CL_DIAG_MAX];
};

/* Fill @d (if not NULL) with a printf-style message. Always returns 0 so callers can
 * `return cl_diag_set(...), CODE;` is not needed: use it as a statement. */
void cl_diag_set(struct cl_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cl_diag_vset(struct cl_diag *d, const char *fmt, va_list ap);
/* Prefix the current message with more context: "reading foo.eif: <old message>". */
void cl_diag_prefix(struct cl_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cl_diag_clear(struct cl_diag *d);

#endif

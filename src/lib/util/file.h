/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_UTIL_FILE_H
#define CLOISTER_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

/*
 * Read a whole small file (certificates, keys, JSON) into a malloc'd buffer that the caller
 * frees. A NUL is appended after the data (not counted in *len) so text can be parsed in place.
 * Files larger than @max bytes are refused. Returns 0, or -errno with @d describing the failure.
 */
int cl_file_read_all(const char *path, size_t max, uint8_t **out, size_t *len, struct cl_diag *d);

/* Write @len bytes to @path atomically: a temporary file in the same directory, fsync'd, then
 * renamed over @path. @mode applies to a newly created file. Returns 0 or -errno. */
int cl_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         struct cl_diag *d);

/* Create directory @path and any missing parents (mode 0755, as umask allows). Existing ones
 * are fine. Returns 0, or -errno with @d naming the directory that could not be made. */
int cl_mkdir_p(const char *path, struct cl_diag *d);

/* Full read/write loops that retry on EINTR and short transfers. pread_full returns the number
 * of bytes read (less than @len only at end of file) or -errno. */
long long cl_pread_full(int fd, void *buf, size_t len, uint64_t off);
int cl_write_full(int fd, const void *buf, size_t len);

#endif

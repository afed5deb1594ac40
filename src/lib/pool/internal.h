/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_POOL_INTERNAL_H
#define CLOISTER_POOL_INTERNAL_H

/* Helpers shared by the pool's source files; not part of its API. */

#include <stddef.h>

/* Read at most @len - 1 bytes of a small (sysfs or state) file into @buf, NUL-terminated.
 * Returns the byte count or -errno. */
long pool_read_small(const char *path, char *buf, size_t len);

/* Write @value to an existing file (sysfs attribute): open O_WRONLY, one write. 0 or -errno. */
int pool_write_small(const char *path, const char *value);

/* Parse a decimal u64 from @s, allowing surrounding whitespace. Returns 0 or -1. */
int pool_parse_u64(const char *s, unsigned long long *out);

#endif

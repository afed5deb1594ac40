/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_UTIL_HEX_H
#define CLOISTER_UTIL_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Write 2 * @len lower-case hex digits and a NUL to @out (which holds 2 * @len + 1 bytes). */
void cl_hex_encode(const uint8_t *in, size_t len, char *out);

/* Decode exactly @len bytes from the hex string @in (upper or lower case, no separators).
 * Returns false if @in is not exactly 2 * @len hex digits. */
bool cl_hex_decode(const char *in, uint8_t *out, size_t len);

#endif

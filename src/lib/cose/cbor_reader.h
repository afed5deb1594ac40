/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_COSE_CBOR_READER_H
#define CLOISTER_COSE_CBOR_READER_H

/*
 * Small accessors over libcbor items for decoders of untrusted CBOR (COSE, NSM requests,
 * attestation payloads). They accept every encoding CBOR allows for the same value — any
 * integer width, definite or indefinite strings, arrays and maps — because the peers we talk to
 * (serde_cbor, QEMU's libcbor, the Linux driver) choose differently.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

/* Deepest nesting any of our formats needs (attestation payload: map → map → bstr) with room. */
#define CBR_MAX_DEPTH 16

/*
 * Check that @len bytes are exactly one well-formed CBOR item nested at most @max_depth deep,
 * without building anything. Also refuses declared array/map counts larger than the bytes that
 * remain, so a 5-byte header cannot make libcbor allocate gigabytes.
 */
bool cbr_well_formed(const uint8_t *buf, size_t len, unsigned max_depth);

/*
 * Parse exactly @len bytes as one CBOR item (no trailing bytes), after cbr_well_formed() with
 * CBR_MAX_DEPTH. Returns a new reference the caller releases with cbor_decref(), or NULL.
 */
cbor_item_t *cbr_load(const uint8_t *buf, size_t len);

/* Unsigned or negative integer of any width, as int64 (false if it does not fit or is not an
 * integer). */
bool cbr_get_int(const cbor_item_t *it, int64_t *out);
/* Unsigned integer of any width. */
bool cbr_get_uint(const cbor_item_t *it, uint64_t *out);

/* Total length of a byte string (definite or chunked); false if @it is not a byte string or the
 * sum overflows. */
bool cbr_bytes_len(const cbor_item_t *it, size_t *len);
/* Copy a byte string's contents into @dst (which holds cbr_bytes_len() bytes). */
void cbr_bytes_copy(const cbor_item_t *it, uint8_t *dst);
/* malloc'd copy of a byte string (*out non-NULL even when empty); false if not a byte string or
 * out of memory. */
bool cbr_bytes_dup(const cbor_item_t *it, uint8_t **out, size_t *len);

/* Same three for text strings. cbr_text_dup NUL-terminates. */
bool cbr_text_len(const cbor_item_t *it, size_t *len);
void cbr_text_copy(const cbor_item_t *it, uint8_t *dst);
bool cbr_text_dup(const cbor_item_t *it, char **out, size_t *len);
/* True if @it is a text string equal to @s. */
bool cbr_text_eq(const cbor_item_t *it, const char *s);

/*
 * True if @it is the simple value null. Use this, never libcbor's cbor_is_null(): in libcbor 0.8
 * (Debian 12) that calls cbor_ctrl_value(), which asserts — aborting the process — when the
 * item is a half, single or double float (0xf9/0xfa/0xfb), a type guests and documents can send.
 */
bool cbr_is_null(const cbor_item_t *it);

/* Number of elements/pairs and borrowed element access for definite and indefinite arrays and
 * maps. */
size_t cbr_array_size(const cbor_item_t *it);
cbor_item_t *cbr_array_at(const cbor_item_t *it, size_t i);
/* Borrowed value for text key @key in map @map, NULL if absent. Sets *dup when the key occurs
 * more than once (callers reject such maps). */
cbor_item_t *cbr_map_get(const cbor_item_t *map, const char *key, bool *dup);

#endif

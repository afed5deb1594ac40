/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_LIBNSM_CBOR_H
#define CLOISTER_LIBNSM_CBOR_H

/*
 * The CBOR libnsm needs and nothing more: an encoder for the seven request shapes and a
 * bounds-checked pull decoder for the responses. It exists because guest programs are linked
 * statically and Debian ships libcbor only as a shared library; it has no allocation and no
 * recursion beyond NC_MAX_DEPTH, and is fuzzed (fuzz/fuzz_libnsm.c).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NC_MAX_DEPTH 8

/* Writer into a fixed buffer; overflow is sticky and leaves len meaningless. */
struct nc_w {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

void nc_w_head(struct nc_w *w, uint8_t major, uint64_t arg);
void nc_w_text(struct nc_w *w, const char *s);
void nc_w_bytes(struct nc_w *w, const uint8_t *p, size_t n);
void nc_w_null(struct nc_w *w);

#define NC_UINT 0
#define NC_NEGINT 1
#define NC_BYTES 2
#define NC_TEXT 3
#define NC_ARRAY 4
#define NC_MAP 5
#define NC_TAG 6
#define NC_SIMPLE 7

/* Reader over untrusted bytes. Every function returns false on malformed or truncated input
 * and then leaves the reader in an unspecified position. */
struct nc_r {
	const uint8_t *p;
	size_t len;
	size_t off;
};

/* The major type of the next item, without consuming it. */
bool nc_r_peek(const struct nc_r *r, uint8_t *major);
bool nc_r_uint(struct nc_r *r, uint64_t *v);
bool nc_r_bool(struct nc_r *r, bool *v);
bool nc_r_null(struct nc_r *r); /* consumes a null if next, else false without consuming */
/* Definite-length strings, pointing into the input. */
bool nc_r_text(struct nc_r *r, const char **s, size_t *n);
bool nc_r_bytes(struct nc_r *r, const uint8_t **p, size_t *n);
bool nc_r_text_eq(const char *s, size_t n, const char *want);
/* Skip one complete item (any type, nesting ≤ NC_MAX_DEPTH). */
bool nc_r_skip(struct nc_r *r);

/* Iterate a definite or indefinite array or map. Call nc_r_begin, then nc_r_next before each
 * element (map: before each key); it returns false at the end (after consuming a break), and
 * sets *err on malformed input. */
struct nc_it {
	uint64_t left;
	bool indef;
};
bool nc_r_begin(struct nc_r *r, uint8_t major, struct nc_it *it);
bool nc_r_next(struct nc_r *r, struct nc_it *it, bool *err);

#endif

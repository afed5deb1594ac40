/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "lib/cose/cbor_writer.h"

void cbw_init(struct cbw *w)
{
	memset(w, 0, sizeof(*w));
}

void cbw_free(struct cbw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

bool cbw_finish(struct cbw *w, uint8_t **out, size_t *out_len)
{
	if (w->failed) {
		cbw_free(w);
		return false;
	}
	if (!w->buf) {
		/* An empty encoding still hands back a valid pointer. */
		w->buf = malloc(1);
		if (!w->buf)
			return false;
	}
	*out = w->buf;
	*out_len = w->len;
	memset(w, 0, sizeof(*w));
	return true;
}

static uint8_t *cbw_reserve(struct cbw *w, size_t n)
{
	size_t need, cap;
	uint8_t *nb;

	if (w->failed)
		return NULL;
	if (__builtin_add_overflow(w->len, n, &need)) {
		w->failed = true;
		return NULL;
	}
	if (need > w->cap) {
		cap = w->cap ? w->cap : 64;
		while (cap < need) {
			if (__builtin_mul_overflow(cap, 2, &cap)) {
				w->failed = true;
				return NULL;
			}
		}
		nb = realloc(w->buf, cap);
		if (!nb) {
			w->failed = true;
			return NULL;
		}
		w->buf = nb;
		w->cap = cap;
	}
	return w->buf + w->len;
}

void cbw_raw(struct cbw *w, const uint8_t *p, size_t n)
{
	uint8_t *dst = cbw_reserve(w, n);

	if (!dst)
		return;
	if (n)
		memcpy(dst, p, n);
	w->len += n;
}

/* Every CBOR head fits in 9 bytes; libcbor's encoders pick the shortest width, as serde does. */
#define HEAD(w, call)                         \
	do {                                  \
		unsigned char h_[9];          \
		size_t n_ = call;             \
		if (n_ == 0)                  \
			(w)->failed = true;   \
		else                          \
			cbw_raw((w), h_, n_); \
	} while (0)

void cbw_uint(struct cbw *w, uint64_t v)
{
	HEAD(w, cbor_encode_uint(v, h_, sizeof(h_)));
}

void cbw_int(struct cbw *w, int64_t v)
{
	if (v >= 0)
		HEAD(w, cbor_encode_uint((uint64_t)v, h_, sizeof(h_)));
	else /* CBOR major 1 stores -1 - v, which cannot overflow for any int64_t. */
		HEAD(w, cbor_encode_negint((uint64_t)(-(v + 1)), h_, sizeof(h_)));
}

void cbw_bytes(struct cbw *w, const uint8_t *p, size_t n)
{
	HEAD(w, cbor_encode_bytestring_start(n, h_, sizeof(h_)));
	cbw_raw(w, p, n);
}

void cbw_text_n(struct cbw *w, const char *s, size_t n)
{
	HEAD(w, cbor_encode_string_start(n, h_, sizeof(h_)));
	cbw_raw(w, (const uint8_t *)s, n);
}

void cbw_text(struct cbw *w, const char *s)
{
	cbw_text_n(w, s, strlen(s));
}

void cbw_array(struct cbw *w, size_t n)
{
	HEAD(w, cbor_encode_array_start(n, h_, sizeof(h_)));
}

void cbw_map(struct cbw *w, size_t n)
{
	HEAD(w, cbor_encode_map_start(n, h_, sizeof(h_)));
}

void cbw_map_indef(struct cbw *w)
{
	HEAD(w, cbor_encode_indef_map_start(h_, sizeof(h_)));
}

void cbw_break(struct cbw *w)
{
	HEAD(w, cbor_encode_break(h_, sizeof(h_)));
}

void cbw_bool(struct cbw *w, bool v)
{
	HEAD(w, cbor_encode_bool(v, h_, sizeof(h_)));
}

void cbw_null(struct cbw *w)
{
	HEAD(w, cbor_encode_null(h_, sizeof(h_)));
}

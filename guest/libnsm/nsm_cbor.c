/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "nsm_cbor.h"

static void put(struct nc_w *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void nc_w_head(struct nc_w *w, uint8_t major, uint64_t arg)
{
	uint8_t h[9];
	size_t n;

	major = (uint8_t)(major << 5);
	if (arg < 24) {
		h[0] = (uint8_t)(major | arg);
		n = 1;
	} else if (arg <= 0xff) {
		h[0] = major | 24;
		n = 2;
	} else if (arg <= 0xffff) {
		h[0] = major | 25;
		n = 3;
	} else if (arg <= 0xffffffffu) {
		h[0] = major | 26;
		n = 5;
	} else {
		h[0] = major | 27;
		n = 9;
	}
	for (size_t i = 1; i < n; i++)
		h[i] = (uint8_t)(arg >> (8 * (n - 1 - i)));
	put(w, h, n);
}

void nc_w_text(struct nc_w *w, const char *s)
{
	size_t n = strlen(s);

	nc_w_head(w, NC_TEXT, n);
	put(w, s, n);
}

void nc_w_bytes(struct nc_w *w, const uint8_t *p, size_t n)
{
	nc_w_head(w, NC_BYTES, n);
	put(w, p, n);
}

void nc_w_null(struct nc_w *w)
{
	const uint8_t v = 0xf6;

	put(w, &v, 1);
}

/* Read a head: major type, argument, and whether it is indefinite (ai 31). */
static bool head(struct nc_r *r, uint8_t *major, uint64_t *arg, bool *indef)
{
	uint8_t ib, ai;
	size_t n;

	if (r->off >= r->len)
		return false;
	ib = r->p[r->off++];
	*major = ib >> 5;
	ai = ib & 0x1f;
	*indef = false;
	if (ai < 24) {
		*arg = ai;
		return true;
	}
	if (ai == 31) {
		/* Only strings, arrays and maps may be indefinite; 0xff (break) is handled by
		 * callers before they ask for a head. */
		if (*major < NC_BYTES || *major > NC_MAP)
			return false;
		*indef = true;
		*arg = 0;
		return true;
	}
	if (ai > 27)
		return false;
	n = (size_t)1 << (ai - 24);
	if (r->len - r->off < n)
		return false;
	*arg = 0;
	for (size_t i = 0; i < n; i++)
		*arg = *arg << 8 | r->p[r->off + i];
	r->off += n;
	return true;
}

bool nc_r_peek(const struct nc_r *r, uint8_t *major)
{
	if (r->off >= r->len)
		return false;
	*major = r->p[r->off] >> 5;
	return true;
}

bool nc_r_uint(struct nc_r *r, uint64_t *v)
{
	uint8_t m;
	bool indef;

	return head(r, &m, v, &indef) && m == NC_UINT;
}

bool nc_r_bool(struct nc_r *r, bool *v)
{
	if (r->off >= r->len)
		return false;
	if (r->p[r->off] == 0xf4 || r->p[r->off] == 0xf5) {
		*v = r->p[r->off++] == 0xf5;
		return true;
	}
	return false;
}

bool nc_r_null(struct nc_r *r)
{
	if (r->off < r->len && r->p[r->off] == 0xf6) {
		r->off++;
		return true;
	}
	return false;
}

static bool string(struct nc_r *r, uint8_t want, const uint8_t **p, size_t *n)
{
	uint8_t m;
	uint64_t len;
	bool indef;

	if (!head(r, &m, &len, &indef) || m != want || indef || len > r->len - r->off)
		return false;
	*p = r->p + r->off;
	*n = (size_t)len;
	r->off += (size_t)len;
	return true;
}

bool nc_r_text(struct nc_r *r, const char **s, size_t *n)
{
	return string(r, NC_TEXT, (const uint8_t **)s, n);
}

bool nc_r_bytes(struct nc_r *r, const uint8_t **p, size_t *n)
{
	return string(r, NC_BYTES, p, n);
}

bool nc_r_text_eq(const char *s, size_t n, const char *want)
{
	return strlen(want) == n && (n == 0 || !memcmp(s, want, n));
}

bool nc_r_begin(struct nc_r *r, uint8_t major, struct nc_it *it)
{
	uint8_t m;
	uint64_t n;
	bool indef;

	if (!head(r, &m, &n, &indef) || m != major)
		return false;
	/* A definite count can never exceed the bytes left (each item takes ≥ 1, a pair ≥ 2). */
	if (!indef && n > (r->len - r->off) / (major == NC_MAP ? 2 : 1))
		return false;
	it->left = n;
	it->indef = indef;
	return true;
}

bool nc_r_next(struct nc_r *r, struct nc_it *it, bool *err)
{
	*err = false;
	if (it->indef) {
		if (r->off >= r->len) {
			*err = true;
			return false;
		}
		if (r->p[r->off] == 0xff) {
			r->off++;
			return false;
		}
		return true;
	}
	if (it->left == 0)
		return false;
	it->left--;
	return true;
}

static bool skip_depth(struct nc_r *r, unsigned depth)
{
	uint8_t m;
	uint64_t arg;
	bool indef, err;
	struct nc_it it;

	if (depth > NC_MAX_DEPTH || !head(r, &m, &arg, &indef))
		return false;
	switch (m) {
	case NC_UINT:
	case NC_NEGINT:
	case NC_SIMPLE:
		return true;
	case NC_BYTES:
	case NC_TEXT:
		if (!indef) {
			if (arg > r->len - r->off)
				return false;
			r->off += (size_t)arg;
			return true;
		}
		/* Indefinite string: definite chunks of the same type, then a break. */
		for (;;) {
			const uint8_t *p;
			size_t n;

			if (r->off >= r->len)
				return false;
			if (r->p[r->off] == 0xff) {
				r->off++;
				return true;
			}
			if ((r->p[r->off] >> 5) != m || !string(r, m, &p, &n))
				return false;
		}
	case NC_TAG:
		return skip_depth(r, depth + 1);
	default: /* array or map: rewind the head and iterate */
		it.left = m == NC_MAP ? arg * 2 : arg;
		if (m == NC_MAP && arg > UINT64_MAX / 2)
			return false;
		if (!indef && it.left > r->len - r->off)
			return false;
		it.indef = indef;
		while (nc_r_next(r, &it, &err))
			if (!skip_depth(r, depth + 1))
				return false;
		return !err;
	}
}

bool nc_r_skip(struct nc_r *r)
{
	return skip_depth(r, 0);
}

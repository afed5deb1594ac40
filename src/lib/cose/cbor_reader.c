/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "lib/cose/cbor_reader.h"

/* Read the argument of the head at buf[*off] (already past the initial byte). */
static bool head_arg(const uint8_t *buf, size_t len, size_t *off, uint8_t ai, uint64_t *val)
{
	size_t n;

	if (ai < 24) {
		*val = ai;
		return true;
	}
	if (ai > 27)
		return false;
	n = (size_t)1 << (ai - 24);
	if (len - *off < n)
		return false;
	*val = 0;
	for (size_t i = 0; i < n; i++)
		*val = *val << 8 | buf[*off + i];
	*off += n;
	return true;
}

struct wf_frame {
	uint64_t need; /* items still expected (definite containers) */
	uint64_t seen; /* items seen (indefinite maps must end on a pair boundary) */
	bool indef;
	bool map;
};

bool cbr_well_formed(const uint8_t *buf, size_t len, unsigned max_depth)
{
	struct wf_frame st[CBR_MAX_DEPTH + 1];
	unsigned depth = 0;
	size_t off = 0;

	if (max_depth > CBR_MAX_DEPTH)
		max_depth = CBR_MAX_DEPTH;
	st[0] = (struct wf_frame){ .need = 1 };
	for (;;) {
		uint8_t ib, major, ai;
		uint64_t val;

		while (!st[depth].indef && st[depth].need == 0) {
			if (depth == 0)
				return off == len;
			depth--;
		}
		if (off >= len)
			return false;
		ib = buf[off++];
		if (ib == 0xff) {
			if (!st[depth].indef || (st[depth].map && st[depth].seen % 2))
				return false;
			depth--;
			continue;
		}
		if (st[depth].indef)
			st[depth].seen++;
		else
			st[depth].need--;
		major = ib >> 5;
		ai = ib & 0x1f;
		if (ai == 31) {
			if (major == 2 || major == 3) {
				/* Indefinite string: definite chunks of the same major type. */
				for (;;) {
					if (off >= len)
						return false;
					ib = buf[off++];
					if (ib == 0xff)
						break;
					if ((ib >> 5) != major ||
					    !head_arg(buf, len, &off, ib & 0x1f, &val) ||
					    val > len - off)
						return false;
					off += (size_t)val;
				}
				continue;
			}
			if (major != 4 && major != 5)
				return false;
			if (depth + 1 > max_depth)
				return false;
			st[++depth] = (struct wf_frame){ .indef = true, .map = major == 5 };
			continue;
		}
		if (!head_arg(buf, len, &off, ai, &val))
			return false;
		switch (major) {
		case 0:
		case 1:
		case 7: /* simple values and floats: the argument bytes are the value */
			break;
		case 2:
		case 3:
			if (val > len - off)
				return false;
			off += (size_t)val;
			break;
		case 4:
		case 5:
			/* Every element takes at least one byte, so a count larger than what is
			 * left is a lie; refusing it here keeps libcbor from allocating for it. */
			if (major == 5 && __builtin_mul_overflow(val, 2, &val))
				return false;
			if (val > len - off)
				return false;
			if (val == 0)
				break;
			if (depth + 1 > max_depth)
				return false;
			st[++depth] = (struct wf_frame){ .need = val, .map = major == 5 };
			break;
		case 6: /* a tag wraps exactly one item */
			if (depth + 1 > max_depth)
				return false;
			st[++depth] = (struct wf_frame){ .need = 1 };
			break;
		}
	}
}

cbor_item_t *cbr_load(const uint8_t *buf, size_t len)
{
	struct cbor_load_result res;
	cbor_item_t *it;

	if (!buf || len == 0 || !cbr_well_formed(buf, len, CBR_MAX_DEPTH))
		return NULL;
	it = cbor_load(buf, len, &res);
	if (!it)
		return NULL;
	if (res.error.code != CBOR_ERR_NONE || res.read != len) {
		cbor_decref(&it);
		return NULL;
	}
	return it;
}

bool cbr_get_uint(const cbor_item_t *it, uint64_t *out)
{
	if (!it || !cbor_isa_uint(it))
		return false;
	*out = cbor_get_int(it);
	return true;
}

bool cbr_get_int(const cbor_item_t *it, int64_t *out)
{
	uint64_t v;

	if (!it)
		return false;
	if (cbor_isa_uint(it)) {
		v = cbor_get_int(it);
		if (v > INT64_MAX)
			return false;
		*out = (int64_t)v;
		return true;
	}
	if (cbor_isa_negint(it)) {
		v = cbor_get_int(it); /* the value is -1 - v */
		if (v > INT64_MAX)
			return false;
		*out = -1 - (int64_t)v;
		return true;
	}
	return false;
}

/* Byte and text strings share libcbor's layout: either one definite buffer or a list of
 * definite chunks. */
static bool str_len(const cbor_item_t *it, bool text, size_t *len)
{
	size_t total = 0;

	if (!it || (text ? !cbor_isa_string(it) : !cbor_isa_bytestring(it)))
		return false;
	if (text ? cbor_string_is_definite(it) : cbor_bytestring_is_definite(it)) {
		*len = text ? cbor_string_length(it) : cbor_bytestring_length(it);
		return true;
	}
	size_t n = text ? cbor_string_chunk_count(it) : cbor_bytestring_chunk_count(it);
	cbor_item_t **chunks = text ? cbor_string_chunks_handle(it)
	                            : cbor_bytestring_chunks_handle(it);
	for (size_t i = 0; i < n; i++) {
		size_t l = text ? cbor_string_length(chunks[i]) : cbor_bytestring_length(chunks[i]);
		if (__builtin_add_overflow(total, l, &total))
			return false;
	}
	*len = total;
	return true;
}

static void str_copy(const cbor_item_t *it, bool text, uint8_t *dst)
{
	if (text ? cbor_string_is_definite(it) : cbor_bytestring_is_definite(it)) {
		size_t l = text ? cbor_string_length(it) : cbor_bytestring_length(it);
		if (l)
			memcpy(dst, text ? cbor_string_handle(it) : cbor_bytestring_handle(it), l);
		return;
	}
	size_t n = text ? cbor_string_chunk_count(it) : cbor_bytestring_chunk_count(it);
	cbor_item_t **chunks = text ? cbor_string_chunks_handle(it)
	                            : cbor_bytestring_chunks_handle(it);
	for (size_t i = 0; i < n; i++) {
		size_t l = text ? cbor_string_length(chunks[i]) : cbor_bytestring_length(chunks[i]);
		if (l)
			memcpy(dst,
			       text ? cbor_string_handle(chunks[i])
			            : cbor_bytestring_handle(chunks[i]),
			       l);
		dst += l;
	}
}

static bool str_dup(const cbor_item_t *it, bool text, uint8_t **out, size_t *len)
{
	size_t l;
	uint8_t *p;

	if (!str_len(it, text, &l) || l == SIZE_MAX)
		return false;
	p = malloc(l + 1);
	if (!p)
		return false;
	str_copy(it, text, p);
	p[l] = 0;
	*out = p;
	*len = l;
	return true;
}

bool cbr_bytes_len(const cbor_item_t *it, size_t *len)
{
	return str_len(it, false, len);
}

void cbr_bytes_copy(const cbor_item_t *it, uint8_t *dst)
{
	str_copy(it, false, dst);
}

bool cbr_bytes_dup(const cbor_item_t *it, uint8_t **out, size_t *len)
{
	return str_dup(it, false, out, len);
}

bool cbr_text_len(const cbor_item_t *it, size_t *len)
{
	return str_len(it, true, len);
}

void cbr_text_copy(const cbor_item_t *it, uint8_t *dst)
{
	str_copy(it, true, dst);
}

bool cbr_text_dup(const cbor_item_t *it, char **out, size_t *len)
{
	return str_dup(it, true, (uint8_t **)out, len);
}

bool cbr_is_null(const cbor_item_t *it)
{
	/* width 0 first: only then may cbor_ctrl_value() be asked (see the header) */
	return cbor_isa_float_ctrl(it) && cbor_float_get_width(it) == CBOR_FLOAT_0 &&
	       cbor_ctrl_value(it) == CBOR_CTRL_NULL;
}

bool cbr_text_eq(const cbor_item_t *it, const char *s)
{
	size_t l, n = strlen(s);

	if (!str_len(it, true, &l) || l != n)
		return false;
	if (cbor_string_is_definite(it))
		return n == 0 || !memcmp(cbor_string_handle(it), s, n);
	/* Chunked text keys are legal but rare; compare chunk by chunk. */
	size_t off = 0, count = cbor_string_chunk_count(it);
	cbor_item_t **chunks = cbor_string_chunks_handle(it);
	for (size_t i = 0; i < count; i++) {
		size_t cl = cbor_string_length(chunks[i]);
		if (cl && memcmp(cbor_string_handle(chunks[i]), s + off, cl))
			return false;
		off += cl;
	}
	return true;
}

size_t cbr_array_size(const cbor_item_t *it)
{
	return cbor_isa_array(it) ? cbor_array_size(it) : 0;
}

cbor_item_t *cbr_array_at(const cbor_item_t *it, size_t i)
{
	if (!cbor_isa_array(it) || i >= cbor_array_size(it))
		return NULL;
	return cbor_array_handle(it)[i];
}

cbor_item_t *cbr_map_get(const cbor_item_t *map, const char *key, bool *dup)
{
	cbor_item_t *found = NULL;
	struct cbor_pair *pairs;
	size_t n;

	if (dup)
		*dup = false;
	if (!map || !cbor_isa_map(map))
		return NULL;
	n = cbor_map_size(map);
	pairs = cbor_map_handle(map);
	for (size_t i = 0; i < n; i++) {
		if (!cbr_text_eq(pairs[i].key, key))
			continue;
		if (found && dup)
			*dup = true;
		if (!found)
			found = pairs[i].value;
	}
	return found;
}

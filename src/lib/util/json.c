/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "lib/util/json.h"

void cl_json_init(struct cl_json *j, bool pretty)
{
	memset(j, 0, sizeof(*j));
	j->pretty = pretty;
}

static void put(struct cl_json *j, const char *s, size_t n)
{
	if (j->failed)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 256;
		char *nb;

		while (cap < j->len + n + 1)
			cap *= 2;
		nb = realloc(j->buf, cap);
		if (!nb) {
			j->failed = true;
			return;
		}
		j->buf = nb;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void puts_(struct cl_json *j, const char *s)
{
	put(j, s, strlen(s));
}

static void newline_indent(struct cl_json *j, unsigned depth)
{
	if (!j->pretty)
		return;
	put(j, "\n", 1);
	for (unsigned i = 0; i < depth; i++)
		put(j, "  ", 2);
}

/* Separator before a value or a key at the current depth (not after a key). */
static void before_item(struct cl_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (!j->first[j->depth - 1])
		put(j, ",", 1);
	j->first[j->depth - 1] = false;
	newline_indent(j, j->depth);
}

static void begin(struct cl_json *j, const char *open)
{
	before_item(j);
	puts_(j, open);
	if (j->depth >= CL_JSON_MAX_DEPTH) {
		j->failed = true;
		return;
	}
	j->first[j->depth++] = true;
}

static void end(struct cl_json *j, const char *close)
{
	if (j->depth == 0) {
		j->failed = true;
		return;
	}
	j->depth--;
	if (!j->first[j->depth])
		newline_indent(j, j->depth);
	puts_(j, close);
}

void cl_json_begin_object(struct cl_json *j)
{
	begin(j, "{");
}

void cl_json_end_object(struct cl_json *j)
{
	end(j, "}");
}

void cl_json_begin_array(struct cl_json *j)
{
	begin(j, "[");
}

void cl_json_end_array(struct cl_json *j)
{
	end(j, "]");
}

static void quoted(struct cl_json *j, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;

	put(j, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		const char *e = NULL;

		switch (c) {
		case '"':
			e = "\\\"";
			break;
		case '\\':
			e = "\\\\";
			break;
		case '\b':
			e = "\\b";
			break;
		case '\f':
			e = "\\f";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\r':
			e = "\\r";
			break;
		case '\t':
			e = "\\t";
			break;
		default:
			if (c < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				esc[6] = '\0';
				e = esc;
			}
			break;
		}
		if (e) {
			put(j, s + start, i - start);
			puts_(j, e);
			start = i + 1;
		}
	}
	put(j, s + start, n - start);
	put(j, "\"", 1);
}

void cl_json_key(struct cl_json *j, const char *key)
{
	before_item(j);
	quoted(j, key, strlen(key));
	puts_(j, j->pretty ? ": " : ":");
	j->after_key = true;
}

void cl_json_string_n(struct cl_json *j, const char *s, size_t n)
{
	before_item(j);
	quoted(j, s, n);
}

void cl_json_string(struct cl_json *j, const char *s)
{
	cl_json_string_n(j, s, strlen(s));
}

void cl_json_bool(struct cl_json *j, bool v)
{
	before_item(j);
	puts_(j, v ? "true" : "false");
}

void cl_json_uint(struct cl_json *j, uint64_t v)
{
	char b[32];

	before_item(j);
	snprintf(b, sizeof(b), "%" PRIu64, v);
	puts_(j, b);
}

void cl_json_int(struct cl_json *j, int64_t v)
{
	char b[32];

	before_item(j);
	snprintf(b, sizeof(b), "%" PRId64, v);
	puts_(j, b);
}

void cl_json_null(struct cl_json *j)
{
	before_item(j);
	puts_(j, "null");
}

/*
 * serde_json prints an f64 with ryu: the shortest digits that round-trip, as an integer with
 * ".0" or a plain decimal when the decimal exponent is in -5 < kk <= 16, else d.ddde<exp>;
 * non-finite values become null.
 */
void cl_json_double(struct cl_json *j, double v)
{
	char tmp[40], digits[24], out[48];
	int exp10 = 0, n = 0, kk, prec;
	size_t o = 0;
	bool neg;

	before_item(j);
	if (!isfinite(v)) {
		puts_(j, "null");
		return;
	}
	if (v == 0) {
		puts_(j, signbit(v) ? "-0.0" : "0.0");
		return;
	}
	neg = v < 0;
	for (prec = 0; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec, fabs(v));
		if (strtod(tmp, NULL) == fabs(v))
			break;
	}
	/* tmp = d[.ddd]e±xx */
	for (const char *c = tmp; *c && *c != 'e'; c++)
		if (*c != '.')
			digits[n++] = *c;
	digits[n] = '\0';
	exp10 = atoi(strchr(tmp, 'e') + 1);
	while (n > 1 && digits[n - 1] == '0')
		digits[--n] = '\0';
	kk = exp10 + 1; /* value = 0.digits x 10^kk */
	if (neg)
		out[o++] = '-';
	if (n <= kk && kk <= 16) {
		/* integer: digits, zeros, ".0" */
		for (int i = 0; i < kk; i++)
			out[o++] = i < n ? digits[i] : '0';
		out[o++] = '.';
		out[o++] = '0';
	} else if (0 < kk && kk <= 16) {
		for (int i = 0; i < n; i++) {
			if (i == kk)
				out[o++] = '.';
			out[o++] = digits[i];
		}
	} else if (-5 < kk && kk <= 0) {
		out[o++] = '0';
		out[o++] = '.';
		for (int i = 0; i < -kk; i++)
			out[o++] = '0';
		for (int i = 0; i < n; i++)
			out[o++] = digits[i];
	} else {
		out[o++] = digits[0];
		if (n > 1) {
			out[o++] = '.';
			for (int i = 1; i < n; i++)
				out[o++] = digits[i];
		}
		o += (size_t)snprintf(out + o, sizeof(out) - o, "e%d", kk - 1);
	}
	out[o] = '\0';
	puts_(j, out);
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void cl_json_value(struct cl_json *j, struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		cl_json_null(j);
		break;
	case json_type_boolean:
		cl_json_bool(j, json_object_get_boolean(v));
		break;
	case json_type_int:
		/* json-c keeps integers above INT64_MAX as uint64 */
		if (json_object_get_int64(v) == INT64_MAX && json_object_get_uint64(v) > INT64_MAX)
			cl_json_uint(j, json_object_get_uint64(v));
		else
			cl_json_int(j, json_object_get_int64(v));
		break;
	case json_type_double:
		cl_json_double(j, json_object_get_double(v));
		break;
	case json_type_string:
		cl_json_string_n(j, json_object_get_string(v),
		                 (size_t)json_object_get_string_len(v));
		break;
	case json_type_array: {
		size_t n = json_object_array_length(v);

		cl_json_begin_array(j);
		for (size_t i = 0; i < n; i++)
			cl_json_value(j, json_object_array_get_idx(v, i));
		cl_json_end_array(j);
		break;
	}
	case json_type_object:
		cl_json_begin_object(j);
		cl_json_members(j, v);
		cl_json_end_object(j);
		break;
	}
}

void cl_json_members(struct cl_json *j, struct json_object *obj)
{
	size_t n, k = 0;
	const char **keys;

	if (!json_object_is_type(obj, json_type_object))
		return;
	n = (size_t)json_object_object_length(obj);
	keys = calloc(n ? n : 1, sizeof(*keys));
	if (!keys) {
		j->failed = true;
		return;
	}
	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		if (k < n)
			keys[k++] = key;
	}
	qsort(keys, k, sizeof(*keys), cmp_keys);
	for (size_t i = 0; i < k; i++) {
		cl_json_key(j, keys[i]);
		cl_json_value(j, json_object_object_get(obj, keys[i]));
	}
	free(keys);
}

char *cl_json_finish(struct cl_json *j)
{
	char *out = j->buf;

	if (j->failed || j->depth != 0 || !out) {
		free(j->buf);
		out = NULL;
	}
	memset(j, 0, sizeof(*j));
	return out;
}

void cl_json_discard(struct cl_json *j)
{
	free(j->buf);
	memset(j, 0, sizeof(*j));
}

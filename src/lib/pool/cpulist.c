/* SPDX-License-Identifier: Apache-2.0 */
/* CPU sets and the Linux cpulist text format ("2,3,6-9"). */
#include <stdio.h>
#include <string.h>

#include "lib/pool/pool.h"

#define NWORDS (POOL_MAX_CPUS / 64)

unsigned cpuset_count(const struct cpuset *s)
{
	unsigned n = 0;

	for (size_t i = 0; i < NWORDS; i++)
		n += (unsigned)__builtin_popcountll(s->bits[i]);
	return n;
}

int cpuset_next(const struct cpuset *s, int after)
{
	unsigned start = after < 0 ? 0 : (unsigned)after + 1;

	for (unsigned w = start / 64; w < NWORDS; w++) {
		uint64_t v = s->bits[w];

		if (w == start / 64)
			v &= ~0ULL << (start % 64);
		if (v)
			return (int)(w * 64 + (unsigned)__builtin_ctzll(v));
	}
	return -1;
}

bool cpuset_subset(const struct cpuset *a, const struct cpuset *b)
{
	for (size_t i = 0; i < NWORDS; i++)
		if (a->bits[i] & ~b->bits[i])
			return false;
	return true;
}

bool cpuset_intersects(const struct cpuset *a, const struct cpuset *b)
{
	for (size_t i = 0; i < NWORDS; i++)
		if (a->bits[i] & b->bits[i])
			return true;
	return false;
}

void cpuset_or(struct cpuset *dst, const struct cpuset *src)
{
	for (size_t i = 0; i < NWORDS; i++)
		dst->bits[i] |= src->bits[i];
}

void cpuset_andnot(struct cpuset *dst, const struct cpuset *src)
{
	for (size_t i = 0; i < NWORDS; i++)
		dst->bits[i] &= ~src->bits[i];
}

bool cpuset_equal(const struct cpuset *a, const struct cpuset *b)
{
	return memcmp(a->bits, b->bits, sizeof(a->bits)) == 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Read a decimal CPU number at s[*i] (whitespace already skipped by the caller's compaction).
 * Stops at the first non-digit. Refuses numbers >= POOL_MAX_CPUS without overflowing. */
static int parse_num(const char *s, size_t len, size_t *i, unsigned *out, struct cl_diag *d)
{
	size_t start = *i;
	unsigned v = 0;

	if (*i >= len || s[*i] < '0' || s[*i] > '9') {
		if (*i >= len)
			cl_diag_set(d, "cpulist ends where a CPU number was expected");
		else
			cl_diag_set(d, "cpulist has '%c' where a CPU number was expected", s[*i]);
		return POOL_ERR_CPULIST;
	}
	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		v = v * 10 + (unsigned)(s[*i] - '0');
		if (v >= POOL_MAX_CPUS) {
			size_t end = *i;

			while (end < len && s[end] >= '0' && s[end] <= '9')
				end++;
			cl_diag_set(d,
			            "CPU number '%.*s' is too large (cloister handles CPUs 0-%d)",
			            (int)(end - start > 24 ? 24 : end - start), s + start,
			            POOL_MAX_CPUS - 1);
			return POOL_ERR_CPU_RANGE;
		}
		(*i)++;
	}
	*out = v;
	return POOL_OK;
}

int pool_cpulist_parse(const char *in, size_t in_len, struct cpuset *out, struct cl_diag *d)
{
	char buf[POOL_CPULIST_MAX];
	size_t len = 0, i = 0;
	int rc;

	cpuset_zero(out);
	if (in_len > POOL_CPULIST_MAX) {
		cl_diag_set(d, "cpulist is %zu bytes long, more than the %d accepted", in_len,
		            POOL_CPULIST_MAX);
		return POOL_ERR_CPULIST;
	}
	/* Whitespace is ignored anywhere (nitro-cli strips it before splitting), so "2, 3" and
	 * "2 - 3" are both fine; compact first so the grammar below stays simple. */
	for (size_t k = 0; k < in_len; k++) {
		if (in[k] == '\0') {
			cl_diag_set(d, "cpulist contains a NUL byte at offset %zu", k);
			return POOL_ERR_CPULIST;
		}
		if (!is_space(in[k]))
			buf[len++] = in[k];
	}
	if (len == 0)
		return POOL_OK;

	for (;;) {
		unsigned lo, hi;

		rc = parse_num(buf, len, &i, &lo, d);
		if (rc)
			return rc;
		hi = lo;
		if (i < len && buf[i] == '-') {
			i++;
			rc = parse_num(buf, len, &i, &hi, d);
			if (rc)
				return rc;
			if (hi < lo) {
				cl_diag_set(d, "cpulist range %u-%u is reversed; write %u-%u", lo,
				            hi, hi, lo);
				return POOL_ERR_CPULIST;
			}
		}
		for (unsigned c = lo; c <= hi; c++)
			cpuset_add(out, c);
		if (i == len)
			return POOL_OK;
		if (buf[i] != ',') {
			cl_diag_set(d, "cpulist has '%c' after CPU %u; expected ',' or '-'", buf[i],
			            hi);
			return POOL_ERR_CPULIST;
		}
		i++;
		if (i == len) {
			cl_diag_set(d, "cpulist ends with ','");
			return POOL_ERR_CPULIST;
		}
	}
}

int pool_cpulist_format(const struct cpuset *s, char *buf, size_t len)
{
	size_t used = 0;
	int cpu = cpuset_next(s, -1);

	if (!len)
		return POOL_ERR_NOMEM;
	buf[0] = '\0';
	while (cpu >= 0) {
		int end = cpu, n;

		while (cpuset_has(s, (unsigned)end + 1))
			end++;
		if (end == cpu)
			n = snprintf(buf + used, len - used, "%s%d", used ? "," : "", cpu);
		else
			n = snprintf(buf + used, len - used, "%s%d-%d", used ? "," : "", cpu, end);
		if (n < 0 || (size_t)n >= len - used)
			return POOL_ERR_NOMEM;
		used += (size_t)n;
		cpu = cpuset_next(s, end);
	}
	return POOL_OK;
}

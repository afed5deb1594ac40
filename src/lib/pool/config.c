/* SPDX-License-Identifier: Apache-2.0 */
/*
 * allocator.yaml: the exact YAML subset nitro-cli's allocator reads (nitro-compat §2.8).
 *
 * A full YAML library (libyaml) would accept far more than this file may contain (anchors, flow
 * mappings, multi-document streams, tags) and then need a second pass to reject it; the file has
 * three scalar keys, so a strict line parser is smaller, fuzzable, and gives errors that name
 * the line.
 */
#include <stdio.h>
#include <string.h>

#include "lib/pool/pool.h"

const char *pool_strerror(int err)
{
	switch (err) {
	case POOL_OK:
		return "success";
	case POOL_ERR_CPULIST:
		return "malformed CPU list";
	case POOL_ERR_CPU_RANGE:
		return "CPU number out of range";
	case POOL_ERR_SYSFS:
		return "CPU topology unreadable";
	case POOL_ERR_CONFIG:
		return "malformed allocator configuration";
	case POOL_ERR_POOL_EMPTY:
		return "CPU pool is empty";
	case POOL_ERR_CPU_OFFLINE:
		return "pool CPU is offline";
	case POOL_ERR_NUMA:
		return "CPU pool is not on one NUMA node";
	case POOL_ERR_CPU0:
		return "CPU 0 or its sibling is in the pool";
	case POOL_ERR_PARTIAL_CORE:
		return "CPU pool does not contain whole cores";
	case POOL_ERR_CPU_COUNT:
		return "cpu_count cannot be satisfied";
	case POOL_ERR_HUGEPAGES:
		return "hugepages could not be reserved";
	case POOL_ERR_IO:
		return "pool state I/O error";
	case POOL_ERR_LOCK:
		return "pool lock unavailable";
	case POOL_ERR_NO_POOL:
		return "no enclave resource pool configured";
	case POOL_ERR_STATE:
		return "malformed pool state file";
	case POOL_ERR_BUSY:
		return "enclaves are running";
	case POOL_ERR_CID:
		return "invalid or used enclave CID";
	case POOL_ERR_NAME:
		return "invalid enclave name";
	case POOL_ERR_NOT_FOUND:
		return "no such enclave";
	case POOL_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown pool error";
}

/* Longest line we look at; allocator.yaml lines are short, longer ones are an error. */
#define LINE_MAX_LEN 1024

static void trim(const char **s, size_t *len)
{
	while (*len && ((*s)[0] == ' ' || (*s)[0] == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r'))
		(*len)--;
}

static int parse_uint(const char *v, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t x = 0;

	if (!len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		if (__builtin_mul_overflow(x, 10, &x) ||
		    __builtin_add_overflow(x, (uint64_t)(v[i] - '0'), &x) || x > max)
			return -1;
	}
	*out = x;
	return 0;
}

int pool_config_parse(const char *buf, size_t len, struct pool_config *out, struct cl_diag *d)
{
	bool seen_mem = false, seen_count = false, seen_pool = false, seen_doc = false;
	bool ended = false;
	size_t pos = 0;
	unsigned lineno = 0;

	memset(out, 0, sizeof(*out));
	out->memory_mib = POOL_DEFAULT_MEMORY_MIB;
	out->cpu_count = POOL_DEFAULT_CPU_COUNT;

	while (pos < len) {
		const char *line = buf + pos, *key, *val, *nl;
		size_t llen, klen, vlen, colon;

		nl = memchr(line, '\n', len - pos);
		llen = nl ? (size_t)(nl - line) : len - pos;
		pos += llen + (nl ? 1 : 0);
		lineno++;

		if (memchr(line, '\0', llen)) {
			cl_diag_set(d, "line %u contains a NUL byte", lineno);
			return POOL_ERR_CONFIG;
		}
		if (llen > LINE_MAX_LEN) {
			cl_diag_set(d, "line %u is longer than %d bytes", lineno, LINE_MAX_LEN);
			return POOL_ERR_CONFIG;
		}
		/* A comment starts at '#' at the beginning or after whitespace (YAML's rule);
		 * none of our values can contain '#'. */
		for (size_t i = 0; i < llen; i++) {
			if (line[i] == '#' &&
			    (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
				llen = i;
				break;
			}
		}
		if (llen && (line[0] == ' ' || line[0] == '\t')) {
			const char *t = line;
			size_t tl = llen;

			trim(&t, &tl);
			if (!tl)
				continue;
			cl_diag_set(d,
			            "line %u is indented; allocator.yaml has only top-level keys "
			            "(memory_mib, cpu_count, cpu_pool)",
			            lineno);
			return POOL_ERR_CONFIG;
		}
		trim(&line, &llen);
		if (!llen)
			continue;
		if (llen == 3 && !memcmp(line, "---", 3)) {
			if (seen_doc || ended || seen_mem || seen_count || seen_pool) {
				cl_diag_set(
				        d,
				        "line %u: a second YAML document ('---') is not allowed; "
				        "allocator.yaml holds one",
				        lineno);
				return POOL_ERR_CONFIG;
			}
			seen_doc = true;
			continue;
		}
		if (llen == 3 && !memcmp(line, "...", 3)) {
			/* Document end: nothing may follow but comments and blank lines. */
			ended = true;
			continue;
		}
		if (ended) {
			cl_diag_set(d, "line %u: content after the document end marker '...'",
			            lineno);
			return POOL_ERR_CONFIG;
		}
		{
			const char *c = memchr(line, ':', llen);

			if (!c) {
				cl_diag_set(d, "line %u: expected 'key: value', got '%.*s'", lineno,
				            (int)(llen > 60 ? 60 : llen), line);
				return POOL_ERR_CONFIG;
			}
			colon = (size_t)(c - line);
		}
		key = line;
		klen = colon;
		trim(&key, &klen);
		val = line + colon + 1;
		vlen = llen - colon - 1;
		if (vlen && val[0] != ' ' && val[0] != '\t') {
			cl_diag_set(d, "line %u: a space must follow ':'", lineno);
			return POOL_ERR_CONFIG;
		}
		trim(&val, &vlen);
		if (vlen >= 2 && ((val[0] == '"' && val[vlen - 1] == '"') ||
		                  (val[0] == '\'' && val[vlen - 1] == '\''))) {
			val++;
			vlen -= 2;
			trim(&val, &vlen);
		}
		if (!vlen) {
			cl_diag_set(d, "line %u: key '%.*s' has no value", lineno, (int)klen, key);
			return POOL_ERR_CONFIG;
		}

		if (klen == 10 && !memcmp(key, "memory_mib", 10)) {
			if (seen_mem) {
				cl_diag_set(d, "line %u: memory_mib is given twice", lineno);
				return POOL_ERR_CONFIG;
			}
			seen_mem = true;
			/* Bound so MiB -> bytes never overflows (2^44 MiB = 16 EiB). */
			if (parse_uint(val, vlen, (1ULL << 43), &out->memory_mib) ||
			    !out->memory_mib) {
				cl_diag_set(
				        d,
				        "line %u: memory_mib '%.*s' is not a positive number of "
				        "MiB (e.g. memory_mib: 512)",
				        lineno, (int)(vlen > 40 ? 40 : vlen), val);
				return POOL_ERR_CONFIG;
			}
		} else if (klen == 9 && !memcmp(key, "cpu_count", 9)) {
			uint64_t v;

			if (seen_count) {
				cl_diag_set(d, "line %u: cpu_count is given twice", lineno);
				return POOL_ERR_CONFIG;
			}
			seen_count = true;
			if (parse_uint(val, vlen, POOL_MAX_CPUS, &v) || !v) {
				cl_diag_set(
				        d,
				        "line %u: cpu_count '%.*s' is not a number of CPUs from 1 "
				        "to %d",
				        lineno, (int)(vlen > 40 ? 40 : vlen), val, POOL_MAX_CPUS);
				return POOL_ERR_CONFIG;
			}
			out->cpu_count = (unsigned)v;
		} else if (klen == 8 && !memcmp(key, "cpu_pool", 8)) {
			int rc;

			if (seen_pool) {
				cl_diag_set(d, "line %u: cpu_pool is given twice", lineno);
				return POOL_ERR_CONFIG;
			}
			seen_pool = true;
			rc = pool_cpulist_parse(val, vlen, &out->cpu_pool, d);
			if (rc) {
				cl_diag_prefix(d, "line %u: cpu_pool", lineno);
				return rc;
			}
			out->has_cpu_pool = true;
		} else {
			cl_diag_set(d,
			            "line %u: unknown key '%.*s'; allocator.yaml knows memory_mib, "
			            "cpu_count and cpu_pool",
			            lineno, (int)(klen > 40 ? 40 : klen), key);
			return POOL_ERR_CONFIG;
		}
		if (seen_count && seen_pool) {
			cl_diag_set(d,
			            "line %u: cpu_count and cpu_pool conflict; use exactly one of "
			            "them",
			            lineno);
			return POOL_ERR_CONFIG;
		}
	}
	return POOL_OK;
}

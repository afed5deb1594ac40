/* SPDX-License-Identifier: Apache-2.0 */
/* The describe record an enclave process sends over its control socket (enclave.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/nitro/enclave.h"
#include "lib/util/hex.h"

static size_t put(char *buf, size_t len, size_t off, const char *key, const char *val)
{
	int n;

	if (off >= len)
		return len;
	n = snprintf(buf + off, len - off, "%s %s\n", key, val);
	return n < 0 ? len : off + (size_t)n;
}

size_t enclave_describe_format(const struct enclave_info *e, char *buf, size_t len)
{
	char v[2 * EIF_PCR_SIZE + 1], cpus[NE_LAUNCH_MAX_CPUS * 11 + 1] = "";
	size_t off = 0, c = 0;

	for (size_t i = 0; i < e->ncpus && i < NE_LAUNCH_MAX_CPUS; i++)
		c += (size_t)snprintf(cpus + c, sizeof(cpus) - c, "%s%" PRIu32, i ? "," : "",
		                      e->cpus[i]);
	off = put(buf, len, off, "id", e->id);
	snprintf(v, sizeof(v), "%ld", (long)e->pid);
	off = put(buf, len, off, "pid", v);
	snprintf(v, sizeof(v), "%" PRIu64, e->cid);
	off = put(buf, len, off, "cid", v);
	snprintf(v, sizeof(v), "%" PRIu64, e->memory_mib);
	off = put(buf, len, off, "mib", v);
	off = put(buf, len, off, "cpus", cpus);
	off = put(buf, len, off, "state", e->terminating ? "TERMINATING" : "RUNNING");
	off = put(buf, len, off, "flags", e->debug_mode ? "DEBUG_MODE" : "NONE");
	cl_hex_encode(e->meas.pcr0, EIF_PCR_SIZE, v);
	off = put(buf, len, off, "pcr0", v);
	cl_hex_encode(e->meas.pcr1, EIF_PCR_SIZE, v);
	off = put(buf, len, off, "pcr1", v);
	cl_hex_encode(e->meas.pcr2, EIF_PCR_SIZE, v);
	off = put(buf, len, off, "pcr2", v);
	if (e->meas.has_pcr8) {
		cl_hex_encode(e->meas.pcr8, EIF_PCR_SIZE, v);
		off = put(buf, len, off, "pcr8", v);
	}
	/* the name last, then the empty line; names never hold a newline (pool_name_pick) */
	off = put(buf, len, off, "name", e->name);
	if (off + 1 >= len)
		return 0;
	buf[off++] = '\n';
	buf[off] = '\0';
	return off;
}

/* A whole decimal number no larger than @max. */
static int dec(const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end || *out > max ? -1 : 0;
}

static int parse_cpus(char *s, struct enclave_info *info)
{
	char *tok, *save = NULL;
	uint64_t v;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (info->ncpus >= NE_LAUNCH_MAX_CPUS || dec(tok, UINT32_MAX, &v))
			return -1;
		info->cpus[info->ncpus++] = (uint32_t)v;
	}
	return info->ncpus ? 0 : -1;
}

/* One "key value" line. Returns the bit of a required key, 0 for pcr8, -1 if malformed. */
static int parse_line(const char *key, char *val, struct enclave_info *info)
{
	uint64_t v;

	if (!strcmp(key, "id"))
		return strlen(val) < sizeof(info->id) && strcpy(info->id, val) ? 1 : -1;
	if (!strcmp(key, "name"))
		return *val && strlen(val) < sizeof(info->name) && strcpy(info->name, val) ? 2 : -1;
	if (!strcmp(key, "pid")) {
		if (dec(val, INT32_MAX, &v) || v == 0)
			return -1;
		info->pid = (pid_t)v;
		return 4;
	}
	if (!strcmp(key, "cid"))
		return dec(val, UINT32_MAX, &info->cid) ? -1 : 8;
	if (!strcmp(key, "mib"))
		return dec(val, UINT64_MAX, &info->memory_mib) ? -1 : 16;
	if (!strcmp(key, "cpus"))
		return parse_cpus(val, info) ? -1 : 32;
	if (!strcmp(key, "state")) {
		if (strcmp(val, "RUNNING") && strcmp(val, "TERMINATING"))
			return -1;
		info->terminating = !strcmp(val, "TERMINATING");
		return 64;
	}
	if (!strcmp(key, "flags")) {
		if (strcmp(val, "DEBUG_MODE") && strcmp(val, "NONE"))
			return -1;
		info->debug_mode = !strcmp(val, "DEBUG_MODE");
		return 128;
	}
	if (!strcmp(key, "pcr0"))
		return strlen(val) == 2 * EIF_PCR_SIZE &&
		                       cl_hex_decode(val, info->meas.pcr0, EIF_PCR_SIZE)
		               ? 256
		               : -1;
	if (!strcmp(key, "pcr1"))
		return strlen(val) == 2 * EIF_PCR_SIZE &&
		                       cl_hex_decode(val, info->meas.pcr1, EIF_PCR_SIZE)
		               ? 512
		               : -1;
	if (!strcmp(key, "pcr2"))
		return strlen(val) == 2 * EIF_PCR_SIZE &&
		                       cl_hex_decode(val, info->meas.pcr2, EIF_PCR_SIZE)
		               ? 1024
		               : -1;
	if (!strcmp(key, "pcr8")) {
		if (strlen(val) != 2 * EIF_PCR_SIZE ||
		    !cl_hex_decode(val, info->meas.pcr8, EIF_PCR_SIZE))
			return -1;
		info->meas.has_pcr8 = true;
		return 0;
	}
	return 0; /* unknown keys are ignored: a newer enclave process may add some */
}

#define REQUIRED_KEYS 0x7ff

int enclave_describe_parse(char *buf, size_t len, struct enclave_info *info)
{
	char *p = buf, *end = buf + len;
	unsigned seen = 0;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *val;
		int bit;

		if (!nl)
			return -1;
		*nl = '\0';
		if (p == nl) { /* the empty line: the metadata follows */
			p = nl + 1;
			if (seen != REQUIRED_KEYS)
				return -1;
			if (p < end) {
				info->metadata_len = (size_t)(end - p);
				info->metadata = malloc(info->metadata_len + 1);
				if (!info->metadata)
					return -1;
				memcpy(info->metadata, p, info->metadata_len);
				info->metadata[info->metadata_len] = '\0';
			}
			return 0;
		}
		if (memchr(p, '\0', (size_t)(nl - p)))
			return -1;
		val = strchr(p, ' ');
		if (!val)
			return -1;
		*val++ = '\0';
		bit = parse_line(p, val, info);
		if (bit < 0 || (seen & (unsigned)bit))
			return -1;
		seen |= (unsigned)bit;
		p = nl + 1;
	}
	return -1;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run-enclave's resource sequence in one call, in nitro-cli's order (nitro-compat §2.7): the
 * pre-checks, then NE_CREATE_VM, memory (allocate, image load info, EIF copy, regions), vCPUs,
 * NE_START_ENCLAVE. Every failure unwinds what was taken and names the nitro-cli error code.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "lib/ne/ne.h"
#include "lib/ne/ne_internal.h"

/* nitro-cli error code numbers used here (src/cli/cli.h; the library does not include it). */
enum {
	EC_INVALID_ARGUMENT = 3,
	EC_INVALID_CPU_CONFIG = 20,
	EC_NO_SUCH_CPU_IN_POOL = 21,
	EC_INSUFFICIENT_CPUS = 22,
	EC_INSUFFICIENT_MEMORY_REQUESTED = 26,
	EC_FILE_OPERATION = 19,
};

static int fail(int code, int rc, struct cl_diag *d)
{
	if (rc)
		cl_diag_prefix(d, "%s", ne_err_name(rc));
	return code;
}

/* nitro-cli's checks of the CPU request against the configured pool, before any allocation. */
static int precheck_cpus(const struct pool_record *rec, const struct ne_launch_req *req,
                         struct cl_diag *d)
{
	char list[256];
	struct cpuset seen;

	pool_cpulist_format(&rec->cpus, list, sizeof(list));
	if (req->ncpu_ids) {
		cpuset_zero(&seen);
		for (size_t i = 0; i < req->ncpu_ids; i++) {
			uint32_t id = req->cpu_ids[i];

			if (id < POOL_MAX_CPUS && cpuset_has(&seen, id)) {
				cl_diag_set(d, "CPU %u is listed more than once in --cpu-ids", id);
				return EC_INVALID_CPU_CONFIG;
			}
			if (!cpuset_has(&rec->cpus, id)) {
				cl_diag_set(d, "CPU %u is not in the enclave CPU pool (%s)", id,
				            list);
				return EC_NO_SUCH_CPU_IN_POOL;
			}
			cpuset_add(&seen, id);
		}
		return 0;
	}
	if (req->cpu_count == 0 || req->cpu_count > cpuset_count(&rec->cpus)) {
		cl_diag_set(d, "cpu-count %u %s the enclave CPU pool of %u CPUs (%s)",
		            req->cpu_count, req->cpu_count ? "is more than" : "is invalid for",
		            cpuset_count(&rec->cpus), list);
		return EC_INSUFFICIENT_CPUS;
	}
	return 0;
}

int ne_launch_prepare(struct pool *p, const struct ne_launch_req *req, struct ne_launch *out,
                      struct cl_diag *d)
{
	struct pool_record rec;
	struct pool_grant g;
	uint64_t off;
	size_t nids = req->ncpu_ids ? req->ncpu_ids : req->cpu_count;
	int rc, code;

	memset(out, 0, sizeof(*out));
	if (req->memory_mib == 0 ||
	    (req->image_size && ne_mem_check_request(req->memory_mib, req->image_size, NULL, d))) {
		if (req->memory_mib == 0)
			ne_mem_check_request(0, req->image_size, NULL, d);
		return EC_INSUFFICIENT_MEMORY_REQUESTED;
	}
	if (nids > NE_LAUNCH_MAX_CPUS) {
		cl_diag_set(d, "%zu vCPUs requested; cloister supports at most %d per enclave",
		            nids, NE_LAUNCH_MAX_CPUS);
		return EC_INSUFFICIENT_CPUS;
	}
	rc = pool_record_read(p, &rec, d);
	if (rc)
		return EC_FILE_OPERATION; /* nitro-cli: no ne_cpus file → E19 */
	code = precheck_cpus(&rec, req, d);
	if (code)
		return code;

	rc = ne_create_slot(p, &out->slot, d);
	if (rc)
		return fail(ne_err_to_cli(NE_OP_CREATE_SLOT, rc), rc, d);
	if (req->host_ops)
		ne_slot_set_host_ops(out->slot, req->host_ops);
	out->mapper = req->mapper;
	rc = ne_set_name(out->slot, req->name ? req->name : "enclave", out->name, d);
	if (rc) {
		code = EC_INVALID_ARGUMENT;
		goto unwind;
	}

	rc = ne_mem_alloc_mapped(out->slot, req->memory_mib, req->mapper, &out->mem, d);
	if (rc) {
		code = ne_err_to_cli(NE_OP_MEM_ALLOC, rc);
		goto unwind;
	}
	out->memory_mib = out->mem.total >> 20;
	rc = ne_get_image_load_info(out->slot, NE_EIF_IMAGE, &off, d);
	if (rc) {
		code = ne_err_to_cli(NE_OP_GET_IMAGE_LOAD_INFO, rc);
		goto unwind;
	}
	if (req->image) {
		rc = ne_mem_write(&out->mem, off, req->image, req->image_size, d);
		if (rc) {
			code = EC_INSUFFICIENT_MEMORY_REQUESTED;
			goto unwind;
		}
	}
	for (size_t i = 0; i < out->mem.count; i++) {
		rc = ne_set_user_memory_region(out->slot, NE_DEFAULT_MEMORY_REGION,
		                               out->mem.regions[i].size,
		                               (uint64_t)(uintptr_t)out->mem.regions[i].addr, d);
		if (rc) {
			code = ne_err_to_cli(NE_OP_SET_USER_MEMORY_REGION, rc);
			goto unwind;
		}
	}

	for (size_t i = 0; i < nids; i++) {
		uint32_t id = req->ncpu_ids ? req->cpu_ids[i] : 0;

		rc = ne_add_vcpu(out->slot, &id, d);
		if (rc) {
			code = ne_err_to_cli(NE_OP_ADD_VCPU, rc);
			goto unwind;
		}
		out->cpu_ids[out->ncpus++] = id;
	}

	out->cid = req->cid;
	rc = ne_start(out->slot, req->debug_mode ? NE_ENCLAVE_DEBUG_MODE : 0, &out->cid, d);
	if (rc) {
		code = ne_err_to_cli(NE_OP_START, rc);
		goto unwind;
	}
	if (ne_slot_info(out->slot, &g, d) == 0) {
		memcpy(out->enclave_id, g.enclave_id, sizeof(out->enclave_id));
		out->slot_uid = g.slot_uid;
	}
	return 0;
unwind:
	if (rc)
		cl_diag_prefix(d, "%s", ne_err_name(rc));
	ne_launch_release(out);
	return code;
}

void ne_launch_release(struct ne_launch *l)
{
	struct ne_mem_mapper none = { 0 };

	if (l->mapper) {
		none = *l->mapper;
		ne_mem_free_with(&none, &l->mem);
	} else {
		ne_mem_free(&l->mem);
	}
	ne_release(l->slot);
	l->slot = NULL;
}

/* nitro-cli's eif_loader: TIMEOUT_MINUTE_MS is 90 000 ms despite its name. */
#define HEARTBEAT_UNIT_MS 90000u
#define HEARTBEAT_EIF_STEP (6ULL << 30)
#define HEARTBEAT_MEM_STEP (100ULL << 30)

/* ceil(@v / @step), at least 1; no overflow for any @v (no v + step - 1). */
static uint64_t heartbeat_units(uint64_t v, uint64_t step)
{
	uint64_t n = v / step + (v % step != 0);

	return n ? n : 1;
}

unsigned ne_heartbeat_timeout_ms(uint64_t eif_size, uint64_t mem_bytes)
{
	/* Each count is < 2^32 (UINT64_MAX / 6 GiB), so the sum and the product fit in 64 bits. */
	uint64_t units = heartbeat_units(eif_size, HEARTBEAT_EIF_STEP) +
	                 heartbeat_units(mem_bytes, HEARTBEAT_MEM_STEP);
	uint64_t ms = units * HEARTBEAT_UNIT_MS;

	return ms > INT_MAX ? (unsigned)INT_MAX : (unsigned)ms;
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_NE_INTERNAL_H
#define CLOISTER_NE_INTERNAL_H

/* Shared by ne.c and mem.c; not part of the API. */

#include "lib/ne/ne.h"

struct ne_slot {
	struct pool *pool;
	uint64_t slot_uid;
	struct pool_topology *topo;
	struct pool_record rec; /* the pool as it was when the slot was opened */
	struct ne_host_ops ops;
	/* Regions added in this process (addresses are only meaningful here). */
	struct {
		uint64_t addr, size;
	} regions[NE_MAX_MEM_REGIONS];
	size_t nregions;
	uint64_t mem_total;
	int grant_fd; /* ne_release_prepare(): the grant, held open for ne_release; or -1 */
};

/* The real page inspection: /proc/self/smaps for hugetlb-ness and page size, then fault the
 * range in and ask move_pages(2) for the node. Same contract as ne_host_ops.page_info. */
int ne_host_page_info(uint64_t addr, uint64_t len, uint64_t *page_size, int *node, void *opaque);

/* -ENOMEM (with @d naming the numbers and the fix) when this enclave holding @self_mib MiB would
 * push the sum over all live enclaves past the pool's memory_mib. Caller holds the lock. */
int ne_memory_budget_check(struct ne_slot *s, uint64_t self_mib, struct cl_diag *d);

#endif

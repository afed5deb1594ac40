/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_GPA_H
#define CLOISTER_VMM_GPA_H

/*
 * Guest-physical memory and the one checked translator every guest address goes through
 * (Solo5's HVT_CHECKED_GPA_P). A guest address range [gpa, gpa + len) is translated only when it
 * lies wholly inside one RAM region, with every addition overflow-checked; anything else is
 * refused, so a hostile guest can never make the monitor touch memory outside the enclave's RAM.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPA_MAX_REGIONS 2

struct gpa_region {
	uint64_t gpa; /* guest-physical start */
	uint64_t size; /* bytes */
	uint8_t *host; /* where the monitor sees it */
};

struct gpa_space {
	struct gpa_region region[GPA_MAX_REGIONS];
	unsigned nregions;
};

/*
 * Add a RAM region. Regions must not overlap and start+size must not wrap; returns false (and
 * changes nothing) otherwise or when the table is full. The space does not own @host.
 */
bool gpa_add_region(struct gpa_space *s, uint64_t gpa, uint64_t size, void *host);

/*
 * Host pointer for [gpa, gpa + len), or NULL when the range is not wholly inside one region
 * (out of range, wraps, spans a hole). len 0 is allowed and translates like a 1-byte range
 * would, except that it may end exactly at the region end.
 */
void *gpa_translate(const struct gpa_space *s, uint64_t gpa, uint64_t len);

/* Total RAM bytes in the space. */
uint64_t gpa_ram_size(const struct gpa_space *s);

#endif

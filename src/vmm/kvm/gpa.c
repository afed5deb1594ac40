/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/kvm/gpa.h"
#include "lib/util/checked.h"

bool gpa_add_region(struct gpa_space *s, uint64_t gpa, uint64_t size, void *host)
{
	uint64_t end;

	if (s->nregions >= GPA_MAX_REGIONS || size == 0 || !host || !cl_add_u64(gpa, size, &end))
		return false;
	for (unsigned i = 0; i < s->nregions; i++) {
		const struct gpa_region *r = &s->region[i];

		/* r->gpa + r->size cannot wrap: it was checked when r was added. */
		if (gpa < r->gpa + r->size && r->gpa < end)
			return false;
	}
	s->region[s->nregions++] = (struct gpa_region){ .gpa = gpa, .size = size, .host = host };
	return true;
}

void *gpa_translate(const struct gpa_space *s, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < s->nregions; i++) {
		const struct gpa_region *r = &s->region[i];

		if (gpa < r->gpa)
			continue;
		/* Offset first, then the length against what is left: no addition can wrap. */
		uint64_t off = gpa - r->gpa;
		if (off >= r->size && !(len == 0 && off == r->size))
			continue;
		if (len > r->size - off)
			return NULL; /* starts here but does not end here: regions are not merged */
		return r->host + off;
	}
	return NULL;
}

uint64_t gpa_ram_size(const struct gpa_space *s)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < s->nregions; i++)
		total += s->region[i].size;
	return total;
}

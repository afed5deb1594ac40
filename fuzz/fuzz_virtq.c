/* SPDX-License-Identifier: Apache-2.0 */
/* The virtqueue walker over guest memory that the fuzzer writes entirely: descriptor tables,
 * rings and indices are all hostile. Every chain popped must only point inside guest RAM. */
#include <stdint.h>
#include <string.h>

#include "vmm/virtio/virtq.h"

#define RAM_GPA 0x100000ULL
#define RAM_SIZE 0x10000ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[RAM_SIZE];
	struct gpa_space mem = { 0 };
	struct virtq q;
	struct virtq_chain c;
	uint8_t scratch[512];
	uint16_t qsize;
	bool got;

	if (size < 2)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 9)); /* 1 .. 256 */
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data + 2, size - 2 < RAM_SIZE ? size - 2 : RAM_SIZE);
	gpa_add_region(&mem, RAM_GPA, RAM_SIZE, ram);
	if (virtq_setup(&q, &mem, qsize, RAM_GPA, RAM_GPA + 0x4000, RAM_GPA + 0x5000) != VIRTQ_OK)
		return 0;
	q.last_avail = (uint16_t)(data[1] * 257);
	for (int i = 0; i < 16; i++) {
		if (virtq_pop(&q, &c, &got) != VIRTQ_OK || !got)
			break;
		for (unsigned s = 0; s < c.nout + c.nin; s++)
			if (c.seg[s].ptr < ram || c.seg[s].ptr + c.seg[s].len > ram + RAM_SIZE)
				__builtin_trap();
		virtq_chain_read(&c, 3, scratch, sizeof(scratch));
		virtq_chain_write(&c, 5, scratch, sizeof(scratch));
		virtq_push(&q, c.head, (uint32_t)c.in_len);
	}
	return 0;
}

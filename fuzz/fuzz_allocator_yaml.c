/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the allocator.yaml parser. Accepted configurations must respect the
 * invariants the allocator relies on. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/pool/pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pool_config c;
	struct cl_diag d;

	if (pool_config_parse((const char *)data, size, &c, &d) != POOL_OK)
		return 0;
	if (!c.memory_mib || c.memory_mib > (1ULL << 43))
		abort();
	if (!c.has_cpu_pool && (!c.cpu_count || c.cpu_count > POOL_MAX_CPUS))
		abort();
	return 0;
}

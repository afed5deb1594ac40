/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the cpulist parser, and that whatever it accepts formats and re-parses to the
 * same set. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/pool/pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpuset s, t;
	struct cl_diag d;
	char buf[8192];

	if (pool_cpulist_parse((const char *)data, size, &s, &d) != POOL_OK)
		return 0;
	if (pool_cpulist_format(&s, buf, sizeof(buf)) != POOL_OK)
		abort();
	if (pool_cpulist_parse(buf, strlen(buf), &t, &d) != POOL_OK || !cpuset_equal(&s, &t))
		abort();
	return 0;
}

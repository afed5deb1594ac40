/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the describe record an enclave process sends describe-enclaves; whatever
 * parses must format and re-parse to the same enclave. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/nitro/enclave.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct enclave_info a, b;
	static char text[16384];
	char *copy = malloc(size ? size : 1);
	size_t n;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	memset(&a, 0, sizeof(a));
	if (enclave_describe_parse(copy, size, &a) == 0) {
		n = enclave_describe_format(&a, text, sizeof(text));
		memset(&b, 0, sizeof(b));
		if (!n || enclave_describe_parse(text, n, &b) != 0 || strcmp(a.id, b.id) ||
		    strcmp(a.name, b.name) || a.cid != b.cid || a.ncpus != b.ncpus ||
		    memcmp(&a.meas, &b.meas, sizeof(a.meas)))
			abort();
		free(b.metadata);
	}
	free(a.metadata);
	free(copy);
	return 0;
}

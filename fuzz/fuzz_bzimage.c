/* SPDX-License-Identifier: Apache-2.0 */
/* The bzImage setup-header parser on arbitrary bytes (an EIF's kernel section is untrusted). */
#include <stdint.h>

#include "vmm/arch/x86_64/boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bzimage_info bi;
	struct cl_diag d;

	if (bzimage_parse(data, size, &bi, &d) == BOOT_OK &&
	    (bi.pm_offset >= size || bi.pm_offset + bi.pm_size != size || bi.hdr_end > size))
		__builtin_trap();
	return 0;
}

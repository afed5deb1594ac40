/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the EIF buffer parser with measurements on (so a signature section's CBOR,
 * PEM certificate and COSE get decoded too), and for what parses, the signature checks.
 * Seeds: tests/data/fuzz/eif/, small images made by cloister build-eif.
 */
#include <stddef.h>
#include <stdint.h>

#include "cloister/eif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eif_image img;
	struct cl_diag d;

	/* CRC mismatches are allowed so the fuzzer reaches what lies behind the CRC check */
	if (eif_parse_buffer(data, size, EIF_PARSE_MEASURE | EIF_PARSE_ALLOW_BAD_CRC, &img, &d) ==
	    EIF_OK) {
		(void)eif_signature_verify(&img, &d);
		eif_image_release(&img);
	}
	if (eif_parse_buffer(data, size, 0, &img, &d) == EIF_OK)
		eif_image_release(&img);
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the COSE_Sign1 decoder, and verification of whatever decodes against a
 * fixed key (exercises the raw r||s → DER path with hostile lengths). */
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "lib/cose/cose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static EVP_PKEY *key;
	struct cose_sign1 m;
	struct cl_diag d;

	if (!key)
		key = EVP_EC_gen("P-384");
	if (cose_sign1_decode(data, size, &m, &d) == COSE_OK) {
		(void)cose_sign1_verify(&m, key, &d);
		cose_sign1_free(&m);
	}
	return 0;
}

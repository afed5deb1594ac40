/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which directory holds the attestation CA. On its own, without the CA's cryptography
 * (ca.c): the monitor names the directory to the NSM daemon and links no libcrypto.
 */
#include <stdlib.h>

#include "cloister/attest.h"

const char *attest_ca_dir(const char *dir)
{
	const char *env;

	if (dir && *dir)
		return dir;
	env = getenv("CLOISTER_CA_DIR");
	if (env && *env)
		return env;
	return ATTEST_CA_DEFAULT_DIR;
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_CLI_BUILD_H
#define CLOISTER_CLI_BUILD_H

/* Helpers shared by build-enclave and blobs (docs/build-enclave.md). */

#include <stddef.h>

#include "cli/cli.h"

/* $CLOISTER_CACHE/blobs (default ~/.cache/cloister/blobs) into @out. -1 without HOME. */
int cli_blobs_cache_dir(char *out, size_t cap);

/* The blobs directory build-enclave uses without NITRO_CLI_BLOBS: <cache>/blobs/default, a
 * symlink that `cloister blobs` points at the release it assembled. -1 without HOME. */
int cli_default_blobs_dir(char *out, size_t cap);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image reader's untrusted JSON parsers (image config, OCI index and manifest, docker
 * manifest.json) on the same bytes. Anything may fail; nothing may crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_diag d;
	struct img_config c;
	struct img_manifest m;
	struct img_app app;
	char *digest = NULL, *tag = NULL;
	bool nested, both;

	if (img_config_parse(data, size, &c, &d) == IMAGE_OK) {
		(void)img_config_app(&c, &app, &both, &d);
		img_config_free(&c);
	}
	if (img_index_select(data, size, NULL, &digest, &nested, &d) == IMAGE_OK)
		free(digest);
	if (img_index_select(data, size, "latest", &digest, &nested, &d) == IMAGE_OK)
		free(digest);
	if (img_manifest_parse(data, size, &m, &d) == IMAGE_OK)
		img_manifest_free(&m);
	if (img_docker_manifest_parse(data, size, NULL, &m, &tag, &d) == IMAGE_OK) {
		img_manifest_free(&m);
		free(tag);
	}
	return 0;
}

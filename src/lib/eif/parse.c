/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The measuring entry points of the EIF reader: read.c's parse with SHA-384 (measure.c) and the
 * signature section's certificate (PCR8) plugged in. Apart from read.c so that a parse without
 * measuring (eif_parse_layout) links none of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/eif/internal.h"

static enum eif_error pcr8_of_section(const uint8_t *section, size_t len,
                                      uint8_t pcr8[EIF_PCR_SIZE], struct cl_diag *d)
{
	uint8_t *pem = NULL, *cose = NULL;
	size_t pem_len = 0, cose_len = 0;
	enum eif_error err;

	err = eif_signature_section_decode(section, len, &pem, &pem_len, &cose, &cose_len, d);
	if (!err)
		err = eif_pcr8_of_pem(pem, pem_len, pcr8, d);
	free(pem);
	free(cose);
	return err;
}

const struct eif_measurer eif_sha384_measurer = {
	.init = eif_stream_init,
	.section = eif_stream_section,
	.slot_free = eif_stream_slot_free,
	.feed = eif_stream_feed,
	.final = eif_stream_final,
	.free = eif_stream_free,
	.pcr8 = pcr8_of_section,
};

enum eif_error eif_parse_buffer(const uint8_t *buf, size_t len, unsigned flags,
                                struct eif_image *out, struct cl_diag *d)
{
	return eif_parse_buffer_with(buf, len, flags, &eif_sha384_measurer, out, d);
}

enum eif_error eif_read_fd(int fd, unsigned flags, struct eif_image *out, struct cl_diag *d)
{
	return eif_read_fd_with(fd, flags, &eif_sha384_measurer, out, d);
}

enum eif_error eif_read_file(const char *path, unsigned flags, struct eif_image *out,
                             struct cl_diag *d)
{
	return eif_read_file_with(path, flags, &eif_sha384_measurer, out, d);
}

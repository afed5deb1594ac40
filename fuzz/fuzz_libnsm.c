/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: libnsm's response decoder (guest/libnsm/nsm_cbor.c and nsm_lib.c). The
 * input is returned as the device's answer to every API call.
 */
#include <stdint.h>
#include <string.h>

#include "../guest/libnsm/nsm.h"
#include "../guest/libnsm/nsm_transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct canned {
	const uint8_t *p;
	size_t n;
};

static int canned_transport(void *opaque, int32_t fd, const uint8_t *req, size_t req_len,
                            uint8_t *resp, size_t *resp_len)
{
	const struct canned *c = opaque;
	size_t n = c->n < *resp_len ? c->n : *resp_len;

	(void)fd;
	(void)req;
	(void)req_len;
	memcpy(resp, c->p, n);
	*resp_len = n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct canned c = { data, size };
	static uint8_t doc[0x3000];
	uint8_t buf[64], rnd[256];
	uint32_t len;
	uintptr_t rlen = sizeof(rnd);
	NsmDescription d;
	bool lock;

	nsm_lib_set_transport(canned_transport, &c);
	len = sizeof(buf);
	(void)nsm_describe_pcr(3, 1, &lock, buf, &len);
	len = sizeof(buf);
	(void)nsm_extend_pcr(3, 16, (const uint8_t *)"x", 1, buf, &len);
	(void)nsm_lock_pcr(3, 16);
	(void)nsm_lock_pcrs(3, 16);
	(void)nsm_get_description(3, &d);
	(void)nsm_get_random(3, rnd, &rlen);
	len = sizeof(doc);
	(void)nsm_get_attestation_doc(3, NULL, 0, NULL, 0, NULL, 0, doc, &len);
	return 0;
}

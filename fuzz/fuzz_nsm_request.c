/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the NSM device's request decoder and handlers, fed guest bytes exactly as
 * the virtio queue would. Invariants: never crash or leak, always answer with one well-formed
 * CBOR item that fits NSM_RESPONSE_MAX.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/cose/cbor_reader.h"
#include "lib/nsm/device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct nsm_state *make_state(void)
{
	static const uint8_t fake_cert[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	static const uint8_t *chain[] = { fake_cert };
	static const size_t lens[] = { sizeof(fake_cert) };
	struct nsm_config cfg;
	struct nsm_state *s = NULL;
	static EVP_PKEY *key;

	/* One key for the whole run (key generation would dominate); a fresh state per input
	 * keeps every input reproducible on its own. */
	if (!key)
		key = EVP_EC_gen("P-384");

	memset(&cfg, 0, sizeof(cfg));
	cfg.module_id = "i-fuzz-enc0000000000000000";
	cfg.signing_key = key;
	cfg.certificate = fake_cert;
	cfg.certificate_len = sizeof(fake_cert);
	cfg.cabundle = chain;
	cfg.cabundle_lens = lens;
	cfg.cabundle_count = 1;
	cfg.parent_id = "i-fuzz";
	if (nsm_state_new(&cfg, &s, NULL) != NSM_OK)
		abort();
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t resp[NSM_RESPONSE_MAX];
	struct nsm_state *s = make_state();
	size_t len = 0;

	/* Two requests per input: the second sees the PCR/lock state the first left. */
	for (int i = 0; i < 2; i++) {
		if (nsm_handle_request(s, data, size, resp, sizeof(resp), &len) != NSM_OK)
			abort();
		if (!cbr_well_formed(resp, len, CBR_MAX_DEPTH))
			abort();
	}
	nsm_state_free(s);
	return 0;
}

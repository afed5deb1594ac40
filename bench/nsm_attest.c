/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Benchmark: monitor-side cost of one NSM Attestation request (decode the guest's request,
 * build the §3.5 payload, COSE-sign it with ES384, encode the response) against one raw
 * ECDSA P-384 signature (EVP_DigestSign, SHA-384) over a message of the same size, measured
 * in the same run, interleaved, best of R rounds of N operations each (noise on a shared
 * machine only ever slows a round down). Goal: ratio ≤ 1.5.
 *
 * Prints one JSON object: {"name", "ours", "theirs", "unit": "us/op", "ratio", "goal",
 * "better": "lower", "machine", "detail"}.
 *
 * Usage: bench-nsm-attest [ROUNDS [OPS]]   (defaults 5 and 200)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/nsm/device.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static size_t self_signed(EVP_PKEY *key, uint8_t **der)
{
	X509 *x = X509_new();
	int n;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"i-bench-enc0000000000000000", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, key, EVP_sha384());
	*der = NULL;
	n = i2d_X509(x, der);
	X509_free(x);
	return (size_t)n;
}

static void cpu_model(char *out, size_t cap)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(out, cap, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && c) {
			snprintf(out, cap, "%s", c + 2);
			out[strcspn(out, "\n")] = 0;
			break;
		}
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5, ops = argc > 2 ? atoi(argv[2]) : 200;
	EVP_PKEY *key = EVP_EC_gen("P-384");
	uint8_t *cert = NULL, *resp = malloc(NSM_RESPONSE_MAX), req[128], sig[128];
	const uint8_t *chain[2];
	size_t chain_lens[2], cert_len, req_len, resp_len = 0, doc_len = 0, sig_len;
	struct nsm_config cfg;
	struct nsm_state *s = NULL;
	double best_ours = 1e300, best_theirs = 1e300;
	static uint8_t msg[8192];
	struct utsname u;
	char cpu[128];

	if (rounds < 1 || ops < 1 || !key || !resp)
		return 2;
	cert_len = self_signed(key, &cert);
	chain[0] = chain[1] = cert;
	chain_lens[0] = chain_lens[1] = cert_len;
	memset(&cfg, 0, sizeof(cfg));
	cfg.module_id = "i-bench-enc0000000000000000";
	cfg.signing_key = key;
	cfg.certificate = cert;
	cfg.certificate_len = cert_len;
	cfg.cabundle = chain;
	cfg.cabundle_lens = chain_lens;
	cfg.cabundle_count = 2;
	if (nsm_state_new(&cfg, &s, NULL) != NSM_OK)
		return 2;

	/* {"Attestation": {"user_data": null, "nonce": h'00…'(32), "public_key": null}} */
	req_len = 0;
	{
		const char *head = "\xa1\x6b"
		                   "Attestation"
		                   "\xa3\x69"
		                   "user_data"
		                   "\xf6\x65"
		                   "nonce"
		                   "\x58\x20";
		size_t hl = strlen(head);

		memcpy(req, head, hl);
		memset(req + hl, 0x42, 32);
		req_len = hl + 32;
		memcpy(req + req_len,
		       "\x6a"
		       "public_key"
		       "\xf6",
		       12);
		req_len += 12;
	}
	if (nsm_handle_request(s, req, req_len, resp, NSM_RESPONSE_MAX, &resp_len) != NSM_OK ||
	    nsm_last_status(s) != NSM_SUCCESS)
		return 3;
	/* The document is the response minus ~26 bytes of framing; sign a message that size. */
	doc_len = resp_len;

	for (int r = 0; r < rounds; r++) {
		double t0 = now_us(), t;

		for (int i = 0; i < ops; i++)
			if (nsm_handle_request(s, req, req_len, resp, NSM_RESPONSE_MAX, &resp_len))
				return 3;
		t = (now_us() - t0) / ops;
		if (t < best_ours)
			best_ours = t;

		t0 = now_us();
		for (int i = 0; i < ops; i++) {
			EVP_MD_CTX *ctx = EVP_MD_CTX_new();

			sig_len = sizeof(sig);
			if (EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, key) != 1 ||
			    EVP_DigestSign(ctx, sig, &sig_len, msg, doc_len) != 1)
				return 4;
			EVP_MD_CTX_free(ctx);
		}
		t = (now_us() - t0) / ops;
		if (t < best_theirs)
			best_theirs = t;
	}
	uname(&u);
	cpu_model(cpu, sizeof(cpu));
	printf("{\"name\": \"nsm-attestation-request\", \"ours\": %.1f, \"theirs\": %.1f, "
	       "\"unit\": \"us/op\", \"ratio\": %.3f, \"goal\": 1.5, \"better\": \"lower\", "
	       "\"machine\": \"%s %s, %s\", \"detail\": {\"rounds\": %d, \"ops_per_round\": %d, "
	       "\"response_bytes\": %zu, \"ours_is\": \"nsm_handle_request(Attestation, 32-byte "
	       "nonce) incl. CBOR decode/encode and ES384 COSE signing\", \"theirs_is\": "
	       "\"EVP_DigestSign ECDSA P-384/SHA-384 over %zu bytes\"}}\n",
	       best_ours, best_theirs, best_ours / best_theirs, u.sysname, u.release, cpu, rounds,
	       ops, resp_len, doc_len);
	nsm_state_free(s);
	EVP_PKEY_free(key);
	OPENSSL_free(cert);
	free(resp);
	return 0;
}

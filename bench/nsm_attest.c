/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Benchmark: monitor-side cost of one NSM Attestation request (decode the guest's request,
 * build the §3.5 payload, COSE-sign it with ES384, encode the response) against one raw
 * ECDSA P-384 signature (EVP_DigestSign, SHA-384) over a message of the same size, measured
 * in the same run, interleaved (each round times N operations of one side, then N of the other,
 * the order alternating by round), best of R rounds (noise on a shared machine only ever slows
 * a round down). Goal: ratio ≤ 1.5. No KVM is involved: this is library code the monitor runs.
 *
 * Prints one JSON object (bench/results/nsm-attest.json): {"name": "nsm-attest", "ours",
 * "theirs", "unit": "us/op", "ratio", "goal", "better": "lower", "machine", "runs": {"ours":
 * [...], "theirs": [...]} (µs/op of every round), "spread" (min and max of the rounds, each
 * side), "detail"}.
 *
 * Usage: bench-nsm-attest [ROUNDS [OPS]]   (defaults 5 and 200)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <time.h>

#include <openssl/crypto.h>
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

/* Where this ran: `cloister parent-instance run` exports CLOISTER_PARENT_INSTANCE=1. */
static const char *where(void)
{
	const char *p = getenv("CLOISTER_PARENT_INSTANCE");

	return p && !strcmp(p, "1") ? "parent instance" : "direct";
}

static void print_runs(const double *v, int n)
{
	for (int i = 0; i < n; i++)
		printf("%s%.1f", i ? ", " : "", v[i]);
}

static void min_max(const double *v, int n, double *lo, double *hi)
{
	*lo = *hi = v[0];
	for (int i = 1; i < n; i++) {
		if (v[i] < *lo)
			*lo = v[i];
		if (v[i] > *hi)
			*hi = v[i];
	}
}

static double time_ours(struct nsm_state *s, const uint8_t *req, size_t req_len, uint8_t *resp,
                        size_t *resp_len, int ops)
{
	double t0 = now_us();

	for (int i = 0; i < ops; i++)
		if (nsm_handle_request(s, req, req_len, resp, NSM_RESPONSE_MAX, resp_len))
			return -1;
	return (now_us() - t0) / ops;
}

static double time_theirs(EVP_PKEY *key, const uint8_t *msg, size_t msg_len, int ops)
{
	uint8_t sig[128];
	size_t sig_len;
	double t0 = now_us();

	for (int i = 0; i < ops; i++) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		int ok;

		sig_len = sizeof(sig);
		ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, key) == 1 &&
		     EVP_DigestSign(ctx, sig, &sig_len, msg, msg_len) == 1;
		EVP_MD_CTX_free(ctx);
		if (!ok)
			return -1;
	}
	return (now_us() - t0) / ops;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5, ops = argc > 2 ? atoi(argv[2]) : 200;
	EVP_PKEY *key = EVP_EC_gen("P-384");
	uint8_t *cert = NULL, *resp = malloc(NSM_RESPONSE_MAX), req[128];
	const uint8_t *chain[2];
	size_t chain_lens[2], cert_len, req_len, resp_len = 0, doc_len = 0;
	struct nsm_config cfg;
	struct nsm_state *s = NULL;
	double best_ours = 1e300, best_theirs = 1e300, lo_o, hi_o, lo_t, hi_t, load[3] = { 0 };
	double *ours_runs, *theirs_runs;
	static uint8_t msg[8192];
	struct utsname u;
	char cpu[128];

	if (rounds < 1 || ops < 1 || !key || !resp)
		return 2;
	ours_runs = calloc((size_t)rounds, sizeof(double));
	theirs_runs = calloc((size_t)rounds, sizeof(double));
	if (!ours_runs || !theirs_runs)
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
		/* Alternate who goes first, so a drift in the machine's load hits both alike. */
		if (r % 2 == 0) {
			ours_runs[r] = time_ours(s, req, req_len, resp, &resp_len, ops);
			theirs_runs[r] = time_theirs(key, msg, doc_len, ops);
		} else {
			theirs_runs[r] = time_theirs(key, msg, doc_len, ops);
			ours_runs[r] = time_ours(s, req, req_len, resp, &resp_len, ops);
		}
		if (ours_runs[r] < 0)
			return 3;
		if (theirs_runs[r] < 0)
			return 4;
		if (ours_runs[r] < best_ours)
			best_ours = ours_runs[r];
		if (theirs_runs[r] < best_theirs)
			best_theirs = theirs_runs[r];
	}
	uname(&u);
	cpu_model(cpu, sizeof(cpu));
	(void)getloadavg(load, 3);
	min_max(ours_runs, rounds, &lo_o, &hi_o);
	min_max(theirs_runs, rounds, &lo_t, &hi_t);
	printf("{\"name\": \"nsm-attest\", \"what\": \"monitor-side handling of one NSM "
	       "Attestation request vs one raw ECDSA P-384 signature over as many bytes\", "
	       "\"ours\": %.1f, \"theirs\": %.1f, \"unit\": \"us/op\", \"ratio\": %.3f, "
	       "\"goal\": 1.5, \"better\": \"lower\", ",
	       best_ours, best_theirs, best_ours / best_theirs);
	printf("\"machine\": \"%s, %ld cores, %s (no KVM needed), %s %s\", ", cpu,
	       sysconf(_SC_NPROCESSORS_ONLN), where(), u.sysname, u.release);
	printf("\"runs\": {\"ours\": [");
	print_runs(ours_runs, rounds);
	printf("], \"theirs\": [");
	print_runs(theirs_runs, rounds);
	printf("]}, \"spread\": {\"ours\": [%.1f, %.1f], \"theirs\": [%.1f, %.1f]}, ", lo_o, hi_o,
	       lo_t, hi_t);
	printf("\"detail\": {\"rounds\": %d, \"ops_per_round\": %d, \"statistic\": \"best "
	       "round of each side (noise only slows a round); runs holds every round\", "
	       "\"load_average\": [%.2f, %.2f, %.2f], \"openssl\": \"%s\", "
	       "\"response_bytes\": %zu, \"ours_is\": \"nsm_handle_request(Attestation, 32-byte "
	       "nonce) incl. CBOR decode/encode and ES384 COSE signing\", \"theirs_is\": "
	       "\"EVP_DigestSign ECDSA P-384/SHA-384 over %zu bytes\"}}\n",
	       rounds, ops, load[0], load[1], load[2], OpenSSL_version(OPENSSL_VERSION), resp_len,
	       doc_len);
	free(ours_runs);
	free(theirs_runs);
	nsm_state_free(s);
	EVP_PKEY_free(key);
	OPENSSL_free(cert);
	free(resp);
	return 0;
}

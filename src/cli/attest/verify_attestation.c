/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister verify-attestation --document F --root ROOT.pem [--pcr N=HEX ...] [--nonce HEX]
 *  [--user-data HEX] [--public-key HEX] [--at-time UNIX]`
 *
 * Verifies an NSM attestation document offline (ours, or AWS's with the AWS root) and prints a
 * JSON summary. Exit status (docs/attestation.md):
 *   0 valid; 1 usage error; 2 cannot read an input file; 3 malformed document;
 *   4 signature invalid; 5 certificate chain invalid; 6 a value differs from the expected one.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/x509.h>

#include "cli/cli.h"
#include "cloister/attest.h"
#include "lib/util/file.h"
#include "lib/util/hex.h"

enum {
	VA_OK = 0,
	VA_USAGE = 1,
	VA_READ = 2,
	VA_MALFORMED = 3,
	VA_SIGNATURE = 4,
	VA_CHAIN = 5,
	VA_MISMATCH = 6,
};

static void va_usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister verify-attestation --document FILE --root ROOT.pem\n"
	        "         [--pcr N=HEX ...] [--nonce HEX] [--user-data HEX] [--public-key HEX]\n"
	        "         [--at-time UNIX_SECONDS]\n\n"
	        "Check an NSM attestation document: its ES384 signature, the certificate chain to\n"
	        "ROOT (validity, CA constraints, key usages), the payload schema, and the "
	        "expected\n"
	        "values given. Prints JSON. Exit status: 0 valid, 1 usage, 2 unreadable input,\n"
	        "3 malformed document, 4 bad signature, 5 bad chain, 6 value mismatch.\n");
}

static int va_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int va_error(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("cloister verify-attestation: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* Decode a hex argument into a malloc'd buffer (≤ 1024 bytes). */
static bool hex_arg(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 > ATTEST_FIELD_MAX)
		return false;
	*out = malloc(n / 2 + 1);
	if (!*out || !cl_hex_decode(s, *out, n / 2)) {
		free(*out);
		*out = NULL;
		return false;
	}
	*len = n / 2;
	return true;
}

static json_object *hex_or_null(const uint8_t *p, size_t n, bool present)
{
	char *h;
	json_object *o;

	if (!present)
		return NULL;
	h = malloc(2 * n + 1);
	if (!h)
		return NULL;
	cl_hex_encode(p, n, h);
	o = json_object_new_string(h);
	free(h);
	return o;
}

static void add_time(json_object *o, const char *key, const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return;
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, key, json_object_new_string(buf));
}

static json_object *summary(const struct attest_doc *doc, enum attest_error err, const char *msg)
{
	json_object *o = json_object_new_object(), *pcrs, *cert;
	const unsigned char *p = doc->certificate;
	char name[256], key[4];
	X509 *leaf;

	json_object_object_add(o, "Valid", json_object_new_boolean(err == ATTEST_OK));
	if (err)
		json_object_object_add(o, "Error", json_object_new_string(msg));
	json_object_object_add(o, "ModuleId", json_object_new_string(doc->module_id));
	json_object_object_add(o, "Digest", json_object_new_string(doc->digest));
	json_object_object_add(o, "Timestamp", json_object_new_int64((int64_t)doc->timestamp));
	pcrs = json_object_new_object();
	for (unsigned i = 0; i < ATTEST_MAX_PCRS; i++) {
		if (!doc->pcr_present[i])
			continue;
		snprintf(key, sizeof(key), "%u", i);
		json_object_object_add(pcrs, key, hex_or_null(doc->pcr[i], doc->pcr_len[i], true));
	}
	json_object_object_add(o, "PCRs", pcrs);
	cert = json_object_new_object();
	leaf = d2i_X509(NULL, &p, (long)doc->certificate_len);
	if (leaf) {
		X509_NAME_oneline(X509_get_subject_name(leaf), name, sizeof(name));
		json_object_object_add(cert, "Subject", json_object_new_string(name));
		X509_NAME_oneline(X509_get_issuer_name(leaf), name, sizeof(name));
		json_object_object_add(cert, "Issuer", json_object_new_string(name));
		add_time(cert, "NotBefore", X509_get0_notBefore(leaf));
		add_time(cert, "NotAfter", X509_get0_notAfter(leaf));
		X509_free(leaf);
	}
	json_object_object_add(o, "Certificate", cert);
	json_object_object_add(o, "CABundleLength", json_object_new_int((int)doc->cabundle_count));
	json_object_object_add(
	        o, "PublicKey",
	        hex_or_null(doc->public_key.data, doc->public_key.len, doc->public_key.present));
	json_object_object_add(
	        o, "UserData",
	        hex_or_null(doc->user_data.data, doc->user_data.len, doc->user_data.present));
	json_object_object_add(o, "Nonce",
	                       hex_or_null(doc->nonce.data, doc->nonce.len, doc->nonce.present));
	return o;
}

int cmd_verify_attestation(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "document", required_argument, NULL, 'd' },
		{ "root", required_argument, NULL, 'r' },
		{ "pcr", required_argument, NULL, 'p' },
		{ "nonce", required_argument, NULL, 'n' },
		{ "user-data", required_argument, NULL, 'u' },
		{ "public-key", required_argument, NULL, 'k' },
		{ "at-time", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct attest_expect exp;
	uint8_t *pcr_bufs[ATTEST_MAX_PCRS] = { NULL };
	uint8_t *nonce = NULL, *ud = NULL, *pk = NULL, *doc = NULL, *root = NULL;
	const char *doc_path = NULL, *root_path = NULL;
	size_t doc_len = 0, root_len = 0;
	struct attest_doc parsed;
	struct cl_diag d = { "" };
	enum attest_error err;
	int c, rc = VA_USAGE;

	memset(&exp, 0, sizeof(exp));
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			doc_path = optarg;
			break;
		case 'r':
			root_path = optarg;
			break;
		case 'p': {
			char *eq = strchr(optarg, '='), *end;
			unsigned long idx = strtoul(optarg, &end, 10);
			size_t n;

			if (!eq || end != eq || eq == optarg || idx >= ATTEST_MAX_PCRS ||
			    pcr_bufs[idx] || !hex_arg(eq + 1, &pcr_bufs[idx], &n) ||
			    (n != 32 && n != 48 && n != 64)) {
				rc = va_error(
				        VA_USAGE,
				        "--pcr '%s' must be N=HEX with N in 0..31 (once each) "
				        "and 32, 48 or 64 bytes of hex",
				        optarg);
				goto out;
			}
			exp.pcr[idx] = pcr_bufs[idx];
			exp.pcr_len[idx] = n;
			break;
		}
		case 'n':
			if (nonce || !hex_arg(optarg, &nonce, &exp.nonce_len)) {
				rc = va_error(VA_USAGE,
				              "--nonce must be given once, as hex of at most "
				              "1024 bytes");
				goto out;
			}
			exp.nonce = nonce;
			break;
		case 'u':
			if (ud || !hex_arg(optarg, &ud, &exp.user_data_len)) {
				rc = va_error(VA_USAGE,
				              "--user-data must be given once, as hex of at "
				              "most 1024 bytes");
				goto out;
			}
			exp.user_data = ud;
			break;
		case 'k':
			if (pk || !hex_arg(optarg, &pk, &exp.public_key_len)) {
				rc = va_error(VA_USAGE,
				              "--public-key must be given once, as hex of at "
				              "most 1024 bytes");
				goto out;
			}
			exp.public_key = pk;
			break;
		case 't': {
			char *end;
			long long t = strtoll(optarg, &end, 10);

			if (*end || t <= 0) {
				rc = va_error(VA_USAGE, "--at-time '%s' must be Unix seconds",
				              optarg);
				goto out;
			}
			exp.at_time = t;
			break;
		}
		case 'h':
			va_usage(stdout);
			rc = VA_OK;
			goto out;
		default:
			va_usage(stderr);
			goto out;
		}
	}
	if (!doc_path || !root_path) {
		va_usage(stderr);
		rc = va_error(VA_USAGE, "--document and --root are required");
		goto out;
	}
	if (cl_file_read_all(doc_path, ATTEST_DOC_MAX, &doc, &doc_len, &d) ||
	    cl_file_read_all(root_path, 64 * 1024, &root, &root_len, &d)) {
		rc = va_error(VA_READ, "%s", d.msg);
		goto out;
	}
	err = attest_verify(doc, doc_len, root, root_len, &exp, &parsed, &d);
	switch (err) {
	case ATTEST_OK:
		rc = VA_OK;
		break;
	case ATTEST_ERR_SIGNATURE:
		rc = VA_SIGNATURE;
		break;
	case ATTEST_ERR_CHAIN:
		rc = VA_CHAIN;
		break;
	case ATTEST_ERR_MISMATCH:
		rc = VA_MISMATCH;
		break;
	default:
		rc = VA_MALFORMED;
		break;
	}
	if (parsed.module_id) {
		json_object *o = summary(&parsed, err, d.msg);

		cli_print_json(json_object_to_json_string_ext(
		        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		                   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	attest_doc_free(&parsed);
	if (err)
		va_error(rc, "%s: %s", attest_strerror(err), d.msg);
out:
	for (unsigned i = 0; i < ATTEST_MAX_PCRS; i++)
		free(pcr_bufs[i]);
	free(nonce);
	free(ud);
	free(pk);
	free(doc);
	free(root);
	return rc;
}

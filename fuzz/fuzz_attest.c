/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the attestation-document verifier. Each input is tried as a whole document
 * (COSE → payload → certificates → chain against a fixed root) and as a bare payload.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cloister/attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *root_der;
static size_t root_len;

static void make_root(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-384");
	X509 *x = X509_new();
	unsigned char *der = NULL;
	int n;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"fuzz root", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, key, EVP_sha384());
	n = i2d_X509(x, &der);
	if (n <= 0)
		abort();
	root_der = der;
	root_len = (size_t)n;
	X509_free(x);
	EVP_PKEY_free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attest_doc doc;
	struct attest_expect exp;
	static const uint8_t nonce[4] = { 1, 2, 3, 4 };

	if (!root_der)
		make_root();
	memset(&exp, 0, sizeof(exp));
	exp.nonce = nonce;
	exp.nonce_len = sizeof(nonce);
	(void)attest_verify(data, size, root_der, root_len, &exp, &doc, NULL);
	attest_doc_free(&doc);
	if (attest_payload_parse(data, size, &doc, NULL) == ATTEST_OK)
		attest_doc_free(&doc);
	return 0;
}

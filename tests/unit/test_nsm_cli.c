/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsm-cli end to end without /dev/nsm: the program's main() is compiled in as nsm_cli_main(),
 * libnsm's transport is pointed at the device-side nsm_handle_request(), and each command's
 * exit status and output are checked (the attest output is verified with the host verifier).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../guest/libnsm/nsm_transport.h"
#include "cloister/attest.h"
#include "lib/nsm/device.h"
#include "lib/util/file.h"
#include "nsm_test_util.h"

int nsm_cli_main(int argc, char **argv);
#define main nsm_cli_main
#include "../../guest/nsm-cli/nsm_cli.c"
#undef main

#define MODULE_ID "i-0a1b2c3d4e5f60708-enc0102030405060708"

struct fx {
	char dir[64];
	struct attest_ca *ca;
	struct attest_leaf leaf;
	struct nsm_state *nsm;
	uint8_t pcr0[48];
	char out[65536];
};

static int dev_transport(void *opaque, int32_t fd, const uint8_t *req, size_t req_len,
                         uint8_t *resp, size_t *resp_len)
{
	struct fx *f = opaque;
	size_t n = 0;

	(void)fd;
	if (nsm_handle_request(f->nsm, req, req_len, resp, *resp_len, &n) != NSM_OK)
		return 5; /* EIO */
	*resp_len = n;
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct nsm_config cfg;

	strcpy(f->dir, "/tmp/cloister-nsmcli-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(attest_ca_init(f->dir, false, NULL), ATTEST_OK);
	assert_int_equal(attest_ca_load(f->dir, &f->ca, NULL), ATTEST_OK);
	assert_int_equal(attest_leaf_mint(f->ca, MODULE_ID, &f->leaf, NULL), ATTEST_OK);
	memset(&cfg, 0, sizeof(cfg));
	for (int i = 0; i < 48; i++)
		f->pcr0[i] = (uint8_t)(200 - i);
	memcpy(cfg.pcr0, f->pcr0, 48);
	cfg.module_id = MODULE_ID;
	cfg.signing_key = f->leaf.key;
	cfg.certificate = f->leaf.cert_der;
	cfg.certificate_len = f->leaf.cert_len;
	cfg.cabundle = f->leaf.chain;
	cfg.cabundle_lens = f->leaf.chain_lens;
	cfg.cabundle_count = f->leaf.chain_count;
	assert_int_equal(nsm_state_new(&cfg, &f->nsm, NULL), NSM_OK);
	nsm_lib_set_transport(dev_transport, f);
	nsm_lib_set_device_path("/dev/null"); /* nsm_lib_init() needs something to open */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	const char *names[] = { "root.pem",         "root.key", "intermediate.pem",
		                "intermediate.key", ".lock",    "doc.cbor" };
	char p[128];

	nsm_lib_set_transport(NULL, NULL);
	nsm_lib_set_device_path(NULL);
	nsm_state_free(f->nsm);
	attest_leaf_free(&f->leaf);
	attest_ca_free(f->ca);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Run nsm-cli with the given arguments (NULL-terminated), stdout captured in f->out. */
static int cli(struct fx *f, ...)
{
	char *argv[16], path[] = "/tmp/cloister-nsmcli-out-XXXXXX";
	int argc = 0, saved, fd, rc;
	va_list ap;
	ssize_t n;

	argv[argc++] = (char *)"nsm-cli";
	va_start(ap, f);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	dup2(fd, STDOUT_FILENO);
	rc = nsm_cli_main(argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, f->out, sizeof(f->out) - 1);
	f->out[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	return rc;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_nsm_cli_describe_commands(void **state)
{
	struct fx *f = *state;
	char want[128];

	assert_int_equal(cli(f, "describe-nsm", NULL), 0);
	assert_non_null(strstr(f->out, "\"module_id\": \"" MODULE_ID "\""));
	assert_non_null(strstr(f->out, "\"max_pcrs\": 32"));
	assert_non_null(strstr(f->out,
	                       "\"locked_pcrs\": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "
	                       "13, 14, 15]"));
	assert_non_null(strstr(f->out, "\"digest\": \"SHA384\""));
	assert_int_equal(cli(f, "describe-pcr", "--index", "0", NULL), 0);
	hex(f->pcr0, 48, want);
	assert_non_null(strstr(f->out, want));
	assert_non_null(strstr(f->out, "\"lock\": true"));
}

static void test_nsm_cli_extend_and_lock(void **state)
{
	struct fx *f = *state;
	uint8_t pcr[48] = { 0 };
	char want[128];

	sha384_extend(pcr, "abc", 3);
	hex(pcr, 48, want);
	assert_int_equal(cli(f, "extend-pcr", "--index", "16", "--data", "abc", NULL), 0);
	assert_non_null(strstr(f->out, want));
	sha384_extend(pcr, "\x01\x02", 2);
	hex(pcr, 48, want);
	assert_int_equal(cli(f, "extend-pcr", "--index", "16", "--data-hex", "0102", NULL), 0);
	assert_non_null(strstr(f->out, want));
	assert_int_equal(cli(f, "lock-pcr", "--index", "16", NULL), 0);
	/* 10 + ReadOnlyIndex (4) */
	assert_int_equal(cli(f, "lock-pcr", "--index", "16", NULL), 14);
	assert_int_equal(cli(f, "extend-pcr", "--index", "16", "--data", "x", NULL), 14);
	/* 10 + InvalidIndex (2) */
	assert_int_equal(cli(f, "lock-pcrs", "--range", "33", NULL), 12);
	assert_int_equal(cli(f, "lock-pcrs", "--range", "32", NULL), 0);
}

static void test_nsm_cli_random(void **state)
{
	struct fx *f = *state;
	char *q;

	assert_int_equal(cli(f, "random", "--length", "16", NULL), 0);
	q = strstr(f->out, "\"random\": \"");
	assert_non_null(q);
	q += 11;
	assert_int_equal(strcspn(q, "\""), 32);
	assert_int_equal(cli(f, "random", "--length", "300", NULL), 1);
}

static void test_nsm_cli_attest_writes_verifiable_document(void **state)
{
	struct fx *f = *state;
	char path[128], rootp[128];
	uint8_t *doc = NULL, *root = NULL;
	size_t doc_len = 0, root_len = 0;
	struct attest_expect exp;
	struct attest_doc parsed;
	struct cl_diag d = { "" };
	const uint8_t nonce[] = { 0x00, 0xff, 0x10 };

	snprintf(path, sizeof(path), "%s/doc.cbor", f->dir);
	snprintf(rootp, sizeof(rootp), "%s/root.pem", f->dir);
	assert_int_equal(cli(f, "attest", "--nonce", "00ff10", "--user-data", "6869", "--output",
	                     path, NULL),
	                 0);
	assert_int_equal(cl_file_read_all(path, 65536, &doc, &doc_len, NULL), 0);
	assert_int_equal(cl_file_read_all(rootp, 65536, &root, &root_len, NULL), 0);
	memset(&exp, 0, sizeof(exp));
	exp.nonce = nonce;
	exp.nonce_len = 3;
	exp.user_data = (const uint8_t *)"hi";
	exp.user_data_len = 2;
	exp.pcr[0] = f->pcr0;
	exp.pcr_len[0] = 48;
	assert_int_equal(attest_verify(doc, doc_len, root, root_len, &exp, &parsed, &d), ATTEST_OK);
	assert_false(parsed.public_key.present);
	attest_doc_free(&parsed);
	free(doc);
	free(root);
}

static void test_nsm_cli_usage_errors(void **state)
{
	struct fx *f = *state;

	assert_int_equal(cli(f, "describe-pcr", NULL), 1);
	assert_int_equal(cli(f, "extend-pcr", "--index", "16", NULL), 1);
	assert_int_equal(cli(f, "frobnicate", NULL), 1);
	assert_int_equal(cli(f, "attest", "--nonce", "0g", NULL), 1);
	assert_int_equal(cli(f, "describe-pcr", "--index", "70000", NULL), 1);
	assert_int_equal(cli(f, "--help", NULL), 0);
	nsm_lib_set_device_path("/nonexistent/nsm");
	assert_int_equal(cli(f, "describe-nsm", NULL), 2);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_nsm_cli_describe_commands),
		T(test_nsm_cli_extend_and_lock),
		T(test_nsm_cli_random),
		T(test_nsm_cli_attest_writes_verifiable_document),
		T(test_nsm_cli_usage_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

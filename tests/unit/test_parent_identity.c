/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run-enclave's PCR3/PCR4 inputs (src/cli/nitro/parent_identity.c): environment, then
 * parent.conf, then an EC2 instance id in board_asset_tag. Each case goes all the way to the
 * PCR bank: parent_identity_load → parent_identity_apply → nsm_enclave_new (with a CA in a
 * temporary directory) → nsm_pcr_read. Expected PCRs are computed here with OpenSSL's SHA-384
 * over 48 zero bytes ‖ the string (nitro-compat §3.4), never with the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "cli/nitro/parent_identity.h"
#include "lib/nsm/enclave.h"

#define MODULE_ID "i-0123456789abcdef0-enc1234"
#define ROLE "arn:aws:iam::123456789012:role/enclave-parent"
#define ROLE2 "arn:aws:iam::210987654321:role/from-file"
#define INSTANCE "i-0123456789abcdef0"
#define INSTANCE2 "i-0fedcba9876543210"

struct fx {
	char dir[64];
	char ca[128];
	char conf[128];
	char sysroot[128];
	struct eif_measurements meas;
};

static void unset_env(void)
{
	unsetenv("CLOISTER_PARENT_ROLE");
	unsetenv("CLOISTER_PARENT_ID");
	unsetenv("CLOISTER_PARENT_CONF");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* <sysroot>/sys/devices/virtual/dmi/id/board_asset_tag = @tag (NULL: no such file). */
static void asset_tag(struct fx *f, const char *tag)
{
	static const char *const parts[] = { "/sys", "/sys/devices", "/sys/devices/virtual",
		                             "/sys/devices/virtual/dmi",
		                             "/sys/devices/virtual/dmi/id" };
	char path[256];

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", f->sysroot, parts[i]);
		mkdir(path, 0755);
	}
	snprintf(path, sizeof(path), "%s/sys/devices/virtual/dmi/id/board_asset_tag", f->sysroot);
	unlink(path);
	if (tag)
		write_file(path, tag);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/cloister-parent-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->ca, sizeof(f->ca), "%s/ca", f->dir);
	snprintf(f->conf, sizeof(f->conf), "%s/parent.conf", f->dir);
	snprintf(f->sysroot, sizeof(f->sysroot), "%s/root", f->dir);
	mkdir(f->sysroot, 0755);
	for (int i = 0; i < EIF_PCR_SIZE; i++)
		f->meas.pcr0[i] = (uint8_t)i;
	unset_env();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[256];

	unset_env();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* SHA-384(48 zero bytes ‖ s): one extend of a zero PCR. */
static void expected(const char *s, uint8_t out[48])
{
	uint8_t buf[48 + 256];
	unsigned int len = 0;
	size_t n = strlen(s);

	assert_true(n <= 256);
	memset(buf, 0, 48);
	memcpy(buf + 48, s, n);
	assert_int_equal(EVP_Digest(buf, 48 + n, out, &len, EVP_sha384(), NULL), 1);
	assert_int_equal(len, 48);
}

/* Load, apply, build the enclave's NSM, read PCR3 and PCR4. */
static void pcrs(struct fx *f, uint8_t p3[48], uint8_t p4[48])
{
	struct parent_identity pi;
	struct nsm_enclave_config nc = {
		.ca_dir = f->ca,
		.module_id = MODULE_ID,
		.meas = &f->meas,
	};
	struct nsm_state *s = NULL;
	struct cl_diag d = { "" };
	bool locked = false;

	assert_int_equal(parent_identity_load(f->conf, f->sysroot, &pi, &d), 0);
	parent_identity_apply(&pi, &nc.parent_role, &nc.parent_id);
	if (nsm_enclave_new(&nc, &s, &d) != NSM_OK)
		fail_msg("nsm_enclave_new: %s", d.msg);
	assert_true(nsm_pcr_read(s, 3, p3, &locked));
	assert_true(locked);
	assert_true(nsm_pcr_read(s, 4, p4, &locked));
	assert_true(locked);
	nsm_state_free(s);
}

static void expect_pcrs(struct fx *f, const char *role, const char *id)
{
	uint8_t p3[48], p4[48], w3[48] = { 0 }, w4[48] = { 0 };

	pcrs(f, p3, p4);
	if (role)
		expected(role, w3);
	if (id)
		expected(id, w4);
	assert_memory_equal(p3, w3, 48);
	assert_memory_equal(p4, w4, 48);
}

static void test_parent_nothing_configured_leaves_pcr3_pcr4_zero(void **state)
{
	struct fx *f = *state;

	/* no variables, no parent.conf, no board_asset_tag (EnclaveID prefix i-0000000000000000) */
	expect_pcrs(f, NULL, NULL);
}

static void test_parent_env_values_reach_pcr3_and_pcr4(void **state)
{
	struct fx *f = *state;

	setenv("CLOISTER_PARENT_ROLE", ROLE, 1);
	setenv("CLOISTER_PARENT_ID", INSTANCE, 1);
	/* a broken file is not read when the environment decides both */
	write_file(f->conf, "this is not key=value\n");
	expect_pcrs(f, ROLE, INSTANCE);
}

static void test_parent_conf_file_values_reach_pcr3_and_pcr4(void **state)
{
	struct fx *f = *state;

	write_file(f->conf, "# parent of this host's enclaves\r\n"
	                    "\n"
	                    "  parent_role =  " ROLE2 "  \r\n"
	                    "parent_id=" INSTANCE2 "\n");
	expect_pcrs(f, ROLE2, INSTANCE2);
}

static void test_parent_conf_path_comes_from_env(void **state)
{
	struct fx *f = *state;
	struct parent_identity pi;
	struct cl_diag d = { "" };

	write_file(f->conf, "parent_role=" ROLE2 "\n");
	setenv("CLOISTER_PARENT_CONF", f->conf, 1);
	assert_string_equal(parent_conf_path(), f->conf);
	assert_int_equal(parent_identity_load(NULL, f->sysroot, &pi, &d), 0);
	assert_string_equal(pi.role, ROLE2);
	assert_string_equal(pi.role_from, f->conf);
	unsetenv("CLOISTER_PARENT_CONF");
	assert_string_equal(parent_conf_path(), "/etc/cloister/parent.conf");
}

static void test_parent_env_overrides_file_per_value(void **state)
{
	struct fx *f = *state;

	write_file(f->conf, "parent_role = " ROLE2 "\nparent_id = " INSTANCE2 "\n");
	setenv("CLOISTER_PARENT_ID", INSTANCE, 1);
	expect_pcrs(f, ROLE2, INSTANCE);
	/* set but empty: none, even though the file has a value */
	setenv("CLOISTER_PARENT_ROLE", "", 1);
	expect_pcrs(f, NULL, INSTANCE);
}

static void test_parent_id_defaults_to_instance_id_asset_tag(void **state)
{
	struct fx *f = *state;
	struct parent_identity pi;
	struct cl_diag d = { "" };

	asset_tag(f, INSTANCE "\n"); /* as EC2 exposes it: the instance id, newline */
	expect_pcrs(f, NULL, INSTANCE);
	assert_int_equal(parent_identity_load(f->conf, f->sysroot, &pi, &d), 0);
	assert_string_equal(pi.id_from, "board_asset_tag");
	/* the old 8-digit form is an instance id too */
	asset_tag(f, "i-0123abcd");
	expect_pcrs(f, NULL, "i-0123abcd");
	/* the file, or an empty value, takes precedence over the tag */
	write_file(f->conf, "parent_id = " INSTANCE2 "\n");
	expect_pcrs(f, NULL, INSTANCE2);
	write_file(f->conf, "parent_id =\n");
	expect_pcrs(f, NULL, NULL);
}

static void test_parent_id_ignores_asset_tag_that_is_no_instance_id(void **state)
{
	struct fx *f = *state;

	asset_tag(f, "Default string\n");
	expect_pcrs(f, NULL, NULL);
	asset_tag(f, "i-0000000000000000"); /* nitro-cli's fallback prefix: 16 digits */
	expect_pcrs(f, NULL, NULL);
	asset_tag(f, "i-0123456789ABCDEF0");
	expect_pcrs(f, NULL, NULL);
	assert_true(parent_is_instance_id(INSTANCE));
	assert_false(parent_is_instance_id("i-"));
	assert_false(parent_is_instance_id("x-0123456789abcdef0"));
	assert_false(parent_is_instance_id("i-0123456789abcdef0-enc1"));
}

static void expect_refused(struct fx *f, int code, const char *text, const char *has)
{
	struct parent_identity pi;
	struct cl_diag d = { "" };

	if (text)
		write_file(f->conf, text);
	assert_int_equal(parent_identity_load(f->conf, f->sysroot, &pi, &d), code);
	if (!strstr(d.msg, has))
		fail_msg("'%s' does not mention '%s'", d.msg, has);
}

static void test_parent_conf_refuses_mistakes(void **state)
{
	struct fx *f = *state;

	expect_refused(f, 3, "parent_role " ROLE "\n", ":1: expected");
	expect_refused(f, 3, "\n\nrole = " ROLE "\n", ":3: unknown key 'role'");
	expect_refused(f, 3, "parent_id = " INSTANCE "\nparent_id = " INSTANCE2 "\n", "twice");
	expect_refused(f, 3, "parent_role = \"" ROLE "\"\n", "without quotes");
	expect_refused(f, 3, "parent_role = arn:aws:iam::1:role/a b\n", "printable");
	expect_refused(f, 3, "parent_id = i-\x01\n", "printable");
	/* the path exists but cannot be read as a file */
	assert_int_equal(unlink(f->conf), 0);
	assert_int_equal(mkdir(f->conf, 0755), 0);
	expect_refused(f, 19, NULL, f->conf);
	assert_int_equal(rmdir(f->conf), 0);
}

static void test_parent_env_refuses_unusable_values(void **state)
{
	struct fx *f = *state;
	char *longer = malloc(NSM_PARENT_VALUE_MAX + 2);

	assert_non_null(longer);
	setenv("CLOISTER_PARENT_ROLE", " " ROLE, 1);
	expect_refused(f, 3, NULL, "CLOISTER_PARENT_ROLE");
	unsetenv("CLOISTER_PARENT_ROLE");
	memset(longer, 'a', NSM_PARENT_VALUE_MAX + 1);
	longer[NSM_PARENT_VALUE_MAX + 1] = '\0';
	setenv("CLOISTER_PARENT_ID", longer, 1);
	expect_refused(f, 3, NULL, "CLOISTER_PARENT_ID");
	/* exactly the maximum is fine */
	longer[NSM_PARENT_VALUE_MAX] = '\0';
	setenv("CLOISTER_PARENT_ID", longer, 1);
	expect_refused(f, 0, NULL, "");
	free(longer);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_parent_nothing_configured_leaves_pcr3_pcr4_zero),
		T(test_parent_env_values_reach_pcr3_and_pcr4),
		T(test_parent_conf_file_values_reach_pcr3_and_pcr4),
		T(test_parent_conf_path_comes_from_env),
		T(test_parent_env_overrides_file_per_value),
		T(test_parent_id_defaults_to_instance_id_asset_tag),
		T(test_parent_id_ignores_asset_tag_that_is_no_instance_id),
		T(test_parent_conf_refuses_mistakes),
		T(test_parent_env_refuses_unusable_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

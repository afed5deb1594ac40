/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The EIF subcommands as a user runs them: the built `cloister` binary, its exact stdout
 * (nitro-cli's serde pretty JSON, keys in nitro-cli's order), `[ Exx ]` errors and exit codes.
 * Expected PCRs are computed here with EVP over the input files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "lib/util/file.h"
#include "lib/util/hex.h"

static char dir[256], bin[1100];
static char *out, *err;

static int setup(void **state)
{
	char exe[1024];
	ssize_t n;
	FILE *f;

	(void)state;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	/* <build>/tests/unit/test_eif_cli -> <build>/src/cli/cloister */
	for (int i = 0; i < 3; i++)
		*strrchr(exe, '/') = '\0';
	snprintf(bin, sizeof(bin), "%s/src/cli/cloister", exe);
	if (access(bin, X_OK))
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/cloister-test-eif-cli-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	setenv("NITRO_CLI_LOGS_PATH", dir, 1);
	unsetenv("SOURCE_DATE_EPOCH");
	if (chdir(dir))
		return -1;
	f = fopen("kernel", "w");
	fputs("not-really-a-kernel", f);
	fclose(f);
	f = fopen("rd0", "w");
	fputs("ramdisk zero", f);
	fclose(f);
	f = fopen("rd1", "w");
	fputs("ramdisk one!", f);
	fclose(f);
	f = fopen("meta.json", "w");
	fputs("{\"owner\": \"team/a\", \"build\": 7}", f);
	fclose(f);
	return system("openssl ecparam -name secp384r1 -genkey -noout -out key.pem 2>/dev/null && "
	              "openssl req -new -x509 -key key.pem -out cert.pem -days 30 "
	              "-subj '/C=US/O=Cloister/CN=test signer' 2>/dev/null") == 0
	               ? 0
	               : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	free(out);
	free(err);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Run `cloister <args>`; capture stdout/stderr into out/err; return the exit status. */
static int run(const char *args)
{
	char cmd[4096];
	size_t len;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' %s >stdout.txt 2>stderr.txt", bin, args);
	st = system(cmd);
	free(out);
	free(err);
	out = err = NULL;
	assert_int_equal(cl_file_read_all("stdout.txt", 1 << 20, (uint8_t **)&out, &len, NULL), 0);
	assert_int_equal(cl_file_read_all("stderr.txt", 1 << 20, (uint8_t **)&err, &len, NULL), 0);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void pcr_hex(const char *const *files, size_t n, char hex[97])
{
	uint8_t buf[96] = { 0 }, pcr[48];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int l;

	assert_true(EVP_DigestInit_ex(c, EVP_sha384(), NULL));
	for (size_t i = 0; i < n; i++) {
		uint8_t *d = NULL;
		size_t len = 0;

		if (files[i][0] == '=') { /* a literal string, not a file */
			assert_true(EVP_DigestUpdate(c, files[i] + 1, strlen(files[i] + 1)));
			continue;
		}
		assert_int_equal(cl_file_read_all(files[i], 1 << 20, &d, &len, NULL), 0);
		assert_true(EVP_DigestUpdate(c, d, len));
		free(d);
	}
	assert_true(EVP_DigestFinal_ex(c, buf + 48, &l));
	EVP_MD_CTX_free(c);
	assert_true(EVP_Digest(buf, 96, pcr, &l, EVP_sha384(), NULL));
	cl_hex_encode(pcr, 48, hex);
}

static const char BUILD[] =
        "build-eif --kernel kernel --cmdline 'console=ttyS0 quiet' --ramdisk rd0 "
        "--ramdisk rd1 --output t.eif --name app --version 3 "
        "--metadata meta.json --build-time 2024-05-01T10:00:00+00:00";

static void test_build_eif_prints_measurements_like_nitro_cli(void **state)
{
	const char *all[] = { "kernel", "=console=ttyS0 quiet", "rd0", "rd1" };
	const char *app[] = { "rd1" };
	char p0[97], p1[97], p2[97], want[1024];

	(void)state;
	pcr_hex(all, 4, p0);
	pcr_hex(all, 3, p1);
	pcr_hex(app, 1, p2);
	snprintf(want, sizeof(want),
	         "{\n  \"Measurements\": {\n    \"HashAlgorithm\": \"Sha384 { ... }\",\n"
	         "    \"PCR0\": \"%s\",\n    \"PCR1\": \"%s\",\n    \"PCR2\": \"%s\"\n  }\n}\n",
	         p0, p1, p2);
	assert_int_equal(run(BUILD), 0);
	assert_string_equal(out, want);
	assert_string_equal(err, "Start building the Enclave Image...\n"
	                         "Enclave Image successfully created.\n");
}

static void test_describe_eif_output_is_exactly_nitro_clis_shape(void **state)
{
	const char *all[] = { "kernel", "=console=ttyS0 quiet", "rd0", "rd1" };
	const char *app[] = { "rd1" };
	char p0[97], p1[97], p2[97], want[2048];

	(void)state;
	pcr_hex(all, 4, p0);
	pcr_hex(all, 3, p1);
	pcr_hex(app, 1, p2);
	snprintf(want, sizeof(want),
	         "{\n"
	         "  \"EifVersion\": 4,\n"
	         "  \"Measurements\": {\n"
	         "    \"HashAlgorithm\": \"Sha384 { ... }\",\n"
	         "    \"PCR0\": \"%s\",\n"
	         "    \"PCR1\": \"%s\",\n"
	         "    \"PCR2\": \"%s\"\n"
	         "  },\n"
	         "  \"IsSigned\": false,\n"
	         "  \"CheckCRC\": true,\n"
	         "  \"ImageName\": \"app\",\n"
	         "  \"ImageVersion\": \"3\",\n"
	         "  \"Metadata\": {\n"
	         "    \"BuildTime\": \"2024-05-01T10:00:00+00:00\",\n"
	         "    \"BuildTool\": \"cloister\",\n"
	         "    \"BuildToolVersion\": \"%s\",\n"
	         "    \"OperatingSystem\": \"Linux\",\n"
	         "    \"KernelVersion\": \"Unknown\",\n"
	         "    \"DockerInfo\": null,\n"
	         "    \"build\": 7,\n"
	         "    \"owner\": \"team/a\"\n"
	         "  }\n"
	         "}\n",
	         p0, p1, p2, CLOISTER_VERSION);
	assert_int_equal(run(BUILD), 0);
	assert_int_equal(run("describe-eif --eif-path t.eif"), 0);
	assert_string_equal(out, want);
}

static void test_sign_and_describe_signed_eif(void **state)
{
	const char *keys[] = { "\"EifVersion\"",
		               "\"Measurements\"",
		               "\"PCR8\"",
		               "\"IsSigned\": true",
		               "\"SigningCertificate\"",
		               "\"IssuerName\"",
		               "\"commonName\": \"test signer\"",
		               "\"countryName\": \"US\"",
		               "\"organizationName\": \"Cloister\"",
		               "\"Algorithm\": \"ecdsa-with-SHA256\"",
		               "\"NotBefore\"",
		               "\"NotAfter\"",
		               "\"Signature\"",
		               "\"CheckCRC\": true",
		               "\"SignatureCheck\": true",
		               "\"ImageName\"",
		               "\"Metadata\"" };
	const char *at = NULL;

	(void)state;
	assert_int_equal(run(BUILD), 0);
	assert_int_equal(run("sign-eif --eif-path t.eif --signing-certificate cert.pem "
	                     "--private-key key.pem"),
	                 0);
	assert_non_null(strstr(out, "\"PCR8\": \""));
	assert_non_null(strstr(err, "Enclave Image successfully signed."));
	assert_int_equal(run("describe-eif --eif-path t.eif"), 0);
	at = out;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *p = strstr(at, keys[i]);

		if (!p)
			fail_msg("'%s' missing or out of order in:\n%s", keys[i], out);
		at = p;
	}
}

static void test_pcr_subcommand(void **state)
{
	const char *f[] = { "rd0" };
	char p[97], want[256];

	(void)state;
	pcr_hex(f, 1, p);
	snprintf(want, sizeof(want), "{\n  \"PCR\": \"%s\"\n}\n", p);
	assert_int_equal(run("pcr --input rd0"), 0);
	assert_string_equal(out, want);
	assert_int_equal(run("pcr --signing-certificate cert.pem"), 0);
	assert_non_null(strstr(out, "{\n  \"PCR8\": \""));
	assert_int_equal(run("pcr --input rd0 --signing-certificate cert.pem"), 2);
	assert_memory_equal(err, "[ E02 ]", 7);
	assert_int_equal(run("pcr"), 1);
	assert_memory_equal(err, "[ E01 ]", 7);
	assert_int_equal(run("pcr --input /nonexistent"), 19);
	assert_memory_equal(err, "[ E19 ]", 7);
}

static void test_errors_use_nitro_cli_codes(void **state)
{
	FILE *f;

	(void)state;
	assert_int_equal(run("describe-eif"), 1);
	assert_memory_equal(err, "[ E01 ]", 7);
	assert_non_null(strstr(err, "cli-errors.html#E01"));
	f = fopen("junk.eif", "w");
	fputs("this is not an eif", f);
	fclose(f);
	assert_int_equal(run("describe-eif --eif-path junk.eif"), 35);
	assert_memory_equal(err, "[ E35 ]", 7);
	assert_non_null(strstr(err, "shorter than the 548-byte EIF header"));
	assert_int_equal(run("build-eif --kernel kernel --cmdline x --output o.eif"), 1);
	assert_non_null(strstr(err, "--ramdisk"));
	assert_int_equal(run("build-eif --kernel kernel --cmdline x --ramdisk rd0 --output o.eif "
	                     "--build-time yesterday"),
	                 3);
	assert_memory_equal(err, "[ E03 ]", 7);
	assert_int_equal(
	        run("build-eif --kernel kernel --cmdline x --ramdisk missing --output o.eif"), 19);
	assert_int_equal(run("build-eif --kernel kernel --cmdline x --ramdisk rd0 --output o.eif "
	                     "--signing-certificate cert.pem"),
	                 1);
	assert_int_equal(run("sign-eif --eif-path junk.eif --signing-certificate cert.pem "
	                     "--private-key key.pem"),
	                 60);
	assert_memory_equal(err, "[ E60 ]", 7);
}

static void test_describe_reports_bad_crc_as_nitro_cli_does(void **state)
{
	FILE *f;
	int c;

	(void)state;
	assert_int_equal(run(BUILD), 0);
	/* flip a bit of the stored CRC */
	f = fopen("t.eif", "r+");
	fseek(f, 0x223, SEEK_SET);
	c = fgetc(f);
	fseek(f, 0x223, SEEK_SET);
	fputc(c ^ 0xff, f);
	fclose(f);
	assert_int_equal(run("describe-eif --eif-path t.eif"), 0);
	assert_non_null(strstr(out, "\"CheckCRC\": false,"));
	assert_non_null(strstr(err, "CRC mismatch"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_eif_prints_measurements_like_nitro_cli),
		cmocka_unit_test(test_describe_eif_output_is_exactly_nitro_clis_shape),
		cmocka_unit_test(test_sign_and_describe_signed_eif),
		cmocka_unit_test(test_pcr_subcommand),
		cmocka_unit_test(test_errors_use_nitro_cli_codes),
		cmocka_unit_test(test_describe_reports_bad_crc_as_nitro_cli_does),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

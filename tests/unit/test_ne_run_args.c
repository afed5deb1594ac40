/* SPDX-License-Identifier: Apache-2.0 */
/* run-enclave's nitro-cli arguments (src/cli/nitro/run_args.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/nitro/run_args.h"

static struct run_args a;

/* Parse a NULL-terminated list of arguments after "run-enclave". */
static int parse(struct cl_diag *d, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"run-enclave";
	va_start(ap, d);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	return run_args_parse(argc, argv, &a, d);
}

static void test_minimal_command_line_and_default_name(void **state)
{
	(void)state;
	assert_int_equal(parse(NULL, "--eif-path", "dir/hello.eif", "--memory", "512",
	                       "--cpu-count", "2", NULL),
	                 0);
	assert_string_equal(a.eif_path, "dir/hello.eif");
	assert_true(a.memory_mib == 512);
	assert_int_equal(a.cpu_count, 2);
	assert_int_equal(a.ncpu_ids, 0);
	assert_string_equal(a.name, "hello");
	assert_false(a.debug_mode);
	assert_true(a.cid == 0);
	assert_false(a.cid_given_zero);
}

static void test_help_wins_over_missing_arguments(void **state)
{
	struct cl_diag d = { "" };

	(void)state;
	/* alone (which would otherwise be E01), after other options, and as -h */
	assert_int_equal(parse(&d, "--help", NULL), 0);
	assert_true(a.help);
	assert_int_equal(parse(&d, "--eif-path", "x.eif", "--help", NULL), 0);
	assert_true(a.help);
	assert_string_equal(a.eif_path, ""); /* nothing else is reported */
	assert_int_equal(parse(&d, "-h", NULL), 0);
	assert_true(a.help);
	/* an error before it still counts, as with nitro-cli's parser */
	assert_int_equal(parse(&d, "--bogus", "--help", NULL), 3);
	/* and an ordinary command line does not ask for help */
	assert_int_equal(
	        parse(&d, "--eif-path", "x.eif", "--memory", "128", "--cpu-count", "1", NULL), 0);
	assert_false(a.help);
}

static void test_memory_suffixes_are_binary_units_of_mib(void **state)
{
	static const char *const bad[] = {
		"", "abc", "5k", "G", "-1", "1.5G", "99999999999999999999", "18014398509481984G"
	};
	uint64_t m;

	(void)state;
	assert_int_equal(run_args_parse_memory("512", &m, NULL), 0);
	assert_true(m == 512);
	assert_int_equal(run_args_parse_memory("512M", &m, NULL), 0);
	assert_true(m == 512);
	assert_int_equal(run_args_parse_memory("2g", &m, NULL), 0);
	assert_true(m == 2048);
	assert_int_equal(run_args_parse_memory("1T", &m, NULL), 0);
	assert_true(m == 1048576);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(run_args_parse_memory(bad[i], &m, NULL), 3);
}

static void test_cpu_ids_take_several_values(void **state)
{
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(
	        parse(NULL, "--cpu-ids", "1", "3", "--memory", "1G", "--eif-path", "x", NULL), 0);
	assert_int_equal(a.ncpu_ids, 2);
	assert_int_equal(a.cpu_ids[0], 1);
	assert_int_equal(a.cpu_ids[1], 3);
	assert_true(a.memory_mib == 1024);
	assert_string_equal(a.name, "x");
	assert_int_equal(parse(NULL, "--cpu-ids=5", "--memory=64", "--eif-path=y.eif", NULL), 0);
	assert_int_equal(a.ncpu_ids, 1);
	assert_int_equal(a.cpu_ids[0], 5);
	assert_int_equal(parse(&d, "--cpu-ids", "two", "--memory", "64", "--eif-path", "x", NULL),
	                 23);
	assert_non_null(strstr(d.msg, "two"));
}

static void test_missing_and_conflicting_arguments(void **state)
{
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(parse(&d, "--memory", "64", "--cpu-count", "2", NULL), 1);
	assert_non_null(strstr(d.msg, "--eif-path"));
	assert_int_equal(parse(&d, "--eif-path", "x", "--cpu-count", "2", NULL), 1);
	assert_non_null(strstr(d.msg, "--memory"));
	assert_int_equal(parse(&d, "--eif-path", "x", "--memory", "64", NULL), 1);
	assert_int_equal(parse(&d, "--eif-path", "x", "--memory", "64", "--cpu-count", "2",
	                       "--cpu-ids", "1", NULL),
	                 2);
	assert_int_equal(
	        parse(&d, "--eif-path", "x", "--memory", "64", "--cpu-count", "2", "--bogus", NULL),
	        3);
	assert_int_equal(parse(&d, "--eif-path", "x", "--memory", NULL), 1);
}

static void test_enclave_cid_rules(void **state)
{
	static const char *const reserved[] = { "1", "2", "3", "4294967295", "4294967296" };
	struct cl_diag d = { "" };

	(void)state;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		assert_int_equal(parse(&d, "--eif-path", "x", "--memory", "64", "--cpu-count", "2",
		                       "--enclave-cid", reserved[i], NULL),
		                 3);
	assert_int_equal(parse(NULL, "--eif-path", "x", "--memory", "64", "--cpu-count", "2",
	                       "--enclave-cid", "0", NULL),
	                 0);
	assert_true(a.cid_given_zero);
	assert_int_equal(parse(NULL, "--eif-path", "x", "--memory", "64", "--cpu-count", "2",
	                       "--enclave-cid", "16", "--enclave-name", "web", "--attach-console",
	                       NULL),
	                 0);
	assert_true(a.cid == 16);
	assert_string_equal(a.name, "web");
	assert_true(a.attach_console);
	assert_true(a.debug_mode); /* attach-console implies debug mode */
}

static char *write_config(const char *json)
{
	static char path[] = "/tmp/cloister-run-args-XXXXXX";
	int fd;

	strcpy(path, "/tmp/cloister-run-args-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, json, strlen(json)) != (ssize_t)strlen(json))
		abort();
	close(fd);
	return path;
}

static void test_config_file_is_exclusive_except_attach_console(void **state)
{
	char *path = write_config("{\"eif_path\": \"/srv/app.eif\", \"memory_mib\": 256, "
	                          "\"cpu_ids\": [2, 6], \"enclave_cid\": 20, \"debug_mode\": "
	                          "false, \"enclave_name\": \"svc\"}");
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(parse(&d, "--config", path, NULL), 0);
	assert_string_equal(a.eif_path, "/srv/app.eif");
	assert_true(a.memory_mib == 256);
	assert_int_equal(a.ncpu_ids, 2);
	assert_int_equal(a.cpu_ids[1], 6);
	assert_true(a.cid == 20);
	assert_string_equal(a.name, "svc");
	assert_false(a.debug_mode);
	assert_int_equal(parse(&d, "--config", path, "--attach-console", NULL), 0);
	assert_true(a.debug_mode);
	assert_int_equal(parse(&d, "--config", path, "--memory", "64", NULL), 2);
	assert_non_null(strstr(d.msg, "--memory"));
	assert_int_equal(parse(&d, "--config", path, "--debug-mode", NULL), 2);
	unlink(path);
	assert_int_equal(parse(&d, "--config", "/nonexistent/cfg.json", NULL), 19);
}

static int cfg(const char *json, struct cl_diag *d)
{
	return run_args_parse_config(json, strlen(json), &a, d);
}

static void test_config_json_rules(void **state)
{
	struct cl_diag d = { "" };

	(void)state;
	assert_int_equal(cfg("{\"eif_path\": \"a.eif\", \"memory_mib\": 64, \"cpu_count\": 2}", &d),
	                 0);
	assert_string_equal(a.name, "a");
	assert_int_equal(cfg("{\"eif_path\": \"a.eif\", \"cpu_count\": 2}", &d), 1);
	assert_non_null(strstr(d.msg, "memory_mib"));
	assert_int_equal(cfg("{\"eif_path\": \"a.eif\", \"memory_mib\": 64}", &d), 1);
	assert_int_equal(
	        cfg("{\"eif_path\": \"a\", \"memory_mib\": 64, \"cpu_count\": 2, \"cpu_ids\": [1]}",
	            &d),
	        2);
	assert_int_equal(cfg("{\"eif_path\": \"a\", \"memory_mib\": \"64\", \"cpu_count\": 2}", &d),
	                 17);
	assert_int_equal(cfg("{\"eif_path\": \"a\", \"memory_mib\": -1, \"cpu_count\": 2}", &d),
	                 17);
	assert_int_equal(cfg("{\"eif_path\": \"a\", \"memory_mib\": 64, \"cpu_ids\": [\"1\"]}", &d),
	                 23);
	assert_int_equal(cfg("{\"eif_path\": \"a\", \"memory_mib\": 64, \"cpu_count\": 2, "
	                     "\"enclave_cid\": 2}",
	                     &d),
	                 3);
	assert_int_equal(cfg("[1, 2]", &d), 17);
	assert_int_equal(cfg("{\"eif_path\": \"a\"", &d), 17);
	assert_int_equal(cfg("{} trailing", &d), 17);
}

static void test_launch_request_mirrors_arguments(void **state)
{
	struct ne_launch_req q;

	(void)state;
	assert_int_equal(parse(NULL, "--eif-path", "x.eif", "--memory", "2G", "--cpu-ids", "3", "7",
	                       "--enclave-cid", "99", "--debug-mode", NULL),
	                 0);
	run_args_to_launch_req(&a, &q);
	assert_true(q.memory_mib == 2048);
	assert_int_equal(q.ncpu_ids, 2);
	assert_int_equal(q.cpu_ids[1], 7);
	assert_true(q.cid == 99);
	assert_string_equal(q.name, "x");
	assert_true(q.debug_mode);
	assert_null(q.image);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_command_line_and_default_name),
		cmocka_unit_test(test_help_wins_over_missing_arguments),
		cmocka_unit_test(test_memory_suffixes_are_binary_units_of_mib),
		cmocka_unit_test(test_cpu_ids_take_several_values),
		cmocka_unit_test(test_missing_and_conflicting_arguments),
		cmocka_unit_test(test_enclave_cid_rules),
		cmocka_unit_test(test_config_file_is_exclusive_except_attach_console),
		cmocka_unit_test(test_config_json_rules),
		cmocka_unit_test(test_launch_request_mirrors_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

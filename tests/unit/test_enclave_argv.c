/* SPDX-License-Identifier: Apache-2.0 */
/* run-enclave -> cloister-enclave: the private command line (src/cli/nitro/enclave_exec.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "cli/nitro/enclave.h"

static int count(char **argv)
{
	int n = 0;

	while (argv[n])
		n++;
	return n;
}

/* Build from @a/@p, parse it back, and compare every field the enclave process uses. */
static void round_trip(const struct run_args *a, const struct parent_identity *p)
{
	static struct enclave_argv args;
	struct run_args b;
	struct parent_identity q;
	struct cl_diag d = { "" };
	uint64_t size = 0;
	int fd = -1;

	assert_int_equal(enclave_argv_build("/x/cloister-enclave", a, p, 123456789, 7, &args), 0);
	assert_string_equal(args.argv[0], "/x/cloister-enclave");
	assert_int_equal(enclave_argv_parse(count(args.argv), args.argv, &b, &q, &size, &fd, &d),
	                 0);
	assert_true(size == 123456789);
	assert_int_equal(fd, 7);
	assert_string_equal(b.eif_path, a->eif_path);
	assert_true(b.memory_mib == a->memory_mib);
	assert_int_equal(b.ncpu_ids, a->ncpu_ids);
	if (a->ncpu_ids)
		assert_memory_equal(b.cpu_ids, a->cpu_ids, a->ncpu_ids * sizeof(a->cpu_ids[0]));
	else
		assert_int_equal(b.cpu_count, a->cpu_count);
	assert_true(b.cid == a->cid);
	assert_int_equal(b.debug_mode, a->debug_mode);
	assert_string_equal(b.name, a->name);
	assert_string_equal(q.role, p->role);
	assert_string_equal(q.id, p->id);
	assert_string_equal(q.role_from, p->role_from);
	assert_string_equal(q.id_from, p->id_from);
}

static void test_round_trip_with_cpu_ids_cid_debug_and_parent(void **state)
{
	struct run_args a = { .memory_mib = 4096,
		              .ncpu_ids = 3,
		              .cid = 4294967294ULL,
		              .debug_mode = true,
		              .attach_console = true };
	struct parent_identity p = { .role_from = "CLOISTER_PARENT_ROLE",
		                     .id_from = "/etc/cloister/parent.conf" };

	(void)state;
	snprintf(a.eif_path, sizeof(a.eif_path), "/srv/images/my app.eif");
	snprintf(a.name, sizeof(a.name), "my-app_1");
	a.cpu_ids[0] = 5;
	a.cpu_ids[1] = 1;
	a.cpu_ids[2] = 3;
	snprintf(p.role, sizeof(p.role), "arn:aws:iam::123456789012:role/parent");
	snprintf(p.id, sizeof(p.id), "i-0123456789abcdef0");
	round_trip(&a, &p);
}

static void test_round_trip_with_cpu_count_and_no_parent(void **state)
{
	struct run_args a = { .memory_mib = 64, .cpu_count = 2 };
	struct parent_identity p = { .role_from = "none", .id_from = "none" };

	(void)state;
	snprintf(a.eif_path, sizeof(a.eif_path), "/tmp/hello.eif");
	snprintf(a.name, sizeof(a.name), "hello");
	round_trip(&a, &p);
}

/* Parse a NULL-terminated argument list; the return code, the message in @d. */
static int parse(struct cl_diag *d, ...)
{
	char *argv[40];
	int argc = 0, fd;
	struct run_args a;
	struct parent_identity p;
	uint64_t size;
	va_list ap;

	argv[argc++] = (char *)"cloister-enclave";
	va_start(ap, d);
	while (argc < 39 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	return enclave_argv_parse(argc, argv, &a, &p, &size, &fd, d);
}

static void test_parse_refuses_what_run_enclave_never_builds(void **state)
{
	struct cl_diag d = { "" };

	(void)state;
	/* no run-enclave arguments at all (someone ran it by hand) */
	assert_int_equal(parse(&d, NULL), E_MISSING_ARGUMENT);
	assert_non_null(strstr(d.msg, "required"));
	assert_int_equal(parse(&d, "--report-fd", "3", "--eif-size", "10", NULL),
	                 E_MISSING_ARGUMENT);
	assert_int_equal(parse(&d, "--report-fd", NULL), E_MISSING_ARGUMENT);
	assert_int_equal(parse(&d, "--report-fd", "three", "--eif-size", "10", "--", "run-enclave",
	                       "--eif-path", "a.eif", "--memory", "64", "--cpu-count", "1", NULL),
	                 E_INVALID_ARGUMENT);
	assert_non_null(strstr(d.msg, "--report-fd 'three'"));
	assert_int_equal(parse(&d, "--report-fd", "3", "--eif-size", "-1", "--", "run-enclave",
	                       "--eif-path", "a.eif", "--memory", "64", "--cpu-count", "1", NULL),
	                 E_INVALID_ARGUMENT);
	assert_int_equal(parse(&d, "--verbose", "1", NULL), E_INVALID_ARGUMENT);
	assert_non_null(strstr(d.msg, "unknown option --verbose"));
	/* a PCR3 input no run-enclave would accept */
	assert_int_equal(parse(&d, "--report-fd", "3", "--eif-size", "10", "--parent-role",
	                       "has space", "--", "run-enclave", "--eif-path", "a.eif", "--memory",
	                       "64", "--cpu-count", "1", NULL),
	                 E_INVALID_ARGUMENT);
	/* the run-enclave part goes through run_args_parse(): its codes come back */
	assert_int_equal(parse(&d, "--report-fd", "3", "--eif-size", "10", "--", "run-enclave",
	                       "--eif-path", "a.eif", "--memory", "lots", "--cpu-count", "1", NULL),
	                 E_INVALID_ARGUMENT);
	assert_non_null(strstr(d.msg, "invalid memory 'lots'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_with_cpu_ids_cid_debug_and_parent),
		cmocka_unit_test(test_round_trip_with_cpu_count_and_no_parent),
		cmocka_unit_test(test_parse_refuses_what_run_enclave_never_builds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

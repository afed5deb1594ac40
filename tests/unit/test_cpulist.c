/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/pool/pool.h"

static int parse(const char *s, struct cpuset *set, struct cl_diag *d)
{
	return pool_cpulist_parse(s, strlen(s), set, d);
}

static void test_cpulist_parses_ranges_and_singles(void **state)
{
	struct cpuset s;

	(void)state;
	assert_int_equal(parse("2,3,6-9", &s, NULL), POOL_OK);
	assert_int_equal(cpuset_count(&s), 6);
	for (unsigned c = 0; c < 12; c++)
		assert_int_equal(cpuset_has(&s, c), c == 2 || c == 3 || (c >= 6 && c <= 9));
}

static void test_cpulist_ignores_whitespace_and_trailing_newline(void **state)
{
	struct cpuset a, b;

	(void)state;
	assert_int_equal(parse(" 2 , 3,\t6 - 9\n", &a, NULL), POOL_OK);
	assert_int_equal(parse("2,3,6-9", &b, NULL), POOL_OK);
	assert_true(cpuset_equal(&a, &b));
}

static void test_cpulist_empty_text_is_empty_set(void **state)
{
	struct cpuset s;

	(void)state;
	assert_int_equal(parse("", &s, NULL), POOL_OK);
	assert_int_equal(cpuset_count(&s), 0);
	assert_int_equal(parse(" \n", &s, NULL), POOL_OK);
	assert_int_equal(cpuset_count(&s), 0);
}

static void test_cpulist_rejects_reversed_range_with_fix(void **state)
{
	struct cl_diag d = { "" };
	struct cpuset s;

	(void)state;
	assert_int_equal(parse("9-6", &s, &d), POOL_ERR_CPULIST);
	assert_non_null(strstr(d.msg, "9-6"));
	assert_non_null(strstr(d.msg, "6-9"));
}

static void test_cpulist_rejects_malformed_tokens(void **state)
{
	static const char *const bad[] = { ",",     "1,",  ",1",  "1,,2", "1-", "-1",  "a",
		                           "1-2-3", "1;2", "0x2", "1 2",  "+1", "1-+2" };
	struct cpuset s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cl_diag d = { "" };

		/* "1 2" compacts to "12", which is a valid single CPU: whitespace is ignored. */
		if (!strcmp(bad[i], "1 2")) {
			assert_int_equal(parse(bad[i], &s, &d), POOL_OK);
			assert_true(cpuset_has(&s, 12));
			continue;
		}
		assert_int_equal(parse(bad[i], &s, &d), POOL_ERR_CPULIST);
		assert_true(d.msg[0] != '\0');
	}
}

static void test_cpulist_rejects_cpu_beyond_limit_without_overflow(void **state)
{
	struct cl_diag d = { "" };
	struct cpuset s;

	(void)state;
	assert_int_equal(parse("1023", &s, NULL), POOL_OK);
	assert_int_equal(parse("1024", &s, &d), POOL_ERR_CPU_RANGE);
	assert_non_null(strstr(d.msg, "1024"));
	/* 2^64 + 2 would wrap to 2 with naive arithmetic. */
	assert_int_equal(parse("18446744073709551618", &s, NULL), POOL_ERR_CPU_RANGE);
	assert_int_equal(parse("0-99999999999", &s, NULL), POOL_ERR_CPU_RANGE);
}

static void test_cpulist_rejects_nul_and_overlong_input(void **state)
{
	char big[POOL_CPULIST_MAX + 2];
	struct cpuset s;

	(void)state;
	assert_int_equal(pool_cpulist_parse("1\0"
	                                    "2",
	                                    3, &s, NULL),
	                 POOL_ERR_CPULIST);
	memset(big, ' ', sizeof(big));
	assert_int_equal(pool_cpulist_parse(big, sizeof(big), &s, NULL), POOL_ERR_CPULIST);
}

static void test_cpulist_format_is_canonical_and_round_trips(void **state)
{
	struct cpuset s, t;
	char buf[64];

	(void)state;
	assert_int_equal(parse("9,2,3,8,6,7,1023", &s, NULL), POOL_OK);
	assert_int_equal(pool_cpulist_format(&s, buf, sizeof(buf)), POOL_OK);
	assert_string_equal(buf, "2-3,6-9,1023");
	assert_int_equal(parse(buf, &t, NULL), POOL_OK);
	assert_true(cpuset_equal(&s, &t));
	assert_int_equal(pool_cpulist_format(&s, buf, 4), POOL_ERR_NOMEM);
	cpuset_zero(&s);
	assert_int_equal(pool_cpulist_format(&s, buf, sizeof(buf)), POOL_OK);
	assert_string_equal(buf, "");
}

static void test_cpuset_next_walks_in_order(void **state)
{
	struct cpuset s;
	int seen[4], n = 0;

	(void)state;
	cpuset_zero(&s);
	cpuset_add(&s, 1023);
	cpuset_add(&s, 64);
	cpuset_add(&s, 63);
	cpuset_add(&s, 0);
	cpuset_foreach(c, &s) seen[n++] = c;
	assert_int_equal(n, 4);
	assert_int_equal(seen[0], 0);
	assert_int_equal(seen[1], 63);
	assert_int_equal(seen[2], 64);
	assert_int_equal(seen[3], 1023);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpulist_parses_ranges_and_singles),
		cmocka_unit_test(test_cpulist_ignores_whitespace_and_trailing_newline),
		cmocka_unit_test(test_cpulist_empty_text_is_empty_set),
		cmocka_unit_test(test_cpulist_rejects_reversed_range_with_fix),
		cmocka_unit_test(test_cpulist_rejects_malformed_tokens),
		cmocka_unit_test(test_cpulist_rejects_cpu_beyond_limit_without_overflow),
		cmocka_unit_test(test_cpulist_rejects_nul_and_overlong_input),
		cmocka_unit_test(test_cpulist_format_is_canonical_and_round_trips),
		cmocka_unit_test(test_cpuset_next_walks_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

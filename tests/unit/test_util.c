/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
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

#include "lib/util/checked.h"
#include "lib/util/file.h"
#include "lib/util/hex.h"

static void test_checked_add_detects_overflow(void **state)
{
	uint64_t r;

	(void)state;
	assert_true(cl_add_u64(1, 2, &r));
	assert_int_equal(r, 3);
	assert_false(cl_add_u64(UINT64_MAX, 1, &r));
	assert_false(cl_mul_u64(UINT64_MAX / 2 + 1, 2, &r));
}

static void test_range_within_rejects_wrapping_ranges(void **state)
{
	(void)state;
	assert_true(cl_range_within(0, 10, 10));
	assert_true(cl_range_within(10, 0, 10));
	assert_false(cl_range_within(1, 10, 10));
	assert_false(cl_range_within(11, 0, 10));
	assert_false(cl_range_within(UINT64_MAX, 2, UINT64_MAX));
}

static void test_align_up(void **state)
{
	uint64_t r;

	(void)state;
	assert_true(cl_align_up_u64(1, 4096, &r));
	assert_int_equal(r, 4096);
	assert_true(cl_align_up_u64(8192, 4096, &r));
	assert_int_equal(r, 8192);
	assert_false(cl_align_up_u64(UINT64_MAX, 4096, &r));
}

static void test_big_endian_round_trip(void **state)
{
	uint8_t b[8];

	(void)state;
	cl_put_be64(b, 0x0102030405060708ULL);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[7], 8);
	assert_true(cl_get_be64(b) == 0x0102030405060708ULL);
	cl_put_be16(b, 0xabcd);
	assert_int_equal(b[0], 0xab);
	assert_int_equal(cl_get_be16(b), 0xabcd);
}

static void test_hex_encode_decode(void **state)
{
	const uint8_t in[] = { 0x00, 0x9f, 0xff, 0x10 };
	uint8_t out[4];
	char hex[9];

	(void)state;
	cl_hex_encode(in, sizeof(in), hex);
	assert_string_equal(hex, "009fff10");
	assert_true(cl_hex_decode("009FFF10", out, sizeof(out)));
	assert_memory_equal(in, out, sizeof(in));
	assert_false(cl_hex_decode("009fff1", out, sizeof(out)));
	assert_false(cl_hex_decode("009fff1g", out, sizeof(out)));
}

static void test_file_read_all_refuses_files_over_the_limit(void **state)
{
	char path[] = "/tmp/cloister-test-XXXXXX";
	struct cl_diag d = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(cl_write_full(fd, "hello", 5), 0);
	close(fd);

	assert_int_equal(cl_file_read_all(path, 5, &buf, &len, &d), 0);
	assert_int_equal(len, 5);
	assert_string_equal((char *)buf, "hello");
	free(buf);

	assert_true(cl_file_read_all(path, 4, &buf, &len, &d) < 0);
	assert_non_null(strstr(d.msg, "more than the 4"));
	unlink(path);

	assert_true(cl_file_read_all(path, 4, &buf, &len, &d) < 0);
	assert_non_null(strstr(d.msg, "cannot open"));
}

static void test_mkdir_p_makes_parents_and_names_what_it_cannot_make(void **state)
{
	char root[] = "/tmp/cloister-mkdir-XXXXXX", path[128], file[128];
	struct cl_diag d = { 0 };
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/a/b/c/", root);
	assert_int_equal(cl_mkdir_p(path, &d), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(cl_mkdir_p(path, &d), 0); /* all there already */
	/* a file where a directory must go */
	snprintf(file, sizeof(file), "%s/a/f", root);
	assert_int_equal(cl_file_write_atomic(file, "x", 1, 0600, &d), 0);
	snprintf(path, sizeof(path), "%s/a/f/g", root);
	assert_int_equal(cl_mkdir_p(path, &d), -ENOTDIR);
	assert_non_null(strstr(d.msg, path));
	assert_int_equal(cl_mkdir_p("", &d), -ENAMETOOLONG);
	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	assert_int_equal(system(path), 0);
}

static void test_diag_prefix_keeps_the_original_message(void **state)
{
	struct cl_diag d;

	(void)state;
	cl_diag_set(&d, "bad CRC %#x", 0x1234);
	cl_diag_prefix(&d, "reading %s", "a.eif");
	assert_string_equal(d.msg, "reading a.eif: bad CRC 0x1234");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checked_add_detects_overflow),
		cmocka_unit_test(test_range_within_rejects_wrapping_ranges),
		cmocka_unit_test(test_align_up),
		cmocka_unit_test(test_big_endian_round_trip),
		cmocka_unit_test(test_hex_encode_decode),
		cmocka_unit_test(test_file_read_all_refuses_files_over_the_limit),
		cmocka_unit_test(test_mkdir_p_makes_parents_and_names_what_it_cannot_make),
		cmocka_unit_test(test_diag_prefix_keeps_the_original_message),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}

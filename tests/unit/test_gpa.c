/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/kvm/gpa.h"

static uint8_t low[0x4000];
static uint8_t high[0x2000];

static void two_regions(struct gpa_space *s)
{
	memset(s, 0, sizeof(*s));
	assert_true(gpa_add_region(s, 0x1000, sizeof(low), low));
	assert_true(gpa_add_region(s, 0x100000000ULL, sizeof(high), high));
}

static void test_gpa_translates_inside_region(void **state)
{
	struct gpa_space s;

	(void)state;
	two_regions(&s);
	assert_ptr_equal(gpa_translate(&s, 0x1000, 1), low);
	assert_ptr_equal(gpa_translate(&s, 0x1000, sizeof(low)), low);
	assert_ptr_equal(gpa_translate(&s, 0x1234, 0x10), low + 0x234);
	assert_ptr_equal(gpa_translate(&s, 0x100000010ULL, 0x1ff0), high + 0x10);
	assert_int_equal(gpa_ram_size(&s), sizeof(low) + sizeof(high));
}

static void test_gpa_rejects_out_of_range(void **state)
{
	struct gpa_space s;

	(void)state;
	two_regions(&s);
	assert_null(gpa_translate(&s, 0, 1)); /* below the first region */
	assert_null(gpa_translate(&s, 0xfff, 2)); /* starts below, ends inside */
	assert_null(gpa_translate(&s, 0x5000, 1)); /* just past the end */
	assert_null(gpa_translate(&s, 0x4fff, 2)); /* crosses the end */
	assert_null(gpa_translate(&s, 0x80000000, 4)); /* in the hole */
	assert_null(gpa_translate(&s, 0x100002000ULL, 1));
}

static void test_gpa_rejects_oversized_and_wrapping_lengths(void **state)
{
	struct gpa_space s;

	(void)state;
	two_regions(&s);
	assert_null(gpa_translate(&s, 0x1000, sizeof(low) + 1));
	assert_null(gpa_translate(&s, 0x1000, UINT64_MAX));
	assert_null(gpa_translate(&s, 0x2000, UINT64_MAX - 0x1000)); /* gpa + len wraps to 0x1000 */
	assert_null(gpa_translate(&s, UINT64_MAX, 2));
	assert_null(gpa_translate(&s, UINT64_MAX, 0));
}

static void test_gpa_range_spanning_two_regions_is_refused(void **state)
{
	struct gpa_space s;
	static uint8_t a[0x1000], b[0x1000];

	(void)state;
	memset(&s, 0, sizeof(s));
	/* Adjacent in guest space but not in host space: one pointer cannot cover both. */
	assert_true(gpa_add_region(&s, 0x0, sizeof(a), a));
	assert_true(gpa_add_region(&s, 0x1000, sizeof(b), b));
	assert_null(gpa_translate(&s, 0xff0, 0x20));
	assert_ptr_equal(gpa_translate(&s, 0x1000, 0x20), b);
}

static void test_gpa_zero_length_at_end_is_allowed(void **state)
{
	struct gpa_space s;

	(void)state;
	two_regions(&s);
	assert_ptr_equal(gpa_translate(&s, 0x5000, 0), low + sizeof(low));
	assert_null(gpa_translate(&s, 0x5001, 0));
}

static void test_gpa_add_region_refuses_overlap_wrap_and_overflowing_table(void **state)
{
	struct gpa_space s;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_true(gpa_add_region(&s, 0x1000, 0x1000, low));
	assert_false(gpa_add_region(&s, 0x1800, 0x1000, high)); /* overlaps */
	assert_false(gpa_add_region(&s, 0x0, 0x1001, high)); /* overlaps the start */
	assert_false(gpa_add_region(&s, UINT64_MAX - 10, 0x1000, high)); /* wraps */
	assert_false(gpa_add_region(&s, 0x9000, 0, high)); /* empty */
	assert_true(gpa_add_region(&s, 0x2000, 0x1000, high));
	assert_false(gpa_add_region(&s, 0x10000, 0x1000, high)); /* table full */
	assert_int_equal(s.nregions, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpa_translates_inside_region),
		cmocka_unit_test(test_gpa_rejects_out_of_range),
		cmocka_unit_test(test_gpa_rejects_oversized_and_wrapping_lengths),
		cmocka_unit_test(test_gpa_range_spanning_two_regions_is_refused),
		cmocka_unit_test(test_gpa_zero_length_at_end_is_allowed),
		cmocka_unit_test(test_gpa_add_region_refuses_overlap_wrap_and_overflowing_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

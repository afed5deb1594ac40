/* SPDX-License-Identifier: Apache-2.0 */
/* util/json.c: output must equal serde_json's, character for character (expected strings are
 * what serde_json::to_string / to_string_pretty print for the same values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "lib/util/json.h"

static void test_json_pretty_matches_serde(void **state)
{
	struct cl_json j;
	char *s;

	(void)state;
	cl_json_init(&j, true);
	cl_json_begin_object(&j);
	cl_json_key(&j, "a");
	cl_json_uint(&j, 1);
	cl_json_key(&j, "empty_obj");
	cl_json_begin_object(&j);
	cl_json_end_object(&j);
	cl_json_key(&j, "empty_arr");
	cl_json_begin_array(&j);
	cl_json_end_array(&j);
	cl_json_key(&j, "arr");
	cl_json_begin_array(&j);
	cl_json_bool(&j, true);
	cl_json_null(&j);
	cl_json_begin_object(&j);
	cl_json_key(&j, "x");
	cl_json_int(&j, -2);
	cl_json_end_object(&j);
	cl_json_end_array(&j);
	cl_json_end_object(&j);
	s = cl_json_finish(&j);
	assert_string_equal(s, "{\n  \"a\": 1,\n  \"empty_obj\": {},\n  \"empty_arr\": [],\n"
	                       "  \"arr\": [\n    true,\n    null,\n    {\n      \"x\": -2\n    }\n"
	                       "  ]\n}");
	free(s);
}

static void test_json_escapes_like_serde(void **state)
{
	struct cl_json j;
	char *s;

	(void)state;
	cl_json_init(&j, false);
	cl_json_string(&j, "a/b \"q\" \\ \b\f\n\r\t \x01\x1f \x7f caf\xc3\xa9");
	s = cl_json_finish(&j);
	/* '/' and DEL and UTF-8 unescaped; other controls as \u00xx lower-case */
	assert_string_equal(
	        s, "\"a/b \\\"q\\\" \\\\ \\b\\f\\n\\r\\t \\u0001\\u001f \x7f caf\xc3\xa9\"");
	free(s);
}

static void test_json_values_sorted_and_numbers_like_serde(void **state)
{
	struct json_object *v = json_tokener_parse(
	        "{\"b\": [1.50, 1e16, 1e15, 0.0001, 1.5e-7, -3.25, 100.0, 18446744073709551615],"
	        " \"a\": {\"z\": 1, \"Z\": 2, \"aa\": -9223372036854775808}}");
	struct cl_json j;
	char *s;

	(void)state;
	assert_non_null(v);
	cl_json_init(&j, false);
	cl_json_value(&j, v);
	s = cl_json_finish(&j);
	assert_string_equal(s, "{\"a\":{\"Z\":2,\"aa\":-9223372036854775808,\"z\":1},"
	                       "\"b\":[1.5,1e16,1000000000000000.0,0.0001,1.5e-7,-3.25,100.0,"
	                       "18446744073709551615]}");
	free(s);
	json_object_put(v);
}

static void test_json_unbalanced_is_an_error(void **state)
{
	struct cl_json j;

	(void)state;
	cl_json_init(&j, true);
	cl_json_begin_object(&j);
	assert_null(cl_json_finish(&j));
	cl_json_init(&j, true);
	cl_json_end_array(&j);
	assert_null(cl_json_finish(&j));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_pretty_matches_serde),
		cmocka_unit_test(test_json_escapes_like_serde),
		cmocka_unit_test(test_json_values_sorted_and_numbers_like_serde),
		cmocka_unit_test(test_json_unbalanced_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

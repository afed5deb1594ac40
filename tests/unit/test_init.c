/* SPDX-License-Identifier: Apache-2.0 */
/* The pure logic of cloister-init (guest/init/init_parse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cbor.h>
#include <cmocka.h>

#include "../../guest/init/init_parse.h"

/* A writable copy with the spare byte init_split_lines() needs. */
static char *dup_text(const char *s)
{
	size_t n = strlen(s);
	char *b = malloc(n + 1);

	assert_non_null(b);
	memcpy(b, s, n + 1);
	return b;
}

static void test_init_cmd_keeps_empty_arguments_and_last_unterminated_line(void **state)
{
	char *buf = dup_text("/bin/echo\n\nhello world\nlast");
	struct init_list l;
	size_t line;

	(void)state;
	assert_int_equal(init_split_lines(buf, strlen("/bin/echo\n\nhello world\nlast"),
	                                  INIT_SPLIT_KEEP_EMPTY, &l, &line),
	                 INIT_OK);
	assert_int_equal(l.count, 4);
	assert_string_equal(l.strings[0], "/bin/echo");
	assert_string_equal(l.strings[1], "");
	assert_string_equal(l.strings[2], "hello world");
	assert_string_equal(l.strings[3], "last");
	assert_null(l.strings[4]);
	init_list_free(&l);
	free(buf);
}

static void test_init_cmd_trailing_newline_adds_no_argument(void **state)
{
	char *buf = dup_text("/app\n--flag\n");
	struct init_list l;
	size_t line;

	(void)state;
	assert_int_equal(init_split_lines(buf, 12, INIT_SPLIT_KEEP_EMPTY, &l, &line), INIT_OK);
	assert_int_equal(l.count, 2);
	assert_string_equal(l.strings[1], "--flag");
	init_list_free(&l);
	free(buf);
}

static void test_init_empty_cmd_is_an_error(void **state)
{
	char buf[1];
	struct init_list l;
	size_t line;

	(void)state;
	assert_int_equal(init_split_lines(buf, 0, INIT_SPLIT_KEEP_EMPTY, &l, &line),
	                 INIT_ERR_EMPTY);
}

static void test_init_rejects_nul_inside_cmd(void **state)
{
	char buf[8] = { '/', 'a', 0, 'b', '\n' };
	struct init_list l;
	size_t line;

	(void)state;
	assert_int_equal(init_split_lines(buf, 5, INIT_SPLIT_KEEP_EMPTY, &l, &line),
	                 INIT_ERR_NUL_BYTE);
}

static void test_init_env_skips_blank_lines_and_rejects_missing_equals(void **state)
{
	char *good = dup_text("PATH=/bin\n\nA=b=c\nEMPTY=\n");
	char *bad = dup_text("A=1\nNOEQUALS\n");
	char *noname = dup_text("=value\n");
	struct init_list l;
	size_t line;

	(void)state;
	assert_int_equal(init_split_lines(good, strlen("PATH=/bin\n\nA=b=c\nEMPTY=\n"),
	                                  INIT_SPLIT_SKIP_EMPTY, &l, &line),
	                 INIT_OK);
	assert_int_equal(l.count, 3);
	assert_string_equal(l.strings[1], "A=b=c");
	assert_string_equal(l.strings[2], "EMPTY=");
	assert_string_equal(init_env_path(&l), "/bin");
	init_list_free(&l);
	assert_int_equal(
	        init_split_lines(bad, strlen("A=1\nNOEQUALS\n"), INIT_SPLIT_SKIP_EMPTY, &l, &line),
	        INIT_ERR_BAD_ENV);
	assert_int_equal(line, 2);
	assert_int_equal(init_split_lines(noname, 7, INIT_SPLIT_SKIP_EMPTY, &l, &line),
	                 INIT_ERR_BAD_ENV);
	free(good);
	free(bad);
	free(noname);
}

static void test_init_empty_env_is_an_empty_list(void **state)
{
	char buf[1];
	struct init_list l;
	size_t line;

	(void)state;
	assert_int_equal(init_split_lines(buf, 0, INIT_SPLIT_SKIP_EMPTY, &l, &line), INIT_OK);
	assert_int_equal(l.count, 0);
	assert_null(l.strings[0]);
	assert_null(init_env_path(&l));
	init_list_free(&l);
}

static void test_init_module_list_skips_comments_and_rejects_paths(void **state)
{
	const char *txt = "# order matters\nvirtio_mmio\nvsock\n\nnsm\n";
	char *buf = dup_text(txt);
	char *bad = dup_text("vsock\n../../etc/evil\n");
	struct init_list l;
	size_t line;

	(void)state;
	assert_int_equal(init_split_lines(buf, strlen(txt), INIT_SPLIT_MODULES, &l, &line),
	                 INIT_OK);
	assert_int_equal(l.count, 3);
	assert_string_equal(l.strings[0], "virtio_mmio");
	assert_string_equal(l.strings[2], "nsm");
	init_list_free(&l);
	assert_int_equal(init_split_lines(bad, strlen("vsock\n../../etc/evil\n"),
	                                  INIT_SPLIT_MODULES, &l, &line),
	                 INIT_ERR_BAD_MODULE);
	assert_int_equal(line, 2);
	free(buf);
	free(bad);
}

static void test_init_cmdline_flags(void **state)
{
	struct init_cmdline f;

	(void)state;
	init_parse_cmdline("reboot=k console=ttyS0", &f);
	assert_true(f.heartbeat);
	assert_false(f.measure);
	assert_int_equal(f.exit_port, INIT_EXIT_PORT);
	init_parse_cmdline("console=ttyS0 cloister.heartbeat=0 cloister.measure "
	                   "cloister.exit_port=0\n",
	                   &f);
	assert_false(f.heartbeat);
	assert_true(f.measure);
	assert_int_equal(f.exit_port, 0);
	init_parse_cmdline("cloister.exit_port=12x cloister.heartbeatx=0 cloister.measure=0", &f);
	assert_true(f.heartbeat);
	assert_false(f.measure);
	assert_int_equal(f.exit_port, INIT_EXIT_PORT);
}

static void test_init_exit_record_distinguishes_status_and_signal(void **state)
{
	uint8_t rec[INIT_EXIT_RECORD_SIZE];
	char line[96];
	int exited3 = 3 << 8; /* the wait status encoding: W_EXITCODE(3, 0) */
	int killed9 = 9;

	(void)state;
	assert_true(WIFEXITED(exited3) && WEXITSTATUS(exited3) == 3);
	init_exit_record(exited3, rec);
	assert_int_equal(rec[0], 0xB8);
	assert_int_equal(rec[1], 0);
	assert_int_equal(rec[2], 3);
	assert_int_equal(rec[3], 0);
	init_exit_record(killed9, rec);
	assert_int_equal(rec[1], 1);
	assert_int_equal(rec[2], 9);
	init_exit_line(exited3, line, sizeof(line));
	assert_string_equal(line, "cloister-init: app exited: status=3");
	init_exit_line(killed9, line, sizeof(line));
	assert_string_equal(line, "cloister-init: app exited: signal=9");
}

/* Decode with libcbor, independently of the encoder under test. */
static void test_init_nsm_extend_request_decodes_as_nsm_api_shape(void **state)
{
	uint8_t buf[INIT_NSM_REQUEST_MAX], data[300];
	struct cbor_load_result res;
	cbor_item_t *root, *inner;
	struct cbor_pair *outer_pair, *fields;
	size_t n;

	(void)state;
	memset(data, 0x5a, sizeof(data));
	n = init_nsm_extend_request(16, "cloister:cmd:", data, sizeof(data), buf, sizeof(buf));
	assert_true(n > 0);
	root = cbor_load(buf, n, &res);
	assert_non_null(root);
	assert_int_equal(res.read, n);
	assert_true(cbor_isa_map(root));
	assert_int_equal(cbor_map_size(root), 1);
	outer_pair = cbor_map_handle(root);
	assert_int_equal(cbor_string_length(outer_pair[0].key), 9);
	assert_memory_equal(cbor_string_handle(outer_pair[0].key), "ExtendPCR", 9);
	inner = outer_pair[0].value;
	assert_int_equal(cbor_map_size(inner), 2);
	fields = cbor_map_handle(inner);
	assert_memory_equal(cbor_string_handle(fields[0].key), "index", 5);
	assert_int_equal(cbor_get_int(fields[0].value), 16);
	assert_memory_equal(cbor_string_handle(fields[1].key), "data", 4);
	assert_true(cbor_isa_bytestring(fields[1].value));
	assert_int_equal(cbor_bytestring_length(fields[1].value), 13 + sizeof(data));
	assert_memory_equal(cbor_bytestring_handle(fields[1].value), "cloister:cmd:", 13);
	assert_memory_equal(cbor_bytestring_handle(fields[1].value) + 13, data, sizeof(data));
	cbor_decref(&root);
}

static void test_init_nsm_requests_refuse_too_small_buffers(void **state)
{
	uint8_t buf[16], big[INIT_MEASURE_CHUNK];
	uint8_t req[INIT_NSM_REQUEST_MAX];

	(void)state;
	memset(big, 1, sizeof(big));
	assert_int_equal(init_nsm_extend_request(16, NULL, big, 100, buf, sizeof(buf)), 0);
	/* The largest chunk with the longest tag still fits one NSM request. */
	assert_true(init_nsm_extend_request(16, "cloister:workdir:", big, sizeof(big), req,
	                                    sizeof(req)) > 0);
	assert_int_equal(init_nsm_lock_request(16, buf, 4), 0);
}

static void test_init_nsm_lock_request_and_response_check(void **state)
{
	/* {"LockPCR": {"index": 16}} written out by hand from RFC 8949. */
	static const uint8_t want[] = { 0xa1, 0x67, 'L', 'o', 'c', 'k', 'P', 'C', 'R',
		                        0xa1, 0x65, 'i', 'n', 'd', 'e', 'x', 0x10 };
	static const uint8_t ok[] = { 0xa1, 0x69, 'E',  'x',  't', 'e', 'n', 'd', 'P',
		                      'C',  'R',  0xa1, 0x64, 'd', 'a', 't', 'a', 0x40 };
	static const uint8_t err[] = { 0xa1, 0x65, 'E', 'r', 'r', 'o', 'r', 0x6d, 'R', 'e', 'a',
		                       'd',  'O',  'n', 'l', 'y', 'I', 'n', 'd',  'e', 'x' };
	uint8_t buf[64];

	(void)state;
	assert_int_equal(init_nsm_lock_request(16, buf, sizeof(buf)), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_true(init_nsm_response_ok(ok, sizeof(ok), "ExtendPCR"));
	assert_false(init_nsm_response_ok(err, sizeof(err), "ExtendPCR"));
	assert_false(init_nsm_response_ok(ok, 5, "ExtendPCR"));
}

static void test_init_nsm_lock_answer_is_a_bare_text_string(void **state)
{
	/* The NSM answers LockPCR with the unit variant: text(7) "LockPCR", not a map. */
	static const uint8_t lock[] = { 0x67, 'L', 'o', 'c', 'k', 'P', 'C', 'R' };
	static const uint8_t other[] = { 0x68, 'L', 'o', 'c', 'k', 'P', 'C', 'R', 's' };
	static const uint8_t extra[] = { 0x67, 'L', 'o', 'c', 'k', 'P', 'C', 'R', 0x00 };

	(void)state;
	assert_true(init_nsm_response_ok(lock, sizeof(lock), "LockPCR"));
	assert_false(init_nsm_response_ok(lock, sizeof(lock), "ExtendPCR"));
	assert_false(init_nsm_response_ok(other, sizeof(other), "LockPCR"));
	assert_false(init_nsm_response_ok(lock, sizeof(lock) - 1, "LockPCR"));
	assert_false(init_nsm_response_ok(extra, sizeof(extra), "LockPCR"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_cmd_keeps_empty_arguments_and_last_unterminated_line),
		cmocka_unit_test(test_init_cmd_trailing_newline_adds_no_argument),
		cmocka_unit_test(test_init_empty_cmd_is_an_error),
		cmocka_unit_test(test_init_rejects_nul_inside_cmd),
		cmocka_unit_test(test_init_env_skips_blank_lines_and_rejects_missing_equals),
		cmocka_unit_test(test_init_empty_env_is_an_empty_list),
		cmocka_unit_test(test_init_module_list_skips_comments_and_rejects_paths),
		cmocka_unit_test(test_init_cmdline_flags),
		cmocka_unit_test(test_init_exit_record_distinguishes_status_and_signal),
		cmocka_unit_test(test_init_nsm_extend_request_decodes_as_nsm_api_shape),
		cmocka_unit_test(test_init_nsm_requests_refuse_too_small_buffers),
		cmocka_unit_test(test_init_nsm_lock_request_and_response_check),
		cmocka_unit_test(test_init_nsm_lock_answer_is_a_bare_text_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

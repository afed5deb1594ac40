/* SPDX-License-Identifier: Apache-2.0 */
/* The describe record between an enclave process and describe-enclaves (src/cli/nitro). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/nitro/enclave.h"

static void sample(struct enclave_info *e)
{
	memset(e, 0, sizeof(*e));
	strcpy(e->name, "my app 2");
	strcpy(e->id, "i-0123456789abcdef0-enc17ad2edcbfdad4b");
	e->pid = 4242;
	e->cid = 16;
	e->cpus[0] = 1;
	e->cpus[1] = 5;
	e->ncpus = 2;
	e->memory_mib = 258;
	e->debug_mode = true;
	for (int i = 0; i < EIF_PCR_SIZE; i++) {
		e->meas.pcr0[i] = (uint8_t)i;
		e->meas.pcr1[i] = (uint8_t)(0xff - i);
		e->meas.pcr2[i] = 0xab;
	}
}

/* A reply with the record of sample() written out by hand (independently of the formatter). */
static const char *hand_written(void)
{
	static char buf[2048];
	char p0[97], p1[97], p2[97];

	for (int i = 0; i < EIF_PCR_SIZE; i++) {
		sprintf(p0 + 2 * i, "%02x", i);
		sprintf(p1 + 2 * i, "%02x", 0xff - i);
		sprintf(p2 + 2 * i, "%02x", 0xab);
	}
	snprintf(buf, sizeof(buf),
	         "id i-0123456789abcdef0-enc17ad2edcbfdad4b\npid 4242\ncid 16\nmib 258\n"
	         "cpus 1,5\nstate RUNNING\nflags DEBUG_MODE\npcr0 %s\npcr1 %s\npcr2 %s\n"
	         "name my app 2\n\n",
	         p0, p1, p2);
	return buf;
}

static int parse_str(const char *s, struct enclave_info *out)
{
	char *copy = strdup(s);
	int rc;

	assert_non_null(copy);
	memset(out, 0, sizeof(*out));
	rc = enclave_describe_parse(copy, strlen(s), out);
	free(copy);
	return rc;
}

static void test_describe_format_writes_the_documented_record(void **state)
{
	struct enclave_info e;
	char buf[4096];

	(void)state;
	sample(&e);
	assert_int_equal(enclave_describe_format(&e, buf, sizeof(buf)), strlen(hand_written()));
	assert_string_equal(buf, hand_written());
}

static void test_describe_parse_reads_every_field_and_the_metadata(void **state)
{
	struct enclave_info got, want;
	char reply[4096];

	(void)state;
	sample(&want);
	snprintf(reply, sizeof(reply), "%s{\"ImageName\":\"x\"}", hand_written());
	assert_int_equal(parse_str(reply, &got), 0);
	assert_string_equal(got.name, "my app 2");
	assert_string_equal(got.id, want.id);
	assert_int_equal(got.pid, 4242);
	assert_int_equal(got.cid, 16);
	assert_int_equal(got.ncpus, 2);
	assert_int_equal(got.cpus[0], 1);
	assert_int_equal(got.cpus[1], 5);
	assert_int_equal(got.memory_mib, 258);
	assert_true(got.debug_mode);
	assert_false(got.terminating);
	assert_false(got.meas.has_pcr8);
	assert_memory_equal(got.meas.pcr0, want.meas.pcr0, EIF_PCR_SIZE);
	assert_memory_equal(got.meas.pcr1, want.meas.pcr1, EIF_PCR_SIZE);
	assert_memory_equal(got.meas.pcr2, want.meas.pcr2, EIF_PCR_SIZE);
	assert_string_equal(got.metadata, "{\"ImageName\":\"x\"}");
	assert_int_equal(got.metadata_len, strlen("{\"ImageName\":\"x\"}"));
	free(got.metadata);
}

static void test_describe_round_trip_keeps_pcr8_and_terminating(void **state)
{
	struct enclave_info e, got;
	char buf[4096];

	(void)state;
	sample(&e);
	e.terminating = true;
	e.debug_mode = false;
	e.meas.has_pcr8 = true;
	memset(e.meas.pcr8, 0x5a, EIF_PCR_SIZE);
	assert_true(enclave_describe_format(&e, buf, sizeof(buf)) > 0);
	assert_int_equal(parse_str(buf, &got), 0);
	assert_true(got.terminating);
	assert_false(got.debug_mode);
	assert_true(got.meas.has_pcr8);
	assert_memory_equal(got.meas.pcr8, e.meas.pcr8, EIF_PCR_SIZE);
	assert_null(got.metadata);
}

static void test_describe_parse_rejects_a_missing_key(void **state)
{
	static const char *const keys[] = { "id ",    "pid ",  "cid ",  "mib ",  "cpus ", "state ",
		                            "flags ", "pcr0 ", "pcr1 ", "pcr2 ", "name " };
	struct enclave_info got;

	(void)state;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		char reply[2048], *line, *nl;

		strcpy(reply, hand_written());
		line = strstr(reply, keys[k]);
		assert_non_null(line);
		nl = strchr(line, '\n');
		memmove(line, nl + 1, strlen(nl + 1) + 1);
		assert_int_equal(parse_str(reply, &got), -1);
		free(got.metadata);
	}
}

static void test_describe_parse_rejects_malformed_values(void **state)
{
	static const struct {
		const char *from, *to;
	} bad[] = {
		{ "pid 4242", "pid -1" },        { "pid 4242", "pid 0" },
		{ "cid 16", "cid 16x" },         { "cid 16", "cid 4294967296" },
		{ "cpus 1,5", "cpus 1,,x" },     { "cpus 1,5", "cpus " },
		{ "state RUNNING", "state ON" }, { "flags DEBUG_MODE", "flags debug" },
		{ "pcr0 00", "pcr0 zz" },        { "mib 258", "mib " },
	};
	struct enclave_info got;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char reply[2048], *at;
		size_t fl = strlen(bad[i].from), tl = strlen(bad[i].to);

		strcpy(reply, hand_written());
		at = strstr(reply, bad[i].from);
		assert_non_null(at);
		memmove(at + tl, at + fl, strlen(at + fl) + 1);
		memcpy(at, bad[i].to, tl);
		assert_int_equal(parse_str(reply, &got), -1);
		free(got.metadata);
	}
}

static void test_describe_parse_rejects_duplicates_and_truncation(void **state)
{
	struct enclave_info got;
	char reply[4096];
	const char *hw = hand_written();

	(void)state;
	snprintf(reply, sizeof(reply), "cid 17\n%s", hw);
	assert_int_equal(parse_str(reply, &got), -1);
	free(got.metadata);
	/* no empty line: the process died mid-reply */
	snprintf(reply, sizeof(reply), "%.*s", (int)strlen(hw) - 1, hw);
	assert_int_equal(parse_str(reply, &got), -1);
	free(got.metadata);
	assert_int_equal(parse_str("", &got), -1);
	/* a NUL byte inside a line */
	memcpy(reply, hw, strlen(hw) + 1);
	reply[3] = '\0';
	memset(&got, 0, sizeof(got));
	assert_int_equal(enclave_describe_parse(reply, strlen(hw), &got), -1);
	free(got.metadata);
}

static void test_describe_format_refuses_a_short_buffer(void **state)
{
	struct enclave_info e;
	char buf[64];

	(void)state;
	sample(&e);
	assert_int_equal(enclave_describe_format(&e, buf, sizeof(buf)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe_format_writes_the_documented_record),
		cmocka_unit_test(test_describe_parse_reads_every_field_and_the_metadata),
		cmocka_unit_test(test_describe_round_trip_keeps_pcr8_and_terminating),
		cmocka_unit_test(test_describe_parse_rejects_a_missing_key),
		cmocka_unit_test(test_describe_parse_rejects_malformed_values),
		cmocka_unit_test(test_describe_parse_rejects_duplicates_and_truncation),
		cmocka_unit_test(test_describe_format_refuses_a_short_buffer),
	};

	return cmocka_run_group_tests_name("nitro_describe", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* The boot timeline: first sighting wins, boot-timer stages map to events, and the JSON and
 * log line say what was and was not seen. Times are set by hand where a value is asserted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cloister/boot_timer.h"
#include "vmm/timeline.h"

#define MS 1000000ull

static void test_timeline_first_mark_wins(void **state)
{
	struct timeline t;
	uint64_t first;

	(void)state;
	timeline_init(&t, 0);
	assert_true(t.at_ns[TL_START] > 0);
	assert_true(timeline_ms(&t, TL_UART) < 0);
	assert_true(timeline_mark(&t, TL_UART));
	first = t.at_ns[TL_UART];
	assert_true(first >= t.at_ns[TL_START]);
	assert_false(timeline_mark(&t, TL_UART));
	assert_int_equal(t.at_ns[TL_UART], first);
	assert_true(timeline_ms(&t, TL_UART) >= 0);
	assert_false(timeline_mark(&t, TL_COUNT)); /* out of range: ignored */
}

static void test_timeline_stages_from_the_guest(void **state)
{
	struct timeline t;

	(void)state;
	timeline_init(&t, 0);
	assert_true(timeline_mark_stage(&t, CL_BOOT_STAGE_INIT));
	assert_true(timeline_mark_stage(&t, CL_BOOT_STAGE_DEVICES));
	assert_true(timeline_mark_stage(&t, CL_BOOT_STAGE_APP));
	assert_true(t.at_ns[TL_INIT] && t.at_ns[TL_DEVICES] && t.at_ns[TL_APP]);
	/* Anything else a guest writes there is ignored, whatever its value. */
	for (unsigned v = 0; v < 256; v++)
		if (v < CL_BOOT_STAGE_INIT || v > CL_BOOT_STAGE_APP)
			assert_false(timeline_mark_stage(&t, (uint8_t)v));
	assert_int_equal(t.at_ns[TL_HEARTBEAT], 0);
	assert_int_equal(t.at_ns[TL_VIRTIO], 0);
}

/* A timeline with hand-set times: origin 1000 ms, then the offsets given (0 = not seen). */
static void fixed(struct timeline *t, const unsigned *ms)
{
	timeline_init(t, 1000 * MS);
	for (unsigned i = TL_READY; i < TL_COUNT; i++)
		t->at_ns[i] = ms[i] ? (1000 + ms[i]) * MS : 0;
}

static void test_timeline_json_names_each_event(void **state)
{
	const unsigned ms[TL_COUNT] = {
		[TL_READY] = 30,  [TL_VCPU_RUN] = 31,  [TL_UART] = 900,
		[TL_INIT] = 4000, [TL_DEVICES] = 4500, [TL_HEARTBEAT] = 4800
	};
	struct timeline t;
	char buf[512];
	int n;

	(void)state;
	fixed(&t, ms);
	n = timeline_json(&t, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_string_equal(buf, "{\"unit\":\"ms\",\"ready\":30.000,\"memory\":null,"
	                         "\"vcpu_run\":31.000,"
	                         "\"uart\":900.000,\"init\":4000.000,\"devices\":4500.000,"
	                         "\"virtio\":null,\"heartbeat\":4800.000,\"app\":null,"
	                         "\"sealed\":null}");
	/* Too small a buffer is an error, never a truncated object. */
	for (size_t len = 0; len <= (size_t)n; len++)
		assert_int_equal(timeline_json(&t, buf, len), -1);
	assert_int_equal(timeline_json(&t, buf, (size_t)n + 1), n);
}

static void test_timeline_summary_phases(void **state)
{
	const unsigned with_init[TL_COUNT] = {
		[TL_VCPU_RUN] = 31, [TL_INIT] = 4031, [TL_HEARTBEAT] = 4881
	};
	const unsigned without_init[TL_COUNT] = { [TL_VCPU_RUN] = 31, [TL_HEARTBEAT] = 5031 };
	struct timeline t;
	char buf[256];

	(void)state;
	fixed(&t, with_init);
	timeline_summary(&t, buf, sizeof(buf));
	assert_string_equal(buf, "monitor set-up 31 ms, kernel 4.00 s, init to heartbeat 850 ms, "
	                         "heartbeat after 4.88 s");
	fixed(&t, without_init);
	timeline_summary(&t, buf, sizeof(buf));
	assert_string_equal(buf, "monitor set-up 31 ms, kernel and init 5.00 s, "
	                         "heartbeat after 5.03 s");
	/* Short buffers stay terminated. */
	timeline_summary(&t, buf, 8);
	assert_int_equal(strlen(buf), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeline_first_mark_wins),
		cmocka_unit_test(test_timeline_stages_from_the_guest),
		cmocka_unit_test(test_timeline_json_names_each_event),
		cmocka_unit_test(test_timeline_summary_phases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

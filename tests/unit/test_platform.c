/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KVM probe: the verdict logic from measured facts (no KVM needed), the measurement of a
 * device that does not exist, and the real probe on this host's /dev/kvm (which only has to
 * return a verdict with a reason; where kvm_pvm is loaded it must not say "direct").
 */
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "lib/platform/kvm_probe.h"

/* Facts of a healthy device whose loop halted after @ns. */
static struct kvm_probe_facts halted_after(uint64_t ns)
{
	struct kvm_probe_facts f;

	memset(&f, 0, sizeof(f));
	snprintf(f.dev_path, sizeof(f.dev_path), "/dev/kvm");
	f.dev_present = true;
	f.dev_accessible = true;
	f.api_version = 12; /* KVM_API_VERSION, stable since Linux 2.6.22 */
	f.loop = KVM_PROBE_LOOP_HALTED;
	f.loop_iterations = 1000000;
	f.loop_ns = ns;
	return f;
}

static void test_probe_fast_loop_is_direct_and_reports_milliseconds(void **state)
{
	struct kvm_probe_facts f = halted_after(2000000); /* 2 ms: hardware */
	struct kvm_probe_result r;

	(void)state;
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_DIRECT);
	assert_non_null(strstr(r.reason, "2.00 ms"));
	assert_non_null(strstr(r.reason, "1000000 iterations"));
}

static void test_probe_slow_loop_needs_parent_instance(void **state)
{
	struct kvm_probe_facts f = halted_after(526000000); /* 0.526 s: emulated ring 0 */
	struct kvm_probe_result r;

	(void)state;
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_NEEDS_PARENT_INSTANCE);
	assert_non_null(strstr(r.reason, "526.0 ms"));
	assert_non_null(strstr(r.reason, "emulated"));
}

static void test_probe_threshold_is_inclusive_for_direct(void **state)
{
	struct kvm_probe_facts at = halted_after(KVM_PROBE_SLOW_NS);
	struct kvm_probe_facts over = halted_after(KVM_PROBE_SLOW_NS + 1);
	struct kvm_probe_result r;

	(void)state;
	kvm_probe_decide(&at, &r);
	assert_int_equal(r.verdict, KVM_PROBE_DIRECT);
	kvm_probe_decide(&over, &r);
	assert_int_equal(r.verdict, KVM_PROBE_NEEDS_PARENT_INSTANCE);
}

static void test_probe_emulation_failure_needs_parent_instance(void **state)
{
	struct kvm_probe_facts f = halted_after(0);
	struct kvm_probe_result r;

	(void)state;
	f.loop = KVM_PROBE_LOOP_EMULATION_FAILURE;
	f.exit_reason = KVM_EXIT_INTERNAL_ERROR;
	f.internal_suberror = KVM_INTERNAL_ERROR_EMULATION;
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_NEEDS_PARENT_INSTANCE);
	assert_non_null(strstr(r.reason, "emulation failure"));
}

static void test_probe_timeout_and_unexpected_exit_need_parent_instance(void **state)
{
	struct kvm_probe_facts f = halted_after(5000000000ull);
	struct kvm_probe_result r;

	(void)state;
	f.loop = KVM_PROBE_LOOP_TIMEOUT;
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_NEEDS_PARENT_INSTANCE);
	assert_non_null(strstr(r.reason, "did not finish"));

	f = halted_after(1000);
	f.loop = KVM_PROBE_LOOP_UNEXPECTED_EXIT;
	f.exit_reason = KVM_EXIT_SHUTDOWN;
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_NEEDS_PARENT_INSTANCE);
	assert_non_null(strstr(r.reason, "exit reason 8")); /* KVM_EXIT_SHUTDOWN */
}

static void test_probe_missing_or_forbidden_device_is_no_kvm(void **state)
{
	struct kvm_probe_facts f = halted_after(1000);
	struct kvm_probe_result r;

	(void)state;
	f.dev_present = false;
	f.dev_accessible = false;
	f.open_errno = 2; /* ENOENT */
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_NO_KVM);
	assert_non_null(strstr(r.reason, "/dev/kvm does not exist"));

	f = halted_after(1000);
	f.dev_accessible = false;
	f.open_errno = 13; /* EACCES */
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_NO_KVM);
	assert_non_null(strstr(r.reason, "kvm group"));
}

static void test_probe_wrong_api_version_is_no_kvm(void **state)
{
	struct kvm_probe_facts f = halted_after(1000);
	struct kvm_probe_result r;

	(void)state;
	f.api_version = 11;
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_NO_KVM);
	assert_non_null(strstr(r.reason, "API version 11"));
}

static void test_probe_setup_failure_names_the_step(void **state)
{
	struct kvm_probe_facts f = halted_after(0);
	struct kvm_probe_result r;

	(void)state;
	f.loop = KVM_PROBE_LOOP_SETUP_FAILED;
	snprintf(f.setup_step, sizeof(f.setup_step), "KVM_CREATE_VCPU");
	f.run_errno = 12; /* ENOMEM */
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_NO_KVM);
	assert_non_null(strstr(r.reason, "KVM_CREATE_VCPU"));
}

static void test_probe_reason_carries_supporting_evidence(void **state)
{
	struct kvm_probe_facts f = halted_after(600000000);
	struct kvm_probe_result r;

	(void)state;
	f.kvm_pvm_loaded = true;
	f.cpu_svm = true;
	kvm_probe_decide(&f, &r);
	assert_non_null(strstr(r.reason, "kvm_pvm module loaded"));
	assert_non_null(strstr(r.reason, "CPU flags svm"));
	/* Evidence never overrides the measurement. */
	f = halted_after(1000000);
	f.kvm_pvm_loaded = true;
	kvm_probe_decide(&f, &r);
	assert_int_equal(r.verdict, KVM_PROBE_DIRECT);
}

static void test_probe_verdict_names_are_stable(void **state)
{
	(void)state;
	assert_string_equal(kvm_probe_verdict_name(KVM_PROBE_DIRECT), "direct");
	assert_string_equal(kvm_probe_verdict_name(KVM_PROBE_NEEDS_PARENT_INSTANCE),
	                    "needs-parent-instance");
	assert_string_equal(kvm_probe_verdict_name(KVM_PROBE_NO_KVM), "no-kvm");
}

static void test_probe_measures_absent_device_without_kvm(void **state)
{
	struct kvm_probe_result r;
	struct cl_diag d = { { 0 } };

	(void)state;
	assert_int_equal(kvm_probe_run("/nonexistent/cloister-kvm", &r, &d), KVM_PROBE_OK);
	assert_false(r.facts.dev_present);
	assert_int_equal(r.facts.loop, KVM_PROBE_LOOP_NOT_RUN);
	assert_int_equal(r.verdict, KVM_PROBE_NO_KVM);
	assert_non_null(strstr(r.reason, "/nonexistent/cloister-kvm"));
}

static void test_probe_real_device_gives_a_verdict_with_a_reason(void **state)
{
	struct kvm_probe_result r;
	struct cl_diag d = { { 0 } };
	struct stat st;

	(void)state;
	assert_int_equal(kvm_probe_run(NULL, &r, &d), KVM_PROBE_OK);
	assert_true(strlen(r.reason) > 20);
	assert_true(r.verdict == KVM_PROBE_DIRECT || r.verdict == KVM_PROBE_NEEDS_PARENT_INSTANCE ||
	            r.verdict == KVM_PROBE_NO_KVM);
	print_message("# verdict %s: %s\n", kvm_probe_verdict_name(r.verdict), r.reason);
	if (stat("/dev/kvm", &st) != 0)
		assert_int_equal(r.verdict, KVM_PROBE_NO_KVM);
	/* On the project's build machines /dev/kvm is the emulating kvm_pvm. */
	if (stat("/sys/module/kvm_pvm", &st) == 0)
		assert_int_not_equal(r.verdict, KVM_PROBE_DIRECT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_fast_loop_is_direct_and_reports_milliseconds),
		cmocka_unit_test(test_probe_slow_loop_needs_parent_instance),
		cmocka_unit_test(test_probe_threshold_is_inclusive_for_direct),
		cmocka_unit_test(test_probe_emulation_failure_needs_parent_instance),
		cmocka_unit_test(test_probe_timeout_and_unexpected_exit_need_parent_instance),
		cmocka_unit_test(test_probe_missing_or_forbidden_device_is_no_kvm),
		cmocka_unit_test(test_probe_wrong_api_version_is_no_kvm),
		cmocka_unit_test(test_probe_setup_failure_names_the_step),
		cmocka_unit_test(test_probe_reason_carries_supporting_evidence),
		cmocka_unit_test(test_probe_verdict_names_are_stable),
		cmocka_unit_test(test_probe_measures_absent_device_without_kvm),
		cmocka_unit_test(test_probe_real_device_gives_a_verdict_with_a_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

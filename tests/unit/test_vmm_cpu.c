/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CPUID table a vCPU sees (cpu_cpuid_table, src/vmm/arch/x86_64/cpu.h), from a made-up
 * "supported" table as KVM_GET_SUPPORTED_CPUID would give it: each vCPU's APIC id, the
 * hypervisor and TSC-deadline bits, no VMX or SVM, the brand string placed in leaves 0x80000002-4 whether
 * KVM's table has them or not; KVM's own table is left as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/arch/x86_64/cpu.h"

/* Leaves 1 (with VMX), 0x80000000 (extended leaves up to 0x80000008), an empty 0x80000002,
 * 0x80000001 (with SVM) and 0x8000000A (SVM's features), as KVM reports them on a host that
 * offers nested virtualization; 0x80000003 and 0x80000004 absent. */
static struct kvm_cpuid2 *supported(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 5 * sizeof(c->entries[0]));

	assert_non_null(c);
	c->nent = 5;
	c->entries[0] = (struct kvm_cpuid_entry2){
		.function = 1, .ebx = 0xff00abcd, .ecx = 0x00000221, .edx = 0x10000000
	};
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 0x80000000u, .eax = 0x80000008u };
	c->entries[2] = (struct kvm_cpuid_entry2){ .function = 0x80000002u };
	c->entries[3] = (struct kvm_cpuid_entry2){ .function = 0x80000001u, .ecx = 0x00000005 };
	c->entries[4] = (struct kvm_cpuid_entry2){
		.function = 0x8000000au, .eax = 1, .ebx = 64, .edx = 0x1bcff
	};
	return c;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid2 *c, uint32_t fn)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn)
			return &c->entries[i];
	return NULL;
}

static void brand_of(const struct kvm_cpuid2 *c, char out[49])
{
	for (unsigned i = 0; i < 3; i++) {
		const struct kvm_cpuid_entry2 *e = find(c, 0x80000002u + i);

		assert_non_null(e);
		memcpy(out + 16 * i, &e->eax, 4);
		memcpy(out + 16 * i + 4, &e->ebx, 4);
		memcpy(out + 16 * i + 8, &e->ecx, 4);
		memcpy(out + 16 * i + 12, &e->edx, 4);
	}
	out[48] = '\0';
}

static void test_cpuid_gives_each_vcpu_its_apic_id_and_the_platform_bits(void **state)
{
	struct kvm_cpuid2 *s = supported(), *c;
	const struct kvm_cpuid_entry2 *l1;

	(void)state;
	c = cpu_cpuid_table(s, 2, 3, true, NULL);
	assert_non_null(c);
	l1 = find(c, 1);
	assert_int_equal(l1->ebx >> 24, 2); /* APIC id */
	assert_int_equal((l1->ebx >> 16) & 0xff, 3); /* logical processors */
	assert_int_equal(l1->ebx & 0xffff, 0xabcd); /* the rest kept */
	assert_true(l1->ecx & (1u << 31)); /* hypervisor */
	assert_true(l1->ecx & (1u << 24)); /* TSC deadline */
	assert_int_equal(l1->ecx & 0x201, 0x201); /* what KVM offered stays */
	assert_true(l1->edx & (1u << 28)); /* HTT with more than one */
	/* no nested virtualization: VMX and SVM gone, the rest of their leaves kept */
	assert_false(l1->ecx & (1u << 5));
	assert_int_equal(find(c, 0x80000001u)->ecx, 0x1);
	assert_int_equal(find(c, 0x8000000au)->eax | find(c, 0x8000000au)->ebx |
	                         find(c, 0x8000000au)->edx,
	                 0);
	assert_int_equal(c->nent, 5); /* no brand: nothing added */
	free(c);

	c = cpu_cpuid_table(s, 0, 1, false, NULL);
	l1 = find(c, 1);
	assert_false(l1->ecx & (1u << 24));
	assert_false(l1->edx & (1u << 28));
	assert_int_equal(l1->ebx >> 24, 0);
	free(c);
	/* KVM's table is the template for every vCPU: untouched */
	assert_int_equal(s->entries[0].ebx, 0xff00abcd);
	assert_int_equal(s->entries[0].ecx, 0x221);
	assert_int_equal(s->entries[3].ecx, 0x5);
	free(s);
}

static void test_cpuid_carries_the_brand_string_kvm_leaves_out(void **state)
{
	static const char brand[48] = "Example(R) Processor 9000 @ 2.10GHz";
	struct kvm_cpuid2 *s = supported(), *c;
	char got[49];

	(void)state;
	c = cpu_cpuid_table(s, 0, 1, false, brand);
	assert_non_null(c);
	assert_int_equal(c->nent, 7); /* 0x80000003 and 0x80000004 added, 0x80000002 reused */
	brand_of(c, got);
	assert_memory_equal(got, brand, 48);
	assert_int_equal(find(c, 0x80000000u)->eax, 0x80000008u); /* already high enough */
	free(c);

	/* a table whose extended leaves end below the brand string is raised to reach it */
	s->entries[1].eax = 0x80000001u;
	c = cpu_cpuid_table(s, 0, 1, false, brand);
	assert_int_equal(find(c, 0x80000000u)->eax, 0x80000004u);
	free(c);
	free(s);
}

static void test_cpuid_host_brand_is_text_or_nothing(void **state)
{
	char b[48];

	(void)state;
	if (cpu_host_brand(b)) {
		assert_true(b[0] != '\0');
		assert_non_null(memchr(b, '\0', 48)); /* a C string within the 48 bytes */
	} else {
		for (unsigned i = 0; i < 48; i++)
			assert_int_equal(b[i], 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpuid_gives_each_vcpu_its_apic_id_and_the_platform_bits),
		cmocka_unit_test(test_cpuid_carries_the_brand_string_kvm_leaves_out),
		cmocka_unit_test(test_cpuid_host_brand_is_text_or_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

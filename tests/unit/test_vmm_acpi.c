/* SPDX-License-Identifier: Apache-2.0 */
/* The generated ACPI tables, checked the way a kernel reads them: RSDP checksums, XSDT
 * pointers, each table's checksum, FADT and MADT fields at their ACPI 6.x offsets, and the
 * DSDT's device ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/arch/x86_64/acpi.h"

#define BASE 0xe0000ULL

static uint8_t buf[0x20000];

static uint64_t rd(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static unsigned sum(const uint8_t *p, size_t n)
{
	unsigned s = 0;

	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s & 0xff;
}

static const uint8_t *at(uint64_t gpa)
{
	assert_true(gpa >= BASE && gpa < BASE + sizeof(buf));
	return buf + (gpa - BASE);
}

/* Table reached from the XSDT with signature @sig, checksum verified. */
static const uint8_t *find(const char *sig)
{
	const uint8_t *xsdt = at(rd(buf + 24, 8));
	uint32_t len = (uint32_t)rd(xsdt + 4, 4);

	assert_memory_equal(xsdt, "XSDT", 4);
	assert_int_equal(sum(xsdt, len), 0);
	for (uint32_t off = 36; off + 8 <= len; off += 8) {
		const uint8_t *t = at(rd(xsdt + off, 8));

		if (!memcmp(t, sig, 4)) {
			assert_int_equal(sum(t, (size_t)rd(t + 4, 4)), 0);
			return t;
		}
	}
	fail_msg("table %s not in the XSDT", sig);
	return NULL;
}

static const uint8_t *memmem_bytes(const uint8_t *h, size_t hl, const void *n, size_t nl)
{
	for (size_t i = 0; i + nl <= hl; i++)
		if (!memcmp(h + i, n, nl))
			return h + i;
	return NULL;
}

static void build(unsigned ncpus, unsigned nvirtio)
{
	struct acpi_config c = { .ncpus = ncpus, .nvirtio = nvirtio };

	for (unsigned i = 0; i < nvirtio; i++) {
		c.virtio[i].base = 0xd0000000ULL + 0x1000ULL * i;
		c.virtio[i].irq = 5 + i;
	}
	assert_true(acpi_build(buf, sizeof(buf), BASE, &c) > 0);
}

static void test_acpi_rsdp_is_v2_with_valid_checksums(void **state)
{
	(void)state;
	build(1, 0);
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(buf[15], 2);
	assert_int_equal(sum(buf, 20), 0);
	assert_int_equal(rd(buf + 20, 4), 36);
	assert_int_equal(sum(buf, 36), 0);
}

static void test_acpi_fadt_is_hardware_reduced_rev6_with_reset_and_sleep_regs(void **state)
{
	const uint8_t *f;

	(void)state;
	build(2, 0);
	f = find("FACP");
	assert_int_equal(rd(f + 4, 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(f[131], 5); /* minor version */
	assert_true(rd(f + 112, 4) & (1u << 20)); /* HW_REDUCED_ACPI */
	assert_true(rd(f + 112, 4) & (1u << 10)); /* RESET_REG_SUP */
	assert_int_equal(f[116], 1); /* reset reg in system I/O */
	assert_int_equal(rd(f + 120, 8), 0xcf9);
	assert_int_equal(f[128], 0x06);
	assert_int_equal(f[244], 1); /* sleep control in system I/O */
	assert_int_equal(rd(f + 248, 8), 0x600);
	assert_int_equal(rd(f + 260, 8), 0x601);
	assert_int_equal(rd(f + 40, 4), rd(f + 140, 8)); /* DSDT == X_DSDT */
	assert_memory_equal(at(rd(f + 140, 8)), "DSDT", 4);
}

static void test_acpi_madt_lists_each_cpu_and_the_ioapic(void **state)
{
	const uint8_t *m;
	unsigned lapics = 0, ioapics = 0;

	(void)state;
	build(3, 0);
	m = find("APIC");
	assert_int_equal(rd(m + 36, 4), 0xfee00000);
	for (uint32_t off = 44; off < rd(m + 4, 4); off += m[off + 1]) {
		assert_true(m[off + 1] > 0);
		if (m[off] == 0) {
			assert_int_equal(m[off + 3], lapics); /* APIC id */
			assert_int_equal(rd(m + off + 4, 4), 1);
			lapics++;
		} else if (m[off] == 1) {
			assert_int_equal(rd(m + off + 4, 4), 0xfec00000);
			assert_int_equal(rd(m + off + 8, 4), 0);
			ioapics++;
		}
	}
	assert_int_equal(lapics, 3);
	assert_int_equal(ioapics, 1);
}

static void test_acpi_dsdt_describes_uart_virtio_and_s5(void **state)
{
	static const uint8_t pnp0501[4] = { 0x41, 0xd0, 0x05, 0x01 }; /* EisaId("PNP0501") */
	static const uint8_t mem32[8] = { 0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0 };
	const uint8_t *dsdt;
	size_t len;

	(void)state;
	build(1, 2);
	dsdt = at(rd(find("FACP") + 140, 8));
	len = (size_t)rd(dsdt + 4, 4);
	assert_int_equal(sum(dsdt, len), 0);
	assert_non_null(memmem_bytes(dsdt, len, pnp0501, 4));
	assert_non_null(memmem_bytes(dsdt, len, "LNRO0005", 9));
	assert_non_null(memmem_bytes(dsdt, len, "_S5_", 4));
	/* second device's window: Memory32Fixed(RW, 0xd0001000, ...) */
	assert_non_null(memmem_bytes(dsdt, len, mem32, 8));
	assert_non_null(memmem_bytes(dsdt, len, "VR01", 4));
}

static void test_acpi_refuses_too_small_buffer_and_bad_config(void **state)
{
	struct acpi_config c = { .ncpus = 1 };
	uint8_t small[64];

	(void)state;
	assert_int_equal(acpi_build(small, sizeof(small), BASE, &c), 0);
	c.ncpus = 0;
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acpi_rsdp_is_v2_with_valid_checksums),
		cmocka_unit_test(test_acpi_fadt_is_hardware_reduced_rev6_with_reset_and_sleep_regs),
		cmocka_unit_test(test_acpi_madt_lists_each_cpu_and_the_ioapic),
		cmocka_unit_test(test_acpi_dsdt_describes_uart_virtio_and_s5),
		cmocka_unit_test(test_acpi_refuses_too_small_buffer_and_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

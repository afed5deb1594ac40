/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/layout.h"

/* A growing byte buffer with an overflow flag, so the builders need no error paths. */
struct bb {
	uint8_t *p;
	size_t len, cap;
	int overflow;
};

static void bb_bytes(struct bb *b, const void *data, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void bb_u8(struct bb *b, uint8_t v)
{
	bb_bytes(b, &v, 1);
}

/* @n little-endian bytes of @v; bytes past the eighth are zero (runs of reserved fields). */
static void bb_le(struct bb *b, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		bb_u8(b, i < 8 ? (uint8_t)(v >> (8 * i)) : 0);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0 - sum);
}

/* Standard 36-byte table header; length and checksum are patched by table_end(). */
static size_t table_begin(struct bb *b, const char sig[4], uint8_t rev)
{
	size_t start = b->len;

	bb_bytes(b, sig, 4);
	bb_le(b, 0, 4); /* length */
	bb_u8(b, rev);
	bb_u8(b, 0); /* checksum */
	bb_bytes(b, "CLSTER", 6);
	bb_bytes(b, "CLOISTER", 8);
	bb_le(b, 1, 4); /* OEM revision */
	bb_bytes(b, "CLST", 4); /* creator id */
	bb_le(b, 1, 4); /* creator revision */
	return start;
}

static void table_end(struct bb *b, size_t start)
{
	size_t n = b->len - start;

	if (b->overflow)
		return;
	for (int i = 0; i < 4; i++)
		b->p[start + 4 + i] = (uint8_t)(n >> (8 * i));
	b->p[start + 9] = checksum(b->p + start, n);
}

/* Generic Address Structure: system I/O space, byte access. */
static void gas_io(struct bb *b, uint16_t port, uint8_t bits)
{
	bb_u8(b, 1); /* system I/O */
	bb_u8(b, bits);
	bb_u8(b, 0);
	bb_u8(b, 1); /* byte access */
	bb_le(b, port, 8);
}

static void gas_none(struct bb *b)
{
	bb_le(b, 0, 12);
}

static void align(struct bb *b, size_t a)
{
	while (!b->overflow && (b->len % a))
		bb_u8(b, 0);
}

/* ---- AML (ACPI 6.x §20) ---- */

#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_EXT_OP 0x5b
#define AML_DEVICE_OP 0x82

/* An AML term whose PkgLength is only known at the end: reserve 4 bytes (the longest form)
 * and patch them. The 4-byte form is valid for any length (ACPI §20.2.4). */
static size_t aml_pkg_begin(struct bb *b)
{
	size_t at = b->len;

	bb_le(b, 0, 4);
	return at;
}

static void aml_pkg_end(struct bb *b, size_t at)
{
	size_t n = b->len - at; /* includes the 4 PkgLength bytes */

	if (b->overflow)
		return;
	b->p[at] = (uint8_t)(0xc0 | (n & 0x0f));
	b->p[at + 1] = (uint8_t)(n >> 4);
	b->p[at + 2] = (uint8_t)(n >> 12);
	b->p[at + 3] = (uint8_t)(n >> 20);
}

static void aml_name(struct bb *b, const char *seg4)
{
	bb_u8(b, AML_NAME_OP);
	bb_bytes(b, seg4, 4);
}

static void aml_string(struct bb *b, const char *s)
{
	bb_u8(b, AML_STRING_PREFIX);
	bb_bytes(b, s, strlen(s) + 1);
}

static void aml_dword(struct bb *b, uint32_t v)
{
	bb_u8(b, AML_DWORD_PREFIX);
	bb_le(b, v, 4);
}

/* EISA id "PNP0501" compressed: three 5-bit letters then four hex digits, stored big-endian. */
static uint32_t eisa_id(const char *id)
{
	uint16_t vendor = (uint16_t)(((id[0] - 0x40) & 0x1f) << 10 | ((id[1] - 0x40) & 0x1f) << 5 |
	                             ((id[2] - 0x40) & 0x1f));
	uint16_t product = 0;

	for (int i = 3; i < 7; i++) {
		char c = id[i];
		product = (uint16_t)(product << 4 | (c <= '9' ? c - '0' : c - 'A' + 10));
	}
	/* bytes in memory: vendor hi, vendor lo, product hi, product lo */
	return (uint32_t)(vendor >> 8) | (uint32_t)(vendor & 0xff) << 8 |
	       (uint32_t)(product >> 8) << 16 | (uint32_t)(product & 0xff) << 24;
}

/* Name(_CRS, ResourceTemplate() { @res }) */
static void aml_crs(struct bb *b, const uint8_t *res, size_t n)
{
	size_t pkg;

	aml_name(b, "_CRS");
	bb_u8(b, AML_BUFFER_OP);
	pkg = aml_pkg_begin(b);
	aml_dword(b, (uint32_t)(n + 2));
	bb_bytes(b, res, n);
	bb_u8(b, 0x79); /* end tag */
	bb_u8(b, 0x00); /* checksum 0: "treat as correct" */
	aml_pkg_end(b, pkg);
}

/* Extended Interrupt descriptor: consumer, edge, active high, exclusive, one GSI. */
static size_t res_interrupt(uint8_t *r, unsigned gsi)
{
	r[0] = 0x89;
	r[1] = 6;
	r[2] = 0;
	r[3] = 0x03; /* consumer | edge */
	r[4] = 1;
	r[5] = (uint8_t)gsi;
	r[6] = (uint8_t)(gsi >> 8);
	r[7] = (uint8_t)(gsi >> 16);
	r[8] = (uint8_t)(gsi >> 24);
	return 9;
}

static void aml_device_begin(struct bb *b, const char *name, size_t *pkg)
{
	bb_u8(b, AML_EXT_OP);
	bb_u8(b, AML_DEVICE_OP);
	*pkg = aml_pkg_begin(b);
	bb_bytes(b, name, 4);
}

static void dsdt_uart(struct bb *b)
{
	uint8_t res[32];
	size_t n = 0, pkg;

	aml_device_begin(b, "COM1", &pkg);
	aml_name(b, "_HID");
	aml_dword(b, eisa_id("PNP0501"));
	aml_name(b, "_UID");
	bb_u8(b, 0x00); /* ZeroOp */
	/* IO(Decode16, 0x3f8, 0x3f8, 1, 8) */
	res[n++] = 0x47;
	res[n++] = 0x01;
	res[n++] = LAYOUT_UART_PORT & 0xff;
	res[n++] = LAYOUT_UART_PORT >> 8;
	res[n++] = LAYOUT_UART_PORT & 0xff;
	res[n++] = LAYOUT_UART_PORT >> 8;
	res[n++] = 1;
	res[n++] = 8;
	n += res_interrupt(res + n, LAYOUT_UART_IRQ);
	aml_crs(b, res, n);
	aml_pkg_end(b, pkg);
}

static void dsdt_virtio(struct bb *b, unsigned i, const struct acpi_virtio *v)
{
	uint8_t res[32];
	size_t n = 0, pkg;
	char name[5] = { 'V', 'R', (char)('0' + i / 10), (char)('0' + i % 10), 0 };

	aml_device_begin(b, name, &pkg);
	aml_name(b, "_HID");
	aml_string(b, "LNRO0005");
	aml_name(b, "_UID");
	bb_u8(b, AML_BYTE_PREFIX);
	bb_u8(b, (uint8_t)i);
	/* Memory32Fixed(ReadWrite, base, 4 KiB) */
	res[n++] = 0x86;
	res[n++] = 9;
	res[n++] = 0;
	res[n++] = 1;
	for (int k = 0; k < 4; k++)
		res[n++] = (uint8_t)(v->base >> (8 * k));
	for (int k = 0; k < 4; k++)
		res[n++] = (uint8_t)(LAYOUT_VIRTIO_MMIO_SIZE >> (8 * k));
	n += res_interrupt(res + n, v->irq);
	aml_crs(b, res, n);
	aml_pkg_end(b, pkg);
}

static void build_dsdt(struct bb *b, const struct acpi_config *cfg)
{
	size_t t = table_begin(b, "DSDT", 2), scope;

	/* Scope(\_SB) { devices } */
	bb_u8(b, AML_SCOPE_OP);
	scope = aml_pkg_begin(b);
	bb_bytes(b, "\\_SB_", 5);
	dsdt_uart(b);
	for (unsigned i = 0; i < cfg->nvirtio; i++)
		dsdt_virtio(b, i, &cfg->virtio[i]);
	aml_pkg_end(b, scope);

	/* Name(\_S5_, Package() { 5, 0 }): the SLP_TYP Linux writes to the sleep control
	 * register on poweroff; without it the kernel halts instead (docs/direct-boot.md). */
	bb_u8(b, AML_NAME_OP);
	bb_bytes(b, "\\_S5_", 5);
	bb_u8(b, AML_PACKAGE_OP);
	bb_u8(b, 6); /* PkgLength: itself + count + 2 × (prefix, byte) */
	bb_u8(b, 2);
	bb_u8(b, AML_BYTE_PREFIX);
	bb_u8(b, LAYOUT_S5_SLP_TYP);
	bb_u8(b, AML_BYTE_PREFIX);
	bb_u8(b, 0);
	table_end(b, t);
}

static void build_fadt(struct bb *b, uint64_t dsdt)
{
	size_t t = table_begin(b, "FACP", 6);

	bb_le(b, 0, 4); /* 36 FIRMWARE_CTRL */
	bb_le(b, dsdt, 4); /* 40 DSDT */
	bb_le(b, 0, 1); /* 44 reserved */
	bb_le(b, 0, 1); /* 45 preferred PM profile: unspecified */
	bb_le(b, 0, 2); /* 46 SCI_INT: none in hardware-reduced mode */
	bb_le(b, 0, 4); /* 48 SMI_CMD */
	bb_le(b, 0, 4); /* 52 ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT */
	bb_le(b, 0, 32); /* 56..87 PM1a/b EVT/CNT, PM2, PM_TMR, GPE0/1 blocks */
	bb_le(b, 0, 8); /* 88..95 block lengths, GPE1_BASE, CST_CNT */
	bb_le(b, 0, 8); /* 96..103 latencies, flush */
	bb_le(b, 0, 5); /* 104..108 duty, alarms, century */
	/* 109 IAPC_BOOT_ARCH: no VGA (bit 2), no CMOS RTC (bit 5) */
	bb_le(b, (1u << 2) | (1u << 5), 2);
	bb_le(b, 0, 1); /* 111 reserved */
	bb_le(b, (1u << 20) | (1u << 10), 4); /* 112 flags: HW_REDUCED_ACPI | RESET_REG_SUP */
	gas_io(b, LAYOUT_RESET_PORT, 8); /* 116 RESET_REG */
	bb_u8(b, LAYOUT_RESET_VALUE); /* 128 RESET_VALUE */
	bb_le(b, 0, 2); /* 129 ARM_BOOT_ARCH */
	bb_u8(b, 5); /* 131 FADT minor version */
	bb_le(b, 0, 8); /* 132 X_FIRMWARE_CTRL */
	bb_le(b, dsdt, 8); /* 140 X_DSDT */
	for (int i = 0; i < 8; i++)
		gas_none(b); /* 148..243 X_PM1a_EVT .. X_GPE1 */
	gas_io(b, LAYOUT_SLEEP_CTL_PORT, 8); /* 244 SLEEP_CONTROL_REG */
	gas_io(b, LAYOUT_SLEEP_STS_PORT, 8); /* 256 SLEEP_STATUS_REG */
	bb_bytes(b, "CLOISTER", 8); /* 268 hypervisor vendor identity */
	table_end(b, t);
}

static void build_madt(struct bb *b, const struct acpi_config *cfg)
{
	size_t t = table_begin(b, "APIC", 5);

	bb_le(b, LAYOUT_LAPIC_ADDR, 4);
	bb_le(b, 1, 4); /* PCAT_COMPAT */
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		bb_u8(b, 0); /* processor local APIC */
		bb_u8(b, 8);
		bb_u8(b, (uint8_t)i); /* ACPI processor UID */
		bb_u8(b, (uint8_t)i); /* APIC id = vCPU id */
		bb_le(b, 1, 4); /* enabled */
	}
	bb_u8(b, 1); /* IOAPIC */
	bb_u8(b, 12);
	bb_u8(b, (uint8_t)cfg->ncpus); /* IOAPIC id after the LAPICs */
	bb_u8(b, 0);
	bb_le(b, LAYOUT_IOAPIC_ADDR, 4);
	bb_le(b, 0, 4); /* GSI base */
	table_end(b, t);
}

size_t acpi_build(uint8_t *buf, size_t cap, uint64_t gpa, const struct acpi_config *cfg)
{
	struct bb b = { .p = buf, .cap = cap };
	size_t rsdp, xsdt, fadt, madt, dsdt;

	if (cfg->ncpus == 0 || cfg->ncpus > ACPI_MAX_CPUS || cfg->nvirtio > 8)
		return 0;
	memset(buf, 0, cap);

	/* RSDP (36 bytes, revision 2) first so it sits at @gpa, inside the 0xE0000 scan. The
	 * XSDT address is patched once known. */
	rsdp = b.len;
	bb_bytes(&b, "RSD PTR ", 8);
	bb_u8(&b, 0);
	bb_bytes(&b, "CLSTER", 6);
	bb_u8(&b, 2);
	bb_le(&b, 0, 4); /* RSDT address: none, XSDT only */
	bb_le(&b, 36, 4); /* length */
	bb_le(&b, 0, 8); /* XSDT address */
	bb_le(&b, 0, 4); /* extended checksum + reserved */

	align(&b, 16);
	dsdt = b.len;
	build_dsdt(&b, cfg);
	align(&b, 16);
	fadt = b.len;
	build_fadt(&b, gpa + dsdt);
	align(&b, 16);
	madt = b.len;
	build_madt(&b, cfg);
	align(&b, 16);
	xsdt = b.len;
	{
		size_t t = table_begin(&b, "XSDT", 1);

		bb_le(&b, gpa + fadt, 8);
		bb_le(&b, gpa + madt, 8);
		table_end(&b, t);
	}
	if (b.overflow)
		return 0;
	for (int i = 0; i < 8; i++)
		buf[rsdp + 24 + i] = (uint8_t)((gpa + xsdt) >> (8 * i));
	buf[rsdp + 8] = checksum(buf + rsdp, 20);
	buf[rsdp + 32] = checksum(buf + rsdp, 36);
	return b.len;
}

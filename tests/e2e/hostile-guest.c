/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hostile enclave "kernel" for tests/e2e/test_16_monitor_hostile_guest.sh: freestanding,
 * linked to run at the bzImage 64-bit entry (1 MiB + 0x200, layout.h) and wrapped into a
 * bzImage-shaped file by make_blob_kernel. The monitor enters it in long mode on its own
 * identity map of the low 4 GiB, RSI = the zero page, no stack, interrupts off, SSE off (CR4
 * has no OSFXSR: built with -mgeneral-regs-only).
 *
 * The kernel command line says what to do (`hostile=MODE`). Each mode drives one virtio-mmio
 * device the way a broken or malicious driver would, by hand, with no interrupts: it polls the
 * used rings. Modes that the monitor must end (exit 13) attack and then halt forever; modes the
 * monitor must survive report on the UART (seen with --debug-mode) and power off through the
 * ACPI sleep control port, so exit 0 means "the monitor survived and the guest finished".
 *
 *   ring-outside-ram   NSM queue 0's descriptor table at 0x7_ffff_f000 (far outside RAM)
 *   nsm-desc-loop      NSM chain 0 -> 1 -> 0 -> ... (VIRTQ_DESC_F_NEXT back to the head)
 *   nsm-desc-addr      NSM descriptor whose buffer is at 0x7_0000_0000
 *   nsm-desc-len       NSM descriptor of 0xffffffff bytes inside RAM
 *   nsm-avail-ahead    NSM avail->idx 0x8000 ahead of the device (queue size 2)
 *   nsm-4097           an NSM request of 4097 bytes: expects an InputTooLarge answer
 *   vsock-desc-addr    vsock TX descriptor whose buffer is at 0x7_0000_0000
 *   vsock-desc-len     vsock TX descriptor of 0xffffffff bytes inside RAM
 *   vsock-junk         garbage vsock headers on TX, then the Nitro heartbeat must still work
 *   vsock-rx-small     16-byte vsock RX buffers, then wait: the host's next packet cannot fit
 *
 * Racing vCPUs (run with --cpu-count 2): the boot vCPU starts vCPU 1 through its local APIC
 * (INIT, then a start-up IPI into a real-mode trampoline that enters long mode on the monitor's
 * page tables), and both drive one queue at once, with no lock between them:
 *
 *   nsm-race           vCPU 1 keeps the NSM ring full and rewrites the request's descriptor
 *                      and bytes (always within RAM); both vCPUs kick in a tight loop. Reports
 *                      after 1000 answers, then goes on until the enclave is ended.
 *   vsock-race         the same on vsock TX: vCPU 1 keeps all 256 TX entries available as
 *                      fast as the device takes them (~60 KiB spoofed-source packets, dropped
 *                      as junk) and rewrites their lengths; both kick. Reports after 2000
 *                      packets, goes on.
 *   vsock-desc-flip    the boot vCPU offers an 8-descriptor TX chain again and again while
 *                      vCPU 1 flips its last descriptor between "end" and "next = 0" (a loop),
 *                      so the device walks a table that changes under it.
 *
 * `hostile_heartbeat` on the command line first sends the Nitro boot heartbeat (vsock port
 * 9000), so `run-enclave` sees the enclave boot before the attack starts.
 */
#include <stddef.h>
#include <stdint.h>

/* Guest-physical addresses (src/vmm/arch/x86_64/layout.h). */
#define ZERO_PAGE_CMDLINE_PTR 0x228 /* boot_params.hdr.cmd_line_ptr */
#define MMIO_BASE 0xd0000000ULL
#define MMIO_SIZE 0x1000ULL
#define MMIO_SLOTS 8
#define UART 0x3f8
#define SLEEP_CTL_PORT 0x600
#define S5_SLEEP (5 << 2 | 1 << 5) /* SLP_TYP 5, SLP_EN */
#define STACK_TOP "0x200000" /* for the entry stub: grows down towards the blob at 1 MiB */
/* Scratch RAM for rings and buffers: above the blob, below the EIF at 8 MiB. */
#define SCRATCH 0x400000ULL
#define FAR_OUTSIDE_RAM 0x700000000ULL /* 28 GiB; the test runs 64 MiB enclaves */
#define LAPIC 0xfee00000ULL /* xAPIC registers (the in-kernel irqchip's default base) */
/* vCPU 1's real-mode start: below 1 MiB (a start-up IPI names a page), above the command line
 * (0x20000, 64 KiB). Twice: as a number, and as text for the assembler. */
#define AP_TRAMPOLINE 0x30000
#define AP_TRAMPOLINE_S "0x30000"
#define AP_STACK_TOP "0x1f0000" /* vCPU 1's stack; the boot vCPU's is at STACK_TOP */

/* virtio-mmio version 2 registers (virtio 1.x §4.2.2). */
enum {
	R_MAGIC = 0x000,
	R_DEVICE_ID = 0x008,
	R_DRIVER_FEATURES = 0x020,
	R_DRIVER_FEATURES_SEL = 0x024,
	R_QUEUE_SEL = 0x030,
	R_QUEUE_NUM = 0x038,
	R_QUEUE_READY = 0x044,
	R_QUEUE_NOTIFY = 0x050,
	R_STATUS = 0x070,
	R_QUEUE_DESC_LOW = 0x080,
	R_QUEUE_DESC_HIGH = 0x084,
	R_QUEUE_DRIVER_LOW = 0x090,
	R_QUEUE_DRIVER_HIGH = 0x094,
	R_QUEUE_DEVICE_LOW = 0x0a0,
	R_QUEUE_DEVICE_HIGH = 0x0a4,
};
#define VIRTIO_MAGIC 0x74726976 /* "virt" */
#define ID_VSOCK 19
#define ID_NSM 33
#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
#define F_NEXT 1
#define F_WRITE 2

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct queue {
	uint64_t base; /* the device's MMIO window */
	unsigned sel, size;
	volatile struct desc *desc; /* at q_mem, avail at +0x1000, used at +0x2000 */
	volatile uint16_t *avail;
	volatile uint16_t *used;
	uint16_t next_avail, seen_used;
};

/* vsock packet header (virtio 1.x §5.10.6), little-endian. */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
#define VSOCK_HDR_LEN 44
#define VSOCK_TYPE_STREAM 1
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_RW 5
#define PARENT_CID 3
#define HEARTBEAT_PORT 9000
#define HEARTBEAT_BYTE 0xb7

/* gcc may emit calls to these even in freestanding code. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((volatile uint8_t *)d)[i] = (uint8_t)c;
	return d;
}
void *memcpy(void *d, const void *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((volatile uint8_t *)d)[i] = ((const uint8_t *)s)[i];
	return d;
}

static void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static void puts_(const char *s)
{
	while (*s)
		outb(UART, (uint8_t)*s++);
}

static void putu(uint64_t v)
{
	char buf[21];
	int i = 20;

	buf[i] = 0;
	do
		buf[--i] = (char)('0' + v % 10);
	while (v /= 10);
	puts_(buf + i);
}

static __attribute__((noreturn)) void halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* The monitor's answer to S5 is to end the enclave with status 0. */
static __attribute__((noreturn)) void poweroff(void)
{
	outb(SLEEP_CTL_PORT, S5_SLEEP);
	halt();
}

static __attribute__((noreturn)) void fail(const char *why)
{
	puts_("hostile: FAILED: ");
	puts_(why);
	puts_("\n");
	halt(); /* the test times out rather than seeing a power-off */
}

static uint32_t rd(uint64_t base, unsigned off)
{
	return *(volatile uint32_t *)(uintptr_t)(base + off);
}

static void wr(uint64_t base, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(base + off) = v;
}

static int streq_prefix(const char *s, const char *word)
{
	while (*word)
		if (*s++ != *word++)
			return 0;
	return *s == 0 || *s == ' ';
}

/* The value of hostile= on the command line, or "". */
static const char *cmdline_mode(uint64_t zero_page)
{
	uint32_t ptr = *(volatile uint32_t *)(uintptr_t)(zero_page + ZERO_PAGE_CMDLINE_PTR);
	const char *p = (const char *)(uintptr_t)ptr;
	static const char key[] = "hostile=";

	for (; *p; p++) {
		unsigned i = 0;

		while (key[i] && p[i] == key[i])
			i++;
		if (!key[i])
			return p + i;
	}
	return "";
}

/* Whether @word is a whole word of the command line. */
static int cmdline_word(uint64_t zero_page, const char *word)
{
	uint32_t ptr = *(volatile uint32_t *)(uintptr_t)(zero_page + ZERO_PAGE_CMDLINE_PTR);
	const char *p = (const char *)(uintptr_t)ptr;

	for (; *p; p++)
		if ((p == (const char *)(uintptr_t)ptr || p[-1] == ' ') && streq_prefix(p, word))
			return 1;
	return 0;
}

/* The MMIO window of the first device with @id, or 0. */
static uint64_t find_device(uint32_t id)
{
	for (unsigned i = 0; i < MMIO_SLOTS; i++) {
		uint64_t base = MMIO_BASE + i * MMIO_SIZE;

		if (rd(base, R_MAGIC) == VIRTIO_MAGIC && rd(base, R_DEVICE_ID) == id)
			return base;
	}
	return 0;
}

/* Reset, ACKNOWLEDGE, DRIVER, VIRTIO_F_VERSION_1, FEATURES_OK (virtio 1.x §3.1.1). */
static void device_init(uint64_t base)
{
	wr(base, R_STATUS, 0);
	wr(base, R_STATUS, ST_ACK);
	wr(base, R_STATUS, ST_ACK | ST_DRIVER);
	wr(base, R_DRIVER_FEATURES_SEL, 1);
	wr(base, R_DRIVER_FEATURES, 1); /* bit 32: VERSION_1 */
	wr(base, R_DRIVER_FEATURES_SEL, 0);
	wr(base, R_DRIVER_FEATURES, 0);
	wr(base, R_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
}

static void driver_ok(uint64_t base)
{
	wr(base, R_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
}

/* Queue @sel of @size entries with its rings at @mem (desc), +0x1000 (avail), +0x2000 (used). */
static void queue_setup(struct queue *q, uint64_t base, unsigned sel, unsigned size, uint64_t mem,
                        uint64_t desc_addr)
{
	q->base = base;
	q->sel = sel;
	q->size = size;
	q->desc = (volatile struct desc *)(uintptr_t)desc_addr;
	q->avail = (volatile uint16_t *)(uintptr_t)(mem + 0x1000);
	q->used = (volatile uint16_t *)(uintptr_t)(mem + 0x2000);
	q->next_avail = q->seen_used = 0;
	memset((void *)(uintptr_t)mem, 0, 0x3000);
	wr(base, R_QUEUE_SEL, sel);
	wr(base, R_QUEUE_NUM, size);
	wr(base, R_QUEUE_DESC_LOW, (uint32_t)desc_addr);
	wr(base, R_QUEUE_DESC_HIGH, (uint32_t)(desc_addr >> 32));
	wr(base, R_QUEUE_DRIVER_LOW, (uint32_t)(mem + 0x1000));
	wr(base, R_QUEUE_DRIVER_HIGH, 0);
	wr(base, R_QUEUE_DEVICE_LOW, (uint32_t)(mem + 0x2000));
	wr(base, R_QUEUE_DEVICE_HIGH, 0);
	wr(base, R_QUEUE_READY, 1);
}

/* Offer chain @head, publishing avail->idx as @idx (normally next_avail + 1). */
static void offer_at(struct queue *q, uint16_t head, uint16_t idx)
{
	q->avail[2 + q->next_avail % q->size] = head;
	q->next_avail++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->avail[1] = idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void offer(struct queue *q, uint16_t head)
{
	offer_at(q, head, (uint16_t)(q->next_avail + 1));
}

static void kick(struct queue *q)
{
	wr(q->base, R_QUEUE_NOTIFY, q->sel);
}

/* The next used element, if any: its id and len. The device answers during the kick (a
 * synchronous MMIO exit) or from its own thread, so poll a while. */
static int take_used(struct queue *q, uint32_t *id, uint32_t *len)
{
	for (unsigned long spin = 0; spin < 10000000UL; spin++) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (q->used[1] != q->seen_used) {
			volatile uint32_t *e = (volatile uint32_t *)(q->used + 2) +
			                       2 * (q->seen_used % q->size);

			*id = e[0];
			*len = e[1];
			q->seen_used++;
			return 1;
		}
		__asm__ volatile("pause");
	}
	return 0;
}

static void set_desc(struct queue *q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
	q->desc[i].addr = addr;
	q->desc[i].len = len;
	q->desc[i].flags = flags;
	q->desc[i].next = next;
}

/* ---- vCPU 1, for the racing modes ---- */

enum ap_job { AP_NONE, AP_NSM_FEED, AP_VSOCK_FEED, AP_DESC_FLIP };

static volatile unsigned ap_alive; /* vCPU 1 sets it first thing */
static volatile unsigned ap_job;
static struct queue *volatile ap_queue; /* the queue vCPU 1 races on */

/* The trampoline below, assembled here and copied to AP_TRAMPOLINE; its CR3 slot is filled in
 * with the boot vCPU's page tables (the monitor's identity map of the low 4 GiB). */
extern const uint8_t ap_trampoline[], ap_trampoline_cr3[], ap_trampoline_end[];

static void lapic_write(unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(LAPIC + reg) = v;
}

static void nsm_feed(struct queue *q);
static void vsock_feed(struct queue *q);
static void desc_flip(struct queue *q);

/* vCPU 1 in long mode, on its own stack (ap_entry64). */
void ap_main(void);
void ap_main(void)
{
	ap_alive = 1;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	switch (ap_job) {
	case AP_NSM_FEED:
		nsm_feed(ap_queue);
		break;
	case AP_VSOCK_FEED:
		vsock_feed(ap_queue);
		break;
	case AP_DESC_FLIP:
		desc_flip(ap_queue);
		break;
	default:
		break;
	}
	halt();
}

/* Start vCPU 1 (APIC id 1) on @job as an OS starts an application processor (Intel SDM vol. 3,
 * "MP Initialization"): INIT, then start-up IPIs at the trampoline's page. The monitor gives
 * vCPU 1 no registers: it waits in KVM's in-kernel LAPIC for exactly this. */
static void start_ap(struct queue *q, unsigned job)
{
	size_t n = (size_t)(ap_trampoline_end - ap_trampoline);
	uint64_t cr3;

	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	memcpy((void *)(uintptr_t)AP_TRAMPOLINE, ap_trampoline, n);
	*(volatile uint32_t *)(uintptr_t)(AP_TRAMPOLINE + (size_t)(ap_trampoline_cr3 -
	                                                           ap_trampoline)) = (uint32_t)cr3;
	ap_queue = q;
	ap_job = job;
	ap_alive = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	lapic_write(0xf0, 0x1ff); /* spurious-interrupt vector register: APIC software-enabled */
	lapic_write(0x310, 1u << 24); /* ICR high: destination APIC id 1 */
	lapic_write(0x300, 0x4500); /* ICR low: INIT, assert */
	for (unsigned long i = 0; i < 100000; i++)
		__asm__ volatile("pause");
	for (int tries = 0; tries < 2 && !ap_alive; tries++) {
		lapic_write(0x310, 1u << 24);
		lapic_write(0x300, 0x4600 | (AP_TRAMPOLINE >> 12)); /* start-up IPI */
		for (unsigned long i = 0; i < 50000000UL && !ap_alive; i++)
			__asm__ volatile("pause");
	}
	if (!ap_alive)
		fail("vCPU 1 did not start (INIT, start-up IPI): is --cpu-count 2?");
	puts_("hostile: vCPU 1 started\n");
}

/* ---- NSM (device 33, one queue of 2) ---- */

#define NSM_MEM (SCRATCH + 0x00000)
#define NSM_REQ (SCRATCH + 0x10000)
#define NSM_RESP (SCRATCH + 0x20000)
#define NSM_RESP_LEN 0x3000 /* what Linux's nsm driver gives */

static uint64_t nsm_open(struct queue *q)
{
	uint64_t base = find_device(ID_NSM);

	if (!base)
		fail("no NSM device (run the monitor with --enclave-id)");
	device_init(base);
	queue_setup(q, base, 0, 2, NSM_MEM, NSM_MEM);
	driver_ok(base);
	return base;
}

static int memfind(const uint8_t *hay, uint32_t n, const char *needle)
{
	size_t k = 0;

	while (needle[k])
		k++;
	for (uint32_t i = 0; i + k <= n; i++) {
		size_t j = 0;

		while (j < k && hay[i + j] == (uint8_t)needle[j])
			j++;
		if (j == k)
			return 1;
	}
	return 0;
}

/* The racing modes count the device's answers by its used index (it wraps at 2^16). */
static unsigned long used_progress(struct queue *q, uint16_t *last)
{
	uint16_t now = q->used[1];
	unsigned long n = (uint16_t)(now - *last);

	*last = now;
	return n;
}

static struct queue race_nsm;

/* vCPU 1: keep both NSM ring entries available as fast as the device answers (chain 0 both
 * times, ring entries left at 0), rewrite the request's length and bytes meanwhile, kick now
 * and then. Everything stays valid: the device must keep serving. */
static void nsm_feed(struct queue *q)
{
	volatile uint8_t *req = (volatile uint8_t *)(uintptr_t)NSM_REQ;

	for (uint32_t i = 0;; i++) {
		q->avail[1] = (uint16_t)(q->used[1] + q->size);
		q->desc[0].len = 1 + (i & 63);
		req[i & 63] = (uint8_t)i;
		if (!(i & 15))
			kick(q);
	}
}

static __attribute__((noreturn)) void nsm_race(void)
{
	struct queue *q = &race_nsm;
	unsigned long answers = 0;
	uint16_t last;
	int said = 0;

	nsm_open(q);
	set_desc(q, 0, NSM_REQ, 16, F_NEXT, 1);
	set_desc(q, 1, NSM_RESP, NSM_RESP_LEN, F_WRITE, 0);
	start_ap(q, AP_NSM_FEED);
	last = q->used[1];
	for (;;) {
		kick(q);
		answers += used_progress(q, &last);
		if (!said && answers >= 1000) {
			puts_("hostile: nsm-race: 1000 answers while both vCPUs hammer the "
			      "queue\n");
			said = 1;
		}
	}
}

static void nsm_attack(const char *mode)
{
	struct queue q;
	uint32_t id, len;

	if (streq_prefix(mode, "nsm-race"))
		nsm_race();
	if (streq_prefix(mode, "ring-outside-ram")) {
		uint64_t base = find_device(ID_NSM);

		if (!base)
			fail("no NSM device");
		device_init(base);
		queue_setup(&q, base, 0, 2, NSM_MEM, 0x7fffff000ULL);
		halt(); /* QueueReady itself must end the enclave */
	}
	nsm_open(&q);
	if (streq_prefix(mode, "nsm-desc-loop")) {
		set_desc(&q, 0, NSM_REQ, 16, F_NEXT, 1);
		set_desc(&q, 1, NSM_REQ + 16, 16, F_NEXT, 0);
		offer(&q, 0);
	} else if (streq_prefix(mode, "nsm-desc-addr")) {
		set_desc(&q, 0, FAR_OUTSIDE_RAM, 16, F_NEXT, 1);
		set_desc(&q, 1, NSM_RESP, NSM_RESP_LEN, F_WRITE, 0);
		offer(&q, 0);
	} else if (streq_prefix(mode, "nsm-desc-len")) {
		set_desc(&q, 0, NSM_REQ, 0xffffffffu, F_NEXT, 1);
		set_desc(&q, 1, NSM_RESP, NSM_RESP_LEN, F_WRITE, 0);
		offer(&q, 0);
	} else if (streq_prefix(mode, "nsm-avail-ahead")) {
		set_desc(&q, 0, NSM_REQ, 16, 0, 0);
		offer_at(&q, 0, 0x8000);
	} else if (streq_prefix(mode, "nsm-4097")) {
		/* 4097 bytes of a CBOR text string: one byte over NSM_REQUEST_MAX_SIZE. */
		uint8_t *req = (uint8_t *)(uintptr_t)NSM_REQ;

		memset(req, 'A', 4097);
		req[0] = 0x79; /* text string, 2-byte length */
		req[1] = 0x0f;
		req[2] = 0xfe;
		set_desc(&q, 0, NSM_REQ, 4097, F_NEXT, 1);
		set_desc(&q, 1, NSM_RESP, NSM_RESP_LEN, F_WRITE, 0);
		offer(&q, 0);
		kick(&q);
		if (!take_used(&q, &id, &len))
			fail("no NSM answer to a 4097-byte request");
		if (id != 0 || len == 0 || len > NSM_RESP_LEN)
			fail("NSM used element is wrong");
		if (!memfind((const uint8_t *)(uintptr_t)NSM_RESP, len, "InputTooLarge"))
			fail("the NSM answer is not InputTooLarge");
		puts_("hostile: nsm answered a 4097-byte request with InputTooLarge (");
		putu(len);
		puts_(" bytes)\n");
		poweroff();
	} else {
		fail("unknown mode");
	}
	kick(&q);
	halt();
}

/* ---- vsock (device 19: rx 0, tx 1, event 2) ---- */

#define VQ_SIZE 8
#define RX_MEM (SCRATCH + 0x40000)
#define TX_MEM (SCRATCH + 0x50000)
#define EV_MEM (SCRATCH + 0x60000)
#define RX_BUF (SCRATCH + 0x80000) /* VQ_SIZE buffers of RX_BUF_LEN */
#define RX_BUF_LEN 0x1000
#define TX_BUF (SCRATCH + 0x100000) /* VQ_SIZE packets of TX_BUF_LEN */
#define TX_BUF_LEN 0x1000

struct vsock {
	struct queue rx, tx;
	uint64_t cid;
};

/* Reset and set up the vsock device: rx with VQ_SIZE buffers of @rx_len bytes, all offered;
 * tx of @tx_size entries (VQ_SIZE but for vsock-race), none offered. */
static void vsock_open(struct vsock *v, uint32_t rx_len, unsigned tx_size)
{
	uint64_t base = find_device(ID_VSOCK);
	struct queue ev;

	if (!base)
		fail("no vsock device (run the monitor with --cid)");
	device_init(base);
	v->cid = rd(base, 0x100) | (uint64_t)rd(base, 0x104) << 32;
	queue_setup(&v->rx, base, 0, VQ_SIZE, RX_MEM, RX_MEM);
	queue_setup(&v->tx, base, 1, tx_size, TX_MEM, TX_MEM);
	queue_setup(&ev, base, 2, VQ_SIZE, EV_MEM, EV_MEM);
	for (unsigned i = 0; i < VQ_SIZE; i++) {
		set_desc(&v->rx, i, RX_BUF + i * RX_BUF_LEN, rx_len, F_WRITE, 0);
		offer(&v->rx, (uint16_t)i);
	}
	driver_ok(base);
	kick(&v->rx);
}

/* Queue one TX packet of @len bytes (header + payload at the slot's buffer) and kick. */
static void vsock_send(struct vsock *v, const struct vsock_hdr *h, const void *payload,
                       uint32_t plen, uint32_t desc_len)
{
	unsigned slot = v->tx.next_avail % VQ_SIZE;
	uint64_t buf = TX_BUF + slot * TX_BUF_LEN;
	uint32_t id, len;

	memcpy((void *)(uintptr_t)buf, h, VSOCK_HDR_LEN);
	memcpy((void *)(uintptr_t)(buf + VSOCK_HDR_LEN), payload, plen);
	set_desc(&v->tx, slot, buf, desc_len, 0, 0);
	offer(&v->tx, (uint16_t)slot);
	kick(&v->tx);
	if (!take_used(&v->tx, &id, &len) || id != slot)
		fail("the vsock device did not return a TX buffer");
}

/* The next packet the device delivered, if one comes; the buffer goes straight back. */
static int vsock_recv(struct vsock *v, struct vsock_hdr *h, uint8_t *first_byte)
{
	uint32_t id, len;
	const uint8_t *p;

	if (!take_used(&v->rx, &id, &len))
		return 0;
	if (id >= VQ_SIZE || len < VSOCK_HDR_LEN)
		fail("bad vsock RX element");
	p = (const uint8_t *)(uintptr_t)(RX_BUF + id * RX_BUF_LEN);
	memcpy(h, p, VSOCK_HDR_LEN);
	*first_byte = len > VSOCK_HDR_LEN ? p[VSOCK_HDR_LEN] : 0;
	offer(&v->rx, (uint16_t)id);
	kick(&v->rx);
	return 1;
}

static struct vsock_hdr hdr(const struct vsock *v, uint32_t src_port, uint32_t dst_port,
                            uint16_t op, uint32_t len)
{
	struct vsock_hdr h = {
		.src_cid = v->cid,
		.dst_cid = PARENT_CID,
		.src_port = src_port,
		.dst_port = dst_port,
		.len = len,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = 0x10000,
	};
	return h;
}

/* The Nitro boot heartbeat (REQUEST to CID 3 port 9000, expect RESPONSE; the byte 0xB7 there
 * and back). The monitor answers port 9000 only when it waits for a heartbeat
 * (--heartbeat-timeout; run-enclave always does). Returns the resets that arrived meanwhile;
 * fails, naming @when, if there is no answer. */
static unsigned vsock_heartbeat(struct vsock *v, const char *when)
{
	struct vsock_hdr h, in;
	unsigned rsts = 0, responses = 0, echoes = 0;
	uint8_t b = 0;

	h = hdr(v, 5100, HEARTBEAT_PORT, OP_REQUEST, 0);
	vsock_send(v, &h, &b, 0, VSOCK_HDR_LEN);
	while (!responses && vsock_recv(v, &in, &b)) {
		if (in.op == OP_RST)
			rsts++;
		else if (in.op == OP_RESPONSE && in.dst_port == 5100)
			responses++;
	}
	if (!responses) {
		puts_("hostile: no RESPONSE to the heartbeat connection ");
		fail(when);
	}
	b = HEARTBEAT_BYTE;
	h = hdr(v, 5100, HEARTBEAT_PORT, OP_RW, 1);
	vsock_send(v, &h, &b, 1, VSOCK_HDR_LEN + 1);
	while (!echoes && vsock_recv(v, &in, &b))
		if (in.op == OP_RW && in.dst_port == 5100 && in.len == 1 && b == HEARTBEAT_BYTE)
			echoes++;
		else if (in.op == OP_RST)
			rsts++;
	if (!echoes) {
		puts_("hostile: the heartbeat byte was not echoed ");
		fail(when);
	}
	return rsts;
}

/* Junk the device must shrug off (drop, or answer with RST), then proof that it still works:
 * the Nitro boot heartbeat (REQUEST, RW 0xB7 to CID 3 port 9000, expect RESPONSE and the
 * byte echoed). The monitor must run with --heartbeat-timeout so it answers port 9000. */
static void vsock_junk(struct vsock *v)
{
	static const uint8_t junk[64] = { 0xde, 0xad, 0xbe, 0xef };
	struct vsock_hdr h;
	unsigned rsts;

	h = hdr(v, 5000, 5000, OP_REQUEST, 0);
	h.type = 2; /* SEQPACKET: not offered */
	vsock_send(v, &h, junk, 0, VSOCK_HDR_LEN); /* -> RST */
	h = hdr(v, 5001, 5001, 0x7777, 0); /* unknown op, no connection -> RST */
	vsock_send(v, &h, junk, 0, VSOCK_HDR_LEN);
	h = hdr(v, 5002, 5002, OP_REQUEST, 0);
	h.src_cid = v->cid + 1; /* spoofed source: dropped, no reply */
	vsock_send(v, &h, junk, 0, VSOCK_HDR_LEN);
	h = hdr(v, 5003, 5003, OP_REQUEST, 0);
	h.dst_cid = 0x1234567890abcdefULL; /* nobody: RST */
	vsock_send(v, &h, junk, 0, VSOCK_HDR_LEN);
	h = hdr(v, 5004, 5004, OP_RW, 0x100000); /* claims 1 MiB, 64 bytes follow: dropped */
	vsock_send(v, &h, junk, sizeof(junk), VSOCK_HDR_LEN + sizeof(junk));
	h = hdr(v, 5005, 5005, OP_REQUEST, 0);
	vsock_send(v, &h, junk, 0, 20); /* a header cut at 20 bytes: dropped */
	h = hdr(v, 5006, HEARTBEAT_PORT, OP_RW, 1); /* data before any REQUEST: RST */
	vsock_send(v, &h, junk, 1, VSOCK_HDR_LEN + 1);

	rsts = vsock_heartbeat(v, "after the junk");
	puts_("hostile: vsock survived 7 junk packets: ");
	putu(rsts);
	puts_(" resets back, heartbeat echoed\n");
	poweroff();
}

static struct vsock race_vsock;

/* The TX packet of the racing modes: a REQUEST from a spoofed source CID, which the device drops
 * as junk (no reply to queue; the first few named in the log, then only at debug level). */
static struct vsock_hdr spoofed_request(const struct vsock *v, uint32_t port)
{
	struct vsock_hdr h = hdr(v, port, port, OP_REQUEST, 0);

	h.src_cid = v->cid + 1;
	return h;
}

/* Each racing TX packet is ~60 KiB (a header, then padding the device copies before it finds
 * the header junk), on the largest ring the device takes: the device's work per ring is ~15 MiB
 * of copying, vCPU 1's per refill one store. */
#define RACE_PKT_LEN (VSOCK_HDR_LEN + 0xf000)
#define RACE_TX_SIZE 256

/* vCPU 1: keep all TX entries available as fast as the device takes them, rewrite their
 * lengths (always valid), kick now and then (the boot vCPU kicks all the time). With no exit
 * per refill, vCPU 1 refills the ring faster than the device empties it. */
static void vsock_feed(struct queue *q)
{
	for (uint32_t i = 0;; i++) {
		q->avail[1] = (uint16_t)(q->used[1] + q->size);
		q->desc[i % q->size].len = RACE_PKT_LEN + (i & 15);
		if (!(i & 255))
			kick(q);
	}
}

static __attribute__((noreturn)) void vsock_race(void)
{
	struct vsock *v = &race_vsock;
	struct vsock_hdr h;
	unsigned long taken = 0;
	uint16_t last;
	int said = 0;

	vsock_open(v, RX_BUF_LEN, RACE_TX_SIZE);
	h = spoofed_request(v, 7000);
	memcpy((void *)(uintptr_t)TX_BUF, &h, VSOCK_HDR_LEN);
	for (unsigned i = 0; i < RACE_TX_SIZE; i++) {
		set_desc(&v->tx, i, TX_BUF, RACE_PKT_LEN, 0, 0); /* all share one buffer */
		v->tx.avail[2 + i] = (uint16_t)i; /* ring slot i names chain i, for good */
	}
	start_ap(&v->tx, AP_VSOCK_FEED);
	last = v->tx.used[1];
	for (;;) {
		kick(&v->tx);
		taken += used_progress(&v->tx, &last);
		if (!said && taken >= 2000) {
			puts_("hostile: vsock-race: 2000 packets taken while both vCPUs hammer the "
			      "queue\n");
			said = 1;
		}
	}
}

/* vCPU 1: flip the last descriptor of the chain between "end of chain" and "next is 0", a loop
 * back to the head, as fast as it can. */
static void desc_flip(struct queue *q)
{
	volatile struct desc *d = &q->desc[q->size - 1];

	d->next = 0;
	for (;;) {
		d->flags = F_NEXT;
		d->flags = 0;
	}
}

/* One 8-descriptor TX chain (the 44-byte header in pieces), offered and kicked again and again
 * while vCPU 1 flips its end into a loop: the device walks a table that changes under it. It
 * copies each descriptor once and checks the copy, so it either takes a whole chain or ends the
 * enclave on a loop it saw; nothing in between. */
static __attribute__((noreturn)) void vsock_desc_flip(void)
{
	static const uint32_t piece[VQ_SIZE] = { 8, 8, 8, 8, 4, 4, 2, 2 };
	struct vsock *v = &race_vsock;
	struct vsock_hdr h;
	uint64_t off = 0;

	vsock_open(v, RX_BUF_LEN, VQ_SIZE);
	h = spoofed_request(v, 7001);
	memcpy((void *)(uintptr_t)TX_BUF, &h, VSOCK_HDR_LEN);
	for (unsigned i = 0; i < VQ_SIZE; i++) {
		int last = i + 1 == VQ_SIZE;

		set_desc(&v->tx, i, TX_BUF + off, piece[i], last ? 0 : F_NEXT,
		         (uint16_t)(last ? 0 : i + 1));
		off += piece[i];
	}
	start_ap(&v->tx, AP_DESC_FLIP);
	for (unsigned long chains = 0; chains < 100000; chains++) {
		uint16_t used = v->tx.used[1];

		v->tx.avail[2 + used % VQ_SIZE] = 0;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		v->tx.avail[1] = (uint16_t)(used + 1);
		kick(&v->tx);
		for (unsigned long spin = 0; spin < 10000000UL && v->tx.used[1] == used; spin++)
			__asm__ volatile("pause");
	}
	fail("vsock-desc-flip: the device took 100000 chains and never saw the loop");
}

static void vsock_attack(const char *mode)
{
	struct vsock v;
	struct vsock_hdr h;

	if (streq_prefix(mode, "vsock-race"))
		vsock_race();
	if (streq_prefix(mode, "vsock-desc-flip"))
		vsock_desc_flip();
	if (streq_prefix(mode, "vsock-rx-small")) {
		/* Nothing wrong until the device has a packet for us: the test then connects from
		 * the host, and the monitor's main thread finds the buffer too small. */
		vsock_open(&v, 16, VQ_SIZE);
		puts_("hostile: vsock rx buffers of 16 bytes posted\n");
		halt();
	}
	vsock_open(&v, RX_BUF_LEN, VQ_SIZE);
	if (streq_prefix(mode, "vsock-junk"))
		vsock_junk(&v);
	h = hdr(&v, 6000, 6000, OP_REQUEST, 0);
	memcpy((void *)(uintptr_t)TX_BUF, &h, VSOCK_HDR_LEN);
	if (streq_prefix(mode, "vsock-desc-addr"))
		set_desc(&v.tx, 0, FAR_OUTSIDE_RAM, VSOCK_HDR_LEN, 0, 0);
	else if (streq_prefix(mode, "vsock-desc-len"))
		set_desc(&v.tx, 0, TX_BUF, 0xffffffffu, 0, 0);
	else
		fail("unknown mode");
	offer(&v.tx, 0);
	kick(&v.tx);
	halt();
}

void hostile_main(uint64_t zero_page);
void hostile_main(uint64_t zero_page)
{
	const char *mode = cmdline_mode(zero_page);

	if (cmdline_word(zero_page, "hostile_heartbeat")) {
		struct vsock v;

		vsock_open(&v, RX_BUF_LEN, VQ_SIZE);
		vsock_heartbeat(&v, "at boot");
		puts_("hostile: boot heartbeat echoed; now the attack\n");
	}
	if (mode[0] == 'v') /* vsock-... */
		vsock_attack(mode);
	nsm_attack(mode);
}

/* The entry: a stack, then C. RSI holds the zero page (boot protocol). */
__asm__(".section .text.entry, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "	cli\n"
        "	movq $" STACK_TOP ", %rsp\n"
        "	movq %rsi, %rdi\n"
        "	call hostile_main\n"
        "1:	hlt\n"
        "	jmp 1b\n"
        ".previous\n");

/* vCPU 1's way from the start-up IPI (real mode, CS = AP_TRAMPOLINE >> 4, IP 0) to long mode:
 * a GDT of its own, protected mode, then PAE, the boot vCPU's CR3, EFER.LME and paging, and a
 * far jump into 64-bit code. Position independent but for AP_TRAMPOLINE, where it is copied. */
__asm__(".section .rodata.ap_trampoline, \"a\"\n"
        ".globl ap_trampoline, ap_trampoline_cr3, ap_trampoline_end\n"
        ".code16\n"
        "ap_trampoline:\n"
        "	cli\n"
        "	movw %cs, %ax\n"
        "	movw %ax, %ds\n"
        "	lgdtl ap_gdtr - ap_trampoline\n"
        "	movl %cr0, %eax\n"
        "	andl $0x9fffffff, %eax\n" /* caches on (CD, NW clear) */
        "	orl $1, %eax\n" /* PE */
        "	movl %eax, %cr0\n"
        "	ljmpl $0x08, $" AP_TRAMPOLINE_S " + ap_pm32 - ap_trampoline\n"
        ".code32\n"
        "ap_pm32:\n"
        "	movw $0x18, %ax\n"
        "	movw %ax, %ds\n"
        "	movw %ax, %es\n"
        "	movw %ax, %ss\n"
        "	movl %cr4, %eax\n"
        "	orl $0x20, %eax\n" /* PAE */
        "	movl %eax, %cr4\n"
        "	movl " AP_TRAMPOLINE_S " + ap_trampoline_cr3 - ap_trampoline, %eax\n"
        "	movl %eax, %cr3\n"
        "	movl $0xc0000080, %ecx\n" /* EFER */
        "	rdmsr\n"
        "	orl $0x100, %eax\n" /* LME */
        "	wrmsr\n"
        "	movl %cr0, %eax\n"
        "	orl $0x80000000, %eax\n" /* PG: long mode from here */
        "	movl %eax, %cr0\n"
        "	ljmpl $0x10, $ap_entry64\n"
        ".balign 8\n"
        "ap_gdt:\n"
        "	.quad 0\n"
        "	.quad 0x00cf9a000000ffff\n" /* 0x08: 32-bit code, flat */
        "	.quad 0x00af9a000000ffff\n" /* 0x10: 64-bit code */
        "	.quad 0x00cf92000000ffff\n" /* 0x18: data, flat */
        "ap_gdtr:\n"
        "	.word 4 * 8 - 1\n"
        "	.long " AP_TRAMPOLINE_S " + ap_gdt - ap_trampoline\n"
        ".balign 4\n"
        "ap_trampoline_cr3:\n"
        "	.long 0\n"
        "ap_trampoline_end:\n"
        ".code64\n"
        ".previous\n"
        ".section .text\n"
        "ap_entry64:\n"
        "	movw $0x18, %ax\n"
        "	movw %ax, %ds\n"
        "	movw %ax, %es\n"
        "	movw %ax, %ss\n"
        "	movq $" AP_STACK_TOP ", %rsp\n"
        "	call ap_main\n"
        "1:	cli\n"
        "	hlt\n"
        "	jmp 1b\n"
        ".previous\n");

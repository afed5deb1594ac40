/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NSM as the monitor reaches it (src/vmm/devices/nsm_backend.h): open() starts this build's
 * cloister-nsmd when none runs, which measures the image it is given exactly as the EIF reader
 * does and mints a leaf from a CA it creates on first use; the session answers requests with
 * the image's PCR0; the daemon runs under its own seccomp filter. Enclaves share one daemon,
 * each with its own PCRs; a sandboxed process (a monitor whose guest runs) cannot open a
 * session; the daemon ends after its last session.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "cloister/attest.h"
#include "cloister/eif.h"
#include "lib/nsm/wire.h"
#include "lib/util/file.h"
#include "vmm/devices/nsm_backend.h"

static char dir[] = "/tmp/cloister-nsm-backend-XXXXXX";
static char ca_dir[sizeof(dir) + 8];

static char *path_in(const char *name)
{
	static char buf[4][256];
	static unsigned next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

/* A small unsigned EIF (fake kernel: only the boot needs a real one), in memory; @cmdline
 * tells images apart. */
static uint8_t *make_eif_with(const char *cmdline, size_t *len, struct eif_measurements *meas)
{
	const char *rd[] = { path_in("rd0") };
	struct eif_build_params p = { 0 };
	struct cl_diag d = { "" };
	uint8_t *buf = NULL;

	assert_int_equal(cl_file_write_atomic(path_in("kernel"), "not a kernel", 12, 0644, &d), 0);
	assert_int_equal(cl_file_write_atomic(rd[0], "ramdisk bytes", 13, 0644, &d), 0);
	p.kernel_path = path_in("kernel");
	p.cmdline = cmdline;
	p.ramdisk_paths = rd;
	p.num_ramdisks = 1;
	p.build_time = "2024-05-01T10:00:00+00:00";
	assert_int_equal(eif_build(&p, path_in("a.eif"), meas, &d), EIF_OK);
	assert_int_equal(cl_file_read_all(path_in("a.eif"), 1 << 20, &buf, len, &d), 0);
	return buf;
}

static uint8_t *make_eif(size_t *len, struct eif_measurements *meas)
{
	return make_eif_with("console=ttyS0", len, meas);
}

/* The pid of the daemon serving this test's state directory and CA directory @ca, or -1 when
 * none listens. */
static pid_t daemon_pid_for(const char *ca)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char name[108];
	pid_t pid = -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	nsmd_socket_name(dir, ca, name, sizeof(name));
	memcpy(sa.sun_path + 1, name, strlen(name));
	if (fd >= 0 &&
	    connect(fd, (struct sockaddr *)&sa,
	            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name))) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
		pid = cr.pid;
	if (fd >= 0)
		close(fd);
	return pid;
}

static pid_t daemon_pid(void)
{
	return daemon_pid_for(ca_dir);
}

/* The "Seccomp_filters:" count in /proc/@pid/status (-1 if absent). */
static long seccomp_filters_of(pid_t pid)
{
	char path[64], line[256];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Seccomp_filters:", 16))
			n = strtol(line + 16, NULL, 10);
	fclose(f);
	return n;
}

/* Whether @pid is gone within @seconds (an event awaited, not a time measured). */
static bool gone_within(pid_t pid, int seconds)
{
	for (int i = 0; i < seconds * 20; i++) {
		if (kill(pid, 0) < 0)
			return true;
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	}
	return false;
}

static const uint8_t describe_pcr0[] = { 0xa1, 0x6b, 'D',  'e',  's', 'c', 'r', 'i', 'b', 'e', 'P',
	                                 'C',  'R',  0xa1, 0x65, 'i', 'n', 'd', 'e', 'x', 0x00 };

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	/* The daemon's name follows nitro-cli's state directory: this test gets its own. */
	setenv("NITRO_CLI_SOCKETS_PATH", dir, 1);
	snprintf(ca_dir, sizeof(ca_dir), "%s/ca", dir); /* created on first use */
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_nsm_backend_measures_what_it_is_given(void **state)
{
	struct nsm_backend_config cfg = { .ca_dir = ca_dir, .module_id = "i-0-enc01" };
	const struct nsm_backend *b = nsm_backend_load(NULL);
	struct eif_measurements built;
	struct eif_image got;
	struct cl_diag d = { "" };
	uint8_t resp[0x3000];
	size_t len, n = 0;
	uint8_t *eif = make_eif(&len, &built);
	void *st = NULL;

	(void)state;
	assert_non_null(b);
	if (b->open(&cfg, eif, len, &st, &got, &d) != NSM_BACKEND_OK)
		fail_msg("open: %s", d.msg);
	assert_non_null(st);
	assert_true(got.measured);
	assert_memory_equal(got.meas.pcr0, built.pcr0, EIF_PCR_SIZE);
	assert_memory_equal(got.meas.pcr1, built.pcr1, EIF_PCR_SIZE);
	assert_memory_equal(got.meas.pcr2, built.pcr2, EIF_PCR_SIZE);
	assert_false(got.meas.has_pcr8);
	/* the state serves the same PCR0 to the guest: {"DescribePCR": {"lock": true, "data": …}} */
	assert_int_equal(
	        b->handle(st, describe_pcr0, sizeof(describe_pcr0), resp, sizeof(resp), &n), 0);
	assert_non_null(memmem(resp, n, built.pcr0, EIF_PCR_SIZE));
	/* this build's daemon answered, and it goes once its last session has */
	{
		char exe[300], want[300];
		ssize_t k;
		pid_t pid = daemon_pid();

		assert_true(pid > 0);
		snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
		k = readlink(exe, want, sizeof(want) - 1);
		assert_true(k > 0);
		want[k] = '\0';
		assert_string_equal(want, CLOISTER_BUILD_ROOT "/src/nsmd/cloister-nsmd");
		/* it serves under its own seccomp allow-list: one filter more than it started
		 * with, which it inherited from us */
		assert_int_equal(seccomp_filters_of(pid), seccomp_filters_of(getpid()) + 1);
		b->close(st);
		assert_true(gone_within(pid, 30));
		assert_int_equal(daemon_pid(), -1);
	}
	eif_image_release(&got);
	free(eif);
}

/* Two enclaves at once: one daemon, each session with its own image's PCR0. */
static void test_nsm_backend_sessions_share_a_daemon_not_their_pcrs(void **state)
{
	struct nsm_backend_config c1 = { .ca_dir = ca_dir, .module_id = "i-0-enc03" };
	struct nsm_backend_config c2 = { .ca_dir = ca_dir, .module_id = "i-0-enc04" };
	const struct nsm_backend *b = nsm_backend_load(NULL);
	struct eif_measurements m1, m2;
	struct eif_image g1, g2;
	struct cl_diag d = { "" };
	uint8_t resp[0x3000];
	size_t l1, l2, n = 0;
	uint8_t *e1 = make_eif_with("console=ttyS0 one", &l1, &m1);
	uint8_t *e2 = make_eif_with("console=ttyS0 two", &l2, &m2);
	void *s1 = NULL, *s2 = NULL;
	pid_t p1, p2;

	(void)state;
	if (b->open(&c1, e1, l1, &s1, &g1, &d) != NSM_BACKEND_OK)
		fail_msg("open 1: %s", d.msg);
	p1 = daemon_pid();
	if (b->open(&c2, e2, l2, &s2, &g2, &d) != NSM_BACKEND_OK)
		fail_msg("open 2: %s", d.msg);
	p2 = daemon_pid();
	assert_true(p1 > 0);
	assert_int_equal(p1, p2);
	assert_memory_not_equal(m1.pcr0, m2.pcr0, EIF_PCR_SIZE);
	assert_int_equal(
	        b->handle(s2, describe_pcr0, sizeof(describe_pcr0), resp, sizeof(resp), &n), 0);
	assert_non_null(memmem(resp, n, m2.pcr0, EIF_PCR_SIZE));
	assert_null(memmem(resp, n, m1.pcr0, EIF_PCR_SIZE));
	b->close(s2);
	assert_int_equal(
	        b->handle(s1, describe_pcr0, sizeof(describe_pcr0), resp, sizeof(resp), &n), 0);
	assert_non_null(memmem(resp, n, m1.pcr0, EIF_PCR_SIZE));
	b->close(s1);
	assert_true(gone_within(p1, 30));
	eif_image_release(&g1);
	eif_image_release(&g2);
	free(e1);
	free(e2);
}

/* A monitor whose guest runs is sandboxed: taken over, it must not get a second NSM whose
 * PCRs it chose. The child stands in for it with a seccomp filter of its own, while the
 * daemon an unsandboxed monitor (this process) started serves. */
static void test_nsm_backend_refuses_a_sandboxed_process(void **state)
{
	struct nsm_backend_config cfg = { .ca_dir = ca_dir, .module_id = "i-0-enc05" };
	const struct nsm_backend *b = nsm_backend_load(NULL);
	struct eif_measurements built;
	struct eif_image mine;
	struct cl_diag md = { "" };
	size_t len;
	uint8_t *eif = make_eif(&len, &built);
	int status = 0;
	void *ms = NULL;
	pid_t pid;

	(void)state;
	if (b->open(&cfg, eif, len, &ms, &mine, &md) != NSM_BACKEND_OK)
		fail_msg("open: %s", md.msg);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		struct eif_image got;
		struct cl_diag d = { "" };
		void *st = NULL;
		enum nsm_backend_err r;

		if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(acct), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(3);
		r = b->open(&cfg, eif, len, &st, &got, &d);
		if (r == NSM_BACKEND_OK)
			_exit(1);
		_exit(r == NSM_BACKEND_SETUP && strstr(d.msg, "already sandboxed") ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	b->close(ms);
	eif_image_release(&mine);
	free(eif);
}

/* The daemon may reach no files but its CA directory's, so each CA directory gets a daemon of
 * its own; each creates its CA where its sessions asked. */
static void test_nsm_backend_each_ca_directory_has_its_own_daemon(void **state)
{
	char other[sizeof(ca_dir) + 8], root_pem[sizeof(other) + 32];
	struct nsm_backend_config c1 = { .ca_dir = ca_dir, .module_id = "i-0-enc06" };
	struct nsm_backend_config c2 = { .ca_dir = other, .module_id = "i-0-enc07" };
	const struct nsm_backend *b = nsm_backend_load(NULL);
	struct eif_measurements m;
	struct eif_image g1, g2;
	struct cl_diag d = { "" };
	size_t len;
	uint8_t *eif = make_eif(&len, &m);
	void *s1 = NULL, *s2 = NULL;
	pid_t p1, p2;

	(void)state;
	snprintf(other, sizeof(other), "%s/ca2", dir);
	if (b->open(&c1, eif, len, &s1, &g1, &d) != NSM_BACKEND_OK)
		fail_msg("open 1: %s", d.msg);
	if (b->open(&c2, eif, len, &s2, &g2, &d) != NSM_BACKEND_OK)
		fail_msg("open 2: %s", d.msg);
	p1 = daemon_pid_for(ca_dir);
	p2 = daemon_pid_for(other);
	assert_true(p1 > 0);
	assert_true(p2 > 0);
	assert_int_not_equal(p1, p2);
	snprintf(root_pem, sizeof(root_pem), "%s/%s", other, ATTEST_ROOT_CERT);
	assert_int_equal(access(root_pem, R_OK), 0);
	b->close(s1);
	b->close(s2);
	assert_true(gone_within(p1, 30));
	assert_true(gone_within(p2, 30));
	eif_image_release(&g1);
	eif_image_release(&g2);
	free(eif);
}

/* A CA directory the daemon cannot create: it does not start, says why and how to fix it, and
 * leaves no daemon behind. */
static void test_nsm_backend_unusable_ca_directory_is_named_with_the_fix(void **state)
{
	static const char bad[] = "/proc/cloister-no-ca-here";
	struct nsm_backend_config cfg = { .ca_dir = bad, .module_id = "i-0-enc08" };
	const struct nsm_backend *b = nsm_backend_load(NULL);
	struct eif_measurements m;
	struct eif_image got;
	struct cl_diag d = { "" };
	size_t len;
	uint8_t *eif = make_eif(&len, &m);
	void *st = NULL;

	(void)state;
	assert_int_equal(b->open(&cfg, eif, len, &st, &got, &d), NSM_BACKEND_SETUP);
	assert_null(st);
	assert_non_null(strstr(d.msg, "did not start"));
	assert_non_null(strstr(d.msg, bad));
	assert_non_null(strstr(d.msg, "CLOISTER_CA_DIR"));
	assert_int_equal(daemon_pid_for(bad), -1);
	free(eif);
}

static void test_nsm_backend_refuses_what_is_not_an_eif(void **state)
{
	struct nsm_backend_config cfg = { .ca_dir = ca_dir, .module_id = "i-0-enc02" };
	const struct nsm_backend *b = nsm_backend_load(NULL);
	struct eif_measurements built;
	struct eif_image got;
	struct cl_diag d = { "" };
	size_t len;
	uint8_t *eif = make_eif(&len, &built);
	void *st = NULL;

	(void)state;
	assert_non_null(b);
	eif[len - 1] ^= 1; /* the CRC no longer holds */
	assert_int_equal(b->open(&cfg, eif, len, &st, &got, &d), NSM_BACKEND_IMAGE);
	assert_null(st);
	assert_non_null(strstr(d.msg, "CRC"));
	free(eif);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nsm_backend_measures_what_it_is_given),
		cmocka_unit_test(test_nsm_backend_sessions_share_a_daemon_not_their_pcrs),
		cmocka_unit_test(test_nsm_backend_refuses_a_sandboxed_process),
		cmocka_unit_test(test_nsm_backend_each_ca_directory_has_its_own_daemon),
		cmocka_unit_test(test_nsm_backend_unusable_ca_directory_is_named_with_the_fix),
		cmocka_unit_test(test_nsm_backend_refuses_what_is_not_an_eif),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

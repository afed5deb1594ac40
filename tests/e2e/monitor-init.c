/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PID 1 for the monitor's end-to-end tests: proves the kernel reached user space, says how many
 * CPUs it sees, then ends the guest the way the test asks (kernel command line e2e_end=
 * poweroff|reboot|hang; unknown key=value parameters reach init as environment variables).
 * With e2e_nsm=1 it also loads /modules/{virtio_mmio,nsm}.ko and asks the NSM for DescribeNSM
 * through /dev/nsm, exercising the monitor's virtio-mmio transport with the real Linux drivers.
 * Static, no libraries beyond libc.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#define CL_BOOT_TIMER_GUEST
#include "cloister/boot_timer.h"

/* linux/uapi nsm.h (nitro-compat §4) */
struct nsm_iovec {
	uint64_t addr;
	uint64_t len;
};
struct nsm_raw {
	struct nsm_iovec request;
	struct nsm_iovec response;
};
#define NSM_IOCTL_RAW 0xc0200a00UL

static int load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = (int)syscall(SYS_finit_module, fd, "", 0);
	close(fd);
	return rc;
}

static void nsm_check(void)
{
	static const uint8_t req[] = { 0x6b, 'D', 'e', 's', 'c', 'r', 'i', 'b', 'e', 'N', 'S', 'M' };
	static uint8_t resp[0x3000];
	struct nsm_raw raw;
	int fd = -1;

	if (load_module("/modules/virtio_mmio.ko") || load_module("/modules/nsm.ko")) {
		printf("cloister-e2e: nsm: loading modules failed: %s\n", strerror(errno));
		return;
	}
	for (int i = 0; i < 200 && fd < 0; i++) {
		fd = open("/dev/nsm", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			usleep(10000);
	}
	if (fd < 0) {
		printf("cloister-e2e: nsm: no /dev/nsm: %s\n", strerror(errno));
		return;
	}
	raw.request.addr = (uintptr_t)req;
	raw.request.len = sizeof(req);
	raw.response.addr = (uintptr_t)resp;
	raw.response.len = sizeof(resp);
	if (ioctl(fd, NSM_IOCTL_RAW, &raw) < 0) {
		printf("cloister-e2e: nsm: ioctl failed: %s\n", strerror(errno));
	} else if (raw.response.len > sizeof(req) + 1 && resp[0] == 0xa1 &&
	           !memcmp(resp + 1, req, sizeof(req))) {
		/* The module id is a text string in the answer: print the answer's printable bytes. */
		printf("cloister-e2e: nsm: DescribeNSM answered, %llu bytes: ",
		       (unsigned long long)raw.response.len);
		for (uint64_t i = 0; i < raw.response.len; i++)
			putchar(resp[i] >= 0x20 && resp[i] < 0x7f ? resp[i] : '.');
		putchar('\n');
	} else {
		printf("cloister-e2e: nsm: unexpected answer of %llu bytes\n",
		       (unsigned long long)raw.response.len);
	}
	close(fd);
}

int main(void)
{
	const char *end = getenv("e2e_end");
	long cpus;
	int fd;

	cl_boot_timer_mark(CL_BOOT_STAGE_INIT); /* as cloister-init does: the boot timeline */
	mkdir("/dev", 0755);
	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	printf("cloister-e2e: init reached, %ld cpus online\n", cpus);
	fflush(stdout);
	if (getenv("e2e_nsm"))
		nsm_check();
	fflush(stdout);
	sync();
	if (end && !strcmp(end, "hang"))
		for (;;)
			pause();
	reboot(end && !strcmp(end, "reboot") ? RB_AUTOBOOT : RB_POWER_OFF);
	return 1;
}

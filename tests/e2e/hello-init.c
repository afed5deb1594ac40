/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny static PID 1 for the reference microVM boot (tests/e2e/test_00_microvm_reference.sh):
 * it proves the kernel reached user space by printing a marker on the console, optionally sends
 * the Nitro-style heartbeat byte 0xB7 over vsock, and powers off.
 *
 * The heartbeat goes to CID 2, not the Nitro parent CID 3: vhost-vsock only delivers guest
 * packets addressed to CID 2 (docs/parent-instance.md). It runs only if the initramfs carries
 * the Debian cloud kernel's vsock modules in /modules (that flavour builds them as modules).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CL_BOOT_TIMER_GUEST
#include "cloister/boot_timer.h"

#define MARKER "CLOISTER-E2E-HELLO"
#define HEARTBEAT_PORT 9000u
#define HEARTBEAT_BYTE 0xB7

/* In dependency order (from each module's .modinfo). */
static const char *const modules[] = { "virtio_mmio", "vsock", "vmw_vsock_virtio_transport_common",
	                               "vmw_vsock_virtio_transport" };

static int load_module(const char *name)
{
	char path[128];
	int fd, rc;

	snprintf(path, sizeof(path), "/modules/%s.ko", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = (int)syscall(SYS_finit_module, fd, "", 0);
	rc = rc < 0 && errno != EEXIST ? -errno : 0;
	close(fd);
	return rc;
}

static void heartbeat(void)
{
	struct sockaddr_vm addr;
	struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
	unsigned char b = HEARTBEAT_BYTE;
	struct stat st;
	int fd = -1;

	if (stat("/modules", &st) != 0) {
		printf(MARKER ": heartbeat skipped (no /modules in the initramfs)\n");
		return;
	}
	for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
		int rc = load_module(modules[i]);

		if (rc < 0) {
			printf(MARKER ": heartbeat skipped (loading %s: %s)\n", modules[i],
			       strerror(-rc));
			return;
		}
	}
	memset(&addr, 0, sizeof(addr));
	addr.svm_family = AF_VSOCK;
	addr.svm_cid = VMADDR_CID_HOST;
	addr.svm_port = HEARTBEAT_PORT;
	/* The virtio-mmio device binds asynchronously after the module loads: retry for ~3 s. */
	for (int attempt = 0; attempt < 30; attempt++) {
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
				break;
			close(fd);
			fd = -1;
		}
		nanosleep(&(struct timespec){ .tv_sec = 0, .tv_nsec = 100000000 }, NULL);
	}
	if (fd < 0) {
		printf(MARKER ": heartbeat failed (connect to CID 2 port %u: %s)\n", HEARTBEAT_PORT,
		       strerror(errno));
		return;
	}
	if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1)
		printf(MARKER ": heartbeat failed (%s)\n", strerror(errno));
	else
		printf(MARKER ": heartbeat 0x%02x answered with 0x%02x\n", HEARTBEAT_BYTE, b);
	close(fd);
}

int main(void)
{
	int fd;

	cl_boot_timer_mark(CL_BOOT_STAGE_INIT); /* as cloister-init does: the boot timeline */
	/* The initramfs has no /dev/console node: mount devtmpfs to get one. */
	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf(MARKER ": init reached (pid %d)\n", (int)getpid());
	heartbeat();
	printf(MARKER ": powering off\n");
	sync();
	reboot(RB_POWER_OFF);
	/* No ACPI power-off: reboot, which the launcher's -no-reboot turns into an exit. */
	reboot(RB_AUTOBOOT);
	return 0;
}

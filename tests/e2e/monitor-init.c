/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PID 1 for the monitor's end-to-end tests: proves the kernel reached user space, says how many
 * CPUs it sees, then ends the guest the way the test asks (kernel command line e2e_end=
 * poweroff|reboot|hang; unknown key=value parameters reach init as environment variables).
 * Static, no libraries beyond libc.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
	const char *end = getenv("e2e_end");
	long cpus;
	int fd;

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
	sync();
	if (end && !strcmp(end, "hang"))
		for (;;)
			pause();
	reboot(end && !strcmp(end, "reboot") ? RB_AUTOBOOT : RB_POWER_OFF);
	return 1;
}

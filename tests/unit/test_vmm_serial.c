/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The 16550 UART's output side: what the guest writes reaches the console file a line at a
 * time, and when that file cannot take it (the logs disk full: /dev/full says ENOSPC to every
 * write) the guest goes on, the output is dropped, and the log says so once per episode.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util/log.h"
#include "vmm/devices/serial.h"

static struct serial s;
static char logged[8][512];
static enum cl_log_level levels[8];
static unsigned nlogged;

static void sink(enum cl_log_level level, const char *msg, void *opaque)
{
	(void)opaque;
	if (nlogged < 8) {
		snprintf(logged[nlogged], sizeof(logged[0]), "%s", msg);
		levels[nlogged] = level;
	}
	nlogged++;
}

static void guest_prints(const char *line)
{
	while (*line)
		serial_out(&s, 0, (uint8_t)*line++); /* THR, as the 8250 driver writes it */
}

/* A new empty file in $TMPDIR (or /tmp): its fd, its path in @path. */
static int temp_file(char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/cloister-serial-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	return fd;
}

static void test_serial_writes_whole_lines_to_the_console(void **state)
{
	char path[256], buf[64] = "";
	int fd = temp_file(path, sizeof(path));

	(void)state;
	serial_init(&s, fd, NULL, NULL);
	guest_prints("hello");
	assert_int_equal(lseek(fd, 0, SEEK_END), 0); /* buffered until the newline */
	guest_prints(" world\n");
	assert_int_equal(pread(fd, buf, sizeof(buf) - 1, 0), 12);
	assert_string_equal(buf, "hello world\n");
	serial_destroy(&s);
	close(fd);
	unlink(path);
}

/* Console output on a full disk: 1000 lines dropped, one warning naming the error; room comes
 * back (the same fd now a writable file): one info line with the bytes lost, and the next line
 * is written. A second episode warns again; neither floods. */
static void test_serial_full_console_is_dropped_with_one_warning_per_episode(void **state)
{
	char path[256], buf[64] = "";
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC), fd, file;

	(void)state;
	assert_true(full >= 0);
	file = temp_file(path, sizeof(path));
	fd = dup(full);
	assert_true(fd >= 0);
	nlogged = 0;
	cl_log_set_sink(sink, NULL);
	serial_init(&s, fd, NULL, NULL);

	for (int i = 0; i < 1000; i++)
		guest_prints("0123456789\n");
	assert_int_equal(nlogged, 1);
	assert_int_equal(levels[0], CL_LOG_WARN);
	assert_non_null(strstr(logged[0], "console: cannot write the enclave's console output: "
	                                  "No space left on device"));

	assert_int_equal(dup2(file, fd), fd); /* room again */
	guest_prints("back\n");
	assert_int_equal(nlogged, 2);
	assert_int_equal(levels[1], CL_LOG_INFO);
	assert_string_equal(logged[1], "console: writing the enclave's console output again; "
	                               "11000 bytes were dropped");
	assert_int_equal(pread(fd, buf, sizeof(buf) - 1, 0), 5);
	assert_string_equal(buf, "back\n");

	assert_int_equal(dup2(full, fd), fd); /* full again: a new episode, warned again */
	for (int i = 0; i < 10; i++)
		guest_prints("x\n");
	assert_int_equal(nlogged, 3);
	assert_int_equal(levels[2], CL_LOG_WARN);

	serial_destroy(&s);
	cl_log_set_sink(NULL, NULL);
	close(fd);
	close(file);
	close(full);
	unlink(path);
}

/* A disk that keeps filling and emptying (a log rotated on a full disk, say) is named at warning
 * level three times; later episodes go to the debug level only. */
static void test_serial_many_episodes_do_not_flood_the_log(void **state)
{
	char path[256];
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC), file, fd;
	unsigned warnings = 0;

	(void)state;
	assert_true(full >= 0);
	file = temp_file(path, sizeof(path));
	fd = dup(full);
	nlogged = 0;
	cl_log_set_sink(sink, NULL);
	serial_init(&s, fd, NULL, NULL);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(dup2(full, fd), fd);
		guest_prints("lost\n");
		assert_int_equal(dup2(file, fd), fd);
		guest_prints("kept\n");
	}
	for (unsigned i = 0; i < 6; i++)
		warnings += levels[i] == CL_LOG_WARN;
	assert_int_equal(warnings, 3); /* the fourth episode was at debug level, filtered out */
	assert_int_equal(nlogged, 6); /* three warnings, three "again" lines */
	assert_non_null(strstr(logged[4], "logged at debug level only"));
	serial_destroy(&s);
	cl_log_set_sink(NULL, NULL);
	close(fd);
	close(file);
	close(full);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serial_writes_whole_lines_to_the_console),
		cmocka_unit_test(test_serial_full_console_is_dropped_with_one_warning_per_episode),
		cmocka_unit_test(test_serial_many_episodes_do_not_flood_the_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

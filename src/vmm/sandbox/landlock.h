/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_VMM_SANDBOX_LANDLOCK_H
#define CLOISTER_VMM_SANDBOX_LANDLOCK_H

/*
 * The file system a process keeps (Landlock, Linux 5.13+). seccomp (seccomp.h) says which
 * system calls a process may make; it cannot say which files open() may reach. A process that
 * must keep opening files (cloister-nsmd creates and reads its CA) names here the few places
 * it needs; every other path is closed to it and to the threads it starts later, for good. It
 * also loses TCP bind/connect (Landlock 4+), signalling and connecting to abstract Unix
 * sockets outside itself (6+).
 */

#include <stddef.h>

#include "cloister/diag.h"

enum sandbox_fs_access {
	SANDBOX_FS_READ = 1, /* read files, list directories */
	SANDBOX_FS_WRITE = 2, /* create, write, truncate, replace and remove files (no dirs) */
	SANDBOX_FS_REMOVE = 4, /* remove files, nothing else (a socket file at the end) */
};

struct sandbox_fs_rule {
	const char *path; /* must exist: a directory (the rule covers all beneath it) or a file */
	unsigned access; /* enum sandbox_fs_access bits */
};

/* The Landlock ABI version the running kernel offers, 0 when it has none (not built in, or
 * not among the active security modules). */
int sandbox_landlock_abi(void);

/*
 * Close every path but @rules to the calling thread and the threads it starts later (and set
 * no_new_privs, which Landlock needs). Returns 1 when confined, 0 when the kernel has no
 * Landlock (nothing is changed: the caller decides whether that is acceptable), -1 with @d
 * set when a rule cannot be made (a missing path, a failing call).
 */
int sandbox_confine_fs(const struct sandbox_fs_rule *rules, size_t n, struct cl_diag *d);

#endif

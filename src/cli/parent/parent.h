/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_CLI_PARENT_H
#define CLOISTER_CLI_PARENT_H

/*
 * `cloister parent-instance`: the L1 Linux VM (QEMU, software emulation, emulated AMD-V) in
 * which /dev/kvm is real on hosts whose own KVM cannot boot a Linux guest.
 * See docs/parent-instance.md.
 */

#include <stddef.h>

#include "cloister/diag.h"

/* Exit statuses of `run` when the command itself could not report one (timeout(1)'s
 * conventions, so scripts can tell them apart from the command's own failures). */
#define PARENT_EXIT_TIMEOUT 124
#define PARENT_EXIT_FAILED 125

/* Exit statuses of `check` for verdicts other than "direct" (0). Outside nitro-cli's 0..60. */
#define PARENT_CHECK_EXIT_NEEDS_PARENT 101
#define PARENT_CHECK_EXIT_NO_KVM 102

/* A kernel for the parent instance: the unpacked Debian package (scripts/fetch-kernel.sh). */
struct parent_kernel {
	char dir[4096]; /* unpacked package root */
	char vmlinuz[4096]; /* boot/vmlinuz-<release> */
	char release[256]; /* e.g. 6.12.95+deb12-amd64 */
};

/*
 * Find the kernel: @dir if given (an unpacked package root), else the directory printed by
 * `fetch-kernel.sh parent` (located through $CLOISTER_FETCH_KERNEL, next to the executable's
 * source tree, or the source tree this binary was built from). Returns 0 or -1 with @d set.
 */
int parent_kernel_locate(const char *dir, struct parent_kernel *k, struct cl_diag *d);

/*
 * Return in @path (size @cap) an L1 initramfs for @k: busybox-static, /init and the 9p and KVM
 * modules (decompressed, in dependency order). Reused from
 * $CLOISTER_CACHE/parent-instance/<release>-<hash>/initramfs.cpio (default cache
 * ~/.cache/cloister) when present; the hash covers /init, the module list and busybox, so a
 * change to any of them builds a new one. Returns 0 or -1 with @d set.
 */
int parent_initramfs_get(const struct parent_kernel *k, char *path, size_t cap, struct cl_diag *d);

int parent_cmd_run(int argc, char **argv);

#endif

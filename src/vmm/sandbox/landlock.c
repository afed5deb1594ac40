/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/sandbox/landlock.h"

/*
 * The kernel's Landlock interface (include/uapi/linux/landlock.h), spelled out here: the build
 * host's headers may predate the rights a newer running kernel offers, and which of them are
 * asked for is decided at run time from the ABI version.
 */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_FS_EXECUTE (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_REG (1ull << 8)
#define LL_FS_TRUNCATE (1ull << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15) /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0) /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)

/* Rights that make sense on a file rather than a directory: a rule on a file may hold only
 * these. */
#define LL_FS_FILE_RIGHTS \
	(LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped; /* ABI 6 */
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

int sandbox_landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);

	return abi > 0 ? (int)abi : 0;
}

/* Every file system right the kernel of @abi knows: handled, hence denied unless a rule
 * grants it. */
static uint64_t fs_rights(int abi)
{
	uint64_t r = (1ull << 13) - 1; /* ABI 1: execute .. make_sym */

	if (abi >= 2)
		r |= 1ull << 13; /* refer: moving files between directories */
	if (abi >= 3)
		r |= LL_FS_TRUNCATE;
	if (abi >= 5)
		r |= LL_FS_IOCTL_DEV;
	return r;
}

static uint64_t rule_rights(unsigned access, uint64_t handled, bool dir)
{
	uint64_t r = 0;

	if (access & SANDBOX_FS_READ)
		r |= LL_FS_READ_FILE | LL_FS_READ_DIR;
	if (access & SANDBOX_FS_WRITE)
		r |= LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_MAKE_REG | LL_FS_REMOVE_FILE;
	if (access & SANDBOX_FS_REMOVE)
		r |= LL_FS_REMOVE_FILE;
	if (!dir)
		r &= LL_FS_FILE_RIGHTS;
	return r & handled;
}

int sandbox_confine_fs(const struct sandbox_fs_rule *rules, size_t n, struct cl_diag *d)
{
	int abi = sandbox_landlock_abi();
	struct ll_ruleset_attr attr = { 0 };
	size_t attr_size = sizeof(attr.handled_access_fs);
	int rfd, rc = -1;

	if (abi <= 0)
		return 0;
	attr.handled_access_fs = fs_rights(abi);
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		attr_size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	rfd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (rfd < 0) {
		cl_diag_set(d, "landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct ll_path_beneath_attr pb = { 0 };
		struct stat st;
		int fd = open(rules[i].path, O_PATH | O_CLOEXEC);

		if (fd < 0 || fstat(fd, &st) < 0) {
			cl_diag_set(d, "cannot confine the file system to %s: %s", rules[i].path,
			            strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		pb.parent_fd = fd;
		pb.allowed_access = rule_rights(rules[i].access, attr.handled_access_fs,
		                                S_ISDIR(st.st_mode));
		if (pb.allowed_access &&
		    syscall(SYS_landlock_add_rule, rfd, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
			cl_diag_set(d, "landlock_add_rule for %s: %s", rules[i].path,
			            strerror(errno));
			close(fd);
			goto out;
		}
		close(fd);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		cl_diag_set(d, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		goto out;
	}
	if (syscall(SYS_landlock_restrict_self, rfd, 0) < 0) {
		cl_diag_set(d, "landlock_restrict_self: %s", strerror(errno));
		goto out;
	}
	rc = 1;
out:
	close(rfd);
	return rc;
}

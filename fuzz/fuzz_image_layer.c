/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An image layer is untrusted bytes: feed them as a tar stream (any compression libarchive
 * detects) into the in-memory tree twice (a lower and an upper layer, so whiteouts and hard
 * links meet existing entries), then write the ramdisk. Anything may fail; nothing may crash,
 * leak, or write outside the tree.
 */
#include <archive.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/image/image.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int devnull = -1;

/*
 * Each input makes a tree, and each tree an unlinked spool file in $TMPDIR. On the ext4 /tmp
 * of the build machines creating that file (O_TMPFILE) was ~40% of the run time, so the spool
 * goes to tmpfs when there is one; the library code run is the same.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;

	(void)argc;
	(void)argv;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	return 0;
}

static void apply(struct img_tree *t, const uint8_t *data, size_t size, unsigned layer)
{
	struct cl_diag d;
	struct archive *a = archive_read_new();

	if (!a)
		return;
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, data, size) == ARCHIVE_OK)
		(void)img_tree_apply_layer(t, "rootfs", a, layer, &d);
	archive_read_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_tree *t;
	struct cl_diag d;

	if (img_tree_new(&t, &d) != IMAGE_OK)
		return 0;
	apply(t, data, size, 1);
	apply(t, data, size, 2);
	if (devnull >= 0)
		(void)img_tree_write_cpio(t, 0, devnull, NULL, &d);
	img_tree_free(t);
	return 0;
}

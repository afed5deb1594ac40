/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister blobs: turn an unpacked Debian kernel package into a blobs directory (bzImage,
 * bzImage.config, cmdline, init, modules/) in the cache, the default for build-enclave
 * (docs/build-enclave.md). scripts/make-blobs.sh fetches the pinned kernel and calls this.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/build/build.h"
#include "lib/image/image.h"
#include "lib/util/file.h"

int cli_blobs_cache_dir(char *out, size_t cap)
{
	const char *cache = getenv("CLOISTER_CACHE");
	const char *home = getenv("HOME");
	int n;

	if (cache && *cache)
		n = snprintf(out, cap, "%s/blobs", cache);
	else if (home && *home)
		n = snprintf(out, cap, "%s/.cache/cloister/blobs", home);
	else
		return -1;
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int cli_default_blobs_dir(char *out, size_t cap)
{
	size_t n;

	if (cli_blobs_cache_dir(out, cap) < 0)
		return -1;
	n = strlen(out);
	if (n + sizeof("/default") > cap)
		return -1;
	memcpy(out + n, "/default", sizeof("/default"));
	return 0;
}

/* cloister-init next to this executable: the build tree or an installed prefix. */
static bool find_init(char *out, size_t cap)
{
	static const char *const rel[] = { "../../guest/init/cloister-init",
		                           "../libexec/cloister/cloister-init" };
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return false;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = '\0';
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(out, cap, "%s/%s", self, rel[i]);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

int cmd_blobs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel-dir", required_argument, NULL, 'k' },
		{ "init", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *kernel_dir = NULL, *init = NULL;
	char init_buf[PATH_MAX + 64], out[PATH_MAX + 64], cache[PATH_MAX / 2];
	char link_tmp[PATH_MAX / 2 + 32], link_path[PATH_MAX / 2 + 32];
	bool custom_out = false;
	char *release = NULL;
	struct cl_diag d = { { 0 } };
	enum image_error err;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kernel_dir = optarg;
			break;
		case 'i':
			init = optarg;
			break;
		case 'o':
			snprintf(out, sizeof(out), "%s", optarg);
			custom_out = true;
			break;
		case 'h':
			printf("Usage: cloister blobs --kernel-dir DIR [--init FILE] [--output "
			       "DIR]\n\n"
			       "Assembles a blobs directory from an unpacked Debian kernel "
			       "package\n"
			       "(scripts/fetch-kernel.sh enclave prints one). Without --output it "
			       "goes\n"
			       "to ~/.cache/cloister/blobs/<release> and becomes the default\n"
			       "(blobs/default). Prints the directory.\n");
			return 0;
		default:
			return cli_fail(E_INVALID_ARGUMENT, "unknown or incomplete option '%s'",
			                argv[optind - 1]);
		}
	}
	if (!kernel_dir)
		return cli_fail(E_MISSING_ARGUMENT, "missing --kernel-dir (the directory "
		                                    "scripts/fetch-kernel.sh enclave prints)");
	if (!init) {
		if (!find_init(init_buf, sizeof(init_buf)))
			return cli_fail(
			        E_MISSING_ARGUMENT,
			        "cloister-init not found next to this program; pass --init");
		init = init_buf;
	}
	if (!custom_out) {
		/* The release is only known after assembling: use a staging name first. */
		if (cli_blobs_cache_dir(cache, sizeof(cache)) < 0)
			return cli_fail(E_BLOBS_PATH_NOT_SET, "set HOME or CLOISTER_CACHE");
		snprintf(out, sizeof(out), "%s/.staging-%d", cache, (int)getpid());
	}
	if (cl_mkdir_p(out, &d) < 0)
		return cli_fail(E_FILE_OPERATION, "%s", d.msg);
	err = img_blobs_assemble(kernel_dir, init, img_default_modules, img_default_modules_count,
	                         out, &release, &d);
	if (err)
		return cli_fail(err == IMAGE_ERR_IO ? E_FILE_OPERATION : E_BLOBS_PATH_NOT_SET, "%s",
		                d.msg);
	if (!custom_out) {
		char final[PATH_MAX];
		char cmdbuf[PATH_MAX + 64];

		if (snprintf(final, sizeof(final), "%s/%s", cache, release) >= (int)sizeof(final)) {
			free(release);
			return cli_fail(E_FILE_OPERATION, "cache path too long");
		}
		/* Replace an older copy of the same release wholesale. */
		snprintf(cmdbuf, sizeof(cmdbuf), "rm -rf -- '%s'", final);
		if (access(final, F_OK) == 0 && system(cmdbuf) != 0) {
			free(release);
			return cli_fail(E_FILE_OPERATION, "cannot replace '%s'", final);
		}
		if (rename(out, final) < 0) {
			free(release);
			return cli_fail(E_FILE_OPERATION, "rename '%s' to '%s': %s", out, final,
			                strerror(errno));
		}
		snprintf(link_tmp, sizeof(link_tmp), "%s/.default-%d", cache, (int)getpid());
		snprintf(link_path, sizeof(link_path), "%s/default", cache);
		unlink(link_tmp);
		if (symlink(release, link_tmp) < 0 || rename(link_tmp, link_path) < 0) {
			free(release);
			return cli_fail(E_FILE_OPERATION, "cannot point '%s' at %s: %s", link_path,
			                final, strerror(errno));
		}
		snprintf(out, sizeof(out), "%s", final);
	}
	fprintf(stderr, "Blobs for kernel %s assembled.\n", release);
	printf("%s\n", out);
	free(release);
	return 0;
}

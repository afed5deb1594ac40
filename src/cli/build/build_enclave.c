/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister build-enclave: nitro-cli's build-enclave without Docker (docs/build-enclave.md).
 * Image (OCI layout, oci-archive, docker-archive) or plain directory → bootstrap and customer
 * ramdisks (reproducible cpio) → EIF via eif_build(), measurements on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/build/build.h"
#include "cli/eif/eif_common.h"
#include "lib/image/image.h"
#include "lib/util/file.h"
#include "lib/util/hex.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister build-enclave --docker-uri IMAGE --output-file FILE [OPTIONS]\n"
	        "       cloister build-enclave --rootfs DIR --cmd PATH [--cmd ARG ...] "
	        "--output-file FILE [OPTIONS]\n\n"
	        "IMAGE is read from disk, never pulled:\n"
	        "  oci:DIR[:TAG] or DIR          an OCI image layout directory\n"
	        "  oci-archive:FILE[:TAG]        its tar form (podman save --format oci-archive,\n"
	        "                                skopeo copy ... oci-archive:FILE)\n"
	        "  docker-archive:FILE[:TAG]     docker save / podman save output\n\n"
	        "Options:\n"
	        "  --env KEY=VALUE, --workdir DIR   with --rootfs: the app's environment and "
	        "directory\n"
	        "  --name NAME, --version VERSION   image name and version in the metadata\n"
	        "  --metadata FILE.json             custom metadata (a JSON object, <= 4096 "
	        "bytes)\n"
	        "  --signing-certificate CERT.pem --private-key KEY.pem   sign the image (PCR8)\n"
	        "  --build-time RFC3339             default $SOURCE_DATE_EPOCH, else now; fixes\n"
	        "                                   the metadata time and every file's mtime\n"
	        "  --measure                        measured launch: cloister-init extends PCR 16\n"
	        "                                   with the command and environment\n"
	        "  --blobs DIR                      kernel blobs (default $NITRO_CLI_BLOBS, else\n"
	        "                                   ~/.cache/cloister/blobs/default)\n");
}

/* Seconds since the epoch of an RFC 3339 time (already checked by eif_is_rfc3339). */
static int64_t rfc3339_epoch(const char *s)
{
	struct tm tm = { 0 };
	int64_t t;
	const char *z;

	if (sscanf(s, "%4d-%2d-%2d%*c%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	           &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = (int64_t)timegm(&tm);
	z = s + 19;
	while (*z == '.' || (*z >= '0' && *z <= '9'))
		z++;
	if (*z == '+' || *z == '-') {
		int h = 0, m = 0;
		if (sscanf(z + 1, "%2d:%2d", &h, &m) == 2)
			t -= (*z == '+' ? 1 : -1) * (int64_t)(h * 3600 + m * 60);
	}
	return t < 0 ? 0 : t;
}

struct strv {
	char **v;
	size_t n;
};

static int strv_push(struct strv *s, char *x)
{
	char **nv = realloc(s->v, (s->n + 2) * sizeof(*nv));

	if (!nv)
		return -1;
	s->v = nv;
	s->v[s->n++] = x;
	s->v[s->n] = NULL;
	return 0;
}

static void progress(size_t i, size_t n, void *opaque)
{
	(void)opaque;
	fprintf(stderr, "Reading layer %zu of %zu...\n", i, n);
}

static int image_error_code(enum image_error err)
{
	switch (err) {
	case IMAGE_ERR_IO:
		return E_FILE_OPERATION;
	case IMAGE_ERR_NOMEM:
	case IMAGE_ERR_NO_COMMAND:
		return E_EIF_BUILDING;
	default:
		return E_DOCKER_IMAGE_PULL;
	}
}

/* Write @t as cpio into @dir/@name; the path goes to @path. */
static int write_ramdisk(struct img_tree *t, int64_t mtime, const char *dir, const char *name,
                         char *path, size_t cap)
{
	struct cl_diag d = { { 0 } };
	enum image_error err;
	int fd;

	snprintf(path, cap, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cli_fail(E_FILE_OPERATION, "cannot create '%s': %s", path, strerror(errno));
	err = img_tree_write_cpio(t, mtime, fd, NULL, &d);
	if (close(fd) < 0 && !err)
		return cli_fail(E_FILE_OPERATION, "writing '%s': %s", path, strerror(errno));
	if (err)
		return cli_fail(E_EIF_BUILDING, "%s: %s", image_strerror(err), d.msg);
	return 0;
}

int cmd_build_enclave(int argc, char **argv)
{
	enum {
		O_URI = 256,
		O_DOCKER_DIR,
		O_ROOTFS,
		O_CMD,
		O_ENV,
		O_WORKDIR,
		O_OUTPUT,
		O_NAME,
		O_VERSION,
		O_METADATA,
		O_CERT,
		O_KEY,
		O_BUILD_TIME,
		O_MEASURE,
		O_BLOBS,
	};
	static const struct option opts[] = {
		{ "docker-uri", required_argument, NULL, O_URI },
		{ "docker-dir", required_argument, NULL, O_DOCKER_DIR },
		{ "rootfs", required_argument, NULL, O_ROOTFS },
		{ "cmd", required_argument, NULL, O_CMD },
		{ "env", required_argument, NULL, O_ENV },
		{ "workdir", required_argument, NULL, O_WORKDIR },
		{ "output-file", required_argument, NULL, O_OUTPUT },
		{ "name", required_argument, NULL, O_NAME },
		{ "version", required_argument, NULL, O_VERSION },
		{ "metadata", required_argument, NULL, O_METADATA },
		{ "signing-certificate", required_argument, NULL, O_CERT },
		{ "private-key", required_argument, NULL, O_KEY },
		{ "build-time", required_argument, NULL, O_BUILD_TIME },
		{ "measure", no_argument, NULL, O_MEASURE },
		{ "blobs", required_argument, NULL, O_BLOBS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *uri = NULL, *rootfs = NULL, *workdir = NULL, *output = NULL, *name = NULL;
	const char *version = NULL, *metadata = NULL, *cert = NULL, *key = NULL;
	const char *build_time = NULL, *blobs_dir = NULL;
	struct strv cmd = { 0 }, env = { 0 };
	bool measure = false, both = false;
	char time_buf[64], cache_dir[4096], tmp_dir[4096], boot_path[4200], cust_path[4200];
	char version_buf[80];
	const char *ramdisks[2];
	struct img_blobs blobs = { 0 };
	struct img_tree *boot = NULL, *cust = NULL;
	struct img_source *src = NULL;
	struct img_app app = { 0 };
	struct eif_build_params p = { 0 };
	struct eif_measurements m;
	struct cl_diag d = { { 0 } };
	uint8_t *custom = NULL;
	size_t custom_len = 0;
	enum image_error ierr;
	enum eif_error eerr;
	int64_t mtime;
	int c, rc = 0;

	tmp_dir[0] = '\0';
	boot_path[0] = cust_path[0] = '\0';
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_URI:
			uri = optarg;
			break;
		case O_DOCKER_DIR:
			rc = cli_fail(
			        E_DOCKER_IMAGE_BUILD,
			        "--docker-dir: cloister does not build Dockerfiles; build the "
			        "image with docker, podman or buildah, export it (docker save -o "
			        "app.tar IMAGE) and pass --docker-uri docker-archive:app.tar");
			goto out;
		case O_ROOTFS:
			rootfs = optarg;
			break;
		case O_CMD:
			if (strv_push(&cmd, optarg) < 0)
				goto nomem;
			break;
		case O_ENV:
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				rc = cli_fail(E_INVALID_ARGUMENT, "--env '%s' is not KEY=VALUE",
				              optarg);
				goto out;
			}
			if (strv_push(&env, optarg) < 0)
				goto nomem;
			break;
		case O_WORKDIR:
			workdir = optarg;
			break;
		case O_OUTPUT:
			output = optarg;
			break;
		case O_NAME:
			name = optarg;
			break;
		case O_VERSION:
			version = optarg;
			break;
		case O_METADATA:
			metadata = optarg;
			break;
		case O_CERT:
			cert = optarg;
			break;
		case O_KEY:
			key = optarg;
			break;
		case O_BUILD_TIME:
			if (!eif_is_rfc3339(optarg)) {
				rc = cli_fail(E_INVALID_ARGUMENT,
				              "--build-time '%s' is not RFC 3339; use e.g. "
				              "2024-05-01T10:00:00+00:00",
				              optarg);
				goto out;
			}
			build_time = optarg;
			break;
		case O_MEASURE:
			measure = true;
			break;
		case O_BLOBS:
			blobs_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			goto out;
		default:
			usage(stderr);
			rc = cli_fail(E_INVALID_ARGUMENT, "unknown or incomplete option '%s'",
			              argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		rc = cli_fail(E_INVALID_ARGUMENT, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (!uri == !rootfs) {
		usage(stderr);
		rc = cli_fail(
		        uri ? E_CONFLICTING_ARGUMENTS : E_MISSING_ARGUMENT,
		        uri ? "--docker-uri and --rootfs exclude each other"
		            : "give the image with --docker-uri, or a directory with --rootfs");
		goto out;
	}
	if (rootfs && !cmd.n) {
		rc = cli_fail(E_MISSING_ARGUMENT, "--rootfs needs the command: --cmd /path/to/app "
		                                  "[--cmd ARG ...]");
		goto out;
	}
	if (uri && (cmd.n || env.n || workdir)) {
		rc = cli_fail(E_CONFLICTING_ARGUMENTS,
		              "--cmd, --env and --workdir go with --rootfs; "
		              "an image brings its own Cmd, Env and "
		              "WorkingDir");
		goto out;
	}
	if (!output) {
		rc = cli_fail(E_MISSING_ARGUMENT, "missing --output-file");
		goto out;
	}
	if (!cert != !key) {
		rc = cli_fail(E_MISSING_ARGUMENT,
		              "--signing-certificate and --private-key go together; %s is missing",
		              cert ? "--private-key" : "--signing-certificate");
		goto out;
	}

	/* Blobs: nitro-cli's E52 when there are none (nitro-compat §2.9). */
	if (!blobs_dir)
		blobs_dir = getenv("NITRO_CLI_BLOBS");
	if (!blobs_dir || !*blobs_dir) {
		if (cli_default_blobs_dir(cache_dir, sizeof(cache_dir)) < 0) {
			rc = cli_fail(E_BLOBS_PATH_NOT_SET,
			              "no blobs directory: set NITRO_CLI_BLOBS or HOME");
			goto out;
		}
		blobs_dir = cache_dir;
	}
	ierr = img_blobs_open(blobs_dir, &blobs, &d);
	if (ierr) {
		rc = cli_fail(E_BLOBS_PATH_NOT_SET, "%s", d.msg);
		goto out;
	}

	/* One time for everything: the metadata's BuildTime and every ramdisk mtime. */
	if (!build_time) {
		if (eif_default_build_time(time_buf, sizeof(time_buf), &d)) {
			rc = cli_fail(E_INVALID_ARGUMENT, "%s", d.msg);
			goto out;
		}
		build_time = time_buf;
	}
	mtime = rfc3339_epoch(build_time);

	fprintf(stderr, "Start building the Enclave Image...\n");
	if (img_tree_new(&boot, &d) || img_tree_new(&cust, &d)) {
		rc = cli_fail(E_FILE_OPERATION, "%s", d.msg);
		goto out;
	}
	ierr = img_bootstrap_build(&blobs, boot, &d);
	if (ierr) {
		rc = cli_fail(ierr == IMAGE_ERR_IO || ierr == IMAGE_ERR_NOT_FOUND
		                      ? E_BLOBS_PATH_NOT_SET
		                      : E_EIF_BUILDING,
		              "bootstrap ramdisk: %s", d.msg);
		goto out;
	}
	if (uri) {
		ierr = img_open(uri, &src, &d);
		if (!ierr)
			ierr = img_source_apply_layers(src, cust, "rootfs", progress, NULL, &d);
		if (!ierr)
			ierr = img_config_app(img_source_config(src), &app, &both, &d);
		if (ierr) {
			rc = cli_fail(image_error_code(ierr), "image '%s': %s", uri, d.msg);
			goto out;
		}
		if (both)
			fprintf(stderr,
			        "Note: the image sets both Entrypoint and Cmd; like nitro-cli, the "
			        "enclave runs Cmd only (%s).\n",
			        app.argv[0]);
	} else {
		ierr = img_tree_add_host_dir(cust, "rootfs", rootfs, &d);
		if (ierr) {
			rc = cli_fail(image_error_code(ierr), "--rootfs '%s': %s", rootfs, d.msg);
			goto out;
		}
		app.argv = cmd.v;
		app.argc = cmd.n;
		app.env = env.v;
		app.envc = env.n;
		app.workdir = (char *)(uintptr_t)workdir;
	}
	/* The workdir file is cloister-init's; AWS blobs keep nitro-cli's exact layout. */
	ierr = img_customer_finish(cust, &app, !blobs.nitro_layout, measure && !blobs.nitro_layout,
	                           &d);
	if (ierr) {
		rc = cli_fail(E_EIF_BUILDING, "%s", d.msg);
		goto out;
	}
	if (measure && blobs.nitro_layout)
		fprintf(stderr,
		        "Note: --measure needs cloister-init; these AWS blobs ignore it.\n");

	{
		const char *tmp = getenv("TMPDIR");
		snprintf(tmp_dir, sizeof(tmp_dir), "%s/cloister-build.XXXXXX",
		         tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(tmp_dir)) {
			rc = cli_fail(E_FILE_OPERATION, "cannot create a directory like '%s': %s",
			              tmp_dir, strerror(errno));
			tmp_dir[0] = '\0';
			goto out;
		}
	}
	rc = write_ramdisk(boot, mtime, tmp_dir, "bootstrap-initrd.img", boot_path,
	                   sizeof(boot_path));
	if (!rc)
		rc = write_ramdisk(cust, mtime, tmp_dir, "customer-initrd.img", cust_path,
		                   sizeof(cust_path));
	if (rc)
		goto out;

	if (metadata &&
	    cl_file_read_all(metadata, EIF_CUSTOM_METADATA_MAX, &custom, &custom_len, &d) < 0) {
		rc = cli_fail(E_FILE_OPERATION, "--metadata: %s", d.msg);
		goto out;
	}
	ramdisks[0] = boot_path;
	ramdisks[1] = cust_path;
	p.kernel_path = blobs.kernel;
	p.cmdline = blobs.cmdline;
	p.ramdisk_paths = ramdisks;
	p.num_ramdisks = 2;
	p.arch_flags = 0;
	/* nitro-cli (nitro-compat §1.6): name = --name or the image name; version = --version or
	 * the image ID without "sha256:". */
	p.image_name = name ? name : src ? img_source_name(src) : rootfs;
	if (version) {
		p.image_version = version;
	} else if (src) {
		snprintf(version_buf, sizeof(version_buf), "%s", img_source_image_id(src) + 7);
		p.image_version = version_buf;
	}
	p.build_tool = "cloister";
	p.build_tool_version = CLOISTER_VERSION;
	p.kernel_os = blobs.os;
	p.kernel_version = blobs.kernel_version;
	p.build_time = build_time;
	p.docker_info_json = src ? img_source_config_json(src) : NULL;
	p.custom_metadata_json = (const char *)custom;
	p.signing_cert_path = cert;
	p.private_key_path = key;
	eerr = eif_build(&p, output, &m, &d);
	if (eerr) {
		rc = cli_fail(cli_eif_error_code(eerr, (eerr == EIF_ERR_KEY || eerr == EIF_ERR_CERT)
		                                               ? E_EIF_SIGNING
		                                               : E_EIF_BUILDING),
		              "%s: %s", eif_strerror(eerr), d.msg);
		goto out;
	}
	if (measure && !blobs.nitro_layout) {
		uint8_t pcr16[48];
		char hex[97];
		if (img_measure_launch(&app, true, pcr16, &d) == IMAGE_OK) {
			cl_hex_encode(pcr16, sizeof(pcr16), hex);
			fprintf(stderr, "Measured launch: PCR16 will be %s\n", hex);
		}
	}
	fprintf(stderr, "Enclave Image successfully created.\n");
	rc = cli_eif_print_measurements(&m);
	goto out;
nomem:
	rc = cli_fail(E_UNSPECIFIED, "out of memory");
out:
	if (boot_path[0])
		unlink(boot_path);
	if (cust_path[0])
		unlink(cust_path);
	if (tmp_dir[0])
		rmdir(tmp_dir);
	free(custom);
	img_tree_free(boot);
	img_tree_free(cust);
	img_close(src);
	img_blobs_free(&blobs);
	free(cmd.v);
	free(env.v);
	return rc;
}

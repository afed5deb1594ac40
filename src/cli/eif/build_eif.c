/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister build-eif: the low-level image builder (docs/eif.md). nitro-cli's build-enclave
 * makes the ramdisks from a docker image and then does exactly this; cloister build-enclave
 * calls the same eif_build().
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/eif/eif_common.h"
#include "lib/util/checked.h"
#include "lib/util/file.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cloister build-eif --kernel FILE --cmdline STRING --ramdisk FILE "
	        "[--ramdisk FILE ...] --output FILE\n"
	        "         [--name NAME] [--version VERSION] [--metadata FILE.json]\n"
	        "         [--build-time RFC3339] [--arch x86_64|aarch64]\n"
	        "         [--kernel-config FILE] [--docker-info FILE.json]\n"
	        "         [--signing-certificate CERT.pem --private-key KEY.pem]\n\n"
	        "Builds an Enclave Image File in nitro-cli's layout and prints its measurements.\n"
	        "The build time is --build-time, else $SOURCE_DATE_EPOCH, else now: with a fixed\n"
	        "build time the same inputs give the same bytes.\n");
}

/*
 * OperatingSystem / KernelVersion for the metadata. nitro-cli takes words 2 and 4 of line 3 of
 * the kernel's .config ("# Linux/x86_64 6.12.9 Kernel Configuration", split on ' ', '/', '-').
 * Without a config, read the version string an x86 bzImage carries in its setup header.
 */
static void kernel_info_from_config(const char *path, char *os, size_t os_len, char *ver,
                                    size_t ver_len)
{
	char line[512], *words[8];
	size_t nw = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return;
	for (int i = 0; i < 3; i++) {
		if (!fgets(line, sizeof(line), f)) {
			fclose(f);
			return;
		}
	}
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	/* split keeping empty fields, as Rust's str::split does */
	for (char *s = line; nw < 8;) {
		words[nw++] = s;
		s += strcspn(s, " /-");
		if (!*s)
			break;
		*s++ = '\0';
	}
	if (nw > 1)
		snprintf(os, os_len, "%s", words[1]);
	if (nw > 3)
		snprintf(ver, ver_len, "%s", words[3]);
}

static void kernel_info_from_bzimage(const char *path, char *ver, size_t ver_len)
{
	uint8_t buf[0x8000]; /* the setup code: the version string lies inside it */
	long long len;
	uint16_t vo;
	size_t at;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	len = cl_pread_full(fd, buf, sizeof(buf), 0);
	close(fd);
	/* boot protocol: "HdrS" at 0x202, kernel_version pointer (minus 0x200) at 0x20e */
	if (len <= 0x210 || memcmp(buf + 0x202, "HdrS", 4))
		return;
	vo = (uint16_t)(buf[0x20e] | buf[0x20f] << 8);
	at = (size_t)vo + 0x200;
	if (vo && at < (size_t)len) {
		size_t n = 0;

		while (at + n < (size_t)len && buf[at + n] && buf[at + n] != ' ')
			n++;
		if (n && n < ver_len) {
			memcpy(ver, buf + at, n);
			ver[n] = '\0';
		}
	}
}

int cmd_build_eif(int argc, char **argv)
{
	enum {
		O_KERNEL = 256,
		O_CMDLINE,
		O_RAMDISK,
		O_OUTPUT,
		O_NAME,
		O_VERSION,
		O_METADATA,
		O_BUILD_TIME,
		O_ARCH,
		O_KCONFIG,
		O_DOCKER_INFO,
		O_CERT,
		O_KEY,
	};
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, O_KERNEL },
		{ "cmdline", required_argument, NULL, O_CMDLINE },
		{ "ramdisk", required_argument, NULL, O_RAMDISK },
		{ "output", required_argument, NULL, O_OUTPUT },
		{ "output-file", required_argument, NULL, O_OUTPUT },
		{ "name", required_argument, NULL, O_NAME },
		{ "version", required_argument, NULL, O_VERSION },
		{ "metadata", required_argument, NULL, O_METADATA },
		{ "build-time", required_argument, NULL, O_BUILD_TIME },
		{ "arch", required_argument, NULL, O_ARCH },
		{ "kernel-config", required_argument, NULL, O_KCONFIG },
		{ "docker-info", required_argument, NULL, O_DOCKER_INFO },
		{ "signing-certificate", required_argument, NULL, O_CERT },
		{ "private-key", required_argument, NULL, O_KEY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ramdisks[EIF_MAX_SECTIONS];
	struct eif_build_params p = { .ramdisk_paths = ramdisks };
	const char *output = NULL, *metadata_path = NULL, *kconfig = NULL, *docker_path = NULL;
	char os[64] = "Linux", kver[128] = "Unknown";
	uint8_t *custom = NULL, *docker = NULL;
	size_t custom_len = 0, docker_len = 0;
	struct eif_measurements m;
	struct cl_diag d = { { 0 } };
	enum eif_error err;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_KERNEL:
			p.kernel_path = optarg;
			break;
		case O_CMDLINE:
			p.cmdline = optarg;
			break;
		case O_RAMDISK:
			if (p.num_ramdisks >= EIF_MAX_SECTIONS - 4)
				return cli_fail(E_INVALID_ARGUMENT,
				                "at most %u --ramdisk arguments fit in an EIF",
				                EIF_MAX_SECTIONS - 4);
			ramdisks[p.num_ramdisks++] = optarg;
			break;
		case O_OUTPUT:
			output = optarg;
			break;
		case O_NAME:
			p.image_name = optarg;
			break;
		case O_VERSION:
			p.image_version = optarg;
			break;
		case O_METADATA:
			metadata_path = optarg;
			break;
		case O_BUILD_TIME:
			if (!eif_is_rfc3339(optarg))
				return cli_fail(E_INVALID_ARGUMENT,
				                "--build-time '%s' is not RFC 3339; use e.g. "
				                "2024-05-01T10:00:00+00:00",
				                optarg);
			p.build_time = optarg;
			break;
		case O_ARCH:
			if (!strcmp(optarg, "x86_64") || !strcmp(optarg, "amd64"))
				p.arch_flags = 0;
			else if (!strcmp(optarg, "aarch64") || !strcmp(optarg, "arm64"))
				p.arch_flags = EIF_FLAG_AARCH64;
			else
				return cli_fail(E_INVALID_ARGUMENT,
				                "--arch '%s': use x86_64 or aarch64", optarg);
			break;
		case O_KCONFIG:
			kconfig = optarg;
			break;
		case O_DOCKER_INFO:
			docker_path = optarg;
			break;
		case O_CERT:
			p.signing_cert_path = optarg;
			break;
		case O_KEY:
			p.private_key_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return cli_fail(E_INVALID_ARGUMENT, "unknown or incomplete option '%s'",
			                argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail(E_INVALID_ARGUMENT, "unexpected argument '%s'", argv[optind]);
	if (!p.kernel_path || !p.cmdline || !p.num_ramdisks || !output) {
		usage(stderr);
		return cli_fail(E_MISSING_ARGUMENT, "missing %s",
		                !p.kernel_path ? "--kernel"
		                : !p.cmdline   ? "--cmdline"
		                : !output      ? "--output"
		                               : "--ramdisk (at least one)");
	}
	if (!p.signing_cert_path != !p.private_key_path)
		return cli_fail(
		        E_MISSING_ARGUMENT,
		        "--signing-certificate and --private-key go together; %s is missing",
		        p.signing_cert_path ? "--private-key" : "--signing-certificate");

	if (metadata_path) {
		if (cl_file_read_all(metadata_path, EIF_CUSTOM_METADATA_MAX, &custom, &custom_len,
		                     &d) < 0)
			return cli_fail(E_EIF_BUILDING, "custom metadata: %s", d.msg);
		p.custom_metadata_json = (const char *)custom;
	}
	if (docker_path) {
		if (cl_file_read_all(docker_path, EIF_METADATA_MAX / 2, &docker, &docker_len, &d) <
		    0) {
			free(custom);
			return cli_fail(E_EIF_BUILDING, "docker info: %s", d.msg);
		}
		p.docker_info_json = (const char *)docker;
	}
	if (kconfig)
		kernel_info_from_config(kconfig, os, sizeof(os), kver, sizeof(kver));
	else
		kernel_info_from_bzimage(p.kernel_path, kver, sizeof(kver));
	p.kernel_os = os;
	p.kernel_version = kver;

	fprintf(stderr, "Start building the Enclave Image...\n");
	err = eif_build(&p, output, &m, &d);
	free(custom);
	free(docker);
	if (err)
		return cli_fail(cli_eif_error_code(err, (err == EIF_ERR_KEY || err == EIF_ERR_CERT)
		                                                ? E_EIF_SIGNING
		                                                : E_EIF_BUILDING),
		                "%s: %s", eif_strerror(err), d.msg);
	fprintf(stderr, "Enclave Image successfully created.\n");
	rc = cli_eif_print_measurements(&m);
	return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsm-cli: talk to the Nitro Secure Module (/dev/nsm) through libnsm.
 *
 *   nsm-cli describe-nsm
 *   nsm-cli describe-pcr --index N
 *   nsm-cli extend-pcr --index N (--data TEXT | --data-hex HEX)
 *   nsm-cli lock-pcr --index N
 *   nsm-cli lock-pcrs --range N
 *   nsm-cli random [--length N]
 *   nsm-cli attest [--nonce HEX] [--user-data HEX] [--public-key HEX | --public-key-file F]
 *                  [--output FILE]
 *
 * Results are JSON on stdout (attest writes the raw CBOR document to FILE, or to stdout).
 * Exit status: 0, or 1 for usage errors, or 10 + the NSM ErrorCode (11 InvalidArgument …
 * 18 InternalError), or 2 when /dev/nsm cannot be opened.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nsm.h"

static const char *const code_names[] = {
	"Success",          "InvalidArgument", "InvalidIndex",  "InvalidResponse", "ReadOnlyIndex",
	"InvalidOperation", "BufferTooSmall",  "InputTooLarge", "InternalError",
};

static void usage(FILE *out)
{
	fputs("Usage: nsm-cli COMMAND [OPTIONS]\n\n"
	      "  describe-nsm\n"
	      "  describe-pcr --index N\n"
	      "  extend-pcr --index N (--data TEXT | --data-hex HEX)\n"
	      "  lock-pcr --index N\n"
	      "  lock-pcrs --range N\n"
	      "  random [--length N]          (1..256 bytes, default 256)\n"
	      "  attest [--nonce HEX] [--user-data HEX] [--public-key HEX | --public-key-file F]\n"
	      "         [--output FILE]       (raw CBOR document; stdout if no FILE)\n",
	      out);
}

static int report(ErrorCode rc, const char *what)
{
	fprintf(stderr, "nsm-cli: %s: %s\n", what,
	        (unsigned)rc < sizeof(code_names) / sizeof(code_names[0]) ? code_names[rc]
	                                                                  : "unknown error");
	return 10 + (int)rc;
}

static void print_hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

/* A JSON string body: the module id comes from the device, so escape what JSON requires. */
static void print_json_string(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode hex into a malloc'd buffer; false on odd length or a non-hex digit. */
static bool unhex(const char *s, uint8_t **out, uint32_t *len)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 > 65536)
		return false;
	*out = malloc(n / 2 + 1);
	if (!*out)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(*out);
			*out = NULL;
			return false;
		}
		(*out)[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = (uint32_t)(n / 2);
	return true;
}

static bool read_file(const char *path, uint8_t **out, uint32_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (!f)
		return false;
	buf = malloc(65537);
	n = buf ? fread(buf, 1, 65537, f) : 0;
	fclose(f);
	if (!buf || n > 65536) {
		free(buf);
		return false;
	}
	*out = buf;
	*len = (uint32_t)n;
	return true;
}

static bool parse_u16(const char *s, uint16_t *v)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(s, &end, 0);
	if (errno || *end || end == s || x > 0xffff)
		return false;
	*v = (uint16_t)x;
	return true;
}

enum { O_INDEX = 1, O_RANGE, O_DATA, O_DATA_HEX, O_LENGTH, O_NONCE, O_USER, O_PK, O_PKF, O_OUT };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "index", required_argument, NULL, O_INDEX },
		{ "range", required_argument, NULL, O_RANGE },
		{ "data", required_argument, NULL, O_DATA },
		{ "data-hex", required_argument, NULL, O_DATA_HEX },
		{ "length", required_argument, NULL, O_LENGTH },
		{ "nonce", required_argument, NULL, O_NONCE },
		{ "user-data", required_argument, NULL, O_USER },
		{ "public-key", required_argument, NULL, O_PK },
		{ "public-key-file", required_argument, NULL, O_PKF },
		{ "output", required_argument, NULL, O_OUT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd, *output = NULL;
	uint16_t index = 0, range = 0, length = 256;
	bool have_index = false, have_range = false;
	uint8_t *data = NULL, *nonce = NULL, *ud = NULL, *pk = NULL;
	uint32_t data_len = 0, nonce_len = 0, ud_len = 0, pk_len = 0;
	int c, fd, status = 1;
	ErrorCode rc;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		bool ok = true;

		switch (c) {
		case O_INDEX:
			ok = have_index = parse_u16(optarg, &index);
			break;
		case O_RANGE:
			ok = have_range = parse_u16(optarg, &range);
			break;
		case O_DATA:
			free(data);
			data = (uint8_t *)strdup(optarg);
			data_len = (uint32_t)strlen(optarg);
			ok = data != NULL;
			break;
		case O_DATA_HEX:
			free(data);
			ok = unhex(optarg, &data, &data_len);
			break;
		case O_LENGTH:
			ok = parse_u16(optarg, &length) && length >= 1 && length <= 256;
			break;
		case O_NONCE:
			free(nonce);
			ok = unhex(optarg, &nonce, &nonce_len);
			break;
		case O_USER:
			free(ud);
			ok = unhex(optarg, &ud, &ud_len);
			break;
		case O_PK:
			free(pk);
			ok = unhex(optarg, &pk, &pk_len);
			break;
		case O_PKF:
			free(pk);
			ok = read_file(optarg, &pk, &pk_len);
			break;
		case O_OUT:
			output = optarg;
			break;
		case 'h':
			usage(stdout);
			status = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
		if (!ok) {
			fprintf(stderr, "nsm-cli: invalid value '%s' for --%s\n", optarg,
			        longopts[c - 1].name);
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nsm-cli: unexpected argument '%s'\n", argv[optind]);
		goto out;
	}

	fd = nsm_lib_init();
	if (fd < 0) {
		fprintf(stderr, "nsm-cli: cannot open /dev/nsm: %s (is the nsm driver loaded?)\n",
		        strerror(errno));
		status = 2;
		goto out;
	}
	if (!strcmp(cmd, "describe-nsm")) {
		NsmDescription d;

		rc = nsm_get_description(fd, &d);
		if (rc) {
			status = report(rc, "describe-nsm");
		} else {
			printf("{\n  \"version_major\": %u,\n  \"version_minor\": %u,\n"
			       "  \"version_patch\": %u,\n  \"module_id\": \"",
			       d.version_major, d.version_minor, d.version_patch);
			print_json_string((const char *)d.module_id);
			printf("\",\n  \"max_pcrs\": %u,\n  \"locked_pcrs\": [", d.max_pcrs);
			for (uint32_t i = 0; i < d.locked_pcrs_len; i++)
				printf("%s%u", i ? ", " : "", d.locked_pcrs[i]);
			printf("],\n  \"digest\": \"%s\"\n}\n", d.digest == DIGEST_SHA256 ? "SHA256"
			                                        : d.digest == DIGEST_SHA384
			                                                ? "SHA384"
			                                                : "SHA512");
			status = 0;
		}
	} else if (!strcmp(cmd, "describe-pcr") || !strcmp(cmd, "extend-pcr")) {
		uint8_t pcr[64];
		uint32_t len = sizeof(pcr);
		bool lock = false, extend = cmd[0] == 'e';

		if (!have_index || (extend && !data)) {
			fprintf(stderr, "nsm-cli: %s needs --index N%s\n", cmd,
			        extend ? " and --data or --data-hex" : "");
		} else {
			rc = extend ? nsm_extend_pcr(fd, index, data, data_len, pcr, &len)
			            : nsm_describe_pcr(fd, index, &lock, pcr, &len);
			if (rc) {
				status = report(rc, cmd);
			} else {
				printf("{\n  \"index\": %u,\n", index);
				if (!extend)
					printf("  \"lock\": %s,\n", lock ? "true" : "false");
				printf("  \"data\": \"");
				print_hex(pcr, len);
				printf("\"\n}\n");
				status = 0;
			}
		}
	} else if (!strcmp(cmd, "lock-pcr")) {
		if (!have_index)
			fprintf(stderr, "nsm-cli: lock-pcr needs --index N\n");
		else if ((rc = nsm_lock_pcr(fd, index)))
			status = report(rc, cmd);
		else
			status = 0;
	} else if (!strcmp(cmd, "lock-pcrs")) {
		if (!have_range)
			fprintf(stderr, "nsm-cli: lock-pcrs needs --range N\n");
		else if ((rc = nsm_lock_pcrs(fd, range)))
			status = report(rc, cmd);
		else
			status = 0;
	} else if (!strcmp(cmd, "random")) {
		uint8_t buf[256];
		uintptr_t len = length;

		rc = nsm_get_random(fd, buf, &len);
		if (rc) {
			status = report(rc, cmd);
		} else {
			printf("{\n  \"random\": \"");
			print_hex(buf, len);
			printf("\"\n}\n");
			status = 0;
		}
	} else if (!strcmp(cmd, "attest")) {
		static uint8_t doc[0x3000];
		uint32_t len = sizeof(doc);
		FILE *f;

		if (!output && isatty(STDOUT_FILENO)) {
			fprintf(stderr,
			        "nsm-cli: the document is binary CBOR; use --output FILE or "
			        "redirect stdout\n");
			nsm_lib_exit(fd);
			goto out;
		}
		rc = nsm_get_attestation_doc(fd, ud, ud_len, nonce, nonce_len, pk, pk_len, doc,
		                             &len);
		if (rc) {
			status = report(rc, cmd);
		} else {
			f = output ? fopen(output, "wb") : stdout;
			if (!f || fwrite(doc, 1, len, f) != len || (output && fclose(f) != 0)) {
				fprintf(stderr, "nsm-cli: cannot write the document to %s\n",
				        output ? output : "stdout");
			} else {
				if (!output)
					fflush(stdout);
				status = 0;
			}
		}
	} else {
		fprintf(stderr, "nsm-cli: unknown command '%s'\n", cmd);
		usage(stderr);
	}
	nsm_lib_exit(fd);
out:
	free(data);
	free(nonce);
	free(ud);
	free(pk);
	return status;
}

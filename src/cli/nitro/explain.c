/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister explain --error-code Exx: nitro-cli's long description of an error code, on stderr
 * (nitro-compat §2.1, §2.9).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: cloister explain --error-code <Exx>\n\n"
	             "Print what a nitro-cli compatible error code (E00-E60) means and how to fix "
	             "it.\n");
}

/* "E26", "e26" or "26" -> 26; -1 if malformed. */
static int parse_code(const char *s)
{
	int v = 0, digits = 0;

	if (*s == 'E' || *s == 'e')
		s++;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || ++digits > 2)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return digits ? v : -1;
}

int cmd_explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "error-code", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *arg = NULL;
	int c, code;

	optind = 1;
	while ((c = getopt_long(argc, argv, "e:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			arg = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return cli_fail(E_INVALID_ARGUMENT, "unknown option for explain");
		}
	}
	if (optind < argc)
		return cli_fail(E_INVALID_ARGUMENT, "unexpected argument '%s'", argv[optind]);
	if (!arg) {
		usage(stderr);
		return cli_fail(E_MISSING_ARGUMENT, "--error-code is required");
	}
	code = parse_code(arg);
	if (code < 0 || code >= E_COUNT || !cli_error_description((enum cli_error)code))
		return cli_fail(E_INVALID_ARGUMENT,
		                "'%s' is not an error code; codes are E00 to E%02d", arg,
		                E_COUNT - 1);
	fprintf(stderr, "[ E%02d ] %s. %s\n\n", code, cli_error_title((enum cli_error)code),
	        cli_error_description((enum cli_error)code));
	fprintf(stderr,
	        "For more details, please visit "
	        "https://docs.aws.amazon.com/enclaves/latest/user/cli-errors.html#E%02d\n",
	        code);
	return 0;
}

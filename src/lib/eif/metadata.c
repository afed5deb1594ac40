/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metadata section (docs/eif.md, nitro-compat §1.6): compact JSON in the field order of
 * nitro-cli's EifIdentityInfo, with DockerInfo / CustomMetadata re-serialised the way
 * serde_json::Value does (object keys sorted).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "lib/eif/internal.h"
#include "lib/util/json.h"

/* chrono's DateTime<Utc>::to_rfc3339(): fraction digits 0, 3, 6 or 9 as needed, "+00:00". */
static void format_rfc3339(time_t sec, long nsec, char *out, size_t out_len)
{
	char date[40], frac[32] = "";
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	if (nsec % 1000000 == 0 && nsec)
		snprintf(frac, sizeof(frac), ".%03ld", nsec / 1000000);
	else if (nsec % 1000 == 0 && nsec)
		snprintf(frac, sizeof(frac), ".%06ld", nsec / 1000);
	else if (nsec)
		snprintf(frac, sizeof(frac), ".%09ld", nsec);
	snprintf(out, out_len, "%s%s+00:00", date, frac);
}

enum eif_error eif_default_build_time(char *out, size_t out_len, struct cl_diag *d)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	struct timespec ts;

	if (sde && *sde) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(sde, &end, 10);
		if (errno || *end || v < 0) {
			cl_diag_set(d,
			            "SOURCE_DATE_EPOCH='%s' is not a number of seconds since 1970; "
			            "unset it or set it to e.g. 1700000000",
			            sde);
			return EIF_ERR_INVALID_ARG;
		}
		format_rfc3339((time_t)v, 0, out, out_len);
		return EIF_OK;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	format_rfc3339(ts.tv_sec, ts.tv_nsec, out, out_len);
	return EIF_OK;
}

static bool digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

bool eif_is_rfc3339(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SS */
	if (!s || strlen(s) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
	    s[7] != '-' || !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') ||
	    !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
	    !digits(s + 17, 2))
		return false;
	s += 19;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
		return true;
	return (*s == '+' || *s == '-') && digits(s + 1, 2) && s[3] == ':' && digits(s + 4, 2) &&
	       s[6] == '\0';
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Parse @text as JSON; NULL text is JSON null. */
static enum eif_error parse_json(const char *what, const char *text, bool must_be_object,
                                 struct json_object **out, struct cl_diag *d)
{
	struct json_tokener *tok;
	struct json_object *v;
	size_t len;

	*out = NULL;
	if (!text)
		return EIF_OK;
	len = strlen(text);
	tok = json_tokener_new();
	if (!tok)
		return EIF_ERR_NOMEM;
	v = json_tokener_parse_ex(tok, text, (int)len);
	if (!v && json_tokener_get_error(tok) != json_tokener_success) {
		cl_diag_set(d, "%s is not valid JSON: %s", what,
		            json_tokener_error_desc(json_tokener_get_error(tok)));
		json_tokener_free(tok);
		return EIF_ERR_METADATA;
	}
	/* Only whitespace may follow the value. */
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (!isspace((unsigned char)text[i])) {
			cl_diag_set(d, "%s has text after the JSON value at byte %zu", what, i);
			json_tokener_free(tok);
			json_object_put(v);
			return EIF_ERR_METADATA;
		}
	}
	json_tokener_free(tok);
	if (must_be_object && v && !json_object_is_type(v, json_type_object)) {
		cl_diag_set(
		        d,
		        "%s must be a JSON object (its keys are shown in describe-eif's Metadata), "
		        "not a %s",
		        what, json_type_to_name(json_object_get_type(v)));
		json_object_put(v);
		return EIF_ERR_METADATA;
	}
	*out = v;
	return EIF_OK;
}

enum eif_error eif_metadata_encode(const struct eif_build_params *p, char **out, size_t *out_len,
                                   struct cl_diag *d)
{
	struct json_object *docker = NULL, *custom = NULL;
	char build_time[64];
	struct cl_json j;
	enum eif_error err;
	char *text;

	*out = NULL;
	*out_len = 0;
	if (p->custom_metadata_json && strlen(p->custom_metadata_json) > EIF_CUSTOM_METADATA_MAX) {
		cl_diag_set(d, "custom metadata is %zu bytes, more than the %u nitro-cli allows",
		            strlen(p->custom_metadata_json), EIF_CUSTOM_METADATA_MAX);
		return EIF_ERR_METADATA;
	}
	if (p->build_time) {
		if (!eif_is_rfc3339(p->build_time)) {
			cl_diag_set(
			        d, "build time '%s' is not RFC 3339; use e.g. 2024-05-01T10:00:00+00:00",
			        p->build_time);
			return EIF_ERR_INVALID_ARG;
		}
		snprintf(build_time, sizeof(build_time), "%s", p->build_time);
	} else if ((err = eif_default_build_time(build_time, sizeof(build_time), d))) {
		return err;
	}
	if ((err = parse_json("DockerInfo", p->docker_info_json, false, &docker, d)))
		return err;
	if ((err = parse_json("custom metadata", p->custom_metadata_json, true, &custom, d))) {
		json_object_put(docker);
		return err;
	}

	cl_json_init(&j, false);
	cl_json_begin_object(&j);
	cl_json_key(&j, "ImageName");
	cl_json_string(&j, p->image_name ? p->image_name : base_name(p->kernel_path));
	cl_json_key(&j, "ImageVersion");
	cl_json_string(&j, p->image_version ? p->image_version : "1.0");
	cl_json_key(&j, "BuildMetadata");
	cl_json_begin_object(&j);
	cl_json_key(&j, "BuildTime");
	cl_json_string(&j, build_time);
	cl_json_key(&j, "BuildTool");
	cl_json_string(&j, p->build_tool ? p->build_tool : "cloister");
	cl_json_key(&j, "BuildToolVersion");
	cl_json_string(&j, p->build_tool_version ? p->build_tool_version : CLOISTER_VERSION);
	cl_json_key(&j, "OperatingSystem");
	cl_json_string(&j, p->kernel_os ? p->kernel_os : "Linux");
	cl_json_key(&j, "KernelVersion");
	cl_json_string(&j, p->kernel_version ? p->kernel_version : "Unknown");
	cl_json_end_object(&j);
	cl_json_key(&j, "DockerInfo");
	cl_json_value(&j, docker);
	cl_json_key(&j, "CustomMetadata");
	cl_json_value(&j, custom);
	cl_json_end_object(&j);
	json_object_put(docker);
	json_object_put(custom);

	text = cl_json_finish(&j);
	if (!text)
		return EIF_ERR_NOMEM;
	if (strlen(text) > EIF_METADATA_MAX) {
		cl_diag_set(d, "metadata is %zu bytes, more than the %u cloister accepts",
		            strlen(text), EIF_METADATA_MAX);
		free(text);
		return EIF_ERR_METADATA;
	}
	*out = text;
	*out_len = strlen(text);
	return EIF_OK;
}

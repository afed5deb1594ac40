/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister describe-eif --eif-path F: nitro-cli's describe-eif output, field for field
 * (docs/eif.md, nitro-compat §1.7).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/eif/eif_common.h"

static const char *meta_string(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static const char *const build_keys[] = { "BuildTime", "BuildTool", "BuildToolVersion",
	                                  "OperatingSystem", "KernelVersion" };

bool cli_eif_metadata_complete(struct json_object *root)
{
	struct json_object *bm = NULL, *custom = NULL;

	if (!json_object_is_type(root, json_type_object) || !meta_string(root, "ImageName") ||
	    !meta_string(root, "ImageVersion") ||
	    !json_object_object_get_ex(root, "BuildMetadata", &bm) ||
	    !json_object_is_type(bm, json_type_object) ||
	    !json_object_object_get_ex(root, "DockerInfo", NULL))
		return false;
	for (size_t i = 0; i < sizeof(build_keys) / sizeof(build_keys[0]); i++)
		if (!meta_string(bm, build_keys[i]))
			return false;
	/* serde flattens CustomMetadata into Metadata: only an object (or null) can be */
	if (json_object_object_get_ex(root, "CustomMetadata", &custom) && custom &&
	    !json_object_is_type(custom, json_type_object))
		return false;
	return true;
}

/* The metadata section as nitro-cli's EifIdentityInfo: all string fields present, or fail. */
static int parse_metadata(const struct eif_image *img, struct json_object **out)
{
	struct json_object *root;
	struct json_tokener *tok = json_tokener_new();

	*out = NULL;
	if (!tok)
		return cli_fail(E_UNSPECIFIED, "out of memory");
	root = json_tokener_parse_ex(tok, (const char *)img->metadata_data, (int)img->metadata_len);
	if (!root || json_tokener_get_parse_end(tok) != img->metadata_len ||
	    !json_object_is_type(root, json_type_object)) {
		json_tokener_free(tok);
		json_object_put(root);
		return cli_fail(
		        E_EIF_PARSING,
		        "Failed to initialize EIF reader: the metadata section (section %d) is "
		        "not a JSON object",
		        img->metadata);
	}
	json_tokener_free(tok);
	if (!cli_eif_metadata_complete(root)) {
		json_object_put(root);
		return cli_fail(
		        E_EIF_PARSING,
		        "Failed to initialize EIF reader: the metadata section (section %d) "
		        "lacks ImageName, ImageVersion, BuildMetadata{BuildTime, BuildTool, "
		        "BuildToolVersion, OperatingSystem, KernelVersion} or DockerInfo, or "
		        "has a non-object CustomMetadata",
		        img->metadata);
	}
	*out = root;
	return 0;
}

void cli_eif_json_metadata(struct cl_json *j, struct json_object *root)
{
	struct json_object *bm = NULL, *docker = NULL, *custom = NULL;

	json_object_object_get_ex(root, "BuildMetadata", &bm);
	json_object_object_get_ex(root, "DockerInfo", &docker);
	json_object_object_get_ex(root, "CustomMetadata", &custom);
	cl_json_key(j, "ImageName");
	cl_json_string(j, meta_string(root, "ImageName"));
	cl_json_key(j, "ImageVersion");
	cl_json_string(j, meta_string(root, "ImageVersion"));
	cl_json_key(j, "Metadata");
	cl_json_begin_object(j);
	for (size_t i = 0; i < sizeof(build_keys) / sizeof(build_keys[0]); i++) {
		cl_json_key(j, build_keys[i]);
		cl_json_string(j, meta_string(bm, build_keys[i]));
	}
	cl_json_key(j, "DockerInfo");
	cl_json_value(j, docker);
	/* CustomMetadata is #[serde(flatten)]: its keys go straight into Metadata */
	cl_json_members(j, custom);
	cl_json_end_object(j);
}

int cmd_describe_eif(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "eif-path", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct eif_signature_info sinfo = { 0 };
	struct json_object *meta = NULL;
	struct eif_image img = { 0 };
	struct cl_diag d = { { 0 } };
	const char *path = NULL;
	enum eif_error err;
	struct cl_json j;
	bool signed_ = false;
	int c, rc = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			path = optarg;
			break;
		case 'h':
			printf("Usage: cloister describe-eif --eif-path FILE\n");
			return 0;
		default:
			return cli_fail(E_INVALID_ARGUMENT, "unknown or incomplete option '%s'",
			                argv[optind - 1]);
		}
	}
	if (!path)
		return cli_fail(E_MISSING_ARGUMENT, "missing --eif-path");
	err = eif_read_file(path, EIF_PARSE_MEASURE | EIF_PARSE_ALLOW_BAD_CRC, &img, &d);
	if (err)
		return cli_fail(err == EIF_ERR_IO ? E_FILE_OPERATION : E_EIF_PARSING,
		                "Failed to initialize EIF reader: %s", d.msg);
	if (img.metadata >= 0 && (rc = parse_metadata(&img, &meta)))
		goto out;
	if (img.signature >= 0) {
		err = eif_signature_inspect(&img, &sinfo, &d);
		if (err) {
			rc = cli_fail(E_EIF_PARSING, "Failed to get certificate signing info: %s",
			              d.msg);
			goto out;
		}
		if (!sinfo.signature_valid) {
			/* nitro-cli fails here: the COSE payload is only returned after verifying */
			rc = cli_fail(
			        E_EIF_PARSING,
			        "Failed to get certificate signing info: the COSE signature in "
			        "section %d does not verify with its certificate's key",
			        img.signature);
			goto out;
		}
		signed_ = true;
	}
	if (!img.crc_ok)
		fprintf(stderr, "warning: %s: CRC mismatch (header 0x%08x, computed 0x%08x)\n",
		        path, img.crc_stored, img.crc_computed);

	cl_json_init(&j, true);
	cl_json_begin_object(&j);
	cl_json_key(&j, "EifVersion");
	cl_json_uint(&j, img.version);
	cl_json_key(&j, "Measurements");
	cli_eif_json_measurements(&j, &img.meas);
	cl_json_key(&j, "IsSigned");
	cl_json_bool(&j, signed_);
	if (signed_) {
		cl_json_key(&j, "SigningCertificate");
		cl_json_begin_object(&j);
		cl_json_key(&j, "IssuerName");
		cl_json_begin_object(&j);
		for (size_t i = 0; i < sinfo.num_issuer; i++) {
			cl_json_key(&j, sinfo.issuer[i].name);
			cl_json_string(&j, sinfo.issuer[i].value);
		}
		cl_json_end_object(&j);
		cl_json_key(&j, "Algorithm");
		cl_json_string(&j, sinfo.algorithm);
		cl_json_key(&j, "NotBefore");
		cl_json_string(&j, sinfo.not_before);
		cl_json_key(&j, "NotAfter");
		cl_json_string(&j, sinfo.not_after);
		cl_json_key(&j, "Signature");
		cl_json_string(&j, sinfo.cert_signature ? sinfo.cert_signature : "");
		cl_json_end_object(&j);
	}
	cl_json_key(&j, "CheckCRC");
	cl_json_bool(&j, img.crc_ok);
	if (signed_) {
		cl_json_key(&j, "SignatureCheck");
		cl_json_bool(&j, sinfo.pcr0_matches);
	}
	if (meta)
		cli_eif_json_metadata(&j, meta);
	cl_json_end_object(&j);
	rc = cli_emit_json(&j);
out:
	json_object_put(meta);
	eif_signature_info_release(&sinfo);
	eif_image_release(&img);
	return rc;
}

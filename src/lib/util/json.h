/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_UTIL_JSON_H
#define CLOISTER_UTIL_JSON_H

/*
 * A JSON writer that produces exactly what nitro-cli's serde_json produces, so scripts that diff
 * or grep its output keep working:
 *   - pretty mode = serde_json::to_string_pretty: 2-space indent, `"key": value`, `[]` and `{}`
 *     for empty containers, no trailing newline;
 *   - compact mode = serde_json::to_string: no whitespace at all;
 *   - strings escaped as serde does: \" \\ \b \f \n \r \t, other control bytes as \u00xx, and
 *     nothing else ('/' and non-ASCII UTF-8 are written as is).
 * Keys come out in the order the caller writes them (serde's struct field order). For parsed
 * JSON values (cl_json_value) object keys are sorted bytewise, as serde_json::Value's BTreeMap
 * map does. json-c's own printer differs on all of these points, hence this file.
 *
 * Usage: cl_json_init(), then begin/end/key/value calls, then cl_json_finish() which returns
 * the malloc'd text (caller frees) or NULL if memory ran out at any point.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

#define CL_JSON_MAX_DEPTH 64

struct cl_json {
	char *buf;
	size_t len, cap;
	bool pretty;
	bool failed; /* out of memory, or nesting deeper than CL_JSON_MAX_DEPTH */
	bool after_key;
	unsigned depth;
	bool first[CL_JSON_MAX_DEPTH];
};

void cl_json_init(struct cl_json *j, bool pretty);
void cl_json_begin_object(struct cl_json *j);
void cl_json_end_object(struct cl_json *j);
void cl_json_begin_array(struct cl_json *j);
void cl_json_end_array(struct cl_json *j);
void cl_json_key(struct cl_json *j, const char *key);
void cl_json_string(struct cl_json *j, const char *s);
void cl_json_string_n(struct cl_json *j, const char *s, size_t n);
void cl_json_bool(struct cl_json *j, bool v);
void cl_json_uint(struct cl_json *j, uint64_t v);
void cl_json_int(struct cl_json *j, int64_t v);
void cl_json_null(struct cl_json *j);
/* An f64 exactly as serde_json (ryu) prints it. */
void cl_json_double(struct cl_json *j, double v);
/* A parsed json-c value (NULL = null), re-serialised in serde_json::Value's form. */
void cl_json_value(struct cl_json *j, struct json_object *v);
/* The members of the json-c object @obj, sorted, into the object being written: serde's
 * #[serde(flatten)] of a Value map. Nothing for a non-object. */
void cl_json_members(struct cl_json *j, struct json_object *obj);
/* Returns the text (caller frees), or NULL on failure; @j is reset either way. */
char *cl_json_finish(struct cl_json *j);
void cl_json_discard(struct cl_json *j);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_EIF_H
#define CLOISTER_EIF_H

/*
 * Enclave Image Format (EIF): read, measure, write and sign images that are byte- and
 * PCR-compatible with AWS Nitro Enclaves (docs/eif.md, nitro-compat §1).
 *
 * Layout: a 548-byte header, then sections back to back, each a 12-byte section header and its
 * data. All integers big-endian. Nothing here ever holds a whole image in memory: files are
 * streamed through a bounded buffer (EIF_IO_CHUNK), so a multi-GiB image is described, measured
 * and built with a few MiB of RAM.
 *
 * Errors: every function returns an enum eif_error; on failure the caller's struct cl_diag (may
 * be NULL) receives a precise sentence naming the section index and type, the offset and what
 * was expected. Nothing prints, nothing exits.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

#define EIF_MAGIC "\x2e\x65\x69\x66" /* ".eif" */
#define EIF_VERSION_MIN 2
#define EIF_VERSION_CURRENT 4
#define EIF_HEADER_SIZE 548
#define EIF_SECTION_HEADER_SIZE 12
#define EIF_MAX_SECTIONS 32
#define EIF_CRC_OFFSET 0x220 /* the CRC covers header bytes [0, EIF_CRC_OFFSET) */
#define EIF_FLAG_AARCH64 0x1 /* header flags bit 0: 1 = aarch64 kernel, 0 = x86_64 */
#define EIF_SIGNATURE_MAX 32768 /* nitro-compat §1.5 */
#define EIF_METADATA_MAX (1 << 20) /* ours: a docker inspect object is a few KiB */
#define EIF_CUSTOM_METADATA_MAX 4096 /* nitro-compat §1.6 */
#define EIF_PCR_SIZE 48 /* SHA-384 */
#define EIF_IO_CHUNK (1u << 20) /* streaming buffer: the whole memory budget of a pass */

/* Values written by nitro-cli's builder; unused by the hypervisor. */
#define EIF_DEFAULT_MEM (1ull << 30)
#define EIF_DEFAULT_CPUS 2

enum eif_section_type {
	EIF_SECTION_INVALID = 0,
	EIF_SECTION_KERNEL = 1,
	EIF_SECTION_CMDLINE = 2,
	EIF_SECTION_RAMDISK = 3,
	EIF_SECTION_SIGNATURE = 4, /* since version 3 */
	EIF_SECTION_METADATA = 5, /* since version 4, mandatory there */
};

enum eif_error {
	EIF_OK = 0,
	EIF_ERR_INVALID_ARG, /* caller passed something unusable (NULL path, no ramdisk, ...) */
	EIF_ERR_NOMEM, /* allocation failed */
	EIF_ERR_IO, /* open/read/write/stat/rename of a file failed */
	EIF_ERR_TRUNCATED, /* the image ends before a header or a section's data */
	EIF_ERR_MAGIC, /* the first 4 bytes are not ".eif" */
	EIF_ERR_VERSION, /* version outside 2..4 */
	EIF_ERR_HEADER, /* reserved header flag bits or fields set */
	EIF_ERR_SECTION_COUNT, /* num_sections is 0 or more than 32 */
	EIF_ERR_SECTION_TYPE, /* type 0, >= 6, or not allowed in this version */
	EIF_ERR_SECTION_FLAGS, /* a section header's flags are not 0 */
	EIF_ERR_LAYOUT, /* header table disagrees with the sections found in the file */
	EIF_ERR_STRUCTURE, /* not exactly one kernel/cmdline, no ramdisk, ramdisk before kernel */
	EIF_ERR_SECTION_SIZE, /* a signature/metadata section is larger than its limit */
	EIF_ERR_CRC, /* stored CRC differs from the computed one */
	EIF_ERR_METADATA, /* metadata is not the JSON object nitro-cli writes */
	EIF_ERR_SIGNATURE, /* signature section is not CBOR [{signing_certificate, signature}] */
	EIF_ERR_CERT, /* signing certificate unreadable, or outside its validity window */
	EIF_ERR_KEY, /* private key unreadable, not EC P-256/384/521, or not the cert's */
	EIF_ERR_BAD_SIGNATURE, /* COSE signature does not verify with the certificate's key */
	EIF_ERR_PCR_MISMATCH, /* signature is valid but covers another PCR0 than the image's */
	EIF_ERR_CRYPTO, /* OpenSSL failed for another reason */
	EIF_ERR_CHANGED, /* an input file changed size while it was being read */
};

const char *eif_strerror(enum eif_error err);

/* Lower-case name of a section type ("kernel", "ramdisk", ...; "invalid" / "unknown"). */
const char *eif_section_type_name(uint16_t type);

/* One section as found in the file. */
struct eif_section {
	uint16_t type; /* enum eif_section_type */
	uint16_t flags; /* always 0 in a valid image */
	uint64_t offset; /* file offset of the 12-byte section header (= header table entry) */
	uint64_t data_offset; /* offset + 12 */
	uint64_t size; /* data bytes, section header excluded */
};

/* PCR0/1/2 always; PCR8 only for signed images (nitro-compat §1.4). */
struct eif_measurements {
	uint8_t pcr0[EIF_PCR_SIZE]; /* kernel ‖ cmdline ‖ all ramdisks */
	uint8_t pcr1[EIF_PCR_SIZE]; /* kernel ‖ cmdline ‖ first ramdisk */
	uint8_t pcr2[EIF_PCR_SIZE]; /* ramdisks after the first */
	uint8_t pcr8[EIF_PCR_SIZE]; /* DER of the signing certificate */
	bool has_pcr8;
};

/*
 * A parsed image. Sections are in file order (which a valid image's header table also has).
 * @metadata and @signature are malloc'd copies of those sections' data (NULL when absent);
 * release everything with eif_image_release().
 */
struct eif_image {
	uint16_t version;
	uint16_t flags; /* EIF_FLAG_AARCH64 */
	uint64_t default_mem;
	uint64_t default_cpus;
	uint16_t num_sections;
	struct eif_section sections[EIF_MAX_SECTIONS];
	int kernel; /* index into sections[] */
	int cmdline; /* index into sections[] */
	int metadata; /* index, or -1 */
	int signature; /* index, or -1 */
	unsigned num_ramdisks;
	uint64_t file_size;
	uint32_t crc_stored;
	uint32_t crc_computed;
	bool crc_ok;
	bool measured; /* @meas is valid (EIF_PARSE_MEASURE was given) */
	struct eif_measurements meas;
	uint8_t *metadata_data;
	size_t metadata_len;
	uint8_t *signature_data;
	size_t signature_len;
};

/* Flags for eif_parse_buffer() / eif_read_fd() / eif_read_file(). */
enum {
	/* Compute PCR0/1/2 (and PCR8 for a signed image, which needs the signature section to
	 * decode) in the same pass. */
	EIF_PARSE_MEASURE = 1u << 0,
	/* Report a CRC mismatch in crc_ok instead of failing with EIF_ERR_CRC (describe-eif shows
	 * it as "CheckCRC": false, as nitro-cli does). */
	EIF_PARSE_ALLOW_BAD_CRC = 1u << 1,
};

/*
 * Validate the EIF in memory at @buf (@len bytes) and describe it in @out. Every rule of
 * docs/eif.md is checked: magic, version 2..4, section count, section types and flags, the
 * header table against the sections found back to back from offset 548 (no gap, no overlap,
 * nothing past the end, no trailing bytes; overflow-safe), exactly one kernel and one cmdline,
 * at least one ramdisk and none before the kernel, at most one metadata (mandatory in v4) and
 * one signature section, and the CRC. Never reads outside [buf, buf + len).
 *
 * This is the entry point for bytes already in memory (the monitor's copy of the image in guest
 * RAM, the fuzzer). Section data is not copied except metadata and signature. On failure @out
 * holds nothing that needs releasing. Call eif_image_release() after success.
 */
enum eif_error eif_parse_buffer(const uint8_t *buf, size_t len, unsigned flags,
                                struct eif_image *out, struct cl_diag *d);

/*
 * The same checks over an open, seekable file, streaming it once through an EIF_IO_CHUNK buffer
 * (reads with pread from offset 0; the fd's position is not used). EIF_ERR_IO for read errors.
 */
enum eif_error eif_read_fd(int fd, unsigned flags, struct eif_image *out, struct cl_diag *d);

/* eif_read_fd() on @path, opened read-only; the diag names the path. */
enum eif_error eif_read_file(const char *path, unsigned flags, struct eif_image *out,
                             struct cl_diag *d);

/*
 * eif_parse_buffer() without measuring (EIF_PARSE_MEASURE is refused): the same checks, and no
 * cryptography linked in — what cloister-monitor uses to find the boot pieces, so that a monitor
 * without an NSM does not load libcrypto (docs/design.md).
 */
enum eif_error eif_parse_layout(const uint8_t *buf, size_t len, unsigned flags,
                                struct eif_image *out, struct cl_diag *d);

/* eif_read_file() without measuring, likewise crypto-free: run-enclave's enclave process checks
 * an image with it before taking resources (the monitor measures the copy that boots). */
enum eif_error eif_read_layout_file(const char *path, unsigned flags, struct eif_image *out,
                                    struct cl_diag *d);

/* Free what eif_parse_buffer()/eif_read_*() allocated; @img may be zeroed or NULL. */
void eif_image_release(struct eif_image *img);

/* ---- measurements ------------------------------------------------------------------------ */

/* PCR = SHA-384(48 zero bytes ‖ SHA-384(@data)): `nitro-cli pcr --input` on bytes. */
enum eif_error eif_pcr_of_bytes(const uint8_t *data, size_t len, uint8_t pcr[EIF_PCR_SIZE]);

/* The same over a whole file, streamed. */
enum eif_error eif_pcr_of_file(const char *path, uint8_t pcr[EIF_PCR_SIZE], struct cl_diag *d);

/* PCR8 of a PEM certificate (parsed, re-encoded as DER, then as above). EIF_ERR_CERT if the
 * bytes are not a PEM certificate. */
enum eif_error eif_pcr8_of_pem(const uint8_t *pem, size_t len, uint8_t pcr[EIF_PCR_SIZE],
                               struct cl_diag *d);

/* ---- writing ----------------------------------------------------------------------------- */

/*
 * Everything eif_build() needs. Strings are NUL-terminated and borrowed for the call. Optional
 * fields may be NULL and then take the documented default.
 *
 * This is the API `cloister build-eif` uses and `cloister build-enclave` calls with the ramdisk
 * files it generated (ramdisk 0 = bootstrap, ramdisk 1 = the customer image, as nitro-cli).
 */
struct eif_build_params {
	const char *kernel_path; /* required: bzImage (x86_64) or Image (aarch64) */
	const char *cmdline; /* required: section bytes exactly, no NUL written */
	const char *const *ramdisk_paths; /* required: >= 1, measured in this order */
	size_t num_ramdisks;
	uint16_t arch_flags; /* 0 (x86_64) or EIF_FLAG_AARCH64 */

	/* Metadata section (nitro-compat §1.6), written compact in nitro-cli's key order. */
	const char *image_name; /* NULL: kernel file name (eif_build's default) */
	const char *image_version; /* NULL: "1.0" */
	const char *build_tool; /* NULL: "cloister" */
	const char *build_tool_version; /* NULL: the library version */
	const char *kernel_os; /* NULL: "Linux" */
	const char *kernel_version; /* NULL: "Unknown" */
	/* NULL: $SOURCE_DATE_EPOCH if set, else now; RFC 3339 as chrono's to_rfc3339() writes it
	 * ("2024-05-01T10:00:00+00:00", fraction digits only when non-zero). A caller-given value
	 * must be RFC 3339 and is written verbatim. */
	const char *build_time;
	const char *docker_info_json; /* any JSON text, or NULL for null */
	const char *custom_metadata_json; /* a JSON object of <= 4096 bytes, or NULL for null */

	/* Optional signing (nitro-compat §1.5): both or neither. PEM files. */
	const char *signing_cert_path;
	const char *private_key_path;
};

/*
 * Build the EIF described by @p at @output_path: kernel, cmdline, metadata, ramdisks in order,
 * then the signature if signing — nitro-cli's section order — with header table and CRC. Inputs
 * are streamed through one EIF_IO_CHUNK buffer; the output is written to a temporary file in
 * the same directory and renamed over @output_path only when complete. Same inputs and build
 * time give byte-identical output (except the ECDSA signature, which is randomised).
 *
 * On success @meas (may be NULL) receives PCR0/1/2 (and PCR8 if signed). Errors:
 * EIF_ERR_INVALID_ARG (missing/inconsistent params), EIF_ERR_IO, EIF_ERR_CHANGED (an input
 * shrank while read), EIF_ERR_METADATA (bad JSON or too large), EIF_ERR_CERT / EIF_ERR_KEY
 * (signing inputs), EIF_ERR_CRYPTO, EIF_ERR_NOMEM.
 */
enum eif_error eif_build(const struct eif_build_params *p, const char *output_path,
                         struct eif_measurements *meas, struct cl_diag *d);

/*
 * The build time eif_build() uses when none is given: $SOURCE_DATE_EPOCH (decimal seconds) if
 * set, else the current time, as chrono's to_rfc3339(). @out holds at least 64 bytes.
 * EIF_ERR_INVALID_ARG if SOURCE_DATE_EPOCH is set but not a number.
 */
enum eif_error eif_default_build_time(char *out, size_t out_len, struct cl_diag *d);

/* True if @s is an RFC 3339 date-time ("YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"). */
bool eif_is_rfc3339(const char *s);

/* ---- signing ----------------------------------------------------------------------------- */

/*
 * Sign the image at @eif_path in place (nitro-compat §1.5): append a signature section to an
 * unsigned image, or replace the existing one and shift the sections after it; update the
 * header table, num_sections and the CRC. The image must be version >= 3 (a v2 image is
 * refused: it cannot carry a signature). The whole file is validated and measured first.
 * On success @meas receives the new measurements (with PCR8).
 */
enum eif_error eif_sign_file(const char *eif_path, const char *cert_path, const char *key_path,
                             struct eif_measurements *meas, struct cl_diag *d);

/* What the signature section says, for describe-eif (nitro-compat §1.7). */
struct eif_signature_info {
	/* issuer attributes as "longName=value" pairs, already sorted by long name */
	size_t num_issuer;
	struct {
		char name[64];
		char value[256];
	} issuer[16];
	char algorithm[64]; /* e.g. "ecdsa-with-SHA384" */
	char not_before[64]; /* OpenSSL's ASN1_TIME_print text */
	char not_after[64];
	char *cert_signature; /* "AB:CD:..." upper-case, malloc'd */
	bool signature_valid; /* COSE verifies with the certificate's key */
	bool pcr0_matches; /* payload == PcrInfo{0, PCR0 of the image} */
	bool cert_time_valid; /* now within notBefore..notAfter */
};

/*
 * Decode and check the signature section of @img (parsed with EIF_PARSE_MEASURE). Fills @info
 * (release with eif_signature_info_release()). Returns EIF_OK when the section decodes and the
 * certificate parses, even if the checks in @info are false; EIF_ERR_SIGNATURE / EIF_ERR_CERT
 * when it cannot be decoded; EIF_ERR_INVALID_ARG if the image is unsigned or not measured.
 */
enum eif_error eif_signature_inspect(const struct eif_image *img, struct eif_signature_info *info,
                                     struct cl_diag *d);
void eif_signature_info_release(struct eif_signature_info *info);

/*
 * run-enclave's check: a signed image must carry a COSE signature that verifies with its
 * certificate, over PcrInfo{0, PCR0 of the image}, with the certificate valid now. Returns EIF_OK
 * also for an unsigned image. EIF_ERR_BAD_SIGNATURE, EIF_ERR_PCR_MISMATCH, EIF_ERR_CERT
 * (expired / not yet valid) otherwise; @d says which.
 */
enum eif_error eif_signature_verify(const struct eif_image *img, struct cl_diag *d);

#endif

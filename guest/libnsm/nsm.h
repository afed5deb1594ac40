/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * libnsm: the C API of the AWS Nitro Enclaves NSM library (aws-nitro-enclaves-nsm-api,
 * nsm-lib), reimplemented in C for cloister enclaves. Same names, arguments, enum values and
 * buffer rules, so code written against AWS's nsm.h builds and runs unchanged
 * (docs/attestation.md, nitro-compat §3.3).
 *
 * Output buffers (pcr_data, data, att_doc_data): *len is the capacity on input and the number
 * of bytes copied on output. A NULL buffer sets *len = 0 and returns
 * ERROR_CODE_BUFFER_TOO_SMALL; a buffer smaller than the result receives its first *len bytes
 * and ERROR_CODE_BUFFER_TOO_SMALL; otherwise ERROR_CODE_SUCCESS.
 */
#ifndef NSM_LIB_H
#define NSM_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* The digest implementation used by a NitroSecureModule. */
typedef enum {
	DIGEST_SHA256,
	DIGEST_SHA384,
	DIGEST_SHA512,
} Digest;

/* Error codes the NSM (or this library) returns. */
typedef enum {
	ERROR_CODE_SUCCESS, /* no errors */
	ERROR_CODE_INVALID_ARGUMENT, /* input argument(s) invalid */
	ERROR_CODE_INVALID_INDEX, /* PCR index out of bounds */
	ERROR_CODE_INVALID_RESPONSE, /* the response does not correspond to the request */
	ERROR_CODE_READ_ONLY_INDEX, /* the PCR is locked and the operation would modify it */
	ERROR_CODE_INVALID_OPERATION, /* the request cannot be fulfilled */
	ERROR_CODE_BUFFER_TOO_SMALL, /* succeeded, but the output buffer is too small */
	ERROR_CODE_INPUT_TOO_LARGE, /* the request is larger than 4096 bytes */
	ERROR_CODE_INTERNAL_ERROR, /* the NSM or the driver failed */
} ErrorCode;

/* 252 bytes, the layout of AWS's repr(C) struct. */
typedef struct {
	uint16_t version_major;
	uint16_t version_minor;
	uint16_t version_patch;
	uint8_t module_id[100]; /* NUL-terminated, truncated to 99 bytes */
	uint32_t module_id_len;
	uint16_t max_pcrs;
	uint16_t locked_pcrs[64];
	uint32_t locked_pcrs_len;
	Digest digest;
} NsmDescription;

#ifdef __cplusplus
extern "C" {
#endif

/* DescribePCR: the lock state and value of PCR @index. */
ErrorCode nsm_describe_pcr(int32_t fd, uint16_t index, bool *lock, uint8_t *data,
                           uint32_t *data_len);

/* ExtendPCR: PCR[index] = SHA384(PCR[index] || data); returns the new value. @data NULL →
 * ERROR_CODE_INVALID_ARGUMENT. */
ErrorCode nsm_extend_pcr(int32_t fd, uint16_t index, const uint8_t *data, uint32_t data_len,
                         uint8_t *pcr_data, uint32_t *pcr_data_len);

/* Attestation: a signed document binding the optional user data, nonce and public key (a NULL
 * pointer means the field is absent). */
ErrorCode nsm_get_attestation_doc(int32_t fd, const uint8_t *user_data, uint32_t user_data_len,
                                  const uint8_t *nonce_data, uint32_t nonce_len,
                                  const uint8_t *pub_key_data, uint32_t pub_key_len,
                                  uint8_t *att_doc_data, uint32_t *att_doc_len);

/* DescribeNSM: version, module id, PCR count, locked PCRs and digest. */
ErrorCode nsm_get_description(int32_t fd, NsmDescription *nsm_description);

/* GetRandom: up to 256 random bytes. *buf_len is the capacity in and the bytes written out.
 * ERROR_CODE_INVALID_ARGUMENT if fd < 0, buf is NULL or *buf_len is 0. */
ErrorCode nsm_get_random(int32_t fd, uint8_t *buf, uintptr_t *buf_len);

/* Close the descriptor from nsm_lib_init(). */
void nsm_lib_exit(int32_t fd);

/* Open /dev/nsm; returns the descriptor, or -1. */
int32_t nsm_lib_init(void);

/* LockPCR: make PCR @index read-only until the enclave stops. */
ErrorCode nsm_lock_pcr(int32_t fd, uint16_t index);

/* LockPCRs: lock PCRs [0, range). */
ErrorCode nsm_lock_pcrs(int32_t fd, uint16_t range);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NSM_LIB_H */

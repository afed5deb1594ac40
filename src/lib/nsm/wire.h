/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_LIB_NSM_WIRE_H
#define CLOISTER_LIB_NSM_WIRE_H

/*
 * Between a monitor and cloister-nsmd, the host's NSM daemon (docs/attestation.md, "Where the
 * keys are"): one SOCK_SEQPACKET connection per enclave, one message per packet, both ends the
 * same build. The monitor opens a session before any vCPU runs (NSMD_OPEN, with the image in a
 * sealed memfd), then forwards each guest request (NSMD_REQUEST) and copies the answer back.
 * The session ends when the connection does. No cryptography here: the monitor links this.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cloister/diag.h"
#include "cloister/eif.h"

#define NSMD_PROTO 1

enum nsmd_type {
	NSMD_OPEN = 0x4e534d01, /* monitor → daemon: nsmd_open + strings, the memfd attached */
	NSMD_OPENED, /* daemon → monitor: nsmd_opened */
	NSMD_REQUEST, /* monitor → daemon: nsmd_request + the request's first bytes */
	NSMD_RESPONSE, /* daemon → monitor: nsmd_response + the answer */
};

/* Strings follow in this order, without terminators; NSMD_NONE = absent (not ""). */
enum { NSMD_STR_MODULE_ID, NSMD_STR_CA_DIR, NSMD_STR_PARENT_ROLE, NSMD_STR_PARENT_ID, NSMD_NSTR };
#define NSMD_NONE UINT32_MAX
#define NSMD_STR_MAX 4096u

struct nsmd_open {
	uint32_t type;
	uint32_t proto; /* NSMD_PROTO */
	uint32_t debug_mode;
	uint32_t str_len[NSMD_NSTR];
	uint64_t eif_len; /* the memfd's size */
};

struct nsmd_opened {
	uint32_t type;
	uint32_t status; /* enum nsm_backend_err */
	struct eif_measurements meas; /* PCR0/1/2/8 as measured, when status is 0 */
	char diag[CL_DIAG_MAX]; /* why not, when it is not */
};

struct nsmd_request {
	uint32_t type;
	uint32_t resp_cap; /* the guest's response buffer */
	uint64_t len; /* the request's true length; at most NSM_REQUEST_MAX bytes follow */
};

struct nsmd_response {
	uint32_t type;
	int32_t err; /* 0, or the NSM's host-side error (then @what names it) */
	char what[128];
};

/*
 * One packet: @hdr then @payload, with @pass_fd attached when ≥ 0. 0, or -errno (-EMSGSIZE
 * for a short send).
 */
int nsmd_send(int fd, const void *hdr, size_t hdr_len, const void *payload, size_t payload_len,
              int pass_fd);

/*
 * One packet into @buf (@cap bytes): its length, 0 when the peer has closed, or -errno
 * (-EMSGSIZE when it did not fit). An attached fd goes to *@got_fd (-1 when none, or when
 * @got_fd is NULL: then it is closed).
 */
ssize_t nsmd_recv(int fd, void *buf, size_t cap, int *got_fd);

/*
 * The daemon's abstract socket name for this user, state directory (@state_dir: where
 * nitro-cli keeps its sockets) and CA directory (@ca_dir, absolute: the only files that daemon
 * may touch), without the leading NUL, into @out.
 */
void nsmd_socket_name(const char *state_dir, const char *ca_dir, char *out, size_t len);

#endif

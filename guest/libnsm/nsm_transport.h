/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_LIBNSM_TRANSPORT_H
#define CLOISTER_LIBNSM_TRANSPORT_H

/*
 * How libnsm reaches the NSM. By default: ioctl(fd, NSM_IOCTL_RAW) on /dev/nsm (Linux uapi
 * <linux/nsm.h>, nitro-compat §4). Tests and fuzzers swap in a function that hands the request
 * to something else (cloister's device-side nsm_handle_request). Not part of nsm.h: AWS's API
 * has no such hook.
 */

#include <stddef.h>
#include <stdint.h>

#define NSM_REQUEST_MAX_SIZE 0x1000
#define NSM_RESPONSE_MAX_SIZE 0x3000

/*
 * Send @req_len bytes and receive the response into @resp (capacity *resp_len on input, bytes
 * received on output). Returns 0, or an errno value (EMSGSIZE maps to InputTooLarge, anything
 * else to InternalError, as the AWS library does).
 */
typedef int (*nsm_transport_fn)(void *opaque, int32_t fd, const uint8_t *req, size_t req_len,
                                uint8_t *resp, size_t *resp_len);

/* Replace the transport for the whole process (NULL restores the ioctl). */
void nsm_lib_set_transport(nsm_transport_fn fn, void *opaque);

/* The device nsm_lib_init() opens (NULL restores /dev/nsm). For tests of programs that call
 * nsm_lib_init() with a swapped transport. */
void nsm_lib_set_device_path(const char *path);

#endif

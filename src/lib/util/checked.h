/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_UTIL_CHECKED_H
#define CLOISTER_UTIL_CHECKED_H

/*
 * Overflow-safe arithmetic for sizes and offsets that come from untrusted input (EIF headers,
 * guest descriptors, CBOR lengths). Every function returns true when the result is exact and
 * stores it; on overflow it returns false and leaves *out unspecified.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool cl_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

static inline bool cl_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

static inline bool cl_add_size(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

/* True when [off, off + len) lies inside [0, limit) without wrapping. len 0 is inside when
 * off <= limit. */
static inline bool cl_range_within(uint64_t off, uint64_t len, uint64_t limit)
{
	uint64_t end;

	if (!cl_add_u64(off, len, &end))
		return false;
	return end <= limit;
}

/* Round @v up to a multiple of @align (a power of two). Returns false on overflow. */
static inline bool cl_align_up_u64(uint64_t v, uint64_t align, uint64_t *out)
{
	uint64_t t;

	if (!cl_add_u64(v, align - 1, &t))
		return false;
	*out = t & ~(align - 1);
	return true;
}

static inline uint16_t cl_get_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t cl_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t cl_get_be64(const uint8_t *p)
{
	return (uint64_t)cl_get_be32(p) << 32 | cl_get_be32(p + 4);
}

static inline void cl_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void cl_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void cl_put_be64(uint8_t *p, uint64_t v)
{
	cl_put_be32(p, (uint32_t)(v >> 32));
	cl_put_be32(p + 4, (uint32_t)v);
}

static inline uint16_t cl_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t cl_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t cl_get_le64(const uint8_t *p)
{
	return (uint64_t)cl_get_le32(p) | (uint64_t)cl_get_le32(p + 4) << 32;
}

static inline void cl_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void cl_put_le32(uint8_t *p, uint32_t v)
{
	cl_put_le16(p, (uint16_t)v);
	cl_put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void cl_put_le64(uint8_t *p, uint64_t v)
{
	cl_put_le32(p, (uint32_t)v);
	cl_put_le32(p + 4, (uint32_t)(v >> 32));
}

#endif

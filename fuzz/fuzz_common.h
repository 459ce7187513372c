/*
 * fuzz_common.h: what every harness shares (header-only, static inline):
 * a reader that turns the fuzzer's bytes into decisions (running out of
 * bytes reads zeros, so every input is a complete run), the edge values the
 * brief asks for (generations, sizes, counts at and beyond their limits), a
 * quiet log, and fz_violation: print what broke and abort(), so libFuzzer
 * saves the input as a crash and the run exits non-zero.
 */
#ifndef KVN_FUZZ_COMMON_H
#define KVN_FUZZ_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct fz {
	const uint8_t *p;
	size_t n, off;
};

static inline void fz_init(struct fz *f, const uint8_t *p, size_t n)
{
	f->p = p;
	f->n = n;
	f->off = 0;
}

static inline int fz_left(const struct fz *f)
{
	return f->off < f->n;
}

static inline uint8_t fz_u8(struct fz *f)
{
	return f->off < f->n ? f->p[f->off++] : 0;
}

static inline uint16_t fz_u16(struct fz *f)
{
	return (uint16_t)(fz_u8(f) | (fz_u8(f) << 8));
}

static inline uint32_t fz_u32(struct fz *f)
{
	return (uint32_t)fz_u16(f) | ((uint32_t)fz_u16(f) << 16);
}

static inline uint64_t fz_u64(struct fz *f)
{
	return (uint64_t)fz_u32(f) | ((uint64_t)fz_u32(f) << 32);
}

/* Up to max bytes (a length byte first); returns the count, p points into
 * the input. */
static inline size_t fz_bytes(struct fz *f, size_t max, const uint8_t **p)
{
	size_t want = fz_u16(f) % (max + 1);
	size_t have = f->n - (f->off < f->n ? f->off : f->n);
	if (want > have)
		want = have;
	*p = f->p + f->off;
	f->off += want;
	return want;
}

/* A 64-bit value: mostly from the edge table (0, 1, 2, 2^32, 2^63-1, 2^63,
 * 2^64-1, ...) or small, sometimes raw. */
static inline uint64_t fz_edge64(struct fz *f)
{
	static const uint64_t edges[] = {
		0, 1, 2, 3, 0xffffffffull, 0x100000000ull, 0x7ffffffffffffffeull, 0x7fffffffffffffffull,
		0x8000000000000000ull, 0x8000000000000001ull, 0xfffffffffffffffeull, 0xffffffffffffffffull,
	};
	uint8_t sel = fz_u8(f);
	if (sel < 96)
		return edges[sel % (sizeof edges / sizeof edges[0])];
	if (sel < 200)
		return sel - 96; /* small */
	return fz_u64(f);
}

/* A size around the limits the peer and master enforce: page size, the
 * arena, max_value_size (limit), and far beyond. */
static inline uint64_t fz_size(struct fz *f, uint64_t limit)
{
	uint8_t sel = fz_u8(f);
	switch (sel % 12) {
	case 0: return 0;
	case 1: return 1;
	case 2: return 4095;
	case 3: return 4096;
	case 4: return 4097;
	case 5: return limit;
	case 6: return limit + 1;
	case 7: return fz_edge64(f);
	default: return fz_u16(f) % 9000;
	}
}

/* A batch count: 0, 1, 4096, 4097 (PROTO_MAX_ITEMS and one more) or small. */
static inline uint32_t fz_count(struct fz *f)
{
	uint8_t sel = fz_u8(f);
	switch (sel % 16) {
	case 0: return 0;
	case 1: return 4096;
	case 2: return 4097;
	case 3: return 0xffffffffu;
	default: return 1 + sel % 5;
	}
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void fz_violation(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "==FUZZ INVARIANT VIOLATION== ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

/* Logs off (they would cost more than the code under test); KVN_FUZZ_LOG=3
 * shows them when reproducing. */
static inline void fz_quiet(void)
{
	const char *v = getenv("KVN_FUZZ_LOG");
	if (v && *v)
		kvn_log_set_level(atoi(v));
	else
		kvn_log_level_cur = -1;
}

static inline int fz_env_on(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0") != 0;
}

#endif

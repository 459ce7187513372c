/* t/auth_common.h: byte patterns shared by the auth tests. */
#ifndef KVN_T_AUTH_COMMON_H
#define KVN_T_AUTH_COMMON_H

#include <stdint.h>
#include <string.h>

#include "auth/auth.h"
#include "base/base.h"

/* 2*n hex digits of the byte pattern seed, seed+1, ... */
static inline void pattern_hex(char *out, int seed, size_t n)
{
	uint8_t b[AUTH_SECRET_MAX + 8];
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + 37 * (int)i);
	kvn_hex(out, b, n);
}

static inline void pattern_secret(struct auth_secret *s, int seed, size_t n)
{
	memset(s, 0, sizeof *s);
	for (size_t i = 0; i < n; i++)
		s->key[i] = (uint8_t)(seed + 37 * (int)i);
	s->len = n;
}

static inline int secret_eq(const struct auth_secret *a, const struct auth_secret *b)
{
	return a->len == b->len && memcmp(a->key, b->key, a->len) == 0;
}

#endif

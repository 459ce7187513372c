/*
 * bench_local: the bench's local baselines, ops that ask no server and
 * measure this machine's ceilings in the same run as the stores: memcpy (one
 * copy of a value), tag (one side's frame tag over a payload, which every
 * kvnode put and get pays on both ends in `frame` integrity mode) and xxh3
 * (the value checksum, XXH3-64, that the writer computes and the receivers
 * verify in either mode).  Owns each op's per-thread state; bench.c owns the
 * loop, the clock and the buffers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "auth/auth.h"
#include "base/base.h"
#include "cli/cli.h"

struct bench_local {
	enum bench_local_kind kind;
	struct auth_session *sess;
	struct auth_tag *t;
	uint64_t sink; /* xxh3: the sums, xor'ed */
};

int bench_local_new(enum bench_local_kind kind, struct bench_local **out, char *err, size_t errlen)
{
	struct bench_local *l = calloc(1, sizeof *l);
	uint8_t k[2][AUTH_MAC_LEN];
	int rc = 0;

	*out = NULL;
	if (!l)
		return KVN_ENOMEM;
	l->kind = kind;
	if (kind == BENCH_LOCAL_TAG) {
		/* a session under throwaway random keys, as an attach would make */
		rc = kvn_random(k, sizeof k);
		if (rc == 0)
			rc = auth_session_new(k[0], k[1], &l->sess);
		if (rc == 0 && !(l->t = auth_tag_new()))
			rc = KVN_ENOMEM;
	}
	if (rc) {
		snprintf(err, errlen, "cannot set up a frame tag: %s", kvn_strerror(rc));
		bench_local_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int bench_local_item(struct bench_local *l, const unsigned char *src, unsigned char *dst, size_t n)
{
	uint8_t out[AUTH_TAG_LEN];

	if (l->kind == BENCH_LOCAL_MEMCPY) {
		memcpy(dst, src, n);
		/* the copy must happen: the compiler may not drop it */
		__asm__ volatile("" : : "r"(dst) : "memory");
		return 0;
	}
	if (l->kind == BENCH_LOCAL_XXH3) {
		/* one pass over the bytes, as the writer's checksum; the sum is
		 * kept so the call is not dropped */
		l->sink ^= kvn_xxh3(src, n);
		__asm__ volatile("" : : "r"(l->sink) : "memory");
		return 0;
	}
	/* as conn.c tags a frame's payload: the one-time key, the bytes, the tag */
	int rc = auth_tag_begin(l->t, l->sess, AUTH_SEND);
	if (rc)
		return rc;
	auth_tag_update(l->t, src, n);
	return auth_tag_final(l->t, out);
}

void bench_local_free(struct bench_local *l)
{
	if (!l)
		return;
	auth_tag_free(l->t);
	auth_session_free(l->sess);
	free(l);
}

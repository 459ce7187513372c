/* t/list_model: the master's LIST page function (master_list_page) and
 * the LIST decoders, without processes.  model: random adds and removes
 * between the pages of 60 listings over an index where half the keys hash
 * into the top 1/16 of the space, so runs wrap to slot 0: every key
 * present throughout a listing comes exactly once, none twice, none that
 * never was there, every page within [cursor, next) and sorted.  collide:
 * keys sharing one 32-bit index hash come in one page, past max.  proto:
 * every field of a request or reply out of range is KVN_EPROTO. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/ptab.h"
#include "kvnode.h"
#include "list_env.h"
#include "master/master_int.h" /* master_list_page, struct master_entry */
#include "net/proto.h"
#include "tap.h"

static uint64_t xs_state = 88172645463325252ull;
static uint64_t xs(void)
{
	xs_state ^= xs_state << 13;
	xs_state ^= xs_state >> 7;
	xs_state ^= xs_state << 17;
	return xs_state;
}

static uint32_t key_h(const char *k)
{
	return kvn_ptab_hash(kvn_hash64(k, strlen(k)));
}

static struct master_entry *ment_new(const char *k)
{
	size_t kl = strlen(k);
	struct master_entry *e = kvn_xcalloc(1, offsetof(struct master_entry, key) + kl);
	memcpy(e->key, k, kl);
	e->klen = (uint16_t)kl;
	return e;
}

#define MPOOL 3000

struct mstate {
	struct kvn_ptab t;
	char keys[MPOOL][16];
	struct master_entry *ent[MPOOL];
	uint8_t ever[MPOOL], throughout[MPOOL], seen[MPOOL];
	uint32_t bad_range, bad_order, over_max, twice, ghost;
};

/* The pool index mstate_set kept in the entry's size. */
static int mkey_index(const struct master_entry *e)
{
	return e->gen == 0x6d6f64656cu && e->size < MPOOL ? (int)e->size : -1;
}

static void mstate_set(struct mstate *s, int i, int on)
{
	if (on && !s->ent[i]) {
		s->ent[i] = ment_new(s->keys[i]);
		s->ent[i]->size = (uint64_t)i;
		s->ent[i]->gen = 0x6d6f64656cu;
		kvn_ptab_add(&s->t, s->ent[i]);
		s->ever[i] = 1;
	} else if (!on && s->ent[i]) {
		kvn_ptab_del(&s->t, s->ent[i]);
		free(s->ent[i]);
		s->ent[i] = NULL;
		s->throughout[i] = 0;
	}
}

/* One page from *cur with max; checks into s. */
static int mstate_page(struct mstate *s, uint64_t *cur, uint32_t max)
{
	struct proto_list_req q = { .cursor = *cur, .max = max };
	const struct master_entry **ents;
	size_t n;
	uint64_t next;
	int rc = master_list_page(&s->t, &q, &ents, &n, &next);
	if (rc)
		return rc;
	if (next <= *cur)
		s->bad_range++;
	for (size_t j = 0; j < n; j++) {
		uint32_t h = master_index_hash(ents[j]);
		if (h < *cur || h >= next)
			s->bad_range++;
		if (j > 0 && h < master_index_hash(ents[j - 1]))
			s->bad_order++;
		if (n > max && h != master_index_hash(ents[0]))
			s->over_max++;
		int i = mkey_index(ents[j]);
		if (i < 0 || i >= MPOOL || !s->ever[i]) {
			s->ghost++;
			continue;
		}
		if (++s->seen[i] == 2)
			s->twice++;
	}
	free(ents);
	*cur = next == PROTO_LIST_END ? 0 : next;
	return 0;
}

static void t_model(void)
{
	struct mstate *s = kvn_xcalloc(1, sizeof *s);
	uint32_t missed = 0, rounds = 0, pages = 0;

	/* half the keys hash into the top 1/16 of the space: the table's last
	 * slots are crowded and their runs wrap to slot 0 */
	uint32_t cand = 0;
	for (int i = 0; i < MPOOL; i++) {
		if (i % 2 == 0) {
			snprintf(s->keys[i], sizeof s->keys[i], "m%d", i);
			continue;
		}
		do
			snprintf(s->keys[i], sizeof s->keys[i], "h%u", cand++);
		while (key_h(s->keys[i]) < 0xF0000000u);
	}
	for (uint32_t r = 0; r < 60; r++) {
		kvn_ptab_init(&s->t, master_index_hash);
		memset(s->ent, 0, sizeof s->ent);
		memset(s->ever, 0, sizeof s->ever);
		memset(s->seen, 0, sizeof s->seen);
		uint32_t start = (uint32_t)(xs() % MPOOL);
		for (uint32_t i = 0; i < MPOOL; i++)
			if (xs() % MPOOL < start)
				mstate_set(s, (int)i, 1);
		for (int i = 0; i < MPOOL; i++)
			s->throughout[i] = s->ent[i] != NULL;
		static const uint32_t maxes[] = { 1, 2, 3, 7, 50, 1000 };
		uint32_t max = maxes[xs() % 6];
		int churn = r % 3 != 0; /* every third round: nothing changes */
		uint64_t cur = 0;
		do {
			if (mstate_page(s, &cur, max) != 0)
				break;
			pages++;
			for (uint32_t k = churn ? (uint32_t)(xs() % 40) : 0; k > 0; k--)
				mstate_set(s, (int)(xs() % MPOOL), (int)(xs() & 1));
		} while (cur != 0);
		for (int i = 0; i < MPOOL; i++) {
			missed += s->throughout[i] && s->seen[i] != 1;
			mstate_set(s, i, 0);
		}
		kvn_ptab_fini(&s->t);
		rounds++;
	}
	tap_diag("model: %u rounds, %u pages", rounds, pages);
	is_int(missed, 0, "every key present throughout a listing: exactly once");
	is_int(s->twice, 0, "no key twice");
	is_int(s->ghost, 0, "no key that never was in the index");
	is_int(s->bad_range, 0, "every entry's hash within [cursor, next), next past cursor");
	is_int(s->bad_order, 0, "pages sorted by hash");
	is_int(s->over_max, 0, "no page over max but one hash's keys");
	free(s);
}

/* Keys that share one 32-bit index hash come in one page, even past max
 * (found by brute force among "x<i>": about 10 pairs in 300000 keys). */
static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void t_collide(void)
{
	enum { CAND = 300000 };
	uint64_t *hv = kvn_xmalloc(CAND * sizeof *hv);
	struct kvn_ptab t;
	struct master_entry *ents[64];
	uint32_t pair_h[32];
	int ne = 0, npairs = 0;
	char k[16];

	for (uint32_t i = 0; i < CAND; i++) {
		snprintf(k, sizeof k, "x%u", i);
		hv[i] = (uint64_t)key_h(k) << 32 | i;
	}
	qsort(hv, CAND, sizeof *hv, u64_cmp);
	kvn_ptab_init(&t, master_index_hash);
	for (uint32_t i = 1; i < CAND && npairs < 32; i++) {
		if (hv[i] >> 32 != hv[i - 1] >> 32)
			continue;
		for (int w = 0; w < 2; w++) {
			snprintf(k, sizeof k, "x%u", (uint32_t)(w ? hv[i] : hv[i - 1]));
			ents[ne] = ment_new(k);
			kvn_ptab_add(&t, ents[ne++]);
		}
		pair_h[npairs++] = (uint32_t)(hv[i] >> 32);
	}
	free(hv);
	ok(npairs >= 2, "%d pairs of keys sharing a 32-bit index hash found", npairs);
	/* some single keys between them */
	for (int i = 0; i < 20 && ne < 64; i++) {
		snprintf(k, sizeof k, "single%d", i);
		ents[ne] = ment_new(k);
		kvn_ptab_add(&t, ents[ne++]);
	}
	uint64_t cur = 0;
	int pages = 0, total = 0, pair_pages = 0, split = 0, bad = 0;
	do {
		struct proto_list_req q = { .cursor = cur, .max = 1 };
		const struct master_entry **pg;
		size_t n;
		uint64_t next;
		if (master_list_page(&t, &q, &pg, &n, &next) != 0) {
			bad++;
			break;
		}
		pages++;
		total += (int)n;
		if (n == 2 && master_index_hash(pg[0]) == master_index_hash(pg[1]))
			pair_pages++;
		else if (n > 1)
			bad++;
		for (size_t j = 0; j < n; j++)
			for (int p = 0; p < npairs; p++)
				if (master_index_hash(pg[j]) == pair_h[p] && n != 2)
					split++;
		free(pg);
		cur = next == PROTO_LIST_END ? 0 : next;
	} while (cur != 0 && pages < 10000);
	is_int(total, ne, "a listing with max 1 returns all %d keys", ne);
	is_int(pair_pages, npairs, "each pair in a page of its own, 2 keys over max 1");
	is_int(split, 0, "no pair split across pages");
	is_int(bad, 0, "no other page over max");
	for (int i = 0; i < ne; i++)
		free(ents[i]);
	kvn_ptab_fini(&t);
}

static void t_proto(void)
{
	static uint8_t big[WIRE_MAX_KEY + 1];
	struct proto_list_req q;
	struct actor_msg *m;

	memset(big, 'k', sizeof big);
	struct {
		uint64_t cursor;
		uint32_t max, plen;
		int trailing, want;
		const char *what;
	} cases[] = {
		{ 0, 1, 0, 0, 0, "cursor 0, max 1, no prefix" },
		{ PROTO_LIST_END - 1, PROTO_LIST_MAX, WIRE_MAX_KEY, 0, 0, "cursor 2^32-1, max KVN_LIST_MAX, a 1 KiB prefix" },
		{ PROTO_LIST_END, 1, 0, 0, KVN_EPROTO, "cursor 2^32" },
		{ UINT64_MAX, 1, 0, 0, KVN_EPROTO, "cursor 2^64-1" },
		{ 0, 0, 0, 0, KVN_EPROTO, "max 0" },
		{ 0, PROTO_LIST_MAX + 1, 0, 0, KVN_EPROTO, "max KVN_LIST_MAX+1" },
		{ 0, 1, WIRE_MAX_KEY + 1, 0, KVN_EPROTO, "a prefix over 1 KiB" },
		{ 0, 1, 3, 1, KVN_EPROTO, "a byte after the prefix" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		m = list_msg(cases[i].cursor, cases[i].max, cases[i].plen, big, cases[i].trailing);
		is_int(proto_list_dec(m, &q), cases[i].want, "request: %s", cases[i].what);
		actor_msg_free(m);
	}
	m = list_msg(5, 7, 3, big, 0);
	m->meta_len -= 1; /* the prefix claims a byte that is not there */
	is_int(proto_list_dec(m, &q), KVN_EPROTO, "request: a truncated prefix");
	actor_msg_free(m);

	/* replies */
	struct wire_w w;
	struct wire_r r;
	uint64_t next;
	uint32_t n;
	struct proto_list_ent e = { .key = (const uint8_t *)"abc", .klen = 3, .size = 9, .gen = 1 };
	uint64_t nexts[] = { 0, PROTO_LIST_END + 1, 1, PROTO_LIST_END };
	int want[] = { KVN_EPROTO, KVN_EPROTO, 0, 0 };
	for (size_t i = 0; i < 4; i++) {
		m = actor_msg_new(WIRE_LIST);
		wire_w_init(&w);
		proto_list_reply_begin(&w, nexts[i], 1);
		proto_list_reply_add(&w, &e);
		wire_w_to_msg(&w, m);
		int rc = proto_list_reply_open(&r, m, &next, &n);
		struct proto_list_ent rd; /* into m: e stays what is written */
		if (rc == 0)
			rc = proto_list_reply_next(&r, &rd);
		if (rc == 0)
			rc = wire_r_end(&r);
		is_int(rc, want[i], "reply: next = %llu", (unsigned long long)nexts[i]);
		actor_msg_free(m);
	}
	m = actor_msg_new(WIRE_LIST);
	wire_w_init(&w);
	proto_list_reply_begin(&w, 10, 1000); /* 1000 entries claimed, one there */
	proto_list_reply_add(&w, &e);
	wire_w_to_msg(&w, m);
	is_int(proto_list_reply_open(&r, m, &next, &n), KVN_EPROTO, "reply: a count the bytes cannot hold");
	actor_msg_free(m);
	m = actor_msg_new(WIRE_LIST);
	wire_w_init(&w);
	proto_list_reply_begin(&w, 10, 1);
	wire_w_key(&w, "abc", 3);
	wire_w_u64(&w, 9);
	wire_w_u64(&w, PROTO_GEN_MAX + 1);
	wire_w_to_msg(&w, m);
	struct proto_list_ent rd;
	int rc = proto_list_reply_open(&r, m, &next, &n);
	if (rc == 0)
		rc = proto_list_reply_next(&r, &rd);
	is_int(rc, KVN_EPROTO, "reply: a generation over 2^63-1");
	actor_msg_free(m);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "model", t_model },
		{ "collide", t_collide },
		{ "proto", t_proto },
		{ NULL, NULL },
	};
	return tap_run(tests, argc, argv);
}

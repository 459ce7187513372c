/*
 * master_list: LIST, one page of the key index from a cursor (kvn_list).
 *
 * The cursor is a 32-bit index hash h0 rather than a slot, so it means the
 * same thing whatever the table's capacity and in the next master life
 * (the hash is kvn_hash64, unseeded).  The index (base/ptab.h) puts a hash
 * h at home(h) = h * cap >> 32, monotonic in h, and linear probing keeps
 * an entry between its home and the first empty slot after it.  So a scan
 * from home(h0) that stops at an empty slot i > home(h0) has seen every
 * entry with h0 <= hash < next, next being the least hash whose home is i
 * (their homes lie in [home(h0), i) and no run crosses the empty slot i);
 * a scan that reaches the table's end also takes the run wrapped to slot
 * 0 (next is then 2^32).  The page is exactly the entries of [h0, next)
 * that match the prefix: entries displaced past home(h0) from earlier
 * homes, or wrapped ones met early, lie outside and are left out.  Each
 * call covers the hashes from where the previous one ended, so a key
 * present throughout is listed once, across resizes and restarts alike.
 * The page is cut to max entries and to what fits in a reply's metadata
 * at a hash boundary (sorted by hash), next then being the first hash
 * left out.  Runs on the master's loop; reads the index only.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"

/* Slots one call may visit beyond what its page needs (a prefix that
 * matches little still makes progress in bounded steps). */
#define LIST_SCAN_MIN 4096
#define LIST_SCAN_PER_KEY 4
/* Metadata a page may fill: under WIRE_MAX_META with room for the header. */
#define LIST_REPLY_ROOM (WIRE_MAX_META - 64)

struct lent {
	uint32_t h;
	const struct master_entry *e;
};

struct lpage {
	struct lent *v;
	size_t n, cap, bytes;
};

static int lent_cmp(const void *a, const void *b)
{
	const struct lent *x = a, *y = b;
	return x->h < y->h ? -1 : x->h > y->h;
}

static void take(struct lpage *p, const struct master_entry *e, uint32_t h0, const struct proto_list_req *q)
{
	uint32_t h = master_index_hash(e);

	if (h < h0 || e->klen < q->plen || (q->plen && memcmp(e->key, q->prefix, q->plen) != 0))
		return;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->v = realloc(p->v, p->cap * sizeof *p->v);
		if (!p->v)
			kvn_fatal("out of memory");
	}
	p->v[p->n].h = h;
	p->v[p->n].e = e;
	p->n++;
	p->bytes += proto_list_ent_len(e->klen);
}

/* Scan from home(h0) (the file's comment): the candidates into p, and the
 * end of the hash range they cover. */
static uint64_t scan(const struct kvn_ptab *t, const struct proto_list_req *q, struct lpage *p)
{
	uint32_t h0 = (uint32_t)q->cursor;
	size_t budget = (size_t)q->max * LIST_SCAN_PER_KEY + LIST_SCAN_MIN, seen = 0;

	if (!t->cap)
		return PROTO_LIST_END;
	size_t s = kvn_ptab_home(t, h0);
	for (size_t i = s; i < t->cap; i++, seen++) {
		if (t->tag[i]) {
			take(p, t->v[i], h0, q);
			continue;
		}
		if (i > s && (p->n >= q->max || p->bytes >= LIST_REPLY_ROOM || seen >= budget))
			/* the least hash whose home is i */
			return (((uint64_t)i << 32) + t->cap - 1) / t->cap;
	}
	/* the run wrapped past the end; slots from s on were seen above */
	for (size_t j = 0; j < s && t->tag[j]; j++)
		take(p, t->v[j], h0, q);
	return PROTO_LIST_END;
}

int master_list_page(const struct kvn_ptab *t, const struct proto_list_req *q, const struct master_entry ***out,
		     size_t *nout, uint64_t *next_out)
{
	struct lpage p = { 0 };
	size_t k, acc = 0, cut = 0;

	*out = NULL;
	*nout = 0;
	uint64_t next = scan(t, q, &p);
	if (p.n > 1)
		qsort(p.v, p.n, sizeof *p.v, lent_cmp);
	while (p.n > 0 && p.v[p.n - 1].h >= next)
		p.n--; /* met in the scan, beyond the range it covers */
	k = p.n;
	for (size_t j = 0; j < p.n; j++) {
		if (j > 0 && p.v[j].h != p.v[j - 1].h)
			cut = j; /* [0, j) ends at a hash boundary and fits */
		acc += proto_list_ent_len(p.v[j].e->klen);
		if (j + 1 > q->max || acc > LIST_REPLY_ROOM) {
			k = cut;
			break;
		}
	}
	if (k == 0 && p.n > 0) {
		/* the first hash alone is over max: kvn_list allows that, as
		 * long as it fits a reply */
		acc = 0;
		for (k = 0; k < p.n && p.v[k].h == p.v[0].h; k++)
			acc += proto_list_ent_len(p.v[k].e->klen);
		if (acc > LIST_REPLY_ROOM) {
			free(p.v);
			return KVN_ETOOBIG;
		}
	}
	if (k < p.n)
		next = p.v[k].h;
	const struct master_entry **ents = kvn_xcalloc(k ? k : 1, sizeof *ents);
	for (size_t j = 0; j < k; j++)
		ents[j] = p.v[j].e;
	free(p.v);
	*out = ents;
	*nout = k;
	*next_out = next;
	return 0;
}

int master_on_list(struct master *ms, struct actor_msg *m)
{
	struct proto_list_req q;
	const struct master_entry **ents;
	struct wire_w w;
	uint64_t next;
	size_t k;

	if (proto_list_dec(m, &q) != 0) {
		master_reply_proto_err(ms, m);
		return 0;
	}
	if (ms->unsynced) {
		/* a node that has not re-synced since this master started may
		 * hold keys acknowledged after master.db's last commit: a page
		 * now could miss a key present throughout (as routes wait,
		 * master_route_ready) */
		actor_reply_status(ms->self, m, KVN_EBUSY);
		return 0;
	}
	int rc = master_list_page(&ms->index, &q, &ents, &k, &next);
	if (rc) {
		actor_reply_status(ms->self, m, rc);
		return 0;
	}
	wire_w_init(&w);
	proto_list_reply_begin(&w, next, (uint32_t)k);
	for (size_t j = 0; j < k; j++) {
		struct proto_list_ent e = { .key = ents[j]->key, .klen = ents[j]->klen, .size = ents[j]->size, .gen = ents[j]->gen };
		proto_list_reply_add(&w, &e);
	}
	free(ents);
	proto_reply(ms->self, m, &w, NULL, 0);
	return 0;
}

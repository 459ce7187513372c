/*
 * client_list: kvn_list and kvn_list_free (include/kvnode.h, "listing
 * keys"), a master-only call built on client_master_call.  LIST is
 * idempotent (it only reads the index), so a lost connection is asked
 * again like STAT; a whole-call KVN_EBUSY (the master has not seen every
 * node re-sync since it started) is asked again after a pause within the
 * deadline.  The reply is checked against the request before anything is
 * handed over: each key starts with the prefix and its index hash lies in
 * [cursor, next), so a page the master got wrong (or a forged one) is
 * KVN_EPROTO rather than a key listed twice or a listing that never ends.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "base/ptab.h"

_Static_assert(KVN_LIST_MAX == PROTO_LIST_MAX, "the public page limit is the wire's");
_Static_assert(KVN_MAX_KEY == WIRE_MAX_KEY, "the public key limit is the wire's");

static int list_call(struct kvn_client *c, struct client_op *op, struct actor_msg *m)
{
	int rc = client_master_call_busy(c, op, m);

	if (rc == KVN_EBUSY) {
		/* as a route that is never ready: the deadline passed */
		rc = KVN_ETIMEDOUT;
		client_set_detail(c, "the master was waiting for its nodes to re-sync since its start");
	} else if (rc == KVN_EPROTO && op->reply && op->reply->meta_len == 0 && !c->detail[0])
		client_set_detail(c, "the master refused LIST (a master older than kvn_list?)");
	else if (rc == KVN_ETOOBIG)
		client_set_detail(c, "the keys sharing one index hash at this cursor do not fit a reply");
	return rc;
}

/* The reply's entries, checked (file comment), into one allocation. */
static int list_collect(struct kvn_client *c, const struct actor_msg *reply, const struct proto_list_req *q,
			uint64_t *next, struct kvn_listed **out, size_t *n)
{
	struct wire_r r;
	struct proto_list_ent e;
	uint32_t got = 0;
	size_t keybytes = 0;
	uint32_t h_first = 0;

	if (proto_list_reply_open(&r, reply, next, &got) != 0 || *next <= q->cursor)
		return KVN_EPROTO;
	for (uint32_t i = 0; i < got; i++) {
		if (proto_list_reply_next(&r, &e) != 0)
			return KVN_EPROTO;
		uint32_t h = kvn_ptab_hash(kvn_hash64(e.key, e.klen));
		if (h < q->cursor || h >= *next || e.klen < q->plen || (q->plen && memcmp(e.key, q->prefix, q->plen) != 0))
			return KVN_EPROTO;
		if (i == 0)
			h_first = h;
		/* more than max only when they all share one hash */
		if (got > q->max && h != h_first)
			return KVN_EPROTO;
		keybytes += e.klen;
	}
	if (wire_r_end(&r) != 0)
		return KVN_EPROTO;
	size_t arr = (got ? got : 1) * sizeof **out;
	struct kvn_listed *page = malloc(arr + keybytes);
	if (!page)
		return KVN_ENOMEM;
	uint8_t *kb = (uint8_t *)page + arr;
	proto_list_reply_open(&r, reply, next, &got);
	for (uint32_t i = 0; i < got; i++) {
		proto_list_reply_next(&r, &e);
		memcpy(kb, e.key, e.klen);
		page[i].key = kb;
		page[i].klen = e.klen;
		page[i].size = e.size;
		page[i].gen = e.gen;
		kb += e.klen;
	}
	(void)c;
	*out = page;
	*n = got;
	return 0;
}

int kvn_list(struct kvn_client *c, const void *prefix, size_t plen, uint64_t *cursor, size_t max,
	     struct kvn_listed **out, size_t *n)
{
	struct proto_list_req q = { 0 };
	struct client_op op;
	uint64_t next = 0;
	int rc;

	if (out)
		*out = NULL;
	if (n)
		*n = 0;
	if (!c || !cursor || !out || !n || max < 1 || max > KVN_LIST_MAX || *cursor >= PROTO_LIST_END ||
	    (plen && !prefix))
		return KVN_EINVAL;
	if (plen > KVN_MAX_KEY)
		return KVN_EKEYLEN;
	q.cursor = *cursor;
	q.max = (uint32_t)max;
	q.prefix = prefix;
	q.plen = (uint32_t)plen;
	struct actor_msg *m = actor_msg_new(WIRE_LIST);
	if (proto_list_enc(m, &q) != 0) {
		actor_msg_free(m);
		return KVN_EPROTO;
	}
	client_op_begin(c, &op, NULL, 0, WIRE_LIST);
	rc = list_call(c, &op, m);
	if (rc == 0) {
		rc = list_collect(c, op.reply, &q, &next, out, n);
		if (rc == KVN_EPROTO)
			client_set_detail(c, "malformed LIST reply from the master");
	}
	if (rc == 0)
		*cursor = next == PROTO_LIST_END ? 0 : next;
	client_op_end(c, &op);
	return rc;
}

void kvn_list_free(struct kvn_listed *page)
{
	free(page);
}

/*
 * client_slot: the client side of the three-step put (kvn_alloc_slots,
 * kvn_commit_slots, kvn_abort_slots) and of kvn_resolve.  Alloc goes
 * through the master like a put (ROUTE_PUT places the key and assigns the
 * generation, ENOSPC re-routes with that node excluded); commit, abort and
 * resolve's second step go straight to the peer that holds the slot or the
 * key, one request per peer, all in flight together, and are not retried:
 * a slot lives on one peer, so only its owner can answer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

/* The op's items are a shadow of the slots: key, klen, and the size and
 * bytes where a PUT would have its value. */
static struct kvn_item *shadow(const struct kvn_slot *slots, size_t n)
{
	struct kvn_item *items = kvn_xcalloc(n ? n : 1, sizeof *items);
	for (size_t i = 0; i < n; i++) {
		items[i].key = slots[i].key;
		items[i].klen = slots[i].klen;
		items[i].val = (void *)slots[i].val;
		items[i].vlen = (size_t)slots[i].size;
	}
	return items;
}

static int slots_result(struct kvn_slot *slots, size_t n, int rc)
{
	if (rc && rc != KVN_ETIMEDOUT)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (slots[i].status)
			return slots[i].status;
	return 0;
}

int kvn_alloc_slots(struct kvn_client *c, struct kvn_slot *slots, size_t n)
{
	struct client_op op;
	struct kvn_item *items;
	int *st, rc;

	if (!c || (!slots && n))
		return KVN_EINVAL;
	items = shadow(slots, n);
	client_op_begin(c, &op, items, n, WIRE_ALLOC_SLOT);
	op.sres = kvn_xcalloc(n ? n : 1, sizeof *op.sres);
	st = kvn_xcalloc(n ? n : 1, sizeof *st);
	for (size_t i = 0; i < n; i++) {
		if (!client_key_ok(&items[i]))
			st[i] = KVN_EKEYLEN;
		else if (slots[i].size > c->conf.node_max_value_size || slots[i].size != items[i].vlen)
			st[i] = KVN_ETOOBIG;
		else
			st[i] = KVN_EBUSY; /* to do */
	}
	rc = client_put_rounds(c, &op, st, 0);
	for (size_t i = 0; i < n; i++) {
		int s = st[i];
		if (s == KVN_EBUSY && rc)
			s = rc;
		slots[i].status = s; /* KVN_ENOSPC: the node tried last had no room */
		slots[i].gen = s == 0 ? op.sres[i].gen : 0;
		slots[i].addr = s == 0 ? op.sres[i].addr : 0;
		slots[i].rkey = s == 0 ? op.sres[i].rkey : 0;
		snprintf(slots[i].node_id, sizeof slots[i].node_id, "%s", s == 0 ? op.rt[i].node_id : "");
		snprintf(slots[i].node_addr, sizeof slots[i].node_addr, "%s", s == 0 ? op.rt[i].addr : "");
		/* the key's route may change when this commits */
		if (client_key_ok(&items[i]))
			client_rc_drop(c, items[i].key, items[i].klen);
	}
	free(st);
	client_op_end(c, &op);
	free(items);
	return slots_result(slots, n, rc);
}

/* COMMIT_SLOT or ABORT_SLOT: straight to each slot's peer, one round. */
static int slot_call(struct kvn_client *c, struct kvn_slot *slots, size_t n, int kind, uint8_t flags)
{
	struct client_op op;
	struct kvn_item *items;
	uint32_t *idx;
	uint32_t go = 0;
	int *st, rc = 0;

	if (!c || (!slots && n))
		return KVN_EINVAL;
	items = shadow(slots, n);
	client_op_begin(c, &op, items, n, kind);
	/* the checksum of the bytes the commit sends (RDMA, later: of the
	 * bytes written to the slot) */
	uint64_t *sums = kind == WIRE_COMMIT_SLOT ? client_sums(items, n) : NULL;
	op.sums = sums;
	op.res = kvn_xcalloc(n ? n : 1, sizeof *op.res);
	st = kvn_xcalloc(n ? n : 1, sizeof *st);
	idx = kvn_xcalloc(n ? n : 1, sizeof *idx);
	for (size_t i = 0; i < n; i++) {
		if (!client_key_ok(&items[i]))
			st[i] = KVN_EKEYLEN;
		else if (slots[i].gen == 0 || !slots[i].node_id[0] || !slots[i].node_addr[0] ||
			 slots[i].size != items[i].vlen || (kind == WIRE_COMMIT_SLOT && slots[i].size && !slots[i].val))
			st[i] = KVN_EINVAL; /* not a slot kvn_alloc_slots filled in */
		else {
			struct proto_route *rt = &op.rt[i];
			snprintf(rt->node_id, sizeof rt->node_id, "%s", slots[i].node_id);
			snprintf(rt->addr, sizeof rt->addr, "%s", slots[i].node_addr);
			rt->gen = slots[i].gen;
			if (kind == WIRE_ABORT_SLOT)
				items[i].vlen = 0;
			idx[go++] = (uint32_t)i;
		}
	}
	client_send_round(c, &op, idx, go, st, flags);
	if (client_wait_round(c, &op) == KVN_ETIMEDOUT)
		rc = KVN_ETIMEDOUT;
	client_collect_round(c, &op, st);
	for (size_t i = 0; i < n; i++) {
		slots[i].status = st[i];
		if (kind == WIRE_COMMIT_SLOT && client_key_ok(&items[i])) {
			if (st[i] == 0) {
				/* our own write: the next get must see it */
				struct proto_route rt = op.rt[i];
				rt.size = slots[i].size;
				rt.tier = 0;
				client_rc_put(c, items[i].key, items[i].klen, &rt);
			} else {
				client_rc_drop(c, items[i].key, items[i].klen);
			}
		}
	}
	free(st);
	free(idx);
	free(sums);
	client_op_end(c, &op);
	free(items);
	return slots_result(slots, n, rc);
}

int kvn_commit_slots(struct kvn_client *c, struct kvn_slot *slots, size_t n, unsigned flags)
{
	uint8_t wire_flags;

	if (client_put_wire_flags(flags, &wire_flags) != 0)
		return KVN_EINVAL;
	return slot_call(c, slots, n, WIRE_COMMIT_SLOT, wire_flags);
}

int kvn_abort_slots(struct kvn_client *c, struct kvn_slot *slots, size_t n)
{
	return slot_call(c, slots, n, WIRE_ABORT_SLOT, 0);
}

int kvn_resolve(struct kvn_client *c, struct kvn_slot *slots, size_t n)
{
	struct client_op op;
	struct kvn_item *items;
	uint32_t *idx, k = 0, go = 0;
	int *st, rc;

	if (!c || (!slots && n))
		return KVN_EINVAL;
	items = shadow(slots, n);
	for (size_t i = 0; i < n; i++)
		items[i].vlen = 0;
	client_op_begin(c, &op, items, n, WIRE_RESOLVE_KEY);
	op.res = kvn_xcalloc(n ? n : 1, sizeof *op.res);
	st = kvn_xcalloc(n ? n : 1, sizeof *st);
	idx = kvn_xcalloc(n ? n : 1, sizeof *idx);
	for (size_t i = 0; i < n; i++) {
		st[i] = client_key_ok(&items[i]) ? KVN_EBUSY : KVN_EKEYLEN;
		if (st[i] == KVN_EBUSY)
			idx[k++] = (uint32_t)i;
	}
	/* the master knows the node; the peer is the authority on the gen */
	rc = k ? client_route_get(c, &op, idx, k) : 0;
	if (rc == 0) {
		for (uint32_t j = 0; j < k; j++) {
			st[idx[j]] = op.route_st[idx[j]];
			if (st[idx[j]] == 0)
				idx[go++] = idx[j];
		}
		client_send_round(c, &op, idx, go, st, 0);
		if (client_wait_round(c, &op) == KVN_ETIMEDOUT)
			rc = KVN_ETIMEDOUT;
		client_collect_round(c, &op, st);
	}
	for (size_t i = 0; i < n; i++) {
		int s = st[i] == KVN_EBUSY ? (rc ? rc : KVN_ETIMEDOUT) : st[i];
		slots[i].status = s;
		slots[i].gen = s == 0 ? op.res[i].gen : 0;
		slots[i].size = s == 0 ? op.res[i].size : 0;
		slots[i].addr = 0;
		slots[i].rkey = 0;
		snprintf(slots[i].node_id, sizeof slots[i].node_id, "%s", s == 0 ? op.rt[i].node_id : "");
		snprintf(slots[i].node_addr, sizeof slots[i].node_addr, "%s", s == 0 ? op.rt[i].addr : "");
	}
	free(st);
	free(idx);
	client_op_end(c, &op);
	free(items);
	return slots_result(slots, n, rc);
}

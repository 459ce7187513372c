/*
 * client_queue: the client's side of the consumer queue (DESIGN.md section
 * 8, include/kvnode.h "consumer leases"): the queue flags of a put on the
 * wire, and kvn_lease, kvn_release and kvn_renew, master-only calls built
 * on client_master_call.
 *
 * None of the three is idempotent: a LEASE that reached the master leased
 * its samples whether or not the reply arrives, and a second RELEASE of an
 * id answers KVN_ESTATE although the first one consumed it.  So a request
 * is sent at most once (op.once): a lost connection or a deadline is
 * reported, never resent; leases nobody heard of expire and their samples
 * go back to the pool.  The one answer that is asked again, after a pause
 * within the deadline, is a whole-call KVN_EBUSY: the master (or its
 * mailbox) refused the request before doing anything.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_int.h"

int client_put_wire_flags(unsigned flags, uint8_t *wire)
{
	if ((flags & ~CLIENT_PUT_FLAGS) || ((flags & KVN_PUT_RETAIN) && !(flags & KVN_PUT_QUEUE)))
		return KVN_EINVAL;
	*wire = 0;
	if (flags & (KVN_PUT_DURABLE | KVN_PUT_QUEUE))
		*wire |= PROTO_PUT_DURABLE; /* a sample is handed out only once on disk */
	if (flags & KVN_PUT_QUEUE)
		*wire |= PROTO_PUT_QUEUE;
	if (flags & KVN_PUT_RETAIN)
		*wire |= PROTO_PUT_RETAIN;
	return 0;
}

/* "hostname:pid", printable ASCII, at most PROTO_HOLDER_MAX bytes (the
 * host name is cut to leave room for the pid): who holds a lease, for
 * the operator's v_leases. */
static void holder_name(char out[PROTO_HOLDER_MAX + 1])
{
	char host[256], pid[24];

	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "client");
	host[sizeof host - 1] = '\0';
	int np = snprintf(pid, sizeof pid, ":%ld", (long)getpid());
	snprintf(out, PROTO_HOLDER_MAX + 1, "%.*s%s", PROTO_HOLDER_MAX - np, host, pid);
	for (char *p = out; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '_';
}

/* Call the master with m (taken) once, as op->once says; a whole-call
 * KVN_EBUSY is asked again after a pause (nothing was done).  0 with
 * op->reply set, or the error. */
static int queue_call(struct kvn_client *c, struct client_op *op, struct actor_msg *m)
{
	op->once = 1;
	int rc = client_master_call_busy(c, op, m);
	if (rc == KVN_EPROTO && op->reply && op->reply->meta_len == 0 && !c->detail[0])
		/* answered with a bare status: a master without the queue
		 * (older than wire version 4) refuses an unknown type so */
		client_set_detail(c, "the master refused the request (a master without consumer leases?)");
	return rc;
}

/* A node id as the master sent it: printable, no space (it goes on a
 * line of the CLI's output). */
static int node_id_ok(const char *s)
{
	for (; *s; s++)
		if (*s <= 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

int kvn_lease(struct kvn_client *c, uint32_t part_i, uint32_t part_n, uint64_t ttl_ms, struct kvn_ref *refs,
	      size_t max, size_t *n)
{
	struct proto_lease_req q = { .part_i = part_i, .part_n = part_n, .ttl_ms = ttl_ms };
	struct client_op op;
	struct wire_r r;
	uint32_t got = 0;
	int rc;

	if (n)
		*n = 0;
	if (!c || !refs || !n || part_n < 1 || part_n > PROTO_PART_MAX || part_i >= part_n || max < 1 ||
	    max > PROTO_LEASE_MAX || ttl_ms < 1 || ttl_ms > PROTO_TTL_MAX_MS)
		return KVN_EINVAL;
	q.max = (uint32_t)max;
	holder_name(q.holder);
	struct actor_msg *m = actor_msg_new(WIRE_LEASE);
	if (proto_lease_enc(m, &q) != 0) {
		actor_msg_free(m);
		return KVN_EPROTO;
	}
	client_op_begin(c, &op, NULL, 0, WIRE_LEASE);
	rc = queue_call(c, &op, m);
	if (rc == 0 && (proto_lease_reply_open(&r, op.reply, &got) != 0 || got > max))
		rc = KVN_EPROTO;
	for (uint32_t i = 0; rc == 0 && i < got; i++) {
		struct proto_lease_ref pr;
		struct kvn_ref *o = &refs[i];
		if (proto_lease_reply_next(&r, &pr) != 0 || pr.klen > KVN_MAX_KEY || !node_id_ok(pr.node_id)) {
			rc = KVN_EPROTO;
			break;
		}
		memset(o, 0, sizeof *o);
		o->lease_id = pr.lease_id;
		o->gen = pr.gen;
		o->size = pr.size;
		o->deadline_ms = pr.deadline_ms;
		snprintf(o->node_id, sizeof o->node_id, "%s", pr.node_id);
		o->klen = pr.klen;
		memcpy(o->key, pr.key, pr.klen);
	}
	if (rc == 0 && wire_r_end(&r) != 0)
		rc = KVN_EPROTO;
	if (rc == KVN_EPROTO && got)
		/* the master may have leased them: they come back at expiry */
		client_set_detail(c, "malformed LEASE reply; its leases, if any, end at their deadline");
	if (rc == 0)
		*n = got;
	client_op_end(c, &op);
	return rc;
}

/* RELEASE (renew 0) or RENEW of ids[0..n): the checks, the call and each
 * id's answer into status[] / deadline_ms[] (both optional). */
static int lease_ids_call(struct kvn_client *c, const uint64_t *ids, size_t n, int renew, uint8_t flags,
			  uint64_t ttl_ms, int *status, uint64_t *deadline_ms)
{
	struct client_op op;
	struct wire_w w;
	struct wire_r r;
	uint32_t got = 0;
	int rc;

	if (!c || !ids || n < 1 || n > PROTO_MAX_ITEMS)
		return KVN_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ids[i] == 0)
			return KVN_EINVAL;
	wire_w_init(&w);
	if (renew)
		proto_renew_begin(&w, ttl_ms, (uint32_t)n);
	else
		proto_release_begin(&w, flags, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		proto_ids_add(&w, ids[i]);
	struct actor_msg *m = actor_msg_new(renew ? WIRE_RENEW : WIRE_RELEASE);
	if (wire_w_to_msg(&w, m) != 0) {
		wire_w_fini(&w);
		actor_msg_free(m);
		return KVN_EPROTO;
	}
	client_op_begin(c, &op, NULL, 0, renew ? WIRE_RENEW : WIRE_RELEASE);
	rc = queue_call(c, &op, m);
	if (rc == 0 && (proto_lstat_open(&r, op.reply, &got) != 0 || got != n))
		rc = KVN_EPROTO;
	int first = 0;
	for (size_t i = 0; i < n; i++) {
		int32_t st = rc;
		uint64_t dl = 0;
		if (rc == 0 && proto_lstat_next(&r, &st, &dl) != 0)
			st = rc = KVN_EPROTO; /* this and every later id */
		if (status)
			status[i] = st;
		if (deadline_ms)
			deadline_ms[i] = st == 0 && renew ? dl : 0;
		if (st && !first)
			first = st;
	}
	client_op_end(c, &op);
	return rc ? rc : first;
}

int kvn_release(struct kvn_client *c, const uint64_t *ids, size_t n, unsigned flags, int *status)
{
	uint8_t wf = 0;

	if ((flags & ~(unsigned)(KVN_RELEASE_RETAIN | KVN_RELEASE_RETURN)) ||
	    flags == (KVN_RELEASE_RETAIN | KVN_RELEASE_RETURN))
		return KVN_EINVAL;
	if (flags & KVN_RELEASE_RETAIN)
		wf |= PROTO_RELEASE_RETAIN;
	if (flags & KVN_RELEASE_RETURN)
		wf |= PROTO_RELEASE_RETURN;
	return lease_ids_call(c, ids, n, 0, wf, 0, status, NULL);
}

int kvn_renew(struct kvn_client *c, const uint64_t *ids, size_t n, uint64_t ttl_ms, int *status,
	      uint64_t *deadline_ms)
{
	if (ttl_ms < 1 || ttl_ms > PROTO_TTL_MAX_MS)
		return KVN_EINVAL;
	return lease_ids_call(c, ids, n, 1, 0, ttl_ms, status, deadline_ms);
}

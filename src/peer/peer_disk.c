/*
 * peer_disk: the peer's disk writer actor and the peer's side of talking to
 * it.  The actor owns the disk tier (store/disk.h: files and peer.db) on a
 * loop of its own, so no fsync ever stalls the peer's loop (DESIGN.md
 * section 1).  Requests are one-way messages carrying a token, answered by
 * a one-way PEER_DISK_DONE: a request the disk is slow to finish is never
 * "timed out" under the disk's feet (the pages an offload writes from stay
 * held until its answer arrives); the peer watches the oldest request's age
 * instead and stops queueing more while the disk hangs.
 *
 * Messages (metadata, wire_w encoding):
 *   PEER_DISK_WRITE  = u64 token, key, u64 gen, u64 size, u64 checksum,
 *                      u64 expires_wall_ms, u32 flags; payload: the value
 *                      (references to arena pages the peer keeps held)
 *   PEER_DISK_READ   = u64 token, key, u64 gen, u64 size, u64 checksum
 *   PEER_DISK_REMOVE = key, u64 gen (no answer)
 *   PEER_DISK_DONE   = u64 token, u32 status (a KVN_E* as unsigned),
 *                      u64 used_bytes, u8 readonly; payload: a read's bytes
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "peer/peer_int.h"
#include "store/disk.h"
#include "base/base.h"

#define uthash_fatal(msg) kvn_fatal("peer_disk: %s", (msg))
#include <uthash.h>

#define DISK_IOV_MAX 64 /* a value's extents (KEYTAB_MAX_EXT) fit */

/* A value's KEYTAB_F_* go to peer.db as its DISK_F_* unchanged (offload)
 * and come back from it the same way (recovery): a queue sample recovered
 * after a restart is still one, and its full-sync entry says so. */
_Static_assert(DISK_F_QUEUE == KEYTAB_F_QUEUE && DISK_F_RETAIN == KEYTAB_F_RETAIN,
	       "disk and key-table flags are the same bits");
#define DISK_F_KNOWN (DISK_F_QUEUE | DISK_F_RETAIN)

/* ---- the actor (its own loop) ---------------------------------------------- */

struct pdisk {
	struct actor *self;
	actor_id peer;
	struct disk_tier *d;
};

static void done_send(struct pdisk *pd, uint64_t token, int status, struct evbuffer *payload)
{
	struct actor_msg *m = actor_msg_new(PEER_DISK_DONE);
	struct wire_w w;

	wire_w_init(&w);
	wire_w_u64(&w, token);
	wire_w_u32(&w, (uint32_t)status);
	wire_w_u64(&w, disk_used_bytes(pd->d));
	wire_w_u8(&w, (uint8_t)disk_readonly(pd->d));
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("peer_disk: answer does not fit");
	if (payload) {
		m->payload = payload;
		m->payload_len = evbuffer_get_length(payload);
	}
	m->src = actor_id_of(pd->self); /* the peer takes DONE from its disk writer only */
	if (actor_send(pd->peer, m) != 0)
		actor_msg_free(m); /* the peer is gone: shutting down */
}

static int read_entry(struct wire_r *r, struct disk_entry *e, int with_sums)
{
	memset(e, 0, sizeof *e);
	e->key = wire_r_key(r, &e->klen);
	e->gen = wire_r_u64(r);
	if (with_sums) {
		e->size = wire_r_u64(r);
		e->checksum = wire_r_u64(r);
	}
	return r->err || !e->key ? KVN_EPROTO : 0;
}

static void pdisk_write(struct pdisk *pd, struct actor_msg *m)
{
	struct wire_r r;
	struct disk_entry e;
	struct iovec iov[DISK_IOV_MAX];
	int niov = 0, rc;
	uint64_t token;

	wire_r_init(&r, m->meta, m->meta_len);
	token = wire_r_u64(&r);
	rc = read_entry(&r, &e, 1);
	e.expires_wall_ms = wire_r_u64(&r);
	e.flags = wire_r_u32(&r);
	if (rc == 0 && (r.err || wire_r_end(&r) != 0))
		rc = KVN_EPROTO;
	if (rc == 0 && m->payload) {
		struct evbuffer_iovec v[DISK_IOV_MAX];
		int n = evbuffer_peek(m->payload, -1, NULL, v, DISK_IOV_MAX);
		if (n < 0 || n > DISK_IOV_MAX)
			rc = KVN_EPROTO;
		for (int i = 0; rc == 0 && i < n; i++) {
			iov[niov].iov_base = v[i].iov_base;
			iov[niov++].iov_len = v[i].iov_len;
		}
	}
	if (rc == 0 && (m->payload ? evbuffer_get_length(m->payload) : 0) != e.size)
		rc = KVN_EPROTO;
	if (rc == 0)
		rc = disk_write(pd->d, &e, iov, niov);
	done_send(pd, token, rc, NULL);
}

static void pdisk_read(struct pdisk *pd, struct actor_msg *m)
{
	struct wire_r r;
	struct disk_entry e;
	struct evbuffer *out = NULL;
	uint64_t token;
	int rc;

	wire_r_init(&r, m->meta, m->meta_len);
	token = wire_r_u64(&r);
	rc = read_entry(&r, &e, 1);
	if (rc == 0 && wire_r_end(&r) != 0)
		rc = KVN_EPROTO;
	if (rc == 0 && e.size > KVN_VALUE_SIZE_MAX)
		rc = KVN_EPROTO;
	if (rc == 0) {
		/* one chain of exactly the value's size, filled in place */
		struct evbuffer_iovec v;
		out = evbuffer_new();
		if (!out || (e.size > 0 && evbuffer_reserve_space(out, (ev_ssize_t)e.size, &v, 1) != 1))
			kvn_fatal("out of memory");
		rc = disk_read(pd->d, &e, e.size > 0 ? v.iov_base : NULL);
		if (rc == 0 && e.size > 0) {
			v.iov_len = (size_t)e.size;
			evbuffer_commit_space(out, &v, 1);
		}
		if (rc != 0) {
			evbuffer_free(out);
			out = NULL;
		}
	}
	done_send(pd, token, rc, out);
}

static void pdisk_remove(struct pdisk *pd, struct actor_msg *m)
{
	struct wire_r r;
	struct disk_entry e;

	wire_r_init(&r, m->meta, m->meta_len);
	if (read_entry(&r, &e, 0) == 0)
		(void)disk_remove(pd->d, e.key, e.klen, e.gen); /* failures are counted there */
}

static int pdisk_dispatch(struct actor *self, struct actor_msg *m)
{
	struct pdisk *pd = actor_state(self);

	if (m->src_role != ACTOR_ROLE_INTERNAL)
		return 0; /* never reachable from a connection; refuse quietly anyway */
	switch (m->type) {
	case PEER_DISK_WRITE:
		pdisk_write(pd, m);
		break;
	case PEER_DISK_READ:
		pdisk_read(pd, m);
		break;
	case PEER_DISK_REMOVE:
		pdisk_remove(pd, m);
		break;
	default:
		break;
	}
	return 0;
}

static void pdisk_fini(struct actor *self)
{
	struct pdisk *pd = actor_state(self);
	disk_close(pd->d);
	free(pd);
}

static const struct actor_ops pdisk_ops = {
	.name = "disk",
	.handle = pdisk_dispatch,
	.fini = pdisk_fini,
};

/* ---- the peer's side -------------------------------------------------------- */

struct recover_ctx {
	struct peer *p;
	uint64_t now, wall, added, stale, expired;
	struct disk_tier *d;
};

static int recover_one(void *arg, const struct disk_entry *e)
{
	struct recover_ctx *rc = arg;
	/* bits this code does not know (a newer peer wrote them) are not kept */
	struct keytab_attrs at = { .checksum = e->checksum, .flags = e->flags & DISK_F_KNOWN };

	if (e->expires_wall_ms) {
		if (e->expires_wall_ms <= rc->wall) {
			rc->expired++;
			(void)disk_remove(rc->d, e->key, e->klen, e->gen);
			return 0;
		}
		at.expires_ms = rc->now + (e->expires_wall_ms - rc->wall);
	}
	if (keytab_disk_add(rc->p->st->kt, e->key, e->klen, e->gen, e->size, &at) == 0)
		rc->added++;
	else
		rc->stale++; /* a newer generation of the key was recovered first */
	return 0;
}

int peer_disk_open(struct peer *p, struct actor_loop *loop, char *err, size_t errlen)
{
	struct disk_opts o = { .dir = p->o.disk_dir, .db_path = p->o.disk_db, .capacity = p->o.disk_size };
	struct disk_recovery rep;
	struct recover_ctx ctx = { .p = p, .now = kvn_now_ms(), .wall = kvn_wall_ms() };
	struct pdisk *pd;
	int rc;

	if (p->o.disk_size == 0)
		return 0;
	rc = disk_open(&o, &ctx.d, err, errlen);
	if (rc)
		return rc;
	memset(&rep, 0, sizeof rep);
	rc = disk_recover(ctx.d, recover_one, &ctx, &rep);
	if (rc) {
		snprintf(err, errlen, "peer.disk_dir = '%s': cannot re-index the disk tier: %s", p->o.disk_dir,
			 kvn_strerror(rc));
		disk_close(ctx.d);
		return rc;
	}
	log_info("disk tier %s: %llu value(s), %llu bytes re-indexed; %llu temp file(s) and %llu orphan(s) "
		 "removed, %llu indexed file(s) missing or of the wrong size, %llu expired, %llu superseded",
		 p->o.disk_dir, (unsigned long long)ctx.added, (unsigned long long)rep.bytes,
		 (unsigned long long)rep.temp_removed, (unsigned long long)rep.orphans_removed,
		 (unsigned long long)(rep.missing + rep.size_mismatch), (unsigned long long)ctx.expired,
		 (unsigned long long)ctx.stale);
	p->disk_used = disk_used_bytes(ctx.d);
	pd = kvn_xcalloc(1, sizeof *pd);
	pd->d = ctx.d;
	pd->peer = actor_id_of(p->self);
	rc = actor_spawn(loop, &pdisk_ops, pd, p->o.mailbox, &pd->self);
	if (rc) {
		snprintf(err, errlen, "cannot start the disk writer: %s", kvn_strerror(rc));
		disk_close(pd->d);
		free(pd);
		return rc;
	}
	p->disk = actor_id_of(pd->self);
	p->disk_on = 1;
	/* on the peer's own loop (tests, simulation) the peer owns it: it is
	 * destroyed with the peer, and tests reach its tier directly */
	p->disk_local = loop == actor_loop_of(p->self);
	return 0;
}

/* The disk writer on the peer's loop, if it is there and still alive
 * (a stopping loop destroys its actors in any order): by id, never by a
 * pointer that may dangle. */
static struct actor *local_writer(struct peer *p)
{
	return p->disk_local ? actor_lookup_local(actor_loop_of(p->self), p->disk) : NULL;
}

static struct disk_tier *local_tier(struct actor *peer)
{
	struct actor *a = local_writer(actor_state(peer));
	return a ? ((struct pdisk *)actor_state(a))->d : NULL;
}

int peer_disk_fault(struct actor *peer, int op, uint32_t skip, uint32_t count, int err)
{
	struct disk_tier *d = local_tier(peer);
	if (!d || op < 0 || op >= DISK_OP_MAX)
		return KVN_ESTATE;
	disk_fault_set(d, (enum disk_op)op, skip, count, err);
	return 0;
}

int peer_disk_stats(struct actor *peer, struct disk_stats *st)
{
	struct disk_tier *d = local_tier(peer);
	if (!d)
		return KVN_ESTATE;
	disk_get_stats(d, st);
	return 0;
}

/* An operation in flight, found again by its token when DONE arrives. */
struct peer_dop {
	UT_hash_handle hh;
	uint64_t token;
	uint64_t since_ms;
	peer_disk_done_fn fn;
	void *arg;
};

static struct peer_dop *dop_new(struct peer *p, peer_disk_done_fn fn, void *arg)
{
	struct peer_dop *op = kvn_xcalloc(1, sizeof *op);
	op->token = ++p->disk_token;
	op->since_ms = kvn_now_ms();
	op->fn = fn;
	op->arg = arg;
	HASH_ADD(hh, p->disk_ops, token, sizeof op->token, op);
	p->disk_inflight++;
	return op;
}

static void dop_drop(struct peer *p, struct peer_dop *op)
{
	HASH_DELETE(hh, p->disk_ops, op);
	p->disk_inflight--;
	free(op);
}

static int disk_send(struct peer *p, struct actor_msg *m, struct peer_dop *op)
{
	int rc = actor_send(p->disk, m);
	if (rc) {
		actor_msg_free(m);
		if (op)
			dop_drop(p, op);
	}
	return rc;
}

int peer_disk_write(struct peer *p, const struct keytab_view *v, uint64_t expires_wall_ms, peer_disk_done_fn fn,
		    void *arg)
{
	struct actor_msg *m;
	struct peer_dop *op;
	struct wire_w w;
	uint64_t left = v->size;

	if (!p->disk_on)
		return KVN_EINVAL;
	op = dop_new(p, fn, arg);
	wire_w_init(&w);
	wire_w_u64(&w, op->token);
	wire_w_key(&w, v->key, v->klen);
	wire_w_u64(&w, v->gen);
	wire_w_u64(&w, v->size);
	wire_w_u64(&w, v->checksum);
	wire_w_u64(&w, expires_wall_ms);
	wire_w_u32(&w, v->flags);
	m = actor_msg_new(PEER_DISK_WRITE);
	if (wire_w_to_msg(&w, m) != 0) {
		actor_msg_free(m);
		dop_drop(p, op);
		return KVN_EPROTO;
	}
	m->payload = evbuffer_new();
	if (!m->payload)
		kvn_fatal("out of memory");
	/* by reference: the pages stay held (keytab_offload_begin) until DONE */
	for (int e = 0; e < v->next && left > 0; e++) {
		uint64_t len = (uint64_t)v->ext[e].npages * alloc_page_size(p->st->arena);
		if (len > left)
			len = left;
		left -= len;
		evbuffer_add_reference(m->payload, alloc_addr(p->st->arena, v->ext[e].page), (size_t)len, NULL,
				       NULL);
	}
	m->payload_len = v->size;
	return disk_send(p, m, op);
}

int peer_disk_read(struct peer *p, const struct keytab_view *v, peer_disk_done_fn fn, void *arg)
{
	struct actor_msg *m;
	struct peer_dop *op;
	struct wire_w w;

	if (!p->disk_on)
		return KVN_EINVAL;
	op = dop_new(p, fn, arg);
	wire_w_init(&w);
	wire_w_u64(&w, op->token);
	wire_w_key(&w, v->key, v->klen);
	wire_w_u64(&w, v->gen);
	wire_w_u64(&w, v->size);
	wire_w_u64(&w, v->checksum);
	m = actor_msg_new(PEER_DISK_READ);
	if (wire_w_to_msg(&w, m) != 0) {
		actor_msg_free(m);
		dop_drop(p, op);
		return KVN_EPROTO;
	}
	return disk_send(p, m, op);
}

void peer_disk_remove(struct peer *p, const void *key, size_t klen, uint64_t gen)
{
	struct actor_msg *m;
	struct wire_w w;

	if (!p->disk_on)
		return;
	wire_w_init(&w);
	wire_w_key(&w, key, klen);
	wire_w_u64(&w, gen);
	m = actor_msg_new(PEER_DISK_REMOVE);
	if (wire_w_to_msg(&w, m) != 0) {
		actor_msg_free(m);
		return;
	}
	if (disk_send(p, m, NULL) != 0)
		p->tstats.disk_remove_lost++; /* the file stays: an orphan the next start removes */
}

void peer_on_disk_done(struct peer *p, struct actor_msg *m)
{
	struct wire_r r;
	struct peer_dop *op = NULL;
	uint64_t token;
	int status;

	if (m->src != p->disk)
		return;
	wire_r_init(&r, m->meta, m->meta_len);
	token = wire_r_u64(&r);
	status = (int)wire_r_u32(&r);
	p->disk_used = wire_r_u64(&r);
	p->disk_readonly = wire_r_u8(&r) != 0;
	if (r.err)
		return;
	HASH_FIND(hh, p->disk_ops, &token, sizeof token, op);
	if (!op)
		return;
	peer_disk_done_fn fn = op->fn;
	void *arg = op->arg;
	struct evbuffer *payload = m->payload;
	m->payload = NULL; /* fn owns it now */
	m->payload_len = 0;
	dop_drop(p, op);
	fn(p, arg, status, payload);
}

uint64_t peer_disk_oldest_ms(const struct peer *p, uint64_t now)
{
	uint64_t oldest = 0;
	for (const struct peer_dop *op = p->disk_ops; op; op = op->hh.next)
		if (now - op->since_ms > oldest)
			oldest = now - op->since_ms;
	return oldest;
}

void peer_disk_fini(struct peer *p)
{
	struct peer_dop *op, *tmp;

	struct actor *a = local_writer(p);
	if (a) {
		/* its queued requests go with it; their owners hear ECLOSED below */
		actor_destroy(a);
		p->disk_local = 0;
	}

	/* answers that will never come: their owners clean up (the runtime
	 * destroys the disk actor with its loop) */
	HASH_ITER(hh, p->disk_ops, op, tmp) {
		peer_disk_done_fn fn = op->fn;
		void *arg = op->arg;
		dop_drop(p, op);
		fn(p, arg, KVN_ECLOSED, NULL);
	}
}

void peer_opts_disk_from_conf(struct peer_opts *po, const struct kvn_conf *c, char **db_path,
			      struct actor_loop **loop)
{
	if (c->peer_disk_size == 0)
		return;
	size_t len = strlen(c->node_data_dir) + sizeof "/peer.db";
	*db_path = kvn_xmalloc(len);
	snprintf(*db_path, len, "%s/peer.db", c->node_data_dir);
	po->disk_dir = c->peer_disk_dir;
	po->disk_db = *db_path;
	*loop = actor_loop_new("disk");
	po->disk_loop = *loop;
}

/*
 * embed_link: the in-process link an embedded client reaches its node's
 * master or peer through, in place of a TCP connection.  A link is a proxy
 * actor on the client's loop, routed as conn.c routes a connection: a
 * request gets the link's own correlation id and goes to the role's actor
 * (on the role's loop thread) with the link as its sender and the role
 * CLIENT, so the master and the peer apply the checks they apply to a
 * client on a socket; the reply comes back to the link, which restores
 * the caller's id and hands it on.  NET_UP and NET_DOWN tell the owner as
 * a connection would; NET_CLOSE (net_close, net_abort) cuts the link and
 * fails what is in flight.
 *
 * A link to the peer is also one of the peer's same-host connections: it
 * tells the peer NET_UP (role CLIENT, remote PEER_INPROC_REMOTE) when it
 * opens and NET_DOWN when it ends, and embed_local_map redeems the token
 * LOCAL_MAP gave over it for the arena and its staging region, memory of
 * this process (docs/embedding.md, "The local path").  Values then move
 * through those regions and the link carries only metadata.
 *
 * Without that path, values travel as message payloads.  A PUT's payload
 * references the caller's buffer (zero copy on a socket, which is cut at
 * the deadline); here the bytes are copied once into the message before
 * they cross to the peer's thread, so a call that returned at its deadline
 * leaves nothing that reads the caller's memory later.  GET replies carry the
 * peer's pages by reference under a read lease, released when the client
 * has copied them out and freed the reply.  The checksums travel in the
 * metadata as on a socket: the peer checks a put's, the client a get's.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "auth/auth.h"
#include "base/base.h"
#include "embed/embed_int.h"
#include "net/net.h"
#include "peer/peer.h"

struct link_inflight {
	uint64_t wire_corr; /* the link's id for the request */
	actor_id src;       /* the requester */
	uint64_t corr;      /* its id */
	uint16_t type;
	UT_hash_handle hh;
};

struct embed_link {
	struct actor *self;
	actor_id owner;     /* the client actor */
	actor_id target;    /* the master's or the peer's actor */
	int to_peer;        /* the peer heard NET_UP and is owed NET_DOWN */
	char server_id[65]; /* the target's node id, for NET_UP */
	struct link_inflight *inflight;
	uint64_t next_corr;
	int closed;
};

/* ---- the shared directory ---- */

struct embed_dir *embed_dir_new(void)
{
	struct embed_dir *d = kvn_xcalloc(1, sizeof *d);
	pthread_mutex_init(&d->mu, NULL);
	d->refs = 1;
	return d;
}

void embed_dir_ref(void *arg)
{
	struct embed_dir *d = arg;
	pthread_mutex_lock(&d->mu);
	d->refs++;
	pthread_mutex_unlock(&d->mu);
}

void embed_dir_unref(void *arg)
{
	struct embed_dir *d = arg;
	pthread_mutex_lock(&d->mu);
	int last = --d->refs == 0;
	pthread_mutex_unlock(&d->mu);
	if (last) {
		pthread_mutex_destroy(&d->mu);
		free(d);
	}
}

/* ---- the link ---- */

static uint64_t payload_bytes; /* atomic */

uint64_t embed_link_payload_bytes(void)
{
	return __atomic_load_n(&payload_bytes, __ATOMIC_RELAXED);
}

/* Tell the peer the link is up or down, as a connection accepted on its
 * Unix socket would: a client's (role CLIENT) in-process connection, an
 * lconn of its same-host path (peer_local.c). */
static void notify_peer(struct embed_link *l, uint16_t type)
{
	struct actor_msg *m = actor_msg_new(type);
	struct wire_w w;

	wire_w_init(&w);
	wire_w_u8(&w, AUTH_ROLE_CLIENT);
	wire_w_str(&w, "");
	wire_w_str(&w, PEER_INPROC_REMOTE);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	m->src = actor_id_of(l->self);
	m->src_role = AUTH_ROLE_CLIENT;
	/* like a connection's: a full mailbox loses it (its leases still end
	 * at peer.read_lease_ttl) */
	if (actor_send(l->target, m) != 0)
		actor_msg_free(m);
}

static void notify_owner(struct embed_link *l, uint16_t type, int status)
{
	struct actor_msg *m = actor_msg_new(type);
	struct wire_w w;

	/* as an outgoing connection says it: role 0, the server's id, an
	 * address */
	wire_w_init(&w);
	wire_w_u8(&w, 0);
	wire_w_str(&w, l->server_id);
	wire_w_str(&w, "in-process");
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	m->status = status;
	m->src = actor_id_of(l->self);
	m->src_role = AUTH_ROLE_MASTER;
	if (actor_send(l->owner, m) != 0)
		actor_msg_free(m);
}

/* Answer a request that never reached the role (or never will). */
static void fail_request(struct embed_link *l, actor_id to, uint64_t corr, uint16_t type, int err)
{
	struct actor_msg *r = actor_msg_new(type);
	r->flags = WIRE_F_REPLY;
	r->corr = corr;
	r->status = err;
	r->src = actor_id_of(l->self);
	r->src_role = AUTH_ROLE_MASTER;
	if (actor_send(to, r) != 0)
		actor_msg_free(r);
}

/* Cut the link: every request in flight fails with err now (its late
 * reply is dropped with the link), the owner hears NET_DOWN. */
static void link_cut(struct embed_link *l, int err)
{
	struct link_inflight *f, *tmp;

	if (l->closed)
		return;
	l->closed = 1;
	HASH_ITER(hh, l->inflight, f, tmp) {
		HASH_DEL(l->inflight, f);
		fail_request(l, f->src, f->corr, f->type, err);
		free(f);
	}
	notify_owner(l, NET_DOWN, err);
	if (l->to_peer)
		notify_peer(l, NET_DOWN);
	l->to_peer = 0;
	actor_destroy(l->self);
}

static void free_copy(const void *data, size_t len, void *extra)
{
	(void)data;
	(void)len;
	free(extra);
}

/* The payload's bytes, copied out of whatever it references (the caller's
 * buffer): one contiguous block the message owns. */
static int own_payload(struct actor_msg *m)
{
	size_t len = m->payload ? evbuffer_get_length(m->payload) : 0;
	/* a connection sets it as the frame arrives; the roles read it */
	m->payload_len = len;
	if (len == 0)
		return 0;
	struct evbuffer *b = evbuffer_new();
	void *copy = malloc(len);
	if (!b || !copy) {
		if (b)
			evbuffer_free(b);
		free(copy);
		return KVN_ENOMEM;
	}
	if (evbuffer_remove(m->payload, copy, len) != (int)len ||
	    evbuffer_add_reference(b, copy, len, free_copy, copy) != 0) {
		evbuffer_free(b);
		free(copy);
		return KVN_ENOMEM;
	}
	evbuffer_free(m->payload);
	m->payload = b;
	return 0;
}

static void link_reply(struct embed_link *l, struct actor_msg *m)
{
	struct link_inflight *f;

	HASH_FIND(hh, l->inflight, &m->corr, sizeof m->corr, f);
	if (!f) {
		actor_msg_free(m); /* its request was failed already */
		return;
	}
	HASH_DEL(l->inflight, f);
	if (m->payload)
		__atomic_add_fetch(&payload_bytes, evbuffer_get_length(m->payload), __ATOMIC_RELAXED);
	m->corr = f->corr;
	m->src = actor_id_of(l->self);
	m->src_role = AUTH_ROLE_MASTER;
	if (actor_send(f->src, m) != 0)
		actor_msg_free(m); /* the requester is gone: frees a GET's lease */
	free(f);
}

static void link_request(struct embed_link *l, struct actor_msg *m)
{
	actor_id src = m->src;
	uint64_t corr = m->corr;
	uint16_t type = m->type;
	struct link_inflight *f = NULL;
	int rc;

	if (m->type >= WIRE_INTERNAL) {
		/* a client cannot send these on a socket either */
		if (corr)
			fail_request(l, src, corr, type, KVN_EPROTO);
		actor_msg_free(m);
		return;
	}
	rc = own_payload(m);
	__atomic_add_fetch(&payload_bytes, m->payload_len, __ATOMIC_RELAXED);
	if (rc == 0 && corr) {
		f = kvn_xcalloc(1, sizeof *f);
		f->wire_corr = ++l->next_corr;
		f->src = src;
		f->corr = corr;
		f->type = type;
		HASH_ADD(hh, l->inflight, wire_corr, sizeof f->wire_corr, f);
		m->corr = f->wire_corr;
	}
	m->src = actor_id_of(l->self);
	/* a client, whatever the process: not INTERNAL, which the roles
	 * trust with more (actor_send would mark an unmarked message so) */
	m->src_role = AUTH_ROLE_CLIENT;
	if (rc == 0)
		rc = actor_send(l->target, m);
	if (rc == 0)
		return;
	/* KVN_EBUSY (mailbox full) or KVN_ECLOSED (the node was closed) */
	if (f) {
		HASH_DEL(l->inflight, f);
		free(f);
	}
	actor_msg_free(m);
	if (corr)
		fail_request(l, src, corr, type, rc);
}

static int link_handle(struct actor *self, struct actor_msg *m)
{
	struct embed_link *l = actor_state(self);

	if (m->type == NET_CLOSE) {
		link_cut(l, m->status ? m->status : KVN_ECLOSED);
		return 0;
	}
	if (l->closed)
		return 0;
	if (m->flags & WIRE_F_REPLY)
		link_reply(l, m);
	else
		link_request(l, m);
	return ACTOR_KEEP;
}

static void link_fini(struct actor *self)
{
	struct embed_link *l = actor_state(self);
	struct link_inflight *f, *tmp;

	/* destroyed with its client's loop, never cut: the peer still hears */
	if (l->to_peer)
		notify_peer(l, NET_DOWN);
	HASH_ITER(hh, l->inflight, f, tmp) {
		HASH_DEL(l->inflight, f);
		free(f);
	}
	free(l);
}

static const struct actor_ops link_ops = {
	.name = "embed-link",
	.handle = link_handle,
	.fini = link_fini,
	.wants_replies = 1,
};

int embed_connect(void *arg, void *owner_actor, const char *node_id, const char *addr, uint64_t *proxy)
{
	struct embed_dir *d = arg;
	struct actor *owner = owner_actor;
	actor_id target;
	int closed;
	(void)addr; /* a route's address is for sockets: the node id decides */

	pthread_mutex_lock(&d->mu);
	closed = d->closed;
	pthread_mutex_unlock(&d->mu);
	if (closed)
		return KVN_ECLOSED;
	if (!node_id)
		target = d->master;
	else if (strcmp(node_id, d->node_id) == 0)
		target = d->peer;
	else
		return KVN_ECONN; /* another node (attached through a listener): not in this process */
	struct embed_link *l = kvn_xcalloc(1, sizeof *l);
	l->owner = actor_id_of(owner);
	l->target = target;
	snprintf(l->server_id, sizeof l->server_id, "%s", d->node_id);
	int rc = actor_spawn(actor_loop_of(owner), &link_ops, l, 1u << 16, &l->self);
	if (rc) {
		free(l);
		return rc;
	}
	/* to the peer first: its NET_UP is ahead of any request in its mailbox */
	if (node_id) {
		l->to_peer = 1;
		notify_peer(l, NET_UP);
	}
	notify_owner(l, NET_UP, 0);
	*proxy = actor_id_of(l->self);
	return 0;
}

/* ---- the local path's map step (docs/embedding.md, "The local path") ---- */

int embed_local_map(void *arg, uint64_t link, const uint8_t *token, struct net_region *arena,
		    struct net_region *staging, void **pin)
{
	struct embed_dir *d = arg;
	struct peer_local_pin *pp = NULL;
	int rc = KVN_ECLOSED;

	/* under mu: kvn_embed_close marks the directory closed before it
	 * stops the peer, so the peer is alive for the whole call */
	pthread_mutex_lock(&d->mu);
	if (!d->closed && d->peer_actor)
		rc = peer_local_redeem(d->peer_actor, link, token, arena, staging, &pp);
	pthread_mutex_unlock(&d->mu);
	*pin = pp;
	return rc;
}

void embed_local_unmap(void *pin)
{
	peer_local_unpin(pin);
}

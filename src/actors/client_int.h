/*
 * client_int: the client library's internals, shared by client.c (the
 * client actor, its connections to the master and the peers, quarantine,
 * request rounds with deadlines) and client_api.c (the public calls of
 * include/kvnode.h built on those rounds).
 */
#ifndef KVN_CLIENT_INT_H
#define KVN_CLIENT_INT_H

#include <stdint.h>
#include <uthash.h>

#include "actors/actor.h"
#include "actors/proto.h"
#include "auth/auth.h"
#include "base/base.h"
#include "kvnode.h"

#define CLIENT_SCRATCH (64 * 1024)

/* A connection to one peer, by node id. */
struct client_peer {
	char node_id[65];
	char addr[128];
	actor_id proxy; /* 0: not connected */
	uint64_t opened_ms;
	uint64_t quarantined_until;
	uint32_t inflight;
	UT_hash_handle hh;
};

/* One request of a round: the items (indices into the op) it carries. */
struct client_req {
	struct client_op *op;
	actor_id proxy;
	struct client_peer *peer; /* NULL for the master */
	uint64_t corr;
	uint32_t *idx;
	uint32_t n;
	int done;
	struct actor_msg *reply; /* kept until the round is reset */
	int err;                 /* no reply: why */
	struct iovec *iov;       /* GET: where reply bytes go */
	int niov;
};

/* What a public call is doing right now; one at a time per client. */
struct client_op {
	struct kvn_item *items;
	size_t n;
	int kind;        /* WIRE_PUT, WIRE_GET, ... */
	int *route_st;   /* per item: route status */
	struct proto_route *rt;
	uint64_t deadline_ms;
	struct client_req **reqs;
	uint32_t nreqs, capreqs, pending;
	int done;
	int alloc_get;   /* kvn_get_alloc semantics for items with val == NULL */
	/* master-only calls (PING, STAT, ROUTE_*): the reply kept for the caller */
	struct actor_msg *reply;
	int reply_err;
};

/* A remembered route (client.route_cache_ttl), keyed by the key bytes. */
struct route_cache_ent {
	uint64_t expires_ms;
	struct proto_route rt;
	UT_hash_handle hh;
	uint16_t klen;
	uint8_t key[];
};
#define ROUTE_CACHE_MAX 65536

struct kvn_client {
	struct kvn_conf conf;
	struct actor_loop *loop;
	struct actor *self;
	struct auth_keyring kr;
	char node_id[65];
	actor_id master;
	int master_up;
	struct client_peer *peers;
	struct client_op *op;
	uint8_t *scratch;
	struct route_cache_ent *rcache;
	uint32_t nrcache;
	char detail[768];
};

/* client.c */
/* Takes ownership of conf's strings (conf is zeroed). */
int client_open(struct kvn_conf *conf, struct kvn_client **out);
void client_free(struct kvn_client *c);
/* Call the master with m (taken) and wait for the reply until the op's
 * deadline: 0 with op->reply set, or an error. */
int client_master_call(struct kvn_client *c, struct client_op *op, struct actor_msg *m);
/* The peer connection for (node_id, addr), opening or renewing it. */
struct client_peer *client_peer_get(struct kvn_client *c, const char *node_id, const char *addr);
void client_quarantine(struct kvn_client *c, struct client_peer *p);
int client_is_quarantined(struct kvn_client *c, const char *node_id);
/* Send a request for the items idx[0..n) of op to peer; the reply lands in
 * the req.  Takes m and idx. */
int client_peer_call(struct kvn_client *c, struct client_op *op, struct client_peer *p,
		     struct actor_msg *m, uint32_t *idx, uint32_t n);
/* Drive the loop until every request of the round answered or the
 * deadline passed; on timeout, cuts the connections still in use so no
 * caller buffer is touched after we return. */
int client_wait_round(struct kvn_client *c, struct client_op *op);
void client_round_reset(struct client_op *op);
/* Run the loop (the client actor idle meanwhile) until *done or deadline. */
int client_run(struct kvn_client *c, const int *done, uint64_t deadline_ms);
void client_set_detail(struct kvn_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Route cache (client_api.c). */
void client_rcache_clear(struct kvn_client *c);
/* Thread-local detail for failures before a client exists (kvn_connect). */
void kvn_set_last_detail(const char *s);

#endif

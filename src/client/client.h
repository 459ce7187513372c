/*
 * client: what the rest of the tree (the CLI) needs from the client library
 * beyond the public include/kvnode.h.  Not installed, not exported from
 * libkvnode.so.
 */
#ifndef KVN_CLIENT_H
#define KVN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- client (client_api.c) ---- */
struct kvn_conf;
struct kvn_client;
struct net_region;
/* kvn_connect with an already loaded and finalized config (the CLI's, with
 * its --set overrides).  Takes ownership of conf's strings. */
int client_connect_conf(struct kvn_conf *conf, struct kvn_client **out);

/* How a client reaches its master and its peers when not over TCP: the
 * embedded node (src/embed/) opens in-process links to its own actors.
 * connect opens a proxy owned by the client actor `owner` (a struct actor
 * *) to the master (node_id NULL) or to the peer node_id at addr: 0 with
 * *proxy (an actor id), or a KVN_E* code.  The proxy behaves as a
 * connection does (net.h): replies come back to the requester, NET_UP and
 * NET_DOWN go to the owner, NET_CLOSE and net_abort cut it.  release(arg)
 * runs once when the client is freed.  A client with a connector loads no
 * secret file: it opens no socket to authenticate on. */
struct client_connector {
	int (*connect)(void *arg, void *owner, const char *node_id, const char *addr, uint64_t *proxy);
	void (*release)(void *arg);
	/* One more reference to arg, for another client opened through the
	 * same connector (the submissions' own client, client_submit.c); each
	 * is given back by one release.  Required with connect. */
	void (*ref)(void *arg);
	/* The same-host path with no socket (optional; NULL: values go as
	 * message payloads).  local_map redeems the token a LOCAL_MAP reply
	 * over the proxy `link` gave, for the peer's arena (read-only) and
	 * that link's staging region, memory of this process: 0 with both
	 * wrapped (net_region_wrap) and *pin, given back by local_unmap(pin)
	 * when the client stops using them; or a KVN_E* code.  The link stays
	 * the control channel (LOCAL_GET, LOCAL_PUT, LOCAL_RELEASE). */
	int (*local_map)(void *arg, uint64_t link, const uint8_t *token, struct net_region *arena,
			 struct net_region *staging, void **pin);
	void (*local_unmap)(void *pin);
	void *arg;
};
/* client_connect_conf through cx (copied; NULL: TCP).  On failure
 * cx->release(cx->arg) has run. */
int client_connect_with(struct kvn_conf *conf, const struct client_connector *cx, struct kvn_client **out);

/* ---- counters (client_stats.c) ----
 * Declared once (memcached's THREAD_STATS_FIELDS shape): X(name, what it
 * counts).  The struct fields, the snapshot (client_get_stats) and the
 * text (client_stats_each) are generated from it: a new counter is one
 * line here. */
#define CLIENT_STATS_FIELDS(X)                                                                     \
	X(via_get_sent, "get items sent to the master (client.get_via_master)")                   \
	X(via_get_served, "of those, served by the peer of the master's process")                 \
	X(via_put_sent, "put items sent to the master (client.put_via_master)")                   \
	X(via_put_stored, "of those, stored by the peer of the master's process")                 \
	X(spec_sent, "get items sent to the sole peer along with the route (speculative_get)")    \
	X(spec_served, "of those, answers the route confirmed")                                  \
	X(corrupt_gets, "get items whose bytes did not match their checksum (KVN_ECORRUPT)")     \
	X(local_peers, "peers switched to the same-host path (client.local)")                     \
	X(local_fallbacks, "same-host path attempts that failed (TCP used instead)")              \
	X(local_gets, "get items copied from a peer's shared arena")                              \
	X(local_stale, "of those, copies that failed the checksum (lease ran out): read again")   \
	X(local_puts, "put items written through a staging region")                               \
	X(bounce_bytes, "value bytes a get copied through the library's own buffers into the caller's")

struct client_stats {
	CLIENT_STATS_FIELDS(KVN_STAT_FIELD)
};

/* A snapshot of c's counters (between calls, on c's thread), its
 * submissions' (kvn_submit_*) included. */
void client_get_stats(const struct kvn_client *c, struct client_stats *st);
/* Each counter by name, in list order: fn(arg, name, what, value). */
void client_stats_each(const struct client_stats *st, kvn_stat_fn fn, void *arg);

/* ---- what a client knows, for tests (client_stats.c) ---- */
struct proto_route;
/* c's configuration: read it, or change a key between calls (a test's
 * shorter client.timeout). */
struct kvn_conf *client_conf(struct kvn_client *c);
/* The master's node id, "" until its connection came up. */
const char *client_master_node(const struct kvn_client *c);
/* The sole peer a get may speculate on (rt, optional) and how many peers
 * route answers have named (nseen, optional; it stops counting at 2). */
void client_sole_get(const struct kvn_client *c, struct proto_route *rt, int *nseen);
/* t/spec: pretend another sole peer, or put the real one back. */
void client_sole_set(struct kvn_client *c, const struct proto_route *rt, int nseen);
/* t/race: fn(arg, routes, n) runs in every get between its route and its
 * read (the window in which a concurrent put can move the key), with the
 * routes of the call's items.  NULL: no hook. */
typedef void (*client_routed_fn)(void *arg, const struct proto_route *rt, size_t n);
void client_set_routed_hook(struct kvn_client *c, client_routed_fn fn, void *arg);
/* t/local: fn(arg, key, klen) runs in a same-host get after the lease was
 * granted and before the copy out of the arena (a slow copy: the window in
 * which the lease may expire and its pages be reused before the checksum
 * check after the copy).  NULL: no hook. */
typedef void (*client_local_copy_fn)(void *arg, const void *key, size_t klen);
void client_set_local_copy_hook(struct kvn_client *c, client_local_copy_fn fn, void *arg);
/* t/local: pretend this host's boot id is host ("" : the real one). */
void client_set_test_host(struct kvn_client *c, const char *host);
/* Whether the peer node_id is reached over the same-host path now. */
int client_local_active(struct kvn_client *c, const char *node_id);

#endif

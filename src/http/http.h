/*
 * http: the monitoring endpoint of a role (master.http, peer.http), on
 * libevent's evhttp: GET /metrics (Prometheus text format 0.0.4), GET
 * /health, GET / (a self-refreshing status page) and GET /status.json
 * (what the page shows).  docs/monitoring.md describes all of it.
 *
 * The server is an actor on the role's own loop: every request is answered
 * on that loop's thread from copies taken under the role's lock
 * (master_view, peer_view) and the process-wide counters, never blocking
 * the loop, and it is freed with its loop (the actor's fini).  Only
 * kvnode.c includes this header.
 */
#ifndef KVN_HTTP_H
#define KVN_HTTP_H

#include <pthread.h>
#include <stddef.h>

#include "actors/actor.h"

struct http_opts {
	int role;            /* KVN_METRIC_MASTER or KVN_METRIC_PEER (base/metrics.h) */
	const char *addr;    /* host:port, [v6]:port */
	const char *key;     /* the config key addr came from, for messages */
	const char *node_id; /* this node's */
	/* the role's actor (on loop); for the master the lock it runs under
	 * (actor_set_lock) or NULL; a peer's is its own (peer_lock) */
	struct actor *master, *peer;
	pthread_mutex_t *master_lock;
};

/* Bind o->addr and start serving on loop (before or after the loop's
 * thread started; call on the thread that owns it then, or before it
 * runs).  0, or -1 with "KEY = 'ADDR': why" in err. */
int http_start(struct actor_loop *loop, const struct http_opts *o, char *err, size_t errlen);

#endif

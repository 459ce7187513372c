/*
 * http_int: what the files of src/http/ share: the server's state, the
 * snapshot each response is built from, and the renderers.
 */
#ifndef KVN_HTTP_INT_H
#define KVN_HTTP_INT_H

#include <event2/buffer.h>
#include <stdint.h>

#include "base/accept_guard.h"
#include "http/http.h"
#include "master/master.h"
#include "peer/peer.h"

/* the master page shows at most this many nodes (the rest are counted) */
#define HTTP_MAX_NODES 256

enum http_path { HTTP_P_METRICS, HTTP_P_HEALTH, HTTP_P_PAGE, HTTP_P_STATUS, HTTP_P_OTHER, HTTP_NPATHS };

struct http_server {
	struct actor *self;
	struct evhttp *evh;
	struct kvn_accept_guard guard; /* out of descriptors: pause accepting, not spin */
	int role;
	char node_id[65];
	char addr[160];
	actor_id master, peer;
	pthread_mutex_t *master_lock;
	/* answered requests by path and the code class (2xx, 4xx, 5xx);
	 * this loop's thread only */
	uint64_t served[HTTP_NPATHS][3];
	struct master_view_node nodes[HTTP_MAX_NODES]; /* http_snap_take's rows */
};

/* One response's view of the role, taken on the server's loop. */
struct http_snap {
	int role;
	int have_master, have_peer; /* the actor still exists */
	struct master_view mv;
	struct master_view_node *nodes; /* mv.nodes rows, at most HTTP_MAX_NODES */
	uint32_t nnodes;
	struct peer_view pv;
	struct master_stats ms;
};
const char *http_path_name(int path);
/* Fill s (its nodes point into h->nodes: valid until the next take). */
void http_snap_take(struct http_server *h, struct http_snap *s);
/* Whether the role serves: NULL, or a one-line reason (static or in why). */
const char *http_unhealthy(const struct http_snap *s, char *why, size_t cap);

/* http_metrics.c: the Prometheus text */
void http_render_metrics(struct http_server *h, const struct http_snap *s, struct evbuffer *out);
/* http_page.c: the status page and its JSON */
void http_render_page(struct http_server *h, struct evbuffer *out);
void http_render_status(struct http_server *h, const struct http_snap *s, struct evbuffer *out);
/* a JSON string literal of s (quotes included) */
void http_json_str(struct evbuffer *out, const char *s);
/* a label value for the text format: \, " and newline escaped */
void http_label_str(struct evbuffer *out, const char *s);

#endif

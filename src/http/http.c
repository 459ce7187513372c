/*
 * http: the monitoring endpoint's server (http.h): binding, limits,
 * routing, /health, and the snapshot every response is built from.  The
 * renderers are in http_metrics.c and http_page.c.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"
#include "base/base.h"
#include "base/metrics.h"

/* Limits.  A request must arrive whole within HTTP_TIMEOUT_S in at most
 * HTTP_MAX_HEADERS bytes of request line and headers and carry no body
 * worth reading; every reply closes its connection, so a connection holds
 * one request at most.  libevent 2.1 has no bound on simultaneous
 * connections: idle ones last HTTP_TIMEOUT_S (docs/monitoring.md). */
#define HTTP_TIMEOUT_S 5
#define HTTP_MAX_HEADERS 8192
#define HTTP_MAX_BODY 1024

static const char *const path_names[HTTP_NPATHS] = {
	[HTTP_P_METRICS] = "/metrics", [HTTP_P_HEALTH] = "/health", [HTTP_P_PAGE] = "/",
	[HTTP_P_STATUS] = "/status.json", [HTTP_P_OTHER] = "other",
};

const char *http_path_name(int p)
{
	return p >= 0 && p < HTTP_NPATHS ? path_names[p] : "other";
}

void http_snap_take(struct http_server *h, struct http_snap *s)
{
	struct actor_loop *loop = actor_loop_of(h->self);
	struct actor *m = h->master ? actor_lookup_local(loop, h->master) : NULL;
	struct actor *p = h->peer ? actor_lookup_local(loop, h->peer) : NULL;

	memset(s, 0, sizeof *s);
	s->role = h->role;
	s->nodes = h->nodes;
	if (m) {
		if (h->master_lock)
			pthread_mutex_lock(h->master_lock);
		master_view(m, &s->mv, h->nodes, HTTP_MAX_NODES);
		if (h->master_lock)
			pthread_mutex_unlock(h->master_lock);
		s->nnodes = s->mv.nodes < HTTP_MAX_NODES ? s->mv.nodes : HTTP_MAX_NODES;
		s->have_master = 1;
	}
	if (p) {
		peer_view(p, &s->pv);
		s->have_peer = 1;
	}
	master_get_stats(&s->ms);
}

const char *http_unhealthy(const struct http_snap *s, char *why, size_t cap)
{
	if (s->role == KVN_METRIC_MASTER) {
		if (!s->have_master)
			return "master stopped";
		if (s->mv.db_degraded) {
			char d[32];
			kvn_format_duration(d, sizeof d, s->mv.db_degraded_ms);
			snprintf(why, cap, "master.db writer failing for %s: %s", d, s->mv.db_reason);
			return why;
		}
		return NULL;
	}
	if (!s->have_peer)
		return "peer stopped";
	if (s->pv.left)
		return "left the master (stopping)";
	if (!s->pv.attached)
		return "not attached to the master";
	if (s->pv.disk_hung)
		return "disk tier hung (its writer does not answer)";
	if (s->pv.disk_readonly)
		return "disk tier read-only (a write or fsync failed)";
	return NULL;
}

static void reply(struct http_server *h, struct evhttp_request *req, int path, int code, const char *reason,
		  const char *ctype, struct evbuffer *body)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	evhttp_add_header(oh, "Content-Type", ctype);
	evhttp_add_header(oh, "Cache-Control", "no-store");
	evhttp_add_header(oh, "Connection", "close");
	evhttp_send_reply(req, code, reason, body);
	h->served[path][code < 300 ? 0 : code < 500 ? 1 : 2]++;
}

static void reply_text(struct http_server *h, struct evhttp_request *req, int path, int code, const char *reason,
		       const char *line)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		kvn_fatal("out of memory");
	evbuffer_add_printf(b, "%s\n", line);
	reply(h, req, path, code, reason, "text/plain; charset=utf-8", b);
	evbuffer_free(b);
}

static int route(const char *uri)
{
	size_t n = strcspn(uri, "?#");
	for (int p = 0; p < HTTP_P_OTHER; p++)
		if (strlen(path_names[p]) == n && strncmp(uri, path_names[p], n) == 0)
			return p;
	return HTTP_P_OTHER;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *h = arg;
	struct http_snap s;
	char why[256];
	const char *uri = evhttp_request_get_uri(req);
	int path = uri ? route(uri) : HTTP_P_OTHER;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (path == HTTP_P_OTHER) {
		reply_text(h, req, path, HTTP_NOTFOUND, "Not Found", "not found: try /, /metrics, /health");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_text(h, req, path, 405, "Method Not Allowed", "method not allowed: GET only");
		return;
	}
	struct evbuffer *b = evbuffer_new();
	if (!b)
		kvn_fatal("out of memory");
	switch (path) {
	case HTTP_P_METRICS:
		http_snap_take(h, &s);
		http_render_metrics(h, &s, b);
		reply(h, req, path, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
		break;
	case HTTP_P_HEALTH: {
		http_snap_take(h, &s);
		const char *bad = http_unhealthy(&s, why, sizeof why);
		evbuffer_add_printf(b, "%s\n", bad ? bad : "ok");
		reply(h, req, path, bad ? 503 : HTTP_OK, bad ? "Service Unavailable" : "OK",
		      "text/plain; charset=utf-8", b);
		break;
	}
	case HTTP_P_STATUS:
		http_snap_take(h, &s);
		http_render_status(h, &s, b);
		reply(h, req, path, HTTP_OK, "OK", "application/json", b);
		break;
	default:
		http_render_page(h, b);
		reply(h, req, path, HTTP_OK, "OK", "text/html; charset=utf-8", b);
		break;
	}
	evbuffer_free(b);
}

/* ---- the actor that owns the server ---- */

static int http_handle(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m;
	return 0; /* it receives nothing: the server runs on libevent callbacks */
}

/* evhttp gives its listener's error callback the evhttp, not ours: the
 * servers of this process (a master's, a peer's, embedded ones) by evhttp */
#define HTTP_GUARDS 16
static struct http_server *guarded[HTTP_GUARDS];
static pthread_mutex_t guarded_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct http_server *h = NULL;
	(void)l;
	pthread_mutex_lock(&guarded_mu);
	for (int i = 0; i < HTTP_GUARDS && !h; i++)
		if (guarded[i] && guarded[i]->evh == arg)
			h = guarded[i];
	pthread_mutex_unlock(&guarded_mu);
	if (h)
		kvn_accept_guard_on_error(&h->guard);
}

static void guard_listener(struct http_server *h, struct evhttp_bound_socket *bs, const char *key)
{
	struct evconnlistener *l = evhttp_bound_socket_get_listener(bs);
	pthread_mutex_lock(&guarded_mu);
	for (int i = 0; i < HTTP_GUARDS; i++)
		if (!guarded[i]) {
			if (kvn_accept_guard_init(&h->guard, evconnlistener_get_base(l), l, key) == 0) {
				guarded[i] = h;
				evconnlistener_set_error_cb(l, on_accept_error);
			}
			break;
		}
	pthread_mutex_unlock(&guarded_mu);
}

static void unguard(struct http_server *h)
{
	pthread_mutex_lock(&guarded_mu);
	for (int i = 0; i < HTTP_GUARDS; i++)
		if (guarded[i] == h)
			guarded[i] = NULL;
	pthread_mutex_unlock(&guarded_mu);
	kvn_accept_guard_fini(&h->guard);
}

static void http_fini(struct actor *self)
{
	struct http_server *h = actor_state(self);
	unguard(h);
	if (h->evh)
		evhttp_free(h->evh);
	free(h);
}

static const struct actor_ops http_ops = {
	.name = "http",
	.handle = http_handle,
	.fini = http_fini,
};

int http_start(struct actor_loop *loop, const struct http_opts *o, char *err, size_t errlen)
{
	char host[256];
	uint16_t port = 0;
	struct http_server *h;
	struct actor *a;

	if (kvn_split_hostport(o->addr, host, sizeof host, &port) != 0) {
		snprintf(err, errlen, "%s = '%s': not an address (host:port)", o->key, o->addr);
		return -1;
	}
	h = kvn_xcalloc(1, sizeof *h);
	h->role = o->role;
	snprintf(h->node_id, sizeof h->node_id, "%s", o->node_id ? o->node_id : "");
	snprintf(h->addr, sizeof h->addr, "%s", o->addr);
	if (o->master)
		h->master = actor_id_of(o->master);
	if (o->peer)
		h->peer = actor_id_of(o->peer);
	h->master_lock = o->master_lock;
	h->evh = evhttp_new(actor_loop_base(loop));
	if (!h->evh)
		kvn_fatal("out of memory");
	evhttp_set_timeout(h->evh, HTTP_TIMEOUT_S);
	evhttp_set_max_headers_size(h->evh, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->evh, HTTP_MAX_BODY);
	/* every method reaches on_request, which answers 405 itself (evhttp
	 * would say 501 for the ones not allowed) */
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
						   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(h->evh, on_request, h);
	errno = 0;
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h->evh, host, port);
	if (!bs) {
		snprintf(err, errlen, "%s = '%s': cannot listen: %s", o->key, o->addr,
			 errno ? strerror(errno) : "bind failed");
		evhttp_free(h->evh);
		free(h);
		return -1;
	}
	guard_listener(h, bs, o->key);
	if (actor_spawn(loop, &http_ops, h, 16, &a) != 0) {
		snprintf(err, errlen, "%s: cannot start the HTTP server actor", o->key);
		unguard(h);
		evhttp_free(h->evh);
		free(h);
		return -1;
	}
	h->self = a;
	log_info("%s: monitoring over HTTP on %s (/, /metrics, /health)", o->key, o->addr);
	return 0;
}

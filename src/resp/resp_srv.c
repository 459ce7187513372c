/*
 * resp_srv: the gateway's process: the acceptor (main thread, bounded by
 * resp.max_clients), resp.threads workers each with its own event loop and
 * its own kvn_client (a client is single-threaded), and the connections: a
 * contiguous input buffer per connection (bounded by resp.max_input) that
 * each read parses in one go, and an output evbuffer whose size above
 * resp.max_output stops the connection's reading until the client catches
 * up.  Also `kvnode keygen --resp-token`.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "resp/resp_int.h"

#define CMDS_PER_ROUND 512
#define IN_MIN (16u << 10)
/* the largest request before AUTH: HELLO 3 AUTH user token SETNAME name fits */
#define RESP_NOAUTH_MAX (16u << 10)

static void conn_free(struct resp_conn *c)
{
	struct resp_worker *w = c->w;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	resp_multi_free(c);
	event_free(c->rd);
	event_free(c->wr);
	evbuffer_free(c->out);
	close(c->fd);
	free(c->in);
	__atomic_sub_fetch(&w->srv->nconns, 1, __ATOMIC_RELAXED);
	free(c);
}

/* Parse what the input holds and run it, round after round, until it
 * holds no complete command, the output is over resp.max_output, or the
 * connection is closing. */
static void conn_process(struct resp_conn *c)
{
	struct resp_worker *w = c->w;
	struct resp_srv *srv = w->srv;
	struct resp_cmd cmds[CMDS_PER_ROUND];
	size_t pos = 0;

	while (!c->closing && evbuffer_get_length(c->out) < srv->conf.resp_max_output) {
		size_t n = 0, used, need;
		const char *why = NULL;
		int rc = RESP_NEED, authed = c->authed;

		w->av.n = 0;
		while (n < CMDS_PER_ROUND) {
			size_t arg0 = w->av.n;
			authed = c->authed;
			rc = resp_parse(c->in + pos, c->in_len - pos, authed ? &srv->lim : &srv->lim_noauth, &w->av,
					&used, &need, &why);
			if (rc != RESP_CMD)
				break;
			pos += used;
			if (w->av.n > arg0)
				cmds[n++] = (struct resp_cmd){ arg0, w->av.n - arg0 };
			if (!authed && n > 0)
				break; /* run it first: an AUTH lifts the limit for what follows */
		}
		resp_exec(c, cmds, n);
		if (rc == RESP_ETOOBIG && !authed)
			why = "ERR Protocol error: unauthenticated request too large"; /* as Redis says */
		if (rc < 0 && !c->closing) {
			/* what came before the bad bytes was answered; the
			 * stream cannot be resynchronised after them */
			resp_put_error(c->out, why);
			RESP_COUNT(srv, total_error_replies, 1);
			c->closing = 1;
		}
		if (rc != RESP_CMD)
			break;
	}
	if (pos > 0) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
	if (c->in_len == 0 && c->in_cap > 16 * IN_MIN) {
		/* an idle connection does not keep a large value's buffer */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

/* Write what the socket takes; then decide on reading.  1 when c was
 * freed. */
static int conn_flush(struct resp_conn *c)
{
	size_t left = evbuffer_get_length(c->out);

	if (left > 0) {
		int r = evbuffer_write(c->out, c->fd);
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			conn_free(c);
			return 1;
		}
		left = evbuffer_get_length(c->out);
	}
	if (left > 0)
		event_add(c->wr, NULL);
	else
		event_del(c->wr);
	if (c->closing && left == 0) {
		conn_free(c);
		return 1;
	}
	int want = !c->closing && left < c->w->srv->conf.resp_max_output;
	if (want && !c->reading)
		event_add(c->rd, NULL);
	else if (!want && c->reading)
		event_del(c->rd);
	c->reading = want;
	return 0;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct resp_conn *c = arg;
	size_t max = c->w->srv->conf.resp_max_input;

	(void)what;
	if (c->in_cap - c->in_len < IN_MIN / 4 && c->in_cap < max) {
		size_t cap = c->in_cap ? c->in_cap * 2 : IN_MIN;
		if (cap > max)
			cap = max;
		char *in = realloc(c->in, cap);
		if (!in) {
			conn_free(c);
			return;
		}
		c->in = in;
		c->in_cap = cap;
	}
	if (c->in_len == c->in_cap) {
		/* cannot happen: the parser refuses a command over max_input
		 * and complete ones are consumed; a guard, not a path */
		resp_put_error(c->out, "ERR request too large (over resp.max_input)");
		c->closing = 1;
		conn_flush(c);
		return;
	}
	ssize_t r = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		conn_free(c);
		return;
	}
	if (r < 0)
		return;
	c->in_len += (size_t)r;
	conn_process(c);
	conn_flush(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	struct resp_conn *c = arg;
	(void)fd;
	(void)what;
	if (conn_flush(c))
		return;
	/* commands that waited for the output to drain */
	if (c->reading && c->in_len > 0) {
		conn_process(c);
		conn_flush(c);
	}
}

static void conn_new(struct resp_worker *w, int fd)
{
	struct resp_conn *c = kvn_xcalloc(1, sizeof *c);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int one = 1;

	evutil_make_socket_nonblocking(fd);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		char host[INET6_ADDRSTRLEN] = "?";
		unsigned port = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			evutil_inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
			port = ntohs(s4->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			evutil_inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
			port = ntohs(s6->sin6_port);
		}
		snprintf(c->addr, sizeof c->addr, "%s:%u", host, port);
	}
	c->w = w;
	c->fd = fd;
	c->proto = 2;
	c->id = __atomic_add_fetch(&w->srv->next_id, 1, __ATOMIC_RELAXED);
	c->out = evbuffer_new();
	c->rd = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
	c->wr = event_new(w->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
	if (!c->out || !c->rd || !c->wr)
		kvn_fatal("out of memory");
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	event_add(c->rd, NULL);
	c->reading = 1;
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct resp_worker *w = arg;
	int fds[64];

	(void)what;
	ssize_t r = read(fd, fds, sizeof fds);
	for (ssize_t i = 0; r > 0 && i < r / (ssize_t)sizeof(int); i++) {
		if (fds[i] < 0)
			event_base_loopbreak(w->base);
		else
			conn_new(w, fds[i]);
	}
}

static void *worker_main(void *arg)
{
	struct resp_worker *w = arg;
	char name[16];

	snprintf(name, sizeof name, "resp%d", w->idx);
	kvn_log_set_thread_name(name);
	event_base_dispatch(w->base);
	while (w->conns)
		conn_free(w->conns);
	kvn_close(w->c);
	w->c = NULL;
	return NULL;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int slen, void *arg)
{
	struct resp_srv *srv = arg;
	static const char full[] = "-ERR max number of clients reached\r\n";
	static size_t rr;

	(void)l;
	(void)sa;
	(void)slen;
	RESP_COUNT(srv, total_connections_received, 1);
	if (__atomic_load_n(&srv->nconns, __ATOMIC_RELAXED) >= srv->conf.resp_max_clients) {
		/* what Redis answers; a fresh socket's buffer takes the line */
		ssize_t r = send(fd, full, sizeof full - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)r;
		close(fd);
		RESP_COUNT(srv, rejected_connections, 1);
		return;
	}
	__atomic_add_fetch(&srv->nconns, 1, __ATOMIC_RELAXED);
	struct resp_worker *w = &srv->w[rr++ % srv->nw];
	int v = fd;
	if (write(w->notify[1], &v, sizeof v) != (ssize_t)sizeof v) {
		close(fd);
		__atomic_sub_fetch(&srv->nconns, 1, __ATOMIC_RELAXED);
	}
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct resp_srv *srv = arg;
	(void)l;
	kvn_accept_guard_on_error(&srv->guard);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	event_base_loopexit(arg, NULL);
}

static int workers_start(struct resp_srv *srv)
{
	srv->nw = (size_t)srv->conf.resp_threads;
	srv->w = kvn_xcalloc(srv->nw, sizeof *srv->w);
	for (size_t i = 0; i < srv->nw; i++) {
		struct resp_worker *w = &srv->w[i];
		w->srv = srv;
		w->idx = (int)i;
		kvn_ratelimit_init(&w->rl, 10000, 1);
		/* every worker of every gateway retries a lost cluster: spread
		 * them, and back off while it stays away */
		kvn_backoff_init(&w->bo, 250, 4000);
		kvn_ratelimit_init(&w->rl_auth, 10000, 1);
		if (pipe(w->notify) != 0)
			return KVN_EIO;
		evutil_make_socket_nonblocking(w->notify[0]);
		w->base = event_base_new();
		if (!w->base)
			return KVN_ENOMEM;
		w->notify_ev = event_new(w->base, w->notify[0], EV_READ | EV_PERSIST, on_notify, w);
		event_add(w->notify_ev, NULL);
		if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
			event_free(w->notify_ev);
			event_base_free(w->base);
			w->base = NULL;
			return KVN_ENOMEM;
		}
	}
	return 0;
}

static void workers_stop(struct resp_srv *srv)
{
	for (size_t i = 0; i < srv->nw; i++) {
		struct resp_worker *w = &srv->w[i];
		int stop = -1;
		if (!w->base)
			continue;
		if (write(w->notify[1], &stop, sizeof stop) != (ssize_t)sizeof stop)
			event_base_loopbreak(w->base);
		pthread_join(w->th, NULL);
		event_free(w->notify_ev);
		event_base_free(w->base);
		close(w->notify[0]);
		close(w->notify[1]);
		resp_argv_free(&w->av);
	}
	free(srv->w);
}

int resp_main(const struct kvn_conf *conf)
{
	struct resp_srv *srv = kvn_xcalloc(1, sizeof *srv);
	struct sockaddr_storage ss;
	int sl = sizeof ss, rc = 1;
	char err[512];
	struct evconnlistener *lst = NULL;

	kvn_conf_copy(&srv->conf, conf);
	pthread_rwlock_init(&srv->cond_lock, NULL);
	srv->start_ms = kvn_now_ms();
	srv->lim.max_bulk = conf->node_max_value_size;
	srv->lim.max_request = conf->resp_max_input;
	srv->lim_noauth.max_bulk = RESP_NOAUTH_MAX;
	srv->lim_noauth.max_request = RESP_NOAUTH_MAX;
	struct event_base *base = event_base_new();
	if (conf->resp_max_input < conf->node_max_value_size + (64u << 10)) {
		fprintf(stderr, "kvnode: resp.max_input must be at least node.max_value_size + 64KiB (a SET of "
				"the largest value and its key)\n");
		rc = 2;
		goto out;
	}
	if (evutil_parse_sockaddr_port(conf->resp_listen, (struct sockaddr *)&ss, &sl) != 0) {
		fprintf(stderr, "kvnode: resp.listen = '%s': not a numeric address with a port\n", conf->resp_listen);
		rc = 2;
		goto out;
	}
	if (auth_keyring_load(&srv->ring, conf->auth_client_secret_file, err, sizeof err) != 0) {
		/* the gateway's AUTH tokens come from the client secret, as
		 * does its own attach to the cluster */
		fprintf(stderr, "kvnode: auth.client_secret_file: %s\n", err);
		rc = 3;
		goto out;
	}
	if (kvn_log_sink_open(conf->node_log, err, sizeof err) != 0) {
		fprintf(stderr, "kvnode: %s\n", err);
		rc = 2;
		goto out;
	}
	lst = evconnlistener_new_bind(base, on_accept, srv,
				      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
				      (struct sockaddr *)&ss, sl);
	if (!lst) {
		fprintf(stderr, "kvnode: resp.listen = '%s': %s\n", conf->resp_listen, strerror(errno));
		goto out;
	}
	if (kvn_accept_guard_init(&srv->guard, base, lst, "resp.listen") == 0)
		evconnlistener_set_error_cb(lst, on_accept_error);
	if (workers_start(srv) != 0) {
		fprintf(stderr, "kvnode: resp: cannot start the worker threads\n");
		goto stop;
	}
	struct event *sint = evsignal_new(base, SIGINT, on_signal, base);
	struct event *sterm = evsignal_new(base, SIGTERM, on_signal, base);
	evsignal_add(sint, NULL);
	evsignal_add(sterm, NULL);
	log_info("kvnode resp gateway ready on %s: %llu threads, cluster master %s", conf->resp_listen,
		 (unsigned long long)conf->resp_threads, conf->client_master);
	event_base_dispatch(base);
	event_free(sint);
	event_free(sterm);
	rc = 0;
stop:
	kvn_accept_guard_fini(&srv->guard);
	evconnlistener_free(lst);
	lst = NULL;
	workers_stop(srv);
	log_info("stopped");
out:
	kvn_accept_guard_fini(&srv->guard);
	if (lst)
		evconnlistener_free(lst);
	event_base_free(base);
	auth_keyring_wipe(&srv->ring);
	pthread_rwlock_destroy(&srv->cond_lock);
	kvn_conf_fini(&srv->conf);
	free(srv);
	return rc;
}

int resp_token_cmd(const char *path)
{
	struct auth_keyring kr;
	char err[512], tok[AUTH_RESP_TOKEN_LEN + 1];

	int rc = auth_keyring_load(&kr, path, err, sizeof err);
	if (rc) {
		fprintf(stderr, "kvnode: keygen --resp-token: %s\n", err);
		return kvn_err_exit_code(rc);
	}
	rc = auth_resp_token(&kr.s[0], tok);
	auth_keyring_wipe(&kr);
	if (rc) {
		fprintf(stderr, "kvnode: keygen --resp-token: %s\n", kvn_strerror(rc));
		return kvn_err_exit_code(rc);
	}
	printf("%s\n", tok);
	memset(tok, 0, sizeof tok);
	return 0;
}

/*
 * tcp: sockets for the connection layer.  Owns address resolution, the
 * non-blocking connect, socket options and the listener (evconnlistener),
 * which hands accepted sockets to conn.c.  An address "unix:/path" is a
 * Unix stream socket (a peer's same-host socket, peer.local_socket): the
 * same frames, handshake and limits, no TCP options; its connections'
 * remote address reads NET_UNIX_REMOTE.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/accept_guard.h"
#include "base/base.h"
#include "net/net_int.h"
#include "net/xfer.h"

void net_opts_default(struct net_opts *o)
{
	memset(o, 0, sizeof *o);
	o->connect_timeout_ms = 5000;
	o->handshake_timeout_ms = 2000;
	o->max_payload = 64ull << 20;
	o->backoff_min_ms = 100;
	o->backoff_max_ms = 5000;
	o->max_conns = 1024;
	o->max_preauth = 256;
	o->max_preauth_per_ip = 32;
	o->write_timeout_ms = 30000;
	o->max_outq = 256ull << 20;
	o->max_queued = 4096;
}

/* "unix:/path" into a sockaddr_un: 0, or KVN_EINVAL (empty or too long). */
static int unix_resolve(const char *path, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof un->sun_path)
		return KVN_EINVAL;
	memset(un, 0, sizeof *un);
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n + 1);
	*sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int tcp_resolve(const char *addr, int passive, struct sockaddr_storage *ss, socklen_t *sslen)
{
	char host[256], port[8];
	uint16_t p;
	struct addrinfo hints, *res = NULL;

	if (strncmp(addr, NET_UNIX_PREFIX, strlen(NET_UNIX_PREFIX)) == 0)
		return unix_resolve(addr + strlen(NET_UNIX_PREFIX), ss, sslen);

	if (kvn_split_hostport(addr, host, sizeof host, &p) != 0)
		return KVN_EINVAL;
	snprintf(port, sizeof port, "%u", p);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
		return KVN_EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

void tcp_format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if (sa->sa_family == AF_UNIX) {
		snprintf(out, cap, "%s", NET_UNIX_REMOTE);
		return;
	}
	if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, cap, "?");
		return;
	}
	if (sa->sa_family == AF_INET6)
		snprintf(out, cap, "[%s]:%s", host, serv);
	else
		snprintf(out, cap, "%s:%s", host, serv);
}

void tcp_tune(int fd, const struct net_opts *o)
{
	int one = 1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_UNIX)
		return; /* no TCP here; the kernel's buffers suit a same-host socket */
	/* small request/response frames must not wait for Nagle */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* checked at start (net_check_congestion): a failure here leaves the
	 * kernel's default, which still works */
	if (o->tcp_congestion[0])
		setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, o->tcp_congestion,
			   (socklen_t)strlen(o->tcp_congestion));
	/* A bounded send buffer: autotuning grows it to tcp_wmem's maximum, a
	 * whole large GET reply then sits in the socket at once, and BBR paces
	 * it out with a timer per burst (5 per 1 MiB get, measured; each one
	 * hypercalls on a VM).  At 512 KiB there were none, and 1 and 16 MiB
	 * gets ran ~1.5x faster; buffers of 1 MiB and more behaved like
	 * autotuning. */
	if (o->tcp_sndbuf) {
		int v = o->tcp_sndbuf > INT_MAX / 2 ? INT_MAX / 2 : (int)o->tcp_sndbuf;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
	}
}

uint64_t net_effective_sndbuf(uint64_t bytes)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), v, got = 0;
	socklen_t len = sizeof got;

	if (fd < 0)
		return 0;
	v = bytes > INT_MAX / 2 ? INT_MAX / 2 : (int)bytes;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) != 0)
		got = 0;
	close(fd);
	return got > 0 ? (uint64_t)got : 0;
}

int net_check_congestion(const char *cc, char *err, size_t errlen)
{
	int fd, rc = 0;

	if (!cc || !*cc)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "'%s': cannot try it: %s", cc, strerror(errno));
		return KVN_ECONFIG;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc)) != 0) {
		if (errno == ENOENT)
			snprintf(err, errlen, "'%s' is not available in this kernel "
				 "(net.ipv4.tcp_available_congestion_control)", cc);
		else if (errno == EPERM)
			snprintf(err, errlen, "'%s' is not allowed for this process "
				 "(net.ipv4.tcp_allowed_congestion_control)", cc);
		else
			snprintf(err, errlen, "'%s': %s", cc, strerror(errno));
		rc = KVN_ECONFIG;
	}
	close(fd);
	return rc;
}

int tcp_connect_start(const char *addr, const struct net_opts *o, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, rc;

	rc = tcp_resolve(addr, 0, &ss, &len);
	if (rc)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return KVN_ECONN;
	tcp_tune(fd, o);
	if (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
		close(fd);
		return KVN_ECONN;
	}
	*fd_out = fd;
	return 0;
}

int tcp_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
		return KVN_ECONN;
	return 0;
}

/* ---- listener ---- */

void net_counter_put(struct net_counter *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	uint32_t left = --c->refs;
	pthread_mutex_unlock(&c->mu);
	if (left == 0) {
		pthread_mutex_destroy(&c->mu);
		free(c);
	}
}

void net_counter_read(struct net_counter *c, struct net_conn_count *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&c->mu);
	out->open = c->open;
	out->masters = c->open_by_role[AUTH_ROLE_MASTER];
	out->peers = c->open_by_role[AUTH_ROLE_PEER];
	out->clients = c->open_by_role[AUTH_ROLE_CLIENT];
	out->handshake = c->preauth;
	pthread_mutex_unlock(&c->mu);
}

struct net_listener {
	struct evconnlistener *lev;
	struct actor *owner;
	const struct auth_policy *pol;
	struct net_opts opts;
	struct net_counter *cnt;
	uint16_t port;
	char unix_path[108]; /* a Unix socket's path (removed with the listener), else "" */
	/* next loop of opts.spread; from 1: spread[0] is the owner's own loop,
	 * which also handles every request, so it takes the last turn */
	unsigned rr;
	struct kvn_accept_guard guard; /* out of descriptors: pause, not spin */
	char addr[64];
};

static int same_source(const struct conn *c, const char *remote, size_t src_len)
{
	return c->src_len == src_len && memcmp(c->remote, remote, src_len) == 0;
}

/* The connection to drop for a newcomer: among those still in the
 * handshake (from the newcomer's address if `src_len`), the oldest that has
 * not even said HELLO, else the oldest.  The newest always gets its chance:
 * a legitimate client finishes in a round trip or two, while an idle socket
 * only waits for its deadline. */
static struct conn *preauth_victim(struct net_counter *cnt, const char *remote, size_t src_len)
{
	struct conn *c, *oldest = NULL;
	TAILQ_FOREACH(c, &cnt->pre, pre_link) {
		if (src_len && !same_source(c, remote, src_len))
			continue;
		/* its own loop's thread writes it: read once, relaxed */
		if (__atomic_load_n(&c->hs.step, __ATOMIC_RELAXED) == 0)
			return c;
		if (!oldest)
			oldest = c;
	}
	return oldest;
}

/* Make room in the pre-auth pool for a connection from remote: each
 * newcomer adds one, so closing one (from its address when that bound is
 * reached, else from anywhere) keeps both bounds. */
static void preauth_make_room(struct net_listener *l, const char *remote)
{
	const char *colon = strrchr(remote, ':');
	size_t src_len = colon ? (size_t)(colon - remote) : strlen(remote);
	uint32_t same = 0, n = 0;
	struct conn *c, *victim = NULL;
	const char *why = NULL;

	pthread_mutex_lock(&l->cnt->mu);
	TAILQ_FOREACH(c, &l->cnt->pre, pre_link)
		same += (uint32_t)same_source(c, remote, src_len);
	if (same >= l->opts.max_preauth_per_ip) {
		victim = preauth_victim(l->cnt, remote, src_len);
		why = "node.max_preauth_per_ip";
		n = same;
	} else if (l->cnt->preauth >= l->opts.max_preauth) {
		victim = preauth_victim(l->cnt, remote, 0);
		why = "node.max_preauth";
		n = l->cnt->preauth;
	}
	if (!victim) {
		pthread_mutex_unlock(&l->cnt->mu);
		return;
	}
	uint64_t supp = 0;
	net_stat_inc_refused();
	if (kvn_ratelimit_ok(&l->cnt->rl, &supp))
		log_warn("net: %u connections not authenticated yet (%s): closing the oldest, from %s%s",
			 n, why, victim->remote, CONN_SUPP(supp));
	/* out of the pool now, so it is not picked twice: one on another loop
	 * (net_opts.spread) closes on its own thread, later */
	TAILQ_REMOVE(&l->cnt->pre, victim, pre_link);
	l->cnt->preauth--;
	victim->on_pre = 0;
	actor_id vid = actor_id_of(victim->self);
	pthread_mutex_unlock(&l->cnt->mu);
	net_abort(actor_loop_of(l->owner), vid, KVN_EBUSY);
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct net_listener *l = arg;
	char remote[80];

	(void)lev;
	(void)salen;
	tcp_format_addr(sa, remote, sizeof remote);
	/* Authenticated connections count against max_connections, the ones
	 * in the handshake only against their own pool: idle sockets with no
	 * secret can never keep a client or a peer out. */
	pthread_mutex_lock(&l->cnt->mu);
	uint32_t open = l->cnt->open;
	if (open >= l->opts.max_conns) {
		uint64_t supp = 0;
		net_stat_inc_refused();
		if (kvn_ratelimit_ok(&l->cnt->rl, &supp))
			log_warn("net: refusing connection from %s: %u authenticated connections open "
				 "(max_connections)%s",
				 remote, open, CONN_SUPP(supp));
		pthread_mutex_unlock(&l->cnt->mu);
		close(fd);
		return;
	}
	pthread_mutex_unlock(&l->cnt->mu);
	preauth_make_room(l, remote);
	tcp_tune(fd, &l->opts);
	struct actor_loop *loop = actor_loop_of(l->owner);
	if (l->opts.nspread > 0) {
		unsigned i = l->rr++ % (unsigned)l->opts.nspread;
		loop = l->opts.spread[i];
		log_debug("net: connection from %s onto loop %u of %d", remote, i, l->opts.nspread);
	}
	/* made here, run by its own loop from its first event on */
	if (conn_accept_on(loop, l->owner, fd, remote, l->pol, &l->opts, l->cnt) != 0)
		close(fd);
}

static void accept_err_cb(struct evconnlistener *lev, void *arg)
{
	struct net_listener *l = arg;
	(void)lev;
	kvn_accept_guard_on_error(&l->guard);
}

/* A Unix socket: a stale file from a previous run is removed (the data
 * dir's LOCK says no other process of this node runs), and the socket is
 * mode 0600 before it accepts anything: only this user may connect, and
 * every connection still has to authenticate. */
static struct evconnlistener *unix_listen(struct actor *owner, struct net_listener *l,
					  const struct sockaddr_storage *ss, socklen_t len)
{
	struct stat st;
	if (net_unix_alive(l->unix_path)) {
		errno = EADDRINUSE; /* another process (a peer sharing data_dir): not ours to take */
		return NULL;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (lstat(l->unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(l->unix_path);
	if (bind(fd, (const struct sockaddr *)ss, len) != 0 || chmod(l->unix_path, 0600) != 0 ||
	    listen(fd, 512) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	struct evconnlistener *lev =
		evconnlistener_new(actor_base(owner), accept_cb, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (!lev) {
		close(fd);
		(void)unlink(l->unix_path);
	}
	return lev;
}

int net_listen(struct actor *owner, const char *addr, const struct auth_policy *pol,
	       const struct net_opts *o, struct net_listener **out, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct net_listener *l;

	if (tcp_resolve(addr, 1, &ss, &len) != 0) {
		snprintf(err, errlen, "%s: not a valid listen address (host:port, or unix:/path)", addr);
		return KVN_EINVAL;
	}
	l = kvn_xcalloc(1, sizeof *l);
	l->owner = owner;
	l->pol = pol;
	l->cnt = kvn_xcalloc(1, sizeof *l->cnt);
	l->rr = 1;
	l->cnt->refs = 1;
	pthread_mutex_init(&l->cnt->mu, NULL);
	TAILQ_INIT(&l->cnt->pre);
	kvn_ratelimit_init(&l->cnt->rl, NET_WARN_INTERVAL_MS, NET_WARN_BURST);
	if (o)
		l->opts = *o;
	else
		net_opts_default(&l->opts);
	if (ss.ss_family == AF_UNIX) {
		/* unix_resolve left a NUL-terminated path that fits */
		memcpy(l->unix_path, ((struct sockaddr_un *)&ss)->sun_path, sizeof l->unix_path);
		l->lev = unix_listen(owner, l, &ss, len);
	} else {
		l->lev = evconnlistener_new_bind(actor_base(owner), accept_cb, l,
						 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
						 512, (struct sockaddr *)&ss, (int)len);
	}
	if (!l->lev) {
		snprintf(err, errlen, "%s: cannot listen: %s", addr, strerror(errno));
		free(l->cnt);
		free(l);
		return KVN_EIO;
	}
	evutil_make_socket_nonblocking(evconnlistener_get_fd(l->lev));
	snprintf(l->addr, sizeof l->addr, "net: listener %s", addr);
	if (kvn_accept_guard_init(&l->guard, actor_base(owner), l->lev, l->addr) == 0)
		evconnlistener_set_error_cb(l->lev, accept_err_cb);
	{
		struct sockaddr_storage bound;
		socklen_t blen = sizeof bound;
		if (getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&bound, &blen) == 0)
			l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
								       : ((struct sockaddr_in *)&bound)->sin_port);
	}
	*out = l;
	return 0;
}

uint16_t net_listener_port(const struct net_listener *l)
{
	return l->port;
}

struct net_counter *net_listener_counter(struct net_listener *l)
{
	pthread_mutex_lock(&l->cnt->mu);
	l->cnt->refs++;
	pthread_mutex_unlock(&l->cnt->mu);
	return l->cnt;
}

void net_listener_free(struct net_listener *l)
{
	if (!l)
		return;
	kvn_accept_guard_fini(&l->guard);
	evconnlistener_free(l->lev);
	if (l->unix_path[0])
		(void)unlink(l->unix_path);
	net_counter_put(l->cnt);
	free(l);
}

void net_opts_from_conf(struct net_opts *o, const struct kvn_conf *c, uint64_t max_conns)
{
	net_opts_default(o);
	o->handshake_timeout_ms = c->auth_handshake_timeout;
	o->max_payload = c->node_max_value_size > 256ull << 20 ? c->node_max_value_size : 256ull << 20;
	o->max_conns = (uint32_t)max_conns;
	o->max_preauth = (uint32_t)c->node_max_preauth;
	o->max_preauth_per_ip = (uint32_t)c->node_max_preauth_per_ip;
	snprintf(o->tcp_congestion, sizeof o->tcp_congestion, "%s", c->node_tcp_congestion);
	o->tcp_sndbuf = c->node_tcp_sndbuf;
	o->integrity = c->auth_integrity;
}

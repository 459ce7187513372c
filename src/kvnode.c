/*
 * kvnode: main.  Parses flags, loads the config, and either runs the master
 * and/or peer roles as actors until SIGINT/SIGTERM (SIGHUP reopens the log
 * file and reloads the secret files), or runs one client
 * command (`--role client ping|put|get|exists|rm|stat|lease|...|bench`), or runs
 * the RESP gateway (`--role resp`, src/resp/), or makes a secret file
 * (`kvnode keygen`) or prints a gateway's AUTH token (`keygen --resp-token`).
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client.h"
#include "master/master.h"
#include "peer/peer.h"
#include "auth/auth.h"
#include "base/base.h"
#include "cli/cli.h"
#include "net/net.h"
#include "net/xfer.h"
#include "http/http.h"
#include "resp/resp.h"
#include "base/metrics.h"
#include "store/store.h"

#define DEFAULT_CONFIG "etc/kvnode.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kvnode [--role ROLE[,ROLE]] [--config FILE] [--set SECTION.KEY=VALUE]... [COMMAND ARGS]\n"
		"       kvnode keygen [--rotate] FILE | kvnode keygen --resp-token CLIENT_SECRET_FILE\n"
		"       kvnode --role master [--config FILE] backup [--timeout D] FILE\n"
		"       kvnode --help | --version\n"
		"\n"
		"Roles: master, peer (run until SIGINT/SIGTERM; SIGHUP reopens node.log and reloads\n"
		"the secret files; default: master,peer), resp (alone: the RESP gateway, a client of\n"
		"the cluster for Redis clients on resp.listen), or client,\n"
		"which runs one COMMAND against the cluster (COMMAND --help: its usage):\n");
	cli_usage_list(out);
	fprintf(out,
		"\n"
		"Options:\n"
		"  -r, --role ROLES     comma-separated roles\n"
		"  -c, --config FILE    config file (default %s when it exists)\n"
		"  -s, --set K=V        override one config key, e.g. --set peer.dram_size=4GiB\n"
		"  -h, --help           this text and every config key\n"
		"  -V, --version        version and transports\n"
		"      --check          load and check the configuration (file, --set, derived values), then exit\n"
		"\n"
		"Exit status: 0 ok; 1 not found / no; 2 usage or config; 3 authentication;\n"
		"4 unreachable, timeout or busy; 5 no space; 6 key/value size; 7 other; 8 stale.\n"
		"\n",
		DEFAULT_CONFIG);
	kvn_conf_write_help(out);
}

static int parse_roles(const char *s, int *roles)
{
	char buf[128], *save = NULL;
	*roles = 0;
	if (strlen(s) >= sizeof buf)
		return -1;
	snprintf(buf, sizeof buf, "%s", s);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "master") == 0)
			*roles |= KVN_ROLE_MASTER;
		else if (strcmp(t, "peer") == 0)
			*roles |= KVN_ROLE_PEER;
		else if (strcmp(t, "client") == 0)
			*roles |= KVN_ROLE_CLIENT;
		else if (strcmp(t, "resp") == 0)
			*roles |= KVN_ROLE_RESP;
		else {
			fprintf(stderr, "kvnode: unknown role '%s' (roles: master, peer, client, resp)\n", t);
			return -1;
		}
	}
	if (*roles == 0) {
		fprintf(stderr, "kvnode: --role needs at least one of master, peer, client\n");
		return -1;
	}
	if ((*roles & KVN_ROLE_CLIENT) && (*roles & ~KVN_ROLE_CLIENT)) {
		fprintf(stderr, "kvnode: the client role runs a command and cannot be combined with master/peer\n");
		return -1;
	}
	/* a client of the cluster like any other, with a lifetime of its own */
	if ((*roles & KVN_ROLE_RESP) && *roles != KVN_ROLE_RESP) {
		fprintf(stderr, "kvnode: the resp role runs alone (start master and peer in another process)\n");
		return -1;
	}
	return 0;
}

static int cmd_keygen(int argc, char **argv)
{
	char err[512];
	int rotate = 0, rc;
	const char *path = NULL;

	if (argc == 3 && strcmp(argv[1], "--resp-token") == 0)
		return resp_token_cmd(argv[2]);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rotate") == 0)
			rotate = 1;
		else if (argv[i][0] == '-' || path) {
			fprintf(stderr, "usage: kvnode keygen [--rotate] FILE\n");
			return 2;
		} else
			path = argv[i];
	}
	if (!path) {
		fprintf(stderr, "usage: kvnode keygen [--rotate] FILE\n");
		return 2;
	}
	rc = rotate ? auth_keygen_rotate(path, err, sizeof err) : auth_keygen(path, err, sizeof err);
	if (rc) {
		fprintf(stderr, "kvnode: keygen: %s\n", err[0] ? err : kvn_strerror(rc));
		return kvn_err_exit_code(rc);
	}
	printf("%s %s (mode 0600)\n", rotate ? "added a new secret to" : "wrote a new secret to", path);
	return 0;
}

/* ---- the daemon ---- */

/* The derived node id is "<hostname>-<port of peer.listen>"; a master-only
 * process listens on no peer port, so it is named after master.listen's
 * port instead (a node.id that was set is left alone).  0 or 1 (err). */
static int master_only_id(struct kvn_conf *conf, char *err, size_t errlen)
{
	char host[256], id[128], set[160];
	uint16_t pport = 0, mport = 0;

	if (kvn_split_hostport(conf->peer_listen, host, sizeof host, &pport) != 0 ||
	    kvn_split_hostport(conf->master_listen, host, sizeof host, &mport) != 0)
		return 0;
	size_t len = strlen(conf->node_id);
	char suffix[8];
	snprintf(suffix, sizeof suffix, "-%u", pport);
	size_t sl = strlen(suffix);
	if (len < sl || strcmp(conf->node_id + len - sl, suffix) != 0)
		return 0;
	snprintf(suffix, sizeof suffix, "-%u", mport);
	size_t keep = len - sl;
	if (keep + strlen(suffix) > 63)
		keep = 63 - strlen(suffix);
	snprintf(id, sizeof id, "%.*s%s", (int)keep, conf->node_id, suffix);
	snprintf(set, sizeof set, "node.id=%s", id);
	return kvn_conf_set(conf, set, err, errlen) != 0 || kvn_conf_finalize(conf, err, errlen) != 0;
}

struct node {
	struct kvn_conf *conf;
	int roles;
	struct actor_loop *master_loop, *db_loop, *peer_loop, *disk_loop;
	/* peer.io_threads: the peer's own loop, then io[1..nio-1] */
	struct actor_loop **io;
	int nio;
	char *peer_db; /* <data_dir>/peer.db */
	struct actor *master, *peer;
	struct auth_keyring peer_kr, client_kr;
	struct auth_policy master_pol, peer_pol;
	struct net_listener *master_lst, *peer_lst;
	struct net_listener *local_lst; /* peer.local_socket, NULL: none */
};

/* The all-in-one default needs no setup: a master that finds no secret
 * files makes them, once, and says so. */
static int ensure_secret(const char *path, const char *what)
{
	char err[512];
	if (access(path, F_OK) == 0)
		return 0;
	int rc = auth_keygen(path, err, sizeof err);
	if (rc) {
		fprintf(stderr, "kvnode: cannot create the %s secret: %s\n", what, err);
		return -1;
	}
	log_info("created %s secret file %s (mode 0600); %ss need it to attach", what, path, what);
	return 0;
}

static int load_ring(struct auth_keyring *kr, const char *key, const char *path)
{
	char err[512];
	int rc = auth_keyring_load(kr, path, err, sizeof err);
	if (rc) {
		fprintf(stderr, "kvnode: %s: %s\n", key, err);
		return -1;
	}
	return 0;
}

static int start_master(struct node *n, char *err, size_t errlen)
{
	char path[4096];
	struct master_opts mo;
	struct net_opts no;
	const struct kvn_conf *c = n->conf;

	snprintf(path, sizeof path, "%s/master.db", c->node_data_dir);
	master_opts_from_conf(&mo, c, path);
	n->master_loop = actor_loop_new("master");
	n->db_loop = actor_loop_new("db");
	if (master_start(n->master_loop, n->db_loop, &mo, &n->master, err, errlen) != 0)
		return -1;
	n->master_pol.peer = &n->peer_kr;
	n->master_pol.client = &n->client_kr;
	snprintf(n->master_pol.server_id, sizeof n->master_pol.server_id, "%s", c->node_id);
	if (n->roles & KVN_ROLE_PEER)
		return 0; /* all-in-one: start_peer listens, once the I/O loops exist */
	net_opts_from_conf(&no, c, c->master_max_connections);
	no.metrics_role = KVN_METRIC_MASTER;
	if (net_listen(n->master, c->master_listen, &n->master_pol, &no, &n->master_lst, err, errlen) != 0)
		return -1;
	master_set_listener(n->master, n->master_lst);
	return 0;
}

/* peer.local_socket: same-host clients attach there with the same
 * handshake and limits as over TCP.  A node that cannot offer it still
 * serves over TCP: one warning, and clients stay on TCP. */
static void start_local(struct node *n)
{
	const struct kvn_conf *c = n->conf;
	char addr[4200], err[512];
	struct net_opts no;

	if (!c->peer_local_socket[0] || strcmp(c->peer_local_socket, "off") == 0)
		return;
	/* a peer without a disk tier may never have made its data_dir */
	snprintf(addr, sizeof addr, "%s", c->peer_local_socket);
	char *slash = strrchr(addr, '/');
	if (slash && slash != addr) {
		*slash = '\0';
		(void)mkdir(addr, 0700);
	}
	net_opts_from_conf(&no, c, c->peer_max_connections);
	no.metrics_role = KVN_METRIC_PEER;
	if (n->nio > 1) {
		/* as TCP clients: each loop copies its own connections' staged
		 * puts (the peer's loop would otherwise do every copy) */
		no.spread = n->io;
		no.nspread = n->nio;
	}
	snprintf(addr, sizeof addr, "%s%s", NET_UNIX_PREFIX, c->peer_local_socket);
	if (net_unix_alive(c->peer_local_socket)) {
		/* another peer sharing this data_dir has it: expected, not a fault */
		log_debug("peer.local_socket = '%s' belongs to another process; same-host clients use TCP",
			  c->peer_local_socket);
		return;
	}
	if (net_listen(n->peer, addr, &n->peer_pol, &no, &n->local_lst, err, sizeof err) != 0 ||
	    peer_local_open(n->peer, c->peer_local_socket, c->peer_local_staging, err, sizeof err) != 0) {
		net_listener_free(n->local_lst);
		n->local_lst = NULL;
		log_warn("peer.local_socket = '%s': %s; same-host clients use TCP", c->peer_local_socket, err);
		return;
	}
	log_debug("peer: same-host clients on %s (staging %llu bytes each)", c->peer_local_socket,
		 (unsigned long long)c->peer_local_staging);
}

static int start_peer(struct node *n, char *err, size_t errlen)
{
	struct peer_opts po;
	struct net_opts no;
	const struct kvn_conf *c = n->conf;

	peer_opts_from_conf(&po, c);
	peer_opts_disk_from_conf(&po, c, &n->peer_db, &n->disk_loop);
	/* All-in-one: the peer shares the master's loop thread.  Measured: on
	 * these 2-core VMs a thread wake-up per message costs more than the
	 * work, and 64 KiB gets with 4 clients went from 8.3k to 11.1k ops/s. */
	if (!n->master_loop)
		n->peer_loop = actor_loop_new("peer");
	if (peer_start(n->peer_loop ? n->peer_loop : n->master_loop, &po, &n->peer, err, errlen) != 0)
		return -1;
	/* peers accept clients only */
	n->peer_pol.client = &n->client_kr;
	snprintf(n->peer_pol.server_id, sizeof n->peer_pol.server_id, "%s", c->node_id);
	net_opts_from_conf(&no, c, c->peer_max_connections);
	if (c->peer_io_threads > 1) {
		n->nio = (int)c->peer_io_threads;
		n->io = kvn_xcalloc((size_t)n->nio, sizeof *n->io);
		n->io[0] = actor_loop_of(n->peer);
		for (int i = 1; i < n->nio; i++) {
			char name[16];
			snprintf(name, sizeof name, "io%d", i);
			n->io[i] = actor_loop_new(name);
		}
		no.spread = n->io;
		no.nspread = n->nio;
		log_info("peer: connections spread over %d I/O loops (peer.io_threads)", n->nio);
	}
	no.metrics_role = KVN_METRIC_PEER;
	if (net_listen(n->peer, c->peer_listen, &n->peer_pol, &no, &n->peer_lst, err, errlen) != 0)
		return -1;
	start_local(n);
	if (n->master) {
		/* All-in-one: clients' gets and puts come through the master's
		 * connections (client.get_via_master, put_via_master), so those
		 * are spread too.  Master and peer share a loop and, with I/O
		 * loops, one lock: the master's sink hands a PUT to the peer's
		 * under it, with no order of two locks to get wrong. */
		struct net_opts mno;
		net_opts_from_conf(&mno, c, c->master_max_connections);
		mno.metrics_role = KVN_METRIC_MASTER;
		if (n->nio > 1) {
			actor_set_lock(n->master, peer_lock(n->peer));
			mno.spread = n->io;
			mno.nspread = n->nio;
		}
		if (net_listen(n->master, c->master_listen, &n->master_pol, &mno, &n->master_lst, err, errlen) != 0)
			return -1;
		master_set_listener(n->master, n->master_lst);
	}
	if (n->master) {
		/* all-in-one: the same messages, through a mailbox */
		peer_set_master(n->peer, actor_id_of(n->master));
	} else {
		/* .ring: after a SIGHUP reload, reconnects attach with the new
		 * first secret of peer.secret */
		struct net_creds cr = { .role = AUTH_ROLE_PEER, .node_id = c->node_id, .secret = &n->peer_kr.s[0],
					.ring = &n->peer_kr };
		actor_id proxy;
		net_opts_from_conf(&no, c, 1);
		no.reconnect = 1;
		if (net_connect(n->peer, c->peer_master, &cr, &no, &proxy) != 0) {
			snprintf(err, errlen, "peer.master = '%s': not a valid address", c->peer_master);
			return -1;
		}
		peer_set_master(n->peer, proxy);
	}
	return 0;
}

/* The HTTP monitoring endpoints (master.http, peer.http; "" is off), each on
 * its role's loop, after the role started and before the loops run; they
 * end with their loops.  In an all-in-one node the master's state shares
 * the peer's lock (start_peer), so its endpoint takes that lock. */
static int start_http(struct node *n, char *err, size_t errlen)
{
	const struct kvn_conf *c = n->conf;
	if (n->master && c->master_http[0]) {
		struct http_opts o = { .role = KVN_METRIC_MASTER, .addr = c->master_http, .key = "master.http",
				       .node_id = c->node_id, .master = n->master,
				       .master_lock = n->peer ? peer_lock(n->peer) : NULL };
		if (http_start(actor_loop_of(n->master), &o, err, errlen) != 0)
			return -1;
	}
	if (n->peer && c->peer_http[0]) {
		struct http_opts o = { .role = KVN_METRIC_PEER, .addr = c->peer_http, .key = "peer.http",
				       .node_id = c->node_id, .peer = n->peer };
		if (http_start(actor_loop_of(n->peer), &o, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* The stop sequence (docs/operations.md, "Stopping a node").  The first
 * SIGTERM or SIGINT of a process that runs a peer of a remote master asks
 * the peer to leave (peer_leave: flush, ship events, PEER_LEAVE) and waits
 * for its answer or peer.stop_timeout; then, or at once for other
 * processes, or on a second signal, the loops stop.  A peer sharing the
 * master's process leaves only to flush (peer.flush_on_stop with a disk
 * tier): otherwise the master stops with it, and its restart re-syncs the
 * peer. */
struct stopper {
	struct event_base *base;
	struct actor *peer; /* NULL: nothing to leave */
	uint64_t timeout_ms;
	int signals;
	struct event *done_ev, *timer_ev;
	int status; /* peer_leave's, written on the peer's thread before done_ev fires */
	int answered; /* main thread: the answer or the timer came */
};

static void leave_answered(evutil_socket_t fd, short what, void *arg)
{
	struct stopper *st = arg;
	int status = __atomic_load_n(&st->status, __ATOMIC_ACQUIRE);
	char d[32];

	(void)fd;
	(void)what;
	if (st->answered)
		return;
	st->answered = 1;
	kvn_format_duration(d, sizeof d, st->timeout_ms);
	if (status == 0)
		log_info("left the master: it no longer routes to this peer; stopping");
	else if (status == KVN_ETIMEDOUT)
		log_warn("leave not acknowledged within %s (peer.stop_timeout); stopping", d);
	else
		log_warn("leave not acknowledged: %s; stopping", kvn_strerror(status));
	event_base_loopexit(st->base, NULL);
}

static void leave_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct stopper *st = arg;
	(void)fd;
	(void)what;
	/* the peer's own deadline is the same: this only guards a peer loop
	 * that never answers */
	__atomic_store_n(&st->status, KVN_ETIMEDOUT, __ATOMIC_RELEASE);
	leave_answered(-1, 0, st);
}

/* peer_leave's answer, on the peer's loop thread: hand it to main's. */
static void leave_done(void *arg, int status)
{
	struct stopper *st = arg;
	__atomic_store_n(&st->status, status, __ATOMIC_RELEASE);
	event_active(st->done_ev, EV_READ, 0);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct stopper *st = arg;
	const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
	char d[32];

	(void)what;
	if (st->signals++ > 0) {
		log_info("%s again: stopping at once", name);
		event_base_loopexit(st->base, NULL);
		return;
	}
	if (!st->peer) {
		log_info("%s: shutting down", name);
		event_base_loopexit(st->base, NULL);
		return;
	}
	kvn_format_duration(d, sizeof d, st->timeout_ms);
	log_info("%s: shutting down: telling the master this peer leaves (within %s)", name, d);
	int rc = peer_leave(st->peer, kvn_now_ms() + st->timeout_ms, leave_done, st);
	if (rc) {
		log_warn("cannot ask the peer to leave: %s; stopping", kvn_strerror(rc));
		event_base_loopexit(st->base, NULL);
		return;
	}
	struct timeval tv = { .tv_sec = (time_t)((st->timeout_ms + 1000) / 1000),
			      .tv_usec = (suseconds_t)((st->timeout_ms + 1000) % 1000 * 1000) };
	evtimer_add(st->timer_ev, &tv);
}

/* SIGHUP (docs/operations.md, "Logs" and "Rotating a secret"): reopen the
 * log file (logrotate moves it away first) and load every secret file of
 * the process again: handshakes from now on accept the new set; sessions
 * already up keep going.  A file that fails to load leaves its keyring as
 * it was.  One line per file, never a secret. */
static void reload_ring(struct auth_keyring *kr, const char *key, const char *path)
{
	char err[512];
	int added = 0, removed = 0;
	int rc = auth_keyring_reload(kr, path, &added, &removed, err, sizeof err);
	if (rc)
		log_error("auth: %s: reload failed: %s; still using the %zu secret(s) loaded before", key, err,
			  kr->n);
	else
		log_info("auth: %s %s reloaded: %zu secret(s) (%d added, %d removed)", key, path, kr->n,
			 added, removed);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct node *n = arg;
	char err[512];

	(void)sig;
	(void)what;
	int rc = kvn_log_sink_reopen(err, sizeof err);
	if (rc < 0)
		log_error("SIGHUP: %s; still writing to the file opened before", err);
	else if (rc == 0)
		log_info("SIGHUP: reopened the log file %s", n->conf->node_log);
	reload_ring(&n->peer_kr, "auth.peer_secret_file", n->conf->auth_peer_secret_file);
	reload_ring(&n->client_kr, "auth.client_secret_file", n->conf->auth_client_secret_file);
}

static void stop_loop(struct actor_loop *l)
{
	if (!l)
		return;
	actor_loop_stop(l);
	actor_loop_join(l);
}

static int run_daemon(struct kvn_conf *conf, int roles)
{
	struct node n;
	char err[1024];
	int rc = 1;

	/* SIGHUP reloads (on_hup); until the loop below handles it, and when
	 * a closed terminal sends one, it must not end the process */
	signal(SIGHUP, SIG_IGN);
	memset(&n, 0, sizeof n);
	kvn_metric_start();
	n.conf = conf;
	n.roles = roles;
	/* Before anything in the data_dir is opened: a master keeps master.db
	 * and the secrets there, a peer with a disk tier peer.db and disk/ (a
	 * peer without one keeps nothing there and takes no lock). */
	err[0] = '\0';
	if (((roles & KVN_ROLE_MASTER) || conf->peer_disk_size > 0) &&
	    kvn_datadir_lock(conf->node_data_dir, err, sizeof err) != 0) {
		fprintf(stderr, "kvnode: %s\n", err);
		return 1;
	}
	/* still on the terminal: the start is refused before the log moves */
	if (conf->node_pid_file[0] && kvn_pidfile_write(conf->node_pid_file, err, sizeof err) != 0) {
		fprintf(stderr, "kvnode: %s\n", err);
		return 1;
	}
	if (kvn_log_sink_open(conf->node_log, err, sizeof err) != 0) {
		fprintf(stderr, "kvnode: %s\n", err);
		if (conf->node_pid_file[0])
			kvn_pidfile_remove(conf->node_pid_file);
		return 2;
	}
	if ((roles & KVN_ROLE_MASTER) && (ensure_secret(conf->auth_peer_secret_file, "peer") != 0 ||
					  ensure_secret(conf->auth_client_secret_file, "client") != 0))
		goto out;
	if (load_ring(&n.peer_kr, "auth.peer_secret_file", conf->auth_peer_secret_file) != 0 ||
	    load_ring(&n.client_kr, "auth.client_secret_file", conf->auth_client_secret_file) != 0) {
		/* the one a new cluster's peer most likely lacks is client.secret:
		 * nobody expects a server to need the clients' secret */
		if (!(roles & KVN_ROLE_MASTER))
			fprintf(stderr, "kvnode: a peer needs two secret files from its master: peer.secret (to "
					"attach) and client.secret (clients put and get values on the peer, which "
					"authenticates them); README.md, \"A cluster on several hosts\"\n");
		goto out;
	}
	err[0] = '\0';
	if ((roles & KVN_ROLE_MASTER) && start_master(&n, err, sizeof err) != 0) {
		fprintf(stderr, "kvnode: master: %s\n", err);
		goto out;
	}
	if ((roles & KVN_ROLE_PEER) && start_peer(&n, err, sizeof err) != 0) {
		fprintf(stderr, "kvnode: peer: %s\n", err);
		goto out;
	}
	if (start_http(&n, err, sizeof err) != 0) {
		fprintf(stderr, "kvnode: %s\n", err);
		goto out;
	}
	struct event_base *base = event_base_new();
	/* all-in-one stops at once, unless its peer has DRAM values to write
	 * to its disk tier first (peer.flush_on_stop) */
	int flush = conf->peer_flush_on_stop && conf->peer_disk_size > 0;
	struct stopper st = { .base = base, .peer = n.master && !flush ? NULL : n.peer,
			      .timeout_ms = conf->peer_stop_timeout };
	st.done_ev = event_new(base, -1, 0, leave_answered, &st);
	st.timer_ev = evtimer_new(base, leave_timeout, &st);
	struct event *sint = evsignal_new(base, SIGINT, on_signal, &st);
	struct event *sterm = evsignal_new(base, SIGTERM, on_signal, &st);
	struct event *shup = evsignal_new(base, SIGHUP, on_hup, &n);
	evsignal_add(sint, NULL);
	evsignal_add(sterm, NULL);
	evsignal_add(shup, NULL);
	if (n.db_loop)
		actor_loop_start(n.db_loop);
	if (n.disk_loop)
		actor_loop_start(n.disk_loop);
	if (n.master_loop)
		actor_loop_start(n.master_loop);
	if (n.peer_loop)
		actor_loop_start(n.peer_loop);
	for (int i = 1; i < n.nio; i++)
		actor_loop_start(n.io[i]);
	if (n.master)
		log_info("kvnode ready: node %s%s%s%s%s; rdma devices: %d", conf->node_id,
			 n.master ? ", master on " : "", n.master ? conf->master_listen : "",
			 n.peer ? ", peer on " : "", n.peer ? conf->peer_listen : "", net_rdma_devices());
	else
		/* a peer of a remote master is of no use until it attached: the
		 * peer says "attached to the master" (or why not) when it knows */
		log_info("kvnode started: node %s, peer on %s; not attached to the master at %s yet; "
			 "rdma devices: %d",
			 conf->node_id, conf->peer_listen, conf->peer_master, net_rdma_devices());
	event_base_dispatch(base);
	/* peers first, so they stop sending to the master; the SQLite writer
	 * last, so it commits what the master handed it */
	/* the peer's I/O loops before the peer: their connections take the
	 * peer's lock and write its pages */
	for (int i = 1; i < n.nio; i++)
		stop_loop(n.io[i]);
	/* the disk writer before its peer: its writes read the peer's pages */
	stop_loop(n.disk_loop);
	stop_loop(n.peer_loop);
	stop_loop(n.master_loop);
	stop_loop(n.db_loop);
	event_free(sint);
	event_free(sterm);
	event_free(shup);
	event_free(st.timer_ev);
	/* the peer loop is joined: leave_done cannot fire any more */
	event_free(st.done_ev);
	event_base_free(base);
	log_info("stopped");
	rc = 0;
out:
	net_listener_free(n.local_lst);
	net_listener_free(n.peer_lst);
	net_listener_free(n.master_lst);
	for (int i = 1; i < n.nio; i++)
		actor_loop_free(n.io[i]);
	free(n.io);
	actor_loop_free(n.disk_loop);
	actor_loop_free(n.peer_loop);
	actor_loop_free(n.master_loop);
	actor_loop_free(n.db_loop);
	auth_keyring_wipe(&n.peer_kr);
	auth_keyring_wipe(&n.client_kr);
	free(n.peer_db);
	if (conf->node_pid_file[0])
		kvn_pidfile_remove(conf->node_pid_file);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "print-config", required_argument, NULL, 'P' },
		{ "check", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role_s = "master,peer", *config = NULL;
	char **sets = NULL;
	int nsets = 0, roles, c, rc, check = 0;
	struct kvn_conf conf;
	char err[1024];

	/* the server and the CLI log to stderr as they always did; the
	 * library alone would say nothing (kvn_set_log, kvnode.h) */
	kvn_set_log(KVN_LOG_INFO, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(argc - 1, argv + 1);
	sets = kvn_xcalloc((size_t)argc, sizeof *sets);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+r:c:s:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			role_s = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 's':
			sets[nsets++] = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			free(sets);
			return 0;
		case 'V':
			printf("kvnode %s\ntransports: tcp%s (rdma devices present: %d)\n", PACKAGE_VERSION,
#ifdef HAVE_RDMA
			       ", rdma (built)",
#else
			       ", rdma not built",
#endif
			       net_rdma_devices());
			free(sets);
			return 0;
		case 'P':
			if (strcmp(optarg, "example") == 0)
				kvn_conf_write_example(stdout);
			else if (strcmp(optarg, "markdown") == 0)
				kvn_conf_write_markdown(stdout);
			else if (strcmp(optarg, "man") == 0)
				kvn_conf_write_man(stdout);
			else {
				fprintf(stderr, "kvnode: --print-config takes example, markdown or man\n");
				free(sets);
				return 2;
			}
			free(sets);
			return 0;
		default:
			if (optopt)
				fprintf(stderr, "kvnode: option -%c %s\n", optopt,
					strchr("rcsP", optopt) ? "needs a value" : "is unknown");
			else
				fprintf(stderr, "kvnode: unknown option '%s' (see kvnode --help)\n", argv[optind - 1]);
			free(sets);
			return 2;
		}
	}
	if (parse_roles(role_s, &roles) != 0) {
		free(sets);
		return 2;
	}
	/* the one command of the master role: backup */
	int backup = optind < argc && strcmp(argv[optind], "backup") == 0;
	if (backup && roles != KVN_ROLE_MASTER) {
		fprintf(stderr, "kvnode: backup runs with --role master (alone)\n");
		free(sets);
		return 2;
	}
	if (!(roles & KVN_ROLE_CLIENT) && optind < argc && !backup) {
		fprintf(stderr, "kvnode: unexpected argument '%s' (commands need --role client)\n", argv[optind]);
		free(sets);
		return 2;
	}
	kvn_conf_init(&conf);
	if (!config && access(DEFAULT_CONFIG, F_OK) == 0)
		config = DEFAULT_CONFIG;
	rc = 0;
	if (config && kvn_conf_load(&conf, config, err, sizeof err) != 0)
		rc = 1;
	for (int i = 0; rc == 0 && i < nsets; i++)
		if (kvn_conf_set(&conf, sets[i], err, sizeof err) != 0)
			rc = 1;
	int id_derived = !conf.node_id || !conf.node_id[0]; /* finalize derives it */
	if (rc == 0 && kvn_conf_finalize(&conf, err, sizeof err) != 0)
		rc = 1;
	if (rc == 0 && id_derived && (roles & (KVN_ROLE_MASTER | KVN_ROLE_PEER)) == KVN_ROLE_MASTER)
		rc = master_only_id(&conf, err, sizeof err);
	if (rc == 0 && (roles & (KVN_ROLE_MASTER | KVN_ROLE_PEER))) {
		char why[256];
		if (net_check_congestion(conf.node_tcp_congestion, why, sizeof why) != 0) {
			snprintf(err, sizeof err, "node.tcp_congestion: %s", why);
			rc = 1;
		}
	}
	free(sets);
	if (rc) {
		fprintf(stderr, "kvnode: %s\n", err);
		kvn_conf_fini(&conf);
		return 2;
	}
	kvn_log_set_level(conf.node_log_level);
	if (check) {
		/* everything a start checks before it touches the data_dir */
		printf("kvnode: configuration OK: %s%s; node.data_dir = %s\n", config ? config : "built-in defaults",
		       optind < argc ? " (the command was not run)" : "", conf.node_data_dir);
		kvn_conf_fini(&conf);
		return 0;
	}
	if (backup) {
		/* reads master.db only: no data_dir lock, nothing created there */
		rc = meta_backup_cmd(argc - optind, argv + optind, conf.node_data_dir);
	} else if (roles & KVN_ROLE_CLIENT) {
		if (optind >= argc) {
			fprintf(stderr, "kvnode: --role client needs a command (%s)\n", cli_cmd_names());
			kvn_conf_fini(&conf);
			return 2;
		}
		rc = cli_main(argc - optind, argv + optind, &conf);
	} else if (roles & KVN_ROLE_RESP) {
		rc = resp_main(&conf);
	} else {
		if (!config)
			log_info("no config file (%s not found): using built-in defaults", DEFAULT_CONFIG);
		if (conf.node_tcp_sndbuf) {
			uint64_t eff = net_effective_sndbuf(conf.node_tcp_sndbuf);
			if (eff && eff < 2 * conf.node_tcp_sndbuf)
				log_info("node.tcp_sndbuf = %llu bytes: the kernel caps send buffers at %llu "
					 "(net.core.wmem_max; it doubles what is asked)",
					 (unsigned long long)conf.node_tcp_sndbuf, (unsigned long long)eff);
		}
		rc = run_daemon(&conf, roles);
	}
	kvn_conf_fini(&conf);
	return rc;
}

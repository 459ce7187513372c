/*
 * embed: kvnode's embedded mode (include/kvnode-embed.h).  Owns a handle's
 * life: its configuration (the options over a config file over the
 * defaults), the data_dir lock, the master and the peer started as
 * kvnode's all-in-one node starts them (src/kvnode.c: one loop thread for
 * both, SQLite's writer and the disk writer on threads of their own), the
 * listeners only when asked, the clients' connector (embed_link.c), and
 * the stop: flush to the disk tier when configured, then the loops in
 * kvnode's order, every wait bounded.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvnode-embed.h"

#include "auth/auth.h"
#include "base/base.h"
#include "client/client_int.h"
#include "embed/embed_int.h"
#include "master/master.h"
#include "net/net.h"
#include "peer/peer.h"

struct kvn_embed {
	struct kvn_conf conf;
	int lock_fd;
	char *peer_db;
	struct actor_loop *master_loop, *db_loop, *disk_loop;
	struct actor *master, *peer;
	int started; /* the loops' threads run */
	int master_stopped; /* joined early: a flush that never answered */
	struct auth_keyring peer_kr, client_kr;
	struct auth_policy master_pol, peer_pol;
	struct net_listener *master_lst, *peer_lst;
	struct embed_dir *dir;
	struct kvn_client *client; /* kvn_embed_client's */
};

/* ---- configuration ---- */

static int set_key(struct kvn_conf *c, const char *key, const char *val, char *err, size_t errlen)
{
	char a[4200];
	snprintf(a, sizeof a, "%s=%s", key, val);
	return kvn_conf_set(c, a, err, errlen);
}

static int set_u64(struct kvn_conf *c, const char *key, uint64_t v, char *err, size_t errlen)
{
	char s[32];
	snprintf(s, sizeof s, "%llu", (unsigned long long)v);
	return set_key(c, key, s, err, errlen);
}

static int embed_conf(const struct kvn_embed_options *o, struct kvn_conf *c, char *err, size_t errlen)
{
	int rc = 0;

	kvn_conf_init(c);
	if (o && o->config_path)
		rc = kvn_conf_load(c, o->config_path, err, errlen);
	if (rc == 0 && o && o->data_dir)
		rc = set_key(c, "node.data_dir", o->data_dir, err, errlen);
	if (rc == 0 && o && o->dram_size)
		rc = set_u64(c, "peer.dram_size", o->dram_size, err, errlen);
	if (rc == 0 && o && o->disk_size)
		rc = set_u64(c, "peer.disk_size", o->disk_size, err, errlen);
	if (rc == 0 && o && o->disk_dir)
		rc = set_key(c, "peer.disk_dir", o->disk_dir, err, errlen);
	if (rc == 0 && o && o->timeout_ms)
		c->client_timeout = o->timeout_ms; /* finalize range-checks it */
	if (rc == 0)
		rc = kvn_conf_finalize(c, err, errlen);
	return rc ? KVN_ECONFIG : 0;
}

/* ---- the roles (as kvnode.c's start_master and start_peer) ---- */

static int start_master(struct kvn_embed *e, char *err, size_t errlen)
{
	char path[4096];
	struct master_opts mo;
	const struct kvn_conf *c = &e->conf;

	snprintf(path, sizeof path, "%s/master.db", c->node_data_dir);
	master_opts_from_conf(&mo, c, path);
	e->master_loop = actor_loop_new("master");
	e->db_loop = actor_loop_new("db");
	int rc = master_start(e->master_loop, e->db_loop, &mo, &e->master, err, errlen);
	return rc < 0 ? rc : rc ? KVN_EDB : 0;
}

static int start_peer(struct kvn_embed *e, char *err, size_t errlen)
{
	struct peer_opts po;
	const struct kvn_conf *c = &e->conf;

	peer_opts_from_conf(&po, c);
	peer_opts_disk_from_conf(&po, c, &e->peer_db, &e->disk_loop);
	/* the master's loop, as in kvnode's all-in-one node (kvnode.c says
	 * why: a thread wake-up per message costs more than the work) */
	int rc = peer_start(e->master_loop, &po, &e->peer, err, errlen);
	if (rc)
		return rc < 0 ? rc : KVN_EIO;
	/* the same messages as over a connection, through a mailbox */
	peer_set_master(e->peer, actor_id_of(e->master));
	/* the same-host path, with no socket: the clients' links are its
	 * local connections (docs/embedding.md, "The local path");
	 * peer.local_socket = off turns it off here as in the daemon */
	if (strcmp(c->peer_local_socket, "off") != 0 &&
	    peer_local_open_inproc(e->peer, c->peer_local_staging, err, errlen) != 0)
		log_warn("embed: %s; clients send values as messages", err);
	return 0;
}

/* Only when asked (kvn_embed_options.listen): sockets for other processes'
 * clients, authenticated as kvnode's are.  Without them the peer secret
 * and the client secret are never needed. */
static int start_listeners(struct kvn_embed *e, char *err, size_t errlen)
{
	const struct kvn_conf *c = &e->conf;
	struct net_opts no;
	const char *files[2] = { c->auth_peer_secret_file, c->auth_client_secret_file };
	struct auth_keyring *rings[2] = { &e->peer_kr, &e->client_kr };

	for (int i = 0; i < 2; i++) {
		if (access(files[i], F_OK) != 0 && auth_keygen(files[i], err, errlen) != 0)
			return KVN_EIO;
		if (auth_keyring_load(rings[i], files[i], err, errlen) != 0)
			return KVN_EAUTH;
	}
	e->master_pol.peer = &e->peer_kr;
	e->master_pol.client = &e->client_kr;
	snprintf(e->master_pol.server_id, sizeof e->master_pol.server_id, "%s", c->node_id);
	e->peer_pol.client = &e->client_kr;
	snprintf(e->peer_pol.server_id, sizeof e->peer_pol.server_id, "%s", c->node_id);
	net_opts_from_conf(&no, c, c->peer_max_connections);
	if (net_listen(e->peer, c->peer_listen, &e->peer_pol, &no, &e->peer_lst, err, errlen) != 0)
		return KVN_ECONN;
	net_opts_from_conf(&no, c, c->master_max_connections);
	if (net_listen(e->master, c->master_listen, &e->master_pol, &no, &e->master_lst, err, errlen) != 0)
		return KVN_ECONN;
	master_set_listener(e->master, e->master_lst);
	return 0;
}

/* ---- stop ---- */

static void stop_loop(struct actor_loop *l, int started)
{
	if (!l || !started)
		return;
	actor_loop_stop(l);
	actor_loop_join(l);
}

struct leave_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, status;
};

static void leave_done(void *arg, int status)
{
	struct leave_wait *w = arg;
	pthread_mutex_lock(&w->mu);
	w->done = 1;
	w->status = status;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* peer.flush_on_stop with a disk tier: the peer writes its DRAM values to
 * disk and leaves the master, as a kvnode all-in-one node does on SIGTERM;
 * bounded by peer.stop_timeout (and a second past it, should the peer's
 * loop never answer). */
static void flush_and_leave(struct kvn_embed *e)
{
	struct leave_wait w = { .done = 0 };
	uint64_t deadline = kvn_now_ms() + e->conf.peer_stop_timeout;

	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	int rc = peer_leave(e->peer, deadline, leave_done, &w);
	if (rc == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ms = e->conf.peer_stop_timeout + 1000;
		ts.tv_sec += (time_t)(ms / 1000);
		ts.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&w.mu);
		while (!w.done && pthread_cond_timedwait(&w.cv, &w.mu, &ts) == 0)
			;
		int done = w.done;
		pthread_mutex_unlock(&w.mu);
		if (!done)
			log_warn("embed: the peer did not finish its flush within peer.stop_timeout; stopping");
		else if (w.status)
			log_warn("embed: flush on close: %s", kvn_strerror(w.status));
		/* not answered: the loops stop below before w goes away; leave_done
		 * can no longer run once the peer's loop is joined */
		if (!done) {
			stop_loop(e->master_loop, 1);
			e->master_stopped = 1;
		}
	} else {
		log_warn("embed: cannot flush on close: %s", kvn_strerror(rc));
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
}

static void embed_free(struct kvn_embed *e)
{
	if (e->dir) {
		pthread_mutex_lock(&e->dir->mu);
		e->dir->closed = 1;
		pthread_mutex_unlock(&e->dir->mu);
	}
	if (e->started && e->peer && e->conf.peer_flush_on_stop && e->conf.peer_disk_size > 0)
		flush_and_leave(e);
	/* kvnode.c's order: the disk writer before its peer (its writes read
	 * the peer's pages), the SQLite writer last (it commits what the
	 * master handed it) */
	stop_loop(e->disk_loop, e->started);
	stop_loop(e->master_loop, e->started && !e->master_stopped);
	stop_loop(e->db_loop, e->started);
	net_listener_free(e->peer_lst);
	net_listener_free(e->master_lst);
	actor_loop_free(e->disk_loop);
	actor_loop_free(e->master_loop);
	actor_loop_free(e->db_loop);
	auth_keyring_wipe(&e->peer_kr);
	auth_keyring_wipe(&e->client_kr);
	if (e->dir)
		embed_dir_unref(e->dir);
	free(e->peer_db);
	if (e->lock_fd >= 0)
		close(e->lock_fd);
	kvn_conf_fini(&e->conf);
	free(e);
}

/* ---- the API ---- */

int kvn_embed_connect(struct kvn_embed *e, struct kvn_client **out)
{
	struct kvn_conf conf;

	if (!e || !out)
		return KVN_EINVAL;
	kvn_conf_copy(&conf, &e->conf);
	embed_dir_ref(e->dir);
	struct client_connector cx = { .connect = embed_connect, .release = embed_dir_unref, .ref = embed_dir_ref,
				       .local_map = embed_local_map, .local_unmap = embed_local_unmap,
				       .arg = e->dir };
	/* pings the master, as kvn_connect does: the node answers */
	return client_connect_with(&conf, &cx, out);
}

struct embed_dir *embed_dir_of(struct kvn_embed *e)
{
	return e->dir;
}

struct kvn_client *kvn_embed_client(struct kvn_embed *e)
{
	return e ? e->client : NULL;
}

/* Whether {dir}/LOCK names this process (the lock, not the pid, decides
 * who holds it: this only words the refusal). */
static int lock_is_ours(const char *dir)
{
	char path[4096], buf[32] = "";
	snprintf(path, sizeof path, "%s/LOCK", dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int got = fgets(buf, sizeof buf, f) != NULL;
	fclose(f);
	return got && strtol(buf, NULL, 10) == (long)getpid();
}

int kvn_embed_open(const struct kvn_embed_options *opt, struct kvn_embed **out)
{
	struct kvn_embed *e;
	char err[1024];
	int rc;

	if (!out)
		return KVN_EINVAL;
	*out = NULL;
	e = kvn_xcalloc(1, sizeof *e);
	e->lock_fd = -1;
	err[0] = '\0';
	rc = embed_conf(opt, &e->conf, err, sizeof err);
	if (rc == 0)
		rc = kvn_datadir_lock_fd(e->conf.node_data_dir, &e->lock_fd, err, sizeof err);
	if (rc == KVN_EBUSY && lock_is_ours(e->conf.node_data_dir))
		snprintf(err + strlen(err), sizeof err - strlen(err),
			 " (that process is this one: another kvn_embed handle has it open)");
	if (rc == 0)
		rc = start_master(e, err, sizeof err);
	if (rc == 0)
		rc = start_peer(e, err, sizeof err);
	if (rc == 0 && opt && opt->listen)
		rc = start_listeners(e, err, sizeof err);
	if (rc) {
		char d[1100];
		snprintf(d, sizeof d, "kvn_embed_open: %s", err[0] ? err : kvn_strerror(rc));
		client_set_last_detail(d);
		embed_free(e);
		return rc;
	}
	e->dir = embed_dir_new();
	e->dir->master = actor_id_of(e->master);
	e->dir->peer = actor_id_of(e->peer);
	e->dir->peer_actor = e->peer;
	snprintf(e->dir->node_id, sizeof e->dir->node_id, "%s", e->conf.node_id);
	if (e->db_loop)
		actor_loop_start(e->db_loop);
	if (e->disk_loop)
		actor_loop_start(e->disk_loop);
	actor_loop_start(e->master_loop);
	e->started = 1;
	log_info("embedded kvnode: node %s, data_dir %s%s", e->conf.node_id, e->conf.node_data_dir,
		 e->master_lst ? ", listening" : ", no listener");
	rc = kvn_embed_connect(e, &e->client);
	if (rc) {
		char d[900];
		snprintf(d, sizeof d, "kvn_embed_open: the node does not answer: %s", kvn_last_detail(NULL));
		client_set_last_detail(d);
		embed_free(e);
		return rc;
	}
	*out = e;
	return 0;
}

void kvn_embed_close(struct kvn_embed *e)
{
	if (!e)
		return;
	/* first: its async puts drain into the running node */
	kvn_close(e->client);
	e->client = NULL;
	embed_free(e);
}

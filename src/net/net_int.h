/*
 * net_int: declarations shared by the files of src/net/ only.
 */
#ifndef KVN_NET_INT_H
#define KVN_NET_INT_H

#include <event2/util.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <pthread.h>
#include <uthash.h>

#include "base/base.h"
#include "net/net.h"

int tcp_resolve(const char *addr, int passive, struct sockaddr_storage *ss, socklen_t *sslen);
void tcp_format_addr(const struct sockaddr *sa, char *out, size_t cap);
void tcp_tune(int fd, const struct net_opts *o);
int tcp_connect_start(const char *addr, const struct net_opts *o, int *fd_out);
int tcp_connect_result(int fd);

struct conn;
/* The listener's accounting, shared with its connections so either may go
 * first: authenticated connections (against max_connections) and, apart,
 * the ones still in the handshake, oldest first (against max_preauth and
 * max_preauth_per_ip).  Connections may live on other loops than the
 * listener's (net_opts.spread): every field is under mu. */
struct net_counter {
	pthread_mutex_t mu;
	uint32_t open;    /* authenticated */
	/* ... of which by the role they proved (AUTH_ROLE_*), for stats */
	uint32_t open_by_role[AUTH_ROLE_INTERNAL + 1];
	uint32_t refs;
	uint32_t preauth; /* length of pre */
	TAILQ_HEAD(, conn) pre;
	/* every warning about this listener's connections (refused, dropped,
	 * rejected, timed out): a flood of bad connections is a few lines */
	struct kvn_ratelimit rl;
};

/* Wrap an accepted socket in a proxy actor owned by owner; the connection
 * holds a reference on cnt and stays on its pre-auth list until it
 * authenticates (then counts itself open) or ends. */
int conn_accept(struct actor *owner, int fd, const char *remote, const struct auth_policy *pol,
		const struct net_opts *o, struct net_counter *cnt);
/* The same on loop `loop` (the calling thread's), for an owner on another
 * loop that has a lock (actor_set_lock). */
int conn_accept_on(struct actor_loop *loop, struct actor *owner, int fd, const char *remote,
		   const struct auth_policy *pol, const struct net_opts *o, struct net_counter *cnt);
void net_stat_inc_refused(void);

/* ---- connections (conn.c, conn_read.c, attach.c) ---- */

#define IBUF_CAP (WIRE_MAX_META + 64 * 1024)
#define DIRECT_MIN (16 * 1024)          /* payload reads this big skip the staging buffer */
#define READ_BUDGET (8ull << 20)         /* socket bytes per callback before yielding */
#define INFLIGHT_SWEEP_AT 1024

enum { C_CONNECTING = 1, C_HANDSHAKE, C_UP, C_DOWN, C_CLOSED };
enum { R_HDR = 0, R_META, R_PAY, R_TAG };
enum { P_BUF = 0, P_SINK, P_DISCARD };

struct inflight {
	uint64_t wire_corr;
	uint16_t type;
	actor_id src;
	uint64_t corr;
	uint64_t expire_ms;
	UT_hash_handle hh;
};

struct conn {
	struct actor *self;
	actor_id owner;
	int outgoing;
	int state;
	int fd;
	struct event *rev, *wev, *timer, *reap;
	struct net_opts o;
	char addr[128];  /* outgoing: where to dial */
	char remote[128]; /* for logs */
	/* auth */
	int role;                      /* outgoing: ours; inbound: the peer's, once authenticated */
	char node_id[AUTH_ID_MAX + 1]; /* outgoing: ours; inbound: the peer's */
	char server_id[AUTH_ID_MAX + 1];
	struct auth_secret secret;     /* outgoing only */
	const struct auth_keyring *ring; /* outgoing: NULL, or where secret is refreshed from */
	const struct auth_policy *pol; /* inbound only */
	struct auth_hs hs;
	struct auth_session *sess;
	struct auth_tag *tin, *tout;
	/* output */
	struct evbuffer *out;
	int read_paused, closing, flush_then_close;
	int failing; /* inside conn_fail: a re-entrant call does nothing */
	TAILQ_HEAD(, actor_msg) queued;
	uint32_t nqueued;
	/* input */
	uint8_t *ibuf;
	size_t rpos, wpos;
	uint64_t budget;
	int drained; /* the last read came back short: the socket is empty */
	/* header + metadata bytes of the last frame when its payload was read
	 * directly (0 otherwise): the first read of the next frame asks for
	 * that much, so a run of large frames does not copy 16 KiB of each
	 * payload through ibuf (conn_fill) */
	size_t head_hint;
	int rstate;
	struct wire_hdr h;
	uint8_t hraw[WIRE_HDR_LEN];
	uint8_t *meta;
	uint64_t pay_left;
	int pmode, sink_err;
	struct actor_sink sink;
	int sidx;
	size_t soff;
	/* sink.nseg > 0: the run being hashed, the iovec index it ends before,
	 * and the XXH3 state (XXH3_state_t, made on first use) */
	int hseg, hseg_end;
	void *xs;
	actor_id pdst;
	struct evbuffer *pbuf;
	/* requests we forwarded, by the corr we put on the wire */
	struct inflight *inflight;
	uint64_t next_corr;
	struct kvn_backoff backoff; /* reconnects: o.backoff_min_ms .. o.backoff_max_ms */
	int down_logged;
	struct net_counter *cnt;
	/* inbound: on cnt->pre until authenticated, then counted in cnt->open */
	TAILQ_ENTRY(conn) pre_link;
	int on_pre, counted;
	int link_published; /* conn_link_publish put its grant material out */
	int owner_elsewhere; /* accepted onto another loop than its owner's */
	size_t src_len;               /* remote[0..src_len): the source address, without the port */
	char who[KVN_Q_CAP];          /* node_id for logs, kvn_str_q (conn_who) */
	struct kvn_ratelimit rl;      /* outgoing: its warnings (inbound: cnt->rl) */
};

extern struct net_stats net_stats_g;
#define NSTAT_ADD(f, n) __atomic_add_fetch(&net_stats_g.f, (n), __ATOMIC_RELAXED)

/* conn.c */
void conn_fail(struct conn *c, int err); /* never frees c: see conn.c */
void conn_flush(struct conn *c);
int conn_write_msg(struct conn *c, struct actor_msg *m);
void conn_send_hs(struct conn *c, uint16_t type, struct wire_w *w, int status);
void conn_arm_timer(struct conn *c, uint64_t ms);
void conn_fail_msg(struct actor_msg *m, int err);
const char *conn_who(const struct conn *c); /* the quoted node_id, or "?" */
void conn_set_node_id(struct conn *c, const char *id);
/* Whether a warning about c may be logged now (*suppressed: how many were
 * dropped since the last one); inbound ones share their listener's limit. */
int conn_log_ok(struct conn *c, uint64_t *suppressed);
/* The tail of a rate-limited line: " (N similar lines suppressed)", or "". */
#define CONN_SUPP(n) conn_supp_text((char[64]){ 0 }, (n))
const char *conn_supp_text(char out[64], uint64_t n);
/* Leave the pre-auth pool (authenticated, or ending); idempotent. */
void conn_preauth_leave(struct conn *c);
/* An authenticated connection on another loop than its owner's publishes
 * its grant material for net_link_material (conn_up), and withdraws it when
 * it ends (conn_fini). */
void conn_link_publish(struct conn *c);
/* The conn inside a proxy actor, or NULL for another kind of actor. */
struct conn *conn_of(struct actor *a);
void conn_link_withdraw(struct conn *c);
void conn_notify_owner(struct conn *c, uint16_t type, int status);
/* conn_read.c */
void conn_reset_frame(struct conn *c);
void conn_abort_sink(struct conn *c);
void conn_read_cb(evutil_socket_t fd, short what, void *arg);
/* sim.c: a sim link end's shared material (KVN_EINVAL: not a sim end) */
int sim_link_material(struct actor *a, const char *label, uint8_t out[AUTH_MAC_LEN]);
/* How conn.c reaches it: sim.c is test-only and the client library leaves
 * it out, so net_sim_new() sets this hook (NULL before any simulation). */
extern int (*net_sim_material)(struct actor *a, const char *label, uint8_t out[AUTH_MAC_LEN]);
/* attach.c */
void conn_start_handshake(struct conn *c);
void conn_up(struct conn *c);
void conn_reject(struct conn *c, int err, const char *why);
void conn_hs_server(struct conn *c);
void conn_hs_client(struct conn *c);

#endif

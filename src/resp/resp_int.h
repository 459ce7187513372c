/*
 * resp_int: what the files of src/resp/ share: the gateway, its worker
 * threads and connections (resp_srv.c), the command table and the batched
 * execution of a parse round (resp_cmd.c), and the informational commands
 * (resp_info.c).
 */
#ifndef KVN_RESP_INT_H
#define KVN_RESP_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "base/accept_guard.h"
#include "base/base.h"
#include "resp/resp.h"

struct event_base;
struct event;
struct evbuffer;
struct kvn_client;

/* Gateway-wide counters (INFO stats), bumped atomically by the workers. */
#define RESP_STATS_FIELDS(X)                                                              \
	X(total_connections_received, "connections accepted")                           \
	X(rejected_connections, "connections refused over resp.max_clients")           \
	X(total_commands_processed, "commands answered")                                \
	X(keyspace_hits, "GET/MGET keys found")                                           \
	X(keyspace_misses, "GET/MGET keys not found")                                     \
	X(total_error_replies, "error replies sent")                                     \
	X(batches, "kvnode batch calls made for pipelined GET/MGET and SET/MSET runs")   \
	X(batched_keys, "keys in those calls")

struct resp_stats {
	RESP_STATS_FIELDS(KVN_STAT_FIELD)
};
#define RESP_COUNT(srv, f, n) __atomic_add_fetch(&(srv)->st.f, (n), __ATOMIC_RELAXED)

struct resp_worker;

struct resp_srv {
	struct kvn_conf conf;        /* the gateway's own copy */
	struct auth_keyring ring;    /* auth.client_secret_file: AUTH tokens */
	struct resp_limits lim;
	/* before AUTH only PING, HELLO, AUTH and QUIT answer, so a request
	 * that could not be one of them is refused from its header instead
	 * of buffered: an unauthenticated connection holds at most this */
	struct resp_limits lim_noauth;
	struct kvn_accept_guard guard; /* out of descriptors: pause accepting, not spin */
	struct resp_worker *w;
	size_t nw;
	uint32_t nconns;             /* open connections (atomic) */
	uint64_t connected_ms;       /* a worker's last successful connect (atomic) */
	uint64_t next_id;            /* connection ids (atomic) */
	uint64_t start_ms;
	/* SET NX/XX check, then put: exclusive; every other write (SET, MSET,
	 * DEL) shared, so the check and the put of a conditional set see no
	 * write of this gateway between them */
	pthread_rwlock_t cond_lock;
	struct resp_stats st;
};

struct resp_conn {
	struct resp_worker *w;
	struct resp_conn *prev, *next;
	int fd;
	struct event *rd, *wr;
	char *in;
	size_t in_len, in_cap;
	struct evbuffer *out;
	uint64_t id;
	int authed;
	int proto;      /* 2 or 3 (HELLO 3) */
	int closing;    /* close once out is written (QUIT, a protocol error) */
	int reading;    /* rd is added */
	char name[128]; /* CLIENT SETNAME */
	/* MULTI: the queued commands, re-encoded (resp_multi.c) */
	int multi, mq_bad, in_exec;
	struct evbuffer *mq;
	size_t mq_n;
	char addr[64];
};

struct resp_worker {
	struct resp_srv *srv;
	int idx;
	pthread_t th;
	struct event_base *base;
	int notify[2];             /* the acceptor writes fds; -1 stops */
	struct event *notify_ev;
	struct resp_conn *conns;
	struct kvn_client *c;      /* NULL until first needed, or after a failed connect */
	uint64_t retry_ms;         /* no connect attempt before this (kvn_now_ms) */
	uint64_t fail_ms;          /* when the last connect failed */
	struct kvn_backoff bo;     /* its distance: doubling, with jitter, reset on success */
	int last_err;              /* why the last connect failed */
	struct resp_argv av;       /* the arguments of one parse round */
	struct kvn_ratelimit rl;   /* connect failures in the log */
	struct kvn_ratelimit rl_auth; /* refused AUTHs in the log */
};

/* One parsed command: av.a[arg0 .. arg0 + argc). */
struct resp_cmd {
	size_t arg0, argc;
};

/* ---- resp_cmd.c ---- */
/* Run cmds[0..n) of connection c in order, batching runs of GET/MGET and
 * of SET/MSET into kvnode batch calls, replies appended to c->out.  Stops
 * after a command that sets c->closing.  Returns how many ran. */
size_t resp_exec(struct resp_conn *c, const struct resp_cmd *cmds, size_t n);
/* The worker's client of the cluster, connecting when there is none (at
 * most once per 500 ms while connects fail): 0, or the error of the last
 * attempt. */
int resp_client(struct resp_worker *w, struct kvn_client **out);
/* "-ERR ..." (or -OOM, -NOAUTH ...) for a kvnode error. */
void resp_put_kvn_error(struct resp_conn *c, int rc);

typedef int (*resp_handler)(struct resp_conn *c, const struct resp_arg *a, size_t n);
struct resp_cmd_def {
	const char *name;  /* lower case, as COMMAND shows it */
	int arity;         /* Redis's: n exact, -n at least n */
	const char *flags; /* COMMAND's flags, space separated; "noauth": runs before AUTH */
	int first, last, step;
	resp_handler fn;   /* NULL: GET, MGET, SET, MSET (resp_exec batches them) */
};
extern const struct resp_cmd_def resp_cmd_defs[];
extern const size_t resp_ncmd_defs;

/* ---- resp_multi.c ---- */
int resp_cmd_multi(struct resp_conn *c, const struct resp_arg *a, size_t n);
int resp_cmd_exec(struct resp_conn *c, const struct resp_arg *a, size_t n);
int resp_cmd_discard(struct resp_conn *c, const struct resp_arg *a, size_t n);
/* Inside MULTI: queue the command a[0..n) (d: its definition, NULL when
 * unknown) and answer +QUEUED or why not: 1.  0: not queued, run it (not
 * in MULTI, or EXEC, DISCARD, MULTI, QUIT). */
int resp_multi_queue(struct resp_conn *c, const struct resp_arg *a, size_t n, const struct resp_cmd_def *d);
void resp_multi_free(struct resp_conn *c);

/* ---- resp_info.c ---- */
int resp_cmd_info(struct resp_conn *c, const struct resp_arg *a, size_t n);
int resp_cmd_command(struct resp_conn *c, const struct resp_arg *a, size_t n);
int resp_cmd_config(struct resp_conn *c, const struct resp_arg *a, size_t n);
int resp_cmd_hello(struct resp_conn *c, const struct resp_arg *a, size_t n);
int resp_cmd_client(struct resp_conn *c, const struct resp_arg *a, size_t n);
int resp_cmd_scan(struct resp_conn *c, const struct resp_arg *a, size_t n);
int resp_cmd_dbsize(struct resp_conn *c, const struct resp_arg *a, size_t n);
/* Check an AUTH token: 0 with c authenticated (nothing answered), or -1
 * after answering -WRONGPASS (c no longer authenticated, as Redis). */
int resp_auth(struct resp_conn *c, const struct resp_arg *tok);
/* Case-insensitive compare of an argument with a word. */
int resp_is(const struct resp_arg *a, const char *word);

#endif

/*
 * net: everything that crosses a process boundary.  Owns the frame codec and
 * metadata encoding (wire.c), authenticated connections on libevent that act
 * as proxy actors so a message to a remote actor travels transparently
 * (conn.c, conn_read.c, attach.c, tcp.c; link.c: key material of a link for
 * its owner), the in-memory fault-injecting transport for tests (sim.c)
 * and the RDMA probe (rdma.c, only with HAVE_RDMA).
 *
 * Frame = header (32 bytes, little-endian) | metadata | payload | tag (16,
 * Poly1305, on every frame after the attach handshake, over the header, the
 * metadata and, in integrity mode frame, the payload).  Every length is
 * checked before anything is allocated.
 */
#ifndef KVN_NET_H
#define KVN_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "actors/actor.h"
#include "auth/auth.h"
#include "base/base.h"

/* The runtime marks senders with its own constants; they are auth roles. */
_Static_assert(ACTOR_ROLE_NONE == AUTH_ROLE_NONE && ACTOR_ROLE_INTERNAL == AUTH_ROLE_INTERNAL,
	       "actor roles are auth roles");

#define WIRE_MAGIC 0x314e564bu /* "KVN1" as little-endian bytes */
/* 2: items with checksum and TTL, results with checksum.  3: HELLO and
 * CHALLENGE carry the integrity mode (auth.integrity); in header mode a
 * frame's tag leaves its payload out. */
/* 4: events and full-sync entries carry queue flags; LEASE, RELEASE,
 * RENEW. */
/* 5: the STAT reply ends with the master's uptime, version, request and
 * key hit/miss counters and its listener's connections. */
#define WIRE_VERSION 5
#define WIRE_HDR_LEN 32
#define WIRE_TAG_LEN AUTH_TAG_LEN
#define WIRE_MAX_META (64u * 1024u)
#define WIRE_MAX_KEY 1024u

/* Message types, numbered in blocks per role.  Values are on the wire: never
 * renumber.  Replies reuse the request's type with WIRE_F_REPLY. */
enum wire_type {
	/* attach handshake (never tagged) */
	WIRE_HELLO = 1,
	WIRE_CHALLENGE = 2,
	WIRE_PROOF = 3,
	WIRE_ACCEPT = 4,
	WIRE_REJECT = 5,
	/* master */
	WIRE_PING = 16,
	WIRE_PEER_ATTACH = 17,
	WIRE_HEARTBEAT = 18,
	WIRE_EVENTS = 19,
	WIRE_FULL_SYNC = 20,
	WIRE_ROUTE_PUT = 21,
	WIRE_ROUTE_GET = 22,
	WIRE_STAT = 23,
	WIRE_DURABLE = 25, /* one-way master -> peer: events up to seq are in master.db */
	WIRE_PEER_LEAVE = 26, /* peer -> master: stopping on purpose, drop my locations now */
	WIRE_LEASE = 27,   /* client -> master: lease queue samples of a partition */
	WIRE_RELEASE = 28, /* client -> master: end leases (consume, retain or return) */
	WIRE_RENEW = 29,   /* client -> master: extend leases' deadlines */
	/* client -> master: one page of the index's keys from a cursor; a new
	 * type, no older layout changed, so WIRE_VERSION stays (an older
	 * master refuses it) */
	WIRE_LIST = 30,
	/* peer */
	WIRE_PUT = 64,
	WIRE_GET = 65,
	WIRE_EXISTS = 66,
	WIRE_REMOVE = 67,
	WIRE_DROP_GEN = 68,
	WIRE_ALLOC_SLOT = 69,
	WIRE_COMMIT_SLOT = 70,
	WIRE_ABORT_SLOT = 71,
	WIRE_RESOLVE_KEY = 72,
	WIRE_PIN = 73,       /* items + TTL: keep these values from eviction and offload */
	WIRE_UNPIN = 74,     /* items: end their pins */
	WIRE_EVICT_KEY = 75, /* items: drop these values from DRAM (refused: pinned, leased) */
	/* same-host clients (docs/protocol.md, "Same-host path"); new types, no
	 * layout of an older message changed, so WIRE_VERSION stays: an older
	 * peer refuses them and the client stays on TCP */
	WIRE_LOCAL_MAP = 76,     /* host identity, socket path; on the Unix socket a map token */
	WIRE_LOCAL_GET = 77,     /* items: read leases and arena extents instead of bytes */
	WIRE_LOCAL_RELEASE = 78, /* one-way: end read leases (many ids per frame) */
	WIRE_LOCAL_PUT = 79,     /* u64 staging offset + a PUT's metadata; bytes in staging */
	WIRE_TYPE_MAX_WIRE = 127,
	/* in-process only (>= 0x8000): rejected by the decoder */
	WIRE_INTERNAL = 0x8000,
	NET_UP = 0x8001,   /* proxy -> owner: connection authenticated */
	NET_DOWN = 0x8002, /* proxy -> owner: connection closed; status says why */
	NET_CLOSE = 0x8003, /* anyone -> proxy: close (net_close) */
};
const char *wire_type_name(int type);
int wire_type_known(int type);

enum wire_flags {
	WIRE_F_REPLY = 1, /* a reply to the request with the same corr */
	/* With REPLY, on a GET sent to the master: the master did not serve it
	 * and the metadata is the ROUTE_GET reply for the same keys. */
	WIRE_F_ROUTES = 2,
};
#define WIRE_F_KNOWN (WIRE_F_REPLY | WIRE_F_ROUTES)
_Static_assert(WIRE_F_REPLY == ACTOR_F_REPLY, "the runtime's reply flag is the wire's");

struct wire_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t flags;
	uint16_t type;
	uint32_t meta_len;
	int32_t status; /* replies: 0 or KVN_E* */
	uint64_t payload_len;
	uint64_t corr; /* correlation id; 0 = one-way */
};

void wire_hdr_encode(const struct wire_hdr *h, uint8_t out[WIRE_HDR_LEN]);
/* Decode and validate: magic (KVN_EPROTO), version (KVN_EVERSION), known wire
 * type (KVN_EPROTO), meta_len <= WIRE_MAX_META and payload_len <= max_payload
 * (KVN_ETOOBIG).  Nothing is allocated. */
int wire_hdr_decode(const uint8_t in[WIRE_HDR_LEN], uint64_t max_payload, struct wire_hdr *h);

/* Metadata writer: little-endian scalars and length-prefixed byte strings.
 * Errors are sticky (w->err), so encoders check once at the end.  The
 * buffer grows up to WIRE_MAX_META (beyond: KVN_ETOOBIG). */
struct wire_w {
	uint8_t *buf;
	uint32_t len, cap;
	int err;
};
void wire_w_init(struct wire_w *w);
void wire_w_fini(struct wire_w *w);
void wire_w_u8(struct wire_w *w, uint8_t v);
void wire_w_u16(struct wire_w *w, uint16_t v);
void wire_w_u32(struct wire_w *w, uint32_t v);
void wire_w_u64(struct wire_w *w, uint64_t v);
void wire_w_raw(struct wire_w *w, const void *p, uint32_t n);   /* fixed size, no prefix */
void wire_w_bytes(struct wire_w *w, const void *p, uint32_t n); /* u32 length + bytes */
void wire_w_str(struct wire_w *w, const char *s);               /* u16 length + bytes */
/* u16 length + key; a key outside 1..WIRE_MAX_KEY sets KVN_EKEYLEN. */
void wire_w_key(struct wire_w *w, const void *k, size_t n);

/* Metadata reader over a buffer it does not own; errors sticky (KVN_EPROTO,
 * or KVN_EKEYLEN for a bad key). */
struct wire_r {
	const uint8_t *p;
	uint32_t len, off;
	int err;
};
void wire_r_init(struct wire_r *r, const void *p, uint32_t len);
uint8_t wire_r_u8(struct wire_r *r);
uint16_t wire_r_u16(struct wire_r *r);
uint32_t wire_r_u32(struct wire_r *r);
uint64_t wire_r_u64(struct wire_r *r);
/* Pointer into the buffer (not copied), or NULL on error. */
const uint8_t *wire_r_raw(struct wire_r *r, uint32_t n);
const uint8_t *wire_r_bytes(struct wire_r *r, uint32_t max, uint32_t *n);
/* Copies into out (cap bytes incl. NUL); too long or containing NUL: error. */
void wire_r_str(struct wire_r *r, char *out, size_t cap);
const uint8_t *wire_r_key(struct wire_r *r, uint16_t *n);
/* 0 when no error and every byte consumed, else KVN_EPROTO (or the error). */
int wire_r_end(const struct wire_r *r);

/* Attach the writer's buffer to m as its metadata (ownership moves to m; the
 * writer is reset).  Returns the writer's error, if any (then m is
 * unchanged and the writer still owns its buffer). */
int wire_w_to_msg(struct wire_w *w, struct actor_msg *m);

/* ---- connections (conn.c, tcp.c) -----------------------------------------
 * A connection is a proxy actor on its owner's loop.  Sending a message to
 * the proxy writes it as a frame; a request (corr != 0) is remembered so its
 * reply, when it arrives, goes back to whoever sent the request (with the
 * caller's corr restored), and if the connection dies first that sender gets
 * a KVN_ECONN reply at once instead of waiting for its deadline.  Frames that
 * are not replies go to the owner with src = the proxy, so the owner replies
 * with actor_reply() and the reply travels back over the same connection.
 * The owner gets NET_UP when the connection is authenticated (meta: u8 role,
 * str node_id, str remote address) and NET_DOWN when it closes (status =
 * reason). */

/* Warnings about one listener's (or one outgoing) connections: at most this
 * many per interval, then one line saying how many were dropped.  Public:
 * an operator (and t/preauth) can count on a flood being a few lines. */
#define NET_WARN_INTERVAL_MS 10000
#define NET_WARN_BURST 10

struct net_opts {
	uint64_t connect_timeout_ms;   /* default 5000 */
	uint64_t handshake_timeout_ms; /* default 2000 */
	uint64_t max_payload;          /* frames above are refused; default 64 MiB */
	int reconnect;                 /* outgoing: reconnect with backoff */
	uint64_t backoff_min_ms;       /* default 100 */
	uint64_t backoff_max_ms;       /* default 5000 */
	uint32_t max_conns;            /* listener: authenticated ones; refuse beyond; default 1024 */
	/* Listener: connections not yet authenticated have a pool of their own,
	 * so idle sockets with no secret never keep an authenticated one out.
	 * Beyond either bound the oldest (idle first) of the pool or of the
	 * source address is closed to make room.  Defaults 256 and 32. */
	uint32_t max_preauth;
	uint32_t max_preauth_per_ip;
	uint64_t write_timeout_ms;     /* no write progress this long: close; default 30000 */
	uint64_t max_outq;             /* stop reading input above this many queued bytes */
	uint32_t max_queued;           /* messages queued while not yet connected */
	char tcp_congestion[16];       /* TCP_CONGESTION of every socket; "": the kernel's */
	uint64_t tcp_sndbuf;           /* SO_SNDBUF of every socket; 0: the kernel's autotuning */
	/* enum kvn_integrity: whether frame tags cover the payload (frame) or
	 * only the header and metadata (header, the default: payloads are
	 * covered by the value checksums in the metadata, which the receiving
	 * role checks).  Both ends must agree: the handshake refuses a
	 * mismatch with KVN_ECONFIG. */
	int integrity;
	/* Listener: the loops accepted connections are spread over, round
	 * robin (NULL: the owner's own).  Connections on another loop than the
	 * owner's deliver to it by message and ask its payload sink under its
	 * lock: the owner must have one (actor_set_lock) and outlive the
	 * loops.  The array is the caller's and must outlive the listener. */
	struct actor_loop *const *spread;
	int nspread;
	/* Listener: enum kvn_metric_role (base/metrics.h): its connections
	 * count their replies, bytes and themselves in the process's metrics
	 * registry under it.  0 (the default, and every outgoing
	 * connection): not counted. */
	int metrics_role;
};
void net_opts_default(struct net_opts *o);
/* A listener's options from the node's config: the defaults, then the
 * handshake deadline, payload limit, connection and pre-auth caps, TCP
 * tuning and integrity mode of c (max_conns: the role's own cap). */
void net_opts_from_conf(struct net_opts *o, const struct kvn_conf *c, uint64_t max_conns);
/* Whether this process may give its TCP sockets congestion control cc (a
 * scratch socket tries it): 0, or KVN_ECONFIG with the reason in err. */
int net_check_congestion(const char *cc, char *err, size_t errlen);
/* The send buffer a socket really gets for SO_SNDBUF = bytes (the kernel
 * doubles it and caps it at net.core.wmem_max), tried on a scratch socket;
 * 0 when it cannot tell. */
uint64_t net_effective_sndbuf(uint64_t bytes);

struct net_creds {
	int role;            /* AUTH_ROLE_PEER or AUTH_ROLE_CLIENT */
	const char *node_id; /* 1..64 printable bytes */
	const struct auth_secret *secret;
	/* NULL, or a live keyring (auth_keyring_reload) whose first secret
	 * each new attach uses instead: a reloaded peer.secret takes effect
	 * at the next reconnect */
	const struct auth_keyring *ring;
};

/* Open an outgoing authenticated connection owned by `owner` (call on the
 * owner's loop thread).  *proxy can be sent to at once: messages wait (up to
 * max_queued) until the connection is up.  Without reconnect, a failed
 * connect or a closed connection ends the proxy (NET_DOWN, then sends to it
 * fail with KVN_ECLOSED).  0 or KVN_EINVAL (bad address). */
int net_connect(struct actor *owner, const char *addr, const struct net_creds *cr,
		const struct net_opts *o, actor_id *proxy);
/* Close a proxy (queued output is flushed first, bounded by write_timeout). */
void net_close(actor_id proxy);
/* Cut a connection: output is dropped, a payload being received into a sink
 * is aborted, in-flight calls fail with err.  On `loop`'s thread for a
 * connection of that loop, all of it before this returns (0).  A connection
 * on another loop (net_opts.spread) is told by message and does it on its
 * own thread, later (0).  KVN_ECLOSED: no such connection (any more). */
int net_abort(struct actor_loop *loop, actor_id proxy, int err);

/* 32 bytes that both ends of the link through `proxy` (an actor on loop)
 * can compute and nobody else: derived from the connection's session keys
 * under label (auth_session_material), or a sim link's random secret.  For
 * per-attachment keys that must never travel (grants).  0, KVN_EINVAL (not
 * a connection or sim link: an actor of this process) or KVN_ECONN. */
int net_link_material(struct actor_loop *loop, actor_id proxy, const char *label, uint8_t out[AUTH_MAC_LEN]);

/* addr "unix:/path": a Unix stream socket (same host only).  Connections
 * accepted on one say NET_UNIX_REMOTE as their remote address (NET_UP). */
#define NET_UNIX_PREFIX "unix:"
#define NET_UNIX_REMOTE "unix:local"
struct net_listener;
/* Listen on addr; each accepted connection that authenticates against pol
 * becomes a proxy delivering to owner.  pol must outlive the listener. */
int net_listen(struct actor *owner, const char *addr, const struct auth_policy *pol,
	       const struct net_opts *o, struct net_listener **out, char *err, size_t errlen);
/* The bound port (useful with port 0). */
uint16_t net_listener_port(const struct net_listener *l);
void net_listener_free(struct net_listener *l);
/* A listener's connection accounting, which outlives the listener while
 * referenced: net_listener_counter takes a reference (release it with
 * net_counter_put, from any thread), net_counter_read gives the
 * connections open now.  For stats (the master's STAT reply). */
struct net_counter;
struct net_conn_count {
	uint32_t open;      /* authenticated, every role */
	uint32_t masters, peers, clients; /* ... of which by the role they proved */
	uint32_t handshake; /* accepted, not authenticated yet */
};
struct net_counter *net_listener_counter(struct net_listener *l);
void net_counter_read(struct net_counter *c, struct net_conn_count *out);
void net_counter_put(struct net_counter *c);

/* Where a frame's payload goes.  An owner whose actor_ops has a sink hook is
 * asked, before the payload is read, for iovecs covering exactly payload_len
 * bytes; the connection then reads the bytes straight into them (no
 * intermediate buffer) and delivers the message with sink_cookie set.  See
 * actor_ops.sink in actors/actor.h. */
/* The process-wide connection counters (every listener and every outgoing
 * connection), one line each; see KVN_STAT_FIELD in base/base.h. */
#define NET_STATS_FIELDS(X)                                                     \
	X(frames_in, "frames read")                                             \
	X(frames_out, "frames queued for writing")                              \
	X(bytes_in, "socket bytes read")                                        \
	X(bytes_out, "socket bytes written")                                    \
	X(auth_fail, "handshakes or frame tags that failed authentication")     \
	X(proto_err, "malformed frames or handshake messages")                  \
	X(conns_open, "connections up now (a gauge)")                           \
	X(conns_accepted, "inbound connections accepted")                       \
	X(conns_refused, "inbound connections refused by the limits")
struct net_stats {
	NET_STATS_FIELDS(KVN_STAT_FIELD)
};
void net_get_stats(struct net_stats *st);
/* fn(arg, name, doc, value) for each counter of st, in list order. */
void net_stats_each(const struct net_stats *st, kvn_stat_fn fn, void *arg);

/* ---- simulated network (sim.c) -------------------------------------------
 * For tests: links between actors on one loop through a seeded scheduler
 * that can drop, delay, duplicate and reorder messages, and partition nodes.
 * The same seed replays the same run. */
struct net_sim_faults {
	uint32_t drop_pm;  /* per mille */
	uint32_t dup_pm;
	uint32_t delay_pm; /* messages delayed by 1..max_delay_ms */
	uint32_t max_delay_ms;
};
struct net_sim;
struct net_sim *net_sim_new(uint64_t seed, const struct net_sim_faults *f);
void net_sim_free(struct net_sim *s);
/* A proxy on from's loop whose messages reach `to` through the simulated
 * network; replies come back the same way.  `from_node`/`to_node` name the
 * endpoints for partitions.  src_role is what `to` sees as m->src_role. */
int net_sim_connect(struct net_sim *s, struct actor *from, int from_node, actor_id to, int to_node,
		    int src_role, actor_id *proxy);
/* Cut (on = 1) or heal every link touching node. */
void net_sim_partition(struct net_sim *s, int node, int on);
#define NET_SIM_STATS_FIELDS(X)                                                 \
	X(sent, "messages sent into the simulated network")                     \
	X(delivered, "messages delivered")                                      \
	X(dropped, "messages dropped by the fault plan")                        \
	X(duplicated, "messages duplicated")                                    \
	X(delayed, "messages delayed")                                          \
	X(cut, "messages lost to a partition")
struct net_sim_stats {
	NET_SIM_STATS_FIELDS(KVN_STAT_FIELD)
};
void net_sim_get_stats(const struct net_sim *s, struct net_sim_stats *st);
void net_sim_stats_each(const struct net_sim_stats *st, kvn_stat_fn fn, void *arg);
/* Deterministic random numbers from the sim's seed (for workloads). */
uint64_t net_sim_rand(struct net_sim *s);

/* ---- RDMA (rdma.c) -------------------------------------------------------- */
#ifdef HAVE_RDMA
/* Number of RDMA devices present (0 when none: TCP is used). */
int net_rdma_devices(void);
#else
static inline int net_rdma_devices(void) { return 0; }
#endif

#endif

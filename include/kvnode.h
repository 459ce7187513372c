/*
 * kvnode client API (libkvnode).
 *
 * A kvn_client talks to one kvnode cluster: it asks the master where a key
 * lives and moves the bytes directly to or from the peer that owns it.  Every
 * call has a deadline (client.timeout) and returns within it.  A kvn_client is
 * not thread-safe: use one per thread (they are cheap; connections are per
 * client).  Keys are binary-safe, 1..KVN_MAX_KEY bytes.
 *
 * All functions return 0 (or a documented non-negative value) on success and
 * a negative KVN_E* code on failure; kvn_strerror() gives the text.
 *
 * The library changes no signal disposition and never raises SIGPIPE: a
 * node that dies while a call writes to it is KVN_ECONN.
 */
#ifndef KVNODE_H
#define KVNODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVN_MAX_KEY 1024

/* Error codes.  The wire carries them as-is, so never renumber. */
enum kvn_err {
	KVN_OK = 0,
	KVN_EINVAL = -1,     /* invalid argument */
	KVN_ENOMEM = -2,     /* out of memory */
	KVN_ENOTFOUND = -3,  /* no such key */
	KVN_ENOSPC = -4,     /* this node has no room for the value */
	KVN_EFULL = -5,      /* no node in the cluster has room */
	KVN_ETOOBIG = -6,    /* value larger than max_value_size or any node */
	KVN_EKEYLEN = -7,    /* key empty or longer than KVN_MAX_KEY */
	KVN_ETIMEDOUT = -8,  /* deadline passed */
	KVN_EAUTH = -9,      /* authentication failed */
	KVN_EPROTO = -10,    /* malformed or unexpected frame */
	KVN_ECONN = -11,     /* cannot connect, or connection lost */
	KVN_ESTALE = -12,    /* that generation no longer exists */
	KVN_EBUSY = -13,     /* overloaded: queue or mailbox full */
	KVN_ECLOSED = -14,   /* shutting down / handle closed */
	KVN_EIO = -15,       /* local I/O error */
	KVN_EDB = -16,       /* metadata store error */
	KVN_ECONFIG = -17,   /* bad configuration */
	KVN_EPEERDOWN = -18, /* the peer holding the key is unavailable */
	KVN_EVERSION = -19,  /* protocol version mismatch */
	KVN_ENOPEER = -20,   /* no peer attached to the master */
	KVN_EPERM = -21,     /* permission problem (e.g. secret file mode) */
	KVN_ESTATE = -22,    /* operation refused in the object's current state */
	KVN_ERANGE = -23,    /* caller's buffer too small */
	KVN_EEXIST = -24,    /* already exists */
	KVN_ECORRUPT = -25,  /* checksum mismatch: the bytes read are not the bytes written */
	KVN_EHELD = -26,     /* the value is pinned or leased: not evicted */
	KVN_EROFS = -27,     /* the node's disk tier is read-only (a write or fsync failed) */
	KVN_ERR_MIN = -27,
};

const char *kvn_strerror(int err);

/* ---- logging ----
 *
 * The library writes nothing to stderr, or anywhere, unless the host asks:
 * by default its log is off.  kvn_set_log(level, fn) passes every line at
 * `level` or more severe (KVN_LOG_ERROR the most severe) to fn, or, with
 * fn NULL, writes it to stderr (one write(2) per line);
 * kvn_set_log(KVN_LOG_OFF, NULL) turns it off again.  A line reads
 *   2026-11-26T00:16:03.123Z WARN  [client] message
 * (UTC time, level, the library thread's name), without the newline.
 * fn runs on whichever thread logs, the caller's or one of the library's
 * own, possibly on several at once: it must be thread-safe, must not block
 * for long, and must not call this library.
 *
 * kvn_set_log may be called at any time, from any thread, while clients
 * run: level and sink are each switched atomically, so every line goes
 * whole to the old or to the new sink, never elsewhere.  A line being
 * logged when it returns may still reach the old fn: keep an old fn
 * callable for as long as the process may log (e.g. a static function).
 * Returns 0, or KVN_EINVAL for a level outside KVN_LOG_OFF..KVN_LOG_DEBUG
 * (nothing changes then). */
enum kvn_log_level {
	KVN_LOG_OFF = -1, /* no lines at all (the library's default) */
	KVN_LOG_ERROR = 0,
	KVN_LOG_WARN,
	KVN_LOG_INFO,
	KVN_LOG_DEBUG,
};
typedef void (*kvn_log_fn)(int level, const char *line);
int kvn_set_log(int level, kvn_log_fn fn);

struct kvn_client;

/* Connection options.  Any NULL/0 field takes its value from the config file
 * (config_path, default "etc/kvnode.conf" if it exists) and then from the
 * built-in defaults. */
struct kvn_options {
	const char *config_path; /* NULL: etc/kvnode.conf when present */
	const char *master;      /* "host:port" */
	const char *secret_file; /* client secret file */
	const char *node_id;     /* name shown in the master's logs */
	uint64_t timeout_ms;     /* per-call deadline */
};

/* Connect to the master and authenticate.  On success *out owns a client that
 * kvn_close() frees.  Errors: KVN_ECONN, KVN_EAUTH, KVN_ETIMEDOUT, KVN_ECONFIG.
 * KVN_EAUTH also when the client secret file is refused before any
 * connection (missing, unreadable, group- or world-accessible, no valid
 * secret); kvn_last_detail(NULL) names the file and the reason. */
int kvn_connect(const struct kvn_options *opt, struct kvn_client **out);
/* Drain in-flight operations, close every connection and free.  NULL is ok.
 * Async puts still in flight are waited for (each until its deadline at
 * most) and the callbacks of those that succeed run before kvn_close
 * returns; failures not yet taken with kvn_poll_failures() are dropped.
 * Submissions (kvn_submit_*) are waited for too, each until its deadline
 * at most, and completions not reaped are dropped.
 * Never call it from a completion callback. */
void kvn_close(struct kvn_client *c);
/* Text of the last error's detail (e.g. the config key at fault); never NULL. */
const char *kvn_last_detail(const struct kvn_client *c);

/* Round trip to the master: rtt in microseconds and peers attached. */
int kvn_ping(struct kvn_client *c, uint64_t *rtt_us, uint32_t *peers);

enum kvn_put_flags {
	/* Acknowledge only after the master's SQLite COMMIT (synchronous=FULL).
	 * Without it the put is acknowledged once the master has applied it to
	 * its index: visible to every later get, but not yet on the master's disk. */
	KVN_PUT_DURABLE = 1,
	/* A sample of the consumer queue (kvn_lease): durable (implies
	 * KVN_PUT_DURABLE), never evicted from a node's memory without a disk
	 * copy, handed out by kvn_lease until a kvn_release consumes it. */
	KVN_PUT_QUEUE = 2,
	/* With KVN_PUT_QUEUE: kvn_release keeps the value (readable by key and
	 * by ref afterwards) instead of deleting it.  Alone: KVN_EINVAL. */
	KVN_PUT_RETAIN = 4,
};
/* Any other flag bit is refused with KVN_EINVAL (kvn_put*, kvn_batch_put,
 * kvn_put_async, kvn_commit_slots).  A NULL key is KVN_EINVAL; an empty or
 * too long one KVN_EKEYLEN.  A put reports what stopped it: KVN_EFULL when
 * the master finds no node with room (after those that said so),
 * KVN_ENOSPC when the node tried last had none and no retry was left,
 * KVN_ECONN when the nodes it could use were unreachable. */

/* KVN_EAUTH from a put: the peer refused the master's grant for it (the
 * grant expired on the way, e.g. clocks minutes apart; docs/protocol.md). */
/* Right after a master start a put waits, within the call's deadline, for a
 * peer to attach (KVN_ENOPEER only if none does in time). */
int kvn_put(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
	    unsigned flags);
/* As kvn_put; on success *gen (optional; 0 on failure) gets the generation
 * stored.  Generations of a key only grow; {key, gen} names exactly this
 * value (a ref) for kvn_get_gen().  Concurrent puts of one key all succeed:
 * the newest generation wins, and an older one that arrives after it is
 * overwritten at once (it counts as written just before the newer one; a
 * get by its ref answers KVN_ESTALE). */
int kvn_put_gen(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
		unsigned flags, uint64_t *gen);
/* Options of a put (kvn_put_opts, kvn_batch_put_opts).  A NULL pointer is
 * all zero. */
struct kvn_put_opts {
	unsigned flags;  /* in: enum kvn_put_flags */
	/* in: the value expires this many ms after it is stored (0: never; at
	 * most 10 years, else KVN_EINVAL).  An expired value reads as
	 * KVN_ENOTFOUND and its space is reclaimed. */
	uint64_t ttl_ms;
	uint64_t gen;    /* out (kvn_put_opts only): as kvn_put_gen's *gen */
};
/* As kvn_put_gen with the options of *o (optional). */
int kvn_put_opts(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
		 struct kvn_put_opts *o);

/* Every put sends the value's XXH3-64 checksum, computed once by the
 * client; the node keeps it with the value, and every get checks the bytes
 * it received against the checksum the node sends with them.  A mismatch
 * is KVN_ECORRUPT for that item (also in batches, speculative reads and
 * reads through the master), counted in the client's corrupt_gets: the
 * bytes are never reported as the value, though the caller's buffer may
 * hold them (a malloc'd one of kvn_get_alloc or kvn_batch_get is freed). */

/* Copy the value into buf (cap bytes).  *vlen gets the value's size; if it is
 * larger than cap, returns KVN_ERANGE and copies nothing.  After any other
 * error buf may hold bytes that were read and then discarded (a speculative
 * read the route did not confirm: docs/architecture.md; bytes that failed
 * their checksum: KVN_ECORRUPT).  Right after a
 * master restart, a key written before it may wait until the nodes have
 * re-synced (KVN_ETIMEDOUT past the deadline, never a stale value). */
int kvn_get(struct kvn_client *c, const void *key, size_t klen, void *buf, size_t cap,
	    size_t *vlen);
/* As kvn_get, but only generation gen of the key (from kvn_put_gen,
 * kvn_resolve or kvn_commit_slots): never the bytes of another generation.
 * KVN_ESTALE: that generation no longer exists (superseded, or gone from
 * its node while the call ran); KVN_ENOTFOUND: the master knows no
 * generation of the key (removed, evicted, or its node was lost).
 * Neither is retried (a plain kvn_get re-routes on KVN_ESTALE because it
 * asks for the latest value).  gen 0 is KVN_EINVAL. */
int kvn_get_gen(struct kvn_client *c, const void *key, size_t klen, uint64_t gen, void *buf, size_t cap,
		size_t *vlen);
/* As kvn_get into a malloc'd buffer the caller frees. */
int kvn_get_alloc(struct kvn_client *c, const void *key, size_t klen, void **val, size_t *vlen);
/* 1 if the key exists, 0 if not, or a negative error. */
int kvn_exists(struct kvn_client *c, const void *key, size_t klen);
int kvn_remove(struct kvn_client *c, const void *key, size_t klen);

/* One item of a batch.  Inputs: key, klen, and for put val/vlen, for get
 * val/cap (buffer) or val = NULL to have it malloc'd.  Outputs: status (0 or
 * KVN_E*), vlen (get), exists (exists).  kvn_batch_get with val = NULL: on
 * success val points to a malloc'd copy of the value (at least 1 byte, also
 * for an empty value) that the caller frees with free(); on failure val
 * stays NULL.  An item with a buffer keeps it (never freed or replaced);
 * a value larger than cap is KVN_ERANGE with vlen set, the other items of
 * the batch unaffected. */
struct kvn_item {
	const void *key;
	size_t klen;
	void *val;
	size_t vlen;
	size_t cap;
	int status;
	int exists;
};

/* Batches send one message per destination node with the transfers to
 * different nodes in flight together.  Each returns 0 when every item
 * succeeded, otherwise the first item error; per-item results are in
 * items[i].status. */
int kvn_batch_put(struct kvn_client *c, struct kvn_item *items, size_t n, unsigned flags);
/* As kvn_batch_put with the options of *o (optional) for every item; o->gen
 * is not written. */
int kvn_batch_put_opts(struct kvn_client *c, struct kvn_item *items, size_t n, const struct kvn_put_opts *o);
int kvn_batch_get(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_batch_exists(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_batch_remove(struct kvn_client *c, struct kvn_item *items, size_t n);
/* ---- pins and eviction ----
 *
 * Each routes its keys through the master and sends one request per
 * destination peer, like kvn_batch_remove; per-item results in
 * items[i].status (key, klen in; nothing else is read or written).
 *
 * kvn_batch_pin keeps each key's current value where it is: in its node's
 * memory it is neither evicted nor offloaded to disk (a value already
 * only on the disk tier stays there) until kvn_batch_unpin or until ttl_ms
 * pass, whichever comes first.  The node cuts ttl_ms to its
 * peer.pin_ttl_max, so a pin of a client that died still ends.  ttl_ms 0 is
 * KVN_EINVAL (nothing is sent).  A pin holds one generation: a newer put
 * of the key is not pinned.
 * kvn_batch_unpin ends the pins of each key's current value.
 * kvn_batch_evict drops each key's value from its node's memory now (to
 * its disk tier when it has one, else the value is gone), as the eviction
 * loop would: KVN_EHELD when it is pinned or leased (nothing changes).
 * Per item also: KVN_ENOTFOUND (no such key), KVN_EKEYLEN, KVN_EINVAL (a
 * NULL key), KVN_ECONN, KVN_EPEERDOWN, ...  n 0 is 0. */
int kvn_batch_pin(struct kvn_client *c, struct kvn_item *items, size_t n, uint64_t ttl_ms);
int kvn_batch_unpin(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_batch_evict(struct kvn_client *c, struct kvn_item *items, size_t n);

/* How many leading keys of keys[0..n) exist (KV-cache prefix lookups): *count
 * in [0, n].  If the prefix reaches a key that is not a key (empty or over
 * KVN_MAX_KEY: KVN_EKEYLEN; NULL: KVN_EINVAL), that is returned, with
 * *count the existing keys before it; a bad key after the first missing
 * one is not looked at. */
int kvn_exists_prefix(struct kvn_client *c, const struct kvn_item *keys, size_t n, size_t *count);

/* ---- listing keys ----
 *
 * kvn_list returns one page of the keys in the master's index that start
 * with prefix[0..plen) (plen 0: every key; prefix may then be NULL).
 * Start with *cursor = 0 and call again with the cursor each call leaves;
 * the listing is complete when a call leaves *cursor = 0.  A page may hold
 * no key while *cursor is not 0 yet (the master bounds the work of one
 * call): keep calling.
 * - Every key present for the whole listing is returned exactly once; a
 *   key put or removed meanwhile may be returned or not.  A cursor stays
 *   valid across calls of other clients and across a master restart.
 * - Order: the index's own (by a hash of the key), not sorted.
 * - max (1..KVN_LIST_MAX) bounds the keys of one page; more only in the
 *   rare case that more than max keys share one index hash.
 * - The index is the master's view: a key whose TTL ran out is listed until
 *   its node reports it gone.
 * On success *out gets one allocation (the array and the key bytes it
 * points into) that the caller frees with kvn_list_free, and *n its
 * entries; on failure *out is NULL, *n 0 and *cursor unchanged (call again
 * with it).  Errors: KVN_EINVAL (max 0 or over KVN_LIST_MAX, a cursor no
 * call left, NULL out, n or cursor, plen > 0 with a NULL prefix),
 * KVN_EKEYLEN (plen over KVN_MAX_KEY), KVN_ECONN, KVN_ETIMEDOUT (also
 * while a master that just restarted waits for its nodes to re-sync),
 * KVN_EPROTO (a master older than this call), KVN_ETOOBIG (the keys
 * sharing one index hash at the cursor do not fit a reply: only with
 * deliberately colliding keys), ... */
#define KVN_LIST_MAX 10000
struct kvn_listed {
	const void *key; /* klen bytes, inside the allocation */
	size_t klen;
	uint64_t size;   /* the value's size in bytes */
	uint64_t gen;    /* its generation */
};
int kvn_list(struct kvn_client *c, const void *prefix, size_t plen, uint64_t *cursor, size_t max,
	     struct kvn_listed **out, size_t *n);
/* Frees a page of kvn_list.  NULL is ok. */
void kvn_list_free(struct kvn_listed *page);

/* ---- counters ----
 *
 * The value of this client's counter `name` in *value: 0, or KVN_ENOTFOUND
 * for a name it does not have (docs/clients.md lists them).  Among them
 * bounce_bytes: value bytes a get copied through the library's own buffers
 * on their way into the caller's (0 for gets whose bytes went straight
 * into the caller's buffer).  The client's submissions (kvn_submit_*)
 * count in its counters as of their last completion.  Between calls, on
 * the client's thread. */
int kvn_counter(const struct kvn_client *c, const char *name, uint64_t *value);

/* ---- async puts ----
 *
 * kvn_put_async starts a put and returns at once.  The put then makes
 * progress whenever the caller is inside a call of this client (kvn_poll,
 * kvn_drain, kvn_close, or any synchronous call), with kvn_put's routing
 * and bounded retries, and with the client.timeout deadline counted from
 * kvn_put_async.  Puts of the same key started together land in no
 * particular order (the master's generations decide which one wins).
 *
 * - val must stay valid and unchanged until the put is reported: its bytes
 *   are sent from it without a copy.  key is copied.
 * - Success: done(arg, 0) runs, exactly once, only for a put that
 *   succeeded (acknowledged as kvn_put's would be), and only from inside
 *   kvn_poll, kvn_drain or kvn_close on the caller's thread.  The callback
 *   may call this client's functions except kvn_poll, kvn_drain (they
 *   return KVN_EBUSY there) and kvn_close.  done may be NULL.
 * - Failure never calls done.  The put is reported by kvn_poll_failures()
 *   instead, with its arg and why (KVN_ETIMEDOUT, also for a deadline
 *   that passed while its bytes were in flight; KVN_EFULL, KVN_ETOOBIG,
 *   KVN_ECONN, ...).
 * - Once reported either way, the buffer is the caller's again: nothing
 *   reads it afterwards (a put whose deadline passed while its bytes were
 *   in flight has its connection cut first).
 * - At most KVN_ASYNC_MAX puts are outstanding per client: in flight, or
 *   finished and not yet reported.  Beyond, kvn_put_async says KVN_EBUSY. */
#define KVN_ASYNC_MAX 1024

typedef void (*kvn_put_done_fn)(void *arg, int status);

/* 0: started, and exactly one report (done, or a kvn_poll_failures entry)
 * follows.  Otherwise nothing was started: KVN_EINVAL, KVN_EKEYLEN,
 * KVN_ETOOBIG (over max_value_size), KVN_EBUSY (KVN_ASYNC_MAX
 * outstanding), KVN_ECLOSED. */
int kvn_put_async(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
		  unsigned flags, kvn_put_done_fn done, void *arg);
/* Drive async puts for up to timeout_ms (0: only what is ready now): return
 * as soon as a put finished, or at once when a callback is already due or
 * nothing is in flight.  Then run the callbacks of every put that
 * succeeded.  Returns how many callbacks ran (>= 0; a put whose done is
 * NULL is not counted); failures that
 * finished meanwhile wait in kvn_poll_failures().  KVN_EBUSY from inside a
 * callback. */
int kvn_poll(struct kvn_client *c, uint64_t timeout_ms);
/* Wait until no async put is in flight (each is bounded by its deadline),
 * running the success callbacks; returns how many ran (puts with a NULL
 * done are not counted), or KVN_EBUSY from inside a callback. */
int kvn_drain(struct kvn_client *c);

struct kvn_put_failure {
	void *arg;  /* as given to kvn_put_async */
	int status; /* why it failed: a KVN_E* code */
};
/* Take up to cap failed async puts, oldest first: returns how many were
 * written to out. */
size_t kvn_poll_failures(struct kvn_client *c, struct kvn_put_failure *out, size_t cap);
/* Async puts outstanding: in flight, or finished and not yet reported. */
size_t kvn_async_pending(const struct kvn_client *c);

/* ---- submissions: batches that progress in the background ----
 *
 * kvn_submit_get, kvn_submit_put and kvn_submit_exists start the batch
 * call of the same name (kvn_batch_get, kvn_batch_put, kvn_batch_exists)
 * and return at once with its id in *id (ids of a client only grow, from
 * 1).  The batch runs on the client's progress thread, which the first
 * submit starts (a client that never submits has none) and which uses a
 * connection set of its own, so it goes on while the caller does anything
 * else, or nothing.  Finished batches wait as completions until
 * kvn_reap hands them over, on the caller's thread only.
 *
 * - Threads: the submit calls, kvn_fd and kvn_reap are calls of the client
 *   like any other (the client's thread, one call at a time).  The
 *   progress thread runs the batches and nothing of the caller's: no
 *   callback of any kind, and it never touches the client's other calls.
 * - Buffers: the progress thread reads and writes items[0..n), their keys,
 *   values and buffers from the submit until the completion is reaped (or
 *   kvn_close returns): keep them valid and do not touch them meanwhile.
 *   Results are as the batch call's: items[i].status, vlen, exists, and
 *   for a get with val NULL a malloc'd value the caller frees.
 * - Order: submissions of a client run one after another in submit order,
 *   so completions arrive in submit order and a submission sees the
 *   effects of the ones before it.  None is ordered against the client's
 *   synchronous calls or async puts running meanwhile.
 * - Deadline: client.timeout counted from the submit (time waiting behind
 *   other submissions counts); one whose deadline passed before it ran
 *   completes with KVN_ETIMEDOUT in every item.
 * - Bound: at most KVN_SUBMIT_MAX submissions outstanding per client
 *   (queued, running, or completed and not reaped); beyond, KVN_EBUSY.
 * - kvn_close waits for every submission to complete (each bounded by its
 *   deadline), then drops the completions not reaped; the items then hold
 *   their results and belong to the caller again.
 *
 * Returns 0 (started: one completion follows) or, with nothing started
 * and the items untouched: KVN_EINVAL (c, id or, with n > 0, items NULL;
 * an item's key NULL; a put item with vlen > 0 and val NULL; an unknown
 * put flag), KVN_EKEYLEN (a key empty or over KVN_MAX_KEY), KVN_EBUSY,
 * KVN_ENOMEM (the progress thread could not start), KVN_EIO (no eventfd).  n 0 is allowed: it
 * completes with status 0. */
#define KVN_SUBMIT_MAX 1024

enum kvn_op {
	KVN_OP_GET = 1,
	KVN_OP_PUT = 2,
	KVN_OP_EXISTS = 3,
};

/* One finished submission, as kvn_reap hands it over. */
struct kvn_completion {
	uint64_t id;             /* as the submit's *id */
	int op;                  /* enum kvn_op */
	int status;              /* what the batch call returned: 0, or the first item error */
	struct kvn_item *items;  /* as submitted; per-item results in them */
	size_t n;
};

int kvn_submit_get(struct kvn_client *c, struct kvn_item *items, size_t n, uint64_t *id);
/* flags as kvn_batch_put's. */
int kvn_submit_put(struct kvn_client *c, struct kvn_item *items, size_t n, unsigned flags, uint64_t *id);
int kvn_submit_exists(struct kvn_client *c, struct kvn_item *items, size_t n, uint64_t *id);
/* A file descriptor (an eventfd) that is readable while completions wait
 * to be reaped, for poll/epoll/select or an event loop's add_reader.  It
 * becomes readable without any call of the caller's; kvn_reap makes it
 * unreadable again once it took the last completion.  The client owns it:
 * do not read, write or close it (kvn_close does).  The same fd for the
 * client's life; getting it starts no thread.  Async puts
 * (kvn_put_async) never make it readable.  Returns the fd (>= 0), or
 * KVN_EINVAL (c NULL), KVN_EIO (no eventfd). */
int kvn_fd(struct kvn_client *c);
/* Take up to max completions, oldest first, into out: returns how many
 * (0: none waiting; it never waits), or KVN_EINVAL (c NULL; out NULL with
 * max > 0).  Before that it drives async puts as kvn_poll(c, 0) would and
 * runs their due success callbacks (not from inside such a callback). */
int kvn_reap(struct kvn_client *c, struct kvn_completion *out, size_t max);
/* Submissions outstanding: queued, running, or completed and not reaped. */
size_t kvn_submit_pending(const struct kvn_client *c);

/* ---- the three-step put: reserve a slot, fill it, commit (or abort) ----
 *
 * kvn_alloc_slots reserves, on the peer the master places each key on, a
 * slot of exactly `size` bytes under a new generation.  kvn_commit_slots
 * fills it and makes that generation the key's value: once it returns 0,
 * every later get sees it, as after kvn_put.  kvn_abort_slots gives it
 * back.  A slot neither committed nor aborted within the peers'
 * peer.pending_ttl is reclaimed; a commit or abort after that answers
 * KVN_ESTATE, as does a second abort or commit.
 *
 * Over TCP the commit carries the bytes (from val, zero copy, read only
 * during the call).  With RDMA (later), the caller writes the bytes to
 * addr/rkey itself and the commit carries none; the calls stay the same.
 * Each call returns 0 when every slot succeeded, otherwise the first
 * slot's error; per-slot results are in slots[i].status.  Alloc
 * re-routes like a put (a node without room is excluded); commit and abort
 * go to the slot's own peer and are not retried: a commit that failed for
 * a lost connection may be sent again before the slot's TTL ends (then
 * KVN_ESTATE can also mean the first one had committed: kvn_resolve
 * tells). */
struct kvn_slot {
	const void *key;   /* in */
	size_t klen;       /* in */
	uint64_t size;     /* alloc: bytes to reserve.  commit: bytes in val,
			    * must be the reserved size (else KVN_EINVAL and
			    * the slot stays reserved).  resolve: out */
	const void *val;   /* commit over TCP: the bytes */
	/* out of alloc and resolve; in for commit and abort (leave as is) */
	uint64_t gen;
	char node_id[65];
	char node_addr[128];
	uint64_t addr;     /* out of alloc: RDMA address of the slot (0 over TCP) */
	uint32_t rkey;     /* out of alloc: RDMA key (0 over TCP) */
	int status;        /* out: 0 or KVN_E* */
};
/* Per slot: KVN_EKEYLEN, KVN_ETOOBIG, KVN_EFULL (no node has room),
 * KVN_ENOPEER, KVN_ECONN, ... */
int kvn_alloc_slots(struct kvn_client *c, struct kvn_slot *slots, size_t n);
/* flags: KVN_PUT_DURABLE as for kvn_put.  Per slot: KVN_ESTATE (reclaimed
 * after pending_ttl, aborted, committed already, never reserved),
 * KVN_EINVAL (size differs from the reservation), a newer generation of the
 * key committed meanwhile is not an error: the slot's value is overwritten
 * by it at once (0, as for kvn_put). */
int kvn_commit_slots(struct kvn_client *c, struct kvn_slot *slots, size_t n, unsigned flags);
/* Per slot: KVN_ESTATE when it is not reserved (aborted already,
 * committed, reclaimed after pending_ttl). */
int kvn_abort_slots(struct kvn_client *c, struct kvn_slot *slots, size_t n);
/* The current generation and size of each key (gen, size, node_id,
 * node_addr out; KVN_ENOTFOUND per slot when absent): {key, gen} is a ref
 * for kvn_get_gen. */
int kvn_resolve(struct kvn_client *c, struct kvn_slot *slots, size_t n);

/* ---- consumer leases: the queue of samples (docs/queue.md) ----
 *
 * Producers put samples with KVN_PUT_QUEUE.  A consumer of partition
 * part_i of part_n leases up to max samples whose
 * kvn_hash64(key) % part_n == part_i (XXH64 of the key bytes, seed 0),
 * oldest commit first, each for ttl_ms; it fetches each with
 * kvn_get_gen(key, gen) and ends the lease with kvn_release.  A sample has
 * at most one live lease; one whose lease expires goes back to the pool
 * (in its place: commit order) and the lease id is dead: kvn_release or
 * kvn_renew of it answers KVN_ESTATE for that id.  Consumers may change
 * part_n between calls (4 consumers become 3): no sample is leased twice
 * at once and none is lost.
 *
 * A sample whose node died is not handed out (it is counted lost in
 * master.db's v_queue view) until its node returns with it; a lease taken
 * before the node died fails at fetch time: kvn_get_gen answers
 * KVN_EPEERDOWN. */
struct kvn_ref {
	uint64_t lease_id;    /* non-zero */
	uint64_t gen;         /* the sample's generation: fetch it with kvn_get_gen */
	uint64_t size;        /* value bytes */
	uint64_t deadline_ms; /* the lease ends then (master's wall clock, ms since 1970) */
	char node_id[65];     /* the node that holds it */
	size_t klen;
	uint8_t key[KVN_MAX_KEY];
};
/* Lease up to max (1..1024) samples of partition part_i of part_n
 * (1 <= part_n <= 1048576, part_i < part_n) for ttl_ms (1 ms..
 * master.lease_ttl_max; longer is cut to it: see deadline_ms).  *n gets how
 * many refs were written to refs[0..max) (0: none waiting, not an error).
 * KVN_EINVAL for arguments out of range; KVN_EDB when master.db could not
 * record the leases (nothing was leased). */
int kvn_lease(struct kvn_client *c, uint32_t part_i, uint32_t part_n, uint64_t ttl_ms, struct kvn_ref *refs,
	      size_t max, size_t *n);
enum kvn_release_flags {
	/* keep the values (as KVN_PUT_RETAIN would) instead of deleting them */
	KVN_RELEASE_RETAIN = 1,
	/* give the samples back to the pool unconsumed: only the lease ends */
	KVN_RELEASE_RETURN = 2,
};
/* End the leases ids[0..n) (n 1..4096): each sample is consumed (deleted,
 * or kept with KVN_RELEASE_RETAIN or when put with KVN_PUT_RETAIN), or with
 * KVN_RELEASE_RETURN given back.  status (optional, n entries) gets each
 * id's result: 0, or KVN_ESTATE when the lease is unknown, expired or
 * released already (its sample may be leased to someone else by now).
 * Returns 0 when every id succeeded, else the first failure.  Answered
 * only once master.db has recorded it. */
int kvn_release(struct kvn_client *c, const uint64_t *ids, size_t n, unsigned flags, int *status);
/* Extend the leases ids[0..n) to ttl_ms from now (cut as by kvn_lease).
 * status and deadline_ms (optional, n entries each) as kvn_release's;
 * KVN_ESTATE for an id that is not a live lease. */
int kvn_renew(struct kvn_client *c, const uint64_t *ids, size_t n, uint64_t ttl_ms, int *status,
	      uint64_t *deadline_ms);

/* Cluster view for `kvnode stat`. */
struct kvn_node_stat {
	char node_id[65];
	char addr[128];
	int alive;
	uint64_t dram_total, dram_used;
	uint64_t disk_total, disk_used;
	uint64_t objects;
};
/* Fills up to cap entries; *n gets the number of nodes known (may exceed cap).
 * *objects gets the master's committed object count. */
int kvn_stat(struct kvn_client *c, struct kvn_node_stat *nodes, size_t cap, size_t *n,
	     uint64_t *objects);

/* A figure nobody knows now: kvn_stat_cluster's usage of a node that is not
 * alive (the master's last numbers for it are stale, not shown). */
#define KVN_STAT_UNKNOWN UINT64_MAX
/* The master's own figures, for `kvnode stat`. */
struct kvn_cluster_stat {
	uint64_t objects;   /* objects in the master's index */
	uint64_t bytes;     /* their value bytes */
	size_t nodes;       /* nodes the master knows (may exceed kvn_stat_cluster's cap) */
	uint64_t uptime_ms; /* since the master started */
	char version[32];   /* the master's kvnode version (PACKAGE_VERSION) */
	/* requests from clients the master answered since its process
	 * started, one per message whatever its keys: every call of a
	 * client that reaches the master (a connect's ping, route lookups,
	 * gets and puts sent to it, stat, lease, release, renew) */
	uint64_t ops;
	/* keys the master looked up for gets, exists, removes, evicts (its
	 * ROUTE_GET and GET requests): found in its index, or not.  A key
	 * asked again after a retry counts again. */
	uint64_t hits, misses;
	/* the master's listener now: authenticated connections, of which
	 * from peers and from clients, and those still in the handshake;
	 * conns_known 0 (all 0): the master has no listener to count */
	int conns_known;
	uint32_t conns, conns_peers, conns_clients, conns_handshake;
	uint64_t reserved[8]; /* 0; room for more figures without an ABI change */
};
/* Like kvn_stat, with the master's figures in *cs.  nodes (up to cap
 * entries, may be NULL when cap is 0) as kvn_stat's, except that a node
 * which is not alive has dram_total, dram_used, disk_total, disk_used and
 * objects set to KVN_STAT_UNKNOWN. */
int kvn_stat_cluster(struct kvn_client *c, struct kvn_cluster_stat *cs, struct kvn_node_stat *nodes,
		     size_t cap);

#ifdef __cplusplus
}
#endif
#endif

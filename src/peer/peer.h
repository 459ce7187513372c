/*
 * peer: the public face of the peer role, for kvnode.c and tests.
 * peer_start creates the arena and the peer actor; the messages it answers
 * are in docs/protocol.md.  Everything else of the role is in peer_int.h.
 */
#ifndef KVN_PEER_H
#define KVN_PEER_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "actors/actor.h"
#include "base/base.h"

/* ---- peer (peer.c) ---- */
struct peer_opts {
	const char *node_id;
	const char *advertise;  /* address clients dial */
	uint64_t dram_size, page_size;
	int hugepages;
	uint64_t heartbeat_ms, pending_ttl_ms, read_lease_ttl_ms;
	uint64_t max_value_size;
	uint32_t mailbox;
	uint64_t call_timeout_ms; /* deadline of each call to the master */
	/* Tiers ([peer] keys in docs/configuration.md).  evict: enum kvn_evict;
	 * offload: enum kvn_offload (auto: on-evict with a disk tier, else
	 * off).  Zero watermarks, batch, queue limit and pin TTL take the
	 * keys' defaults, so a zeroed peer_opts is a valid configuration. */
	int evict, offload, force_evict, promote_on_hit;
	uint64_t high_watermark, low_watermark; /* parts per million of dram_size */
	uint64_t evict_batch, offload_queue_limit, pin_ttl_max_ms;
	/* Disk tier: none when disk_size is 0.  disk_db: peer.db's path. */
	const char *disk_dir, *disk_db;
	uint64_t disk_size;
	/* Where the disk writer runs: its own loop thread in kvnode (so no
	 * fsync stalls the peer), NULL for the peer's loop (tests,
	 * simulation).  Stop it before the peer's loop: its writes read
	 * arena pages. */
	struct actor_loop *disk_loop;
	int flush_on_stop; /* peer.flush_on_stop: peer_leave's flush step (peer_leave.c) */
	/* Tests only: the bug this design forbids.  When an EVENTS send fails,
	 * forget the events it carried, answer their waiting puts as if the
	 * master had applied them, and renumber later events so no gap shows.
	 * The simulation test turns it on to prove its checker notices. */
	int unsafe_forget_unacked;
};
/* The options the config gives, all but the disk tier's files and loop
 * (disk_dir, disk_db, disk_loop: the caller's) and the test knobs. */
void peer_opts_from_conf(struct peer_opts *o, const struct kvn_conf *c);
/* The disk tier's part (nothing when peer.disk_size is 0): its database
 * {data_dir}/peer.db and a loop of its own, so fsyncs never wait on the
 * peer's loop.  The caller owns what it gets: free(*db_path),
 * actor_loop_free(*loop) once the peer stopped. */
void peer_opts_disk_from_conf(struct peer_opts *o, const struct kvn_conf *c, char **db_path,
			      struct actor_loop **loop);
/* Create the arena and the peer actor on loop.  The peer attaches to
 * `master` (a local actor or a proxy from net_connect) once started. */
int peer_start(struct actor_loop *loop, const struct peer_opts *o, struct actor **out, char *err,
	       size_t errlen);
/* Open the same-host path (peer_local.c) once the peer runs and a Unix
 * listener on path delivers to it: the map side channel on path +
 * ".map", staging regions of staging_len bytes.  Before the loop runs, or
 * on its thread.  0, or an error with err set (the node goes on without). */
int peer_local_open(struct actor *peer, const char *path, uint64_t staging_len, char *err, size_t errlen);
/* Embedded mode (src/embed/): the same-host path with no socket.  The
 * in-process links of embedded clients (NET_UP with remote
 * PEER_INPROC_REMOTE and role CLIENT) become local connections whose
 * staging regions are memory of this process.  As peer_local_open: before
 * the loop runs.  0, or KVN_EINVAL with err set. */
#define PEER_INPROC_REMOTE "in-process"
int peer_local_open_inproc(struct actor *peer, uint64_t staging_len, char *err, size_t errlen);
/* The map step of an in-process link (any thread; takes the peer's lock):
 * the token (32 bytes, PROTO_TOKEN_LEN) LOCAL_MAP gave over the link `link`
 * redeemed, once, within its 5 s, for the arena (read-only) and that
 * link's staging region (writable), wrapped (net_region_wrap).  0 with
 * *pin, which keeps both alive until peer_local_unpin (even past the
 * peer's end); KVN_EAUTH (no such token on that link, used or late). */
struct net_region;
struct peer_local_pin;
int peer_local_redeem(struct actor *peer, uint64_t link, const uint8_t *token, struct net_region *arena,
		      struct net_region *staging, struct peer_local_pin **pin);
void peer_local_unpin(struct peer_local_pin *pin);
/* Tests: the peer's local connections now, those mapped, the read leases
 * they hold, and the key table's read leases of any kind (any thread). */
struct peer_local_counts {
	uint32_t conns, mapped, leases;
	uint64_t kt_leases;
};
void peer_local_counts(struct actor *peer, struct peer_local_counts *out);
/* Tests (loop thread only): visit every committed generation; the peer's
 * key-table counters (leases outstanding, refused transitions, ...). */
typedef void (*peer_dump_fn)(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size);
void peer_dump(struct actor *peer, peer_dump_fn fn, void *arg);
/* The lock the runtime holds around the peer (actor_set_lock): an
 * all-in-one node gives its master the same one. */
pthread_mutex_t *peer_lock(struct actor *peer);
struct keytab_stats;
void peer_keytab_stats(struct actor *peer, struct keytab_stats *st);
/* Tests: flip one bit of the committed value of key in DRAM (a memory
 * error after the bytes were checked on arrival).  KVN_ESTATE when it is
 * not in DRAM or empty. */
int peer_flip_byte(struct actor *peer, const void *key, size_t klen);

/* ---- counters (peer_stats.c) ----
 * Each list declares its counters once (memcached's THREAD_STATS_FIELDS
 * shape): X(name, what it counts).  The struct fields, the snapshot
 * (peer_get_stats) and the text (peer_stats_each, peer_slot_stats_each)
 * are generated from it, so a new counter is one line here. */
#define PEER_STATS_FIELDS(X)                                                                       \
	X(puts, "items stored (PUT and COMMIT_SLOT)")                                              \
	X(gets, "items read (GET)")                                                                \
	X(get_bytes, "value bytes read")                                                           \
	X(put_bytes, "value bytes stored")                                                         \
	X(removes, "keys removed")                                                                 \
	X(events_shipped, "events sent to the master (again after a failed send)")                 \
	X(sync_runs, "full syncs started")                                                         \
	X(waiters_dropped, "replies waiting for the master too long, answered KVN_ETIMEDOUT")      \
	X(receive_aborted, "PUT payloads cut for taking longer than peer.pending_ttl")            \
	X(grants_refused, "put / alloc items refused for their grant")                            \
	X(attach_tries, "PEER_ATTACH requests sent")                                               \
	X(durable_failed, "durable puts answered KVN_EDB (the master's COMMIT failed)")           \
	X(leases_expired, "read leases past peer.read_lease_ttl (peer_lease_tick)")                \
	X(put_corrupt, "items refused KVN_ECORRUPT: their bytes did not match the writer's checksum") \
	X(local_maps, "same-host clients handed the arena and a staging region (map side channel)")  \
	X(local_gets, "items read by same-host clients from the shared arena (LOCAL_GET)")         \
	X(local_puts, "items put from same-host clients' staging regions (LOCAL_PUT)")             \
	X(local_releases, "read leases released by same-host clients (LOCAL_RELEASE)")

/* The slot protocol's counters (peer_slot.c).  Refusals are also reported
 * as one aggregated warning per heartbeat cycle. */
#define PEER_SLOT_STATS_FIELDS(X)                                                                  \
	X(allocs, "slots reserved by ALLOC_SLOT")                                                  \
	X(commits, "slots committed by COMMIT_SLOT")                                               \
	X(aborts, "slots given back by ABORT_SLOT")                                                \
	X(resolves, "keys asked for by RESOLVE_KEY")                                               \
	X(reserved, "gauge: slots reserved by ALLOC_SLOT right now")                               \
	X(refused_late, "COMMIT_SLOT of a slot reclaimed, never reserved or already committed")  \
	X(refused_size, "COMMIT_SLOT whose size is not the reserved size")                        \
	X(refused_busy, "commit/abort while another COMMIT_SLOT fills the slot")                  \
	X(refused_abort, "ABORT_SLOT of a slot not reserved (double abort, after the reaper)")    \
	X(keytab_refused, "key-table refusals seen (e.g. release of an unknown lease)")

/* The tiers' counters (peer_tier.c, peer_cold.c, peer_disk.c). */
#define PEER_TIER_STATS_FIELDS(X)                                                                  \
	X(evict_rounds, "eviction rounds run")                                                     \
	X(evicted_dropped, "values dropped from this node by eviction (no disk copy)")            \
	X(evicted_to_disk, "values whose DRAM copy was freed because they are on disk")           \
	X(put_evictions, "eviction rounds a put ran because it found no room")                    \
	X(skipped, "victims kept in DRAM (offload queue or disk full, work-queue items)")         \
	X(offloaded, "values written to the disk tier")                                            \
	X(offload_bytes, "value bytes written to the disk tier")                                   \
	X(offload_failed, "disk writes that failed (the value stayed in DRAM)")                   \
	X(put_through_skipped, "offload = on-put writes skipped (disk full, read-only, queue full)") \
	X(disk_gets, "gets served from the disk tier")                                             \
	X(disk_read_errors, "disk reads that failed (I/O)")                                        \
	X(checksum_errors, "values dropped: checksum mismatch on a disk read or before a disk write") \
	X(disk_timeouts, "requests answered KVN_ETIMEDOUT while waiting on the disk")             \
	X(disk_remove_lost, "disk files not removed (the next start removes them as orphans)")   \
	X(promoted, "disk hits copied back to DRAM (peer.promote_on_hit)")                        \
	X(expired, "values past their TTL reclaimed")                                              \
	X(evict_requests, "keys asked for by EVICT_KEY")                                           \
	X(pins, "PIN items applied")                                                               \
	X(unpins, "UNPIN items applied")                                                           \
	X(pins_expired, "pins past their TTL")

struct peer_stats {
	PEER_STATS_FIELDS(KVN_STAT_FIELD)
};
struct peer_tier_stats {
	PEER_TIER_STATS_FIELDS(KVN_STAT_FIELD)
};
struct peer_slot_stats {
	PEER_SLOT_STATS_FIELDS(KVN_STAT_FIELD)
};

/* A snapshot of the peer's counters (loop thread only, like peer_dump);
 * either pointer may be NULL. */
void peer_get_stats(struct actor *peer, struct peer_stats *st, struct peer_slot_stats *slots);
void peer_get_tier_stats(struct actor *peer, struct peer_tier_stats *st);
/* Tests, with the disk writer on the peer's loop (peer_opts.disk_loop
 * NULL): inject faults into its disk tier (disk_fault_set: op is an enum
 * disk_op) and read its counters.  KVN_ESTATE otherwise. */
struct disk_stats;
int peer_disk_fault(struct actor *peer, int op, uint32_t skip, uint32_t count, int err);
int peer_disk_stats(struct actor *peer, struct disk_stats *st);
void peer_tier_stats_each(const struct peer_tier_stats *st, kvn_stat_fn fn, void *arg);
/* Each counter by name, in list order: fn(arg, name, what, value). */
void peer_stats_each(const struct peer_stats *st, kvn_stat_fn fn, void *arg);
void peer_slot_stats_each(const struct peer_slot_stats *st, kvn_stat_fn fn, void *arg);

/* ---- a snapshot for monitoring (peer_view.c) ---- */
struct peer_view {
	char node_id[65];
	int attached;       /* the master acknowledged its attach */
	int left;           /* it left the master (clean stop under way) */
	int disk_on, disk_readonly, disk_hung;
	uint64_t dram_total, dram_used, dram_pending; /* arena bytes (pending: puts arriving) */
	uint64_t disk_total, disk_used;
	uint64_t keys;
	struct peer_stats stats;
	struct peer_slot_stats slots;
	struct peer_tier_stats tiers;
};
/* Fill v under the peer's lock (peer_lock): callable from any thread
 * while the peer actor exists; nothing is sent or allocated. */
void peer_view(struct actor *peer, struct peer_view *v);

/* ---- clean stop (peer_leave.c) ----
 * Ask the peer to leave its master before the process stops: flush
 * (peer.flush_on_stop), ship every event not acknowledged yet, then
 * PEER_LEAVE, all before deadline_ms (kvn_now_ms clock).  Callable from any
 * thread.  On 0, done(arg, status) runs exactly once, on the peer's loop
 * thread: 0 (the master dropped this node's locations), KVN_ETIMEDOUT (the
 * deadline passed), KVN_ECONN (not attached: nobody to tell), KVN_EBUSY
 * (a leave is already running), KVN_ECLOSED (the peer was destroyed
 * first), or the master's refusal (KVN_EPERM, KVN_ESTATE).  Else
 * (KVN_EINVAL, KVN_EBUSY: mailbox full, KVN_ECLOSED) done never runs.
 * After the master's answer the peer never attaches again. */
typedef void (*peer_leave_fn)(void *arg, int status);
int peer_leave(struct actor *peer, uint64_t deadline_ms, peer_leave_fn done, void *arg);

/* Point the peer at its master (call on the peer's loop before it runs, or
 * right after creating the proxy). */
void peer_set_master(struct actor *peer, actor_id master);

#endif

/*
 * xfer: the one-sided transport.  A region is memory one side exposes so
 * the other can read or write extents of it without a message per byte:
 * the peer's arena (read by a client under a read lease) and a client's
 * staging region (written by the client, copied by the peer at COMMIT).
 * Messages (RESOLVE, commit, release) still travel on a connection; only
 * the bytes move here.  The shared-memory provider (xfer_shm.c) maps a
 * memfd received over a Unix socket, or wraps memory already mapped in
 * this process (an embedded peer: base and length, no fd, no socket).  An
 * RDMA provider would register the same regions (rkey = region id) and
 * implement read/write with one-sided verbs; the roles do not change.
 * The contract (ownership, when an extent may be read, ordering with
 * COMMIT and RELEASE, errors) is in docs/protocol.md, "One-sided
 * transport".
 */
#ifndef KVN_XFER_H
#define KVN_XFER_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Region ids on the wire (proto_slot_result.rkey, local get replies). */
enum net_region_id { NET_REGION_ARENA = 1, NET_REGION_STAGING = 2, NET_REGION_STAMPS = 3 };

struct net_region {
	uint8_t *base;
	uint64_t len;
	uint32_t id;  /* enum net_region_id */
	int writable; /* this side may write it */
	int mapped;   /* base is our mapping (net_region_unmap unmaps it) */
};

/* A byte range of a region, as the other side named it: range-checked
 * against the region by every call before anything is touched. */
struct net_extent {
	uint64_t off, len;
};

/* Memory this process already has (an in-process peer's arena): nothing is
 * mapped or owned.  KVN_EINVAL for a NULL base or zero length. */
int net_region_wrap(struct net_region *r, void *base, uint64_t len, uint32_t id, int writable);
/* Map len bytes of the memfd fd (shared; read-only unless writable).  The
 * fd stays the caller's.  The file must be at least len bytes and sealed
 * against shrinking (F_SEAL_SHRINK), or a truncate by its owner could make
 * a read fault: KVN_EPROTO otherwise, KVN_ENOMEM when mmap fails. */
int net_region_map(struct net_region *r, int fd, uint64_t len, uint32_t id, int writable);
/* Unmap (a wrapped region is only forgotten).  Idempotent. */
void net_region_unmap(struct net_region *r);

/* Copy the extents ext[0..n), in order, into dst (cap bytes): 0, or
 * KVN_EPROTO when an extent leaves the region or the total exceeds cap.
 * The bytes may change under the copy if the owner reuses them (a lease
 * that expired): a reader of leased extents uses net_xfer_read_stamped,
 * or checks the value's checksum on dst after. */
int net_xfer_read(const struct net_region *r, const struct net_extent *ext, int n, void *dst, uint64_t cap);
/* Copy len bytes of src to offset off of a writable region: 0, KVN_EPERM
 * (read-only) or KVN_EPROTO (outside the region). */
int net_xfer_write(struct net_region *r, uint64_t off, const void *src, uint64_t len);

/* ---- lease stamps ----
 * A stamp region is an array of u64 words, one per lease slot, that only
 * the owner of the leased region writes (the reader maps it read-only).
 * The owner stores a lease's id in its slot when it grants the lease and
 * overwrites it (NET_STAMP_NONE, or the next lease's id: ids are never
 * reused) BEFORE the lease's pages can be freed or reused; the reader
 * copies, then (acquire fence) reads the word: still the lease's id means
 * no byte it copied can have been written for another value.  This is the
 * seqlock pattern, with the owner's free path as the writer side: the
 * stamp store is sequentially consistent, and every reuse of the pages is
 * ordered after it (the free and the next reservation take the store's
 * lock), so a reader that saw any reused byte sees the changed word. */
#define NET_STAMP_NONE 0
#define NET_STAMP_SIZE 8
/* Owner: word slot = id.  0, KVN_EPERM (read-only here) or KVN_EPROTO
 * (slot outside the region). */
int net_stamp_set(struct net_region *r, uint32_t slot, uint64_t id);
/* net_xfer_read, then the stamp check: 0 (dst holds the leased bytes),
 * KVN_ESTALE (the word no longer names lease id: discard dst, the pages
 * may have been reused), or KVN_EPROTO (an extent or the slot outside its
 * region: nothing read). */
int net_xfer_read_stamped(const struct net_region *r, const struct net_extent *ext, int n, void *dst,
			  uint64_t cap, const struct net_region *stamps, uint32_t slot, uint64_t id);

/* ---- memfd and fd passing (xfer_shm.c) ---- */

/* A memfd of len bytes sealed against shrink and grow (so a mapping of it
 * never faults), close-on-exec: 0 with *fd, or KVN_ENOMEM. */
int net_memfd_new(const char *name, uint64_t len, int *fd);
/* A read-only descriptor of the same file (reopened through /proc), for a
 * client that must not be able to map it writable: 0 with *ro, KVN_EIO. */
int net_fd_reopen_ro(int fd, int *ro);

/* The map side channel on a peer's Unix socket path + NET_MAP_SUFFIX.  The
 * client sends NET_MAP_MAGIC (8 bytes) and the 32-byte token it got in the
 * LOCAL_MAP reply on its authenticated connection; the peer answers 8 bytes
 * (u32 status, u32 number of fds) with the fds attached (SCM_RIGHTS) and
 * closes.  A token is single-use and short-lived, so the channel itself
 * needs no secret. */
#define NET_MAP_SUFFIX ".map"
#define NET_MAP_MAGIC "KVNMAP01"
#define NET_MAP_TOKEN 32
#define NET_MAP_MAX_FDS 4
/* Client side, blocking, every step bounded by timeout_ms: 0 with fds[0..
 * *nfds) (the caller's to close), or KVN_ECONN (cannot connect, closed
 * early), KVN_ETIMEDOUT, KVN_EAUTH (the peer refused the token) or
 * KVN_EPROTO. */
int net_map_fetch(const char *path, const uint8_t token[NET_MAP_TOKEN], uint64_t timeout_ms, int *fds,
		  int *nfds);

/* Server side: a listener on path (mode 0600, a stale socket replaced) on
 * base's loop.  For each connection that sends the magic and a token
 * within timeout_ms, fn(arg, token, fds, &nfds) says 0 with the fds to
 * send (still the callee's: they are only duplicated into the message) or
 * an error, which is sent as the status with no fds. */
typedef int (*net_map_fn)(void *arg, const uint8_t token[NET_MAP_TOKEN], int *fds, int *nfds);
struct net_map_srv;
struct event_base;
int net_map_listen(struct event_base *base, const char *path, uint64_t timeout_ms, net_map_fn fn, void *arg,
		   struct net_map_srv **out, char *err, size_t errlen);
/* Whether a live process listens on the Unix socket at path (a socket file
 * that accepts a connection): 1, else 0 (absent, or stale from a process
 * that died).  A listener replaces only a stale one. */
int net_unix_alive(const char *path);
/* Stops listening, drops connections in progress, removes the socket. */
void net_map_srv_free(struct net_map_srv *s);

#endif

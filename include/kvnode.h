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
	KVN_ERR_MIN = -24,
};

const char *kvn_strerror(int err);

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
 * kvn_close() frees.  Errors: KVN_ECONN, KVN_EAUTH, KVN_ETIMEDOUT, KVN_ECONFIG. */
int kvn_connect(const struct kvn_options *opt, struct kvn_client **out);
/* Drain in-flight operations, close every connection and free.  NULL is ok. */
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
};

int kvn_put(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
	    unsigned flags);
/* Copy the value into buf (cap bytes).  *vlen gets the value's size; if it is
 * larger than cap, returns KVN_ERANGE and copies nothing. */
int kvn_get(struct kvn_client *c, const void *key, size_t klen, void *buf, size_t cap,
	    size_t *vlen);
/* As kvn_get into a malloc'd buffer the caller frees. */
int kvn_get_alloc(struct kvn_client *c, const void *key, size_t klen, void **val, size_t *vlen);
/* 1 if the key exists, 0 if not, or a negative error. */
int kvn_exists(struct kvn_client *c, const void *key, size_t klen);
int kvn_remove(struct kvn_client *c, const void *key, size_t klen);

/* One item of a batch.  Inputs: key, klen, and for put val/vlen, for get
 * val/cap (buffer) or val = NULL to have it malloc'd.  Outputs: status (0 or
 * KVN_E*), vlen (get), exists (exists). */
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
int kvn_batch_get(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_batch_exists(struct kvn_client *c, struct kvn_item *items, size_t n);
int kvn_batch_remove(struct kvn_client *c, struct kvn_item *items, size_t n);
/* How many leading keys of keys[0..n) exist (KV-cache prefix lookups): *count
 * in [0, n]. */
int kvn_exists_prefix(struct kvn_client *c, const struct kvn_item *keys, size_t n, size_t *count);

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

#ifdef __cplusplus
}
#endif
#endif

/* cli: the `kvnode --role client` subcommands. */
#ifndef KVN_CLI_H
#define KVN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvnode.h" /* struct kvn_item, shared by the bench targets */

struct kvn_options;
struct kvn_conf;
struct kvn_client;

/* Run one client command (argv[0]: ping, put, get, exists, rm, pin, unpin,
 * evict, stat, lease, release, renew, bench) with the loaded config;
 * conf's strings may be taken.  Returns the exit status. */
int cli_main(int argc, char **argv, struct kvn_conf *conf);

/* ---- cli_usage.c: the one table of commands and their usage ---- */
/* Whether cmd is a client command; their names, comma-separated. */
int cli_cmd_known(const char *cmd);
const char *cli_cmd_names(void);
/* cmd's usage lines ("usage: kvnode --role client ..."). */
void cli_usage(FILE *f, const char *cmd);
/* cmd's usage lines, what it does and its options (COMMAND --help). */
void cli_help(FILE *f, const char *cmd);
/* Every command, one summary each (kvnode --help). */
void cli_usage_list(FILE *f);
/* Whether argv[1..argc) asks for help (-h or --help). */
int cli_help_asked(int argc, char **argv);
/* "kvnode: CMD: <fmt...>" (when fmt) and cmd's usage on stderr;
 * returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- cli_stat.c ---- */
/* stat's arguments (checked before any connection): 0 with *json set, or 2
 * after saying what is wrong. */
int cli_stat_args(int argc, char **argv, int *json);
/* stat [--json]: the exit status. */
int cli_stat_main(struct kvn_client *c, int argc, char **argv);

/* ---- cli_ls.c ---- */
/* ls's arguments (checked before any connection): 0, or 2 after saying
 * what is wrong. */
int cli_ls_args(int argc, char **argv);
/* ls [--prefix P] [--max N]: the keys one per line; the exit status. */
int cli_ls_main(struct kvn_client *c, int argc, char **argv);

/* ---- shared by cli.c and cli_queue.c ---- */
/* "kvnode: WHAT: error (detail)" on stderr; returns rc's exit status. */
int cli_fail(const char *what, int rc, struct kvn_client *c);
/* --ttl D at argv[*i] (a duration, 1 ms to 10 years): 1 with *ttl set and
 * *i past it, 0 when argv[*i] is not --ttl, -1 for a bad value (said). */
int cli_ttl_arg(int argc, char **argv, int *i, uint64_t *ttl);

/* ---- cli_queue.c: lease, release, renew, get --ref ---- */
/* Whether cmd is lease, release or renew. */
int cli_queue_cmd(const char *cmd);
/* Their arguments, checked before any connection: 0, or 2 after saying
 * what is wrong (naming the argument) and how to call it. */
int cli_queue_args(int argc, char **argv);
/* Run one of them: the exit status. */
int cli_queue_main(struct kvn_client *c, int argc, char **argv);
/* A key on a line of the CLI's output: as is when every byte is printable
 * ASCII other than space and it does not start with "hex:", else "hex:"
 * and its bytes in lower-case hex (out: 5 + 2 * klen bytes at least). */
void cli_key_format(char *out, size_t cap, const void *key, size_t klen);
/* Back: "hex:" and an even number of hex digits is those bytes, anything
 * else the bytes as given.  Returns the key's length, 0 if over cap. */
size_t cli_key_parse(const char *s, size_t len, uint8_t *out, size_t cap);
/* get --ref KEY@GEN (split at the last '@', GEN decimal, non-zero): 0, or
 * -1 after saying what is wrong.  key has KVN_MAX_KEY bytes. */
int cli_ref_parse(const char *ref, uint8_t *key, size_t *klen, uint64_t *gen);
/* Fetch exactly that generation into *val (malloc'd, the caller frees):
 * 0, or the exit status after saying why (KVN_ESTALE, KVN_EPEERDOWN
 * explained). */
int cli_get_ref(struct kvn_client *c, const char *ref, void **val, size_t *vlen);

/* argv[0] == "bench".  Returns the process exit status (0 ok, 2 usage, else
 * kvn_err_exit_code).  `conf` is the CLI's finalized config, --set overrides
 * included: every kvnode-target client (one per bench thread) connects with
 * its own copy.  Only read.  Prints results on stdout, diagnostics on
 * stderr. */
int cli_bench(int argc, char **argv, const struct kvn_conf *conf);

/* ---- internal to src/cli: bench.c drives the targets of bench_targets.c ----
 * (STYLE: one header per module folder, so the two files share it here.) */

/* What a target connection needs to know; filled by cli_bench_target_parse
 * and bench.c, copied by connect (nothing in it is kept by reference except
 * `conf`, which must outlive the connection). */
struct cli_bench_cfg {
	const struct kvn_conf *conf; /* kvnode target: the CLI's config, copied per client */
	char host[256];                /* redis / memcached */
	uint16_t port;
	uint64_t timeout_ms;  /* deadline of every wait (socket targets) */
	int timeout_given;    /* kvnode: 1 = use timeout_ms, 0 = opt / config */
	unsigned put_flags;   /* KVN_PUT_DURABLE (kvnode only) */
	size_t max_batch;     /* largest n given to batch_put / batch_get */
	size_t max_klen;      /* longest key the bench sends */
	size_t value_size;    /* expected value size: tunes how replies are read */
};

/* A load-generator target.  Calls on one handle come from one thread.  Every
 * function returns 0 or a negative KVN_E* code; batches return 0 when every
 * item succeeded, else the first item error, with per-item results in
 * items[i].status (and items[i].vlen for gets, which read into
 * items[i].val / items[i].cap).  A get whose value exceeds cap returns
 * KVN_ERANGE; a missing key KVN_ENOTFOUND.  After a transport error (timeout,
 * reset, unparsable reply) a socket target closes its connection and fails
 * every later call with KVN_ECONN. */
struct cli_bench_target {
	const char *name; /* "kvnode", "redis", "memcached" */
	/* On success *out owns a handle that close() frees.  On failure err gets
	 * a message (no secret ever) and nothing is left to free. */
	int (*connect)(const struct cli_bench_cfg *cfg, void **out, char *err, size_t errlen);
	int (*put)(void *h, const void *key, size_t klen, const void *val, size_t vlen);
	int (*get)(void *h, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);
	int (*batch_put)(void *h, struct kvn_item *items, size_t n);
	int (*batch_get)(void *h, struct kvn_item *items, size_t n);
	/* Does the key exist: 1, 0, or a negative KVN_E*.  The batch form sets
	 * items[i].exists (and status); values are neither sent nor read. */
	int (*exists)(void *h, const void *key, size_t klen);
	int (*batch_exists)(void *h, struct kvn_item *items, size_t n);
	/* Detail of the last error (e.g. the server's error line); never NULL,
	 * valid until the next call on h. */
	const char *(*detail)(void *h);
	void (*close)(void *h); /* NULL is ok */
	/* Optional: remove items[0..n) (a missing key is items[i].status
	 * KVN_ENOTFOUND); NULL when bench cannot remove keys there, so it
	 * leaves them and says so. */
	int (*batch_remove)(void *h, struct kvn_item *items, size_t n);
	/* Optional: return once the server has finished the deferred work the
	 * setup's writes caused, so it does not run into the timed phase
	 * (kvnode persists to SQLite after acknowledging a put).  NULL when
	 * the server defers nothing.  client: the calling thread's index, so
	 * that concurrent settles do not race on one key. */
	int (*settle)(void *h, unsigned client);
};

/* bench_sock.c: redis (RESP2) and memcached (text protocol) over a socket. */
extern const struct cli_bench_target cli_bench_redis, cli_bench_memcached;

/* Resolve a --target spec: "kvnode", "redis://HOST:PORT" or
 * "memcached://HOST:PORT" (HOST may be [v6]).  Sets *t and cfg->host/port.
 * Returns 0, or KVN_EINVAL with a message in err. */
int cli_bench_target_parse(const char *spec, const struct cli_bench_target **t,
			   struct cli_bench_cfg *cfg, char *err, size_t errlen);

/* ---- bench_args.c: the command line ---- */
/* exists asks a server like put/get; memcpy, tag and xxh3 run locally
 * (bench_local.c): this machine's ceilings in the same run as the stores. */
/* queue: producers put samples with KVN_PUT_QUEUE while consumers lease,
 * fetch and release them (bench_queue.c). */
enum { OP_PUT, OP_GET, OP_MIXED, OP_MEMCPY, OP_TAG, OP_EXISTS, OP_XXH3, OP_QUEUE, BENCH_OP_COUNT };
#define OP_LOCAL(op) ((op) == OP_MEMCPY || (op) == OP_TAG || (op) == OP_XXH3)
/* ops that read keys a setup put first */
#define BENCH_OP_READS(op) ((op) == OP_GET || (op) == OP_MIXED || (op) == OP_EXISTS)
extern const char *const bench_op_names[BENCH_OP_COUNT];

struct bench_args {
	int op;
	uint64_t size, count, batch, clients, keys, warmup, timeout_ms;
	int keys_given, timeout_given, json, durable, no_populate;
	const char *target;
	/* --op queue: producer threads (consumers are --clients), master.db
	 * to read the commit counter from (NULL: not reported), and whether
	 * to time durable puts alone first */
	uint64_t producers;
	const char *master_db;
	int no_baseline;
	/* --keep: leave the keys written; --prefix: the keys' prefix (NULL:
	 * bench-HOST-PID-), required by --no-populate */
	int keep;
	const char *prefix;
};

/* Returns 0, 1 after printing --help, or 2 after saying what is wrong. */
int bench_parse_args(int argc, char **argv, struct bench_args *a);
/* "kvnode bench: <message> (see --help)" on stderr; returns 2. */
int bench_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- bench_stats.c: measuring tools shared by bench.c ---- */
#define H_BITS 8
#define H_SUB (1u << H_BITS)
#define H_HALF (H_SUB / 2)
#define H_BUCKETS (H_SUB + (64 - H_BITS) * H_HALF)

struct hist {
	uint64_t n, max, sum;
	uint64_t b[H_BUCKETS];
};

void bench_hist_add(struct hist *h, uint64_t v);
void bench_hist_merge(struct hist *into, const struct hist *h);
/* The value at quantile q (0..1), in the unit added. */
uint64_t bench_hist_quantile(const struct hist *h, double q);

#define PATTERN_BLOCK 4096
/* Values: a fixed pseudo-random base stamped per key, so a get can be
 * checked without keeping what was put. */
uint64_t bench_key_tag(uint64_t k);
void bench_pattern_base(unsigned char *v, size_t n);
void bench_pattern_stamp(unsigned char *v, size_t n, uint64_t k);
/* Head and tail stamps only: cheap enough for the timed loop. */
int bench_pattern_quick_ok(const unsigned char *v, size_t n, uint64_t k);
/* Every key a run writes starts with its prefix: --prefix, else
 * "bench-HOST-PID-", so two benches never share a key and no other key is
 * touched.  bench_prefix_ok: 1..BENCH_PREFIX_MAX of [A-Za-z0-9._:/-].
 * bench_prefix_set (given NULL: the default) once before any thread. */
#define BENCH_PREFIX_MAX 64
int bench_prefix_ok(const char *p);
void bench_prefix_set(const char *given);
const char *bench_prefix(void);
#define KEY_CAP 96 /* the prefix + up to 20 digits, and room for a suffix */
/* The prefix and k in decimal at out (KEY_CAP bytes): the key's length. */
size_t bench_key_format(char *out, uint64_t k);
/* The settle marker of client thread `client`: "<prefix>settle-<client>". */
int bench_settle_key(char *out, size_t cap, unsigned client);

/* ---- bench_queue.c: --op queue ---- */
/* The whole run of --op queue (cli_bench hands it over after parsing):
 * returns the exit status as cli_bench does. */
int bench_queue_run(const struct bench_args *a, const struct kvn_conf *conf);

/* ---- bench_local.c: the local baselines (--op memcpy, tag, xxh3) ---- */
struct bench_local;
/* Per-thread state of one local op; err names what failed.  Freed with
 * bench_local_free (NULL ok). */
enum bench_local_kind { BENCH_LOCAL_MEMCPY, BENCH_LOCAL_TAG, BENCH_LOCAL_XXH3 };
int bench_local_new(enum bench_local_kind kind, struct bench_local **out, char *err, size_t errlen);
/* One item: copy n bytes from src to dst, or tag or checksum n bytes of src
 * (dst unused). */
int bench_local_item(struct bench_local *l, const unsigned char *src, unsigned char *dst, size_t n);
void bench_local_free(struct bench_local *l);

#endif

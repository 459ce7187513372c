/*
 * base: what every other module stands on.  Owns the error codes and their
 * text (err.c), leveled logging (log.c), monotonic time, the config table and
 * its parser (conf.c), unit parsing for sizes and durations (units.c), and a
 * few byte helpers (util.c).  Nothing here knows about actors, wire or disks.
 */
#ifndef KVN_BASE_H
#define KVN_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvnode.h" /* public error enum shared with the client API */

/* ---- errors (err.c) ------------------------------------------------------
 * Every function returns 0 or a negative KVN_E* code (include/kvnode.h).
 * kvn_strerror() is the one table of text; kvn_err_exit_code() maps a code to
 * the CLI's exit status so scripts can tell failures apart. */
int kvn_err_exit_code(int err);
const char *kvn_err_name(int err); /* "KVN_ENOTFOUND" */

/* ---- logging (log.c) ------------------------------------------------------
 * Leveled; the macro tests the level before evaluating its arguments.  Never
 * pass a secret, a tag or a session key to these.  The levels and the sink
 * (kvn_set_log: off, stderr or the host's callback) are public, in kvnode.h;
 * off until someone asks (kvnode.c's main, t/tap.h for the tests). */
extern int kvn_log_level_cur;
/* Level only, clamped to ERROR..DEBUG (node.log_level); the sink stays. */
void kvn_log_set_level(int level);
/* Name of the calling thread as it appears in log lines (max 15 chars). */
void kvn_log_set_thread_name(const char *name);
void kvn_log_write(int level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define kvn_log(lvl, ...)                                                   \
	do {                                                                \
		if ((lvl) <= __atomic_load_n(&kvn_log_level_cur, __ATOMIC_RELAXED)) \
			kvn_log_write((lvl), __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)
#define log_error(...) kvn_log(KVN_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) kvn_log(KVN_LOG_WARN, __VA_ARGS__)
#define log_info(...) kvn_log(KVN_LOG_INFO, __VA_ARGS__)
#define log_debug(...) kvn_log(KVN_LOG_DEBUG, __VA_ARGS__)

/* A daemon's log destination (logsink.c; node.log): "stderr" (nothing to
 * do), "syslog" (a kvn_set_log sink at the current level), or a file made
 * this process's stderr.  0, or an error with "node.log = ...: why" in err. */
int kvn_log_sink_open(const char *spec, char *err, size_t errlen);
/* SIGHUP: open the log file again (after logrotate moved it).  0 reopened,
 * 1 not a file (nothing to do), or an error (the old file stays in use). */
int kvn_log_sink_reopen(char *err, size_t errlen);

/* ---- data_dir (datadir.c) ----------------------------------------------------
 * Make dir if needed and take {dir}/LOCK (flock, held until the process
 * exits; the holder's pid written in it).  0; KVN_EBUSY when another process
 * holds it (err names the dir and its pid, and says nothing was changed);
 * KVN_EIO. */
int kvn_datadir_lock(const char *dir, char *err, size_t errlen);
/* The same, and *fd gets the descriptor that holds the lock: closing it
 * releases the lock (an embedded node, closed and opened again in one
 * process). */
int kvn_datadir_lock_fd(const char *dir, int *fd, char *err, size_t errlen);
/* node.pid_file: write this process's pid (a file naming a dead process is
 * replaced; one naming a live one is KVN_EBUSY).  remove: only if it still
 * names this process. */
int kvn_pidfile_write(const char *path, char *err, size_t errlen);
void kvn_pidfile_remove(const char *path);

/* Write one ERROR line and exit(1): to the kvn_set_log callback if there is
 * one, else to stderr even when the log is off (a process that ends must
 * say why).  Start-up failures and impossible states only: never on a path
 * a library host reaches by its input or by a failing network. */
void kvn_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Invariant check that stays on in release builds (never for input checks). */
#define KVN_ASSERT(c)                                                              \
	do {                                                                       \
		if (!(c))                                                          \
			kvn_fatal("%s:%d: invariant failed: %s", __FILE__, __LINE__, #c); \
	} while (0)

/* The largest value any node accepts (node.max_value_size's upper bound):
 * sizes from the wire above it are malformed, whoever sent them. */
#define KVN_VALUE_SIZE_MAX (16ull << 30)

/* ---- time (util.c) -------------------------------------------------------- */
uint64_t kvn_now_ns(void); /* CLOCK_MONOTONIC */
uint64_t kvn_now_ms(void);
/* CLOCK_REALTIME: records, grants' expiry, consumer lease deadlines */
uint64_t kvn_wall_ms(void);
/* Tests only: make kvn_now_ns/ms report *now_ms (a simulated clock), and
 * kvn_wall_ms a fixed origin plus it, until called with NULL.
 * Process-wide; the simulation runs on one thread. */
void kvn_clock_virtual(const uint64_t *now_ms);

/* ---- pacing (pace.c) ------------------------------------------------------
 * Exponential backoff with jitter for every retry and reconnect loop, and a
 * rate limit for every warning that can repeat.  One owner each, no locks. */
struct kvn_backoff {
	uint64_t min_ms, max_ms, cur_ms;
	uint32_t attempts; /* since the last reset */
};
void kvn_backoff_init(struct kvn_backoff *b, uint64_t min_ms, uint64_t max_ms);
void kvn_backoff_reset(struct kvn_backoff *b); /* after a success */
/* The delay before the next attempt, in [step/2, step]; the step doubles up
 * to max_ms. */
uint64_t kvn_backoff_next(struct kvn_backoff *b);
/* 64 random bits for jitter (not for secrets). */
uint64_t kvn_jitter_u64(void);
/* Tests only: a nonzero seed makes kvn_jitter_u64 (and so every backoff)
 * reproducible, for the seeded simulation; 0 restores getrandom. */
void kvn_jitter_seed(uint64_t seed);

struct kvn_ratelimit {
	uint64_t interval_ms, window_start_ms, suppressed;
	uint32_t burst, used;
};
/* At most `burst` lines per `interval_ms`. */
void kvn_ratelimit_init(struct kvn_ratelimit *rl, uint64_t interval_ms, uint32_t burst);
/* 1: log this one (and *suppressed, if not NULL, gets the number dropped
 * since the last line let through); 0: drop it (it is counted). */
int kvn_ratelimit_ok(struct kvn_ratelimit *rl, uint64_t *suppressed);

/* ---- counters (util.c) ----------------------------------------------------
 * Each module declares its counters once, as an X-macro list in memcached's
 * THREAD_STATS_FIELDS shape:
 *     #define NET_STATS_FIELDS(X) X(frames_in, "frames read") ...
 * and generates from that list the struct (KVN_STAT_FIELD), the snapshot
 * (KVN_STAT_LOAD where the live counters are bumped atomically; a struct
 * copy otherwise) and the text output: a visitor *_stats_each(st, fn, arg)
 * calling fn once per counter, in list order (KVN_STAT_VISIT).  Adding a
 * counter is one line in the list.  The generator macros expect the names
 * used in their expansion: `st` (the snapshot), `src` (the live counters),
 * `fn` and `arg` (the visitor). */
typedef void (*kvn_stat_fn)(void *arg, const char *name, const char *doc, uint64_t value);
#define KVN_STAT_FIELD(name, doc) uint64_t name;
#define KVN_STAT_LOAD(name, doc) st->name = __atomic_load_n(&src->name, __ATOMIC_RELAXED);
#define KVN_STAT_VISIT(name, doc) fn(arg, #name, doc, st->name);
/* A kvn_stat_fn writing "name value\n" to arg (a FILE *). */
void kvn_stat_fprint(void *arg, const char *name, const char *doc, uint64_t value);
/* The same lines into a buffer: a kvn_stat_fn whose arg is a struct
 * kvn_stat_text.  rc becomes KVN_ERANGE (and stays) once a line does not
 * fit; buf then holds the whole lines that fitted, NUL-terminated. */
struct kvn_stat_text {
	char *buf;
	size_t cap, len;
	int rc;
};
void kvn_stat_sprint(void *arg, const char *name, const char *doc, uint64_t value);

/* ---- bytes (util.c) ------------------------------------------------------- */
void *kvn_xmalloc(size_t n); /* aborts on OOM: for small bookkeeping only */
void *kvn_xcalloc(size_t n, size_t sz);
char *kvn_xstrdup(const char *s);
/* Cryptographically random bytes (getrandom); 0 or KVN_EIO. */
int kvn_random(void *buf, size_t n);
/* The running kernel's boot id (/proc/sys/kernel/random/boot_id): one per
 * kernel, shared by the containers on it, which is exactly the scope
 * shared memory has (the same-host path).  0, or KVN_EIO. */
int kvn_boot_id(char *out, size_t cap);
/* Write `n` bytes of `s` as lower-case hex into out (2n+1 bytes). */
void kvn_hex(char *out, const void *s, size_t n);
/* Printable form of a binary key for logs: hex if not printable, truncated
 * to fit `cap` (always NUL-terminated). */
void kvn_key_printable(char *out, size_t cap, const void *key, size_t klen);
/* Quote a string that came from outside (a node id, an address, a name
 * from the wire) for a log line: wrapped in double quotes, printable ASCII
 * kept, '"' and '\\' escaped, everything else as \\xNN; truncated with "..."
 * to fit `cap` (>= 8).  A peer can never forge a log line or a terminal
 * escape through it. */
void kvn_str_quote(char *out, size_t cap, const void *s, size_t len);
/* A NUL-terminated string from outside (NULL: "") for a log argument, in a
 * buffer that lives until the end of the enclosing block:
 * log_warn("node %s ...", KVN_Q(n->node_id)).  As it is when it is made of
 * letters, digits, '.', '_' and '-' only (node.id's characters: nothing to
 * mistake), else kvn_str_quote'd.  Room for 64 bytes escaped. */
#define KVN_Q_CAP 272
#define KVN_Q(s) kvn_str_q((char[KVN_Q_CAP]){ 0 }, (s))
const char *kvn_str_q(char out[KVN_Q_CAP], const char *s);
/* Split "host:port" (IPv4, [v6] or name); 0 or KVN_EINVAL.  host has >= 256
 * bytes. */
int kvn_split_hostport(const char *addr, char *host, size_t hostcap, uint16_t *port);
/* xxHash64 with seed 0: the fixed, documented key hash (partitioning, disk
 * file names, hash tables). */
uint64_t kvn_hash64(const void *key, size_t len);
/* XXH3-64 with seed 0: a value's checksum (written by its writer, checked
 * by the peer on arrival, the disk tier and every reader).  On x86 through
 * libxxhash's run-time dispatch (AVX2 / AVX-512 when the CPU has them; the
 * plain XXH3_64bits is the library's SSE2 build, 2.7x slower at 64 KiB
 * here); the same values either way.  kvn_xxh3_update feeds a streaming
 * state (an XXH3_state_t, reset by XXH3_64bits_reset). */
uint64_t kvn_xxh3(const void *p, size_t n);
void kvn_xxh3_update(void *state, const void *p, size_t n);

/* ---- units (units.c) -------------------------------------------------------
 * Sizes: a number with an optional fraction and unit.  K M G T and KiB MiB GiB
 * TiB are powers of 1024; KB MB GB TB are powers of 1000; B or no unit is
 * bytes; size units ignore case.  "1.5G" = 1610612736.  Durations need a
 * unit: us ms s m h d ("250ms", "10s", "1.5s"; case matters), except a bare
 * "0"; the result is in milliseconds.  Fractions round up to a whole byte or
 * millisecond, so a non-zero value never rounds to 0.  Whitespace around the
 * number and unit is allowed.  Both return 0, or KVN_EINVAL with a reason in
 * `why` (static string; `why` may be NULL). */
int kvn_parse_size(const char *s, uint64_t *out, const char **why);
int kvn_parse_duration_ms(const char *s, uint64_t *out, const char **why);
/* A whole number without unit or sign ("4096"); same error contract. */
int kvn_parse_uint(const char *s, uint64_t *out, const char **why);
/* on/off, true/false, yes/no, 1/0 in any case; *out 1 or 0; same contract. */
int kvn_parse_bool(const char *s, int *out, const char **why);
/* Format for humans: "64 KiB", "1.5 GiB", "250ms", "10s".  The text parses
 * back to the same value (the unit is the largest that is exact with at most
 * three decimals).  Truncated to cap; 32 bytes always suffice. */
void kvn_format_size(char *out, size_t cap, uint64_t bytes);
/* For reading, not parsing back: rounded to three significant digits in
 * binary units, "312 MiB", "1.5 GiB", "12 KiB", "800 B".  32 bytes suffice. */
void kvn_format_size_human(char *out, size_t cap, uint64_t bytes);
void kvn_format_duration(char *out, size_t cap, uint64_t ms);

/* ---- config (conf.c) -------------------------------------------------------
 * One static table lists every key (section, name, type, default, range, help,
 * flags).  The parser, --help, docs/configuration.md and etc/kvnode.conf come
 * from it (see kvn_conf_write_*), and t/ checks the committed files against it.
 * Fields are named section_key; durations are in ms, sizes in bytes. */
enum kvn_role_bits { KVN_ROLE_MASTER = 1, KVN_ROLE_PEER = 2, KVN_ROLE_CLIENT = 4, KVN_ROLE_RESP = 8 };
/* peer.evict and peer.offload (their names are in conf_keys.c, in this order) */
enum kvn_evict { KVN_EVICT_LRU = 0, KVN_EVICT_NONE = 1 };
enum kvn_local { KVN_LOCAL_AUTO = 0, KVN_LOCAL_OFF = 1 };
/* client.local_verify (names in conf_keys.c) */
enum kvn_local_verify { KVN_VERIFY_STAMP = 0, KVN_VERIFY_CHECKSUM = 1 };
enum kvn_offload { KVN_OFFLOAD_AUTO = 0, KVN_OFFLOAD_OFF = 1, KVN_OFFLOAD_ON_EVICT = 2, KVN_OFFLOAD_ON_PUT = 3 };
/* auth.integrity: what a frame's tag covers (names in conf_keys.c) */
enum kvn_integrity { KVN_INTEGRITY_HEADER = 0, KVN_INTEGRITY_FRAME = 1 };

struct kvn_conf {
	/* [node] */
	char *node_data_dir;
	char *node_id;
	int node_log_level; /* enum kvn_log_level */
	char *node_log;      /* "stderr", "syslog" or a file */
	char *node_pid_file; /* "": none */
	uint64_t node_max_value_size;
	uint64_t node_mailbox_size;
	char *node_tcp_congestion; /* "": the kernel's default */
	uint64_t node_tcp_sndbuf;  /* bytes; 0: the kernel's autotuning */
	uint64_t node_max_preauth;        /* per listener, not yet authenticated */
	uint64_t node_max_preauth_per_ip; /* the same, per source address */
	/* [master] */
	char *master_listen;
	uint64_t master_node_timeout; /* ms */
	uint64_t master_max_connections;
	uint64_t master_commit_linger; /* ms */
	uint64_t master_lease_ttl_max; /* ms */
	char *master_http;             /* "": no HTTP endpoint */
	/* [peer] */
	char *peer_listen;
	char *peer_advertise;
	char *peer_master;
	uint64_t peer_dram_size;
	uint64_t peer_page_size;
	int peer_hugepages; /* bool */
	uint64_t peer_heartbeat_interval; /* ms */
	uint64_t peer_pending_ttl;        /* ms */
	uint64_t peer_read_lease_ttl;     /* ms */
	uint64_t peer_max_connections;
	int peer_evict;                 /* enum kvn_evict */
	uint64_t peer_high_watermark;   /* parts per million of dram_size */
	uint64_t peer_low_watermark;    /* parts per million of dram_size */
	uint64_t peer_evict_batch;
	char *peer_disk_dir;
	char *peer_local_socket;        /* "off": none */
	uint64_t peer_local_staging;    /* bytes */
	uint64_t peer_disk_size;
	int peer_offload;               /* enum kvn_offload (auto resolved by finalize) */
	uint64_t peer_offload_queue_limit;
	int peer_force_evict;           /* bool */
	int peer_promote_on_hit;        /* bool */
	uint64_t peer_pin_ttl_max;      /* ms */
	int peer_flush_on_stop;         /* bool */
	uint64_t peer_stop_timeout;     /* ms */
	uint64_t peer_io_threads;       /* 0 until finalize: one per CPU */
	char *peer_http;                /* "": no HTTP endpoint */
	/* [client] */
	char *client_master;
	uint64_t client_timeout; /* ms */
	uint64_t client_retries;
	uint64_t client_endpoint_max_age; /* ms */
	uint64_t client_quarantine;       /* ms */
	uint64_t client_route_cache_ttl;  /* ms; 0 = off */
	int client_local;           /* enum kvn_local */
	int client_local_verify;    /* enum kvn_local_verify */
	uint64_t client_local_min_size; /* bytes; smaller values go via the master */
	int client_speculative_get; /* bool */
	int client_get_via_master;  /* bool */
	int client_put_via_master;  /* bool */
	char *client_tcp_congestion; /* "": the kernel's default */
	uint64_t client_tcp_sndbuf;  /* bytes; 0: the kernel's autotuning */
	uint64_t client_attempt_timeout; /* ms; 0: client_timeout / 3 */
	/* [auth] */
	char *auth_peer_secret_file;
	char *auth_client_secret_file;
	uint64_t auth_handshake_timeout; /* ms */
	int auth_integrity;              /* enum kvn_integrity */
	/* [resp] */
	char *resp_listen;
	uint64_t resp_threads;
	uint64_t resp_max_clients;
	uint64_t resp_max_input;  /* bytes */
	uint64_t resp_max_output; /* bytes */

	/* Private to conf.c: bit i set when table row i was set by a file or
	 * --set, so finalize re-derives only the defaults nobody chose. */
	uint64_t user_set[2];
};

/* Fill every field with its default.  Strings are heap copies: call fini. */
void kvn_conf_init(struct kvn_conf *c);
void kvn_conf_fini(struct kvn_conf *c);
/* dst = src with its own copies of the strings (dst is overwritten, not
 * finied: pass an empty or finied one). */
void kvn_conf_copy(struct kvn_conf *dst, const struct kvn_conf *src);
/* Parse an INI file over the current values.  On error returns KVN_ECONFIG,
 * leaves c as it was and writes "FILE:LINE: section.key = 'value': problem"
 * (or "FILE:LINE: problem", "FILE: problem") to err.  A missing file is an
 * error too.  In all three functions err may be NULL. */
int kvn_conf_load(struct kvn_conf *c, const char *path, char *err, size_t errlen);
/* Apply one "section.key=value" override (--set); errors read
 * "--set section.key=value: problem" (the value of an unknown key is not
 * echoed).  On error c is unchanged. */
int kvn_conf_set(struct kvn_conf *c, const char *assignment, char *err, size_t errlen);
/* Derive the defaults that depend on other keys (secret files under data_dir,
 * advertise = listen, node id) unless they were set, re-check every value
 * (fields may have been written directly) and check cross-key rules
 * (page_size a power of two dividing dram_size, ...).  Idempotent: call after
 * load and the sets, and again after any later set. */
int kvn_conf_finalize(struct kvn_conf *c, char *err, size_t errlen);
/* Render the table: --help text, an example config file, a Markdown table. */
void kvn_conf_write_help(FILE *out);
void kvn_conf_write_example(FILE *out);
void kvn_conf_write_markdown(FILE *out);
/* kvnode.conf(5) in roff, with @sysconfdir@ and @docdir@ left for the build */
void kvn_conf_write_man(FILE *out);
/* The current value of one key as text ("section.key"); 0, KVN_ENOTFOUND,
 * or KVN_ERANGE if it does not fit in cap (out is then truncated). */
int kvn_conf_get(const struct kvn_conf *c, const char *name, char *out, size_t cap);

#endif

/*
 * conf_keys: the one table of config keys: section, name, type, default,
 * range, flags and help text of each.  A new key is one new row here (and
 * a field in struct kvn_conf); the parser, --help, etc/kvnode.conf and
 * docs/configuration.md all come from this table (make regen-config).
 */
#include "config.h"

#include <stddef.h>

#include "base.h"
#include "conf_int.h"

const char *const conf_type_names[] = {
	[T_STRING] = "string", [T_PATH] = "path",     [T_ADDR] = "address",
	[T_SIZE] = "size",     [T_DURATION] = "duration", [T_UINT] = "integer",
	[T_BOOL] = "bool",     [T_ENUM] = "enum",     [T_FRACTION] = "fraction",
};

#define KIB(n) ((uint64_t)(n) << 10)
#define MIB(n) ((uint64_t)(n) << 20)
#define GIB(n) ((uint64_t)(n) << 30)
#define TIB(n) ((uint64_t)(n) << 40)
#define SECS(n) ((uint64_t)(n) * 1000)
#define MINS(n) ((uint64_t)(n) * 60000)
#define HOURS(n) ((uint64_t)(n) * 3600000)
#define PPM(n) ((uint64_t)(n) * 10000) /* percent -> parts per million */
#define FIELD(f) offsetof(struct kvn_conf, f)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
/* node.log's words that are not file names */
static const char *const log_sinks[] = { "stderr", "syslog", NULL };
/* indexes are enum kvn_evict / enum kvn_offload (base.h) */
static const char *const evict_modes[] = { "lru", "none", NULL };
static const char *const offload_modes[] = { "auto", "off", "on-evict", "on-put", NULL };
/* indexes are enum kvn_integrity (base.h) */
static const char *const integrity_modes[] = { "header", "frame", NULL };
/* indexes are enum kvn_local (base.h) */
static const char *const local_modes[] = { "auto", "off", NULL };
/* peer.local_socket: a keyword, not a file next to the config file */
static const char *const local_socket_kw[] = { "off", NULL };
static const char *const verify_modes[] = { "stamp", "checksum", NULL };

const struct conf_section conf_sections[] = {
	{ "node", "Settings of this process, whatever roles it runs." },
	{ "master", "The master role: placement, routing and the metadata in master.db." },
	{ "peer", "The peer role: holds the bytes in a DRAM tier and a disk tier." },
	{ "client", "The client library and `kvnode --role client`." },
	{ "auth", "Shared-secret authentication between peers, clients and the master." },
	{ "resp", "The RESP gateway (kvnode --role resp): a client of the cluster that Redis clients "
		  "speak to; docs/operations.md." },
};

const struct conf_key conf_keys[] = {
	/* [node] */
	{ "node", "data_dir", T_PATH, "var", 0, 0, 0, NULL, NULL, FIELD(node_data_dir),
	  "Directory for master.db, peer.db, the disk tier and the default secret files; "
	  "the process that opens anything there holds {data_dir}/LOCK (one per data_dir).  "
	  "A relative path in a config file is relative to that file's directory; given "
	  "with --set, or as the default when no config file is read, to the working "
	  "directory." },
	{ "node", "id", T_STRING, "", 0, 63, F_DERIVED, "<hostname>-<port of peer.listen>", NULL,
	  FIELD(node_id),
	  "Name of this node in logs and in the master's node table; unique in the cluster. "
	  "Letters, digits, '.', '_' and '-'." },
	{ "node", "log_level", T_ENUM, "info", 0, 0, 0, NULL, log_levels, FIELD(node_log_level),
	  "Least severe level of the log lines written (to node.log)." },
	{ "node", "log", T_PATH, "stderr", 0, 0, 0, NULL, log_sinks, FIELD(node_log),
	  "Where the master and the peer log: stderr, syslog (facility daemon, each line "
	  "at its level's priority), or a file, appended to (relative: as node.data_dir).  "
	  "SIGHUP reopens the file: rotate it by moving it away, then SIGHUP." },
	{ "node", "pid_file", T_PATH, "", 0, 0, F_EMPTY_OFF, "none", NULL, FIELD(node_pid_file),
	  "File the master or peer writes its pid to once it holds {data_dir}/LOCK, and "
	  "removes on a clean exit; one left by a dead process is replaced (relative: as "
	  "node.data_dir).  Empty: none." },
	{ "node", "max_value_size", T_SIZE, "64MiB", 1, KVN_VALUE_SIZE_MAX, 0, NULL, NULL,
	  FIELD(node_max_value_size),
	  "Largest value a put may store; a larger put fails with KVN_ETOOBIG before any "
	  "bytes move." },
	{ "node", "mailbox_size", T_UINT, "4096", 16, 1048576, 0, NULL, NULL,
	  FIELD(node_mailbox_size),
	  "Messages an actor's mailbox holds; a send to a full mailbox fails with KVN_EBUSY." },
	{ "node", "tcp_congestion", T_STRING, "", 0, 15, F_DERIVED,
	  "the kernel's (net.ipv4.tcp_congestion_control)", NULL, FIELD(node_tcp_congestion),
	  "TCP congestion control of the connections the node accepts and opens, e.g. cubic "
	  "or reno; it must be in net.ipv4.tcp_allowed_congestion_control (any available "
	  "one when run as root).  Checked at start.  BBR paces with a timer per burst; "
	  "where timers are expensive (the VMs of bench/README.md), cubic made 1 MiB gets "
	  "over loopback about 1.5x faster." },
	{ "node", "tcp_sndbuf", T_SIZE, "512KiB", 0, MIB(256), 0, NULL, NULL, FIELD(node_tcp_sndbuf),
	  "Send buffer (SO_SNDBUF) of the connections the node accepts and opens; 0 leaves "
	  "it to the kernel's autotuning.  The kernel doubles it and caps it at "
	  "net.core.wmem_max (Debian's default: 208 KiB; the start log says so).  Autotuned "
	  "buffers grow to tcp_wmem's maximum, so a whole large GET reply is queued at once "
	  "and BBR then paces it out with timers; 512KiB had no pacing timers and made 1 "
	  "and 16 MiB gets about 1.5x faster here (bench/README.md)." },
	{ "node", "max_preauth", T_UINT, "256", 1, 65536, 0, NULL, NULL, FIELD(node_max_preauth),
	  "Most connections each listener keeps open that have not authenticated yet.  They "
	  "do not count against master.max_connections or peer.max_connections, so idle "
	  "sockets without a secret cannot keep clients or peers out; when the pool is full "
	  "the oldest (one that has not sent HELLO, first) is closed for the newcomer." },
	{ "node", "max_preauth_per_ip", T_UINT, "32", 1, 65536, 0, NULL, NULL,
	  FIELD(node_max_preauth_per_ip),
	  "Most connections from one source address that have not authenticated yet, per "
	  "listener; beyond, that address's oldest is closed for the newcomer." },
	/* [master] */
	{ "master", "listen", T_ADDR, "127.0.0.1:7400", 0, 0, 0, NULL, NULL, FIELD(master_listen),
	  "Address the master accepts peers and clients on." },
	{ "master", "http", T_ADDR, "127.0.0.1:7480", 0, 0, F_EMPTY_OFF, NULL, NULL, FIELD(master_http),
	  "Address of the master's HTTP monitoring endpoint: GET /metrics (Prometheus text), /health "
	  "and / (a status page of the cluster); docs/monitoring.md.  Empty: no endpoint.  It has no "
	  "authentication: keep it on a trusted address." },
	{ "master", "node_timeout", T_DURATION, "10s", 100, HOURS(1), 0, NULL, NULL,
	  FIELD(master_node_timeout),
	  "A peer not heard from for this long is marked down. Must be longer than "
	  "peer.heartbeat_interval." },
	{ "master", "max_connections", T_UINT, "1024", 1, 65536, 0, NULL, NULL,
	  FIELD(master_max_connections),
	  "Most authenticated connections the master keeps open at once (those still in the "
	  "handshake count against node.max_preauth instead)." },
	{ "master", "commit_linger", T_DURATION, "2ms", 0, SECS(1), 0, NULL, NULL,
	  FIELD(master_commit_linger),
	  "How long the master holds plain puts' metadata writes, and master.db keeps a "
	  "transaction no durable put waits on open, for more writes to join: one writer "
	  "request, COMMIT and fsync for all of them.  Plain puts are acknowledged before "
	  "their COMMIT either way; a durable put's events, a full sync or a node's death "
	  "go and commit at once.  0 sends and commits every write at once." },
	{ "master", "lease_ttl_max", T_DURATION, "1h", 1, SECS(86400), 0, NULL, NULL,
	  FIELD(master_lease_ttl_max),
	  "Longest consumer lease the master grants (LEASE and RENEW ask for a TTL; a longer "
	  "one is cut to this).  A consumer that dies holds its samples at most this long "
	  "before they go back to the queue." },
	/* [peer] */
	{ "peer", "listen", T_ADDR, "127.0.0.1:7401", 0, 0, 0, NULL, NULL, FIELD(peer_listen),
	  "Address the peer serves puts and gets on." },
	{ "peer", "http", T_ADDR, "127.0.0.1:7481", 0, 0, F_EMPTY_OFF, NULL, NULL, FIELD(peer_http),
	  "Address of the peer's HTTP monitoring endpoint: GET /metrics (Prometheus text), /health "
	  "and / (a status page of this peer); docs/monitoring.md.  Empty: no endpoint.  It has no "
	  "authentication: keep it on a trusted address." },
	{ "peer", "advertise", T_ADDR, "", 0, 0, F_DERIVED, "peer.listen", NULL,
	  FIELD(peer_advertise),
	  "Address clients dial to reach this peer; the master hands it out with routes. "
	  "When peer.listen has a wildcard host (0.0.0.0 or [::]) the default uses this "
	  "host's name instead." },
	{ "peer", "master", T_ADDR, "127.0.0.1:7400", 0, 0, 0, NULL, NULL, FIELD(peer_master),
	  "Address of the master this peer attaches to." },
	{ "peer", "dram_size", T_SIZE, "1GiB", MIB(1), TIB(1), 0, NULL, NULL,
	  FIELD(peer_dram_size),
	  "Capacity of the DRAM tier, allocated and touched at start. A multiple of "
	  "peer.page_size." },
	{ "peer", "page_size", T_SIZE, "4KiB", KIB(4), GIB(1), F_POW2, NULL, NULL,
	  FIELD(peer_page_size),
	  "Allocation unit of the DRAM tier: a value occupies whole pages." },
	{ "peer", "hugepages", T_BOOL, "on", 0, 1, 0, NULL, NULL, FIELD(peer_hugepages),
	  "Back the DRAM tier with huge pages when the system has them." },
	{ "peer", "heartbeat_interval", T_DURATION, "1s", 10, MINS(1), 0, NULL, NULL,
	  FIELD(peer_heartbeat_interval), "How often the peer reports to the master." },
	{ "peer", "pending_ttl", T_DURATION, "30s", 100, HOURS(1), 0, NULL, NULL,
	  FIELD(peer_pending_ttl),
	  "A put whose bytes have not all arrived after this long is aborted and its pages "
	  "freed." },
	{ "peer", "read_lease_ttl", T_DURATION, "30s", 100, HOURS(1), 0, NULL, NULL,
	  FIELD(peer_read_lease_ttl),
	  "Longest a get in flight keeps a value's pages (or its disk file) from being "
	  "freed.  Bounds read leases only: pins are bounded by peer.pin_ttl_max." },
	{ "peer", "evict", T_ENUM, "lru", 0, 0, 0, NULL, evict_modes, FIELD(peer_evict),
	  "What the peer does when its DRAM tier fills: lru evicts (or, with a disk tier, "
	  "offloads) the least recently used values; none keeps every value and refuses "
	  "puts once full (for work queues that must never lose an item)." },
	{ "peer", "high_watermark", T_FRACTION, "0.95", PPM(1), PPM(100), 0, NULL, NULL,
	  FIELD(peer_high_watermark),
	  "Fraction of peer.dram_size in use above which eviction starts." },
	{ "peer", "low_watermark", T_FRACTION, "0.85", 0, PPM(100), 0, NULL, NULL,
	  FIELD(peer_low_watermark),
	  "Fraction of peer.dram_size eviction brings usage down to; below "
	  "peer.high_watermark." },
	{ "peer", "evict_batch", T_UINT, "64", 1, 65536, 0, NULL, NULL, FIELD(peer_evict_batch),
	  "Most values one eviction round looks at (evicted, queued for offload or kept) "
	  "before the peer serves requests again." },
	{ "peer", "local_socket", T_PATH, "", 0, 0, F_DERIVED, "<data_dir>/peer.sock", local_socket_kw,
	  FIELD(peer_local_socket),
	  "Unix socket (mode 0600) on which clients of this host attach with the same "
	  "handshake as over TCP and map the DRAM tier read-only (a second socket, this "
	  "path + \".map\", hands the memory over).  off: no same-host path." },
	{ "peer", "local_staging", T_SIZE, "64MiB", MIB(1), GIB(16), 0, NULL, NULL,
	  FIELD(peer_local_staging),
	  "Size of the staging region each same-host client gets to write its puts into "
	  "(the peer copies them into the DRAM tier and checks their checksums there).  "
	  "Memory is used only as far as the client writes." },
	{ "peer", "disk_dir", T_PATH, "", 0, 0, F_DERIVED, "<data_dir>/disk", NULL,
	  FIELD(peer_disk_dir),
	  "Directory of the disk tier: one file per value generation, indexed by "
	  "<data_dir>/peer.db." },
	{ "peer", "disk_size", T_SIZE, "0", 0, TIB(1024), 0, NULL, NULL, FIELD(peer_disk_size),
	  "Capacity of the disk tier; 0 (the default) runs without one." },
	{ "peer", "offload", T_ENUM, "auto", 0, 0, 0, NULL, offload_modes, FIELD(peer_offload),
	  "When values are written to the disk tier: on-evict (a value leaves DRAM only "
	  "after its disk copy is durable), on-put (written through at commit), off (a pure "
	  "DRAM cache: evicted values are dropped).  auto: on-evict with a disk tier "
	  "(peer.disk_size above 0), else off." },
	{ "peer", "offload_queue_limit", T_UINT, "256", 1, 1048576, 0, NULL, NULL,
	  FIELD(peer_offload_queue_limit),
	  "Most values queued for the disk writer at once; a victim that finds the queue "
	  "full stays in DRAM this round (see peer.force_evict)." },
	{ "peer", "force_evict", T_BOOL, "off", 0, 1, 0, NULL, NULL, FIELD(peer_force_evict),
	  "When the offload queue is full or the disk tier cannot take a value, drop "
	  "evictable values from DRAM without a disk copy instead of skipping them "
	  "(values put as durable work-queue items are never dropped)." },
	{ "peer", "promote_on_hit", T_BOOL, "on", 0, 1, 0, NULL, NULL, FIELD(peer_promote_on_hit),
	  "A get served from the disk tier also brings the value back into DRAM, when "
	  "DRAM has room for it." },
	{ "peer", "pin_ttl_max", T_DURATION, "10m", SECS(1), HOURS(24), 0, NULL, NULL,
	  FIELD(peer_pin_ttl_max),
	  "Longest a pin lasts; a longer pin TTL is cut to this, so pins of a client "
	  "that died expire." },
	{ "peer", "flush_on_stop", T_BOOL, "off", 0, 1, 0, NULL, NULL, FIELD(peer_flush_on_stop),
	  "On SIGTERM, with a disk tier, write DRAM-only values to disk before leaving "
	  "(bounded by peer.stop_timeout), so they are readable after the restart.  "
	  "Pinned values are not written." },
	{ "peer", "stop_timeout", T_DURATION, "10s", 100, HOURS(1), 0, NULL, NULL,
	  FIELD(peer_stop_timeout),
	  "Deadline of a clean stop: telling the master the peer leaves, and "
	  "peer.flush_on_stop." },
	{ "peer", "io_threads", T_UINT, "0", 0, 256, 0, NULL, NULL, FIELD(peer_io_threads),
	  "Loop threads the peer's incoming connections are spread over, round robin, "
	  "memcached's worker-thread shape: each does its connections' socket I/O, frame "
	  "tags, checksums and copies, and takes the peer's lock only to reserve a PUT's pages "
	  "and to end a GET's read lease; requests are handled on the peer's own loop "
	  "(docs/architecture.md).  The peer's loop is one of them.  0 (the default): one per "
	  "CPU this process may run on; 1: every connection on the peer's loop." },
	{ "peer", "max_connections", T_UINT, "1024", 1, 65536, 0, NULL, NULL,
	  FIELD(peer_max_connections),
	  "Most authenticated connections the peer keeps open at once (those still in the "
	  "handshake count against node.max_preauth instead)." },
	/* [client] */
	{ "client", "master", T_ADDR, "127.0.0.1:7400", 0, 0, 0, NULL, NULL, FIELD(client_master),
	  "Address of the master the client asks for routes." },
	{ "client", "timeout", T_DURATION, "5s", 1, HOURS(1), 0, NULL, NULL, FIELD(client_timeout),
	  "Deadline of each client call, retries included." },
	{ "client", "retries", T_UINT, "3", 0, 100, 0, NULL, NULL, FIELD(client_retries),
	  "Times a failed call is re-routed and tried again within its deadline." },
	{ "client", "endpoint_max_age", T_DURATION, "60s", SECS(1), HOURS(24), 0, NULL, NULL,
	  FIELD(client_endpoint_max_age),
	  "A pooled connection older than this is replaced when next checked out." },
	{ "client", "quarantine", T_DURATION, "2s", 0, HOURS(1), 0, NULL, NULL,
	  FIELD(client_quarantine),
	  "A peer that just failed is skipped for this long while another choice exists; "
	  "0 turns this off." },
	{ "client", "route_cache_ttl", T_DURATION, "0", 0, HOURS(1), 0, NULL, NULL,
	  FIELD(client_route_cache_ttl),
	  "Gets reuse a key's route for this long instead of asking the master again. "
	  "0 (the default) asks every time, so every get sees every acknowledged put. "
	  "Above 0, a get may return a generation that another client's put superseded "
	  "within this window (the client's own puts and removes are always seen)." },
	{ "client", "local", T_ENUM, "auto", 0, 0, 0, NULL, local_modes, FIELD(client_local),
	  "auto: a peer on this host (same kernel boot id) is reached over its Unix socket "
	  "and read and written through shared memory; any failure falls back to TCP for "
	  "that peer (one log line) and is tried again later.  off: TCP only." },
	{ "client", "local_verify", T_ENUM, "stamp", 0, 0, 0, NULL, verify_modes, FIELD(client_local_verify),
	  "How a same-host get knows its copy out of the peer's memory is the value: stamp "
	  "(the default): the lease's word in a region only the peer writes still names the "
	  "lease after the copy, so its pages were not reused meanwhile; checksum: also "
	  "compute the value's XXH3-64 over the copy and compare it with the writer's, "
	  "which costs a pass over the bytes and catches what the stamp cannot: bytes "
	  "that changed in the peer's memory after they were stored (a bug, a fault).  "
	  "docs/architecture.md, \"Same-host clients\"." },
	{ "client", "local_min_size", T_SIZE, "256KiB", 0, KVN_VALUE_SIZE_MAX, 0, NULL, NULL,
	  FIELD(client_local_min_size),
	  "With client.local = auto, a put of a value smaller than this, and a get into a "
	  "buffer smaller than this, still go through the master in one round trip "
	  "(client.get_via_master, client.put_via_master) instead of the two of the "
	  "same-host path (route, then the peer's socket): below this size the extra "
	  "round trip costs more than the copies shared memory saves.  A get into a "
	  "buffer the library allocates does not know its size and takes the same-host "
	  "path.  0: every value takes the same-host path." },
	{ "client", "speculative_get", T_BOOL, "on", 0, 1, 0, NULL, NULL,
	  FIELD(client_speculative_get),
	  "While the client knows of one peer only, a get asks that peer for the latest "
	  "value at the same time as it asks the master for the route: one round trip "
	  "instead of two.  The bytes count only when the master's answer names the same "
	  "node and generation, so every get still sees every acknowledged put." },
	{ "client", "get_via_master", T_BOOL, "on", 0, 1, 0, NULL, NULL,
	  FIELD(client_get_via_master),
	  "A get goes to the master, which hands it to the peer of its own process when "
	  "every key lives there (the answer comes back on the master connection: one "
	  "round trip, one request) and otherwise answers with the routes.  Not used "
	  "while speculative_get aims at a peer on another node." },
	{ "client", "put_via_master", T_BOOL, "on", 0, 1, 0, NULL, NULL,
	  FIELD(client_put_via_master),
	  "While every route the client has seen named the master's own node, a put goes "
	  "to the master with its value, which places it, hands it to that node's peer "
	  "(the bytes land straight in its pages) and the peer answers on the master "
	  "connection: one round trip, one request.  If the master places it elsewhere, "
	  "the client routes it as usual and sends the value again." },
	{ "client", "tcp_congestion", T_STRING, "", 0, 15, F_DERIVED,
	  "the kernel's (net.ipv4.tcp_congestion_control)", NULL, FIELD(client_tcp_congestion),
	  "TCP congestion control of the client's connections (the sending side of puts), "
	  "as node.tcp_congestion; checked when the client connects." },
	{ "client", "tcp_sndbuf", T_SIZE, "512KiB", 0, MIB(256), 0, NULL, NULL,
	  FIELD(client_tcp_sndbuf),
	  "Send buffer (SO_SNDBUF) of the client's connections (the sending side of puts), "
	  "as node.tcp_sndbuf; 0 leaves it to the kernel." },
	{ "client", "attempt_timeout", T_DURATION, "0", 0, HOURS(1), 0, NULL, NULL,
	  FIELD(client_attempt_timeout),
	  "Longest one attempt of a put waits for its peer before the client gives up on "
	  "that peer (quarantined, excluded from placement while another node has room) and "
	  "tries another, within the call's client.timeout; the last attempt allowed by "
	  "client.retries waits until that deadline.  0 (the default): a third of "
	  "client.timeout." },
	/* [auth] */
	{ "auth", "peer_secret_file", T_PATH, "", 0, 0, F_DERIVED, "<data_dir>/peer.secret", NULL,
	  FIELD(auth_peer_secret_file),
	  "Secret file peers attach to the master with (kvnode keygen makes one; it must not "
	  "be readable by group or others)." },
	{ "auth", "client_secret_file", T_PATH, "", 0, 0, F_DERIVED, "<data_dir>/client.secret",
	  NULL, FIELD(auth_client_secret_file),
	  "Secret file clients authenticate with; a client secret cannot attach as a peer." },
	{ "auth", "handshake_timeout", T_DURATION, "2s", 10, MINS(10), 0, NULL, NULL,
	  FIELD(auth_handshake_timeout),
	  "Time a new connection has to finish authenticating before it is closed (an "
	  "unauthenticated socket holds a node.max_preauth slot this long at most)." },
	{ "auth", "integrity", T_ENUM, "header", 0, 0, 0, NULL, integrity_modes, FIELD(auth_integrity),
	  "What each frame's tag covers; one value per cluster (an attach across a mismatch is "
	  "refused, naming both).  header: the frame's header and metadata (op, keys, "
	  "generations, sizes, each value's XXH3-64 checksum), so requests stay authenticated "
	  "and a replayed, reordered or forged request is refused; value bytes are covered by "
	  "their checksum, checked by the peer on arrival and the client on every get, which "
	  "catches accidents but not an attacker who can rewrite TCP payload.  frame: the tag "
	  "covers the value bytes too (Poly1305 over every byte, both ends); choose it on "
	  "networks you do not trust.  docs/protocol.md says what each mode protects against." },
	/* [resp] */
	{ "resp", "listen", T_ADDR, "127.0.0.1:6380", 0, 0, 0, NULL, NULL, FIELD(resp_listen),
	  "Address (numeric: IPv4 or [IPv6], and a port) the RESP gateway accepts Redis "
	  "clients on.  RESP has no per-frame "
	  "integrity and AUTH sends its token in the clear: keep it on loopback or a trusted "
	  "network." },
	{ "resp", "threads", T_UINT, "2", 1, 256, 0, NULL, NULL, FIELD(resp_threads),
	  "Worker threads of the gateway; each has its own event loop and its own client of "
	  "the cluster, and serves the connections handed to it in turn.  A worker waits for "
	  "the cluster while it runs a command, so its other connections wait too." },
	{ "resp", "max_clients", T_UINT, "1024", 1, 1048576, 0, NULL, NULL, FIELD(resp_max_clients),
	  "Most Redis connections open at once; beyond, a new one is answered \"-ERR max "
	  "number of clients reached\" and closed." },
	{ "resp", "max_input", T_SIZE, "128MiB", KIB(64), GIB(4), 0, NULL, NULL, FIELD(resp_max_input),
	  "Largest request (one command with all its arguments) a connection may send; a "
	  "larger one is answered -ERR and the connection closed, nothing of it stored.  At "
	  "least node.max_value_size + 64KiB (checked at start)." },
	{ "resp", "max_output", T_SIZE, "16MiB", KIB(64), GIB(4), 0, NULL, NULL,
	  FIELD(resp_max_output),
	  "Unsent reply bytes of a connection above which the gateway runs none of its "
	  "further commands (and reads no more of them) until the client has read enough; "
	  "one reply may exceed it." },
};

#define NKEYS ARRAY_LEN(conf_keys)
const size_t conf_nkeys = NKEYS;
const size_t conf_nsections = ARRAY_LEN(conf_sections);
_Static_assert(NKEYS <= 128, "kvn_conf.user_set has one bit per key");

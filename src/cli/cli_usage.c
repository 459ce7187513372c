/*
 * cli_usage: the one table of `kvnode --role client` commands: each one's
 * usage lines, what it does and its options.  `kvnode --help` lists them
 * from here, `COMMAND --help` prints one, and every usage error prints the
 * command's usage lines from here: no command carries its own copy.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "cli/cli.h"

struct cli_cmd_doc {
	const char *name;
	/* usage lines after "kvnode --role client ", '\n' between them */
	const char *usage;
	/* what it does, '\n' between lines: the first lines (up to an empty
	 * one) are kvnode --help's summary, all of it COMMAND --help's */
	const char *about;
};

static const struct cli_cmd_doc cmds[] = {
	{ "ping", "ping", "round trip to the master, peers attached" },
	{ "put", "put [--durable] [--queue [--retain]] [--ttl D] KEY FILE|- [KEY FILE]...",
	  "store values (- reads standard input; --ttl: expire after D;\n"
	  "--queue: durable samples for lease; --retain: kept on release)\n"
	  "\n"
	  "  --durable   return once the master has committed the put to master.db\n"
	  "  --queue     a queue sample (durable): leased with lease, consumed by release\n"
	  "  --retain    with --queue: release keeps the value instead of deleting it\n"
	  "  --ttl D     the value expires D after the put (1ms..10 years: 90s, 1h)\n"
	  "A KEY may not start with '-'." },
	{ "get", "get KEY [-o FILE]\nget --ref KEY@GEN [-o FILE]",
	  "fetch a value (to standard output by default);\n"
	  "--ref: exactly that generation (key= and gen= of a lease line)\n"
	  "\n"
	  "  -o FILE     write the value to FILE instead of standard output\n"
	  "Exit status 1: no such key; 8 (--ref): that generation is gone." },
	{ "exists", "exists KEY...", "exit 0 if every key exists, 1 if one does not\n"
				     "\n"
				     "With several keys, one line per key: KEY: yes|no." },
	{ "rm", "rm KEY...", "remove keys" },
	{ "ls", "ls [--prefix P] [--max N]",
	  "list the keys of the master's index, one per line\n"
	  "\n"
	  "  --prefix P  only keys that start with P (hex:... for bytes)\n"
	  "  --max N     print at most N keys\n"
	  "Order: the index's own (by a hash of the key), not sorted.  A key is\n"
	  "written as is when it is printable ASCII without spaces, else as\n"
	  "hex: and its bytes.  Keys put or removed during the listing may be\n"
	  "printed or not; every other key is printed once." },
	{ "pin", "pin [--ttl D] KEY...", "keep values from eviction and offload for D (default 60s)" },
	{ "unpin", "unpin KEY...", "end their pins" },
	{ "evict", "evict KEY...", "drop values from DRAM now (refused for pinned, leased ones)" },
	{ "stat", "stat [--json]",
	  "the master (version, uptime, requests, hit ratio, connections)\n"
	  "and every node (alive, DRAM and disk used/total, objects)\n"
	  "\n"
	  "  --json      one JSON object instead of the table; null for what is unknown\n"
	  "ops: requests from clients the master answered since it started, one per\n"
	  "message (a command's connect counts one, a get or put through the master one).\n"
	  "hit ratio: the keys the master looked up for get, exists, rm, evict (and\n"
	  "through them, bench) found in its index, out of all it looked up.\n"
	  "A node that is not alive shows its usage as unknown: the master's last\n"
	  "figures for it are stale." },
	{ "lease", "lease --partition I/N [--max K] [--ttl D]",
	  "lease up to K (default 1) queue samples of partition I of N\n"
	  "for D (default 30s); one line per sample:\n"
	  "lease=ID key=KEY gen=GEN node=NODE size=BYTES" },
	{ "release", "release ID... [--retain | --return]",
	  "end leases: the samples are consumed (--retain: kept,\n"
	  "--return: back to the queue unconsumed)" },
	{ "renew", "renew ID... --ttl D", "extend leases to D from now" },
	{ "bench",
	  "bench --op put|get|mixed|exists|memcpy|tag|xxh3|queue\n"
	  "      --size S --count N [--batch B] [--clients C] [--keys K] [--warmup N]\n"
	  "      [--timeout D] [--target kvnode|redis://HOST:PORT|memcached://HOST:PORT]\n"
	  "      [--durable] [--no-populate] [--keep] [--prefix P] [--json]\n"
	  "      [--producers P] [--master-db PATH] [--no-baseline]   (--op queue)",
	  "measure put/get/exists throughput and latency, or the queue's\n"
	  "\n"
	  "  --op       exists: routed key lookups of populated keys (keys/s);\n"
	  "             memcpy, tag, xxh3: local baselines, no server;\n"
	  "             queue: P producers put N samples (KVN_PUT_QUEUE) while C\n"
	  "             consumers lease B at a time, fetch and release them\n"
	  "             (samples/s end to end), after a baseline of N durable puts\n"
	  "  --size     value size with units (4KiB, 1MiB, 1.5M); exists: of the\n"
	  "             populated values, default 1B\n"
	  "  --count    timed items over all clients\n"
	  "  --batch    items per call (batch API; pipeline depth for redis/memcached), 1\n"
	  "  --clients  closed-loop threads, one connection each, 1\n"
	  "  --keys     distinct keys \"<prefix><i>\", min(N, 512MiB / size)\n"
	  "  --warmup   untimed items before the clock starts, 0\n"
	  "  --timeout  deadline of every wait, 10s (kvnode: client.timeout)\n"
	  "  --durable  kvnode puts wait for the master's COMMIT\n"
	  "  --no-populate  get/mixed/exists: the keys exist already: an earlier run\n"
	  "             with --keep and the same --prefix, --size and --keys wrote\n"
	  "             them (needs --prefix; this run removes none of them)\n"
	  "  --keep     leave the keys this run wrote (default: removed at the end)\n"
	  "  --prefix P every key starts with P (1..64 of A-Z a-z 0-9 . _ : / -),\n"
	  "             default bench-HOST-PID-\n"
	  "  --json     one JSON object per run on stdout\n"
	  "  --producers  queue: producer threads, 1 (consumers: --clients)\n"
	  "  --master-db  queue: the master's master.db on this host: report its\n"
	  "             SQLite commits/s (read from the WAL index, master.db-shm)\n"
	  "  --no-baseline  queue: skip the durable-put baseline\n"
	  "Keys: every key a run writes starts with its prefix, by default\n"
	  "bench-HOST-PID- (two benches never share one, no other key is touched).\n"
	  "When the run ends it removes them (batch removes, untimed), the settle\n"
	  "markers too; --op queue consumes its samples and removes any left over\n"
	  "and the baseline's keys.  Keys it could not remove are counted, the\n"
	  "first named, and the exit status is that error's.  --keep leaves them.\n"
	  "Against redis and memcached nothing is removed (the report says so).\n"
	  "JSON: prefix, kept, removed, remove_failed (queue: consumed too)." },
};

static const struct cli_cmd_doc *find(const char *cmd)
{
	for (size_t i = 0; cmd && i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(cmds[i].name, cmd) == 0)
			return &cmds[i];
	return NULL;
}

int cli_cmd_known(const char *cmd)
{
	return find(cmd) != NULL;
}

const char *cli_cmd_names(void)
{
	return "ping, put, get, exists, rm, pin, unpin, evict, stat, lease, release, renew, bench";
}

/* Each line of text (up to len bytes), after prefix (first line) or
 * indent (the others). */
static void lines(FILE *f, const char *text, size_t len, const char *prefix, const char *indent)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		fprintf(f, "%s%.*s\n", p == text ? prefix : indent, (int)n, p);
		p += n + (nl != NULL);
	}
}

void cli_usage(FILE *f, const char *cmd)
{
	const struct cli_cmd_doc *d = find(cmd);
	const char *u;

	if (!d)
		return;
	/* each usage line; a line starting with a space continues the one
	 * before it */
	for (u = d->usage; *u;) {
		const char *nl = strchr(u, '\n');
		size_t n = nl ? (size_t)(nl - u) : strlen(u);
		fprintf(f, "%s%.*s\n",
			*u == ' ' ? "                            " : u == d->usage ? "usage: kvnode --role client "
									: "       kvnode --role client ",
			(int)n, u);
		u += n + (nl != NULL);
	}
}

void cli_help(FILE *f, const char *cmd)
{
	const struct cli_cmd_doc *d = find(cmd);

	if (!d)
		return;
	cli_usage(f, cmd);
	fputc('\n', f);
	lines(f, d->about, strlen(d->about), "", "");
}

void cli_usage_list(FILE *f)
{
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		const struct cli_cmd_doc *d = &cmds[i];
		const char *blank = strstr(d->about, "\n\n");
		size_t about_len = blank ? (size_t)(blank - d->about) : strlen(d->about);
		const char *u = d->usage;
		/* usage lines, the summary beside the last one when it fits */
		for (;;) {
			const char *nl = strchr(u, '\n');
			size_t n = nl ? (size_t)(nl - u) : strlen(u);
			if (nl) {
				fprintf(f, "  %.*s\n", (int)n, u);
				u = nl + 1;
				continue;
			}
			if (n <= 28) {
				char pre[64];
				snprintf(pre, sizeof pre, "  %-29.*s", (int)n, u);
				lines(f, d->about, about_len, pre, "                               ");
			} else {
				fprintf(f, "  %.*s\n", (int)n, u);
				lines(f, d->about, about_len, "                               ",
				      "                               ");
			}
			break;
		}
	}
}

int cli_help_asked(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "kvnode: %s: ", cmd);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	cli_usage(stderr, cmd);
	return 2;
}

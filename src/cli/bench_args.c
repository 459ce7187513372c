/*
 * bench_args: the command line of `kvnode bench`: its usage text, the
 * options and their ranges, and the checks across options that refuse a run
 * which would measure nothing meaningful.  bench.c owns everything after.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"

#define DEFAULT_KEY_BYTES (512ull << 20) /* default --keys keeps values under this */

const char *const bench_op_names[BENCH_OP_COUNT] = { "put", "get", "mixed", "memcpy", "tag",
						     "exists", "xxh3", "queue" };

static void usage(FILE *f)
{
	cli_help(f, "bench"); /* the one usage table: cli_usage.c */
}

static int bad(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "kvnode bench: --%s '%s': %s (see --help)\n", opt, val, why);
	cli_usage(stderr, "bench");
	return 2;
}

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	char why[96];
	snprintf(why, sizeof(why), "expected a whole number in %" PRIu64 "..%" PRIu64, min, max);
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
			return bad(opt, s, why);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (!*s || v < min || v > max)
		return bad(opt, s, why);
	*out = v;
	return 0;
}

int bench_usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("kvnode bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	cli_usage(stderr, "bench");
	return 2;
}

enum { O_OP = 256, O_SIZE, O_TARGET, O_JSON, O_DURABLE, O_NOPOP, O_TIMEOUT, O_MASTER_DB, O_NOBASE, O_KEEP,
       O_PREFIX, O_COUNT,
       O_BATCH, O_CLIENTS, O_KEYS, O_WARMUP, O_PRODUCERS };

/* Returns 0, 1 for --help, or 2 after saying what is wrong. */
int bench_parse_args(int argc, char **argv, struct bench_args *a)
{
	static const struct option lo[] = {
		{ "op", required_argument, NULL, O_OP },
		{ "size", required_argument, NULL, O_SIZE },
		{ "target", required_argument, NULL, O_TARGET },
		{ "json", no_argument, NULL, O_JSON },
		{ "durable", no_argument, NULL, O_DURABLE },
		{ "no-populate", no_argument, NULL, O_NOPOP },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "count", required_argument, NULL, O_COUNT },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "clients", required_argument, NULL, O_CLIENTS },
		{ "keys", required_argument, NULL, O_KEYS },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "producers", required_argument, NULL, O_PRODUCERS },
		{ "master-db", required_argument, NULL, O_MASTER_DB },
		{ "no-baseline", no_argument, NULL, O_NOBASE },
		{ "keep", no_argument, NULL, O_KEEP },
		{ "prefix", required_argument, NULL, O_PREFIX },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct { uint64_t *dst, min, max; } num[] = { /* O_COUNT.. in order */
		{ &a->count, 1, 1ull << 40 }, { &a->batch, 1, 65536 }, { &a->clients, 1, 1024 },
		{ &a->keys, 1, 1ull << 40 }, { &a->warmup, 0, 1ull << 40 }, { &a->producers, 1, 1024 },
	};
	const char *why = NULL;
	int c, li, rc = 0;

	memset(a, 0, sizeof(*a));
	a->op = -1;
	a->batch = a->clients = a->producers = 1;
	a->timeout_ms = 10000;
	opterr = 0;
	optind = 0; /* glibc: full rescan, whatever parsed argv before us */
	while (!rc && (c = getopt_long(argc, argv, "+:h", lo, &li)) != -1) {
		const char *v = optarg;
		switch (c) {
		case O_OP:
			for (int i = 0; i < BENCH_OP_COUNT; i++)
				if (strcmp(v, bench_op_names[i]) == 0)
					a->op = i;
			if (a->op < 0)
				rc = bad("op", v, "expected put, get, mixed, exists, memcpy, tag, xxh3 or queue");
			break;
		case O_SIZE:
			if (kvn_parse_size(v, &a->size, &why))
				rc = bad("size", v, why ? why : "not a size");
			else if (a->size == 0 || a->size > (1ull << 32))
				rc = bad("size", v, "must be 1B..4GiB");
			break;
		case O_TIMEOUT:
			if (kvn_parse_duration_ms(v, &a->timeout_ms, &why) || a->timeout_ms == 0)
				rc = bad("timeout", v, why ? why : "expected a duration like 10s");
			a->timeout_given = 1;
			break;
		case O_TARGET:
			a->target = v;
			break;
		case O_JSON:
			a->json = 1;
			break;
		case O_DURABLE:
			a->durable = 1;
			break;
		case O_NOPOP:
			a->no_populate = 1;
			break;
		case O_MASTER_DB:
			a->master_db = v;
			break;
		case O_NOBASE:
			a->no_baseline = 1;
			break;
		case O_KEEP:
			a->keep = 1;
			break;
		case O_PREFIX:
			if (!bench_prefix_ok(v))
				rc = bad("prefix", v, "expected 1..64 of A-Z a-z 0-9 . _ : / -");
			a->prefix = v;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case ':':
			return bench_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (c < O_COUNT || c > O_PRODUCERS)
				return bench_usage_error("unknown or ambiguous option '%s'", argv[optind - 1]);
			rc = parse_u64(lo[li].name, v, num[c - O_COUNT].min, num[c - O_COUNT].max,
				       num[c - O_COUNT].dst);
			a->keys_given |= c == O_KEYS;
		}
	}
	if (rc)
		return rc;
	if (optind < argc)
		return bench_usage_error("unexpected argument '%s'", argv[optind]);
	if (a->op == OP_EXISTS && !a->size)
		a->size = 1; /* the values only have to exist */
	if (a->op < 0 || !a->size || !a->count)
		return bench_usage_error("--op, --size and --count are required");
	if (a->durable && a->target && strcmp(a->target, "kvnode") != 0)
		return bench_usage_error("--durable applies to --target kvnode only");
	if ((a->producers != 1 || a->master_db || a->no_baseline) && a->op != OP_QUEUE)
		return bench_usage_error("--producers, --master-db and --no-baseline apply to --op queue only");
	if (a->op == OP_QUEUE && a->target && strcmp(a->target, "kvnode") != 0)
		return bench_usage_error("--op queue applies to --target kvnode only");
	if (a->op == OP_QUEUE && a->batch > 1024)
		return bench_usage_error("--op queue leases at most 1024 samples a call (--batch)");
	if (a->op == OP_QUEUE && (a->keys_given || a->warmup || a->no_populate || a->durable))
		return bench_usage_error("--keys, --warmup, --no-populate and --durable do not apply to --op queue "
					 "(every queue put is durable)");
	if (a->no_populate && !BENCH_OP_READS(a->op))
		return bench_usage_error("--no-populate applies to --op get, mixed and exists only");
	if (a->no_populate && !a->prefix)
		return bench_usage_error("--no-populate reads the keys of an earlier run: give its --prefix "
					 "(that run with --keep and the same --prefix, --size and --keys)");
	if (a->prefix && OP_LOCAL(a->op))
		return bench_usage_error("--prefix names keys: it does not apply to --op %s", bench_op_names[a->op]);
	if (!a->keys_given) {
		uint64_t fit = DEFAULT_KEY_BYTES / a->size ? DEFAULT_KEY_BYTES / a->size : 1;
		a->keys = a->count < fit ? a->count : fit;
		if (a->batch > 1 && a->keys < a->clients * a->batch)
			a->keys = a->clients * a->batch;
	}
	if (a->batch > 1 && !OP_LOCAL(a->op) && a->keys < a->clients * a->batch) {
		return bench_usage_error("--keys %" PRIu64 " is less than clients x batch (%" PRIu64
				   "): a batch would repeat a key", a->keys, a->clients * a->batch);
	}
	return 0;
}


/*
 * cli_queue: the consumer-queue commands of `kvnode --role client`: lease,
 * release, renew, and the ref form of get (`get --ref KEY@GEN`).  Owns
 * their arguments (checked before any connection: exit 2 with the
 * argument named), the printed form of a key on a line (and reading it
 * back in a ref), and their output: one line per ref or lease id, so a
 * script can feed what lease printed to get --ref and release.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"

#define LEASE_DEFAULT_TTL_MS 30000
/* the library's limits (src/net/proto.h), which the CLI checks first to
 * name the argument at fault */
#define PART_MAX (1u << 20)
#define LEASE_MAX 1024u
#define IDS_MAX 4096u

int cli_queue_cmd(const char *cmd)
{
	return strcmp(cmd, "lease") == 0 || strcmp(cmd, "release") == 0 || strcmp(cmd, "renew") == 0;
}

/* ---- keys on a line ---- */

void cli_key_format(char *out, size_t cap, const void *key, size_t klen)
{
	const unsigned char *k = key;
	int plain = klen > 0 && !(klen >= 4 && memcmp(k, "hex:", 4) == 0);

	/* a space would split the line's fields: such a key is in hex too */
	for (size_t i = 0; plain && i < klen; i++)
		plain = k[i] > 0x20 && k[i] < 0x7f;
	if (plain) {
		snprintf(out, cap, "%.*s", (int)klen, (const char *)k);
		return;
	}
	if (cap < 5 + 2 * klen) {
		out[0] = '\0';
		return;
	}
	memcpy(out, "hex:", 4);
	kvn_hex(out + 4, k, klen);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t cli_key_parse(const char *s, size_t len, uint8_t *out, size_t cap)
{
	if (len > 4 && memcmp(s, "hex:", 4) == 0 && (len - 4) % 2 == 0) {
		size_t n = (len - 4) / 2;
		int good = n <= cap;
		for (size_t i = 0; good && i < n; i++) {
			int hi = hexval(s[4 + 2 * i]), lo = hexval(s[5 + 2 * i]);
			good = hi >= 0 && lo >= 0;
			out[i] = (uint8_t)(hi << 4 | lo);
		}
		if (good)
			return n;
	}
	/* not hex: the bytes as given (a key that lease would have printed
	 * in hex may still be typed as is) */
	if (len > cap)
		return 0;
	memcpy(out, s, len);
	return len;
}

/* ---- arguments ---- */

/* A decimal number without sign or spaces, at most max: 0 with *v set, or -1. */
static int parse_u64(const char *s, uint64_t max, uint64_t *v)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end || x > max)
		return -1;
	*v = x;
	return 0;
}

/* --partition I/N */
static int parse_partition(const char *s, uint32_t *i, uint32_t *n)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	char a[24];
	uint64_t vi, vn;

	if (!slash || (size_t)(slash - s) >= sizeof a) {
		fprintf(stderr, "kvnode: lease: --partition '%s': want I/N, partition I of N (e.g. 0/4)\n", s ? s : "");
		return -1;
	}
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	if (parse_u64(a, UINT32_MAX, &vi) != 0 || parse_u64(slash + 1, UINT32_MAX, &vn) != 0) {
		fprintf(stderr, "kvnode: lease: --partition '%s': want I/N with I and N decimal numbers (e.g. 0/4)\n", s);
		return -1;
	}
	if (vn < 1 || vn > PART_MAX) {
		fprintf(stderr, "kvnode: lease: --partition '%s': N must be 1..%u\n", s, PART_MAX);
		return -1;
	}
	if (vi >= vn) {
		fprintf(stderr, "kvnode: lease: --partition '%s': I must be below N (0..%llu)\n", s,
			(unsigned long long)vn - 1);
		return -1;
	}
	*i = (uint32_t)vi;
	*n = (uint32_t)vn;
	return 0;
}

/* A lease id as lease prints it: "123" or "lease=123". */
static int parse_id(const char *cmd, const char *s, uint64_t *id)
{
	const char *p = strncmp(s, "lease=", 6) == 0 ? s + 6 : s;

	if (parse_u64(p, UINT64_MAX, id) != 0 || *id == 0) {
		fprintf(stderr, "kvnode: %s: '%s' is not a lease id (a non-zero decimal number, as lease prints it)\n",
			cmd, s);
		return -1;
	}
	return 0;
}

struct queue_args {
	uint32_t part_i, part_n;
	uint64_t max, ttl_ms;
	int ttl_given;
	unsigned release_flags;
	uint64_t *ids;
	size_t nids;
};

/* The arguments of lease, release or renew into *a (a->ids malloc'd, the
 * caller frees): 0, or 2 after saying what is wrong. */
static int queue_args(int argc, char **argv, struct queue_args *a)
{
	const char *cmd = argv[0];
	int lease = strcmp(cmd, "lease") == 0, renew = strcmp(cmd, "renew") == 0, part = 0, t;

	memset(a, 0, sizeof *a);
	a->max = 1;
	a->ttl_ms = LEASE_DEFAULT_TTL_MS;
	a->ids = kvn_xcalloc((size_t)argc, sizeof *a->ids);
	for (int i = 1; i < argc;) {
		if ((lease || renew) && (t = cli_ttl_arg(argc, argv, &i, &a->ttl_ms)) != 0) {
			if (t < 0)
				goto usage;
			a->ttl_given = 1;
		} else if (lease && strcmp(argv[i], "--partition") == 0) {
			if (i + 1 >= argc || parse_partition(argv[i + 1], &a->part_i, &a->part_n) != 0)
				goto usage;
			part = 1;
			i += 2;
		} else if (lease && strcmp(argv[i], "--max") == 0) {
			if (i + 1 >= argc || parse_u64(argv[i + 1], LEASE_MAX, &a->max) != 0 || a->max < 1) {
				fprintf(stderr, "kvnode: lease: --max '%s': want 1..%u\n", i + 1 < argc ? argv[i + 1] : "",
					LEASE_MAX);
				goto usage;
			}
			i += 2;
		} else if (!lease && !renew && (strcmp(argv[i], "--retain") == 0 || strcmp(argv[i], "--return") == 0)) {
			unsigned f = strcmp(argv[i], "--retain") == 0 ? KVN_RELEASE_RETAIN : KVN_RELEASE_RETURN;
			if (a->release_flags && a->release_flags != f) {
				fprintf(stderr, "kvnode: release: --retain and --return exclude each other\n");
				goto usage;
			}
			a->release_flags = f;
			i++;
		} else if (!lease && (argv[i][0] != '-' || (argv[i][1] >= '0' && argv[i][1] <= '9'))) {
			if (parse_id(cmd, argv[i], &a->ids[a->nids]) != 0)
				goto usage;
			a->nids++;
			i++;
		} else {
			fprintf(stderr, "kvnode: %s: unexpected argument '%s'\n", cmd, argv[i]);
			goto usage;
		}
	}
	if (lease && !part) {
		fprintf(stderr, "kvnode: lease: --partition I/N is required\n");
		goto usage;
	}
	if (!lease && a->nids == 0) {
		fprintf(stderr, "kvnode: %s: no lease id given\n", cmd);
		goto usage;
	}
	if (renew && !a->ttl_given) {
		fprintf(stderr, "kvnode: renew: --ttl D is required\n");
		goto usage;
	}
	return 0;
usage:
	cli_usage(stderr, cmd);
	free(a->ids);
	a->ids = NULL;
	return 2;
}

int cli_queue_args(int argc, char **argv)
{
	struct queue_args a;
	int rc = queue_args(argc, argv, &a);
	free(a.ids);
	return rc;
}

/* ---- the commands ---- */

static int cmd_lease(struct kvn_client *c, const struct queue_args *a)
{
	struct kvn_ref *refs = kvn_xcalloc(a->max, sizeof *refs);
	char key[5 + 2 * KVN_MAX_KEY];
	size_t n = 0;
	int rc = kvn_lease(c, a->part_i, a->part_n, a->ttl_ms, refs, a->max, &n);

	if (rc) {
		free(refs);
		return cli_fail("lease", rc, c);
	}
	for (size_t i = 0; i < n; i++) {
		cli_key_format(key, sizeof key, refs[i].key, refs[i].klen);
		printf("lease=%llu key=%s gen=%llu node=%s size=%llu\n", (unsigned long long)refs[i].lease_id, key,
		       (unsigned long long)refs[i].gen, refs[i].node_id, (unsigned long long)refs[i].size);
	}
	free(refs);
	return 0;
}

/* ms since 1970 as 2026-12-06T12:00:00.123Z */
static void format_utc(char *out, size_t cap, uint64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char t[32];

	gmtime_r(&s, &tm);
	strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, cap, "%s.%03uZ", t, (unsigned)(ms % 1000));
}

static int cmd_release_renew(struct kvn_client *c, const struct queue_args *a, int renew)
{
	const char *cmd = renew ? "renew" : "release";
	const char *done = a->release_flags == KVN_RELEASE_RETAIN   ? "retained"
			   : a->release_flags == KVN_RELEASE_RETURN ? "returned"
								    : "released";
	int *st = kvn_xcalloc(a->nids, sizeof *st);
	uint64_t *dl = kvn_xcalloc(a->nids, sizeof *dl);
	int ret = 0, whole = 0;

	for (size_t off = 0; off < a->nids; off += IDS_MAX) {
		size_t k = a->nids - off < IDS_MAX ? a->nids - off : IDS_MAX;
		int rc = renew ? kvn_renew(c, a->ids + off, k, a->ttl_ms, st + off, dl + off)
			       : kvn_release(c, a->ids + off, k, a->release_flags, st + off);
		if (rc && rc != KVN_ESTATE && !whole)
			whole = rc;
	}
	for (size_t i = 0; i < a->nids; i++) {
		unsigned long long id = (unsigned long long)a->ids[i];
		if (st[i] == 0 && renew) {
			char t[40];
			format_utc(t, sizeof t, dl[i]);
			printf("lease=%llu deadline=%s deadline_ms=%llu\n", id, t, (unsigned long long)dl[i]);
		} else if (st[i] == 0) {
			printf("lease=%llu %s\n", id, done);
		} else {
			char what[64];
			int x = kvn_err_exit_code(st[i]);
			printf("lease=%llu error=%s\n", id, kvn_err_name(st[i]));
			snprintf(what, sizeof what, "%s lease=%llu", cmd, id);
			if (st[i] == KVN_ESTATE)
				fprintf(stderr, "kvnode: %s: %s (not a live lease: unknown, expired or ended already)\n",
					what, kvn_strerror(st[i]));
			else
				x = cli_fail(what, st[i], c);
			if (!ret)
				ret = x;
		}
	}
	if (whole)
		fprintf(stderr, "kvnode: %s: the call failed (%s); the master may have %s some of these leases "
				"before it did: such an id answers KVN_ESTATE next time\n",
			cmd, kvn_strerror(whole), renew ? "renewed" : "ended");
	free(st);
	free(dl);
	return ret;
}

int cli_queue_main(struct kvn_client *c, int argc, char **argv)
{
	struct queue_args a;
	int rc;

	if (queue_args(argc, argv, &a) != 0)
		return 2;
	if (strcmp(argv[0], "lease") == 0)
		rc = cmd_lease(c, &a);
	else
		rc = cmd_release_renew(c, &a, strcmp(argv[0], "renew") == 0);
	free(a.ids);
	return rc;
}

/* ---- get --ref KEY@GEN ---- */

int cli_ref_parse(const char *ref, uint8_t *key, size_t *klen, uint64_t *gen)
{
	const char *at = strrchr(ref, '@');

	if (!at || at == ref || parse_u64(at + 1, UINT64_MAX, gen) != 0 || *gen == 0) {
		fprintf(stderr, "kvnode: get: --ref '%s': want KEY@GEN (GEN a non-zero decimal generation), "
				"as lease prints key= and gen=\n",
			ref);
		return -1;
	}
	*klen = cli_key_parse(ref, (size_t)(at - ref), key, KVN_MAX_KEY);
	if (*klen == 0) {
		fprintf(stderr, "kvnode: get: --ref '%s': the key is longer than %d bytes\n", ref, KVN_MAX_KEY);
		return -1;
	}
	return 0;
}

int cli_get_ref(struct kvn_client *c, const char *ref, void **val, size_t *vlen)
{
	uint8_t key[KVN_MAX_KEY];
	size_t klen, cap = 64 * 1024, got = 0;
	uint64_t gen;
	char what[160];
	int rc;

	if (cli_ref_parse(ref, key, &klen, &gen) != 0)
		return 2;
	/* the size is known only once asked: a second read with room for it
	 * (the bytes of a generation never change) */
	for (int tries = 0; tries < 2; tries++) {
		*val = kvn_xmalloc(cap ? cap : 1);
		rc = kvn_get_gen(c, key, klen, gen, *val, cap, &got);
		if (rc != KVN_ERANGE || got <= cap)
			break;
		free(*val);
		*val = NULL;
		cap = got;
	}
	if (rc == 0) {
		*vlen = got;
		return 0;
	}
	free(*val);
	*val = NULL;
	snprintf(what, sizeof what, "get --ref '%.100s'", ref);
	if (rc == KVN_ESTALE)
		fprintf(stderr, "kvnode: %s: %s (generation %llu of that key no longer exists: superseded or "
				"consumed)\n",
			what, kvn_strerror(rc), (unsigned long long)gen);
	else if (rc == KVN_EPEERDOWN)
		fprintf(stderr, "kvnode: %s: %s (the node holding generation %llu is down; the sample is lost "
				"until it returns)\n",
			what, kvn_strerror(rc), (unsigned long long)gen);
	else
		return cli_fail(what, rc, c);
	return kvn_err_exit_code(rc);
}

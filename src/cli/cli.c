/*
 * cli: the `kvnode --role client` commands other than bench: ping, put,
 * get, exists, rm, pin, unpin, evict (and, through cli_queue.c, the
 * queue's lease, release, renew, get --ref; through cli_stat.c, stat;
 * through cli_ls.c, ls).
 * Owns the dispatch: -h/--help of any command prints its usage (from
 * cli_usage.c's table) and exits 0, and every command's arguments are
 * checked before any connection (exit 2, the argument named).  Each prints
 * what happened and exits with the
 * status of its first failure (kvn_err_exit_code), so scripts can tell a
 * missing key from an authentication failure from a full cluster.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client.h"
#include "base/base.h"
#include "cli/cli.h"

int cli_fail(const char *what, int rc, struct kvn_client *c)
{
	const char *d = kvn_last_detail(c);
	int has = d && *d;
	fprintf(stderr, "kvnode: %s: %s%s%s%s\n", what, kvn_strerror(rc), has ? " (" : "", has ? d : "",
		has ? ")" : "");
	return kvn_err_exit_code(rc);
}

static int connect_from(struct kvn_conf *conf, struct kvn_client **c)
{
	int rc = client_connect_conf(conf, c);
	if (rc) {
		const char *d = kvn_last_detail(NULL);
		/* a refused secret file or a bad setting stops the client before it
		 * dials: do not say it could not connect */
		int local = rc == KVN_ECONFIG || strncmp(d, "auth.client_secret_file", 23) == 0;
		fprintf(stderr, "kvnode: %s: %s%s%s%s\n",
			local ? "client not started, no connection attempted" : "cannot connect to the master",
			kvn_strerror(rc), *d ? " (" : "", d, *d ? ")" : "");
		return kvn_err_exit_code(rc);
	}
	return 0;
}

/* Whole file (or standard input) into memory, at most `max` bytes. */
static int read_value(const char *path, uint64_t max, void **out, size_t *len)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 16, n = 0;
	char *buf;

	if (fd < 0) {
		fprintf(stderr, "kvnode: put: %s: %s\n", path, strerror(errno));
		return KVN_EIO;
	}
	buf = kvn_xmalloc(cap);
	for (;;) {
		if (n == cap) {
			if (cap > max) {
				fprintf(stderr, "kvnode: put: %s: larger than node.max_value_size\n", path);
				free(buf);
				if (fd != STDIN_FILENO)
					close(fd);
				return KVN_ETOOBIG;
			}
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb)
				kvn_fatal("out of memory");
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "kvnode: put: %s: %s\n", path, strerror(errno));
			free(buf);
			if (fd != STDIN_FILENO)
				close(fd);
			return KVN_EIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (n > max) {
		fprintf(stderr, "kvnode: put: %s: %zu bytes is larger than node.max_value_size\n", path, n);
		free(buf);
		return KVN_ETOOBIG;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int cmd_ping(struct kvn_client *c)
{
	uint64_t rtt;
	uint32_t peers;
	int rc = kvn_ping(c, &rtt, &peers);
	if (rc)
		return cli_fail("ping", rc, c);
	printf("pong: rtt %llu us, %u peer(s) attached\n", (unsigned long long)rtt, peers);
	return 0;
}

int cli_ttl_arg(int argc, char **argv, int *i, uint64_t *ttl)
{
	const char *why = NULL;

	if (*i >= argc || strcmp(argv[*i], "--ttl") != 0)
		return 0;
	if (*i + 1 >= argc || kvn_parse_duration_ms(argv[*i + 1], ttl, &why) != 0 || *ttl == 0 ||
	    *ttl > 10ull * 366 * 24 * 3600 * 1000) {
		fprintf(stderr, "kvnode: %s: --ttl wants a duration from 1ms to 10 years (e.g. 90s, 1h)\n", argv[0]);
		return -1;
	}
	*i += 2;
	return 1;
}

/* put's options into *po and the first KEY's index into *first; 2 (usage
 * printed) when they are wrong, checked before any connection. */
static int put_args(int argc, char **argv, struct kvn_put_opts *po, int *first)
{
	int i = 1, t;

	memset(po, 0, sizeof *po);
	for (;;) {
		if (i < argc && strcmp(argv[i], "--durable") == 0) {
			po->flags |= KVN_PUT_DURABLE;
			i++;
		} else if (i < argc && strcmp(argv[i], "--queue") == 0) {
			po->flags |= KVN_PUT_QUEUE; /* durable too: the library sends it so */
			i++;
		} else if (i < argc && strcmp(argv[i], "--retain") == 0) {
			po->flags |= KVN_PUT_RETAIN;
			i++;
		} else if ((t = cli_ttl_arg(argc, argv, &i, &po->ttl_ms)) < 0) {
			return cli_usage_error("put", NULL);
		} else if (t == 0) {
			break;
		}
	}
	if ((po->flags & KVN_PUT_RETAIN) && !(po->flags & KVN_PUT_QUEUE))
		return cli_usage_error("put", "--retain is for queue samples: it needs --queue");
	/* an option after the first KEY, or an unknown one, is no key */
	for (int k = i; k < argc; k += 2)
		if (argv[k][0] == '-')
			return cli_usage_error("put", "unexpected option '%s' (a KEY may not start with '-')",
					       argv[k]);
	if (argc - i < 2 || (argc - i) % 2 != 0)
		return cli_usage_error("put", argc - i < 2 ? "KEY FILE wanted" : "KEY '%s' has no FILE",
				       argv[argc - 1]);
	*first = i;
	return 0;
}

static int cmd_put(struct kvn_client *c, int argc, char **argv, uint64_t max)
{
	struct kvn_put_opts po;
	int i, rc, ret = 0;

	if (put_args(argc, argv, &po, &i) != 0)
		return 2;
	size_t n = (size_t)(argc - i) / 2;
	struct kvn_item *items = kvn_xcalloc(n, sizeof *items);
	for (size_t k = 0; k < n; k++) {
		items[k].key = argv[i + 2 * k];
		items[k].klen = strlen(argv[i + 2 * k]);
		rc = read_value(argv[i + 2 * k + 1], max, &items[k].val, &items[k].vlen);
		if (rc) {
			ret = kvn_err_exit_code(rc);
			goto out;
		}
	}
	kvn_batch_put_opts(c, items, n, &po);
	for (size_t k = 0; k < n; k++) {
		if (items[k].status) {
			char what[128];
			snprintf(what, sizeof what, "put '%.100s'", (const char *)items[k].key);
			int x = cli_fail(what, items[k].status, c);
			if (!ret)
				ret = x;
		}
	}
out:
	for (size_t k = 0; k < n; k++)
		free(items[k].val);
	free(items);
	return ret;
}

/* get's arguments: the key or the ref, the output file (NULL: stdout); 2
 * (usage printed) when they are wrong, checked before any connection. */
static int get_args(int argc, char **argv, const char **key, const char **ref, const char **out)
{
	*key = *ref = *out = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && !*out) {
			*out = argv[++i];
		} else if (strcmp(argv[i], "--ref") == 0 && i + 1 < argc && !*ref && !*key) {
			*ref = argv[++i];
		} else if (!*key && !*ref && argv[i][0] != '-') {
			*key = argv[i];
		} else {
			return cli_usage_error("get", "unexpected argument '%s'", argv[i]);
		}
	}
	if (!*key && !*ref)
		return cli_usage_error("get", "KEY wanted");
	if (*ref) {
		uint8_t k[KVN_MAX_KEY];
		size_t klen;
		uint64_t gen;
		if (cli_ref_parse(*ref, k, &klen, &gen) != 0)
			return cli_usage_error("get", NULL);
	}
	return 0;
}

static int cmd_get(struct kvn_client *c, int argc, char **argv)
{
	const char *key, *ref, *out;
	void *val = NULL;
	size_t vlen = 0;
	int rc;

	if (get_args(argc, argv, &key, &ref, &out) != 0)
		return 2;
	if (ref) {
		if ((rc = cli_get_ref(c, ref, &val, &vlen)) != 0)
			return rc;
	} else if ((rc = kvn_get_alloc(c, key, strlen(key), &val, &vlen)) != 0) {
		char what[128];
		snprintf(what, sizeof what, "get '%.100s'", key);
		return cli_fail(what, rc, c);
	}
	int fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : STDOUT_FILENO;
	if (fd < 0 || write_all(fd, val, vlen) != 0) {
		fprintf(stderr, "kvnode: get: %s: %s\n", out ? out : "stdout", strerror(errno));
		free(val);
		if (fd >= 0 && out)
			close(fd);
		return kvn_err_exit_code(KVN_EIO);
	}
	if (out)
		close(fd);
	free(val);
	return 0;
}

/* exists KEY..., rm KEY...: at least one key, none starting with '-'
 * (an option they do not have); 2 after saying so. */
static int keys_args(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error(argv[0], "KEY wanted");
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_usage_error(argv[0], "unexpected option '%s' (a KEY may not start with '-')",
					       argv[i]);
	return 0;
}

static int cmd_keys(struct kvn_client *c, int argc, char **argv, int remove)
{
	int ret = 0;
	size_t n = (size_t)argc - 1;

	if (keys_args(argc, argv) != 0)
		return 2;
	struct kvn_item *items = kvn_xcalloc(n, sizeof *items);
	for (size_t k = 0; k < n; k++) {
		items[k].key = argv[k + 1];
		items[k].klen = strlen(argv[k + 1]);
	}
	if (remove)
		kvn_batch_remove(c, items, n);
	else
		kvn_batch_exists(c, items, n);
	for (size_t k = 0; k < n; k++) {
		char what[128];
		snprintf(what, sizeof what, "%s '%.100s'", argv[0], argv[k + 1]);
		if (items[k].status) {
			int x = cli_fail(what, items[k].status, c);
			if (!ret || ret == 1)
				ret = x;
		} else if (!remove) {
			if (n > 1)
				printf("%s: %s\n", argv[k + 1], items[k].exists ? "yes" : "no");
			if (!items[k].exists && !ret)
				ret = 1;
		}
	}
	free(items);
	return ret;
}

/* pin [--ttl D] KEY..., unpin KEY..., evict KEY...: the arguments,
 * checked before any connection (2: usage); the keys start at *first. */
#define PIN_DEFAULT_TTL_MS 60000
static int hold_args(int argc, char **argv, uint64_t *ttl, int *first)
{
	int i = 1, pin = strcmp(argv[0], "pin") == 0;

	*ttl = PIN_DEFAULT_TTL_MS;
	if (pin && cli_ttl_arg(argc, argv, &i, ttl) < 0)
		return cli_usage_error(argv[0], NULL);
	*first = i;
	if (i >= argc)
		return cli_usage_error(argv[0], "KEY wanted");
	for (int k = i; k < argc; k++)
		if (argv[k][0] == '-')
			return cli_usage_error(argv[0], "unexpected option '%s' (a KEY may not start with '-')",
					       argv[k]);
	return 0;
}

static int cmd_hold(struct kvn_client *c, int argc, char **argv)
{
	uint64_t ttl;
	int first, ret = 0;

	if (hold_args(argc, argv, &ttl, &first) != 0)
		return 2;
	size_t n = (size_t)(argc - first);
	struct kvn_item *items = kvn_xcalloc(n, sizeof *items);
	for (size_t k = 0; k < n; k++) {
		items[k].key = argv[first + (int)k];
		items[k].klen = strlen(argv[first + (int)k]);
	}
	if (strcmp(argv[0], "pin") == 0)
		kvn_batch_pin(c, items, n, ttl);
	else if (strcmp(argv[0], "unpin") == 0)
		kvn_batch_unpin(c, items, n);
	else
		kvn_batch_evict(c, items, n);
	for (size_t k = 0; k < n; k++) {
		if (items[k].status) {
			char what[128];
			snprintf(what, sizeof what, "%s '%.100s'", argv[0], (const char *)items[k].key);
			int x = cli_fail(what, items[k].status, c);
			if (!ret)
				ret = x;
		}
	}
	free(items);
	return ret;
}

int cli_main(int argc, char **argv, struct kvn_conf *conf)
{
	struct kvn_client *c = NULL;
	const char *cmd = argv[0];
	uint64_t max = conf->node_max_value_size;
	int rc;

	if (!cli_cmd_known(cmd)) {
		fprintf(stderr, "kvnode: unknown command '%s' (%s)\n", cmd, cli_cmd_names());
		return 2;
	}
	if (cli_help_asked(argc, argv)) {
		cli_help(stdout, cmd);
		return 0;
	}
	if (strcmp(cmd, "bench") == 0)
		return cli_bench(argc, argv, conf);
	int hold = !strcmp(cmd, "pin") || !strcmp(cmd, "unpin") || !strcmp(cmd, "evict");
	int queue = cli_queue_cmd(cmd);
	uint64_t ttl;
	int first, json;
	struct kvn_put_opts po;
	const char *gk, *gr, *go;
	if ((hold && hold_args(argc, argv, &ttl, &first) != 0) ||
	    (strcmp(cmd, "put") == 0 && put_args(argc, argv, &po, &first) != 0) ||
	    (strcmp(cmd, "get") == 0 && get_args(argc, argv, &gk, &gr, &go) != 0) ||
	    ((strcmp(cmd, "exists") == 0 || strcmp(cmd, "rm") == 0) && keys_args(argc, argv) != 0) ||
	    (strcmp(cmd, "stat") == 0 && cli_stat_args(argc, argv, &json) != 0) ||
	    (strcmp(cmd, "ls") == 0 && cli_ls_args(argc, argv) != 0) ||
	    (queue && cli_queue_args(argc, argv) != 0))
		return 2;
	if (strcmp(cmd, "ping") == 0 && argc > 1)
		return cli_usage_error("ping", "unexpected argument '%s'", argv[1]);
	rc = connect_from(conf, &c);
	if (rc)
		return rc;
	if (strcmp(cmd, "ping") == 0)
		rc = cmd_ping(c);
	else if (strcmp(cmd, "put") == 0)
		rc = cmd_put(c, argc, argv, max);
	else if (strcmp(cmd, "get") == 0)
		rc = cmd_get(c, argc, argv);
	else if (strcmp(cmd, "exists") == 0)
		rc = cmd_keys(c, argc, argv, 0);
	else if (strcmp(cmd, "rm") == 0)
		rc = cmd_keys(c, argc, argv, 1);
	else if (hold)
		rc = cmd_hold(c, argc, argv);
	else if (queue)
		rc = cli_queue_main(c, argc, argv);
	else if (strcmp(cmd, "ls") == 0)
		rc = cli_ls_main(c, argc, argv);
	else
		rc = cli_stat_main(c, argc, argv);
	kvn_close(c);
	return rc;
}

/*
 * bench_targets: what `kvnode bench` drives.  kvnode goes through the client
 * API (include/kvnode.h); redis and memcached are spoken directly
 * (bench_sock.c).  Also parses --target.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "client/client.h"
#include "cli/cli.h"

/* ---- kvnode: the client API ---------------------------------------------- */

struct kv_handle {
	struct kvn_client *c;
	unsigned flags;
};

static int kv_connect(const struct cli_bench_cfg *cfg, void **out, char *err, size_t errlen)
{
	struct kvn_conf conf;
	struct kv_handle *h;
	int rc;

	if (!cfg->conf) {
		snprintf(err, errlen, "kvnode: connect: no client configuration");
		return KVN_ECONFIG;
	}
	/* The whole config, --set overrides included (client.route_cache_ttl,
	 * client.timeout, ...); client_connect_conf takes the copy's strings. */
	kvn_conf_copy(&conf, cfg->conf);
	if (cfg->timeout_given)
		conf.client_timeout = cfg->timeout_ms;
	h = kvn_xcalloc(1, sizeof(*h));
	h->flags = cfg->put_flags;
	rc = client_connect_conf(&conf, &h->c);
	if (rc) {
		snprintf(err, errlen, "kvnode: connect: %s", kvn_strerror(rc));
		free(h);
		return rc;
	}
	*out = h;
	return 0;
}

#define KVH(h) ((struct kv_handle *)(h))

static int kv_put(void *h, const void *key, size_t klen, const void *val, size_t vlen)
{
	return kvn_put(KVH(h)->c, key, klen, val, vlen, KVH(h)->flags);
}

static int kv_get(void *h, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
	return kvn_get(KVH(h)->c, key, klen, buf, cap, vlen);
}

static int kv_batch_put(void *h, struct kvn_item *items, size_t n)
{
	return kvn_batch_put(KVH(h)->c, items, n, KVH(h)->flags);
}

static int kv_batch_get(void *h, struct kvn_item *items, size_t n)
{
	return kvn_batch_get(KVH(h)->c, items, n);
}

static int kv_exists(void *h, const void *key, size_t klen)
{
	return kvn_exists(KVH(h)->c, key, klen);
}

static int kv_batch_exists(void *h, struct kvn_item *items, size_t n)
{
	return kvn_batch_exists(KVH(h)->c, items, n);
}

static int kv_batch_remove(void *h, struct kvn_item *items, size_t n)
{
	return kvn_batch_remove(KVH(h)->c, items, n);
}

static const char *kv_detail(void *h)
{
	return kvn_last_detail(KVH(h)->c);
}

static void kv_close(void *h)
{
	if (h)
		kvn_close(KVH(h)->c);
	free(h);
}

/* A durable put acknowledges after its group's COMMIT, and the master's
 * writer commits groups in order: every write acknowledged before it is then
 * in master.db too, and the writer is idle unless another client writes. */
static int kv_settle(void *h, unsigned client)
{
	char key[KEY_CAP];
	int n = bench_settle_key(key, sizeof key, client);
	/* one key per client: a put racing another of the same key waits for it */
	return kvn_put(KVH(h)->c, key, (size_t)n, "", 0, KVN_PUT_DURABLE);
}

static const struct cli_bench_target target_kvnode = {
	.name = "kvnode", .connect = kv_connect, .put = kv_put, .get = kv_get,
	.batch_put = kv_batch_put, .batch_get = kv_batch_get, .exists = kv_exists,
	.batch_exists = kv_batch_exists, .detail = kv_detail, .close = kv_close, .settle = kv_settle,
	.batch_remove = kv_batch_remove,
};

/* ---- --target -------------------------------------------------------------- */

/* Host names and addresses only: the report prints the host into JSON. */
#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:%"

int cli_bench_target_parse(const char *spec, const struct cli_bench_target **t,
			   struct cli_bench_cfg *cfg, char *err, size_t errlen)
{
	static const struct {
		const char *scheme;
		const struct cli_bench_target *t;
	} schemes[] = { { "redis://", &cli_bench_redis }, { "memcached://", &cli_bench_memcached } };

	if (!spec || strcmp(spec, "kvnode") == 0) {
		*t = &target_kvnode;
		return 0;
	}
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t sl = strlen(schemes[i].scheme);
		if (strncmp(spec, schemes[i].scheme, sl) != 0)
			continue;
		if (kvn_split_hostport(spec + sl, cfg->host, sizeof(cfg->host), &cfg->port) ||
		    cfg->port == 0 || strspn(cfg->host, HOST_CHARS) != strlen(cfg->host)) {
			snprintf(err, errlen, "--target %s: expected %sHOST:PORT", spec,
				 schemes[i].scheme);
			return KVN_EINVAL;
		}
		*t = schemes[i].t;
		return 0;
	}
	snprintf(err, errlen,
		 "--target %s: expected kvnode, redis://HOST:PORT or memcached://HOST:PORT", spec);
	return KVN_EINVAL;
}

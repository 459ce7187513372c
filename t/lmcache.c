/* t/lmcache: the LMCache-style connector of examples/ against a real node:
 * 64 chunks of 2 MiB, half stored synchronously and half in the
 * background (completions through its fd), the prefix count after the
 * partial store, one batch retrieve of all 64 compared byte for byte, and
 * lmc_close draining stores nobody reaped. */
#include "config.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "../examples/lmcache_connector.h"
#include "base/base.h"
#include "proc.h"
#include "tap.h"

enum { NCHUNK = 64, CHUNK = 2 << 20 };

static char conf[300];
static uint8_t *chunks[NCHUNK];
static uint64_t hashes[NCHUNK];

static void fixture(void)
{
	static int up;

	if (up)
		return;
	up = 1;
	proc_start_node("aio", "512MiB", NULL, conf, sizeof conf);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "all-in-one node up");
	kvn_close(c);
	if (!c)
		exit(1);
	uint64_t h = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < NCHUNK; i++) {
		h = h * 6364136223846793005ull + 1442695040888963407ull; /* a chained hash */
		hashes[i] = h;
		chunks[i] = kvn_xmalloc(CHUNK);
		proc_fill(chunks[i], CHUNK, h);
	}
}

static void t_connector(void)
{
	fixture();
	struct lmc *l = NULL;
	size_t count = 99, failed = 0, lens[NCHUNK];
	void *bufs[NCHUNK];

	is_int(lmc_open(conf, "llama-3-8b", "vllm-fp16-256tok", &l), 0, "connector open");
	if (!l)
		return;
	int rc = 0;
	for (int i = 0; i < NCHUNK / 2; i++)
		rc |= lmc_store(l, hashes[i], chunks[i], CHUNK);
	is_int(rc, 0, "the first 32 chunks stored");
	is_int(lmc_contains_prefix(l, hashes, NCHUNK, &count), 0, "contains-prefix of all 64");
	is_int(count, NCHUNK / 2, "after the partial store: 32");

	/* the other half in the background, 4 batches of 8 */
	rc = 0;
	for (int b = 0; b < 4; b++) {
		int at = NCHUNK / 2 + b * 8;
		rc |= lmc_store_async(l, hashes + at, (const void *const *)(chunks + at), CHUNK, 8);
	}
	is_int(rc, 0, "32 chunks submitted as 4 async stores");
	struct pollfd p = { .fd = lmc_fd(l), .events = POLLIN };
	int batches = 0;
	uint64_t until = kvn_now_ms() + 20000;
	while (batches < 4 && kvn_now_ms() < until)
		if (poll(&p, 1, 1000) > 0)
			batches += lmc_reap(l, &failed);
	is_int(batches, 4, "the fd signalled, 4 completions reaped");
	is_int(failed, 0, "no chunk failed");
	is_int(lmc_contains_prefix(l, hashes, NCHUNK, &count), 0, "contains-prefix again");
	is_int(count, NCHUNK, "all 64");
	uint64_t holed[NCHUNK];
	memcpy(holed, hashes, sizeof holed);
	holed[40] ^= 1; /* a chunk nobody stored */
	lmc_contains_prefix(l, holed, NCHUNK, &count);
	is_int(count, 40, "a prefix that misses chunk 40: 40");

	for (int i = 0; i < NCHUNK; i++)
		bufs[i] = kvn_xmalloc(CHUNK);
	is_int(lmc_retrieve(l, hashes, NCHUNK, bufs, CHUNK, lens), 0, "batch retrieve of 64");
	int bad = 0;
	for (int i = 0; i < NCHUNK; i++) {
		bad += lens[i] != CHUNK || memcmp(bufs[i], chunks[i], CHUNK) != 0;
		free(bufs[i]);
	}
	is_int(bad, 0, "64 chunks of 2 MiB byte for byte");
	lmc_close(l);
}

/* Async stores nobody reaped: lmc_close waits for them (kvn_close's
 * drain would too; the connector reaps to free its own blocks). */
static void t_close_drains(void)
{
	fixture();
	struct lmc *l = NULL;
	size_t count = 0, lens[16];
	void *bufs[16];

	is_int(lmc_open(conf, "llama-3-8b", "close-layout", &l), 0, "connector open");
	if (!l)
		return;
	int rc = 0;
	for (int b = 0; b < 4; b++)
		rc |= lmc_store_async(l, hashes + b * 4, (const void *const *)(chunks + b * 4), CHUNK, 4);
	is_int(rc, 0, "16 chunks submitted, none reaped");
	lmc_close(l);
	l = NULL;
	is_int(lmc_open(conf, "llama-3-8b", "close-layout", &l), 0, "open again");
	if (!l)
		return;
	lmc_contains_prefix(l, hashes, NCHUNK, &count);
	is_int(count, 16, "all 16 were stored before close returned");
	for (int i = 0; i < 16; i++)
		bufs[i] = kvn_xmalloc(CHUNK);
	is_int(lmc_retrieve(l, hashes, 16, bufs, CHUNK, lens), 0, "retrieve them");
	int bad = 0;
	for (int i = 0; i < 16; i++) {
		bad += lens[i] != CHUNK || memcmp(bufs[i], chunks[i], CHUNK) != 0;
		free(bufs[i]);
	}
	is_int(bad, 0, "byte for byte");
	lmc_close(l);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", fixture },
		{ "connector", t_connector },
		{ "close_drains", t_close_drains },
		{ NULL, NULL },
	};

	if (proc_init("lmcache") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(300);
	int rc = tap_run(tests, argc, argv);
	for (int i = 0; i < NCHUNK; i++)
		free(chunks[i]);
	return rc;
}

/*
 * t/embed: embedded mode, as a program sees it: written against
 * include/kvnode-embed.h and include/kvnode.h alone and linked with
 * libkvnode-embed only.  Round trips byte for byte (values over 1 MiB,
 * batches), the data_dir lock, durable data after close and open again,
 * no socket unless asked, async puts drained by the closes, clients on
 * several threads.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvnode-embed.h"
#include "tap.h"

static char tmpdir[256];

static void mkbase(void)
{
	if (tmpdir[0])
		return;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kvn-embed-XXXXXX");
	if (!mkdtemp(tmpdir))
		abort();
}

static void rmrf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("cannot remove %s", dir);
}

static const char *subdir(const char *name)
{
	static char path[512];
	mkbase();
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	return path;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

/* A port nothing listens on right now. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &len) != 0)
		abort();
	close(s);
	return ntohs(a.sin_port);
}

static int can_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int rc = connect(s, (struct sockaddr *)&a, sizeof a);
	close(s);
	return rc == 0;
}

/* Sockets of this process in the LISTEN state: its socket inodes looked
 * up in /proc/net/{tcp,tcp6} (state 0A) and /proc/net/unix (flags with
 * __SO_ACCEPTCON). */
static int listening_sockets(void)
{
	unsigned long inodes[512];
	int n = 0, listening = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char path[300], target[64], line[512];

	while (d && (de = readdir(d)) && n < 512) {
		snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
		ssize_t len = readlink(path, target, sizeof target - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (sscanf(target, "socket:[%lu]", &inodes[n]) == 1)
			n++;
	}
	if (d)
		closedir(d);
	const char *files[] = { "/proc/net/tcp", "/proc/net/tcp6", "/proc/net/unix" };
	for (int f = 0; f < 3; f++) {
		FILE *fp = fopen(files[f], "r");
		if (!fp)
			continue;
		while (fgets(line, sizeof line, fp)) {
			unsigned long inode = 0;
			int is_listen = 0;
			if (f < 2) {
				char st[8];
				/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
				if (sscanf(line, "%*s %*s %*s %7s %*s %*s %*s %*s %*s %lu", st, &inode) != 2)
					continue;
				is_listen = strcmp(st, "0A") == 0;
			} else {
				unsigned long flags;
				/* Num RefCount Protocol Flags Type St Inode */
				if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu", &flags, &inode) != 2)
					continue;
				is_listen = (flags & 0x10000) != 0;
			}
			for (int i = 0; i < n && is_listen; i++)
				if (inodes[i] == inode)
					listening++;
		}
		fclose(fp);
	}
	return listening;
}

/* Socket files in dir (the daemon's peer.sock and peer.sock.map would be
 * there): the same-host path of embedded clients needs none. */
static int socket_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	char path[1024];
	int n = 0;
	while (d && (de = readdir(d))) {
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* A config with these ports, for the socket checks. */
static const char *write_conf(const char *name, int mport, int pport)
{
	static char path[512];
	snprintf(path, sizeof path, "%s", subdir(name));
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	fprintf(f, "[master]\nlisten = 127.0.0.1:%d\n[peer]\nlisten = 127.0.0.1:%d\n[client]\nmaster = 127.0.0.1:%d\n",
		mport, pport, mport);
	fclose(f);
	return path;
}

static struct kvn_embed *open_dir(const char *dir, uint64_t disk)
{
	struct kvn_embed_options o = { .data_dir = dir, .dram_size = 64u << 20, .disk_size = disk,
				       .timeout_ms = 10000 };
	struct kvn_embed *e = NULL;
	int rc = kvn_embed_open(&o, &e);
	if (rc)
		tap_diag("kvn_embed_open(%s): %s: %s", dir, kvn_strerror(rc), kvn_last_detail(NULL));
	return e;
}

/* ---- cases ---- */

static void t_roundtrip(void)
{
	const char *dir = subdir("rt");
	struct kvn_embed *e = open_dir(dir, 0);
	ok(e != NULL, "kvn_embed_open");
	if (!e)
		return;
	struct kvn_client *c = kvn_embed_client(e);
	ok(c != NULL, "kvn_embed_client gives the handle's client");

	size_t sizes[] = { 0, 1, 4096, (1u << 20) + 7, 3u << 20 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char key[32];
		size_t n = sizes[i], got = 0;
		uint8_t *v = malloc(n + 1), *back = malloc(n + 1);
		fill(v, n, (uint32_t)i + 1);
		snprintf(key, sizeof key, "rt-%zu", n);
		is_int(kvn_put(c, key, strlen(key), v, n, 0), 0, "put %zu bytes", n);
		memset(back, 0xee, n + 1);
		is_int(kvn_get(c, key, strlen(key), back, n + 1, &got), 0, "get %zu bytes", n);
		ok(got == n && memcmp(back, v, n) == 0, "the %zu bytes read are the bytes written", n);
		void *a = NULL;
		size_t alen = 0;
		is_int(kvn_get_alloc(c, key, strlen(key), &a, &alen), 0, "get_alloc %zu", n);
		ok(alen == n && (n == 0 || memcmp(a, v, n) == 0), "and byte for byte");
		free(a);
		free(v);
		free(back);
	}
	uint64_t gen = 0;
	uint8_t small[100], rb[100];
	size_t rl = 0;
	fill(small, sizeof small, 77);
	is_int(kvn_put_gen(c, "g", 1, small, sizeof small, KVN_PUT_DURABLE, &gen), 0, "durable put_gen");
	ok(gen > 0, "it names a generation (%llu)", (unsigned long long)gen);
	is_int(kvn_get_gen(c, "g", 1, gen, rb, sizeof rb, &rl), 0, "get_gen of it");
	ok(rl == sizeof small && memcmp(rb, small, rl) == 0, "byte for byte");

	/* batches: 8 items, one of them over 1 MiB */
	enum { N = 8 };
	struct kvn_item it[N];
	char keys[N][16];
	uint8_t *vals[N];
	size_t vlen[N];
	memset(it, 0, sizeof it);
	for (int i = 0; i < N; i++) {
		vlen[i] = i == 3 ? (3u << 19) + 11 : 1000u * (size_t)(i + 1);
		vals[i] = malloc(vlen[i]);
		fill(vals[i], vlen[i], 100u + (uint32_t)i);
		snprintf(keys[i], sizeof keys[i], "batch-%d", i);
		it[i].key = keys[i];
		it[i].klen = strlen(keys[i]);
		it[i].val = vals[i];
		it[i].vlen = vlen[i];
	}
	is_int(kvn_batch_put(c, it, N, 0), 0, "batch_put of %d items", N);
	for (int i = 0; i < N; i++) {
		it[i].val = NULL;
		it[i].vlen = 0;
		it[i].cap = 0;
	}
	is_int(kvn_batch_get(c, it, N), 0, "batch_get");
	int same = 0;
	for (int i = 0; i < N; i++) {
		same += it[i].status == 0 && it[i].vlen == vlen[i] && memcmp(it[i].val, vals[i], vlen[i]) == 0;
		free(it[i].val);
		it[i].val = NULL;
	}
	is_int(same, N, "every item byte for byte");
	is_int(kvn_batch_exists(c, it, N), 0, "batch_exists");
	int ex = 0;
	for (int i = 0; i < N; i++)
		ex += it[i].exists;
	is_int(ex, N, "every item exists");
	is_int(kvn_exists(c, "batch-0", 7), 1, "exists");
	is_int(kvn_remove(c, "batch-0", 7), 0, "remove");
	is_int(kvn_exists(c, "batch-0", 7), 0, "gone after remove");
	is_int(kvn_get(c, "batch-0", 7, rb, sizeof rb, &rl), KVN_ENOTFOUND, "get after remove: KVN_ENOTFOUND");
	is_int(kvn_batch_remove(c, it + 1, N - 1), 0, "batch_remove of the rest");
	is_int(kvn_exists(c, "batch-5", 7), 0, "gone");
	size_t cnt = 99;
	struct kvn_item pre[2] = { { .key = "rt-1", .klen = 4 }, { .key = "nope", .klen = 4 } };
	is_int(kvn_exists_prefix(c, pre, 2, &cnt), 0, "exists_prefix");
	is_int((int)cnt, 1, "one leading key exists");
	uint32_t peers = 0;
	is_int(kvn_ping(c, NULL, &peers), 0, "ping");
	is_int((int)peers, 1, "the master has its one peer");
	for (int i = 0; i < N; i++)
		free(vals[i]);
	kvn_embed_close(e);
	rmrf(dir);
}

static void t_lock(void)
{
	const char *d = subdir("lock");
	char dir[512];
	snprintf(dir, sizeof dir, "%s", d);
	struct kvn_embed *a = open_dir(dir, 0), *b = NULL;
	ok(a != NULL, "open");
	struct kvn_embed_options o = { .data_dir = dir, .dram_size = 16u << 20 };
	is_int(kvn_embed_open(&o, &b), KVN_EBUSY, "a second open of the same data_dir: KVN_EBUSY");
	ok(b == NULL, "and no handle");
	const char *why = kvn_last_detail(NULL);
	ok(strstr(why, "in use") && strstr(why, "LOCK") && strstr(why, dir), "the detail says why: %s", why);
	ok(strstr(why, "another kvn_embed handle") != NULL, "and that the holder is this process");
	kvn_embed_close(a);
	a = open_dir(dir, 0);
	ok(a != NULL, "open again after close: the lock was released");
	kvn_embed_close(a);

	/* another process holds it: refused too, naming that process */
	int up[2], go[2];
	char c = 0;
	if (pipe(up) != 0 || pipe(go) != 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		struct kvn_embed *ce = NULL;
		int rc = kvn_embed_open(&o, &ce);
		c = rc == 0 ? 'y' : 'n';
		if (write(up[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(3);
		kvn_embed_close(ce);
		_exit(rc == 0 ? 0 : 2);
	}
	ok(read(up[0], &c, 1) == 1 && c == 'y', "a child process opens it");
	is_int(kvn_embed_open(&o, &b), KVN_EBUSY, "this process's open: KVN_EBUSY");
	char pidstr[32];
	snprintf(pidstr, sizeof pidstr, "(pid %ld)", (long)pid);
	why = kvn_last_detail(NULL);
	ok(strstr(why, pidstr) && !strstr(why, "another kvn_embed handle"), "naming the child: %s", why);
	if (write(go[1], "x", 1) != 1)
		abort();
	int status = -1;
	waitpid(pid, &status, 0);
	is_int(status, 0, "the child closed it and exited");
	a = open_dir(dir, 0);
	ok(a != NULL, "then this process opens it");
	kvn_embed_close(a);
	close(up[0]);
	close(up[1]);
	close(go[0]);
	close(go[1]);

	struct kvn_embed_options bad = { .data_dir = dir, .dram_size = 1000 };
	is_int(kvn_embed_open(&bad, &b), KVN_ECONFIG, "a dram_size out of range: KVN_ECONFIG");
	ok(strstr(kvn_last_detail(NULL), "dram_size") != NULL, "naming the key: %s", kvn_last_detail(NULL));
	rmrf(dir);
}

static void t_reopen(void)
{
	const char *d = subdir("durable");
	char dir[512];
	snprintf(dir, sizeof dir, "%s", d);
	size_t n = (2u << 20) + 5;
	uint8_t *v = malloc(n), *back = malloc(n);
	size_t got = 0;
	fill(v, n, 9);

	/* with a disk tier and peer.flush_on_stop (a config file's key: the
	 * options struct has only the few every program needs), close writes
	 * the DRAM values to disk, and the next open finds them, as a
	 * restarted all-in-one node does */
	char cpath[512];
	snprintf(cpath, sizeof cpath, "%s", subdir("flush.conf"));
	FILE *f = fopen(cpath, "w");
	fprintf(f, "[peer]\nflush_on_stop = on\n");
	fclose(f);
	struct kvn_embed_options o = { .config_path = cpath, .data_dir = dir, .dram_size = 64u << 20,
				       .disk_size = 64u << 20 };
	struct kvn_embed *e = NULL;
	is_int(kvn_embed_open(&o, &e), 0, "open with a disk tier and flush_on_stop");
	if (!e)
		return;
	is_int(kvn_put(kvn_embed_client(e), "keep", 4, v, n, KVN_PUT_DURABLE), 0, "durable put of %zu bytes", n);
	is_int(kvn_put(kvn_embed_client(e), "small", 5, "abc", 3, 0), 0, "and a small one");
	kvn_embed_close(e);
	e = NULL;
	is_int(kvn_embed_open(&o, &e), 0, "open again");
	if (!e)
		return;
	memset(back, 0, n);
	is_int(kvn_get(kvn_embed_client(e), "keep", 4, back, n, &got), 0, "get after reopen");
	ok(got == n && memcmp(back, v, n) == 0, "byte for byte");
	char s[8];
	is_int(kvn_get(kvn_embed_client(e), "small", 5, s, sizeof s, &got), 0, "the small one too");
	ok(got == 3 && memcmp(s, "abc", 3) == 0, "abc");
	kvn_embed_close(e);

	/* DRAM only: the values went with the process, as with kvnode */
	snprintf(dir, sizeof dir, "%s", subdir("dram"));
	e = open_dir(dir, 0);
	is_int(kvn_put(kvn_embed_client(e), "gone", 4, "x", 1, KVN_PUT_DURABLE), 0, "DRAM only: put");
	kvn_embed_close(e);
	e = open_dir(dir, 0);
	is_int(kvn_get(kvn_embed_client(e), "gone", 4, s, sizeof s, &got), KVN_ENOTFOUND,
	       "after reopen: KVN_ENOTFOUND (its node came back empty)");
	kvn_embed_close(e);
	free(v);
	free(back);
	rmrf(subdir("durable"));
	rmrf(dir);
}

static void t_nosocket(void)
{
	int mport = free_port(), pport = free_port();
	const char *conf = write_conf("ports.conf", mport, pport);
	char cpath[512];
	snprintf(cpath, sizeof cpath, "%s", conf);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", subdir("nosock"));
	int before = listening_sockets();
	struct kvn_embed_options o = { .config_path = cpath, .data_dir = dir, .dram_size = 16u << 20 };
	struct kvn_embed *e = NULL;
	is_int(kvn_embed_open(&o, &e), 0, "open with master.listen :%d, peer.listen :%d configured", mport, pport);
	if (!e)
		return;
	is_int(kvn_put(kvn_embed_client(e), "k", 1, "v", 1, 0), 0, "a put works");
	/* values big enough for the same-host path (client.local = auto, the
	 * default): it needs no socket either */
	size_t n = (1u << 20) + 3, got = 0;
	uint8_t *v = malloc(n), *back = malloc(n);
	fill(v, n, 4);
	ok(kvn_put(kvn_embed_client(e), "big", 3, v, n, 0) == 0 &&
		   kvn_get(kvn_embed_client(e), "big", 3, back, n, &got) == 0 && got == n && memcmp(back, v, n) == 0,
	   "a 1 MiB put and get work");
	free(v);
	free(back);
	is_int(listening_sockets(), before, "no listening socket was opened (%d before)", before);
	is_int(socket_files(dir), 0, "no socket file in the data_dir");
	ok(!can_connect(mport) && !can_connect(pport), "nothing answers on either port");
	kvn_embed_close(e);

	/* the control: asked to listen, both ports answer, and the check
	 * above sees the sockets */
	o.listen = 1;
	is_int(kvn_embed_open(&o, &e), 0, "open with listen = 1");
	if (!e)
		return;
	is_int(listening_sockets(), before + 2, "two listening sockets");
	ok(can_connect(mport) && can_connect(pport), "both ports answer");
	kvn_embed_close(e);
	is_int(listening_sockets(), before, "closed with the handle");
	rmrf(dir);
}

static int ncb;
static void on_done(void *arg, int status)
{
	(void)arg;
	if (status == 0)
		ncb++;
}

static void t_drain(void)
{
	const char *d = subdir("drain");
	char dir[512];
	snprintf(dir, sizeof dir, "%s", d);
	enum { N = 48 };
	size_t n = 256u << 10;
	uint8_t *v = malloc(n * N);
	for (int i = 0; i < N; i++)
		fill(v + (size_t)i * n, n, 500u + (uint32_t)i);
	struct kvn_embed *e = open_dir(dir, 0);
	ok(e != NULL, "open");
	if (!e)
		return;

	/* a second client: kvn_close drains it */
	struct kvn_client *c2 = NULL;
	is_int(kvn_embed_connect(e, &c2), 0, "kvn_embed_connect");
	ncb = 0;
	int started = 0;
	for (int i = 0; i < N; i++) {
		char key[16];
		snprintf(key, sizeof key, "a%d", i);
		started += kvn_put_async(c2, key, strlen(key), v + (size_t)i * n, n, 0, on_done, NULL) == 0;
	}
	is_int(started, N, "%d async puts started", N);
	kvn_close(c2);
	is_int(ncb, N, "kvn_close ran every callback: drained");
	int same = 0;
	for (int i = 0; i < N; i++) {
		char key[16];
		void *b = NULL;
		size_t bl = 0;
		snprintf(key, sizeof key, "a%d", i);
		same += kvn_get_alloc(kvn_embed_client(e), key, strlen(key), &b, &bl) == 0 && bl == n &&
			memcmp(b, v + (size_t)i * n, n) == 0;
		free(b);
	}
	is_int(same, N, "every value stored, byte for byte");

	/* the handle's own client: kvn_embed_close drains it */
	ncb = 0;
	started = 0;
	for (int i = 0; i < N; i++) {
		char key[16];
		snprintf(key, sizeof key, "b%d", i);
		started += kvn_put_async(kvn_embed_client(e), key, strlen(key), v + (size_t)i * n, n, 0, on_done,
					 NULL) == 0;
	}
	is_int(started, N, "%d more on the handle's client", N);
	kvn_embed_close(e);
	is_int(ncb, N, "kvn_embed_close ran every callback before stopping the node");
	free(v);
	rmrf(dir);
}

struct worker {
	struct kvn_embed *e;
	int id, good;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct kvn_client *c = NULL;
	uint8_t v[70000], b[70000];
	if (kvn_embed_connect(w->e, &c) != 0)
		return NULL;
	for (int i = 0; i < 50; i++) {
		char key[32];
		size_t got = 0;
		snprintf(key, sizeof key, "t%d-%d", w->id, i);
		fill(v, sizeof v, (uint32_t)(w->id * 1000 + i));
		if (kvn_put(c, key, strlen(key), v, sizeof v, 0) == 0 &&
		    kvn_get(c, key, strlen(key), b, sizeof b, &got) == 0 && got == sizeof v &&
		    memcmp(b, v, got) == 0)
			w->good++;
	}
	kvn_close(c);
	return NULL;
}

static void t_threads(void)
{
	const char *d = subdir("threads");
	char dir[512];
	snprintf(dir, sizeof dir, "%s", d);
	struct kvn_embed *e = open_dir(dir, 0);
	ok(e != NULL, "open");
	if (!e)
		return;
	pthread_t th[3];
	struct worker w[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (struct worker){ .e = e, .id = i };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	is_int(w[0].good + w[1].good + w[2].good, 150, "3 threads, a client each: 150 round trips");
	/* a client that outlives its node answers, it does not crash */
	struct kvn_client *late = NULL;
	is_int(kvn_embed_connect(e, &late), 0, "one more client");
	kvn_embed_close(e);
	uint8_t b[8];
	size_t got;
	int rc = kvn_get(late, "t0-0", 4, b, sizeof b, &got);
	ok(rc == KVN_ECLOSED || rc == KVN_ECONN, "after kvn_embed_close it answers %s", kvn_strerror(rc));
	kvn_close(late);
	rmrf(dir);
}

/* Submissions of an embedded client run on its progress thread's own
 * client, which reaches the in-process node through the same links (no
 * listener is open: over TCP they would fail). */
static void t_submit(void)
{
	const char *d = subdir("submit");
	char dir[512];
	snprintf(dir, sizeof dir, "%s", d);
	enum { N = 8 };
	size_t n = 300u << 10;
	uint8_t *v = malloc(n * N), *back = malloc(n * N);
	struct kvn_item put[N], get[N];
	char keys[N][16];
	struct kvn_embed *e = open_dir(dir, 0);
	ok(e != NULL, "open");
	if (!e || !v || !back) {
		free(v);
		free(back);
		return;
	}
	struct kvn_client *c = kvn_embed_client(e);
	memset(put, 0, sizeof put);
	memset(get, 0, sizeof get);
	for (int i = 0; i < N; i++) {
		fill(v + (size_t)i * n, n, 900u + (uint32_t)i);
		snprintf(keys[i], sizeof keys[i], "s%d", i);
		put[i].key = get[i].key = keys[i];
		put[i].klen = get[i].klen = strlen(keys[i]);
		put[i].val = v + (size_t)i * n;
		put[i].vlen = n;
		get[i].val = back + (size_t)i * n;
		get[i].cap = n;
	}
	uint64_t id1 = 0, id2 = 0;
	is_int(kvn_submit_put(c, put, N, 0, &id1), 0, "kvn_submit_put");
	is_int(kvn_submit_get(c, get, N, &id2), 0, "kvn_submit_get after it");
	struct pollfd p = { .fd = kvn_fd(c), .events = POLLIN };
	struct kvn_completion done[2];
	int got = 0;
	for (int tries = 0; got < 2 && tries < 100; tries++) {
		if (poll(&p, 1, 100) > 0) {
			int r = kvn_reap(c, done + got, (size_t)(2 - got));
			got += r > 0 ? r : 0;
		}
	}
	is_int(got, 2, "both complete (fd readable, reaped)");
	if (got == 2) {
		is_int(done[0].status, 0, "the put succeeded (%s)", kvn_strerror(done[0].status));
		is_int(done[1].status, 0, "the get succeeded (%s)", kvn_strerror(done[1].status));
	}
	ok(memcmp(v, back, n * N) == 0, "the submitted get read back the submitted puts, byte for byte");
	kvn_embed_close(e);
	free(v);
	free(back);
	rmrf(dir);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "roundtrip", t_roundtrip },
		{ "lock", t_lock },
		{ "reopen", t_reopen },
		{ "nosocket", t_nosocket },
		{ "drain", t_drain },
		{ "threads", t_threads },
		{ "submit", t_submit },
		{ NULL, NULL },
	};
	kvn_set_log(getenv("KVN_EMBED_DEBUG") ? KVN_LOG_DEBUG : KVN_LOG_WARN, NULL);
	int rc = tap_run(tests, argc, argv);
	if (tmpdir[0])
		rmrf(tmpdir);
	return rc;
}

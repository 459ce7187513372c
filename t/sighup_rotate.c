/* t/sighup_rotate: SIGHUP on real kvnode processes (a master and a peer,
 * each its own process, t/proc.h).  Secret rotation without restarts:
 * while client threads keep putting and getting on connections made before
 * (every failure counted: there must be none), `kvnode keygen --rotate`
 * adds a secret, SIGHUP, a client holding only the new secret attaches;
 * the old line is removed, SIGHUP, a client holding only the old one is
 * refused.  The same for peer.secret and peers (and a peer reconnecting
 * after the master's restart attaches with the reloaded first secret).  A
 * reload that fails keeps the old keyring.  Logs: node.log = FILE reopened
 * by SIGHUP after a move (logrotate), syslog does not crash, a bad
 * node.log is refused naming the key. */
#include "config.h"

#include <pthread.h>
#include <sys/stat.h>

#include "proc.h"

static char mconf[400], mdata[300];
static uint16_t mport;
static pid_t pid_m, pid_p1;

/* Run `kvnode ARGS...` to the end (10 s at most): its exit status, or -1. */
static int run_kvnode(const char *name, const char *const *args)
{
	int st = 0;
	pid_t pid = proc_spawn(name, args);
	if (proc_wait(pid, 10000, &st) != 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Line i (0-based) of a secret file into out (mode 0600): a file holding
 * only that secret. */
static int one_secret(const char *from, int line, const char *out)
{
	char buf[256];
	int i = 0, rc = -1;
	FILE *f = fopen(from, "r");
	if (!f)
		return -1;
	while (fgets(buf, sizeof buf, f))
		if (buf[0] != '#' && buf[0] != '\n' && i++ == line) {
			FILE *o = fopen(out, "w");
			if (o) {
				rc = fputs(buf, o) < 0 ? -1 : 0;
				fclose(o);
				chmod(out, 0600);
			}
			break;
		}
	fclose(f);
	return rc;
}

/* Replace file with only its first secret (rotation step 2), atomically. */
static int keep_first(const char *file)
{
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s.new", file);
	return one_secret(file, 0, tmp) == 0 && rename(tmp, file) == 0 ? 0 : -1;
}

static pid_t spawn_peer(const char *name, const char *peer_secret)
{
	char conf[400], data[300], id[80], ps[600], cs[600];
	snprintf(conf, sizeof conf, "%s/%s.conf", proc_tmp, name);
	snprintf(data, sizeof data, "%s/var-%s", proc_tmp, name);
	proc_write_conf(conf, mport, proc_free_port(), data, "32MiB", "[peer]\nhugepages = off\n");
	snprintf(id, sizeof id, "node.id=%s", name);
	snprintf(ps, sizeof ps, "auth.peer_secret_file=%s", peer_secret);
	snprintf(cs, sizeof cs, "auth.client_secret_file=%s/client.secret", mdata);
	const char *args[] = { "--role", "peer", "--config", conf, "--set", id, "--set", ps, "--set", cs, NULL };
	return proc_spawn(name, args);
}

/* A master process and peer p1, both reading the secret files in mdata. */
static int cluster_up(void)
{
	char ps[400];
	if (pid_m)
		return 0;
	mport = proc_free_port();
	snprintf(mconf, sizeof mconf, "%s/m.conf", proc_tmp);
	snprintf(mdata, sizeof mdata, "%s/var-m", proc_tmp);
	proc_write_conf(mconf, mport, proc_free_port(), mdata, "32MiB", NULL);
	const char *args[] = { "--role", "master", "--config", mconf, NULL };
	pid_m = proc_spawn("m", args);
	if (proc_wait_log("m", "kvnode ready", 1, 15000) != 0)
		return -1;
	snprintf(ps, sizeof ps, "%s/peer.secret", mdata);
	pid_p1 = spawn_peer("p1", ps);
	return proc_wait_log("p1", "] attached to the master", 1, 15000);
}

/* SIGHUP to the master and p1; wait until both logged `want` once more. */
static int hup_both(const char *want)
{
	int nm = proc_log_count("m", want), np = proc_log_count("p1", want);
	kill(pid_m, SIGHUP);
	kill(pid_p1, SIGHUP);
	return proc_wait_log("m", want, nm + 1, 5000) == 0 && proc_wait_log("p1", want, np + 1, 5000) == 0 ? 0 : -1;
}

/* ---- clients that keep working through a rotation ---- */

struct looper {
	pthread_t th;
	struct kvn_client *c;
	int id, stop;
	uint64_t ok, failed;
	int first_rc;
};

static void *loop_main(void *arg)
{
	struct looper *l = arg;
	char key[32], val[64], got[64];
	for (uint64_t i = 0; !__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE); i++) {
		size_t vlen = 0;
		snprintf(key, sizeof key, "loop%d/%llu", l->id, (unsigned long long)(i % 64));
		int n = snprintf(val, sizeof val, "value %d %llu", l->id, (unsigned long long)i);
		int rc = kvn_put(l->c, key, strlen(key), val, (size_t)n, 0);
		if (!rc)
			rc = kvn_get(l->c, key, strlen(key), got, sizeof got, &vlen);
		if (!rc && (vlen != (size_t)n || memcmp(got, val, vlen) != 0))
			rc = KVN_EIO; /* wrong bytes back */
		if (rc && !l->first_rc)
			l->first_rc = rc;
		__atomic_add_fetch(rc ? &l->failed : &l->ok, 1, __ATOMIC_RELEASE);
		usleep(2000);
	}
	return NULL;
}

#define NLOOP 2
static struct looper loops[NLOOP];

static int loops_start(void)
{
	for (int i = 0; i < NLOOP; i++) {
		memset(&loops[i], 0, sizeof loops[i]);
		loops[i].id = i;
		loops[i].c = proc_connect_ready(mconf, 1);
		if (!loops[i].c)
			return -1;
		pthread_create(&loops[i].th, NULL, loop_main, &loops[i]);
	}
	return 0;
}

static uint64_t loops_ok(void)
{
	uint64_t n = 0;
	for (int i = 0; i < NLOOP; i++)
		n += __atomic_load_n(&loops[i].ok, __ATOMIC_ACQUIRE);
	return n;
}

/* Wait until the clients did `more` more round trips (10 s at most). */
static int loops_advance(uint64_t more)
{
	uint64_t want = loops_ok() + more, until = kvn_now_ms() + 10000;
	while (loops_ok() < want && kvn_now_ms() < until)
		usleep(10000);
	return loops_ok() >= want ? 0 : -1;
}

static void loops_stop(const char *what)
{
	uint64_t okn = 0, failed = 0;
	int first = 0;
	for (int i = 0; i < NLOOP; i++) {
		__atomic_store_n(&loops[i].stop, 1, __ATOMIC_RELEASE);
		pthread_join(loops[i].th, NULL);
		kvn_close(loops[i].c);
		okn += loops[i].ok;
		failed += loops[i].failed;
		first = first ? first : loops[i].first_rc;
	}
	ok(okn > 0, "%s: the running clients made %llu put+get round trips", what, (unsigned long long)okn);
	if (!ok(failed == 0, "%s: none of them failed (%llu did)", what, (unsigned long long)failed))
		tap_diag("  first failure: %s", kvn_strerror(first));
}

/* kvn_connect with only this client secret file, and a put + get through
 * it (the master and the peer both check it): 0 or the error. */
static int try_client(const char *secret)
{
	struct kvn_options o = { .config_path = mconf, .secret_file = secret };
	struct kvn_client *c = NULL;
	char got[16];
	size_t n = 0;
	int rc = kvn_connect(&o, &c);
	if (!rc)
		rc = kvn_put(c, "try", 3, "x", 1, 0);
	if (!rc)
		rc = kvn_get(c, "try", 3, got, sizeof got, &n);
	kvn_close(c);
	return rc;
}

/* ---- cases ---- */

static void t_client_rotation(void)
{
	char file[400], newf[400], oldf[400];
	if (!ok(cluster_up() == 0, "a master and a peer process start") || !ok(loops_start() == 0, "clients connect"))
		return;
	snprintf(file, sizeof file, "%s/client.secret", mdata);
	snprintf(newf, sizeof newf, "%s/new-client.secret", proc_tmp);
	snprintf(oldf, sizeof oldf, "%s/old-client.secret", proc_tmp);
	ok(one_secret(file, 0, oldf) == 0, "the old secret, alone in a file");
	ok(loops_advance(20) == 0, "the clients put and get");

	const char *kg[] = { "keygen", "--rotate", file, NULL };
	is_int(run_kvnode("keygen", kg), 0, "kvnode keygen --rotate client.secret");
	ok(one_secret(file, 0, newf) == 0, "the new secret (first line), alone in a file");
	is_int(try_client(newf), KVN_EAUTH, "before SIGHUP a client with only the new secret is refused");
	ok(hup_both("auth.client_secret_file") == 0, "SIGHUP: master and peer reload client.secret");
	is_int(proc_log_count("m", "client.secret reloaded: 2 secret(s) (1 added, 0 removed)"), 1,
	       "the master logs what changed: 2 secrets (1 added, 0 removed)");
	is_int(proc_log_count("p1", "client.secret reloaded: 2 secret(s) (1 added, 0 removed)"), 1,
	       "and so does the peer");
	is_int(try_client(newf), 0, "a new client with only the new secret attaches, puts and gets");
	is_int(try_client(oldf), 0, "one with only the old secret too (both are accepted)");
	ok(loops_advance(20) == 0, "the running clients go on");

	ok(keep_first(file) == 0, "the old secret is removed from client.secret");
	ok(hup_both("auth.client_secret_file") == 0, "SIGHUP again");
	is_int(proc_log_count("m", "client.secret reloaded: 1 secret(s) (0 added, 1 removed)"), 1,
	       "the master logs 1 secret (0 added, 1 removed)");
	is_int(proc_log_count("p1", "client.secret reloaded: 1 secret(s) (0 added, 1 removed)"), 1,
	       "and so does the peer");
	is_int(try_client(oldf), KVN_EAUTH, "a new client with only the old secret is refused");
	is_int(try_client(newf), 0, "one with the new secret attaches");
	ok(loops_advance(20) == 0, "the clients connected with the old secret keep working");
	loops_stop("client.secret rotation");
	/* nothing of a secret in any log line */
	char line[256];
	FILE *f = fopen(file, "r");
	int leaked = 0;
	if (f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		leaked = proc_log_count("m", line + 8) + proc_log_count("p1", line + 8);
	}
	if (f)
		fclose(f);
	is_int(leaked, 0, "no log line holds the secret");
}

static void t_bad_reload(void)
{
	char file[400], cur[400];
	if (!ok(cluster_up() == 0, "a master and a peer process start"))
		return;
	snprintf(file, sizeof file, "%s/client.secret", mdata);
	snprintf(cur, sizeof cur, "%s/cur-client.secret", proc_tmp);
	one_secret(file, 0, cur);
	chmod(file, 0644);
	ok(hup_both("reload failed") == 0, "SIGHUP with client.secret readable by others: the reload fails");
	char want[600];
	snprintf(want, sizeof want, "auth.client_secret_file: reload failed: %s", file);
	ok(proc_log_count("m", want) == 1, "the error names the key and the file");
	ok(proc_log_count("m", "still using the 1 secret(s) loaded before") >= 1, "and says the old ones stay");
	is_int(try_client(cur), 0, "the old keyring is kept: a client with its secret attaches");
	chmod(file, 0600);
	FILE *f = fopen(file, "w");
	if (f) {
		fputs("not hex\n", f);
		fclose(f);
	}
	ok(hup_both("reload failed") == 0, "SIGHUP with a file of bad content: the reload fails too");
	is_int(try_client(cur), 0, "and the old keyring is kept");
	one_secret(cur, 0, file); /* the file as it was */
	ok(hup_both("client.secret reloaded: 1 secret(s) (0 added, 0 removed)") == 0,
	   "the file fixed, SIGHUP: reloaded, nothing changed");
	ok(kill(pid_m, 0) == 0 && kill(pid_p1, 0) == 0, "both processes still run");
}

static void t_peer_rotation(void)
{
	char file[400], newf[400], oldf[400];
	if (!ok(cluster_up() == 0, "a master and a peer process start") || !ok(loops_start() == 0, "clients connect"))
		return;
	snprintf(file, sizeof file, "%s/peer.secret", mdata);
	snprintf(newf, sizeof newf, "%s/new-peer.secret", proc_tmp);
	snprintf(oldf, sizeof oldf, "%s/old-peer.secret", proc_tmp);
	one_secret(file, 0, oldf);
	ok(loops_advance(20) == 0, "the clients put and get");
	const char *kg[] = { "keygen", "--rotate", file, NULL };
	is_int(run_kvnode("keygen-p", kg), 0, "kvnode keygen --rotate peer.secret");
	one_secret(file, 0, newf);
	ok(hup_both("auth.peer_secret_file") == 0, "SIGHUP: master and peer reload peer.secret");
	is_int(proc_log_count("m", "peer.secret reloaded: 2 secret(s) (1 added, 0 removed)"), 1,
	       "the master logs 2 secrets (1 added, 0 removed)");
	spawn_peer("p2", newf);
	ok(proc_wait_log("p2", "] attached to the master", 1, 15000) == 0,
	   "a new peer with only the new secret attaches");
	ok(keep_first(file) == 0, "the old secret is removed from peer.secret");
	ok(hup_both("auth.peer_secret_file") == 0, "SIGHUP again");
	is_int(proc_log_count("m", "peer.secret reloaded: 1 secret(s) (0 added, 1 removed)"), 1,
	       "the master logs 1 secret (0 added, 1 removed)");
	spawn_peer("p3", oldf);
	ok(proc_wait_log("m", "rejected peer p3", 1, 10000) == 0, "a new peer with only the old secret is refused");
	ok(proc_log_count("p3", "] attached to the master") == 0, "and does not attach");
	ok(loops_advance(20) == 0, "the running clients and the attached peer keep working");
	loops_stop("peer.secret rotation");

	/* p1 attached with the old secret; its reloaded keyring holds the new
	 * one only: after the master's restart it must attach with that */
	int st = 0, before = proc_log_count("p1", "] attached to the master");
	ok(proc_stop(pid_m, SIGTERM, 10000, &st) == 0, "the master stops");
	const char *args[] = { "--role", "master", "--config", mconf, NULL };
	pid_m = proc_spawn("m", args);
	ok(proc_wait_log("p1", "] attached to the master", before + 1, 20000) == 0,
	   "after the master's restart the peer reattaches with the reloaded peer.secret");
}

/* A node NAME with node.log = FILE (relative: next to its config). */
static pid_t node_with_log(const char *name, const char *log, char *conf, size_t cap)
{
	char extra[200];
	snprintf(extra, sizeof extra, "[node]\nlog = %s\n[peer]\nhugepages = off\n", log);
	return proc_start_node(name, "32MiB", extra, conf, cap);
}

static void t_log_file(void)
{
	char conf[400], moved[400], cur[400];
	pid_t pid = node_with_log("lfnode", "lf.log", conf, sizeof conf);
	ok(proc_wait_log("lf", "kvnode ready", 1, 15000) == 0, "node.log = lf.log: the node logs to the file beside its config");
	ok(proc_log_count("lfnode", "kvnode ready") == 0, "and not to stderr");
	snprintf(cur, sizeof cur, "%s/lf.log", proc_tmp);
	snprintf(moved, sizeof moved, "%s/lf-old.log", proc_tmp);
	ok(rename(cur, moved) == 0, "logrotate's move");
	kill(pid, SIGHUP);
	ok(proc_wait_log("lf", "SIGHUP: reopened the log file", 1, 5000) == 0, "SIGHUP: the file is made again and new lines go there");
	ok(proc_log_count("lf", "auth.client_secret_file") == 1, "the reload's lines too");
	is_int(proc_log_count("lf-old", "SIGHUP"), 0, "none go to the moved file");
	int st = 0;
	ok(proc_stop(pid, SIGTERM, 10000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit 0");
	ok(proc_log_count("lf", "stopped") == 1, "logged to the new file");
}

static void t_syslog(void)
{
	char conf[400];
	pid_t pid = node_with_log("slnode", "syslog", conf, sizeof conf);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "node.log = syslog: the node starts and serves");
	kill(pid, SIGHUP);
	usleep(200000);
	ok(c && kvn_ping(c, NULL, NULL) == 0, "SIGHUP with syslog: it still serves");
	kvn_close(c);
	ok(proc_log_count("slnode", "kvnode ready") == 0, "nothing went to stderr");
	int st = 0;
	ok(proc_stop(pid, SIGTERM, 10000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit 0");
}

static void t_bad_log(void)
{
	char conf[400];
	int st = 0;
	pid_t pid = node_with_log("bl1", "", conf, sizeof conf);
	ok(proc_wait(pid, 10000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2, "node.log empty: exit 2");
	ok(proc_log_count("bl1", "node.log = '': must not be empty") == 1, "naming the key");
	pid = node_with_log("bl2", proc_tmp, conf, sizeof conf);
	ok(proc_wait(pid, 10000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2, "node.log a directory: exit 2");
	ok(proc_log_count("bl2", "node.log = '") == 1 && proc_log_count("bl2", "cannot open") == 1,
	   "naming the key and why");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "client_rotation", t_client_rotation },
		{ "bad_reload", t_bad_reload },
		{ "peer_rotation", t_peer_rotation },
		{ "log_file", t_log_file },
		{ "syslog", t_syslog },
		{ "bad_log", t_bad_log },
		{ NULL, NULL },
	};
	if (proc_init("sighup") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(150);
	kvn_log_set_level(KVN_LOG_ERROR);
	return tap_run(tests, argc, argv);
}

/*
 * t/conf: the config table, file parser, --set, finalize and the files made
 * from the table (etc/kvnode.conf, docs/configuration.md).
 *
 * Also the generator for those files:
 *   t/conf --write-example > etc/kvnode.conf
 *   t/conf --write-markdown   (paste between the markers in the doc)
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/conf_int.h"
#include "tap.h"

static char tmpdir[] = "/tmp/kvn-t-conf-XXXXXX";
static char path[512];
static char err[512];

/* Write len bytes to tmpdir/name; returns the path (static, reused). */
static const char *put_file_n(const char *name, const char *text, size_t len)
{
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
		kvn_fatal("t/conf: cannot write %s: %s", path, strerror(errno));
	return path;
}

static const char *put_file(const char *name, const char *text)
{
	return put_file_n(name, text, strlen(text));
}

/* The whole of a file, NUL-terminated, or NULL. */
static char *slurp(const char *p)
{
	FILE *f = fopen(p, "r");
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	if (!f)
		return NULL;
	mem = open_memstream(&buf, &len);
	for (int ch; (ch = getc(f)) != EOF;)
		putc(ch, mem);
	fclose(mem);
	fclose(f);
	return buf;
}

/* What a kvn_conf_write_* function writes, as a string. */
static char *render(void (*fn)(FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	fn(mem);
	fclose(mem);
	return buf;
}

static const char *srcdir(void)
{
	const char *s = getenv("KVN_SRCDIR");
	return s && *s ? s : KVN_SRCDIR;
}

/* Load text as x.conf into a fresh default config. */
static int load_text(struct kvn_conf *c, const char *text)
{
	kvn_conf_init(c);
	return kvn_conf_load(c, put_file("x.conf", text), err, sizeof err);
}

/* Loading text fails with exactly "<path><want>". */
static void load_fails(const char *text, const char *want)
{
	struct kvn_conf c;
	char full[1024];
	int rc = load_text(&c, text);

	snprintf(full, sizeof full, "%s%s", path, want);
	if (!ok(rc == KVN_ECONFIG && strcmp(err, full) == 0, "error '%s'", want))
		tap_diag("  rc %d, got '%s'", rc, err);
	kvn_conf_fini(&c);
}

static void get_is(const struct kvn_conf *c, const char *name, const char *want)
{
	char buf[256];
	int rc = kvn_conf_get(c, name, buf, sizeof buf);
	if (!ok(rc == 0 && strcmp(buf, want) == 0, "%s = %s", name, want))
		tap_diag("  rc %d, got '%s'", rc, buf);
}

static void test_defaults(void)
{
	struct kvn_conf c;

	kvn_conf_init(&c);
	is_str(c.node_data_dir, "var", "node.data_dir");
	is_str(c.node_id, "", "node.id is derived later");
	is_int(c.node_log_level, KVN_LOG_INFO, "node.log_level");
	is_int(c.node_max_value_size, 64ull << 20, "node.max_value_size");
	is_int(c.node_mailbox_size, 4096, "node.mailbox_size");
	is_str(c.master_listen, "127.0.0.1:7400", "master.listen");
	is_int(c.master_node_timeout, 10000, "master.node_timeout");
	is_int(c.master_max_connections, 1024, "master.max_connections");
	is_str(c.peer_listen, "127.0.0.1:7401", "peer.listen");
	is_str(c.peer_advertise, "", "peer.advertise is derived later");
	is_str(c.peer_master, "127.0.0.1:7400", "peer.master");
	is_int(c.peer_dram_size, 1ull << 30, "peer.dram_size");
	is_int(c.peer_page_size, 4096, "peer.page_size");
	is_int(c.peer_hugepages, 1, "peer.hugepages");
	is_int(c.peer_heartbeat_interval, 1000, "peer.heartbeat_interval");
	is_int(c.peer_pending_ttl, 30000, "peer.pending_ttl");
	is_int(c.peer_read_lease_ttl, 30000, "peer.read_lease_ttl");
	is_int(c.peer_max_connections, 1024, "peer.max_connections");
	is_str(c.client_master, "127.0.0.1:7400", "client.master");
	is_int(c.client_timeout, 5000, "client.timeout");
	is_int(c.client_retries, 3, "client.retries");
	is_int(c.client_endpoint_max_age, 60000, "client.endpoint_max_age");
	is_int(c.client_quarantine, 2000, "client.quarantine");
	is_str(c.auth_peer_secret_file, "", "auth.peer_secret_file is derived later");
	is_str(c.auth_client_secret_file, "", "auth.client_secret_file is derived later");
	is_int(c.auth_handshake_timeout, 2000, "auth.handshake_timeout");
	is_int(c.node_max_preauth, 256, "node.max_preauth");
	is_int(c.node_max_preauth_per_ip, 32, "node.max_preauth_per_ip");
	kvn_conf_fini(&c);
	ok(c.node_data_dir == NULL && c.peer_dram_size == 0, "fini clears the struct");
	kvn_conf_fini(NULL);
}

static void test_good_file(void)
{
	struct kvn_conf c;
	int rc = load_text(&c, "\xEF\xBB\xBF; a comment\n"
			       "# another comment\n"
			       "[node]\n"
			       "data_dir = /srv/kv   # trailing comment\n"
			       "log_level = DEBUG\n"
			       "max_value_size = 1.5 G\n"
			       "   mailbox_size = 64   ; indented, with a ; comment\n"
			       "\n"
			       "  [peer]\n"
			       "dram_size = 2GiB\n"
			       "dram_size = 3GiB\r\n"
			       "page_size=64KiB\n"
			       "hugepages = no\n"
			       "heartbeat_interval = 250ms\n"
			       "listen = [::1]:9000\n"
			       "[client]\n"
			       "retries = 0\n"
			       "quarantine = 0\n"
			       "timeout = 1500us\n"
			       "[auth]\n"
			       "peer_secret_file = /etc/kv/p.secret");
	if (!ok(rc == 0, "loads"))
		tap_diag("  %s", err);
	is_str(c.node_data_dir, "/srv/kv", "path, trailing # comment dropped");
	is_int(c.node_log_level, KVN_LOG_DEBUG, "enum ignores case");
	is_int(c.node_max_value_size, 1610612736ull, "size with fraction and blank");
	is_int(c.node_mailbox_size, 64, "indented key, ; comment");
	is_int(c.peer_dram_size, 3ull << 30, "repeated key: the last wins (CRLF line)");
	is_int(c.peer_page_size, 64 << 10, "no blanks around =");
	is_int(c.peer_hugepages, 0, "bool 'no'");
	is_int(c.peer_heartbeat_interval, 250, "duration");
	is_str(c.peer_listen, "[::1]:9000", "v6 address");
	is_int(c.client_retries, 0, "integer 0");
	is_int(c.client_quarantine, 0, "bare 0 duration");
	is_int(c.client_timeout, 2, "1500us rounds up to 2ms");
	is_str(c.auth_peer_secret_file, "/etc/kv/p.secret", "last line without newline");
	is_int(c.master_node_timeout, 10000, "keys not in the file keep their default");
	kvn_conf_fini(&c);

	static const char *const bools[][2] = { { "on", "1" },   { "off", "0" },  { "true", "1" },
						{ "false", "0" }, { "yes", "1" }, { "no", "0" },
						{ "1", "1" },    { "0", "0" },    { "ON", "1" } };
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
		char text[64];
		snprintf(text, sizeof text, "[peer]\nhugepages = %s\n", bools[i][0]);
		rc = load_text(&c, text);
		ok(rc == 0 && c.peer_hugepages == atoi(bools[i][1]), "bool '%s'", bools[i][0]);
		kvn_conf_fini(&c);
	}

	/* long comments are fine; only content counts against the line limit */
	char text[1024] = "[node]\n# ";
	memset(text + strlen(text), 'c', 400);
	strcat(text, "\ndata_dir = /a/b ; ");
	memset(text + strlen(text), 'c', 300);
	strcat(text, "\n");
	rc = load_text(&c, text);
	ok(rc == 0 && strcmp(c.node_data_dir, "/a/b") == 0, "long comment lines are not errors");
	kvn_conf_fini(&c);
}

static void test_file_errors(void)
{
	load_fails("[peer]\ndram_size = 12XB\n",
		   ":2: peer.dram_size = '12XB': not a size (use e.g. 64KiB, 4GiB, 1.5G)");
	load_fails("# c\n\n[peer]\npage_size = 1KiB\n",
		   ":4: peer.page_size = '1KiB': below the minimum 4KiB");
	load_fails("[node]\nmax_value_size = 17GiB\n",
		   ":2: node.max_value_size = '17GiB': above the maximum 16GiB");
	load_fails("[peer]\npage_size = 12KiB\n", ":2: peer.page_size = '12KiB': not a power of two");
	load_fails("[peer]\ndram_size = -1G\n", ":2: peer.dram_size = '-1G': a size cannot be negative");
	load_fails("[master]\nnode_timeout = 10\n",
		   ":2: master.node_timeout = '10': duration needs a unit: us, ms, s, m, h or d");
	load_fails("[master]\nnode_timeout = 2h\n",
		   ":2: master.node_timeout = '2h': above the maximum 1h");
	load_fails("[client]\nquarantine = 10 sec\n",
		   ":2: client.quarantine = '10 sec': not a duration (use e.g. 250ms, 10s, 1.5m; "
		   "units us ms s m h d)");
	load_fails("[peer]\nhugepages = maybe\n",
		   ":2: peer.hugepages = 'maybe': not a bool (use on or off)");
	load_fails("[node]\nlog_level = loud\n",
		   ":2: node.log_level = 'loud': use one of error, warn, info, debug");
	load_fails("[node]\nmailbox_size = 4k\n", ":2: node.mailbox_size = '4k': not a whole number");
	load_fails("[node]\nmailbox_size = -5\n", ":2: node.mailbox_size = '-5': cannot be negative");
	load_fails("[node]\nmailbox_size = 99999999999999999999\n",
		   ":2: node.mailbox_size = '99999999999999999999': value too large");
	load_fails("[node]\nmailbox_size = 8\n", ":2: node.mailbox_size = '8': below the minimum 16");
	load_fails("[node]\nmailbox_size =\n", ":2: node.mailbox_size = '': empty (use a whole number)");
	load_fails("[node]\ndata_dir =\n", ":2: node.data_dir = '': must not be empty");
	load_fails("[node]\nid = my node\n",
		   ":2: node.id = 'my node': use 1..63 characters from A-Z a-z 0-9 . _ -");
	load_fails("[node]\nid = "
		   "a234567890123456789012345678901234567890123456789012345678901234\n",
		   ":2: node.id = 'a234567890123456789012345678901234567890123456789012345678901234"
		   "': use 1..63 characters from A-Z a-z 0-9 . _ -");

	static const char *const bad_addrs[] = { "localhost", "h:0", "h:65536", ":80", "h:",
						 "::1:80", "[::1]80", "h:80x", "my host:80" };
	for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
		char text[128], want[256];
		snprintf(text, sizeof text, "[master]\nlisten = %s\n", bad_addrs[i]);
		snprintf(want, sizeof want,
			 ":2: master.listen = '%s': not an address (use host:port or [v6]:port, port "
			 "1..65535)",
			 bad_addrs[i]);
		load_fails(text, want);
	}

	load_fails("[peer]\ndram_sise = 1G\n", ":2: unknown key 'peer.dram_sise'");
	load_fails("[node]\nlisten = 1.2.3.4:5\n",
		   ":2: unknown key 'node.listen' (did you mean 'master.listen'?)");
	load_fails("[peer]\nfrobnicate = 1\n", ":2: unknown key 'peer.frobnicate'");
	load_fails("[peer]\ndram size = 1G\n", ":2: unknown key 'peer.dram size'");
	load_fails("[node]\ndata_dir = x\n[nodee]\ndata_dir = y\n",
		   ":4: unknown key 'nodee.data_dir': unknown section [nodee]");
	load_fails("[storage]\nsize = 1G\n", ":2: unknown key 'storage.size': unknown section [storage]");
	load_fails("data_dir = x\n", ":1: key outside any section (start the file with [node], "
				     "[master], [peer], [client] or [auth])");
	load_fails("[node]\ndata_dir = x\nthis is not ini\n",
		   ":3: syntax error (expected [section] or key = value)");
	load_fails("[node\ndata_dir = x\n", ":1: syntax error (expected [section] or key = value)");
	load_fails("[node]\ndata_dir = a\x01z\n", ":2: control character in line (is this a config file?)");
	load_fails("[node]\ndata_dir = a\rz\n", ":2: control character in line (is this a config file?)");

	/* the first error in the file is the one reported */
	load_fails("[peer]\ndram_size = 12XB\n\nnot ini\n",
		   ":2: peer.dram_size = '12XB': not a size (use e.g. 64KiB, 4GiB, 1.5G)");
	load_fails("[peer]\nnot ini\n\ndram_size = 12XB\n",
		   ":2: syntax error (expected [section] or key = value)");
}

static void test_file_limits(void)
{
	struct kvn_conf c;
	char text[6000], want[6100];
	int rc;

	/* content longer than inih's line buffer: an error, never split */
	snprintf(text, sizeof text, "[node]\n\ndata_dir = /%0300d\n", 0);
	rc = load_text(&c, text);
	snprintf(want, sizeof want, "%s:3: line too long (at most ", path);
	if (!ok(rc == KVN_ECONFIG && strncmp(err, want, strlen(want)) == 0, "300-character line"))
		tap_diag("  rc %d, got '%s'", rc, err);
	ok(strcmp(c.node_data_dir, "var") == 0, "nothing of it applied");
	kvn_conf_fini(&c);
	snprintf(text, sizeof text, "[node]\ndata_dir = /%05000d\n", 0);
	rc = load_text(&c, text);
	snprintf(want, sizeof want, "%s:2: line too long (at most ", path);
	if (!ok(rc == KVN_ECONFIG && strncmp(err, want, strlen(want)) == 0, "5000-character line"))
		tap_diag("  rc %d, got '%s'", rc, err);
	kvn_conf_fini(&c);
	snprintf(text, sizeof text, "[node]\ndata_dir = /%0150d\n", 0);
	rc = load_text(&c, text);
	ok(rc == 0 && strlen(c.node_data_dir) == 151, "150-character value is fine");
	kvn_conf_fini(&c);

	kvn_conf_init(&c);
	rc = kvn_conf_load(&c, put_file_n("nul.conf", "[node]\nid = a\0b\n", 15), err, sizeof err);
	snprintf(want, sizeof want, "%s:2: control character in line", path);
	ok(rc == KVN_ECONFIG && strncmp(err, want, strlen(want)) == 0, "NUL byte: %s", err);

	snprintf(text, sizeof text, "%s/missing.conf", tmpdir);
	rc = kvn_conf_load(&c, text, err, sizeof err);
	snprintf(want, sizeof want, "%s: cannot open: No such file or directory", text);
	is_str(err, want, "missing file");
	is_int(rc, KVN_ECONFIG, "missing file is KVN_ECONFIG");
	rc = kvn_conf_load(&c, tmpdir, err, sizeof err);
	snprintf(want, sizeof want, "%s: cannot read: Is a directory", tmpdir);
	ok(rc == KVN_ECONFIG && strcmp(err, want) == 0, "directory: %s", err);
	kvn_conf_fini(&c);

	/* a failed load leaves the config as it was */
	kvn_conf_init(&c);
	rc = kvn_conf_load(&c, put_file("half.conf", "[peer]\ndram_size = 2GiB\nlisten = x\n"), err,
			   sizeof err);
	ok(rc == KVN_ECONFIG && c.peer_dram_size == 1ull << 30 && c.user_set[0] == 0 && c.user_set[1] == 0,
	   "failed load changes nothing");
	kvn_conf_fini(&c);
}

/* A secret file passed as the config by mistake must not be echoed. */
static void test_no_secret_echo(void)
{
	static const char hex[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	static const char b64[] = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
	struct kvn_conf c;
	char text[256];

	load_text(&c, hex);
	ok(*err && !strstr(err, "9f86d0"), "hex secret not echoed: %s", err);
	kvn_conf_fini(&c);
	load_text(&c, b64);
	ok(*err && !strstr(err, "n4bQ"), "base64 secret not echoed: %s", err);
	kvn_conf_fini(&c);
	snprintf(text, sizeof text, "[node]\n%s = 1\n", hex);
	load_text(&c, text);
	ok(*err && !strstr(err, "9f86d0") && strstr(err, "(not shown)"),
	   "long key name not echoed: %s", err);
	kvn_conf_fini(&c);
	kvn_conf_init(&c);
	kvn_conf_set(&c, "auth.secret=hunter2hunter2", err, sizeof err);
	ok(*err && !strstr(err, "hunter2"), "value of an unknown --set key not echoed: %s", err);
	kvn_conf_fini(&c);
}

static void set_fails(struct kvn_conf *c, const char *assignment, const char *want)
{
	int rc = kvn_conf_set(c, assignment, err, sizeof err);
	if (!ok(rc == KVN_ECONFIG && strcmp(err, want) == 0, "--set %s fails", assignment))
		tap_diag("  rc %d, got '%s'", rc, err);
}

static void test_set(void)
{
	struct kvn_conf c;

	kvn_conf_init(&c);
	is_int(kvn_conf_set(&c, "peer.dram_size=2GiB", err, sizeof err), 0, "set a size");
	is_int(c.peer_dram_size, 2ull << 30, "size applied");
	is_int(kvn_conf_set(&c, "  peer.page_size = 8 KiB ", err, sizeof err), 0, "blanks around");
	is_int(c.peer_page_size, 8192, "blanks trimmed");
	is_int(kvn_conf_set(&c, "master.listen=[::1]:7400", err, sizeof err), 0, "v6 address");
	is_str(c.master_listen, "[::1]:7400", "address applied");

	set_fails(&c, "peer.dram_size=12XB",
		  "--set peer.dram_size=12XB: not a size (use e.g. 64KiB, 4GiB, 1.5G)");
	set_fails(&c, "peer.page_size=1KiB", "--set peer.page_size=1KiB: below the minimum 4KiB");
	set_fails(&c, "peer.frob=1", "--set peer.frob=...: unknown key 'peer.frob'");
	set_fails(&c, "nodee.data_dir=/x",
		  "--set nodee.data_dir=...: unknown key 'nodee.data_dir': unknown section [nodee]");
	set_fails(&c, "peer.dram_size", "--set peer.dram_size: expected section.key=value (e.g. "
					"peer.dram_size=2GiB)");
	set_fails(&c, "dram_size=1G",
		  "--set dram_size: expected section.key=value (e.g. peer.dram_size=2GiB)");
	set_fails(&c, ".dram_size=1G",
		  "--set .dram_size: expected section.key=value (e.g. peer.dram_size=2GiB)");
	is_int(c.peer_dram_size, 2ull << 30, "failed sets change nothing");
	is_int(kvn_conf_set(&c, "peer.dram_size=1.5M=", err, sizeof err), KVN_ECONFIG,
	       "a second '=' belongs to the value");
	kvn_conf_fini(&c);

	/* precedence: defaults < file < --set */
	load_text(&c, "[peer]\ndram_size = 4GiB\npage_size = 16KiB\n");
	kvn_conf_set(&c, "peer.dram_size=8GiB", err, sizeof err);
	is_int(c.peer_dram_size, 8ull << 30, "--set beats the file");
	is_int(c.peer_page_size, 16 << 10, "the file beats the default");
	is_int(c.peer_hugepages, 1, "the default stays otherwise");
	kvn_conf_fini(&c);
}

static void test_finalize(void)
{
	struct kvn_conf c;
	char host[256], want[320];

	if (gethostname(host, sizeof host) < 0 || !host[0])
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	for (char *p = host; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
			*p = '-';

	kvn_conf_init(&c);
	is_int(kvn_conf_finalize(&c, err, sizeof err), 0, "defaults finalize");
	is_str(c.peer_advertise, "127.0.0.1:7401", "advertise = peer.listen");
	snprintf(want, sizeof want, "%.58s-7401", host);
	is_str(c.node_id, want, "id = <hostname>-<peer port>");
	is_str(c.auth_peer_secret_file, "var/peer.secret", "peer secret under data_dir");
	is_str(c.auth_client_secret_file, "var/client.secret", "client secret under data_dir");
	is_int(kvn_conf_finalize(&c, err, sizeof err), 0, "finalize again");
	is_str(c.peer_advertise, "127.0.0.1:7401", "same result the second time");

	/* derived values follow later --set; chosen values stay */
	kvn_conf_set(&c, "peer.listen=10.0.0.5:7501", err, sizeof err);
	kvn_conf_set(&c, "node.data_dir=/srv/kv//", err, sizeof err);
	is_int(kvn_conf_finalize(&c, err, sizeof err), 0, "finalize after --set");
	is_str(c.peer_advertise, "10.0.0.5:7501", "advertise follows peer.listen");
	snprintf(want, sizeof want, "%.58s-7501", host);
	is_str(c.node_id, want, "id follows the port");
	is_str(c.auth_peer_secret_file, "/srv/kv/peer.secret", "secret follows data_dir");
	kvn_conf_set(&c, "peer.advertise=kv1.example:7401", err, sizeof err);
	kvn_conf_set(&c, "node.id=kv1", err, sizeof err);
	kvn_conf_set(&c, "auth.client_secret_file=/etc/kv/c.secret", err, sizeof err);
	kvn_conf_set(&c, "peer.listen=10.0.0.5:7601", err, sizeof err);
	is_int(kvn_conf_finalize(&c, err, sizeof err), 0, "finalize with chosen values");
	is_str(c.peer_advertise, "kv1.example:7401", "chosen advertise kept");
	is_str(c.node_id, "kv1", "chosen id kept");
	is_str(c.auth_client_secret_file, "/etc/kv/c.secret", "chosen secret file kept");
	is_str(c.auth_peer_secret_file, "/srv/kv/peer.secret", "the other one still derived");
	kvn_conf_set(&c, "node.id=", err, sizeof err);
	kvn_conf_finalize(&c, err, sizeof err);
	snprintf(want, sizeof want, "%.58s-7601", host);
	is_str(c.node_id, want, "an empty value means: derive it");
	kvn_conf_fini(&c);

	kvn_conf_init(&c);
	kvn_conf_set(&c, "peer.listen=0.0.0.0:7401", err, sizeof err);
	is_int(kvn_conf_finalize(&c, err, sizeof err), 0, "wildcard listen");
	snprintf(want, sizeof want, "%s:7401", host);
	is_str(c.peer_advertise, want, "wildcard listen advertises the host name");
	kvn_conf_set(&c, "peer.listen=[::]:7402", err, sizeof err);
	kvn_conf_finalize(&c, err, sizeof err);
	snprintf(want, sizeof want, "%s:7402", host);
	is_str(c.peer_advertise, want, "v6 wildcard too");
	kvn_conf_set(&c, "peer.advertise=0.0.0.0:7401", err, sizeof err);
	is_int(kvn_conf_finalize(&c, err, sizeof err), KVN_ECONFIG, "wildcard advertise refused");
	is_str(err, "peer.advertise = '0.0.0.0:7401': clients cannot dial a wildcard address; give "
		    "this host's name or address",
	       "wildcard advertise message");
	kvn_conf_fini(&c);
}

static void finalize_fails(const char *const *sets, const char *want)
{
	struct kvn_conf c;

	kvn_conf_init(&c);
	for (; *sets; sets++)
		if (kvn_conf_set(&c, *sets, err, sizeof err) != 0)
			tap_diag("  setup: %s", err);
	int rc = kvn_conf_finalize(&c, err, sizeof err);
	if (!ok(rc == KVN_ECONFIG && strcmp(err, want) == 0, "finalize: %s", want))
		tap_diag("  rc %d, got '%s'", rc, err);
	kvn_conf_fini(&c);
}

static void test_finalize_rules(void)
{
	struct kvn_conf c;

	finalize_fails((const char *[]){ "peer.page_size=1MiB", "peer.dram_size=1.5MiB", NULL },
		       "peer.dram_size (1.5MiB) must be a multiple of peer.page_size (1MiB)");
	finalize_fails((const char *[]){ "master.node_timeout=1s", NULL },
		       "master.node_timeout (1s) must be longer than peer.heartbeat_interval (1s)");
	finalize_fails((const char *[]){ "peer.heartbeat_interval=20s", NULL },
		       "master.node_timeout (10s) must be longer than peer.heartbeat_interval (20s)");
	finalize_fails((const char *[]){ "master.listen=127.0.0.1:7401", NULL },
		       "master.listen and peer.listen are the same address (127.0.0.1:7401)");
	finalize_fails((const char *[]){ "peer.high_watermark=0.5", "peer.low_watermark=0.5", NULL },
		       "peer.low_watermark (0.5) must be below peer.high_watermark (0.5)");
	finalize_fails((const char *[]){ "peer.offload=on-put", NULL },
		       "peer.offload = 'on-put' needs a disk tier: set peer.disk_size above 0");

	/* fields written by code, not the parser, are checked too */
	kvn_conf_init(&c);
	c.client_timeout = 0;
	is_int(kvn_conf_finalize(&c, err, sizeof err), KVN_ECONFIG, "timeout 0 from code");
	is_str(err, "client.timeout = '0ms': below the minimum 1ms", "message names the key");
	c.client_timeout = 5000;
	c.peer_page_size = 12288;
	kvn_conf_finalize(&c, err, sizeof err);
	is_str(err, "peer.page_size = '12KiB': not a power of two", "power of two from code");
	c.peer_page_size = 4096;
	c.node_log_level = 7;
	kvn_conf_finalize(&c, err, sizeof err);
	is_str(err, "node.log_level = '?': use one of error, warn, info, debug", "enum from code");
	c.node_log_level = KVN_LOG_WARN;
	free(c.master_listen);
	c.master_listen = NULL;
	kvn_conf_finalize(&c, err, sizeof err);
	is_str(err, "master.listen = '': must not be empty", "NULL string from code");
	c.master_listen = strdup("127.0.0.1:7400");
	is_int(kvn_conf_finalize(&c, err, sizeof err), 0, "and fine once repaired");
	kvn_conf_fini(&c);
}

/* peer.high_watermark and friends: decimals in 0..1, kept as parts per
 * million, printed back the way they were written. */
static void test_fraction(void)
{
	static const char *const good[][2] = { { "0.95", "0.95" }, { ".5", "0.5" }, { "1", "1" },
					       { "1.0", "1" },     { "0", "0" },    { "0.000001", "0.000001" },
					       { "0.123456", "0.123456" } };
	static const char *const bad[][2] = {
		{ "1.5", "above the maximum 1" },
		{ "2", "not a fraction between 0 and 1 (e.g. 0.95)" },
		{ "0.1234567", "more than six decimals" },
		{ "95%", "not a fraction between 0 and 1 (e.g. 0.95)" },
		{ "-0.5", "not a fraction between 0 and 1 (e.g. 0.95)" },
		{ "", "not a fraction between 0 and 1 (e.g. 0.95)" },
		{ ".", "not a fraction between 0 and 1 (e.g. 0.95)" },
	};
	struct kvn_conf c;
	char set[64], want[160], out[64];

	kvn_conf_init(&c);
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		snprintf(set, sizeof set, "peer.low_watermark=%s", good[i][0]);
		is_int(kvn_conf_set(&c, set, err, sizeof err), 0, "fraction '%s' parses", good[i][0]);
		kvn_conf_get(&c, "peer.low_watermark", out, sizeof out);
		is_str(out, good[i][1], "and reads back canonically (case %zu)", i);
	}
	is_int((int)c.peer_low_watermark, 123456, "stored as parts per million");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(set, sizeof set, "peer.high_watermark=%s", bad[i][0]);
		snprintf(want, sizeof want, "--set %s: %s", set, bad[i][1]);
		set_fails(&c, set, want);
	}
	kvn_conf_fini(&c);

	/* peer.offload = auto follows the disk tier */
	kvn_conf_init(&c);
	is_int(kvn_conf_finalize(&c, err, sizeof err), 0, "defaults finalize");
	is_int(c.peer_offload, KVN_OFFLOAD_OFF, "offload auto without a disk tier: off");
	kvn_conf_fini(&c);
	kvn_conf_init(&c);
	kvn_conf_set(&c, "peer.disk_size=1GiB", err, sizeof err);
	is_int(kvn_conf_finalize(&c, err, sizeof err), 0, "with a disk tier finalize");
	is_int(c.peer_offload, KVN_OFFLOAD_ON_EVICT, "offload auto with a disk tier: on-evict");
	is_str(c.peer_disk_dir ? c.peer_disk_dir : "(null)", "var/disk", "disk_dir derives from data_dir");
	kvn_conf_fini(&c);
}

static void test_get(void)
{
	struct kvn_conf c;
	char buf[8];

	kvn_conf_init(&c);
	get_is(&c, "peer.dram_size", "1GiB");
	get_is(&c, "node.max_value_size", "64MiB");
	get_is(&c, "master.node_timeout", "10s");
	get_is(&c, "client.endpoint_max_age", "1m");
	get_is(&c, "peer.hugepages", "on");
	get_is(&c, "node.log_level", "info");
	get_is(&c, "node.mailbox_size", "4096");
	get_is(&c, "master.listen", "127.0.0.1:7400");
	get_is(&c, "peer.advertise", "");
	kvn_conf_set(&c, "peer.dram_size=1.5G", err, sizeof err);
	kvn_conf_set(&c, "peer.pending_ttl=1500ms", err, sizeof err);
	kvn_conf_set(&c, "peer.hugepages=false", err, sizeof err);
	kvn_conf_set(&c, "node.log_level=warn", err, sizeof err);
	kvn_conf_set(&c, "client.quarantine=0", err, sizeof err);
	get_is(&c, "peer.dram_size", "1.5GiB");
	get_is(&c, "peer.pending_ttl", "1.5s");
	get_is(&c, "peer.hugepages", "off");
	get_is(&c, "node.log_level", "warn");
	get_is(&c, "client.quarantine", "0ms");
	is_int(kvn_conf_get(&c, "peer.nope", buf, sizeof buf), KVN_ENOTFOUND, "unknown key");
	is_int(kvn_conf_get(&c, "pee.dram_size", buf, sizeof buf), KVN_ENOTFOUND, "unknown section");
	is_int(kvn_conf_get(&c, "dram_size", buf, sizeof buf), KVN_ENOTFOUND, "no section");
	is_int(kvn_conf_get(&c, "", buf, sizeof buf), KVN_ENOTFOUND, "empty name");
	is_int(kvn_conf_get(&c, "master.listen", buf, sizeof buf), KVN_ERANGE, "too small a buffer");
	is_str(buf, "127.0.0", "truncated, terminated");
	is_int(kvn_conf_get(&c, "peer.dram_size", buf, 7), 0, "exact fit");
	is_str(buf, "1.5GiB", "exact fit value");
	kvn_conf_fini(&c);
}

static void test_example_file(void)
{
	char *gen = render(kvn_conf_write_example), file[512], line[256];
	char *committed;
	struct kvn_conf ex, def;
	int same = 1, rc, checked = 0;

	snprintf(file, sizeof file, "%s/etc/kvnode.conf", srcdir());
	committed = slurp(file);
	if (!ok(committed && strcmp(gen, committed) == 0, "etc/kvnode.conf is what the table makes")) {
		tap_diag("  regenerate: make regen-config");
		if (committed)
			for (const char *a = gen, *b = committed; *a || *b; a++, b++)
				if (*a != *b) {
					tap_diag("  first difference at byte %zu", (size_t)(a - gen));
					break;
				}
	}
	free(committed);

	kvn_conf_init(&ex);
	kvn_conf_init(&def);
	rc = kvn_conf_load(&ex, file, err, sizeof err);
	if (!ok(rc == 0, "etc/kvnode.conf loads"))
		tap_diag("  %s", err);
	rc = kvn_conf_finalize(&ex, err, sizeof err);
	if (!ok(rc == 0, "and finalizes"))
		tap_diag("  %s", err);
	/* a key the example shows with another value (node.data_dir = ../var)
	 * holds it, resolved against etc/: the defaults get it the same way */
	char *etc = realpath(file, NULL);
	if (etc)
		*strrchr(etc, '/') = '\0';
	for (size_t i = 0; etc && i < conf_nkeys; i++)
		if (conf_example_value(&conf_keys[i])) {
			char set[700];
			const char *v = conf_example_value(&conf_keys[i]);
			int up = strncmp(v, "../", 3) == 0; /* the parent of etc/, spelled out */
			snprintf(set, sizeof set, "%s.%s=%.*s/%s", conf_keys[i].section, conf_keys[i].name,
				 (int)(up ? strrchr(etc, '/') - etc : (long)strlen(etc)), etc, v + (up ? 3 : 0));
			ok(kvn_conf_set(&def, set, err, sizeof err) == 0, "example value of %s.%s",
			   conf_keys[i].section, conf_keys[i].name);
		}
	free(etc);
	kvn_conf_finalize(&def, err, sizeof err);

	/* every key the example names holds the built-in default */
	FILE *mem = fmemopen(gen, strlen(gen), "r");
	char section[32] = "";
	while (fgets(line, sizeof line, mem)) {
		char key[64], name[100], a[256], b[256];
		if (sscanf(line, "[%31[a-z]]", section) == 1)
			continue;
		int n = 0;
		if (!(sscanf(line, "%63[a-z_] = %n", key, &n) == 1 && n > 0) &&
		    !(sscanf(line, "# %63[a-z_] = (default:%n", key, &n) == 1 && n > 0))
			continue;
		snprintf(name, sizeof name, "%s.%s", section, key);
		if (kvn_conf_get(&ex, name, a, sizeof a) != 0 || kvn_conf_get(&def, name, b, sizeof b) != 0 ||
		    strcmp(a, b) != 0) {
			tap_diag("  %s: example '%s', default '%s'", name, a, b);
			same = 0;
		}
		checked++;
	}
	fclose(mem);
	/* as many keys as the Markdown table has rows */
	char *md = render(kvn_conf_write_markdown);
	int rows = 0;
	for (const char *p = md; (p = strstr(p, "\n| `")); p++)
		rows++;
	free(md);
	ok(same && checked > 20 && checked == rows, "all %d keys in the example hold their defaults",
	   checked);
	kvn_conf_fini(&ex);
	kvn_conf_fini(&def);
	free(gen);
}

static void test_markdown_doc(void)
{
	static const char begin[] = "<!-- BEGIN GENERATED CONFIG TABLE -->\n";
	static const char end[] = "<!-- END GENERATED CONFIG TABLE -->";
	char *md = render(kvn_conf_write_markdown), file[512];
	char *doc, *b, *e;

	snprintf(file, sizeof file, "%s/docs/configuration.md", srcdir());
	doc = slurp(file);
	b = doc ? strstr(doc, begin) : NULL;
	e = b ? strstr(b, end) : NULL;
	if (!ok(b && e, "docs/configuration.md has both markers")) {
		free(doc);
		free(md);
		return;
	}
	b += strlen(begin);
	*e = '\0';
	ok(b[0] == '\n' && strncmp(b + 1, md, strlen(md)) == 0 && strcmp(b + 1 + strlen(md), "\n") == 0,
	   "the table between the markers is what the table makes (make regen-config)");
	ok(strstr(md, "| `dram_size` | size | `1GiB` | 1MiB..1TiB |") != NULL,
	   "markdown row for peer.dram_size");
	free(doc);
	free(md);
}

/* man/kvnode.conf.5.in: the roff page the build turns into kvnode.conf(5) */
static void test_man_page(void)
{
	char *man = render(kvn_conf_write_man), file[512], want[128];
	char *committed;
	int missing = 0;

	snprintf(file, sizeof file, "%s/man/kvnode.conf.5.in", srcdir());
	committed = slurp(file);
	ok(committed && strcmp(man, committed) == 0,
	   "man/kvnode.conf.5.in is what the table makes (make regen-config)");
	for (size_t i = 0; i < conf_nkeys; i++) {
		snprintf(want, sizeof want, "\n.TP\n\\fB%s\\fR (", conf_keys[i].name);
		if (!strstr(man, want)) {
			tap_diag("  no entry for %s.%s", conf_keys[i].section, conf_keys[i].name);
			missing++;
		}
	}
	ok(missing == 0, "an entry per key (%zu keys)", conf_nkeys);
	ok(strstr(man, ".TH KVNODE.CONF 5 ") && strstr(man, "\n.SS [auth]\n"), "a section 5 page, [auth] in it");
	/* no line may start with a roff control character the text did not mean */
	int stray = 0;
	for (const char *p = man; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (*p == '\'' || (*p == '.' && !strchr("\\TSPIBR", p[1])))
			stray++;
	}
	ok(stray == 0, "no text line starts with a control character");
	free(committed);
	free(man);
}

static void test_help(void)
{
	char *help = render(kvn_conf_write_help);

	ok(strstr(help, "\n[peer]\n") && strstr(help, "\n[auth]\n"), "sections listed");
	ok(strstr(help, "  page_size            size      default 4KiB (4KiB..1GiB, power of two)\n"),
	   "a size key with default and range");
	ok(strstr(help, "  peer_secret_file     path      default <data_dir>/peer.secret\n"),
	   "a derived default");
	ok(strstr(help, "      Deadline of each client call, retries included.\n"), "help text");
	free(help);
}

/* Relative paths in a file start at the file's directory; keywords of
 * node.log, absolute paths, --set and defaults are left alone. */
static void test_relative_paths(void)
{
	struct kvn_conf c;
	char dir[600], want[700];
	int rc = load_text(&c, "[node]\ndata_dir = d\nlog = logs/kv.log\npid_file = ../kv.pid\n"
			       "[peer]\ndisk_dir = /abs/disk\n[auth]\npeer_secret_file = s/p.secret\n");
	ok(rc == 0, "a file with relative paths loads");
	if (!realpath(tmpdir, dir))
		snprintf(dir, sizeof dir, "%s", tmpdir);
	snprintf(want, sizeof want, "%s/d", dir);
	is_str(c.node_data_dir, want, "node.data_dir: next to the file");
	snprintf(want, sizeof want, "%s/logs/kv.log", dir);
	is_str(c.node_log, want, "node.log FILE: next to the file");
	snprintf(want, sizeof want, "%.*s/kv.pid", (int)(strrchr(dir, '/') - dir), dir);
	is_str(c.node_pid_file, want, "node.pid_file: '..' is the file's directory's parent");
	is_str(c.peer_disk_dir, "/abs/disk", "an absolute path stays as it is");
	snprintf(want, sizeof want, "%s/s/p.secret", dir);
	is_str(c.auth_peer_secret_file, want, "auth.peer_secret_file: next to the file");
	kvn_conf_finalize(&c, err, sizeof err);
	snprintf(want, sizeof want, "%s/d/client.secret", dir);
	is_str(c.auth_client_secret_file, want, "a derived secret file follows the resolved data_dir");
	kvn_conf_set(&c, "node.pid_file=rel.pid", err, sizeof err);
	is_str(c.node_pid_file, "rel.pid", "--set keeps a relative path as given (the working dir)");
	kvn_conf_fini(&c);

	rc = load_text(&c, "[node]\nlog = syslog\n");
	ok(rc == 0, "node.log = syslog loads");
	is_str(c.node_log, "syslog", "syslog is a word, not a file");
	kvn_conf_fini(&c);
	rc = load_text(&c, "[node]\nlog = stderr\n");
	is_str(c.node_log, "stderr", "stderr is a word, not a file");
	kvn_conf_fini(&c);
	kvn_conf_init(&c);
	is_str(c.node_log, "stderr", "node.log defaults to stderr");
	is_str(c.node_pid_file, "", "node.pid_file defaults to none");
	is_str(c.node_data_dir, "var", "without a file the default stays relative to the working dir");
	kvn_conf_fini(&c);
	load_fails("[node]\nlog =\n", ":2: node.log = '': must not be empty");
	load_fails("[node]\nlog = a\x01b\n", ":2: control character in line (is this a config file?)");
}

static const struct tap_test tests[] = {
	{ "relative_paths", test_relative_paths },
	{ "defaults", test_defaults },
	{ "good_file", test_good_file },
	{ "file_errors", test_file_errors },
	{ "file_limits", test_file_limits },
	{ "no_secret_echo", test_no_secret_echo },
	{ "set", test_set },
	{ "fraction", test_fraction },
	{ "finalize", test_finalize },
	{ "finalize_rules", test_finalize_rules },
	{ "get", test_get },
	{ "example_file", test_example_file },
	{ "markdown_doc", test_markdown_doc },
	{ "help", test_help },
	{ "man_page", test_man_page },
	{ NULL, NULL },
};

static void remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	char p[600];

	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

int main(int argc, char **argv)
{
	int rc;

	if (argc == 2 && strcmp(argv[1], "--write-example") == 0) {
		kvn_conf_write_example(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--write-markdown") == 0) {
		kvn_conf_write_markdown(stdout);
		return 0;
	}
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! cannot make a temp dir: %s\n", strerror(errno));
		return 1;
	}
	rc = tap_run(tests, argc, argv);
	remove_tmpdir();
	return rc;
}

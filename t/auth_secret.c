/*
 * t/auth_secret: secret files: keygen, load, accepted formats, refused
 * modes, missing and malformed files (messages never echo a secret),
 * rotation.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tap.h"
#include "auth_common.h"

#include "auth/auth.h"
#include "base/base.h"

static char tmpdir[256];

static const char *tpath(const char *name)
{
	static char buf[8][512];
	static int i;
	char *p = buf[i++ % 8];
	snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
	return p;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		kvn_fatal("cannot write %s", path);
	close(fd);
	if (chmod(path, mode) != 0)
		kvn_fatal("cannot chmod %s", path);
}

/* Whole file as a malloc'd string (caller frees), or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = calloc(1, 1 << 16);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static unsigned file_mode(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0xffffu;
}

static int count_dir_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	if (d)
		closedir(d);
	return n;
}

static void clean_dir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlink(tpath(e->d_name));
	if (d)
		closedir(d);
}

/* ---- secret files --------------------------------------------------------- */

static void t_keygen(void)
{
	const char *p = tpath("keygen.secret");
	char err[512] = "";
	char *before, *after;

	is_int(auth_keygen(p, err, sizeof err), 0, "keygen creates a new file");
	is_int(file_mode(p), 0600, "the file is mode 0600");
	before = slurp(p);
	ok(before && strstr(before, "# kvnode secret, created "), "it carries a creation comment");
	is_int(auth_keygen(p, err, sizeof err), KVN_EEXIST, "keygen refuses an existing file");
	ok(strstr(err, p) != NULL, "the refusal names the path: %s", err);
	after = slurp(p);
	ok(before && after && strcmp(before, after) == 0, "the existing file is unchanged");
	mode_t old = umask(0277);
	is_int(auth_keygen(tpath("umask.secret"), err, sizeof err), 0, "keygen under umask 0277");
	umask(old);
	is_int(file_mode(tpath("umask.secret")), 0600, "still gives mode 0600");
	is_int(auth_keygen(tpath("no-such-dir/x"), err, sizeof err), KVN_EIO,
	       "keygen into a missing directory is an I/O error");
	free(before);
	free(after);
	clean_dir();
}

static void t_load_keygen_file(void)
{
	const char *p = tpath("load.secret");
	struct auth_keyring kr;
	char err[512] = "", hex[2 * AUTH_SECRET_MAX + 1];
	char *text, *line;

	is_int(auth_keygen(p, err, sizeof err), 0, "keygen");
	is_int(auth_keyring_load(&kr, p, err, sizeof err), 0, "load the generated file");
	is_int(kr.n, 1, "one secret");
	is_int(kr.s[0].len, 32, "of 32 bytes");
	text = slurp(p);
	line = text ? strchr(text, '\n') : NULL; /* line 1 is the comment */
	kvn_hex(hex, kr.s[0].key, kr.s[0].len);
	ok(line && strncmp(line + 1, hex, 64) == 0, "the loaded key is the hex line of the file");
	auth_keyring_wipe(&kr);
	is_int(kr.n, 0, "wipe clears the count");
	free(text);

	/* two generated secrets differ */
	struct auth_keyring kr2;
	is_int(auth_keygen(tpath("load2.secret"), err, sizeof err), 0, "second keygen");
	is_int(auth_keyring_load(&kr, p, err, sizeof err), 0, "reload first");
	is_int(auth_keyring_load(&kr2, tpath("load2.secret"), err, sizeof err), 0, "load second");
	ok(!secret_eq(&kr.s[0], &kr2.s[0]), "two keygens give different secrets");
	auth_keyring_wipe(&kr);
	auth_keyring_wipe(&kr2);
	clean_dir();
}

static void t_accepted_formats(void)
{
	char h1[2 * AUTH_SECRET_MAX + 1], h2[2 * AUTH_SECRET_MAX + 1], text[4096];
	struct auth_secret s1, s2;
	struct auth_keyring kr;
	char err[512] = "";
	const char *p = tpath("fmt.secret");

	pattern_hex(h1, 1, 32);
	pattern_hex(h2, 2, 64);
	pattern_secret(&s1, 1, 32);
	pattern_secret(&s2, 2, 64);
	for (char *c = h2; *c; c++) /* upper case is hex too */
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	snprintf(text, sizeof text, "# comment\n\n   \t\n  %s  \r\n#%s\n%s", h1, h1, h2);
	write_file(p, text, 0600);
	is_int(auth_keyring_load(&kr, p, err, sizeof err), 0, "comments, blanks, CRLF, spaces, "
	       "upper case and a missing final newline load: %s", err);
	is_int(kr.n, 2, "two secrets (the commented one is ignored)");
	ok(secret_eq(&kr.s[0], &s1), "first secret in file order, 32 bytes");
	ok(secret_eq(&kr.s[1], &s2), "second secret, 64 bytes");

	/* AUTH_MAX_SECRETS is allowed */
	size_t n = 0;
	for (int i = 0; i < AUTH_MAX_SECRETS; i++) {
		pattern_hex(h1, 10 + i, 32);
		n += (size_t)snprintf(text + n, sizeof text - n, "%s\n", h1);
	}
	write_file(p, text, 0600);
	is_int(auth_keyring_load(&kr, p, err, sizeof err), 0, "%d secrets load", AUTH_MAX_SECRETS);
	is_int(kr.n, AUTH_MAX_SECRETS, "all of them");
	pattern_secret(&s1, 10 + AUTH_MAX_SECRETS - 1, 32);
	ok(secret_eq(&kr.s[AUTH_MAX_SECRETS - 1], &s1), "the last one in place");
	auth_keyring_wipe(&kr);
	clean_dir();
}

static void t_refuse_modes(void)
{
	static const unsigned modes[] = { 0640, 0604, 0644, 0660, 0601 };
	char h[2 * AUTH_SECRET_MAX + 1], text[256], want[512];
	struct auth_keyring kr;
	const char *p = tpath("mode.secret");

	pattern_hex(h, 5, 32);
	snprintf(text, sizeof text, "%s\n", h);
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		char err[512] = "";
		write_file(p, text, modes[i]);
		is_int(auth_keyring_load(&kr, p, err, sizeof err), KVN_EPERM, "mode %04o refused",
		       modes[i]);
		snprintf(want, sizeof want,
			 "%s: mode %04o is group- or world-accessible; run chmod 600 %s", p, modes[i], p);
		is_str(err, want, "mode %04o: message", modes[i]);
		ok(strstr(err, h) == NULL && strstr(err, h + 20) == NULL, "no secret in the message");
		is_int(kr.n, 0, "nothing loaded");
	}
	write_file(p, text, 0400);
	char err[512] = "";
	is_int(auth_keyring_load(&kr, p, err, sizeof err), 0, "mode 0400 is fine");
	auth_keyring_wipe(&kr);
	clean_dir();
}

static void t_missing(void)
{
	const char *p = tpath("absent.secret");
	struct auth_keyring kr;
	char err[512] = "", want[600];

	is_int(auth_keyring_load(&kr, p, err, sizeof err), KVN_EIO, "missing file");
	snprintf(want, sizeof want, "%s: cannot open: ", p);
	ok(strncmp(err, want, strlen(want)) == 0, "message: %s", err);
	ok(mkdir(p, 0700) == 0, "make a directory at the path");
	is_int(auth_keyring_load(&kr, p, err, sizeof err), KVN_ECONFIG, "a directory is refused");
	rmdir(p);
	ok(mkfifo(p, 0600) == 0, "make a FIFO at the path");
	is_int(auth_keyring_load(&kr, p, err, sizeof err), KVN_ECONFIG,
	       "a FIFO is refused without blocking");
	unlink(p);
}

static void t_malformed(void)
{
	char good[2 * AUTH_SECRET_MAX + 1], bad[2 * AUTH_SECRET_MAX + 8], text[4096], want[600];
	const char *p = tpath("bad.secret");
	struct auth_keyring kr;
	struct {
		const char *what;
		int nbytes;  /* hex of this many bytes ... */
		int mangle;  /* 0 as is, 1 'z' at [10], 2 drop last digit */
		int line;    /* where the bad line is */
	} cases[] = {
		{ "non-hex digit", 32, 1, 3 },
		{ "short secret (31 bytes)", 31, 0, 3 },
		{ "odd number of digits (65)", 33, 2, 3 },
		{ "long secret (65 bytes)", 65, 0, 3 },
	};

	pattern_hex(good, 7, 32);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[512] = "";
		pattern_hex(bad, 40 + (int)i, (size_t)cases[i].nbytes);
		if (cases[i].mangle == 1)
			bad[10] = 'z';
		if (cases[i].mangle == 2)
			bad[strlen(bad) - 1] = '\0';
		snprintf(text, sizeof text, "%s\n# next\n%s\n", good, bad);
		write_file(p, text, 0600);
		memset(&kr, 0xa5, sizeof kr);
		is_int(auth_keyring_load(&kr, p, err, sizeof err), KVN_ECONFIG, "%s", cases[i].what);
		snprintf(want, sizeof want, "%s:%d: ", p, cases[i].line);
		ok(strncmp(err, want, strlen(want)) == 0, "%s: message has PATH:LINE: %s",
		   cases[i].what, err);
		ok(strstr(err, bad + 16) == NULL && strstr(err, good + 16) == NULL &&
			   strstr(err, good) == NULL,
		   "%s: no secret hex in the message", cases[i].what);
		ok(kr.n == 0 && kr.s[0].len == 0 && kr.s[0].key[0] == 0,
		   "%s: the keyring is wiped", cases[i].what);
	}

	/* one too many */
	char err[512] = "";
	size_t n = 0;
	for (int i = 0; i <= AUTH_MAX_SECRETS; i++) {
		pattern_hex(good, 60 + i, 32);
		n += (size_t)snprintf(text + n, sizeof text - n, "%s\n", good);
	}
	write_file(p, text, 0600);
	is_int(auth_keyring_load(&kr, p, err, sizeof err), KVN_ECONFIG, "%d secrets refused",
	       AUTH_MAX_SECRETS + 1);
	snprintf(want, sizeof want, "%s:%d: ", p, AUTH_MAX_SECRETS + 1);
	ok(strncmp(err, want, strlen(want)) == 0, "too many: PATH:LINE of the extra one: %s", err);
	ok(strstr(err, good + 16) == NULL, "too many: no secret hex");

	write_file(p, "# only a comment\n\n", 0600);
	is_int(auth_keyring_load(&kr, p, err, sizeof err), KVN_ECONFIG, "a file with no secret");
	write_file(p, "", 0600);
	is_int(auth_keyring_load(&kr, p, err, sizeof err), KVN_ECONFIG, "an empty file");
	pattern_hex(good, 8, 32);
	snprintf(text, sizeof text, "%s # trailing comment\n", good);
	write_file(p, text, 0600);
	is_int(auth_keyring_load(&kr, p, err, sizeof err), KVN_ECONFIG,
	       "a comment after a secret on its line is refused, not half-parsed");
	ok(strstr(err, good) == NULL && strstr(err, good + 16) == NULL, "and not echoed");
	clean_dir();
}

static void t_rotate(void)
{
	const char *p = tpath("rot.secret");
	struct auth_keyring old, now;
	char err[512] = "", text[4096];

	is_int(auth_keygen(p, err, sizeof err), 0, "keygen");
	is_int(auth_keyring_load(&old, p, err, sizeof err), 0, "load");
	is_int(auth_keygen_rotate(p, err, sizeof err), 0, "rotate: %s", err);
	is_int(auth_keyring_load(&now, p, err, sizeof err), 0, "load rotated");
	is_int(now.n, 2, "two secrets");
	ok(now.s[0].len == 32 && !secret_eq(&now.s[0], &old.s[0]), "a new secret first");
	ok(secret_eq(&now.s[1], &old.s[0]), "the old secret second");
	is_int(file_mode(p), 0600, "still mode 0600");
	is_int(count_dir_entries(), 1, "no temporary file left behind");

	/* a full file: the oldest (last) secret and its comment are dropped */
	size_t n = 0;
	char h[2 * AUTH_SECRET_MAX + 1];
	for (int i = 0; i < AUTH_MAX_SECRETS; i++) {
		pattern_hex(h, 90 + i, 32);
		n += (size_t)snprintf(text + n, sizeof text - n, "# about secret %d\n%s\n", i, h);
	}
	n += (size_t)snprintf(text + n, sizeof text - n, "# trailer\n");
	write_file(p, text, 0600);
	is_int(auth_keyring_load(&old, p, err, sizeof err), 0, "load a full file");
	is_int(auth_keygen_rotate(p, err, sizeof err), 0, "rotate a full file");
	is_int(auth_keyring_load(&now, p, err, sizeof err), 0, "load it");
	is_int(now.n, AUTH_MAX_SECRETS, "still %d secrets", AUTH_MAX_SECRETS);
	int kept = 1;
	for (int i = 0; i + 1 < AUTH_MAX_SECRETS; i++)
		kept &= secret_eq(&now.s[i + 1], &old.s[i]);
	ok(kept, "the newest %d old secrets follow the new one in order", AUTH_MAX_SECRETS - 1);
	char *t = slurp(p);
	char last[32];
	snprintf(last, sizeof last, "# about secret %d\n", AUTH_MAX_SECRETS - 1);
	ok(t && strstr(t, "# about secret 0\n") && !strstr(t, last) && strstr(t, "# trailer\n"),
	   "comments of kept secrets stay, the dropped one's goes");
	free(t);

	/* a refused file is not rewritten */
	write_file(p, text, 0644);
	t = slurp(p);
	is_int(auth_keygen_rotate(p, err, sizeof err), KVN_EPERM, "rotate refuses a 0644 file");
	char *t2 = slurp(p);
	ok(t && t2 && strcmp(t, t2) == 0 && file_mode(p) == 0644, "and leaves it alone");
	free(t);
	free(t2);
	write_file(p, "zz\n", 0600);
	is_int(auth_keygen_rotate(p, err, sizeof err), KVN_ECONFIG, "rotate refuses a malformed file");
	is_int(auth_keygen_rotate(tpath("absent"), err, sizeof err), KVN_EIO,
	       "rotate of a missing file");
	auth_keyring_wipe(&old);
	auth_keyring_wipe(&now);
	clean_dir();
}

static const struct tap_test tests[] = {
	{ "keygen", t_keygen },
	{ "load_keygen_file", t_load_keygen_file },
	{ "accepted_formats", t_accepted_formats },
	{ "refuse_modes", t_refuse_modes },
	{ "missing", t_missing },
	{ "malformed", t_malformed },
	{ "rotate", t_rotate },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	int rc;

	umask(022);
	snprintf(tmpdir, sizeof tmpdir, "%s/kvn-auth-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		kvn_fatal("mkdtemp %s: %s", tmpdir, strerror(errno));
	rc = tap_run(tests, argc, argv);
	clean_dir();
	rmdir(tmpdir);
	return rc;
}

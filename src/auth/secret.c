/*
 * secret: secret files.  Owns reading and validating a keyring file (the mode
 * is checked with fstat on the descriptor we then read, so nothing can swap
 * the file between check and use), creating one (keygen), the rotation
 * rewrite, and role names.  Messages name the file and line, never content.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "base/base.h"

/* A valid file is at most 8 lines of 128 hex digits plus comments; anything
 * this big is not a secret file, and the cap bounds the allocation. */
#define SECRET_FILE_MAX 65536
#define KEYGEN_BYTES 32

const char *auth_role_name(int role)
{
	switch (role) {
	case AUTH_ROLE_NONE: return "none";
	case AUTH_ROLE_MASTER: return "master";
	case AUTH_ROLE_PEER: return "peer";
	case AUTH_ROLE_CLIENT: return "client";
	case AUTH_ROLE_INTERNAL: return "internal";
	default: return "unknown";
	}
}

static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* strerror() is not thread-safe and keyrings may be reloaded off the main
 * thread; config.h defines _GNU_SOURCE, so this is the GNU variant. */
static const char *errtext(int e, char *buf, size_t n)
{
	return strerror_r(e, buf, n);
}

void auth_keyring_wipe(struct auth_keyring *kr)
{
	if (kr)
		OPENSSL_cleanse(kr, sizeof *kr);
}

/* Read the whole file after checking it is a private regular file.  On
 * success *buf (caller frees with OPENSSL_clear_free(*buf, SECRET_FILE_MAX + 1))
 * holds *len bytes plus a NUL. */
static int read_secret_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	char eb[128];
	struct stat st;
	char *b;
	size_t n = 0;
	int fd, rc;

	*buf = NULL;
	*len = 0;
	/* O_NONBLOCK: a FIFO planted at the path must not hang start-up. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return set_err(err, errlen, KVN_EIO, "%s: cannot open: %s", path,
			       errtext(errno, eb, sizeof eb));
	if (fstat(fd, &st) != 0) {
		rc = set_err(err, errlen, KVN_EIO, "%s: cannot stat: %s", path,
			     errtext(errno, eb, sizeof eb));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = set_err(err, errlen, KVN_ECONFIG, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = set_err(err, errlen, KVN_EPERM,
			     "%s: mode %04o is group- or world-accessible; run chmod 600 %s", path,
			     (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	b = malloc(SECRET_FILE_MAX + 1);
	if (!b) {
		rc = set_err(err, errlen, KVN_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, b + n, SECRET_FILE_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = set_err(err, errlen, KVN_EIO, "%s: read failed: %s", path,
				     errtext(errno, eb, sizeof eb));
			OPENSSL_clear_free(b, SECRET_FILE_MAX + 1);
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > SECRET_FILE_MAX) {
			rc = set_err(err, errlen, KVN_ECONFIG, "%s: larger than %d bytes", path,
				     SECRET_FILE_MAX);
			OPENSSL_clear_free(b, SECRET_FILE_MAX + 1);
			goto out;
		}
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	rc = 0;
out:
	close(fd);
	return rc;
}

/* One line of the file: [raw, next) including its newline; [s, e) trimmed. */
struct line {
	const char *raw, *next;
	const char *s, *e;
	size_t no;
};

static int next_line(const char *end, struct line *ln)
{
	const char *p = ln->next, *nl;

	if (p >= end)
		return 0;
	nl = memchr(p, '\n', (size_t)(end - p));
	ln->raw = p;
	ln->next = nl ? nl + 1 : end;
	ln->s = p;
	ln->e = nl ? nl : end;
	while (ln->s < ln->e && (*ln->s == ' ' || *ln->s == '\t'))
		ln->s++;
	while (ln->e > ln->s && (ln->e[-1] == ' ' || ln->e[-1] == '\t' || ln->e[-1] == '\r'))
		ln->e--;
	ln->no++;
	return 1;
}

static int line_is_secret(const struct line *ln)
{
	return ln->s < ln->e && *ln->s != '#';
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

static int parse_keyring(const char *buf, size_t len, const char *path, struct auth_keyring *kr,
			 char *err, size_t errlen)
{
	const char *end = buf + len;
	struct line ln = { .next = buf };

	memset(kr, 0, sizeof *kr);
	while (next_line(end, &ln)) {
		size_t nd = (size_t)(ln.e - ln.s);

		if (!line_is_secret(&ln))
			continue;
		for (size_t i = 0; i < nd; i++)
			if (hexval(ln.s[i]) < 0)
				return set_err(err, errlen, KVN_ECONFIG,
					       "%s:%zu: not a hex secret (a line holds one hex "
					       "secret, a '#' comment, or nothing)",
					       path, ln.no);
		if (nd % 2)
			return set_err(err, errlen, KVN_ECONFIG, "%s:%zu: odd number of hex digits",
				       path, ln.no);
		if (nd / 2 < AUTH_SECRET_MIN)
			return set_err(err, errlen, KVN_ECONFIG,
				       "%s:%zu: secret shorter than %d bytes (%d hex digits); "
				       "`kvnode keygen` makes one",
				       path, ln.no, AUTH_SECRET_MIN, 2 * AUTH_SECRET_MIN);
		if (nd / 2 > AUTH_SECRET_MAX)
			return set_err(err, errlen, KVN_ECONFIG,
				       "%s:%zu: secret longer than %d bytes", path, ln.no,
				       AUTH_SECRET_MAX);
		if (kr->n == AUTH_MAX_SECRETS)
			return set_err(err, errlen, KVN_ECONFIG,
				       "%s:%zu: more than %d secrets", path, ln.no,
				       AUTH_MAX_SECRETS);
		struct auth_secret *sec = &kr->s[kr->n++];
		for (size_t i = 0; i < nd / 2; i++)
			sec->key[i] = (uint8_t)(hexval(ln.s[2 * i]) << 4 | hexval(ln.s[2 * i + 1]));
		sec->len = nd / 2;
	}
	if (kr->n == 0)
		return set_err(err, errlen, KVN_ECONFIG, "%s: no secret in file", path);
	return 0;
}

int auth_keyring_load(struct auth_keyring *kr, const char *path, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int rc;

	if (!kr || !path)
		return set_err(err, errlen, KVN_EINVAL, "secret file: no path");
	memset(kr, 0, sizeof *kr);
	rc = read_secret_file(path, &buf, &len, err, errlen);
	if (rc)
		return rc;
	rc = parse_keyring(buf, len, path, kr, err, errlen);
	OPENSSL_clear_free(buf, SECRET_FILE_MAX + 1);
	if (rc)
		auth_keyring_wipe(kr);
	return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Mode 0600, contents, fsync, close (always).  0 or the first errno. */
static int write_and_close(int fd, const char *p, size_t n)
{
	int e = 0;

	if (fchmod(fd, 0600) != 0 || write_all(fd, p, n) != 0 || fsync(fd) != 0)
		e = errno;
	if (close(fd) != 0 && !e)
		e = errno;
	return e;
}

/* Make a rename or create durable: fsync the directory holding path. */
static void fsync_parent(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else if ((size_t)(slash - path) < sizeof dir)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* best effort: the file itself is already fsynced */
	(void)fsync(fd);
	close(fd);
}

/* "# kvnode secret, created 2026-11-26T00:16:03Z\n<64 hex digits>\n" for a
 * fresh random secret; returns its length, or KVN_EIO if no randomness. */
static int fresh_secret_text(char *out, size_t cap)
{
	uint8_t key[KEYGEN_BYTES];
	char hex[2 * KEYGEN_BYTES + 1];
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	if (kvn_random(key, sizeof key) != 0)
		return KVN_EIO;
	kvn_hex(hex, key, sizeof key);
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(out, cap, "# kvnode secret, created %s\n%s\n", when, hex);
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(hex, sizeof hex);
	KVN_ASSERT(n > 0 && (size_t)n < cap);
	return n;
}

int auth_keygen(const char *path, char *err, size_t errlen)
{
	char text[256], eb[128];
	int fd, n, rc = 0;

	if (!path || !*path)
		return set_err(err, errlen, KVN_EINVAL, "keygen: no path");
	n = fresh_secret_text(text, sizeof text);
	if (n < 0)
		return set_err(err, errlen, n, "%s: no random bytes available", path);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		int e = errno;
		rc = e == EEXIST ? set_err(err, errlen, KVN_EEXIST,
					   "%s: already exists; not overwriting it", path)
				 : set_err(err, errlen, KVN_EIO, "%s: cannot create: %s", path,
					   errtext(e, eb, sizeof eb));
		goto done;
	}
	/* open() honours the umask; the file must be exactly 0600 regardless */
	rc = write_and_close(fd, text, (size_t)n);
	if (rc) {
		set_err(err, errlen, KVN_EIO, "%s: cannot write: %s", path,
			errtext(rc, eb, sizeof eb));
		rc = KVN_EIO;
		unlink(path);
		goto done;
	}
	fsync_parent(path);
done:
	OPENSSL_cleanse(text, sizeof text);
	return rc;
}

/* Build the rotated file: the new secret first, then the old file with its
 * comments, dropping the secrets beyond AUTH_MAX_SECRETS - 1 together with
 * the comment lines right above each of them (they describe that secret). */
static size_t rotate_text(char *out, const char *fresh, size_t freshlen, const char *buf,
			  size_t len)
{
	const char *end = buf + len;
	struct line ln = { .next = buf };
	const char *group = buf; /* start of the comments preceding the next secret */
	size_t n = 0, kept = 0;

	memcpy(out, fresh, freshlen);
	n = freshlen;
	while (next_line(end, &ln)) {
		if (!line_is_secret(&ln))
			continue;
		if (kept < AUTH_MAX_SECRETS - 1) {
			memcpy(out + n, group, (size_t)(ln.next - group));
			n += (size_t)(ln.next - group);
			if (ln.next == end && end[-1] != '\n')
				out[n++] = '\n';
			kept++;
		}
		group = ln.next;
	}
	memcpy(out + n, group, (size_t)(end - group));
	n += (size_t)(end - group);
	return n;
}

int auth_keygen_rotate(const char *path, char *err, size_t errlen)
{
	struct auth_keyring kr;
	char tmp[4096], fresh[256], eb[128];
	char *buf = NULL, *out = NULL;
	size_t len, outcap = 0, outlen;
	int fd, n, rc;

	if (!path || !*path)
		return set_err(err, errlen, KVN_EINVAL, "keygen: no path");
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp)
		return set_err(err, errlen, KVN_EINVAL, "keygen: path too long");
	rc = read_secret_file(path, &buf, &len, err, errlen);
	if (rc)
		return rc;
	/* Only a file that loads is rewritten: never turn a broken file into a
	 * differently broken one. */
	rc = parse_keyring(buf, len, path, &kr, err, errlen);
	auth_keyring_wipe(&kr);
	if (rc)
		goto done;
	n = fresh_secret_text(fresh, sizeof fresh);
	if (n < 0) {
		rc = set_err(err, errlen, n, "%s: no random bytes available", path);
		goto done;
	}
	outcap = (size_t)n + len + 1;
	out = malloc(outcap);
	if (!out) {
		rc = set_err(err, errlen, KVN_ENOMEM, "%s: out of memory", path);
		goto done;
	}
	outlen = rotate_text(out, fresh, (size_t)n, buf, len);
	KVN_ASSERT(outlen <= outcap);

	fd = mkstemp(tmp); /* O_EXCL, mode 0600, same directory so rename is atomic */
	if (fd < 0) {
		rc = set_err(err, errlen, KVN_EIO, "%s: cannot create temporary file: %s", path,
			     errtext(errno, eb, sizeof eb));
		goto done;
	}
	rc = write_and_close(fd, out, outlen);
	if (rc) {
		set_err(err, errlen, KVN_EIO, "%s: cannot write %s: %s", path, tmp,
			errtext(rc, eb, sizeof eb));
		rc = KVN_EIO;
		unlink(tmp);
		goto done;
	}
	if (rename(tmp, path) != 0) {
		rc = set_err(err, errlen, KVN_EIO, "%s: cannot replace: %s", path,
			     errtext(errno, eb, sizeof eb));
		unlink(tmp);
		goto done;
	}
	fsync_parent(path);
	rc = 0;
done:
	OPENSSL_cleanse(fresh, sizeof fresh);
	if (buf)
		OPENSSL_clear_free(buf, SECRET_FILE_MAX + 1);
	if (out)
		OPENSSL_clear_free(out, outcap);
	return rc;
}

/* ---- live keyrings (SIGHUP) ---- */

/* One lock for every live keyring of the process: reloads are rare and
 * handshakes only read, so a reader-writer lock costs them nothing they
 * would notice. */
static pthread_rwlock_t ring_lock = PTHREAD_RWLOCK_INITIALIZER;

void auth_keyring_rdlock(void)
{
	pthread_rwlock_rdlock(&ring_lock);
}

void auth_keyring_unlock(void)
{
	pthread_rwlock_unlock(&ring_lock);
}

static int ring_has(const struct auth_keyring *kr, const struct auth_secret *s)
{
	int found = 0;
	for (size_t i = 0; i < kr->n; i++)
		found |= kr->s[i].len == s->len && CRYPTO_memcmp(kr->s[i].key, s->key, s->len) == 0;
	return found;
}

int auth_keyring_reload(struct auth_keyring *kr, const char *path, int *added, int *removed, char *err,
			size_t errlen)
{
	struct auth_keyring fresh;
	int add = 0, rm = 0;
	int rc = auth_keyring_load(&fresh, path, err, errlen);

	if (rc)
		return rc;
	pthread_rwlock_wrlock(&ring_lock);
	for (size_t i = 0; i < fresh.n; i++)
		add += !ring_has(kr, &fresh.s[i]);
	for (size_t i = 0; i < kr->n; i++)
		rm += !ring_has(&fresh, &kr->s[i]);
	*kr = fresh;
	pthread_rwlock_unlock(&ring_lock);
	auth_keyring_wipe(&fresh);
	if (added)
		*added = add;
	if (removed)
		*removed = rm;
	return 0;
}

void auth_keyring_first(const struct auth_keyring *kr, struct auth_secret *out)
{
	pthread_rwlock_rdlock(&ring_lock);
	*out = kr->s[0];
	pthread_rwlock_unlock(&ring_lock);
}

/* ---- the RESP gateway's AUTH token ---- */

/* A token, not the secret itself: a password typed into redis-cli or an
 * LMCache URL ends up in shell histories and config files, and whoever
 * reads it there can speak RESP to the gateway but cannot attach to the
 * cluster as a client (the handshake needs the secret). */
#define LABEL_RESP_TOKEN "kvnode resp token v1"

int auth_resp_token(const struct auth_secret *k, char out[AUTH_RESP_TOKEN_LEN + 1])
{
	uint8_t mac[AUTH_MAC_LEN];
	int rc = auth_hmac_sha256(k->key, k->len, LABEL_RESP_TOKEN, strlen(LABEL_RESP_TOKEN), mac);
	if (rc == 0)
		kvn_hex(out, mac, sizeof mac);
	OPENSSL_cleanse(mac, sizeof mac);
	return rc;
}

int auth_resp_token_check(const struct auth_keyring *kr, const void *tok, size_t len)
{
	char want[AUTH_RESP_TOKEN_LEN + 1];
	unsigned ok = 0;

	/* every secret of the ring, whatever matched before: rotation accepts
	 * the old and the new token alike, and the time taken does not say
	 * which */
	for (size_t i = 0; i < kr->n; i++) {
		if (auth_resp_token(&kr->s[i], want) != 0)
			continue;
		if (len == AUTH_RESP_TOKEN_LEN)
			ok |= (unsigned)(CRYPTO_memcmp(want, tok, AUTH_RESP_TOKEN_LEN) == 0);
	}
	OPENSSL_cleanse(want, sizeof want);
	return ok ? 0 : KVN_EAUTH;
}

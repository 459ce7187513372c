/*
 * conf: everything made from the key table (conf_keys.c) at run time:
 * defaults, the INI file parser (inih), --set overrides, derived defaults
 * and cross-key checks, and reading values back.  conf_doc.c makes the
 * --help listing, etc/kvnode.conf and the Markdown table from the same
 * table.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base.h"
#include "conf_int.h"

#define FIELD(f) offsetof(struct kvn_conf, f)
#define NKEYS conf_nkeys

/* ---- field access ---------------------------------------------------------- */

static char **str_at(const struct kvn_conf *c, const struct conf_key *k)
{
	return (char **)((const char *)c + k->off);
}

static uint64_t *u64_at(const struct kvn_conf *c, const struct conf_key *k)
{
	return (uint64_t *)((const char *)c + k->off);
}

static int *int_at(const struct kvn_conf *c, const struct conf_key *k)
{
	return (int *)((const char *)c + k->off);
}

static int is_text(const struct conf_key *k)
{
	return k->type == T_STRING || k->type == T_PATH || k->type == T_ADDR;
}

static int is_number(const struct conf_key *k)
{
	return k->type == T_SIZE || k->type == T_DURATION || k->type == T_UINT || k->type == T_FRACTION;
}

static const struct conf_key *key_by_field(size_t off)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (conf_keys[i].off == off)
			return &conf_keys[i];
	kvn_fatal("conf: no key for field offset %zu", off);
}

static int enum_count(const struct conf_key *k)
{
	int n = 0;
	while (k->choices[n])
		n++;
	return n;
}

static void user_set_mark(struct kvn_conf *c, const struct conf_key *k)
{
	size_t i = (size_t)(k - conf_keys);
	c->user_set[i / 64] |= 1ull << (i % 64);
}

static int user_set_has(const struct kvn_conf *c, const struct conf_key *k)
{
	size_t i = (size_t)(k - conf_keys);
	return (c->user_set[i / 64] >> (i % 64)) & 1;
}

/* ---- values as text ---------------------------------------------------------- */

/* Sizes as written in the file ("64MiB"), durations as "10s". */
static void number_text(const struct conf_key *k, uint64_t v, char *out, size_t cap)
{
	if (k->type == T_SIZE) {
		char tmp[32], *sp;
		kvn_format_size(tmp, sizeof tmp, v);
		if ((sp = strchr(tmp, ' ')))
			memmove(sp, sp + 1, strlen(sp));
		snprintf(out, cap, "%s", tmp);
	} else if (k->type == T_DURATION) {
		kvn_format_duration(out, cap, v);
	} else if (k->type == T_FRACTION) {
		/* parts per million as a decimal without trailing zeros: 0.95, 1, 0 */
		int n = snprintf(out, cap, "%llu.%06llu", (unsigned long long)(v / 1000000),
				 (unsigned long long)(v % 1000000));
		while (n > 0 && (size_t)n < cap && out[n - 1] == '0')
			out[--n] = '\0';
		if (n > 0 && (size_t)n < cap && out[n - 1] == '.')
			out[--n] = '\0';
	} else {
		snprintf(out, cap, "%llu", (unsigned long long)v);
	}
}

/* The current value of k in c; returns what snprintf would have written. */
static int value_text(const struct kvn_conf *c, const struct conf_key *k, char *out, size_t cap)
{
	char num[32];

	switch (k->type) {
	case T_STRING:
	case T_PATH:
	case T_ADDR:
		return snprintf(out, cap, "%s", *str_at(c, k) ? *str_at(c, k) : "");
	case T_BOOL:
		return snprintf(out, cap, "%s", *int_at(c, k) ? "on" : "off");
	case T_ENUM: {
		int v = *int_at(c, k);
		return snprintf(out, cap, "%s", v >= 0 && v < enum_count(k) ? k->choices[v] : "?");
	}
	default:
		number_text(k, *u64_at(c, k), num, sizeof num);
		return snprintf(out, cap, "%s", num);
	}
}

/* The range column of --help, the example and the docs ("" if none). */
void conf_range_text(const struct conf_key *k, char *out, size_t cap)
{
	char lo[32], hi[32];

	out[0] = '\0';
	if (is_number(k)) {
		number_text(k, k->min, lo, sizeof lo);
		number_text(k, k->max, hi, sizeof hi);
		snprintf(out, cap, "%s..%s%s", lo, hi, k->flags & F_POW2 ? ", power of two" : "");
	} else if (k->type == T_ENUM) {
		size_t n = 0;
		for (size_t i = 0; k->choices[i] && n < cap; i++)
			n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", k->choices[i]);
	} else if (k->type == T_BOOL) {
		snprintf(out, cap, "on, off");
	} else if (k->type == T_STRING) {
		snprintf(out, cap, "1..%llu characters", (unsigned long long)k->max);
	} else if (k->type == T_ADDR) {
		snprintf(out, cap, "host:port or [v6]:port%s", k->flags & F_EMPTY_OFF ? "; empty: off" : "");
	} else if (k->type == T_PATH && k->choices) {
		size_t n = 0;
		for (size_t i = 0; k->choices[i] && n < cap; i++)
			n += (size_t)snprintf(out + n, cap - n, "%s, ", k->choices[i]);
		if (n < cap)
			snprintf(out + n, cap - n, "or a file");
	}
}

/* ---- parsing one value --------------------------------------------------------- */

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
static const char ident_chars[] = ALNUM "._-"; /* node ids */

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int check_addr(const char *v)
{
	char host[256];
	uint16_t port;

	if (kvn_split_hostport(v, host, sizeof host, &port) < 0 || port == 0)
		return -1;
	for (const char *p = host; *p; p++)
		if (*p == ' ' || *p == '\t' || (unsigned char)*p < 0x20 || *p == '[' || *p == ']')
			return -1;
	return 0;
}

/* Check a number against the key's range and flags; 0 or -1 with why. */
static int check_number(const struct conf_key *k, uint64_t v, char *why, size_t whylen)
{
	char bound[32];

	if (v < k->min || v > k->max) {
		number_text(k, v < k->min ? k->min : k->max, bound, sizeof bound);
		snprintf(why, whylen, "%s the %s %s", v < k->min ? "below" : "above",
			 v < k->min ? "minimum" : "maximum", bound);
		return -1;
	}
	if ((k->flags & F_POW2) && (v & (v - 1)) != 0) {
		snprintf(why, whylen, "not a power of two");
		return -1;
	}
	return 0;
}

/* "0.95", ".5", "1", "0": up to six decimals, into parts per million.
 * Range checks come after (check_number). */
static int parse_fraction(const char *v, uint64_t *out, const char **reason)
{
	uint64_t whole = 0, frac = 0, scale = 100000;
	const char *p = v;
	int digits = 0;

	while (*p >= '0' && *p <= '9' && digits < 3) {
		whole = whole * 10 + (uint64_t)(*p++ - '0');
		digits++;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (scale == 0) {
				*reason = "more than six decimals";
				return -1;
			}
			frac += (uint64_t)(*p++ - '0') * scale;
			scale /= 10;
			digits++;
		}
	}
	if (*p || digits == 0 || whole > 1) {
		*reason = "not a fraction between 0 and 1 (e.g. 0.95)";
		return -1;
	}
	*out = whole * 1000000 + frac;
	return 0;
}

/* Check a text value for k; 0 or -1 with why. */
static int check_text(const struct conf_key *k, const char *v, char *why, size_t whylen)
{
	if (!*v) {
		if (k->flags & (F_DERIVED | F_EMPTY_OFF))
			return 0;
		snprintf(why, whylen, "must not be empty");
		return -1;
	}
	if (has_control(v)) {
		snprintf(why, whylen, "contains a control character");
		return -1;
	}
	if (k->type == T_ADDR && check_addr(v) < 0) {
		snprintf(why, whylen, "not an address (use host:port or [v6]:port, port 1..65535)");
		return -1;
	}
	if (k->type == T_STRING) {
		size_t n = strspn(v, ident_chars);
		if (v[n] || n > k->max) {
			snprintf(why, whylen, "use 1..%llu characters from A-Z a-z 0-9 . _ -",
				 (unsigned long long)k->max);
			return -1;
		}
	}
	return 0;
}

/* Parse v for k and store it in c.  On failure c is unchanged and why says
 * what is wrong with the value. */
static int key_set(struct kvn_conf *c, const struct conf_key *k, const char *v, char *why,
		   size_t whylen)
{
	const char *reason = NULL;
	char choices[128];
	uint64_t n = 0;
	int b = 0;

	switch (k->type) {
	case T_STRING:
	case T_PATH:
	case T_ADDR:
		if (check_text(k, v, why, whylen) < 0)
			return -1;
		free(*str_at(c, k));
		*str_at(c, k) = kvn_xstrdup(v);
		return 0;
	case T_BOOL:
		if (kvn_parse_bool(v, &b, &reason) < 0)
			break;
		*int_at(c, k) = b;
		return 0;
	case T_ENUM:
		for (int i = 0; k->choices[i]; i++)
			if (strcasecmp(v, k->choices[i]) == 0) {
				*int_at(c, k) = i;
				return 0;
			}
		conf_range_text(k, choices, sizeof choices);
		snprintf(why, whylen, "use one of %s", choices);
		return -1;
	case T_SIZE:
		if (kvn_parse_size(v, &n, &reason) < 0)
			break;
		goto number;
	case T_DURATION:
		if (kvn_parse_duration_ms(v, &n, &reason) < 0)
			break;
		goto number;
	case T_FRACTION:
		if (parse_fraction(v, &n, &reason) < 0)
			break;
		goto number;
	case T_UINT:
		if (kvn_parse_uint(v, &n, &reason) < 0)
			break;
	number:
		if (check_number(k, n, why, whylen) < 0)
			return -1;
		*u64_at(c, k) = n;
		return 0;
	}
	snprintf(why, whylen, "%s", reason ? reason : "invalid value");
	return -1;
}

/* ---- lookup by name ------------------------------------------------------------- */

/* Names are echoed in errors only when they look like names: a secret file
 * given as the config by mistake must not end up on the terminal. */
static const char *shown(const char *s)
{
	size_t n = strspn(s, ALNUM "._- ");

	return n == 0 || n > 40 || s[n] ? "(not shown)" : s;
}

static int section_known(const char *section)
{
	for (size_t i = 0; i < conf_nsections; i++)
		if (strcmp(conf_sections[i].name, section) == 0)
			return 1;
	return 0;
}

/* Find section.name; if there is none, write why.  A key put in the wrong
 * section gets a hint: "did you mean 'master.listen'?". */
static const struct conf_key *key_find(const char *section, const char *name, char *why,
				       size_t whylen)
{
	const struct conf_key *hint = NULL;

	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(conf_keys[i].name, name) != 0)
			continue;
		if (strcmp(conf_keys[i].section, section) == 0)
			return &conf_keys[i];
		hint = hint ? hint : &conf_keys[i];
	}
	if (!*section)
		snprintf(why, whylen, "key outside any section (start the file with [node], "
				      "[master], [peer], [client] or [auth])");
	else if (!section_known(section))
		snprintf(why, whylen, "unknown key '%s.%s': unknown section [%s]", shown(section),
			 shown(name), shown(section));
	else if (hint)
		snprintf(why, whylen, "unknown key '%s.%s' (did you mean '%s.%s'?)", section,
			 shown(name), hint->section, hint->name);
	else
		snprintf(why, whylen, "unknown key '%s.%s'", section, shown(name));
	return NULL;
}

/* ---- init, copy, fini ---------------------------------------------------------- */

void kvn_conf_init(struct kvn_conf *c)
{
	char why[160];

	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < NKEYS; i++)
		if (key_set(c, &conf_keys[i], conf_keys[i].def, why, sizeof why) < 0)
			kvn_fatal("conf: default of %s.%s: %s", conf_keys[i].section,
				  conf_keys[i].name, why);
}

void kvn_conf_fini(struct kvn_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		if (is_text(&conf_keys[i]))
			free(*str_at(c, &conf_keys[i]));
	memset(c, 0, sizeof *c);
}

void kvn_conf_copy(struct kvn_conf *dst, const struct kvn_conf *src)
{
	*dst = *src;
	for (size_t i = 0; i < NKEYS; i++)
		if (is_text(&conf_keys[i]))
			*str_at(dst, &conf_keys[i]) = kvn_xstrdup(*str_at(src, &conf_keys[i]));
}

/* Cut blanks from both ends of s, in place. */
static char *trim(char *s)
{
	size_t n;

	s += strspn(s, " \t");
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* ---- files ---------------------------------------------------------------------- */


#define RAW_LINE_MAX 4096

struct load_state {
	FILE *f;
	const char *path;
	char *dir; /* the file's directory, absolute when it can be: relative paths start there */
	struct kvn_conf *c;
	int lineno;    /* lines handed to inih so far: the line being parsed */
	int fail_line; /* line of the first error found here, 0 if none */
	int failed;
	char *err;
	size_t errlen;
};

/* Record the first error: "FILE:LINE: ..." (or "FILE: ..." for line 0). */
static void load_fail(struct load_state *st, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void load_fail(struct load_state *st, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (st->failed)
		return;
	st->failed = 1;
	st->fail_line = line ? line : st->lineno + 1; /* for ordering against inih's errors */
	n = line ? snprintf(st->err, st->errlen, "%s:%d: ", st->path, line)
		 : snprintf(st->err, st->errlen, "%s: ", st->path);
	if (n < 0 || (size_t)n >= st->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* inih's reader: hands over one line at a time, so st->lineno is the line
 * the handler is looking at.  Leading blanks and comments (# or ; at the
 * start, or after a blank) are removed here: inih would read an indented line
 * as a continuation of the previous value, and only knows ';' inline.  A
 * line that does not fit inih's buffer is an error, never split. */
static char *load_reader(char *str, int num, void *stream)
{
	struct load_state *st = stream;
	char line[RAW_LINE_MAX];
	size_t n = 0, limit = num > 3 ? (size_t)num - 3 : 0;
	int ch, bad = 0;

	if (st->failed)
		return NULL; /* stop at the first error */
	while ((ch = getc(st->f)) != EOF && ch != '\n') {
		if (n + 1 >= sizeof line) {
			st->lineno++;
			load_fail(st, st->lineno, "line too long (at most %zu characters, "
					   "comments aside)", limit);
			return NULL;
		}
		if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
			bad = 1;
		line[n++] = (char)ch;
	}
	if (ch == EOF && ferror(st->f)) {
		load_fail(st, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if (ch == EOF && n == 0)
		return NULL;
	line[n] = '\0';
	st->lineno++;
	if (bad || (n > 1 && memchr(line, '\r', n - 1))) {
		load_fail(st, st->lineno, "control character in line (is this a config file?)");
		return NULL;
	}

	char *s = line;
	if (st->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3; /* UTF-8 byte order mark */
	s += strspn(s, " \t");
	if (*s == '#' || *s == ';')
		*s = '\0';
	for (char *p = s; *p; p++)
		if ((*p == '#' || *p == ';') && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	s = trim(s);
	n = strlen(s);
	if (n > limit) {
		load_fail(st, st->lineno, "line too long (at most %zu characters, comments aside)",
			  limit);
		return NULL;
	}
	memcpy(str, s, n + 1);
	return str;
}

static int load_handler(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *st = user;
	const struct conf_key *k;
	char why[256];

	k = key_find(section, name, why, sizeof why);
	if (!k) {
		load_fail(st, st->lineno, "%s", why);
		return 0;
	}
	if (key_set(st->c, k, value, why, sizeof why) < 0) {
		load_fail(st, st->lineno, "%s.%s = '%s': %s", k->section, k->name, value, why);
		return 0;
	}
	/* A relative path in a file means next to the file, wherever kvnode
	 * was started from (--set and built-in defaults: the working dir). */
	char **slot = str_at(st->c, k);
	int keyword = 0;
	for (size_t i = 0; k->type == T_PATH && k->choices && k->choices[i]; i++)
		keyword |= strcmp(*slot, k->choices[i]) == 0;
	if (k->type == T_PATH && **slot && **slot != '/' && !keyword) {
		char *abs = conf_path_under(st->dir, *slot);
		free(*slot);
		*slot = abs;
	}
	user_set_mark(st->c, k);
	return 1;
}

int kvn_conf_load(struct kvn_conf *c, const char *path, char *err, size_t errlen)
{
	char local[8];
	struct kvn_conf tmp;
	struct load_state st = { .path = path, .err = err, .errlen = errlen };
	int rc;

	if (!err || errlen == 0) {
		st.err = local;
		st.errlen = sizeof local;
	}
	st.err[0] = '\0';
	if (!c || !path)
		return KVN_EINVAL;
	st.f = fopen(path, "r");
	if (!st.f) {
		snprintf(st.err, st.errlen, "%s: cannot open: %s", path, strerror(errno));
		return KVN_ECONFIG;
	}
	st.dir = conf_path_dir_of(path);
	/* parse into a copy so a bad file leaves c as it was */
	kvn_conf_copy(&tmp, c);
	st.c = &tmp;
	rc = ini_parse_stream(load_reader, &st, load_handler, &st);
	fclose(st.f);
	free(st.dir);
	if (rc > 0 && (!st.failed || rc < st.fail_line)) {
		snprintf(st.err, st.errlen, "%s:%d: syntax error (expected [section] or key = value)",
			 path, rc);
		st.failed = 1;
	} else if (rc < 0 && !st.failed) {
		snprintf(st.err, st.errlen, "%s: %s", path, kvn_strerror(KVN_ENOMEM));
		st.failed = 1;
	}
	if (st.failed) {
		kvn_conf_fini(&tmp);
		return KVN_ECONFIG;
	}
	kvn_conf_fini(c);
	*c = tmp;
	return 0;
}

int kvn_conf_set(struct kvn_conf *c, const char *assignment, char *err, size_t errlen)
{
	char local[8], why[256];
	const struct conf_key *k;
	char *copy, *name, *value, *dot, *eq;
	int rc = KVN_ECONFIG;

	if (!err || errlen == 0) {
		err = local;
		errlen = sizeof local;
	}
	err[0] = '\0';
	if (!c || !assignment)
		return KVN_EINVAL;
	copy = kvn_xstrdup(assignment);
	eq = strchr(copy, '=');
	if (eq)
		*eq = '\0';
	name = trim(copy);
	dot = strchr(name, '.');
	if (!eq || !dot || dot == name) {
		snprintf(err, errlen, "--set %s: expected section.key=value (e.g. peer.dram_size=2GiB)",
			 shown(name));
		goto out;
	}
	*dot = '\0';
	value = trim(eq + 1);
	k = key_find(name, dot + 1, why, sizeof why);
	if (!k) {
		/* the value of an unknown key is not echoed: it could be anything */
		snprintf(err, errlen, "--set %s.%s=...: %s", shown(name), shown(dot + 1), why);
		goto out;
	}
	if (key_set(c, k, value, why, sizeof why) < 0) {
		snprintf(err, errlen, "--set %s.%s=%s: %s", k->section, k->name, value, why);
		goto out;
	}
	user_set_mark(c, k);
	rc = 0;
out:
	free(copy);
	return rc;
}

/* ---- finalize --------------------------------------------------------------------- */

static void host_name(char *out, size_t cap)
{
	if (gethostname(out, cap) < 0 || !out[0])
		snprintf(out, cap, "localhost");
	out[cap - 1] = '\0';
}

static int is_wildcard(const char *host)
{
	return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "*") == 0;
}

/* Replace a derived default unless the user chose a value; takes `value`. */
static void derive(struct kvn_conf *c, size_t off, char *value)
{
	const struct conf_key *k = key_by_field(off);
	char **slot = str_at(c, k);

	if (user_set_has(c, k) && *slot && **slot) {
		free(value);
		return;
	}
	free(*slot);
	*slot = value;
}

static void derive_defaults(struct kvn_conf *c)
{
	char host[256], hostname[256], buf[512];
	uint16_t port = 0;

	host_name(hostname, sizeof hostname);
	if (kvn_split_hostport(c->peer_listen, host, sizeof host, &port) == 0) {
		if (is_wildcard(host))
			snprintf(buf, sizeof buf, "%s:%u", hostname, port);
		else
			snprintf(buf, sizeof buf, "%s", c->peer_listen);
		derive(c, FIELD(peer_advertise), kvn_xstrdup(buf));

		/* node id: the host name made safe, cut so "-port" still fits */
		char port_s[8];
		size_t keep;
		snprintf(port_s, sizeof port_s, "-%u", port);
		for (char *p = hostname; *p; p++)
			if (!strchr(ident_chars, *p))
				*p = '-';
		keep = strlen(hostname);
		if (keep > key_by_field(FIELD(node_id))->max - strlen(port_s))
			keep = key_by_field(FIELD(node_id))->max - strlen(port_s);
		snprintf(buf, sizeof buf, "%.*s%s", (int)keep, hostname, port_s);
		derive(c, FIELD(node_id), kvn_xstrdup(buf));
	}
	derive(c, FIELD(auth_peer_secret_file), conf_path_join(c->node_data_dir, "peer.secret"));
	derive(c, FIELD(peer_disk_dir), conf_path_join(c->node_data_dir, "disk"));
	derive(c, FIELD(peer_local_socket), conf_path_join(c->node_data_dir, "peer.sock"));
	derive(c, FIELD(auth_client_secret_file), conf_path_join(c->node_data_dir, "client.secret"));
}

int kvn_conf_finalize(struct kvn_conf *c, char *err, size_t errlen)
{
	char local[8], why[160], v[4200], a[32], b[32], host[256];
	struct kvn_conf scratch = { 0 };
	uint16_t port;
	int bad = 0;

	if (!err || errlen == 0) {
		err = local;
		errlen = sizeof local;
	}
	err[0] = '\0';
	if (!c)
		return KVN_EINVAL;
	/* every value through the parser again: code may have set fields directly */
	for (size_t i = 0; i < NKEYS && !bad; i++) {
		const struct conf_key *k = &conf_keys[i];
		if ((size_t)value_text(c, k, v, sizeof v) >= sizeof v)
			bad = snprintf(why, sizeof why, "too long");
		else
			bad = key_set(&scratch, k, v, why, sizeof why) < 0;
		if (bad)
			snprintf(err, errlen, "%s.%s = '%s': %s", k->section, k->name, v, why);
	}
	kvn_conf_fini(&scratch);
	if (bad)
		return KVN_ECONFIG;
	derive_defaults(c);

	if (c->peer_dram_size % c->peer_page_size != 0) {
		number_text(key_by_field(FIELD(peer_dram_size)), c->peer_dram_size, a, sizeof a);
		number_text(key_by_field(FIELD(peer_page_size)), c->peer_page_size, b, sizeof b);
		snprintf(err, errlen, "peer.dram_size (%s) must be a multiple of peer.page_size (%s)",
			 a, b);
		return KVN_ECONFIG;
	}
	if (c->peer_low_watermark >= c->peer_high_watermark) {
		number_text(key_by_field(FIELD(peer_low_watermark)), c->peer_low_watermark, a, sizeof a);
		number_text(key_by_field(FIELD(peer_high_watermark)), c->peer_high_watermark, b, sizeof b);
		snprintf(err, errlen, "peer.low_watermark (%s) must be below peer.high_watermark (%s)", a, b);
		return KVN_ECONFIG;
	}
	if (c->peer_io_threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cpu_set_t set;
		/* a taskset or cpuset limits what this process may run on */
		if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
			n = CPU_COUNT(&set);
		c->peer_io_threads = n < 1 ? 1 : n > 256 ? 256 : (uint64_t)n;
	}
	if (c->peer_offload == KVN_OFFLOAD_AUTO)
		c->peer_offload = c->peer_disk_size > 0 ? KVN_OFFLOAD_ON_EVICT : KVN_OFFLOAD_OFF;
	if (c->peer_disk_size == 0 && c->peer_offload != KVN_OFFLOAD_OFF) {
		snprintf(err, errlen, "peer.offload = '%s' needs a disk tier: set peer.disk_size above 0",
			 c->peer_offload == KVN_OFFLOAD_ON_PUT ? "on-put" : "on-evict");
		return KVN_ECONFIG;
	}
	if (c->master_node_timeout <= c->peer_heartbeat_interval) {
		kvn_format_duration(a, sizeof a, c->master_node_timeout);
		kvn_format_duration(b, sizeof b, c->peer_heartbeat_interval);
		snprintf(err, errlen,
			 "master.node_timeout (%s) must be longer than peer.heartbeat_interval (%s)", a,
			 b);
		return KVN_ECONFIG;
	}
	if (strcmp(c->master_listen, c->peer_listen) == 0) {
		snprintf(err, errlen, "master.listen and peer.listen are the same address (%s)",
			 c->master_listen);
		return KVN_ECONFIG;
	}
	if (kvn_split_hostport(c->peer_advertise, host, sizeof host, &port) == 0 &&
	    is_wildcard(host)) {
		snprintf(err, errlen,
			 "peer.advertise = '%s': clients cannot dial a wildcard address; give this "
			 "host's name or address",
			 c->peer_advertise);
		return KVN_ECONFIG;
	}
	return 0;
}

int kvn_conf_get(const struct kvn_conf *c, const char *name, char *out, size_t cap)
{
	const char *dot = name ? strchr(name, '.') : NULL;

	if (cap > 0)
		out[0] = '\0';
	if (!c || !dot)
		return KVN_ENOTFOUND;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (strlen(k->section) == (size_t)(dot - name) &&
		    strncmp(k->section, name, (size_t)(dot - name)) == 0 &&
		    strcmp(k->name, dot + 1) == 0) {
			int n = value_text(c, k, out, cap);
			return n >= 0 && (size_t)n < cap ? 0 : KVN_ERANGE;
		}
	}
	return KVN_ENOTFOUND;
}


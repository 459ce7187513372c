/*
 * t/resp_parse: the RESP gateway's wire format without a socket: requests
 * (whole, pipelined, cut at every byte, malformed, huge lengths), the
 * reply encoders, Redis's glob, and the AUTH token.
 */
#include "config.h"

#include <event2/buffer.h>
#include <string.h>

#include "auth/auth.h"
#include "resp/resp.h"
#include "tap.h"

static const struct resp_limits lim = { .max_bulk = 1000, .max_request = 4096 };

static int parse(const char *s, size_t len, struct resp_argv *av, size_t *used, size_t *need, const char **why)
{
	av->n = 0;
	*why = NULL;
	return resp_parse(s, len, &lim, av, used, need, why);
}

static int arg_is(const struct resp_argv *av, size_t i, const char *want)
{
	return i < av->n && av->a[i].len == strlen(want) && memcmp(av->a[i].p, want, av->a[i].len) == 0;
}

static void t_multibulk(void)
{
	struct resp_argv av = { 0 };
	size_t used, need;
	const char *why;
	const char req[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n*1\r\n$4\r\nPING\r\n";
	size_t first = strlen("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n");

	is_int(parse(req, sizeof req - 1, &av, &used, &need, &why), RESP_CMD, "a multibulk SET parses");
	is_int(used, first, "it takes exactly its bytes");
	is_int(av.n, 3, "three arguments");
	ok(arg_is(&av, 0, "SET") && arg_is(&av, 1, "k") && arg_is(&av, 2, "v\r\nxy"),
	   "binary-safe: a value holding CRLF comes whole");
	is_int(parse(req + used, sizeof req - 1 - used, &av, &used, &need, &why), RESP_CMD,
	       "the pipelined PING after it parses");
	ok(av.n == 1 && arg_is(&av, 0, "PING"), "PING");
	is_int(parse("*0\r\n", 4, &av, &used, &need, &why), RESP_CMD, "*0 is a command with no arguments");
	ok(av.n == 0 && used == 4, "which appends none and takes 4 bytes");
	is_int(parse("*-1\r\n", 5, &av, &used, &need, &why), RESP_CMD, "*-1 too (Redis skips it)");
	resp_argv_free(&av);
}

static void t_partial(void)
{
	struct resp_argv av = { 0 };
	size_t used, need, bad = 0;
	const char *why;
	const char req[] = "*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n";
	size_t len = sizeof req - 1;

	for (size_t cut = 0; cut < len; cut++)
		if (parse(req, cut, &av, &used, &need, &why) != RESP_NEED || av.n != 0)
			bad++;
	is_int(bad, 0, "cut at any of its %zu bytes, a request is incomplete and appends nothing", len);
	parse(req, 20, &av, &used, &need, &why);
	is_int(need, len, "inside the bulk, need says how many bytes the command takes");
	is_int(parse(req, len, &av, &used, &need, &why), RESP_CMD, "whole, it parses");
	resp_argv_free(&av);
}

static void t_malformed(void)
{
	struct resp_argv av = { 0 };
	size_t used, need;
	const char *why;
	static const char *const bad[] = {
		"*x\r\n",                      /* not a count */
		"*2\r\n+OK\r\n",               /* not a bulk */
		"*1\r\n$-1\r\n",               /* a null bulk in a request */
		"*1\r\n$3x\r\nabc\r\n",        /* junk in the length */
		"*1\r\n$3\r\nabcd\r\n",        /* the bulk longer than said */
		"*1\r\n$3\rX",                 /* CR without LF */
		"*99999999999999999999\r\n",   /* a count too long */
		"*2000000\r\n",                /* over RESP_MAX_ARGS */
		"*1\r\n$99999999999999999999\r\n",
		NULL,
	};
	for (size_t i = 0; bad[i]; i++) {
		int rc = parse(bad[i], strlen(bad[i]), &av, &used, &need, &why);
		ok(rc == RESP_EPROTO && why && strncmp(why, "ERR Protocol error", 18) == 0 && av.n == 0,
		   "malformed request %zu is a protocol error", i);
	}
	char line[RESP_MAX_INLINE + 8];
	memset(line, 'a', sizeof line);
	is_int(parse(line, sizeof line, &av, &used, &need, &why), RESP_EPROTO,
	       "an inline line over %u bytes without a newline", RESP_MAX_INLINE);
	resp_argv_free(&av);
}

static void t_huge(void)
{
	struct resp_argv av = { 0 };
	size_t used, need;
	const char *why;

	is_int(parse("*1\r\n$1001\r\n", 11, &av, &used, &need, &why), RESP_ETOOBIG,
	       "a bulk over max_bulk is refused from its header, before its bytes");
	ok(why && strstr(why, "max_value_size"), "naming node.max_value_size (%s)", why ? why : "");
	is_int(parse("*1\r\n$1000\r\n", 11, &av, &used, &need, &why), RESP_NEED, "max_bulk itself waits for its bytes");
	/* 5 bulks of 1000: over max_request 4096 on the fifth */
	char req[6000];
	size_t n = (size_t)snprintf(req, sizeof req, "*5\r\n");
	for (int i = 0; i < 4; i++) {
		n += (size_t)snprintf(req + n, sizeof req - n, "$1000\r\n");
		memset(req + n, 'v', 1000);
		n += 1000;
		memcpy(req + n, "\r\n", 2);
		n += 2;
	}
	n += (size_t)snprintf(req + n, sizeof req - n, "$1000\r\n");
	is_int(parse(req, n, &av, &used, &need, &why), RESP_ETOOBIG, "a command over max_request is refused");
	ok(why && strstr(why, "resp.max_input"), "naming resp.max_input");
	resp_argv_free(&av);
}

static void t_inline(void)
{
	struct resp_argv av = { 0 };
	size_t used, need;
	const char *why;

	is_int(parse("  get   key \r\nPING\n", 19, &av, &used, &need, &why), RESP_CMD, "an inline command parses");
	ok(av.n == 2 && arg_is(&av, 0, "get") && arg_is(&av, 1, "key") && used == 14, "split at blanks");
	is_int(parse("PING", 4, &av, &used, &need, &why), RESP_NEED, "without its newline it waits");
	is_int(parse("\r\n", 2, &av, &used, &need, &why), RESP_CMD, "an empty line is a command");
	ok(av.n == 0 && used == 2, "with no arguments");
	resp_argv_free(&av);
}

static const char *text(struct evbuffer *b)
{
	static char s[512];
	size_t n = evbuffer_get_length(b);
	if (n >= sizeof s)
		n = sizeof s - 1;
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	return s;
}

static void t_encode(void)
{
	struct evbuffer *b = evbuffer_new();

	resp_put_simple(b, "OK");
	is_str(text(b), "+OK\r\n", "simple string");
	resp_put_error(b, "ERR a\r\nb");
	is_str(text(b), "-ERR a  b\r\n", "an error is one line, whatever it quotes");
	resp_put_int(b, -42);
	is_str(text(b), ":-42\r\n", "integer");
	resp_put_bulk(b, "a\0b", 3);
	ok(evbuffer_get_length(b) == 9 && memcmp(text(b), "$3\r\na", 5) == 0, "binary bulk");
	resp_put_null(b, 2);
	is_str(text(b), "$-1\r\n", "RESP2 null");
	resp_put_null(b, 3);
	is_str(text(b), "_\r\n", "RESP3 null");
	resp_put_map(b, 2, 2);
	is_str(text(b), "*4\r\n", "RESP2 map: a flat array");
	resp_put_map(b, 2, 3);
	is_str(text(b), "%2\r\n", "RESP3 map");
	evbuffer_free(b);
}

static int g(const char *p, const char *s)
{
	return resp_glob(p, strlen(p), s, strlen(s));
}

static void t_glob(void)
{
	ok(g("*", "") && g("*", "abc") && g("a*", "abc") && !g("a*", "bac"), "*");
	ok(g("h?llo", "hello") && !g("h?llo", "hllo"), "?");
	ok(g("h*llo", "heeeello") && g("h*llo", "hllo") && !g("h*llo", "hellx"), "* in the middle");
	ok(g("h[ae]llo", "hallo") && !g("h[ae]llo", "hillo"), "[ae]");
	ok(g("h[^e]llo", "hallo") && !g("h[^e]llo", "hello"), "[^e]");
	ok(g("h[a-b]llo", "hbllo") && g("h[b-a]llo", "hallo") && !g("h[a-b]llo", "hcllo"), "ranges, either way round");
	ok(g("a\\*b", "a*b") && !g("a\\*b", "axb"), "\\* is a literal *");
	ok(g("*a*b*c*", "xxaxxbxxcxx") && !g("*a*b*c*", "xxaxxcxxbxx"), "several stars backtrack");
	ok(!g("a", "ab") && !g("ab", "a"), "lengths matter");
	is_int(resp_glob_prefix("user:1*", 7), 6, "literal prefix up to the first *");
	is_int(resp_glob_prefix("a\\*", 3), 1, "and up to an escape");
	is_int(resp_glob_prefix("abc", 3), 3, "a pattern without specials is all prefix");
	/* a hostile pattern stays cheap: one backtrack point per star */
	char s[4001];
	memset(s, 'a', 4000);
	s[4000] = '\0';
	ok(!g("*a*a*a*a*a*a*a*a*a*a*b", s), "a pathological pattern finishes (and misses)");
}

static void t_token(void)
{
	struct auth_keyring kr = { .n = 2 };
	char t0[AUTH_RESP_TOKEN_LEN + 1], t1[AUTH_RESP_TOKEN_LEN + 1];

	for (size_t i = 0; i < 2; i++) {
		kr.s[i].len = 32;
		memset(kr.s[i].key, (int)(0x11 * (i + 1)), 32);
	}
	is_int(auth_resp_token(&kr.s[0], t0), 0, "a token of secret 0");
	is_int(auth_resp_token(&kr.s[1], t1), 0, "and of secret 1");
	is_int(strlen(t0), AUTH_RESP_TOKEN_LEN, "64 hex digits");
	ok(strcmp(t0, t1) != 0, "different secrets, different tokens");
	ok(!strstr(t0, "1111111111"), "not the secret's hex");
	is_int(auth_resp_token_check(&kr, t0, strlen(t0)), 0, "the first secret's token passes");
	is_int(auth_resp_token_check(&kr, t1, strlen(t1)), 0, "so does the second's (rotation)");
	t1[5] ^= 1;
	is_int(auth_resp_token_check(&kr, t1, strlen(t1)), KVN_EAUTH, "one bit off: refused");
	is_int(auth_resp_token_check(&kr, t0, 63), KVN_EAUTH, "a prefix: refused");
	is_int(auth_resp_token_check(&kr, "", 0), KVN_EAUTH, "empty: refused");
	auth_keyring_wipe(&kr);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "multibulk", t_multibulk }, { "partial", t_partial }, { "malformed", t_malformed },
		{ "huge", t_huge },           { "inline", t_inline },   { "encode", t_encode },
		{ "glob", t_glob },           { "token", t_token },     { NULL, NULL },
	};
	return tap_run(tests, argc, argv);
}

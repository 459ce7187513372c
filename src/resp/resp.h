/*
 * resp: the RESP gateway (`kvnode --role resp`).  A client of the cluster
 * through the public libkvnode API that speaks the Redis protocol (RESP2,
 * and HELLO 3 minimally) to redis-cli, redis-py, redis-benchmark and
 * LMCache's Redis backend.  This header is what kvnode.c and the tests
 * use; resp_int.h is shared by the files of src/resp/.
 */
#ifndef KVN_RESP_H
#define KVN_RESP_H

#include <stddef.h>
#include <stdint.h>

struct kvn_conf;
struct evbuffer;

/* Run the gateway with the loaded, finalized config until SIGINT/SIGTERM.
 * Returns the process exit status. */
int resp_main(const struct kvn_conf *conf);
/* `kvnode keygen --resp-token FILE`: print the AUTH token of FILE's first
 * secret (a client secret file).  Returns the exit status. */
int resp_token_cmd(const char *path);

/* ---- resp_parse.c: requests ---- */
struct resp_arg {
	const char *p;
	size_t len;
};
/* A growing vector of arguments; the commands of one parse round append
 * to it. */
struct resp_argv {
	struct resp_arg *a;
	size_t n, cap;
};
void resp_argv_free(struct resp_argv *av);

struct resp_limits {
	uint64_t max_bulk;    /* largest argument (node.max_value_size) */
	uint64_t max_request; /* largest command, all of it (resp.max_input) */
};
#define RESP_MAX_ARGS (1u << 20)  /* arguments of one command */
#define RESP_MAX_INLINE (64u << 10) /* an inline command's line */

enum resp_parse_rc {
	RESP_NEED = 0,        /* incomplete: read more */
	RESP_CMD = 1,         /* one command parsed */
	RESP_EPROTO = -1,     /* malformed: answer *why, close */
	RESP_ETOOBIG = -2,    /* an argument over max_bulk, or the command over
			       * max_request: answer *why, close */
};
/* Parse one command at buf[0..len): a multibulk array of bulk strings, or
 * an inline line of words split at blanks.  RESP_CMD: its arguments
 * appended to av (an empty line or "*0" appends none: skip it), *used the
 * bytes it took.  RESP_NEED: nothing appended; *need gets the bytes the
 * command takes at least (0: not known yet).  Errors: *why gets the error
 * text (without "-" or CRLF).  Never reads past buf + len. */
int resp_parse(const char *buf, size_t len, const struct resp_limits *lim, struct resp_argv *av, size_t *used,
	       size_t *need, const char **why);

/* ---- resp_parse.c: replies (RESP2; RESP3 where proto is 3) ---- */
void resp_put_simple(struct evbuffer *out, const char *s);
/* "-" s "\r\n", with any CR or LF in s made a blank (an error line is one line). */
void resp_put_error(struct evbuffer *out, const char *s);
void resp_put_errorf(struct evbuffer *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_put_int(struct evbuffer *out, long long v);
void resp_put_bulk(struct evbuffer *out, const void *p, size_t n);
void resp_put_str(struct evbuffer *out, const char *s); /* a bulk of a C string */
void resp_put_null(struct evbuffer *out, int proto);   /* $-1, or RESP3 _ */
void resp_put_array(struct evbuffer *out, size_t n);
/* A map of n pairs: RESP3 %n, or a flat array of 2n in RESP2. */
void resp_put_map(struct evbuffer *out, size_t n, int proto);

/* ---- resp_glob.c ---- */
/* Redis's glob (SCAN MATCH, KEYS): * ? [abc] [^a-z] and \x, on bytes.
 * 1 when s matches. */
int resp_glob(const char *pat, size_t plen, const char *s, size_t slen);
/* The literal bytes every match starts with (up to the first special
 * character): their count. */
size_t resp_glob_prefix(const char *pat, size_t plen);

#endif

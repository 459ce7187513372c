/*
 * cli_ls: `kvnode --role client ls [--prefix P] [--max N]`, the keys of
 * the master's index one per line (kvn_list's pages, in its order), each
 * written as the CLI writes keys elsewhere (cli_key_format: as is, or
 * hex:...).  --prefix takes a key's spelling back the same way
 * (cli_key_parse), so a printed key can be given as a prefix.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"

#define LS_PAGE 1000

struct ls_args {
	uint8_t prefix[KVN_MAX_KEY];
	size_t plen;
	uint64_t max; /* keys printed at most; 0: all */
};

static int ls_parse(int argc, char **argv, struct ls_args *a)
{
	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--prefix") == 0) {
			if (!v)
				return cli_usage_error("ls", "--prefix wants a value");
			size_t len = strlen(v);
			a->plen = cli_key_parse(v, len, a->prefix, sizeof a->prefix);
			if (len && !a->plen)
				return cli_usage_error("ls", "--prefix: longer than %d bytes", KVN_MAX_KEY);
			i++;
		} else if (strcmp(argv[i], "--max") == 0) {
			char *end;
			if (!v || *v < '0' || *v > '9')
				return cli_usage_error("ls", "--max wants a number of keys");
			errno = 0;
			unsigned long long x = strtoull(v, &end, 10);
			if (errno || *end || x < 1)
				return cli_usage_error("ls", "--max '%s': want a number of keys, 1 or more", v);
			a->max = x;
			i++;
		} else {
			return cli_usage_error("ls", "unexpected argument '%s'", argv[i]);
		}
	}
	return 0;
}

int cli_ls_args(int argc, char **argv)
{
	struct ls_args a;
	return ls_parse(argc, argv, &a) ? 2 : 0;
}

int cli_ls_main(struct kvn_client *c, int argc, char **argv)
{
	struct ls_args a;
	uint64_t cursor = 0, printed = 0;
	char line[5 + 2 * KVN_MAX_KEY + 1];

	if (ls_parse(argc, argv, &a) != 0)
		return 2;
	do {
		struct kvn_listed *page;
		size_t n, want = LS_PAGE;
		if (a.max && a.max - printed < want)
			want = (size_t)(a.max - printed);
		int rc = kvn_list(c, a.plen ? a.prefix : NULL, a.plen, &cursor, want, &page, &n);
		if (rc)
			return cli_fail("ls", rc, c);
		/* a page may exceed want (keys sharing one hash): --max is a cap */
		for (size_t i = 0; i < n && (!a.max || printed < a.max); i++, printed++) {
			cli_key_format(line, sizeof line, page[i].key, page[i].klen);
			puts(line);
		}
		kvn_list_free(page);
	} while (cursor != 0 && (!a.max || printed < a.max));
	return fflush(stdout) == 0 ? 0 : kvn_err_exit_code(KVN_EIO);
}

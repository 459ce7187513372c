/*
 * err: the one table of error codes -> name, text and CLI exit status.
 */
#include "config.h"

#include "base.h"

struct err_row {
	int code;
	const char *name;
	const char *text;
	int exit_code; /* CLI exit status: see docs/operations.md */
};

#define ROW(c, t, x) [-(c)] = { c, #c, t, x }
static const struct err_row err_table[] = {
	ROW(KVN_OK, "success", 0),
	ROW(KVN_EINVAL, "invalid argument", 2),
	ROW(KVN_ENOMEM, "out of memory", 7),
	ROW(KVN_ENOTFOUND, "key not found", 1),
	ROW(KVN_ENOSPC, "no space on node", 5),
	ROW(KVN_EFULL, "no node in the cluster has room", 5),
	ROW(KVN_ETOOBIG, "value too large", 6),
	ROW(KVN_EKEYLEN, "key length out of range (1..1024 bytes)", 6),
	ROW(KVN_ETIMEDOUT, "timed out", 4),
	ROW(KVN_EAUTH, "authentication failed", 3),
	ROW(KVN_EPROTO, "protocol error (malformed or unexpected frame)", 7),
	ROW(KVN_ECONN, "connection failed", 4),
	ROW(KVN_ESTALE, "stale generation", 8),
	ROW(KVN_EBUSY, "busy: queue full", 4),
	ROW(KVN_ECLOSED, "shut down", 4),
	ROW(KVN_EIO, "I/O error", 7),
	ROW(KVN_EDB, "metadata store error", 7),
	ROW(KVN_ECONFIG, "configuration error", 2),
	ROW(KVN_EPEERDOWN, "peer unavailable", 4),
	ROW(KVN_EVERSION, "protocol version mismatch", 7),
	ROW(KVN_ENOPEER, "no peer attached", 5),
	ROW(KVN_EPERM, "permission denied", 3),
	ROW(KVN_ESTATE, "refused in current state", 7),
	ROW(KVN_ERANGE, "buffer too small", 6),
	ROW(KVN_EEXIST, "already exists", 7),
	ROW(KVN_ECORRUPT, "checksum mismatch (data corrupted)", 7),
	ROW(KVN_EHELD, "value is pinned or leased", 7),
	ROW(KVN_EROFS, "disk tier is read-only after an I/O error", 5),
};
#undef ROW

static const struct err_row *err_row(int err)
{
	if (err > 0 || err < KVN_ERR_MIN)
		return NULL;
	return &err_table[-err];
}

const char *kvn_strerror(int err)
{
	const struct err_row *r = err_row(err);
	return r ? r->text : "unknown error";
}

const char *kvn_err_name(int err)
{
	const struct err_row *r = err_row(err);
	return r ? r->name : "KVN_E?";
}

int kvn_err_exit_code(int err)
{
	const struct err_row *r = err_row(err);
	return r ? r->exit_code : 7;
}

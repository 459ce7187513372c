"""Exceptions: one class per KVN_E* code of include/kvnode.h, all under
kvnode.Error, each carrying the code and the library's detail."""

# code -> (class name, C name); the codes are the wire's and never change
_CODES = {
    -1: ("InvalidArgument", "KVN_EINVAL"),
    -2: ("NoMemory", "KVN_ENOMEM"),
    -3: ("NotFound", "KVN_ENOTFOUND"),
    -4: ("NoSpace", "KVN_ENOSPC"),
    -5: ("Full", "KVN_EFULL"),
    -6: ("TooBig", "KVN_ETOOBIG"),
    -7: ("KeyLength", "KVN_EKEYLEN"),
    -8: ("Timeout", "KVN_ETIMEDOUT"),
    -9: ("AuthError", "KVN_EAUTH"),
    -10: ("ProtocolError", "KVN_EPROTO"),
    -11: ("ConnectionFailed", "KVN_ECONN"),
    -12: ("Stale", "KVN_ESTALE"),
    -13: ("Busy", "KVN_EBUSY"),
    -14: ("Closed", "KVN_ECLOSED"),
    -15: ("LocalIOError", "KVN_EIO"),
    -16: ("DatabaseError", "KVN_EDB"),
    -17: ("ConfigError", "KVN_ECONFIG"),
    -18: ("PeerDown", "KVN_EPEERDOWN"),
    -19: ("VersionMismatch", "KVN_EVERSION"),
    -20: ("NoPeer", "KVN_ENOPEER"),
    -21: ("PermissionDenied", "KVN_EPERM"),
    -22: ("StateError", "KVN_ESTATE"),
    -23: ("BufferTooSmall", "KVN_ERANGE"),
    -24: ("Exists", "KVN_EEXIST"),
    -25: ("Corrupt", "KVN_ECORRUPT"),
    -26: ("Held", "KVN_EHELD"),
    -27: ("ReadOnly", "KVN_EROFS"),
}


class Error(Exception):
    """Base of every kvnode error.

    .code    the KVN_E* code (a negative int, as in include/kvnode.h)
    .name    its C name, e.g. "KVN_ENOTFOUND"
    .message the library's text for the code (kvn_strerror)
    .detail  what the library said about this failure (kvn_last_detail),
             or "" when it said nothing
    Batch calls also set .results (see Client.get_batch)."""

    code = None
    name = None

    def __init__(self, code=None, message=None, detail="", results=None):
        # raise kvnode.NotFound() works too: the class's own code
        self.code = type(self).code if code is None else code
        self.message = message if message is not None else (self.name or "kvnode error")
        self.detail = detail or ""
        self.results = results
        super().__init__(self.code, self.message, self.detail)

    def __str__(self):
        s = "%s (%s)" % (self.message, self.name or self.code)
        return "%s: %s" % (s, self.detail) if self.detail else s


class WrongThread(Error):  # not a code of its own: see below
    """A Client was used from a thread other than the one that created it
    (a kvn_client is one thread's: include/kvnode.h).  Code KVN_ESTATE;
    nothing reached the library."""


_BY_CODE = {}
for _code, (_cls, _cname) in _CODES.items():
    _k = type(_cls, (Error,), {"code": _code, "name": _cname,
                               "__doc__": "%s (%d) from libkvnode." % (_cname, _code)})
    _BY_CODE[_code] = _k
    globals()[_cls] = _k
WrongThread.code = -22
WrongThread.name = "KVN_ESTATE"

__all__ = ["Error", "WrongThread"] + [v[0] for v in _CODES.values()]


def error_class(code):
    """The Error subclass for a KVN_E* code (Error itself for an unknown one)."""
    return _BY_CODE.get(code, Error)


def make_error(code, message, detail="", results=None):
    return error_class(code)(code, message, detail, results)

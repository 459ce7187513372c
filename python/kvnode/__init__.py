"""kvnode: the Python client of a kvnode cluster, over libkvnode.so.

    import kvnode
    with kvnode.Client(config="etc/kvnode.conf") as c:
        c.put("greeting", b"hello")
        c.get("greeting")                 # b'hello'
        buf = numpy.empty(1 << 20, numpy.uint8)
        n = c.get("chunk", out=buf)       # straight into buf, no extra copy

Pure Python (cffi in ABI mode): nothing to compile.  The library is
$KVNODE_LIBRARY, else the build tree's .libs/libkvnode.so beside python/,
else an installed libkvnode.so.0 (kvnode.library_path says which).

A Client is one thread's; errors are subclasses of kvnode.Error named
after the codes of include/kvnode.h (NotFound, Full, Timeout, AuthError,
...), each with .code and .detail.  python/README.md has the whole tour."""
from ._ffi import find_library, library_path
from .client import Client, Listed, Ping
from ._submit import Submission
from .errors import *  # noqa: F401,F403  (one class per code)
from .errors import Error, WrongThread, error_class
from . import errors as _errors

MAX_KEY = 1024
LIST_MAX = 10000

__version__ = "0.1.0"
__all__ = ["Client", "Listed", "Ping", "Submission", "Error", "WrongThread", "error_class",
           "find_library", "library_path", "MAX_KEY", "LIST_MAX"] + \
    [n for n in _errors.__all__ if n not in ("Error", "WrongThread")]

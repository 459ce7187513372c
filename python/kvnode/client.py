"""kvnode.Client: one kvn_client of libkvnode, for one thread.

Owns the C handle (kvn_connect .. kvn_close), the thread rule, the
conversion of keys and buffers, and the mapping of return codes onto
exceptions.  Submissions and asyncio live in _submit.py (a mixin)."""
import collections
import threading

from . import _buf
from ._ffi import ffi, lib, libc
from ._submit import SubmitMixin
from .errors import Closed, WrongThread, make_error

KVN_PUT_DURABLE = 1
KVN_ESTATE = -22
KVN_ECLOSED = -14
KVN_ERANGE = -23

Ping = collections.namedtuple("Ping", "rtt_us peers")
Listed = collections.namedtuple("Listed", "key size gen")
Listed.__doc__ = "One key of a listing: key (bytes), the value's size in bytes, its generation."


def _ms(seconds, what):
    """Seconds (None: 0) as whole milliseconds; negative is ValueError."""
    if seconds is None:
        return 0
    ms = int(round(float(seconds) * 1000))
    if ms < 0:
        raise ValueError("kvnode: %s must not be negative" % what)
    return ms


class Client(SubmitMixin):
    """A connection to a kvnode cluster (libkvnode's kvn_client).

    Client(config=None, master=None, secret_file=None, timeout=None,
           node_id=None)

    config       a kvnode.conf; None: etc/kvnode.conf when it exists
    master       "host:port" of the master (else the config's client.master)
    secret_file  the client secret (else the config's auth.client_secret_file)
    timeout      every call's deadline in seconds (else client.timeout, 5 s)

    Raises AuthError, ConnectionFailed, Timeout, ConfigError, ...

    Threads: a kvn_client is one thread's.  The client belongs to the
    thread that made it; a call from any other thread raises WrongThread
    before anything reaches the library.  Use one Client per thread (they
    are cheap), e.g. in a threading.local.  For asyncio, make the client
    on the event loop's thread.

    Use it as a context manager (or call close()): closing waits for
    submissions still running, each bounded by its deadline."""

    def __init__(self, config=None, master=None, secret_file=None, timeout=None, node_id=None):
        self._c = ffi.NULL
        self._owner = threading.get_ident()
        opt = ffi.new("struct kvn_options *")
        keep = []
        for field, val in (("config_path", config), ("master", master),
                           ("secret_file", secret_file), ("node_id", node_id)):
            if val is not None:
                s = ffi.new("char[]", str(val).encode())
                keep.append(s)
                setattr(opt, field, s)
        opt.timeout_ms = _ms(timeout, "timeout")
        if timeout is not None and opt.timeout_ms == 0:
            raise ValueError("kvnode: timeout must be at least 1 ms")
        out = ffi.new("struct kvn_client **")
        rc = lib.kvn_connect(opt, out)
        if rc != 0:
            raise make_error(rc, ffi.string(lib.kvn_strerror(rc)).decode(),
                             ffi.string(lib.kvn_last_detail(ffi.NULL)).decode(errors="replace"))
        self._c = out[0]
        SubmitMixin.__init__(self)

    # ---- life and rules ----
    def _check(self):
        if threading.get_ident() != self._owner:
            raise WrongThread(KVN_ESTATE, "client used from another thread",
                              "a kvnode.Client belongs to the thread that created it; "
                              "make one per thread")
        if self._c == ffi.NULL:
            raise Closed(KVN_ECLOSED, "client is closed")

    def _raise(self, rc, results=None, detail=None):
        if detail is None:
            detail = ffi.string(lib.kvn_last_detail(self._c)).decode(errors="replace")
        raise make_error(rc, ffi.string(lib.kvn_strerror(rc)).decode(), detail, results)

    def _err(self, rc):
        return make_error(rc, ffi.string(lib.kvn_strerror(rc)).decode())

    @property
    def closed(self):
        return self._c == ffi.NULL

    def close(self):
        """Close the client (kvn_close): waits for running submissions
        (each until its deadline at most), then frees everything.  Their
        awaiting coroutines get Closed.  A second close does nothing."""
        if self._c == ffi.NULL:
            return
        self._check()
        self._detach_loop()
        c, self._c = self._c, ffi.NULL
        lib.kvn_close(c)
        self._fail_pending()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        # unreachable, so no other thread can be using it: close here
        # whatever the thread (the owner may be gone)
        c = getattr(self, "_c", ffi.NULL)
        if c != ffi.NULL:
            self._c = ffi.NULL
            lib.kvn_close(c)

    # ---- single calls ----
    def ping(self):
        """Round trip to the master: Ping(rtt_us, peers attached)."""
        self._check()
        rtt = ffi.new("uint64_t *")
        peers = ffi.new("uint32_t *")
        rc = lib.kvn_ping(self._c, rtt, peers)
        if rc:
            self._raise(rc)
        return Ping(rtt[0], peers[0])

    def put(self, key, value, durable=False, ttl=None):
        """Store value (any C-contiguous buffer: bytes, bytearray,
        memoryview, numpy array, CPU torch tensor; read in place) under key
        (str or bytes).  durable: acknowledged after the master's commit.
        ttl: seconds until it expires (None: never).  Returns the
        generation stored."""
        self._check()
        kb = _buf.key(key)
        p, n, keep = _buf.readable(value)
        o = ffi.new("struct kvn_put_opts *")
        o.flags = KVN_PUT_DURABLE if durable else 0
        o.ttl_ms = _ms(ttl, "ttl")
        rc = lib.kvn_put_opts(self._c, kb, len(kb), p, n, o)
        del keep
        if rc:
            self._raise(rc)
        return int(o.gen)

    def get(self, key, out=None):
        """The value of key.  Without out: a new bytes object.  With out
        (a writable C-contiguous buffer: bytearray, memoryview, numpy
        array, CPU torch tensor): the bytes land straight in it, with no
        copy through a buffer of the package's, and the value's length is
        returned.  BufferTooSmall when out is smaller than the value (then
        nothing is written); NotFound when there is no such key."""
        self._check()
        kb = _buf.key(key)
        vlen = ffi.new("size_t *")
        if out is None:
            pp = ffi.new("void **")
            rc = lib.kvn_get_alloc(self._c, kb, len(kb), pp, vlen)
            if rc:
                self._raise(rc)
            try:
                return ffi.unpack(ffi.cast("char *", pp[0]), vlen[0])
            finally:
                libc.free(pp[0])
        p, cap, keep = _buf.writable(out)
        rc = lib.kvn_get(self._c, kb, len(kb), p, cap, vlen)
        del keep
        if rc == KVN_ERANGE:
            self._raise(rc, detail="the value is %d bytes, the buffer %d" % (vlen[0], cap))
        if rc:
            self._raise(rc)
        return int(vlen[0])

    def exists(self, key):
        """True if key exists."""
        self._check()
        kb = _buf.key(key)
        rc = lib.kvn_exists(self._c, kb, len(kb))
        if rc < 0:
            self._raise(rc)
        return rc == 1

    def remove(self, key):
        """Remove key (NotFound when there is none)."""
        self._check()
        kb = _buf.key(key)
        rc = lib.kvn_remove(self._c, kb, len(kb))
        if rc:
            self._raise(rc)

    def exists_prefix(self, keys):
        """How many leading keys of the list exist (a KV-cache prefix
        lookup): an int in [0, len(keys)]."""
        self._check()
        items, keep = self._items(keys)
        count = ffi.new("size_t *")
        rc = lib.kvn_exists_prefix(self._c, items, len(keys), count)
        if rc:
            self._raise(rc)
        return int(count[0])

    # ---- batches ----
    def _items(self, keys, bufs=None, out=False):
        """A struct kvn_item array for keys (and bufs), with what must stay
        alive while the library uses it."""
        keys = list(keys)
        n = len(keys)
        if bufs is not None:
            bufs = list(bufs)
            if len(bufs) != n:
                raise ValueError("kvnode: %d keys but %d buffers" % (n, len(bufs)))
        items = ffi.new("struct kvn_item[]", max(n, 1))
        keep = [items]
        for i, k in enumerate(keys):
            kp = ffi.from_buffer(_buf.key(k))
            keep.append(kp)
            items[i].key = kp
            items[i].klen = len(kp)
            if bufs is not None and bufs[i] is not None:
                p, nb, ka = (_buf.writable if out else _buf.readable)(bufs[i])
                keep.append(ka)
                items[i].val = p
                if out:
                    items[i].cap = nb
                else:
                    items[i].vlen = nb
        return items, keep

    def _results(self, op, items, n, outs):
        """Per-item results of a batch: a value (bytes; for a get into a
        buffer, its length; for exists a bool; else None) or an Error."""
        res = []
        for i in range(n):
            it = items[i]
            if op == "get" and (outs is None or outs[i] is None) and it.val != ffi.NULL:
                v = ffi.unpack(ffi.cast("char *", it.val), it.vlen)
                libc.free(it.val)
                it.val = ffi.NULL
            else:
                v = None
            st = it.status
            if st:
                res.append(self._err(st))
            elif op == "get":
                res.append(v if v is not None else int(it.vlen))
            elif op == "exists":
                res.append(bool(it.exists))
            else:
                res.append(None)
        return res

    def _batch_done(self, rc, op, items, n, outs=None):
        res = self._results(op, items, n, outs)
        if rc:
            self._raise(rc, results=res)
        return res

    def put_batch(self, keys, values, durable=False, ttl=None):
        """Store values[i] under keys[i] in one batch (one message per
        destination node).  On any failure raises the first item's error,
        whose .results lists per item None (stored) or its Error."""
        self._check()
        keys = list(keys)
        items, keep = self._items(keys, values)
        o = ffi.new("struct kvn_put_opts *")
        o.flags = KVN_PUT_DURABLE if durable else 0
        o.ttl_ms = _ms(ttl, "ttl")
        rc = lib.kvn_batch_put_opts(self._c, items, len(keys), o)
        self._batch_done(rc, "put", items, len(keys))

    def get_batch(self, keys, outs=None):
        """Get many keys in one batch.  outs: None (every value comes back
        as bytes) or a list of writable buffers, one per key (an entry None:
        that one as bytes).  Returns per key the bytes, or the length
        written into its buffer.  On any failure raises the first item's
        error, whose .results lists per key that result or its Error."""
        self._check()
        keys = list(keys)
        items, keep = self._items(keys, outs, out=True)
        rc = lib.kvn_batch_get(self._c, items, len(keys))
        return self._batch_done(rc, "get", items, len(keys), outs)

    def exists_batch(self, keys):
        """Per key True/False, in one batch (errors as get_batch's)."""
        self._check()
        keys = list(keys)
        items, keep = self._items(keys)
        rc = lib.kvn_batch_exists(self._c, items, len(keys))
        return self._batch_done(rc, "exists", items, len(keys))

    def remove_batch(self, keys):
        """Remove many keys in one batch (errors as put_batch's)."""
        self._check()
        keys = list(keys)
        items, keep = self._items(keys)
        rc = lib.kvn_batch_remove(self._c, items, len(keys))
        self._batch_done(rc, "remove", items, len(keys))

    def _keylist(self, keys):
        return [keys] if isinstance(keys, (str, bytes, bytearray, memoryview)) else list(keys)

    def pin(self, keys, ttl):
        """Keep the current value of each key (one key or a list) in its
        node's memory: neither evicted nor offloaded until unpin() or until
        ttl seconds pass (the node cuts ttl to its peer.pin_ttl_max)."""
        self._check()
        keys = self._keylist(keys)
        ms = _ms(ttl, "ttl")
        if ms <= 0:
            raise ValueError("kvnode: a pin's ttl must be at least 1 ms")
        items, keep = self._items(keys)
        rc = lib.kvn_batch_pin(self._c, items, len(keys), ms)
        self._batch_done(rc, "pin", items, len(keys))

    def unpin(self, keys):
        """End the pins of each key's current value (one key or a list)."""
        self._check()
        keys = self._keylist(keys)
        items, keep = self._items(keys)
        rc = lib.kvn_batch_unpin(self._c, items, len(keys))
        self._batch_done(rc, "unpin", items, len(keys))

    def evict(self, keys):
        """Drop each key's value (one key or a list) from its node's memory
        now, to its disk tier if it has one, else it is gone; Held when it
        is pinned or leased (nothing changes then)."""
        self._check()
        keys = self._keylist(keys)
        items, keep = self._items(keys)
        rc = lib.kvn_batch_evict(self._c, items, len(keys))
        self._batch_done(rc, "evict", items, len(keys))

    # ---- listing and counters ----
    def list_page(self, prefix=b"", cursor=0, max=1000):
        """One page of kvn_list: ([Listed(key, size, gen), ...], next
        cursor).  Start with cursor 0; the listing is complete when the
        next cursor is 0.  A page may be empty before that."""
        self._check()
        pb = _buf.key(prefix)
        cur = ffi.new("uint64_t *", cursor)
        out = ffi.new("struct kvn_listed **")
        n = ffi.new("size_t *")
        rc = lib.kvn_list(self._c, pb if pb else ffi.NULL, len(pb), cur, max, out, n)
        if rc:
            self._raise(rc)
        try:
            page = [Listed(ffi.unpack(ffi.cast("char *", out[0][i].key), out[0][i].klen),
                           int(out[0][i].size), int(out[0][i].gen)) for i in range(n[0])]
        finally:
            lib.kvn_list_free(out[0])
        return page, int(cur[0])

    def list(self, prefix=b"", page=1000):
        """Every key (bytes) that starts with prefix, in the master's
        index order (not sorted), fetched page by page: an iterator.  A key
        present for the whole listing comes exactly once; one put or
        removed meanwhile may come or not."""
        cursor = 0
        while True:
            entries, cursor = self.list_page(prefix, cursor, page)
            for e in entries:
                yield e.key
            if cursor == 0:
                return

    def counter(self, name):
        """This client's counter name (kvn_counter), e.g. "bounce_bytes":
        value bytes a get copied through the library's own buffers on their
        way into the caller's.  NotFound for an unknown name."""
        self._check()
        v = ffi.new("uint64_t *")
        rc = lib.kvn_counter(self._c, str(name).encode(), v)
        if rc:
            self._raise(rc, detail="no counter named %r" % name if rc == -3 else None)
        return int(v[0])

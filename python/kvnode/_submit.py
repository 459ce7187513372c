"""Submissions (kvn_submit_*, kvn_fd, kvn_reap) and asyncio on top of them.

A submitted batch runs on the client's progress thread inside libkvnode;
its completion makes the client's fd readable.  For asyncio the fd is
registered once with loop.add_reader, whose callback reaps and resolves the
waiting futures: no thread per call, no thread of the package's at all.
Everything here runs on the client's own thread (the loop's)."""
import asyncio

from ._ffi import ffi, lib
from .errors import InvalidArgument

REAP_BATCH = 64


class Submission:
    """One batch started with submit_get / submit_put / submit_exists.

    .id      the library's id (they only grow, from 1)
    .op      "get", "put" or "exists"
    .done    True once reaped (or once the client closed)
    .status  0, or the first item's KVN_E* code (after done)
    .results per item, as the batch calls' (after done)
    result() the results, or raises the first item's Error (with .results)
    Until done the library reads and writes the keys and buffers given:
    leave them alone meanwhile (the Submission keeps them alive)."""

    __slots__ = ("id", "op", "keys", "done", "status", "results", "_items", "_n",
                 "_outs", "_keep", "_callbacks", "_client")

    def __init__(self, client, op, items, n, outs, keep):
        self.id = 0
        self.op = op
        self.done = False
        self.status = None
        self.results = None
        self._client = client
        self._items = items
        self._n = n
        self._outs = outs
        self._keep = keep
        self._callbacks = []

    def _finish(self, status):
        self.results = self._client._results(self.op, self._items, self._n, self._outs)
        self.status = status
        self.done = True
        self._items = self._keep = self._outs = None
        cbs, self._callbacks = self._callbacks, []
        for cb in cbs:
            cb(self)

    def add_done_callback(self, fn):
        """fn(submission) once done (at once if done already), from inside
        reap() on the client's thread."""
        if self.done:
            fn(self)
        else:
            self._callbacks.append(fn)

    def result(self):
        if not self.done:
            raise InvalidArgument(-1, "submission not done yet", "reap it first")
        if self.status:
            err = self._client._err(self.status)
            err.detail = "submission %d" % self.id
            err.results = self.results
            raise err
        return self.results

    def __repr__(self):
        return "<kvnode.Submission %d %s %s>" % (self.id, self.op,
                                                 "status %s" % self.status if self.done else "pending")


class SubmitMixin:
    def __init__(self):
        self._pending = {}
        self._loop = None
        self._fd = None

    # ---- submissions ----
    def fileno(self):
        """The client's completion fd (kvn_fd): readable while finished
        submissions wait for reap().  For select/poll or an event loop's
        add_reader; the client owns it (do not read or close it)."""
        self._check()
        if self._fd is None:
            fd = lib.kvn_fd(self._c)
            if fd < 0:
                self._raise(fd)
            self._fd = fd
        return self._fd

    def _submit(self, op, keys, bufs, flags=0):
        self._check()
        keys = list(keys)
        items, keep = self._items(keys, bufs, out=(op == "get"))
        sub = Submission(self, op, items, len(keys), None if bufs is None or op != "get" else list(bufs), keep)
        sid = ffi.new("uint64_t *")
        if op == "get":
            rc = lib.kvn_submit_get(self._c, items, len(keys), sid)
        elif op == "put":
            rc = lib.kvn_submit_put(self._c, items, len(keys), flags, sid)
        else:
            rc = lib.kvn_submit_exists(self._c, items, len(keys), sid)
        if rc:
            self._raise(rc)
        sub.id = int(sid[0])
        self._pending[sub.id] = sub
        return sub

    def submit_get(self, keys, outs=None):
        """Start a batch get in the background (kvn_submit_get): returns a
        Submission; results as get_batch's once reaped."""
        return self._submit("get", keys, outs)

    def submit_put(self, keys, values, durable=False):
        """Start a batch put in the background (kvn_submit_put)."""
        return self._submit("put", keys, values, 1 if durable else 0)

    def submit_exists(self, keys):
        """Start a batch exists in the background (kvn_submit_exists)."""
        return self._submit("exists", keys, None)

    @property
    def submit_pending(self):
        """Submissions outstanding: queued, running, or done and not reaped."""
        self._check()
        return int(lib.kvn_submit_pending(self._c))

    def reap(self):
        """Take every finished submission (it never waits), run their done
        callbacks, and return them, oldest first."""
        self._check()
        out = ffi.new("struct kvn_completion[]", REAP_BATCH)
        done = []
        while True:
            n = lib.kvn_reap(self._c, out, REAP_BATCH)
            if n < 0:
                self._raise(n)
            for i in range(n):
                sub = self._pending.pop(int(out[i].id), None)
                if sub is not None:
                    sub._finish(int(out[i].status))
                    done.append(sub)
            if n < REAP_BATCH:
                return done

    def _fail_pending(self):
        """After kvn_close: every submission completed (each bounded by its
        deadline) and its items hold their results; unreaped ones are
        finished from those."""
        pend, self._pending = self._pending, {}
        for sub in pend.values():
            st = next((sub._items[i].status for i in range(sub._n) if sub._items[i].status), 0)
            sub._finish(st)

    # ---- asyncio ----
    def _attach(self):
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None and not self._loop.is_closed():
            raise InvalidArgument(-1, "client attached to another event loop",
                                  "one event loop per client")
        loop.add_reader(self.fileno(), self._on_readable)
        self._loop = loop

    def _detach_loop(self):
        if self._loop is not None and self._fd is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._loop = None

    def _on_readable(self):
        if self._c != ffi.NULL:
            self.reap()

    async def _await(self, sub):
        fut = asyncio.get_running_loop().create_future()

        def done(s):
            if not fut.done():
                fut.set_result(s)
        sub.add_done_callback(done)
        # cancelling the awaiting task leaves the submission running: its
        # buffers stay referenced by it until the library has let go
        return (await fut).result()

    async def aget_batch(self, keys, outs=None):
        """get_batch as a coroutine, completed through fileno() on the
        running loop."""
        self._attach()
        return await self._await(self.submit_get(keys, outs))

    async def aput_batch(self, keys, values, durable=False):
        self._attach()
        await self._await(self.submit_put(keys, values, durable))

    async def aexists_batch(self, keys):
        self._attach()
        return await self._await(self.submit_exists(keys))

    async def aget(self, key, out=None):
        """get as a coroutine (bytes, or the length written into out)."""
        try:
            return (await self.aget_batch([key], None if out is None else [out]))[0]
        except Exception as e:
            raise self._single(e)

    async def aput(self, key, value, durable=False):
        try:
            await self.aput_batch([key], [value], durable)
        except Exception as e:
            raise self._single(e)

    async def aexists(self, key):
        try:
            return (await self.aexists_batch([key]))[0]
        except Exception as e:
            raise self._single(e)

    async def aexists_prefix(self, keys):
        """exists_prefix as a coroutine: how many leading keys exist.  (One
        batch exists of all keys; an error among the leading existing ones
        raises.)"""
        keys = list(keys)
        if not keys:
            return 0
        self._attach()
        sub = self.submit_exists(keys)
        await self._await_done(sub)
        count = 0
        for r in sub.results:
            if isinstance(r, Exception):
                raise r
            if not r:
                break
            count += 1
        return count

    async def _await_done(self, sub):
        fut = asyncio.get_running_loop().create_future()
        sub.add_done_callback(lambda s: fut.done() or fut.set_result(s))
        await fut

    @staticmethod
    def _single(e):
        # a one-item batch: the item's own error, detail kept
        if getattr(e, "results", None) and isinstance(e.results[0], Exception):
            r = e.results[0]
            r.detail = r.detail or e.detail
            return r
        return e

"""An LMCache-style remote connector over kvnode.

KvnodeConnector has the shape of LMCache's RemoteConnector: coroutines
exists(key), get(key), put(key, chunk), list(), close(), and the batched
forms batched_async_contains (the prefix hit count), batched_get and
batched_put.  KV chunks are CPU torch tensors of one shape and dtype,
stored under "MODEL/LAYOUT/CHUNKHASH" (the hash as 16 hex digits, as
examples/lmcache_connector.c names them).

Every get, put and contains is a kvnode submission: it runs on the
library's progress thread and completes through the client's fd, which is
registered once with the running loop (loop.add_reader): no thread per
call, and the coroutine's chunk is written straight into the tensor it
returns.  A node that dies mid-batch makes the batch raise (ConnectionFailed,
PeerDown or Timeout) within the client's deadline.

The connector, like its Client, belongs to the event loop's thread."""
import collections

from .client import Client
from .errors import Error, NotFound

try:
    import torch
except ImportError:  # the module imports; the connector needs torch when made
    torch = None


class ChunkKey(collections.namedtuple("ChunkKey", "model layout chunk_hash")):
    """A chunk's identity: model name, KV layout (e.g. "vllm-bf16-tp1"),
    and the chunk's hash (an int, or a str used as is)."""

    def to_string(self):
        h = self.chunk_hash
        return "%s/%s/%s" % (self.model, self.layout, ("%016x" % h) if isinstance(h, int) else h)


class KvnodeConnector:
    """KvnodeConnector(model, layout, chunk_shape, dtype, config=None,
    master=None, secret_file=None, timeout=None, pin_ttl=60.0)

    model, layout   the key prefix "model/layout/" of every chunk
    chunk_shape     shape of a full chunk (a tuple); dtype its torch dtype
    config, ...     as kvnode.Client's (or client=an open Client to use)

    A key argument is a chunk hash (int), a ChunkKey, or anything with
    to_string() (LMCache's CacheEngineKey): then that string is the key."""

    def __init__(self, model, layout, chunk_shape, dtype, config=None, master=None, secret_file=None,
                 timeout=None, pin_ttl=60.0, client=None):
        if torch is None:
            raise ImportError("kvnode.lmcache needs torch (Debian: python3-torch)")
        self.model = str(model)
        self.layout = str(layout)
        self.prefix = "%s/%s/" % (self.model, self.layout)
        self.chunk_shape = tuple(chunk_shape)
        self.dtype = dtype
        self.pin_ttl = pin_ttl
        self._own = client is None
        self.client = client if client is not None else Client(config=config, master=master,
                                                               secret_file=secret_file, timeout=timeout)
        self._pins = {}

    # ---- keys and chunks ----
    def key_of(self, key):
        """The kvnode key (str) of a chunk key."""
        if isinstance(key, int):
            return "%s%016x" % (self.prefix, key)
        if hasattr(key, "to_string"):
            return key.to_string()
        return str(key)

    def _empty(self):
        return torch.empty(self.chunk_shape, dtype=self.dtype)

    def _chunk(self, t, n):
        """The tensor a get returns: t whole, or its first n bytes as a 1-D
        tensor for a chunk shorter than chunk_shape (a last, partial one)."""
        full = t.numel() * t.element_size()
        if n == full:
            return t
        es = t.element_size()
        if n % es:
            raise Error(-10, "chunk size is not a whole number of elements",
                        "%d bytes, element size %d" % (n, es))
        return t.view(-1)[: n // es]

    @staticmethod
    def _check_chunk(chunk):
        if not (hasattr(chunk, "is_contiguous") and chunk.device.type == "cpu" and chunk.is_contiguous()):
            raise TypeError("kvnode.lmcache: a chunk is a contiguous CPU torch tensor")

    # ---- RemoteConnector ----
    async def exists(self, key):
        """True if the chunk is stored."""
        return await self.client.aexists(self.key_of(key))

    def exists_sync(self, key):
        return self.client.exists(self.key_of(key))

    async def get(self, key):
        """The chunk as a new tensor of chunk_shape and dtype, or None when
        it is not stored (other errors raise)."""
        t = self._empty()
        try:
            n = await self.client.aget(self.key_of(key), out=t)
        except NotFound:
            return None
        return self._chunk(t, n)

    async def put(self, key, chunk):
        """Store chunk (a contiguous CPU tensor, read in place: leave it
        unchanged until this returns)."""
        self._check_chunk(chunk)
        await self.client.aput(self.key_of(key), chunk)

    async def list(self):
        """The keys (str) of this model and layout.  (Pages come through
        synchronous kvn_list calls, a round trip each.)"""
        return [k.decode("utf-8", "surrogateescape") for k in self.client.list(self.prefix)]

    async def close(self):
        """Wait for running submissions (each within its deadline) and
        close the client (only one the connector opened itself)."""
        if self._own:
            self.client.close()

    def support_batched_async_contains(self):
        return True

    def support_batched_get(self):
        return True

    def support_batched_put(self):
        return True

    async def batched_async_contains(self, lookup_id, keys, pin=False):
        """How many leading chunks of keys are stored (prefix hit count).
        pin: also pin that prefix in the nodes' memory for pin_ttl seconds,
        until unpin(lookup_id)."""
        names = [self.key_of(k) for k in keys]
        count = await self.client.aexists_prefix(names)
        if pin and count:
            self.client.pin(names[:count], self.pin_ttl)
            self._pins[lookup_id] = names[:count]
        return count

    def unpin(self, lookup_id):
        """End the pins batched_async_contains(lookup_id, ..., pin=True) took."""
        names = self._pins.pop(lookup_id, None)
        if names:
            self.client.unpin(names)

    async def batched_get(self, keys):
        """The chunks of keys, one batch: per key a tensor, or None when it
        is not stored; any other error raises (with .results per key)."""
        keys = list(keys)
        outs = [self._empty() for _ in keys]
        try:
            res = await self.client.aget_batch([self.key_of(k) for k in keys], outs)
        except Error as e:
            if e.results is None or any(isinstance(r, Error) and not isinstance(r, NotFound)
                                        for r in e.results):
                raise
            res = e.results
        return [None if isinstance(r, NotFound) else self._chunk(t, r) for t, r in zip(outs, res)]

    async def batched_put(self, keys, chunks):
        """Store chunks[i] under keys[i], one batch."""
        chunks = list(chunks)
        for c in chunks:
            self._check_chunk(c)
        await self.client.aput_batch([self.key_of(k) for k in keys], chunks)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
        return False

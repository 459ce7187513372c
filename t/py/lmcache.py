"""t/py/lmcache.py: kvnode.lmcache.KvnodeConnector (LMCache's
RemoteConnector shape) against a real node, with CPU torch tensors: 64
chunks of 2 MiB round-trip byte for byte, the prefix hit count after a
partial store, list(), a missing chunk, and a node killed mid-batch making
the batch raise within the client's deadline."""
import asyncio
import os
import sys
import time

import kvtest
from kvtest import is_, ok, skip

try:
    import cffi  # noqa: F401
except ImportError:
    kvtest.skip_all("python3-cffi is not installed (Debian: python3-cffi)")
try:
    import torch
except ImportError:
    kvtest.skip_all("python3-torch is not installed (Debian: python3-torch)")
import kvnode  # noqa: E402
from kvnode.lmcache import ChunkKey, KvnodeConnector  # noqa: E402

NCHUNK = 64
SHAPE = (2, 16, 8, 256, 16)  # 2 MiB of bfloat16: (k/v, tokens/16, heads, ..., ...)
DTYPE = torch.bfloat16
TIMEOUT = 3.0  # the client's deadline, seconds

_node = None


def node():
    global _node
    if _node is None:
        _node = kvtest.Node("lmc", dram="512MiB", extra=["[node]", "max_value_size = 4MiB"])
        if not ok(_node.start(), "all-in-one node up"):
            sys.exit(1)
    return _node


def chunks(seed, n=NCHUNK):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(SHAPE, generator=g).to(DTYPE) for _ in range(n)]


def hashes(seed, n=NCHUNK):
    h, out = seed, []
    for _ in range(n):  # a chained hash, as a token prefix's chunks have
        h = (h * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out.append(h)
    return out


def conn(layout):
    return KvnodeConnector("llama-test", layout, SHAPE, DTYPE, config=node().conf, timeout=TIMEOUT)


def case_roundtrip():
    async def main():
        async with conn("roundtrip") as lc:
            data, hs = chunks(1), hashes(1)
            is_(data[0].numel() * data[0].element_size(), 2 << 20, "a chunk is 2 MiB")
            await lc.batched_put(hs[:32], data[:32])
            for h, t in zip(hs[32:], data[32:]):
                await lc.put(h, t)
            is_(await lc.batched_async_contains("stored", hs), 64, "64 chunks stored: 32 in one batched_put, 32 by put")
            got = await lc.batched_get(hs)
            ok(len(got) == NCHUNK and all(g is not None and g.shape == SHAPE and g.dtype == DTYPE for g in got),
               "batched_get: 64 tensors of the chunk's shape and dtype")
            ok(all(torch.equal(g.view(torch.int16), d.view(torch.int16)) for g, d in zip(got, data)),
               "byte for byte")
            one = await lc.get(hs[5])
            ok(one is not None and torch.equal(one.view(torch.int16), data[5].view(torch.int16)), "get of one chunk")
            is_(await lc.get(12345), None, "get of a chunk never stored: None")
            is_(await lc.exists(hs[0]), True, "exists")
            is_(lc.exists_sync(ChunkKey("llama-test", "roundtrip", hs[1])), True, "exists_sync with a ChunkKey")
            is_(await lc.exists(777), False, "exists of a chunk never stored: False")
            if hasattr(kvnode._ffi.lib, "kvn_list"):
                names = await lc.list()
                is_(sorted(names), sorted("llama-test/roundtrip/%016x" % h for h in hs), "list(): the 64 keys")
            else:
                skip("kvn_list not in this libkvnode yet")
    asyncio.run(main())


def case_prefix():
    async def main():
        async with conn("prefix") as lc:
            data, hs = chunks(2, 24), hashes(2, 24)
            await lc.batched_put(hs[:10], data[:10])
            await lc.batched_put(hs[11:20], data[11:20])  # a hole at 10
            is_(await lc.batched_async_contains("req-1", hs), 10, "prefix hit count after a partial store: 10")
            is_(await lc.batched_async_contains("req-2", hs[:5]), 5, "a shorter lookup: all hit")
            is_(await lc.batched_async_contains("req-3", [999] + hs), 0, "a miss first: 0")
            n = await lc.batched_async_contains("req-4", hs, pin=True)
            is_(n, 10, "with pin=True: the same count")
            try:
                lc.client.evict(lc.key_of(hs[0]))
                ok(False, "the hit prefix is pinned (evict: Held)")
            except kvnode.Held:
                ok(True, "the hit prefix is pinned (evict: Held)")
            lc.unpin("req-4")
            lc.client.evict(lc.key_of(hs[0]))
            is_(await lc.batched_async_contains("req-5", hs), 0, "unpinned and evicted: the prefix count drops to 0")
            got = await lc.batched_get(hs[9:12])
            ok(got[0] is not None and got[1] is None and got[2] is not None,
               "batched_get: None for the missing chunk only")
    asyncio.run(main())


def case_kill():
    async def main():
        lc = conn("kill")
        data, hs = chunks(3), hashes(3)
        await lc.batched_put(hs, data)
        rounds = []

        async def reader():  # batches back to back: the kill lands in one
            while True:
                got = await lc.batched_get(hs)
                rounds.append(all(g is not None for g in got))
        task = asyncio.ensure_future(reader())
        while not rounds:  # one whole batch first: the reader is going
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        t0 = time.monotonic()
        node().kill()
        err = None
        try:
            await asyncio.wait_for(task, 4 * TIMEOUT + 10)  # a hang fails, not blocks
        except asyncio.TimeoutError:
            err = "hang"
        except kvnode.Error as e:
            err = e
        dt = time.monotonic() - t0
        ok(rounds and all(rounds), "%d batches of 64 chunks read while the node lived" % len(rounds))
        ok(isinstance(err, kvnode.Error), "the node killed mid-batch: the batch raises a kvnode.Error (%r)" % (err,))
        ok(dt <= TIMEOUT + 2.0, "within the client's deadline of %.0f s (+2 s slack): %.2f s" % (TIMEOUT, dt))
        t0 = time.monotonic()
        try:
            await lc.put(hs[0], data[0])
            err = None
        except kvnode.Error as e:
            err = e
        ok(isinstance(err, kvnode.Error) and time.monotonic() - t0 <= TIMEOUT + 2.0,
           "a put with the node down raises within the deadline too (%r)" % (err,))
        await lc.close()
        ok(lc.client.closed, "close() after the failure")
    asyncio.run(main())


try:
    kvtest.run([("roundtrip", case_roundtrip), ("prefix", case_prefix), ("kill", case_kill)])
finally:
    if _node is not None:
        _node.kill()

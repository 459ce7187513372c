"""t/py/client.py: the kvnode Python package against a real all-in-one
node: buffers without copies (numpy, torch, bytearray), one exception
class per code, the thread rule, batches, pins, listing, asyncio over
fileno(), and `python3 -m kvnode ping`.  Cases run alone by name."""
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import kvtest
from kvtest import diag, is_, ok, raises, skip

try:
    import cffi  # noqa: F401
except ImportError:
    kvtest.skip_all("python3-cffi is not installed (Debian: python3-cffi)")
import kvnode  # noqa: E402

try:
    import numpy as np
except ImportError:
    np = None
try:
    import torch
except ImportError:
    torch = None

LOCAL = 1 << 20  # >= client.local_min_size (256 KiB): same-host gets take the local path
_node = None


def node():
    global _node
    if _node is None:
        _node = kvtest.Node("py", dram="256MiB", extra=["[node]", "max_value_size = 4MiB"])
        if not ok(_node.start(), "all-in-one node up"):
            sys.exit(1)
    return _node


def client(**kw):
    return kvnode.Client(config=node().conf, **kw)


def has_counter():
    try:
        kvnode._ffi.lib.kvn_counter
        return True
    except AttributeError:
        return False


def case_basic():
    with client() as c:
        p = c.ping()
        ok(p.peers >= 1 and p.rtt_us >= 0, "ping: %d peer(s)" % p.peers)
        gen = c.put("basic/a", b"hello")
        ok(gen > 0, "put returns the generation")
        is_(c.get("basic/a"), b"hello", "get without out returns bytes")
        is_(c.get(b"basic/a"), b"hello", "a key may be bytes")
        buf = bytearray(16)
        is_(c.get("basic/a", out=buf), 5, "get into a bytearray returns the length")
        is_(bytes(buf[:5]), b"hello", "and the bytes are in it")
        mv = memoryview(bytearray(8))
        c.get("basic/a", out=mv[2:])
        is_(mv.tobytes(), b"\0\0hello\0", "get into a memoryview slice writes at its offset")
        c.put("basic/empty", b"")
        is_(c.get("basic/empty"), b"", "an empty value")
        ok(c.exists("basic/a") and not c.exists("basic/none"), "exists: True, then False")
        c.put("basic/b", memoryview(b"xyz"))
        is_(c.exists_prefix(["basic/a", "basic/b", "basic/none", "basic/a"]), 2, "exists_prefix counts leading keys")
        c.remove("basic/b")
        ok(not c.exists("basic/b"), "remove")
        raises(TypeError, lambda: c.put("basic/s", "a str"), "a str value is refused (TypeError)")
        raises(TypeError, lambda: c.get("basic/a", out=b"readonly"), "a read-only out is refused")
        gen2 = c.put("basic/a", b"again", durable=True)
        ok(gen2 > gen, "a durable put: a newer generation")


def case_errors():
    with client() as c:
        e = raises(kvnode.NotFound, lambda: c.get("err/none"), "a missing key raises NotFound")
        if e is not None:
            is_(e.code, -3, "with .code KVN_ENOTFOUND")
            is_(e.name, "KVN_ENOTFOUND", "with .name")
            ok(isinstance(e, kvnode.Error) and isinstance(e.detail, str), "an Error with a str .detail")
        raises(kvnode.NotFound, lambda: c.remove("err/none"), "remove of a missing key: NotFound")
        raises(kvnode.KeyLength, lambda: c.put("", b"x"), "an empty key: KeyLength")
        raises(kvnode.KeyLength, lambda: c.get("k" * 1025), "a 1025-byte key: KeyLength")
        raises(kvnode.TooBig, lambda: c.put("err/big", bytes(5 << 20)), "over max_value_size: TooBig")
        c.put("err/v", bytes(100))
        e = raises(kvnode.BufferTooSmall, lambda: c.get("err/v", out=bytearray(10)), "a small out: BufferTooSmall")
        if e is not None:
            ok("100" in e.detail, "its detail gives the value's size: %s" % e.detail)
        raises(ValueError, lambda: c.pin("err/v", 0), "a pin of ttl 0: ValueError")
    for code, name in ((-5, "Full"), (-8, "Timeout"), (-9, "AuthError"), (-11, "ConnectionFailed"),
                       (-13, "Busy"), (-18, "PeerDown"), (-26, "Held"), (-27, "ReadOnly")):
        cls = getattr(kvnode, name)
        ok(kvnode.error_class(code) is cls and issubclass(cls, kvnode.Error) and cls.code == code,
           "kvnode.%s is code %d, under kvnode.Error" % (name, code))
    port = kvtest.free_port()
    raises(kvnode.ConnectionFailed, lambda: kvnode.Client(config=node().conf, master="127.0.0.1:%d" % port,
                                                          timeout=2),
           "no master at the address: ConnectionFailed")
    bad = os.path.join(kvtest.TMP, "wrong.secret")
    with open(bad, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(bad, 0o600)
    e = raises(kvnode.AuthError, lambda: kvnode.Client(config=node().conf, secret_file=bad), "a wrong secret: AuthError")
    os.chmod(bad, 0o644)
    e = raises(kvnode.AuthError, lambda: kvnode.Client(config=node().conf, secret_file=bad),
               "a world-readable secret file: AuthError")
    if e is not None:
        ok("0644" in e.detail, "whose detail names the mode: %s" % e.detail)


def case_timeout():
    n = kvtest.Node("pystop")
    if not ok(n.start(), "a node to stop up"):
        return
    try:
        with kvnode.Client(config=n.conf, timeout=1) as c:
            c.put("to/a", b"x")
            n.proc.send_signal(signal.SIGSTOP)  # alive but silent: only the deadline ends a call
            # the stop lands asynchronously: a get sent at once could still
            # be answered (seen in CI), so wait until the node is stopped
            end = time.monotonic() + 5
            while time.monotonic() < end:
                with open("/proc/%d/stat" % n.proc.pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "T":
                        break
                time.sleep(0.01)
            t0 = time.monotonic()
            e = raises(kvnode.Timeout, lambda: c.get("to/a"), "a stopped node: Timeout")
            dt = time.monotonic() - t0
            ok(dt < 3.0, "at the 1 s deadline (+2 s slack): %.2f s" % dt)
            if e is not None:
                is_(e.code, -8, "code KVN_ETIMEDOUT")
            n.proc.send_signal(signal.SIGCONT)
    finally:
        n.kill()
    e = kvnode.NotFound()
    ok(e.code == -3 and "KVN_ENOTFOUND" in str(e), "kvnode.NotFound() made by hand carries its code: %s" % e)


def case_full():
    n = kvtest.Node("pyfull", dram="16MiB", extra=["[node]", "max_value_size = 4MiB"])
    if not ok(n.start(), "a 16 MiB node up"):
        return
    try:
        with kvnode.Client(config=n.conf) as c:
            err = None
            for i in range(10):  # 3 MiB values, each pinned: no room left by the 6th
                try:
                    c.put("full/%d" % i, bytes(3 << 20))
                    c.pin("full/%d" % i, 60)
                except kvnode.Error as e:
                    err = e
                    break
            ok(isinstance(err, kvnode.Full), "pinned values fill the node: Full (%r)" % err)
            e = raises(kvnode.Held, lambda: c.evict("full/0"), "evict of a pinned value: Held")
            if e is not None:
                ok(isinstance(e.results, list) and isinstance(e.results[0], kvnode.Held),
                   "the batch error carries per-item .results")
            c.unpin("full/0")
            c.evict("full/0")
            ok(not c.exists("full/0"), "unpinned, it can be evicted (no disk tier: gone)")
    finally:
        n.kill()


def same_addr_gets(c, put, out, addr_of, what):
    """put `put` and get it into out (>= 256 KiB: the same-host path):
    the bytes arrive, out stays where it was, and bounce_bytes stays 0."""
    c.put("zc/" + what, put)
    before_addr = addr_of(out)
    before = c.counter("bounce_bytes") if has_counter() else None
    n = c.get("zc/" + what, out=out)
    is_(n, LOCAL, "%s: the whole value" % what)
    is_(addr_of(out), before_addr, "%s: out is the same memory (address unchanged)" % what)
    return before


def case_numpy():
    if np is None:
        skip("python3-numpy is not installed", 6)
        return
    with client() as c:
        a = np.random.default_rng(1).integers(0, 256, LOCAL, dtype=np.uint8)
        out = np.empty(LOCAL, dtype=np.uint8)
        addr = lambda x: x.__array_interface__["data"][0]  # noqa: E731
        before = same_addr_gets(c, a, out, addr, "numpy uint8")
        ok(np.array_equal(a, out), "numpy: byte for byte")
        if before is not None:
            is_(c.counter("bounce_bytes") - before, 0, "numpy: bounce_bytes stays 0 (no copy through the library)")
        else:
            skip("kvn_counter not in this libkvnode yet")
        f = np.linspace(0, 1, LOCAL // 4, dtype=np.float32)
        g = np.zeros_like(f)
        c.put("zc/f32", f)
        c.get("zc/f32", out=g)
        ok(np.array_equal(f, g), "a float32 array round-trips")
        raises(ValueError, lambda: c.get("zc/f32", out=np.zeros((LOCAL // 2, 2), np.float32)[:, 0]),
               "a strided (non-contiguous) out is refused, never copied")


def case_torch():
    if torch is None:
        skip("python3-torch is not installed", 6)
        return
    with client() as c:
        t = torch.arange(LOCAL // 2, dtype=torch.int16)
        out = torch.empty(LOCAL // 2, dtype=torch.int16)
        before = same_addr_gets(c, t, out, lambda x: x.data_ptr(), "torch int16")
        ok(torch.equal(t, out), "torch: element for element")
        if before is not None:
            is_(c.counter("bounce_bytes") - before, 0, "torch: bounce_bytes stays 0 (no copy through the library)")
        else:
            skip("kvn_counter not in this libkvnode yet")
        b = torch.randn(64, 1024, dtype=torch.bfloat16)
        o = torch.empty_like(b)
        c.put("zc/bf16", b)
        c.get("zc/bf16", out=o)
        ok(torch.equal(b, o), "a bfloat16 tensor round-trips")
        raises(ValueError, lambda: c.get("zc/bf16", out=o.t()), "a transposed (non-contiguous) tensor is refused")


def case_counter():
    if not has_counter():
        skip("kvn_counter not in this libkvnode yet", 3)
        return
    with client() as c:
        # measured: a 100-byte value over TCP (below client.local_min_size)
        # is read with its frame into the connection's read-ahead and copied
        # from there into the caller's buffer: the counter can move
        c.put("cnt/small", b"s" * 100)
        before = c.counter("bounce_bytes")
        c.get("cnt/small", out=bytearray(100))
        d = c.counter("bounce_bytes") - before
        ok(0 < d <= 100, "bounce_bytes counts a small TCP get copied through the library (%d bytes)" % d)
        ok(isinstance(c.counter("corrupt_gets"), int), "another counter by name: corrupt_gets")
        e = raises(kvnode.NotFound, lambda: c.counter("no_such_counter"), "an unknown counter: NotFound")
        if e is not None:
            ok("no_such_counter" in e.detail, "naming it")


def case_threads():
    with client() as c:
        c.put("th/a", b"1")
        got = []

        def other():
            try:
                c.get("th/a")
                got.append(None)
            except Exception as e:  # noqa: BLE001
                got.append(e)
            try:  # a client of its own works on any thread
                with client() as mine:
                    got.append(mine.get("th/a"))
            except Exception as e:  # noqa: BLE001
                got.append(e)
        t = threading.Thread(target=other)
        t.start()
        t.join(30)
        ok(len(got) == 2 and isinstance(got[0], kvnode.WrongThread), "a client used from a second thread raises WrongThread")
        ok(len(got) == 2 and isinstance(got[0], kvnode.Error), "which is a kvnode.Error")
        is_(got[1:], [b"1"], "a client made on that thread works there")
        is_(c.get("th/a"), b"1", "the owner thread still uses its client")
    raises(kvnode.Closed, lambda: c.get("th/a"), "a closed client raises Closed")


def case_batch():
    with client() as c:
        keys = ["b/%d" % i for i in range(20)]
        vals = [bytes([i]) * (i * 1000) for i in range(20)]
        ok(c.put_batch(keys, vals) is None, "put_batch of 20 values")
        is_(c.get_batch(keys), vals, "get_batch returns them as bytes")
        outs = [bytearray(20000) if i % 2 else None for i in range(20)]
        res = c.get_batch(keys, outs)
        ok(all((res[i] == i * 1000 and outs[i][:i * 1000] == vals[i]) if i % 2 else res[i] == vals[i]
               for i in range(20)), "get_batch into buffers (and None: bytes) in one call")
        is_(c.exists_batch(["b/1", "b/none", "b/2"]), [True, False, True], "exists_batch")
        e = raises(kvnode.NotFound, lambda: c.get_batch(["b/1", "b/none", "b/2"]), "a batch with a missing key raises NotFound")
        if e is not None:
            r = e.results
            ok(r is not None and r[0] == vals[1] and isinstance(r[1], kvnode.NotFound) and r[2] == vals[2],
               ".results holds per key the value or its error")
        c.remove_batch(keys[:10])
        is_(c.exists_batch(keys[9:11]), [False, True], "remove_batch")
        raises(ValueError, lambda: c.put_batch(["x", "y"], [b"1"]), "keys and values of different lengths: ValueError")


def case_pin():
    with client() as c:
        c.put("pin/a", b"x" * 1000)
        c.put("pin/b", b"y" * 1000)
        ok(c.pin(["pin/a", "pin/b"], 30) is None, "pin two keys")
        raises(kvnode.Held, lambda: c.evict("pin/a"), "a pinned key is not evicted: Held")
        c.unpin(["pin/a", "pin/b"])
        ok(c.evict("pin/a") is None, "after unpin it is")
        raises(kvnode.NotFound, lambda: c.pin("pin/none", 30), "pin of a missing key: NotFound")


def case_list():
    if not hasattr(kvnode._ffi.lib, "kvn_list"):
        skip("kvn_list not in this libkvnode yet", 5)
        return
    with client() as c:
        want = set()
        for i in range(57):
            k = "ls/a/%03d" % i
            c.put(k, b"v" * i)
            want.add(k.encode())
        for i in range(5):
            c.put("ls/b/%d" % i, b"w")
        got = list(c.list("ls/a/", page=7))
        is_(len(got), len(want), "list(prefix) in pages of 7: every key once")
        is_(set(got), want, "exactly the keys of the prefix")
        allk = set(c.list())
        ok(want <= allk and b"ls/b/0" in allk, "list() without a prefix has them all")
        entries, cur = [], 0
        while True:
            page, cur = c.list_page("ls/b/", cur, 100)
            entries += page
            if cur == 0:
                break
        is_(sorted(e.key for e in entries), [b"ls/b/%d" % i for i in range(5)], "list_page pages until the cursor is 0")
        ok(all(e.size == 1 and e.gen > 0 for e in entries), "Listed entries carry the size and generation")
        raises(kvnode.InvalidArgument, lambda: c.list_page("", 0, 0), "max 0: InvalidArgument")


def tasks():
    return len(os.listdir("/proc/self/task"))


def case_asyncio():
    with client() as c:
        fd = c.fileno()
        ok(isinstance(fd, int) and fd >= 0, "fileno() is the completion fd (%d)" % fd)

        async def main():
            loop = asyncio.get_running_loop()
            await c.aput("aio/warm", b"w")
            threads = tasks()
            vals = [os.urandom(300 << 10) for _ in range(16)]
            await asyncio.gather(*(c.aput("aio/%d" % i, v) for i, v in enumerate(vals)))
            outs = [bytearray(300 << 10) for _ in vals]
            ns = await asyncio.gather(*(c.aget("aio/%d" % i, out=o) for i, o in enumerate(outs)))
            ok(all(n == len(v) for n, v in zip(ns, vals)) and outs == vals, "16 concurrent aput/aget round-trip")
            is_(tasks(), threads, "no thread per call (the process's threads did not grow)")
            ok(fd in getattr(loop, "_selector").get_map(), "the client's fd is registered with the loop (add_reader)")
            is_(await c.aexists("aio/0"), True, "aexists")
            is_(await c.aexists_prefix(["aio/0", "aio/1", "aio/none", "aio/2"]), 2, "aexists_prefix")
            try:
                await c.aget("aio/none")
                ok(False, "aget of a missing key raises NotFound")
            except kvnode.NotFound:
                ok(True, "aget of a missing key raises NotFound")
            res = await c.aget_batch(["aio/0", "aio/1"])
            is_(res, vals[:2], "aget_batch")
            if np is not None:
                a = np.arange(LOCAL, dtype=np.uint8)
                await c.aput("aio/np", a)
                o = np.empty_like(a)
                await c.aget("aio/np", out=o)
                ok(np.array_equal(a, o), "aget into a numpy array")
            else:
                skip("python3-numpy is not installed")
            is_(c.submit_pending, 0, "nothing left pending")
        asyncio.run(main())
        # the sync form of the same machinery
        s = c.submit_get(["aio/0"])
        import select
        r, _, _ = select.select([fd], [], [], 10)
        ok(r == [fd], "the fd turns readable once a submission completes")
        done = c.reap()
        ok(done == [s] and s.done and s.result() == [vals_first(c)], "reap hands the Submission over")


def vals_first(c):
    return c.get("aio/0")


def case_ping():
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "kvnode", "ping", "--config", node().conf],
                       capture_output=True, text=True, env=env, timeout=60)
    is_(r.returncode, 0, "python3 -m kvnode ping: exit 0")
    ok(r.stdout.startswith("pong:"), "prints pong: %s" % r.stdout.strip())
    port = kvtest.free_port()
    r = subprocess.run([sys.executable, "-m", "kvnode", "ping", "--config", node().conf,
                        "--master", "127.0.0.1:%d" % port, "--timeout", "2"],
                       capture_output=True, text=True, env=env, timeout=60)
    is_(r.returncode, 1, "with no master there: exit 1")
    ok("ConnectionFailed" in r.stderr, "naming the error: %s" % r.stderr.strip())


def case_readme():
    """Every ```python block of python/README.md runs as written (the
    config path pointed at the test's node), each with an open client c."""
    import re
    with open(os.path.join(kvtest.SRCDIR, "python", "README.md")) as f:
        blocks = re.findall(r"^```python\n(.*?)^```", f.read(), re.S | re.M)
    ok(len(blocks) >= 5, "python/README.md has %d python blocks" % len(blocks))
    # and docs/clients.md's (its redis-py one runs in t/resp.sh)
    with open(os.path.join(kvtest.SRCDIR, "docs", "clients.md")) as f:
        more = [b for b in re.findall(r"^```python\n(.*?)^```", f.read(), re.S | re.M) if "import redis" not in b]
    ok(len(more) == 1, "docs/clients.md has one kvnode python block")
    blocks += more
    conf = node().conf
    for i, b in enumerate(blocks):
        code = b.replace('"etc/kvnode.conf"', repr(conf)).replace("kvnode.Client()", "kvnode.Client(config=%r)" % conf)
        if np is None and "numpy" in code or torch is None and "torch" in code:
            skip("block %d needs numpy/torch" % (i + 1))
            continue
        with client() as c:
            ns = {"c": c, "kvnode": kvnode}
            try:
                exec(compile(code, "block %d" % (i + 1), "exec"), ns)
                if "demo" in ns:  # the connector's block only defines it
                    asyncio.run(ns["demo"]())
                if "client" in ns and callable(ns["client"]):
                    ok(ns["client"]() is ns["client"](), "block %d: one client per thread" % (i + 1))
                    ns["client"]().close()
                    continue
                ok(True, "block %d runs" % (i + 1))
            except Exception as e:  # noqa: BLE001
                ok(False, "block %d runs" % (i + 1))
                kvtest.diag("%s: %s" % (type(e).__name__, e))


try:
    kvtest.run([("basic", case_basic), ("errors", case_errors), ("timeout", case_timeout), ("full", case_full), ("numpy", case_numpy),
                ("torch", case_torch), ("counter", case_counter), ("threads", case_threads),
                ("batch", case_batch), ("pin", case_pin), ("list", case_list), ("asyncio", case_asyncio),
                ("ping", case_ping), ("readme", case_readme)])
finally:
    if _node is not None:
        _node.kill()

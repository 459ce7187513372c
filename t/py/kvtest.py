"""t/py/kvtest.py: TAP output and kvnode processes for the Python tests.

Run by the t/py_*.sh wrappers (which set KVN_BUILDDIR, KVN_SRCDIR, TMP,
PYTHONPATH and KVNODE_LIBRARY).  Every node started here dies with the test
process (PR_SET_PDEATHSIG), whatever kills it."""
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
import traceback

BUILDDIR = os.environ.get("KVN_BUILDDIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
SRCDIR = os.environ.get("KVN_SRCDIR") or BUILDDIR
TMP = os.environ.get("TMP") or "/tmp"
KVNODE = os.path.join(BUILDDIR, "kvnode")

_n = 0
_failed = 0


def ok(cond, desc):
    global _n, _failed
    _n += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", _n, desc), flush=True)
    if not cond:
        _failed += 1
    return bool(cond)


def is_(got, want, desc):
    r = ok(got == want, desc)
    if not r:
        diag("got %r, want %r" % (got, want))
    return r


def diag(msg):
    for line in str(msg).splitlines():
        print("#   " + line, flush=True)


def skip(reason, count=1):
    global _n
    for _ in range(count):
        _n += 1
        print("ok %d # SKIP %s" % (_n, reason), flush=True)


def raises(exc, fn, desc):
    """ok when fn() raises exc (a class); returns the exception."""
    try:
        fn()
    except exc as e:
        ok(True, desc)
        return e
    except Exception as e:  # noqa: BLE001
        ok(False, desc)
        diag("raised %s: %s" % (type(e).__name__, e))
        return None
    ok(False, desc)
    diag("did not raise %s" % exc.__name__)
    return None


def skip_all(reason):
    print("1..0 # SKIP %s" % reason, flush=True)
    sys.exit(0)


def free_port():
    lo = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError):
        pass
    lo = lo if lo >= 12000 else 32768
    for _ in range(200):
        p = random.randrange(10000, lo)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def _pdeathsig():
    libc = ctypes.CDLL(None)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Node:
    """An all-in-one kvnode (master and peer) with its own data_dir."""

    def __init__(self, name, dram="256MiB", extra=()):
        self.name = name
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "kvnode.conf")
        self.log = os.path.join(self.dir, "node.log")
        mp, pp = free_port(), free_port()
        lines = ["[node]", "data_dir = %s/var" % self.dir, "log_level = info",
                 "[master]", "listen = 127.0.0.1:%d" % mp, "node_timeout = 3s", "http =",
                 "[peer]", "listen = 127.0.0.1:%d" % pp, "master = 127.0.0.1:%d" % mp, "http =",
                 "dram_size = %s" % dram, "heartbeat_interval = 200ms",
                 "[client]", "master = 127.0.0.1:%d" % mp, "timeout = 5s"]
        lines += list(extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self, wait=20):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)  # the binary links its own sanitizer runtime
        if "KVN_NODE_ASAN_OPTIONS" in env:  # the interpreter's leak check is off, not the node's
            env["ASAN_OPTIONS"] = env["KVN_NODE_ASAN_OPTIONS"]
        logf = open(self.log, "ab")
        start = logf.tell()  # a restart appends: only this run's lines count
        self.proc = subprocess.Popen([KVNODE, "--config", self.conf], stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL, env=env, preexec_fn=_pdeathsig)
        logf.close()
        end = time.monotonic() + wait
        while time.monotonic() < end:
            with open(self.log, "rb") as f:
                f.seek(start)
                if b"kvnode ready" in f.read():
                    return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.dump()
        return False

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def dump(self):
        try:
            with open(self.log, errors="replace") as f:
                diag("---- %s (last 20 lines)\n%s" % (self.log, "".join(f.readlines()[-20:])))
        except OSError:
            pass


def run(cases):
    """Run the cases named on the command line (all without arguments):
    cases is a list of (name, function); each prints its own ok lines."""
    want = sys.argv[1:]
    names = [n for n, _ in cases]
    for w in want:
        if w not in names:
            print("# unknown case %r (cases: %s)" % (w, " ".join(names)))
            print("1..0")
            sys.exit(1)
    for name, fn in cases:
        if want and name not in want:
            continue
        print("# case %s" % name, flush=True)
        try:
            fn()
        except Exception:  # noqa: BLE001
            ok(False, "case %s ran to its end" % name)
            diag(traceback.format_exc())
    print("1..%d" % _n, flush=True)
    sys.exit(1 if _failed else 0)

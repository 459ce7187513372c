#!/usr/bin/python3
"""t/py/resp_redispy.py PORT TOKEN: redis-py, unchanged, against kvnode's
RESP gateway (t/resp.sh runs it): plain calls, both pipelines (a
transaction is redis-py's default), SET's options, SCAN, HELLO 3 and the
errors redis-py maps to its exceptions.  Exits non-zero at the first
assertion that fails, saying which."""
import sys
import time

import redis

port, token = int(sys.argv[1]), sys.argv[2]
r = redis.Redis(host="127.0.0.1", port=port, password=token, socket_timeout=20)


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        sys.exit(1)


check(r.ping() is True, "ping")
big = bytes(range(256)) * 2048  # 512 KiB, every byte value
check(r.set("py:big", big) is True and r.get("py:big") == big, "a 512 KiB binary value round-trips")
check(r.get("py:nope") is None, "a missing key is None")

p = r.pipeline(transaction=False)
for i in range(200):
    p.set("py:p%d" % i, str(i))
for i in range(200):
    p.get("py:p%d" % i)
p.mget(["py:p1", "py:nope", "py:p2"])
res = p.execute()
check(res[:200] == [True] * 200, "pipeline: 200 SETs acknowledged")
check(res[200:400] == [str(i).encode() for i in range(200)], "pipeline: 200 GETs in order")
check(res[400] == [b"1", None, b"2"], "pipeline: MGET with a hole")

p = r.pipeline()  # transaction=True: MULTI ... EXEC
p.set("py:t", "1").get("py:t").set("py:t", "2").get("py:t")
check(p.execute() == [True, b"1", True, b"2"], "transaction pipeline: replies in order")

p = r.pipeline(transaction=False)
for _ in range(5):
    p.set("py:same", "a")
p.set("py:same", "last")
p.get("py:same")
check(p.execute()[-1] == b"last", "pipelined SETs of one key: the last one wins")

check(r.set("py:nx", "1", nx=True) is True and r.set("py:nx", "2", nx=True) is None, "SET NX")
check(r.set("py:xx-none", "1", xx=True) is None and r.set("py:nx", "3", xx=True) is True, "SET XX")
check(r.setnx("py:nx", "4") is False and r.get("py:nx") == b"3", "SETNX")
check(r.set("py:ex", "v", px=200) is True and r.exists("py:ex") == 1, "SET PX")
time.sleep(0.8)
check(r.get("py:ex") is None, "the PX value expired")

check(r.mset({"py:m1": "a", "py:m2": "b"}) is True and r.mget("py:m1", "py:m2") == [b"a", b"b"], "MSET")
check(r.delete("py:m1", "py:m2", "py:nope") == 2 and r.exists("py:m1") == 0, "DEL")
check(r.strlen("py:big") == len(big), "STRLEN")

keys = set(r.scan_iter(match="py:p1*", count=7))
check(keys == {("py:p%d" % i).encode() for i in range(200) if str(i).startswith("1")},
      "scan_iter(match=py:p1*, count=7): each matching key, once")
check(r.dbsize() >= 200, "DBSIZE")
info = r.info()
check(info["redis_version"] and "connected_clients" in info and "keyspace_hits" in info, "INFO")
check(r.client_setname("pytest") is True and r.client_getname() in ("pytest", b"pytest"), "CLIENT SETNAME/GETNAME")
check(r.echo("hi") == b"hi", "ECHO")

# redis-py 4 speaks RESP2 only (t/resp.sh checks HELLO 3 on a socket)
hello = r.execute_command("HELLO", "2")
check(isinstance(hello, list) and hello[hello.index(b"proto") + 1] == 2, "HELLO 2")

try:
    r.execute_command("NOSUCHCMD")
    check(False, "an unknown command raises")
except redis.exceptions.ResponseError as e:
    check("unknown command" in str(e), "an unknown command raises ResponseError")

try:
    redis.Redis(host="127.0.0.1", port=port, password="0" * 64).ping()
    check(False, "a wrong token raises")
except redis.exceptions.AuthenticationError:
    check(True, "a wrong token raises AuthenticationError")
except redis.exceptions.ResponseError as e:
    # Redis 6+ answers WRONGPASS, which redis-py 4 leaves a ResponseError
    check("WRONGPASS" in str(e), "a wrong token raises WRONGPASS, as Redis's")

try:
    redis.Redis(host="127.0.0.1", port=port).get("py:t")
    check(False, "no AUTH raises")
except redis.exceptions.AuthenticationError as e:
    check(True, "no AUTH raises AuthenticationError (NOAUTH)")
except redis.exceptions.ResponseError as e:
    check("NOAUTH" in str(e), "no AUTH: NOAUTH")

# docs/clients.md's redis-py block runs as written (its port and TOKEN
# made this gateway's)
import os  # noqa: E402
import re  # noqa: E402

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "clients.md")) as f:
    blocks = [b for b in re.findall(r"^```python\n(.*?)^```", f.read(), re.S | re.M) if "import redis" in b]
check(len(blocks) == 1, "docs/clients.md has one redis-py block")
ns = {"TOKEN": token}
exec(compile(blocks[0].replace("port=6380", "port=%d" % port), "docs/clients.md redis-py block", "exec"), ns)
check(ns["values"] == [b"\x00" * 4096] + [None] * 63, "docs/clients.md's redis-py block: its pipeline reads chunk:0 and 63 misses")
print("done")

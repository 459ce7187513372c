"""python3 -m kvnode ping [--config FILE] [--master HOST:PORT]
[--secret-file FILE] [--timeout SECONDS]: a smoke test of the package, the
library and the cluster.  Exit 0 with the round trip on success; 1 with the
error (its class, code and detail) otherwise."""
import argparse
import sys

import kvnode


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m kvnode", description="kvnode Python client")
    ap.add_argument("command", choices=["ping"], help="ping: a round trip to the master")
    ap.add_argument("--config", help="a kvnode.conf (default: etc/kvnode.conf when present)")
    ap.add_argument("--master", help="host:port of the master")
    ap.add_argument("--secret-file", help="the client secret file")
    ap.add_argument("--timeout", type=float, help="deadline in seconds")
    a = ap.parse_args(argv)
    try:
        with kvnode.Client(config=a.config, master=a.master, secret_file=a.secret_file,
                           timeout=a.timeout) as c:
            p = c.ping()
    except kvnode.Error as e:
        print("python3 -m kvnode: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    print("pong: %d us, %d peer%s (library %s)" % (p.rtt_us, p.peers, "" if p.peers == 1 else "s",
                                                  kvnode.library_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""fuzz/mkseeds.py: structured seeds the fuzzer would take long to find by
itself.

- fuzz/corpus/wire: for fuzz_wire's unauthenticated mode (first byte even),
  byte streams that start with a well-formed HELLO frame, so the decoder
  gets past the magic, version and type checks before authentication.
- fuzz/corpus/peer: tier-* scripts for fuzz_peer (issue 13) that fill its
  DRAM with correctly checksummed, granted puts, so eviction, offload to
  its disk tier, GETs of disk-only values, PIN/UNPIN/EVICT_KEY, disk
  faults, TTL expiry and the clean stop (flush_on_stop) are reached from
  the first run.  The bytes follow fuzz_peer.c's one_op() exactly (each
  fz_u8 it reads, in order): change both together.

The other seeds in fuzz/corpus/ come from short runs (fuzz/README.md).

usage: python3 fuzz/mkseeds.py fuzz/corpus/wire
       python3 fuzz/mkseeds.py fuzz/corpus/peer
"""
import os
import struct
import sys

MAGIC = 0x314E564B  # "KVN1" little-endian
HELLO, CHALLENGE, PROOF, ACCEPT, REJECT, PING, PUT = 1, 2, 3, 4, 5, 16, 64


def hdr(typ, meta_len, payload_len=0, flags=0, status=0, corr=0, version=3):
    return struct.pack('<IBBHIiQQ', MAGIC, version, flags, typ, meta_len, status, payload_len, corr)


def frame(typ, meta=b'', **kw):
    return hdr(typ, len(meta), **kw) + meta


def hello(role=2, node=b'fz-node', nonce=b'\x11' * 32, integrity=0):
    """integrity: 0 header (the harness's server), 1 frame (refused)"""
    return bytes([role]) + struct.pack('<H', len(node)) + node + nonce + bytes([integrity])


# ---- fuzz_peer scripts (fuzz_peer.c: one_op, items_msg, client_send) ----

def p_put(key, gen, fill=0x41, size_sel=5, ttl=None, good_sum=True):
    """PUT of one item, buffered payload, client role, a valid grant.
    size_sel 5: peer.max_value_size (128 KiB); key: index into keys[];
    gen: 1..103 (fz_edge64's small range); ttl: None or 1..103 ms."""
    b = [0,            # op 0: PUT, payload buffered
         100,          # flags: PROTO_ITEMS_SUM
         5,            # fz_count: 1 item
         fill,         # W.fill: the payload's byte
         100,          # declared count matches
         100, 96 + gen,  # pick_gen: fz_edge64 small
         size_sel,     # fz_size
         key]          # keys[key]
    b += [0] if good_sum else [200, 1]          # checksum: the true one, or 1
    b += [100] if ttl is None else [0, 96 + ttl]  # TTL
    b += [0, 0,        # grants present; this one valid
          0,           # no trailing byte
          0,           # payload length = sum of sizes
          0,           # call deadline
          0]           # run_for 0
    return bytes(b)


def p_keys(op, key, gen_edge=0):
    """GET (6), EXISTS (8), REMOVE (9), UNPIN (26), EVICT_KEY (27) of one
    key, generation 0 (the latest) by default."""
    return bytes([op, 0, 5, 0, 100, 100, gen_edge, 100, key, 0, 0, 0])


def p_pin(key, ttl_ms=10000):
    return bytes([25, 0, 5, 0, 100, 100, 0, 100, key, 0, 0, ttl_ms & 255, ttl_ms >> 8, 0, 0, 0])


def p_wait(ms):
    return bytes([127, ms & 255, ms >> 8])


def p_fault(op, count=1, err=0):
    """The disk fails the next `count` calls of op (0 open, 1 write,
    2 fsync, 3 rename, 4 dirsync, 5 read) with EIO (err 0) or ENOSPC (1)."""
    return bytes([29, op + 6 * (count - 1), 0, err, 0])


def p_leave(ms=2000):
    return bytes([30, ms & 255, ms >> 8, 0])


def fill4(fill=0x41, first=1):
    return b''.join(p_put(k, first + k, fill) for k in range(4))


def peer_seeds():
    return {
        # four 128 KiB values in a 384 KiB arena: eviction offloads, then a
        # GET of a disk-only value, EVICT_KEY of an offloaded one
        'tier-put-evict-get': fill4() + p_wait(500) + p_keys(6, 0) + p_wait(300) + p_keys(27, 1) +
        p_wait(300) + p_keys(6, 1) + p_wait(300),
        # a pinned value is refused by EVICT_KEY and kept by eviction
        'tier-pin-evict-unpin': p_put(0, 1) + p_pin(0) + p_wait(10) + p_keys(27, 0) + fill4(0x42, 10)[len(p_put(0, 1)):] +
        p_wait(500) + p_keys(27, 0) + p_keys(26, 0) + p_keys(27, 0) + p_wait(300) + p_keys(6, 0) + p_wait(300),
        # a failed fsync: the tier goes read-only, eviction skips or waits
        'tier-fsync-fails': p_fault(2) + fill4() + p_wait(500) + fill4(0x43, 20) + p_wait(500) + p_keys(6, 2),
        # a full disk (ENOSPC at write), then a read that fails
        'tier-disk-full-read-fails': p_fault(1, 2, 1) + fill4() + p_wait(500) + p_fault(5, 2) + p_keys(6, 0) +
        p_wait(300) + p_keys(6, 1) + p_wait(300),
        # values with a TTL expire and are reclaimed
        'tier-ttl': p_put(0, 1, ttl=50) + p_put(1, 2, size_sel=3, ttl=3) + p_wait(300) + p_keys(6, 0) +
        p_keys(8, 1) + p_wait(300),
        # a wrong checksum: the disk writer refuses to persist the value
        'tier-bad-checksum': p_put(0, 1, good_sum=False) + fill4(0x44, 2)[len(p_put(0, 1)):] + p_wait(500) +
        p_keys(6, 0) + p_wait(300),
        # the clean stop: flush DRAM values to disk, then PEER_LEAVE
        'tier-leave-flush': p_put(0, 1, size_sel=3) + p_put(1, 2, size_sel=4) + p_leave() + p_wait(1000) +
        p_keys(6, 0) + p_wait(300),
    }


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if os.path.basename(os.path.normpath(out)) == 'peer':
        for name, body in peer_seeds().items():
            with open(os.path.join(out, name), 'wb') as f:
                f.write(body)
        return
    seeds = {
        'pre-hello-peer': frame(HELLO, hello()),
        'pre-hello-client': frame(HELLO, hello(role=3)),
        'pre-hello-then-proof': frame(HELLO, hello()) + frame(PROOF, b'\x22' * 32),
        'pre-hello-bad-role': frame(HELLO, hello(role=9)),
        'pre-hello-long-id': frame(HELLO, hello(node=b'n' * 65)),
        'pre-hello-payload': hdr(HELLO, len(hello()), payload_len=4) + hello() + b'xxxx',
        'pre-data-frame': frame(PING),
        'pre-version-2': frame(HELLO, hello(), version=2),
        'pre-version-4': frame(HELLO, hello(), version=4),
        'pre-hello-frame-mode': frame(HELLO, hello(integrity=1)),
        'pre-meta-too-big': hdr(PUT, 65537),
        'pre-two-hellos': frame(HELLO, hello()) + frame(HELLO, hello()),
        'pre-reject': frame(REJECT, status=-3),
        'pre-accept': frame(ACCEPT, b'\x33' * 32),
    }
    for name, body in seeds.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(b'\x00' + body)  # mode 0: unauthenticated, raw bytes


if __name__ == '__main__':
    main()

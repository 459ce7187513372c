#!/usr/bin/env python3
"""fuzz/mkseeds.py: structured seeds the fuzzer would take long to find by
itself: for fuzz_wire's unauthenticated mode (first byte even), byte streams
that start with a well-formed HELLO frame, so the decoder gets past the
magic, version and type checks before authentication.  The other seeds in
fuzz/corpus/ come from short runs (fuzz/README.md).

usage: python3 fuzz/mkseeds.py fuzz/corpus/wire
"""
import os
import struct
import sys

MAGIC = 0x314E564B  # "KVN1" little-endian
HELLO, CHALLENGE, PROOF, ACCEPT, REJECT, PING, PUT = 1, 2, 3, 4, 5, 16, 64


def hdr(typ, meta_len, payload_len=0, flags=0, status=0, corr=0, version=2):
    return struct.pack('<IBBHIiQQ', MAGIC, version, flags, typ, meta_len, status, payload_len, corr)


def frame(typ, meta=b'', **kw):
    return hdr(typ, len(meta), **kw) + meta


def hello(role=2, node=b'fz-node', nonce=b'\x11' * 32):
    return bytes([role]) + struct.pack('<H', len(node)) + node + nonce


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {
        'pre-hello-peer': frame(HELLO, hello()),
        'pre-hello-client': frame(HELLO, hello(role=3)),
        'pre-hello-then-proof': frame(HELLO, hello()) + frame(PROOF, b'\x22' * 32),
        'pre-hello-bad-role': frame(HELLO, hello(role=9)),
        'pre-hello-long-id': frame(HELLO, hello(node=b'n' * 65)),
        'pre-hello-payload': hdr(HELLO, len(hello()), payload_len=4) + hello() + b'xxxx',
        'pre-data-frame': frame(PING),
        'pre-version-3': frame(HELLO, hello(), version=3),
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

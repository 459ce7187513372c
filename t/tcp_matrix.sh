#!/bin/bash
# t/tcp_matrix.sh: the data-path tests again with client.local = off
# (KVN_TEST_CLIENT_LOCAL, read by t/proc.h's configs).  A client on the
# peer's host takes the same-host path by default (client.local = auto), so
# `make check` runs these programs over shared memory; this runs the same
# put / get / batch / lease / slot cases over TCP, so both transports stay
# covered.  (t/local checks which transport each run really took.)
. "$(dirname "$0")/lib.sh"

for t in store datapath slots lease client_async race tier_api linearize; do
	KVN_TEST_CLIENT_LOCAL=off "$BUILDDIR/t/$t" > "$TMP/$t.out" 2>&1
	rc=$?
	ok $rc "t/$t over TCP (client.local = off): $(grep -c '^ok' "$TMP/$t.out") passed, $(grep -c '^not ok' "$TMP/$t.out") failed"
	[ $rc -eq 0 ] || grep -A3 '^not ok' "$TMP/$t.out" | head -20 | sed 's/^/# /'
done
done_testing

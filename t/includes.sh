#!/bin/bash
# t/includes.sh: the folders of src/ include each other only downward
# (build-aux/check-includes.sh holds the allowed edges).  The check passes
# on the tree as it is, and fails, naming file, line and rule, on a copy of
# the tree with one violation planted at a time.
. "$(dirname "$0")/lib.sh"

CHECK="$SRCDIR/build-aux/check-includes.sh"

out=$(sh "$CHECK" "$SRCDIR/src" 2>&1)
ok $? "the tree follows the allowed include edges"
is "$out" "" "and the check prints nothing"

# plant FILE HEADER: a fresh copy of src/ with '#include "HEADER"' added as
# the last line of FILE; prints that line's number.
plant() {
	rm -rf "$TMP/src"
	cp -R "$SRCDIR/src" "$TMP/src"
	printf '#include "%s"\n' "$2" >> "$TMP/src/$1"
	wc -l < "$TMP/src/$1" | tr -d ' '
}

# expect_violation FILE HEADER FROM TO: the planted include is reported.
expect_violation() {
	local line out rc
	line=$(plant "$1" "$2")
	out=$(sh "$CHECK" "$TMP/src" 2>&1)
	rc=$?
	is "$rc" 1 "$3 -> $4 ($1 includes $2) fails the check"
	like "$out" "^src/$1:$line: $3 may not include $4 \\(\"$2\"\\)" "and names the file, the line and the rule"
	is "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" 1 "and reports that one edge only"
}

expect_violation store/alloc.c net/net.h store net
expect_violation store/keytab.c actors/actor.h store actors
expect_violation actors/actor.c net/net.h actors net
expect_violation actors/actor.h auth/auth.h actors auth
expect_violation net/conn.c master/master.h net master
expect_violation net/net.h client/client_int.h net client
expect_violation auth/tag.c net/net.h auth net
expect_violation base/util.c auth/auth.h base auth
expect_violation master/master.c peer/peer.h master peer
expect_violation peer/peer.c client/client.h peer client
expect_violation cli/cli.c master/master.h cli master
expect_violation cli/bench.c net/net.h cli net

# Allowed edges stay allowed: the top-level wiring may include anything.
plant kvnode.c store/store.h > /dev/null
sh "$CHECK" "$TMP/src" > /dev/null 2>&1
ok $? "kvnode.c may include any folder"
plant client/client.c store/store.h > /dev/null
sh "$CHECK" "$TMP/src" > /dev/null 2>&1
ok $? "a role may include store"

# A new folder needs a rule before anything in it is accepted.
rm -rf "$TMP/src"
cp -R "$SRCDIR/src" "$TMP/src"
mkdir "$TMP/src/tier"
printf '#include "base/base.h"\n' > "$TMP/src/tier/disk.c"
out=$(sh "$CHECK" "$TMP/src" 2>&1)
is $? 1 "a folder with no rule fails the check"
like "$out" "src/tier/disk.c: the folder \"tier\" has no rule" "and names the folder"

done_testing

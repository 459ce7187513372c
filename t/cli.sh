#!/bin/bash
# t/cli.sh: the command line: flags, roles, config errors, keygen, exit codes.
. "$(dirname "$0")/lib.sh"

"$KVNODE" --help > "$TMP/out" 2>&1
ok $? "--help exits 0"
like "$(cat "$TMP/out")" "peer.dram_size" "--help lists the config keys"
"$KVNODE" --version > "$TMP/out" 2>&1
ok $? "--version exits 0"
like "$(cat "$TMP/out")" "^kvnode [0-9]" "--version names the version"

"$KVNODE" --bogus > "$TMP/out" 2>&1
is $? 2 "an unknown flag exits 2"
like "$(cat "$TMP/out")" "unknown option '--bogus'" "and says which flag"
"$KVNODE" --role nosuch > "$TMP/out" 2>&1
is $? 2 "an unknown role exits 2"
like "$(cat "$TMP/out")" "unknown role 'nosuch'" "and names it"
"$KVNODE" --role client,master > "$TMP/out" 2>&1
is $? 2 "client cannot be combined with server roles"
"$KVNODE" --role client > "$TMP/out" 2>&1
is $? 2 "client without a command exits 2"
"$KVNODE" --role client frobnicate > "$TMP/out" 2>&1
is $? 2 "an unknown client command exits 2"
"$KVNODE" --role master extra > "$TMP/out" 2>&1
is $? 2 "a stray argument for a server role exits 2"
for args in "pin" "pin --ttl 0 k" "pin --ttl 11y k" "pin --ttl" "unpin" "evict" "evict -x" \
	"put k" "put --ttl 0 k f" "put --ttl soon k f" "put --durable --ttl"; do
	# shellcheck disable=SC2086
	"$KVNODE" --role client $args > "$TMP/out" 2>&1
	is $? 2 "client $args: usage, exit 2 (before any connection)"
	like "$(cat "$TMP/out")" "usage: kvnode --role client" "  and says how"
done

printf '[peer]\ndram_size = 12XB\n' > "$TMP/bad.conf"
"$KVNODE" --config "$TMP/bad.conf" > "$TMP/out" 2>&1
is $? 2 "a bad config value exits 2"
like "$(cat "$TMP/out")" "bad.conf:2: peer.dram_size = '12XB'" "naming file, line, key and value"
"$KVNODE" --config "$TMP/nonexistent.conf" > "$TMP/out" 2>&1
is $? 2 "a missing explicit config file exits 2"
"$KVNODE" --config "$SRCDIR/etc/kvnode.conf" --set peer.page_size=1KiB > "$TMP/out" 2>&1
is $? 2 "a bad --set exits 2"
like "$(cat "$TMP/out")" "peer.page_size" "and names the key"

"$KVNODE" keygen "$TMP/k.secret" > "$TMP/out" 2>&1
ok $? "keygen writes a secret"
is "$(stat -c %a "$TMP/k.secret")" 600 "mode 0600"
like "$(grep -v '^#' "$TMP/k.secret" | head -1)" "^[0-9a-f]{64}$" "32 random bytes, hex"
"$KVNODE" keygen "$TMP/k.secret" > "$TMP/out" 2>&1
ok $(( $? == 0 )) "keygen refuses to overwrite an existing secret"
"$KVNODE" keygen --rotate "$TMP/k.secret" > "$TMP/out" 2>&1
ok $? "keygen --rotate adds a secret"
is "$(grep -c '^[0-9a-f]\{64\}$' "$TMP/k.secret")" 2 "the file now holds two secrets"

"$KVNODE" --print-config example > "$TMP/example.conf"
cmp -s "$TMP/example.conf" "$SRCDIR/etc/kvnode.conf"
ok $? "etc/kvnode.conf is what the config table generates"
done_testing

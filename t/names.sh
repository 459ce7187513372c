#!/bin/bash
# t/names.sh: every global symbol the code defines carries its module's
# prefix (the house rule: public names say where they live).  Reads the
# objects of the server library with nm, maps each object back to its
# folder under src/, and checks the symbol against that folder's prefixes.
# The table below is the rule; a new folder needs a line in it.
. "$(dirname "$0")/lib.sh"

LIB="$BUILDDIR/.libs/libkvnserver.a"
if ! command -v nm > /dev/null; then
	skip "nm is not installed (binutils)"
	done_testing
fi
if [ ! -f "$LIB" ]; then
	ok 1 "the server library $LIB exists (build first)"
	done_testing
fi

# folder -> allowed prefixes (a regex alternation)
prefixes() {
	case $1 in
	base) echo 'kvn_|conf_' ;;
	auth) echo 'auth_' ;;
	actors) echo 'actor_' ;;
	net) echo 'net_|wire_|conn_|tcp_|proto_|sim_' ;;
	store) echo 'alloc_|keytab_|meta_|disk_' ;;
	master) echo 'master_|dbw_' ;;
	peer) echo 'peer_' ;;
	client) echo 'client_|kvn_' ;;
	embed) echo 'embed_|kvn_embed_' ;;
	http) echo 'http_' ;;
	resp) echo 'resp_' ;;
	*) echo '' ;;
	esac
}

# "object symbol" for every defined global symbol (functions and data);
# names starting with "__" are the compiler's and the sanitizers' own
# (__odr_asan.*, ...): C reserves them, so none of ours can have one.
nm -A -g --defined-only "$LIB" 2> /dev/null |
	awk 'NF >= 3 && $(NF-1) ~ /^[TDBRCV]$/ && $NF !~ /^__/ {
		o = $1; sub(/:[^:]*$/, "", o); sub(/.*:/, "", o); print o, $NF }' \
		> "$TMP/syms"
n=$(wc -l < "$TMP/syms" | tr -d ' ')
[ "$n" -gt 100 ]
ok $? "nm lists the library's global symbols ($n)"

# check FILE: every "object symbol" line of FILE whose symbol lacks its
# folder's prefix, as "src/FOLDER/FILE.c: SYMBOL lacks ..."
check() {
	local obj sym base folder pre
	while read -r obj sym; do
		base=${obj#libkvnserver_la-}
		base=${base%.o}
		folder=$(cd "$SRCDIR/src" && ls -d */"$base".c 2> /dev/null | head -1 | cut -d/ -f1)
		[ "$base" = sql_gen ] && folder=store # generated into the build tree
		pre=$(prefixes "${folder:-?}")
		if [ -z "$pre" ]; then
			echo "$obj: no folder with a prefix rule for $base.c"
		elif ! printf '%s\n' "$sym" | grep -Eq "^($pre)"; then
			echo "src/$folder/$base.c: $sym lacks a prefix of $folder ($pre)"
		fi
	done < "$1"
}

check "$TMP/syms" > "$TMP/bad"
is "$(wc -l < "$TMP/bad" | tr -d ' ')" 0 "every global symbol carries its module's prefix"
sed 's/^/#   /' "$TMP/bad"

# The check can fail: planted symbols named like another module's, or in
# a file of no known folder, are reported.
printf '%s\n' 'libkvnserver_la-keytab.o peer_oops' 'libkvnserver_la-conn.o fail_msg' \
	'libkvnserver_la-master.o kvn_helper' 'libkvnserver_la-peer.o peer_fine' \
	'libkvnserver_la-nosuchfile.o x_y' > "$TMP/planted"
out=$(check "$TMP/planted")
is "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" 4 "four planted names are reported, the fine one is not"
like "$out" "src/store/keytab.c: peer_oops lacks a prefix of store" "a store symbol named peer_oops"
like "$out" "src/net/conn.c: fail_msg lacks a prefix of net" "an unprefixed net symbol"
like "$out" "src/master/master.c: kvn_helper lacks a prefix of master" "a master symbol in base's namespace"
like "$out" "nosuchfile.o: no folder with a prefix rule" "an object of no known folder"

done_testing

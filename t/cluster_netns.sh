#!/bin/bash
# t/cluster_netns.sh: README.md's "A cluster on several hosts", run as
# written.  Four network namespaces (master, peer1, peer2, client), each
# with its own address on a random 10.x.y.0/24, joined by veth pairs to a
# bridge in a fifth, stand for the four hosts.  The config files and the
# commands are read from the README's fenced blocks in that section (the
# first line of each says on which hosts it runs), never copied here, so
# the README cannot drift from what is tested.  Substituted: MASTER_IP,
# PEER1_IP, PEER2_IP, CLIENT_IP by the namespaces' addresses;
# /var/lib/kvnode by a directory per host (the "hosts" share one file
# system); `scp HOST_IP:PATH` by a copy into that host's directory.  Added
# to the README's commands, for a short run: a small peer.dram_size and a
# short master.node_timeout (--set).
#
# Then: puts and gets from the client across both peers, kill -9 of one
# peer, and what `stat` and the client say about it and its keys.
#
# `t/cluster_netns.sh --commands` prints the README commands this test runs
# (t/docs.sh counts them as covered).  Needs root and `ip netns`; else the
# test is skipped.
SELF=$0
README=${KVN_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/README.md

# recipe: the section's fenced blocks, one record each:
#   "@@ LANG HOST..." (from the block's first line, "# HOST, HOST: what"),
# then its lines (sh: the commands, comments and blank lines dropped, a
# trailing "  # comment" cut, as t/docs.sh reads them), then "@@ end".
recipe() {
	perl -0777 -ne '
		/^## A cluster on several hosts\n(.*?)(?=^## |\z)/ms or die "no section\n";
		my $sec = $1;
		while ($sec =~ /^```(\w+)\n(.*?)^```/msg) {
			my ($lang, $body) = ($1, $2);
			my @l = split /\n/, $body;
			my $head = shift @l;
			$head =~ /^# ([^:(]+)/ or die "block without a host line: $head\n";
			my @hosts = grep { /^(master|peer1|peer2|client)$/ } split /[ ,]+/, $1;
			@hosts or die "no host in: $head\n";
			print "@@ $lang @hosts\n";
			for (@l) {
				if ($lang eq "sh") {
					next if /^\s*(#|$)/;
					s/\s+#\s.*$//;
					s/\s+$//;
				}
				print "$_\n";
			}
			print "@@ end\n";
		}
	' "$README"
}

if [ "${1:-}" = --commands ]; then
	recipe | awk '/^@@ sh /{sh=1; next} /^@@ /{sh=0; next} sh'
	exit
fi

skip_all() { echo "1..0 # SKIP $1"; exit 0; }
[ "$(id -u)" = 0 ] || skip_all "needs root (ip netns add)"
command -v ip > /dev/null 2>&1 || skip_all "no ip command (iproute2)"

KVN_TEST_TIMEOUT=${KVN_TEST_TIMEOUT:-90}
. "$(dirname "$0")/lib.sh"

HOSTS="master peer1 peer2 client"
NSP=kvnt$$
SUB=10.$((200 + RANDOM % 51)).$((RANDOM % 256))
NSES=""

netns_cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	for ns in $NSES; do ip netns del "$ns" 2>/dev/null; done
}
trap 'netns_cleanup; cleanup' EXIT

# ---- the network: one namespace per host, a bridge in a fifth --------------------
# namespaces left by a run of this test that was killed (-9: no trap ran)
for ns in $(ip netns list 2> /dev/null | grep -o '^kvnt[0-9]*-[a-z0-9]*'); do
	p=${ns#kvnt}
	kill -0 "${p%%-*}" 2> /dev/null || ip netns del "$ns" 2> /dev/null
done
if ! ip netns add "$NSP-br" 2> "$TMP/err"; then
	echo "1..0 # SKIP ip netns add failed: $(head -1 "$TMP/err")"
	exit 0
fi
NSES="$NSP-br"
if ! ip netns exec "$NSP-br" true 2> "$TMP/err"; then
	echo "1..0 # SKIP ip netns exec failed: $(head -1 "$TMP/err")"
	exit 0
fi
net() { # net CMD...: one setup step; a failure fails the test at once
	"$@" 2> "$TMP/err" && return 0
	ok 1 "network setup: $*"
	sed 's/^/#   /' "$TMP/err"
	done_testing
}
net ip -n "$NSP-br" link set lo up
net ip -n "$NSP-br" link add br0 type bridge
net ip -n "$NSP-br" link set br0 up
i=2
for h in $HOSTS; do
	ns=$NSP-$h
	net ip netns add "$ns"
	NSES="$NSES $ns"
	net ip -n "$ns" link set lo up
	net ip -n "$NSP-br" link add "v-$h" type veth peer name eth0 netns "$ns"
	net ip -n "$NSP-br" link set "v-$h" master br0 up
	net ip -n "$ns" addr add "$SUB.$i/24" dev eth0
	net ip -n "$ns" link set eth0 up
	eval "IP_$h=$SUB.$i"
	echo "$SUB.$i $h" >> "$TMP/hosts"
	mkdir -p "$TMP/$h"
	i=$((i + 1))
done
ok 0 "namespaces $NSP-{$(echo $HOSTS | tr ' ' ,)} on $SUB.0/24, bridged in $NSP-br"

# ---- what the README's commands find on PATH -----------------------------------
mkdir -p "$TMP/bin"
ln -s "$KVNODE" "$TMP/bin/kvnode"
# scp between the "hosts": HOST_IP:PATH is PATH in that host's directory.
# The path arrives substituted for the host running scp ($TMP/RUNNER/...).
cat > "$TMP/bin/scp" <<'SCP'
#!/bin/bash
set -e
flags=
while [ $# -gt 0 ]; do case $1 in -p) flags=-p; shift ;; -*) shift ;; *) break ;; esac; done
args=("$@"); dest=${args[-1]}; unset 'args[-1]'
ip=${dest%%:*}; path=${dest#*:}
target=$(awk -v ip="$ip" '$1 == ip { print $2 }' "$KVN_CL_TMP/hosts")
[ -n "$target" ] || { echo "scp: no host $ip" >&2; exit 1; }
exec cp $flags "${args[@]}" "${path/#$KVN_CL_TMP\/$KVN_CL_HOST\//$KVN_CL_TMP/$target/}"
SCP
chmod +x "$TMP/bin/scp"
export PATH="$TMP/bin:$PATH" KVN_CL_TMP=$TMP

# subst HOST: the README's placeholders, for that host
subst() {
	sed -e "s/MASTER_IP/$IP_master/g" -e "s/PEER1_IP/$IP_peer1/g" -e "s/PEER2_IP/$IP_peer2/g" \
		-e "s/CLIENT_IP/$IP_client/g" -e "s#/var/lib/kvnode#$TMP/$1/var#g"
}
# on HOST CMD: run the shell command CMD in HOST's namespace and directory
on() {
	local h=$1
	shift
	(cd "$TMP/$h" && KVN_CL_HOST=$h ip netns exec "$NSP-$h" bash -c "$*") < /dev/null
}
# Short runs: the README's defaults otherwise (1 GiB of DRAM touched per
# peer, a 10 s node timeout)
EXTRA_master="--set master.node_timeout=3s"
EXTRA_peer="--set peer.dram_size=${KVN_CLUSTER_DRAM:-64MiB} --set peer.hugepages=off"

# ---- the recipe, block by block -------------------------------------------------
head -c 100000 /dev/urandom > "$TMP/client/some.bin" # the file the README's put stores
recipe > "$TMP/recipe" 2> "$TMP/err"
ok $? "README.md has the section 'A cluster on several hosts', every block naming its hosts"
[ -s "$TMP/err" ] && sed 's/^/#   /' "$TMP/err"
conf_hosts=""
run_block() { # run_block LANG HOSTS (the block's lines in $TMP/block)
	local lang=$1 hosts=$2 h cmd role
	if [ "$lang" = ini ]; then
		for h in $hosts; do
			subst "$h" < "$TMP/block" > "$TMP/$h/kvnode.conf"
			conf_hosts="$conf_hosts $h"
			grep -q '^\[' "$TMP/$h/kvnode.conf" && ! grep -q '_IP' "$TMP/$h/kvnode.conf"
			ok $? "README: $h's kvnode.conf, its placeholders filled in"
		done
		return
	fi
	while IFS= read -r cmd; do
		for h in $hosts; do
			role=$(printf '%s\n' "$cmd" | sed -n 's/^kvnode --role \(master\|peer\) .*/\1/p')
			if [ -n "$role" ]; then
				eval "extra=\$EXTRA_$role"
				: > "$TMP/$h.log"
				# exec all the way down: $! is the kvnode process
				(cd "$TMP/$h" && exec ip netns exec "$NSP-$h" bash -c \
					"exec $(subst "$h" <<< "$cmd") $extra") < /dev/null > "$TMP/$h.log" 2>&1 &
				PIDS="$PIDS $!"
				eval "PID_$h=$!"
				if [ "$role" = master ]; then
					wait_log "$h" "kvnode ready" 20
				else
					wait_log "$h" "INFO +\[[a-z]+\] attached to the master" 20
				fi
				ok $? "README, on $h: '$cmd' starts and logs what the README says"
			else
				on "$h" "$(subst "$h" <<< "$cmd")" > "$TMP/out" 2> "$TMP/err"
				is $? 0 "README, on $h: '$cmd' exits 0"
				sed 's/^/#   /' "$TMP/err" | head -5
				cp "$TMP/out" "$TMP/out.$(printf '%s' "$cmd" | tr -c 'a-z0-9' _)"
			fi
		done
	done < "$TMP/block"
}
while IFS= read -r line; do
	case $line in
	"@@ end") run_block "$lang" "$hosts" ;;
	"@@ "*)
		set -- $line
		lang=$2
		shift 2
		hosts="$*"
		: > "$TMP/block"
		;;
	*) printf '%s\n' "$line" >> "$TMP/block" ;;
	esac
done < "$TMP/recipe"
is "$(echo $conf_hosts | tr ' ' '\n' | sort | tr '\n' ' ')" "client master peer1 peer2 " \
	"the README shows the config of every host"

# what the recipe's own steps promised
like "$(cat "$TMP/master.log")" "created peer secret file $TMP/master/var/peer.secret" \
	"the master created the peer secret, where the README copies it from"
for h in peer1 peer2; do
	# (beside the same-host sockets peer.sock and peer.sock.map)
	is "$(cd "$TMP/$h/var" 2> /dev/null && ls | grep -v '^peer\.sock' | tr '\n' ' ')" "client.secret peer.secret " \
		"$h holds peer.secret and client.secret"
done
is "$(cd "$TMP/client/var" 2> /dev/null && ls)" "client.secret" "the client holds client.secret only"
is "$(stat -c %a "$TMP/client/var/client.secret")" 600 "  mode 0600"
like "$(cat "$TMP"/out.*ping)" "2 peer\\(s\\) attached" "the client's ping sees both peers"
cmp -s "$TMP/client/some.bin" "$TMP/client/copy.bin" 2> /dev/null
ok $? "the client's get returned what its put stored"

# a peer without client.secret (the README's first complaint) does not start
# and says what it lacks: a second peer on peer1, its own data_dir
on peer1 "kvnode --role peer --config kvnode.conf --set node.data_dir=$TMP/peer1/var2 \
	--set auth.peer_secret_file=$TMP/peer1/var/peer.secret --set peer.listen=0.0.0.0:7402 $EXTRA_peer" \
	> "$TMP/out" 2> "$TMP/err"
is $? 1 "a peer without client.secret exits 1 at start"
like "$(cat "$TMP/err")" "auth.client_secret_file: $TMP/peer1/var2/client.secret: cannot open" \
	"  naming the file"
like "$(cat "$TMP/err")" "a peer needs two secret files from its master: peer.secret .* and client.secret" \
	"  and which files a peer needs"

# ---- stat, in one place (its format is the CLI's) --------------------------------
# stat_col NODE COL: from `kvnode --role client stat`, NODE's column COL:
# alive (yes/no), objects, address
stat_now() { on client "kvnode --role client --config kvnode.conf stat" > "$TMP/stat" 2>&1; }
stat_col() {
	awk -v n="$1" -v c="$2" '
		$1 == "node" && $3 == "alive" { hdr = 1; next }
		hdr && $1 == n { if (c == "address") print $2; else if (c == "alive") print $3; else print $NF }
	' "$TMP/stat"
}

# ---- puts and gets from the client across both peers --------------------------------
cli() { on client "kvnode --role client --config kvnode.conf $*" > "$TMP/out" 2> "$TMP/err"; }
N=40
bad=0
for k in $(seq 1 $N); do
	echo "value of key-$k" > "$TMP/client/v"
	cli put "key-$k" ./v || bad=$((bad + 1))
done
is "$bad" 0 "the client put $N keys"
bad=0
for k in $(seq 1 $N); do
	cli get "key-$k" && [ "$(cat "$TMP/out")" = "value of key-$k" ] || bad=$((bad + 1))
done
is "$bad" 0 "and got each back, byte for byte"
stat_now
ok $? "stat from the client exits 0"
for h in peer1 peer2; do
	is "$(stat_col "$h" alive)" yes "stat: $h alive"
	is "$(stat_col "$h" address)" "$(eval echo \$IP_$h):7401" "  at the address it advertises"
	n=$(stat_col "$h" objects)
	[ "${n:-0}" -gt 0 ] 2> /dev/null
	ok $? "  holding some of the values (objects: ${n:-?})"
done
sed 's/^/#   /' "$TMP/stat"
# which keys peer2 holds, from the master's metadata (a read while it runs)
DB=$TMP/master/var/master.db
ON2=$(sqlite3 "$DB" "select key from v_objects where node_id = 'peer2' and state = 'live' and key like 'key-%'")
ON1=$(sqlite3 "$DB" "select key from v_objects where node_id = 'peer1' and state = 'live' and key like 'key-%'")
is "$(echo $ON1 $ON2 | wc -w)" "$N" "master.db places each key on peer1 or peer2"
K2=$(echo $ON2 | cut -d' ' -f1)
K1=$(echo $ON1 | cut -d' ' -f1)

# ---- kill -9 of peer2 ---------------------------------------------------------------
kill -9 "$PID_peer2"
wait "$PID_peer2" 2> /dev/null
# before master.node_timeout: the master still routes K2 to peer2, which does
# not answer: "peer unavailable", exit 4 (docs/operations.md)
cli get "$K2"
st=$?
sed 's/^/#   /' "$TMP/err"
if grep -q "declared dead" "$TMP/master.log"; then
	skip "the master declared peer2 dead before the get (a slow machine): 'peer unavailable' not seen"
else
	is "$st" 4 "a get of $K2 (on peer2) right after kill -9 exits 4"
	like "$(cat "$TMP/err")" "peer unavailable" "  'peer unavailable'"
fi

wait_log master "node peer2 silent for [0-9]+ ms: declared dead" 15
ok $? "the master declares peer2 dead after master.node_timeout"
stat_now
ok $? "stat exits 0 with a dead peer"
is "$(stat_col peer2 alive)" no "stat: peer2 not alive"
is "$(stat_col peer1 alive)" yes "stat: peer1 alive"
sed 's/^/#   /' "$TMP/stat"
cli get "$K2"
is $? 1 "a get of $K2, whose only copy was on peer2, exits 1"
like "$(cat "$TMP/err")" "key not found" "  'key not found'"
bad=0
for k in $ON1; do
	cli get "$k" && [ "$(cat "$TMP/out")" = "value of $k" ] || bad=$((bad + 1))
done
is "$bad" 0 "every key on peer1 ($(echo $ON1 | wc -w)) still reads, byte for byte"
cli put after-kill ./v
is $? 0 "a new put succeeds (on peer1)"
cli get after-kill
is "$(cat "$TMP/out")" "value of key-$N" "  and reads back"
[ -n "$K1" ]
ok $? "(peer1 held $K1 and more)"

done_testing

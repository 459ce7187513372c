#!/bin/bash
# t/http_page.sh: the master's status page (GET /, docs/monitoring.md) in a
# real browser: Debian's chromium, headless, loads the page of a running
# all-in-one node with a second, peer-only node attached, runs its script
# and dumps the DOM it built.  Checked: a row per node of the cluster with
# its state, DRAM and disk capacity bars carrying the nodes' sizes, the
# refresh counter advanced at least twice, and the node saw the page's
# repeated /status.json requests (its own counter in /metrics).  This test
# installs nothing: without /usr/bin/chromium it skips (./bootstrap test
# installs it).
. "$(dirname "$0")/lib.sh"

CHROMIUM=${KVN_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
	echo "1..0 # SKIP chromium not installed ($CHROMIUM; ./bootstrap test installs it)"
	exit 0
fi
if ! command -v curl > /dev/null; then
	echo "1..0 # SKIP curl not installed"
	exit 0
fi

MP=$(free_port); PP=$(free_port); MH=$(free_port); PH=$(free_port)
write_conf "$TMP/a.conf" "$MP" "$PP" "[peer]" "dram_size = 64MiB" "hugepages = off"
start aio --config "$TMP/a.conf" --set "master.http=127.0.0.1:$MH" --set "peer.http=127.0.0.1:$PH"
wait_log aio "kvnode ready" 20
ok $? "an all-in-one node starts with its HTTP endpoints"

# a second node: peer only, with a disk tier, attached to the first
PP2=$(free_port)
write_conf "$TMP/b.conf" "$MP" "$PP2" "[peer]" "dram_size = 32MiB" "hugepages = off" "disk_size = 16MiB" \
	"disk_dir = $TMP/disk-b"
mkdir -p "$TMP/var-b"
start p2 --role peer --config "$TMP/b.conf" --set node.id=page-peer2 --set "node.data_dir=$TMP/var-b" \
	--set "auth.peer_secret_file=$TMP/var/peer.secret" --set "auth.client_secret_file=$TMP/var/client.secret"
wait_log p2 "attached to the master" 20
ok $? "a peer-only node attaches to it"
wait_until 15 client "$TMP/a.conf" ping
echo hello > "$TMP/v"
client "$TMP/a.conf" put page-k1 "$TMP/v"
ok $? "a put, so there is an object to count"

before=$(curl -s "http://127.0.0.1:$MH/metrics" |
	awk '$1 == "kvnode_http_requests_total{path=\"/status.json\",code=\"2xx\"}" { print $2 }')
is "$before" 0 "no /status.json request before the browser came"

# every=500: the page fetches /status.json every 500 ms; the virtual time
# budget lets its timers run about 8 s of page time (network waits included)
timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions \
	--user-data-dir="$TMP/chromium" --virtual-time-budget=8000 --dump-dom \
	"http://127.0.0.1:$MH/?every=500" > "$TMP/dom.html" 2> "$TMP/chromium.log"
ok $? "chromium loads the page and dumps its DOM"

rows=$(grep -o '<tr class="node" data-node="[^"]*"' "$TMP/dom.html" | sed 's/.*data-node="//; s/"$//' | sort | tr '\n' ' ')
like "$rows" "page-peer2" "the page has a row for the peer-only node ($rows)"
is "$(grep -o '<tr class="node"' "$TMP/dom.html" | wc -l)" 2 "and one for the all-in-one node's peer: 2 rows"
like "$(cat "$TMP/dom.html")" '<td class="state-up">up</td>' "rows show the nodes' state"
like "$(cat "$TMP/dom.html")" 'class="bar" data-used="[0-9]+" data-total="67108864"' \
	"a DRAM capacity bar of the 64 MiB node"
like "$(cat "$TMP/dom.html")" 'class="bar" data-used="[0-9]+" data-total="33554432"' \
	"a DRAM capacity bar of the 32 MiB node"
like "$(cat "$TMP/dom.html")" 'class="bar" data-used="[0-9]+" data-total="16777216"' \
	"a disk capacity bar of the 16 MiB disk tier"
like "$(cat "$TMP/dom.html")" '<b id="objects">1</b>' "the object count"
like "$(cat "$TMP/dom.html")" '<b id="health" class="">ok</b>' "the master's health"
count=$(grep -o 'id="refreshes" data-count="[0-9]*"' "$TMP/dom.html" | tr -dc '0-9')
ok $(( ${count:-0} >= 2 ? 0 : 1 )) "the page refreshed itself at least twice (${count:-none})"
like "$(cat "$TMP/dom.html")" '<b id="updated">20[0-9][0-9]-[0-9-]+T' "and says when it last did"
like "$(cat "$TMP/dom.html")" '<span id="error" class="bad"></span>' "no refresh failed"

after=$(curl -s "http://127.0.0.1:$MH/metrics" |
	awk '$1 == "kvnode_http_requests_total{path=\"/status.json\",code=\"2xx\"}" { print $2 }')
ok $(( ${after:-0} >= 2 && ${after:-0} >= ${count:-0} ? 0 : 1 )) \
	"the node served the page's repeated /status.json requests (${after:-none})"

stop p2
stop aio
is "$STATUS" 0 "the node stops cleanly"
done_testing

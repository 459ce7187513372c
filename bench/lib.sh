# lib.sh: what bench/vs-peers.sh and bench/cpu-per-op.sh share: checks of
# the build, a temp dir removed on exit, free loopback ports, starting
# kvnode, redis and memcached there and waiting (bounded) until each
# answers, and stopping every process started.  Sourced, not run: the caller
# sets ME (its name, for messages), BUILD, DRAM, KEEP and READY_TIMEOUT
# first, and may set KV_MODES (integrity modes, default "header").
# POSIX sh + awk only.
KV=$BUILD/kvnode
[ -x "$KV" ] || { echo "$ME: $KV not found or not executable (use -b BUILDDIR)" >&2; exit 2; }
case $KV in *[[:space:]]*) echo "$ME: the build dir path may not contain spaces" >&2; exit 2 ;; esac
have() { command -v "$1" >/dev/null 2>&1; }
have timeout || { echo "$ME: needs timeout(1) from coreutils" >&2; exit 2; }
# --foreground: Ctrl-C reaches the child at once (timeout would otherwise put
# it in its own process group and the trap would wait for the run to end).
TMO="timeout --foreground -k 5"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvn-$ME.XXXXXX") || exit 1
PIDS=

say() { printf '%s\n' "$*" >&2; }

# Alive and not a zombie (a killed child stays a zombie until we exit).
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ]
}

stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	n=0
	while alive "$1" && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	return 0
}

cleanup() {
	trap - EXIT INT TERM HUP PIPE
	for p in $PIDS; do stop_pid "$p"; done
	if [ $KEEP = 1 ]; then say "$ME: kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE # e.g. piped into head: a signal death would skip cleanup

# PORT = a port no socket uses now (and not handed out before).  The server
# that gets it then tries to bind it; if someone took it in between, the
# caller retries with another (start_* below).  Sets a variable rather than
# printing, so TAKEN survives (no subshell).
TAKEN=
PORT=
pick_port() {
	i=0
	while [ $i -lt 100 ]; do
		i=$((i + 1))
		r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		p=$((20000 + r % 40000))
		case " $TAKEN " in *" $p "*) continue ;; esac
		hex=$(printf '%04X' "$p")
		if ! awk -v h="$hex" 'FNR > 1 { n = split($2, a, ":"); if (a[n] == h) f = 1 } END { exit !f }' \
			/proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			TAKEN="$TAKEN $p"
			PORT=$p
			return 0
		fi
	done
	return 1
}

# wait_ready NAME PID LOG TARGET CLIENT...: a one-item put through the same
# client until it succeeds, the server dies, or READY_TIMEOUT passes.
wait_ready() {
	name=$1 pid=$2 log=$3 spec=$4
	shift 4
	deadline=$(($(date +%s) + READY_TIMEOUT))
	while [ "$(date +%s)" -lt $deadline ]; do
		alive "$pid" || { say "$ME: $name exited; last lines of $log:"; tail -n 5 "$log" >&2; return 1; }
		if $TMO 10 "$@" bench --target "$spec" --op put --size 1 --count 1 --keys 1 \
			--timeout 2s </dev/null >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	say "$ME: $name did not answer within ${READY_TIMEOUT}s; last lines of $log:"
	tail -n 5 "$log" >&2
	return 1
}

# check_modes LIST: each of LIST an auth.integrity mode or local, else exit 2.
check_modes() {
	[ -n "$1" ] || { echo "$ME: no integrity mode given" >&2; exit 2; }
	for m in $1; do
		case $m in header | frame | local) ;; *) echo "$ME: unknown mode '$m' (header, frame or local)" >&2; exit 2 ;; esac
	done
}

# start_kvnode MODE: an all-in-one node whose cluster runs auth.integrity =
# MODE, in its own data dir.  The mode is in the config file, not a --set, so
# the bench client reads the same one (a mismatch is refused at attach).
# Its clients use loopback TCP (client.local = off), except for MODE local:
# integrity header, and the clients take the same-host shared-memory path
# (client.local = auto), so the two compare on one machine in one run.
# Sets KV_CLIENT and KV_PID, and KV_CLIENT_<MODE> and KV_PID_<MODE>.
# KVN_BENCH_SET="key=value ..." (environment): more --set options for the
# node, e.g. "peer.io_threads=1" to compare loop counts in the same minutes.
KV_CLIENT=
start_kvnode() {
	mode=${1:-header}
	integrity=$mode local=off
	[ "$mode" = local ] && integrity=header local=auto
	kv_sets=
	for s in ${KVN_BENCH_SET:-}; do kv_sets="$kv_sets --set $s"; done
	try=0
	while [ $try -lt 5 ]; do
		try=$((try + 1))
		pick_port && mp=$PORT && pick_port && pp=$PORT || return 1
		conf=$TMP/kvnode-$mode.conf
		mkdir -p "$TMP/kvdata-$mode"
		cat >"$conf" <<EOF
[node]
data_dir = $TMP/kvdata-$mode
[auth]
integrity = $integrity
[master]
listen = 127.0.0.1:$mp
http =
[peer]
listen = 127.0.0.1:$pp
http =
master = 127.0.0.1:$mp
[client]
master = 127.0.0.1:$mp
local = $local
EOF
		"$KV" --role master,peer --config "$conf" --set "peer.dram_size=$DRAM" \
			--set node.max_value_size=64MiB $kv_sets >"$TMP/kvnode-$mode.log" 2>&1 &
		pid=$!
		KV_PID=$pid
		PIDS="$PIDS $pid"
		KV_CLIENT="$KV --role client --config $conf"
		eval "KV_CLIENT_$mode=\$KV_CLIENT KV_PID_$mode=\$KV_PID" # mode: checked by check_modes
		# shellcheck disable=SC2086
		wait_ready "kvnode ($mode)" "$pid" "$TMP/kvnode-$mode.log" kvnode $KV_CLIENT && return 0
		stop_pid "$pid"
		grep -qi 'in use' "$TMP/kvnode-$mode.log" || return 1
	done
	return 1
}

REDIS_ADDR=
start_redis() {
	have redis-server || { say "$ME: redis-server not installed (apt-get install redis-server)"; return 1; }
	try=0
	while [ $try -lt 5 ]; do
		try=$((try + 1))
		pick_port || return 1
		p=$PORT
		redis-server --save '' --appendonly no --port "$p" --bind 127.0.0.1 \
			--daemonize no >"$TMP/redis.log" 2>&1 &
		pid=$!
		REDIS_PID=$pid
		PIDS="$PIDS $pid"
		REDIS_ADDR=127.0.0.1:$p
		wait_ready redis "$pid" "$TMP/redis.log" "redis://$REDIS_ADDR" "$KV" --role client &&
			return 0
		stop_pid "$pid"
		grep -qi 'in use' "$TMP/redis.log" || return 1
	done
	return 1
}

MC_ADDR=
start_memcached() {
	have memcached || { say "$ME: memcached not installed (apt-get install memcached)"; return 1; }
	user=
	[ "$(id -u)" = 0 ] && user="-u root" # memcached refuses root without -u
	try=0
	while [ $try -lt 5 ]; do
		try=$((try + 1))
		pick_port || return 1
		p=$PORT
		# shellcheck disable=SC2086
		memcached -m 4096 -p "$p" -U 0 -I 32m -l 127.0.0.1 $user >"$TMP/memcached.log" 2>&1 &
		pid=$!
		MC_PID=$pid
		PIDS="$PIDS $pid"
		MC_ADDR=127.0.0.1:$p
		wait_ready memcached "$pid" "$TMP/memcached.log" "memcached://$MC_ADDR" \
			"$KV" --role client && return 0
		stop_pid "$pid"
		grep -qi 'in use' "$TMP/memcached.log" || return 1
	done
	return 1
}

# cpu_model: this machine's CPU and whether it has the vector units the
# tag and checksum code can use (Poly1305 and XXH3 run much faster with
# AVX2 and again with AVX-512).
cpu_model() {
	awk -F': *' '/^model name/ && !m { m = $2 }
		/^flags/ && !f { f = " " $2 " " }
		END { printf "%s, avx2 %s, avx512f %s\n", m == "" ? "unknown CPU" : m,
			index(f, " avx2 ") ? "yes" : "no", index(f, " avx512f ") ? "yes" : "no" }' /proc/cpuinfo 2>/dev/null
}

# The field of a one-line JSON object (numbers and plain strings only).
jget() {
	printf '%s\n' "$1" | awk -v k="\"$2\":" '{
		i = index($0, k); if (!i) { print "-"; exit }
		v = substr($0, i + length(k)); sub(/[,}].*/, "", v); gsub(/"/, "", v); print v }'
}

# start_targets LIST: start each of LIST (kvnode, redis, memcached); ACTIVE
# = the ones that answer, kvnode as kvnode-MODE, one node per mode of
# KV_MODES.  One that does not is named and sets FAILED=1.
ACTIVE=
start_targets() {
	for t in $1; do
		case $t in
		kvnode)
			for m in ${KV_MODES:-header}; do
				if start_kvnode "$m"; then
					ACTIVE="$ACTIVE kvnode-$m"
				else
					say "$ME: kvnode ($m) could not be started: its results stay empty"
					FAILED=1
				fi
			done
			continue ;;
		redis) start_redis && ACTIVE="$ACTIVE redis" ;;
		memcached) start_memcached && ACTIVE="$ACTIVE memcached" ;;
		esac
		case " $ACTIVE " in *" $t "*) ;; *) say "$ME: $t could not be started: its results stay empty"; FAILED=1 ;; esac
	done
	say "$ME: targets up:${ACTIVE:- none}"
}

# An awk function for the result tables: median(s) of the numbers in the
# space-separated string s ("" if none).  Prepend it to a program.
AWK_MEDIAN='
function median(s,   n, a, i, j, t) {
	n = split(s, a, " ")
	if (n == 0) return ""
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
'

# t/lib.sh: helpers for the shell tests (TAP).  Sourced by t/*.sh.
#
# Every test gets a private temp dir, a watchdog that kills the test (and so
# fails it) after KVN_TEST_TIMEOUT seconds, and a cleanup trap that kills
# every kvnode it started, whatever happens.
set -u

BUILDDIR=${KVN_BUILDDIR:-$(cd "$(dirname "$0")/.." && pwd)}
SRCDIR=${KVN_SRCDIR:-$BUILDDIR}
KVNODE="$BUILDDIR/kvnode"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvn-test.XXXXXX")
PIDS=""
T_N=0
T_FAILED=0

cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	[ -n "${WATCHDOG:-}" ] && { pkill -P "$WATCHDOG" 2>/dev/null; kill "$WATCHDOG" 2>/dev/null; }
	if [ "$T_FAILED" -gt 0 ] && [ -d "$TMP" ]; then
		for f in "$TMP"/*.log; do
			[ -f "$f" ] || continue
			echo "# ---- $f (last 20 lines)"
			tail -n 20 "$f" | sed 's/^/#   /'
		done
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT
trap 'echo "not ok - watchdog: the test ran over ${KVN_TEST_TIMEOUT:-180} s"; exit 1' TERM

# The watchdog must not hold the TAP pipe open (the driver waits for EOF).
( exec >/dev/null 2>&1; sleep "${KVN_TEST_TIMEOUT:-180}" && kill -TERM $$ ) &
WATCHDOG=$!

ok() { # ok STATUS DESCRIPTION: STATUS 0 passes
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAILED=$((T_FAILED + 1))
	fi
}
is() { # is GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got '$1', want '$2'"; fi
}
like() { # like TEXT REGEX DESCRIPTION
	if printf '%s' "$1" | grep -Eq -- "$2"; then ok 0 "$3"; else ok 1 "$3"; echo "#   '$1' does not match /$2/"; fi
}
skip() { T_N=$((T_N + 1)); echo "ok $T_N # SKIP $1"; }
done_testing() { echo "1..$T_N"; [ "$T_FAILED" -eq 0 ]; exit $?; }

# A TCP port nobody listens on (bash's /dev/tcp: connect fails = free).
EPH_LO=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "${EPH_LO:-0}" -ge 12000 ] 2>/dev/null || EPH_LO=32768
free_port() {
	local p i
	for i in $(seq 1 200); do
		# below the ephemeral range: outgoing connections of tests running
		# beside this one never hold such a port
		p=$(( (RANDOM * 32768 + RANDOM) % (${EPH_LO:-32768} - 10000) + 10000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			case " ${USED_PORTS:-} " in *" $p "*) continue ;; esac
			USED_PORTS="${USED_PORTS:-} $p"
			echo "$p"
			return 0
		fi
	done
	return 1
}

# write_conf FILE MASTER_PORT PEER_PORT [extra lines...]
write_conf() {
	local f=$1 mp=$2 pp=$3
	shift 3
	cat > "$f" <<CONF
[node]
data_dir = $TMP/var
log_level = info
[master]
listen = 127.0.0.1:$mp
node_timeout = 3s
http =
[peer]
listen = 127.0.0.1:$pp
master = 127.0.0.1:$mp
http =
dram_size = ${KVN_TEST_DRAM:-128MiB}
heartbeat_interval = 200ms
[client]
master = 127.0.0.1:$mp
timeout = 5s
CONF
	for l in "$@"; do echo "$l" >> "$f"; done
}

# start NAME ARGS...: run kvnode in the background, log to $TMP/NAME.log
start() {
	local name=$1
	shift
	# now, not in the background job: a wait_log right after must not find
	# the previous run's "ready" line
	: > "$TMP/$name.log"
	"$KVNODE" "$@" > "$TMP/$name.log" 2>&1 &
	local pid=$!
	PIDS="$PIDS $pid"
	eval "PID_$name=$pid"
}

# wait_log NAME REGEX [SECONDS]: until the log matches (0) or time runs out (1)
wait_log() {
	local i
	for i in $(seq 1 $((${3:-10} * 20))); do
		grep -Eq -- "$2" "$TMP/$1.log" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# wait_until SECONDS CMD...: retry CMD until it succeeds or time runs out
wait_until() {
	local secs=$1 i
	shift
	for i in $(seq 1 $((secs * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# stop NAME [SIG]: signal it and wait (bounded) for it to exit; its exit
# status goes to $STATUS (254: had to be killed after 10 s).  Not in $(...):
# only this shell can reap its children.
stop() {
	local pid i
	eval "pid=\${PID_$1:-}"
	STATUS=255
	[ -n "$pid" ] || return
	kill -"${2:-TERM}" "$pid" 2>/dev/null
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		# a zombie counts as exited
		[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && break
		sleep 0.1
	done
	# one look: alive and not a zombie.  (kill -0 then ps raced: bash may
	# reap the zombie between the two, and an empty ps read as "alive".)
	local st
	st=$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)
	if [ -n "$st" ] && [ "$st" != Z ]; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		STATUS=254
		return
	fi
	wait "$pid" 2>/dev/null
	STATUS=$?
}

client() { # client CONF ARGS...: run a client command, stdout/stderr to $TMP/out, $TMP/err
	local conf=$1
	shift
	"$KVNODE" --role client --config "$conf" "$@" > "$TMP/out" 2> "$TMP/err"
}

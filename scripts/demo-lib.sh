# Parent-side client of the demo enclave app (guest/demo/demo.c, docs/demo.md), sourced by
# scripts/demo-inside.sh and tests/e2e/test_4*.sh. Plain bash: the requests go through
# `cloister vsock-forward` (a local TCP port → the enclave's vsock port 5000) and bash's
# /dev/tcp, so no interpreter starts per request (python3 takes ~8 s to start in a nested
# parent instance). One request per connection, as the app serves them.
#
#   demo_forward_start (--uds PATH | --enclave-id ID)   sets DEMO_PORT, DEMO_FWD_PID
#   demo_forward_stop
#   demo_req LINE          prints the answer: the echo for ECHO, the text after "OK " otherwise;
#                          status 0, or 1 after "ERR …" (printed on stderr), 2 unreachable
#   demo_attest NONCE_HEX [USER_DATA_HEX] OUT   writes the document, prints its length
#   demo_wait SECONDS      until the app answers ECHO; prints the seconds it took
#   hex_of STRING          the string's bytes in lowercase hex
#   sha384_extend OLD_HEX DATA_HEX   SHA-384(old ‖ data) in hex, by openssl (not by cloister)
#   json_str FILE KEY      "KEY": "value" from cloister's pretty-printed JSON (first match)

: "${DEMO_CLI:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/src/cli/cloister}"
DEMO_PORT=
DEMO_FWD_PID=
DEMO_TIMEOUT=${DEMO_TIMEOUT:-60}

demo_forward_start() {
	local try
	for try in 1 2 3 4 5; do
		DEMO_PORT=$((20000 + RANDOM % 20000))
		"$DEMO_CLI" vsock-forward "$@" --tcp-listen "127.0.0.1:$DEMO_PORT" --vsock-port 5000 \
			2>>"${DEMO_FWD_LOG:-/dev/null}" &
		DEMO_FWD_PID=$!
		# Listening once a connection is accepted (the enclave side may still refuse).
		for _ in $(seq 50); do
			kill -0 "$DEMO_FWD_PID" 2>/dev/null || break
			if (exec 9<>"/dev/tcp/127.0.0.1/$DEMO_PORT") 2>/dev/null; then
				return 0
			fi
			sleep 0.1
		done
		kill "$DEMO_FWD_PID" 2>/dev/null
		wait "$DEMO_FWD_PID" 2>/dev/null
	done
	DEMO_FWD_PID=
	echo "demo: cloister vsock-forward $* did not start" >&2
	return 2
}

demo_forward_stop() {
	[ -n "$DEMO_FWD_PID" ] || return 0
	kill "$DEMO_FWD_PID" 2>/dev/null
	wait "$DEMO_FWD_PID" 2>/dev/null
	DEMO_FWD_PID=
}

# _demo_open LINE: connect, send LINE, read the answer line into DEMO_ANSWER (fd in DEMO_FD).
_demo_open() {
	DEMO_ANSWER=
	# (a bare "exec … 2>/dev/null" would silence this shell's stderr for good)
	{ exec {DEMO_FD}<>"/dev/tcp/127.0.0.1/$DEMO_PORT"; } 2>/dev/null || return 2
	printf '%s\n' "$1" >&"$DEMO_FD" 2>/dev/null || { _demo_close; return 2; }
	# bash reads sockets byte by byte, so nothing after the line is consumed here.
	IFS= read -r -t "$DEMO_TIMEOUT" DEMO_ANSWER <&"$DEMO_FD" || { _demo_close; return 2; }
}

_demo_close() {
	exec {DEMO_FD}>&-
}

demo_req() {
	local verb=${1%% *} rc
	_demo_open "$1" || return 2
	_demo_close
	if [ "$verb" = ECHO ]; then
		printf '%s\n' "$DEMO_ANSWER"
		return 0
	fi
	case $DEMO_ANSWER in
	OK) return 0 ;;
	"OK "*) printf '%s\n' "${DEMO_ANSWER#OK }"; rc=0 ;;
	"ERR "*) printf '%s\n' "${DEMO_ANSWER#ERR }" >&2; rc=1 ;;
	*) echo "demo: malformed answer '$DEMO_ANSWER'" >&2; rc=2 ;;
	esac
	return $rc
}

demo_attest() {
	local nonce=$1 ud=${3:+$2} out=${3:-$2} n
	_demo_open "ATTEST $nonce${ud:+ $ud}" || return 2
	case $DEMO_ANSWER in
	"OK "*) n=${DEMO_ANSWER#OK } ;;
	"ERR "*) _demo_close; echo "${DEMO_ANSWER#ERR }" >&2; return 1 ;;
	*) _demo_close; echo "demo: malformed answer '$DEMO_ANSWER'" >&2; return 2 ;;
	esac
	head -c "$n" <&"$DEMO_FD" >"$out"
	_demo_close
	if [ "$(stat -c %s "$out")" != "$n" ]; then
		echo "demo: the document was cut short ($(stat -c %s "$out") of $n bytes)" >&2
		return 2
	fi
	echo "$n"
}

demo_wait() {
	local deadline=$((SECONDS + $1)) start=$EPOCHREALTIME got
	while [ $SECONDS -lt $deadline ]; do
		if got=$(DEMO_TIMEOUT=5 demo_req "ECHO ping" 2>/dev/null) && [ "$got" = ping ]; then
			awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", b - a }'
			return 0
		fi
		sleep 0.2
	done
	echo "demo: the app did not answer on vsock port 5000 within $1 s" >&2
	return 2
}

hex_of() {
	printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
}

sha384_extend() {
	perl -e 'print pack("H*", $ARGV[0]), pack("H*", $ARGV[1])' "$1" "$2" |
		openssl dgst -sha384 -r | cut -d' ' -f1
}

json_str() {
	sed -n "s/^ *\"$2\": \"\\{0,1\\}\\([^\",]*\\)\"\\{0,1\\},\\{0,1\\}\$/\\1/p" "$1" | head -1
}

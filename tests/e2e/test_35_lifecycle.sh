#!/usr/bin/env bash
# e2e-timeout: 900
# The nitro-cli lifecycle through the real commands (installed name nitro-cli): allocator →
# run-enclave (JSON, stderr lines, heartbeat) → describe-enclaves → vsock echo over the
# enclave's socket → console → two enclaves at once (distinct CIDs and CPUs) → pool exhausted
# (E22 CPUs, E27 memory, nothing leaked) → terminate → the enclave process SIGKILLed (next
# describe shows it gone, its CPUs and memory reusable) → E44 for a production enclave's
# console → the console of an ended enclave still readable.
. "$(dirname "$0")/monitor-lib.sh"

client=$top/tests/e2e/vsock_client.py
nitro=$build/src/cli/nitro-cli
kernel=$(enclave_kernel) || { fail "no enclave kernel (scripts/fetch-kernel.sh enclave)"; finish; }
lc=$work/lifecycle
rm -rf "$lc" && mkdir -p "$lc" || exit 1
export NITRO_CLI_SOCKETS_PATH=$lc/run NITRO_CLI_LOGS_PATH=$lc/log CLOISTER_CA_DIR=$lc/ca

# The vsock test init (heartbeat, echo on 5000, "quit" on 5001) with this kernel's modules.
build_vsock_initrd "$lc" "$kernel" || { fail "cannot build the vsock initramfs"; finish; }
eif=$lc/app.eif
make_eif "$eif" "console=ttyS0 panic=-1 reboot=k quiet" "$kernel" "$lc/initrd.cpio" ||
	{ fail "cannot build the EIF"; finish; }

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
grants() { ls "$NITRO_CLI_SOCKETS_PATH/enclaves" 2>/dev/null | grep -c '\.grant$'; }
hp_free() { cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages; }

# --- the pool: every CPU but CPU 0 (a single core each here), 512 MiB
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { fail "the parent instance has $ncpu CPU; need 2 or more"; finish; }
printf -- '---\nmemory_mib: 512\ncpu_pool: 1-%d\n' $((ncpu - 1)) >"$lc/allocator.yaml"

# run-enclave before the allocator: E19 naming the fix
"$nitro" run-enclave --eif-path "$eif" --memory 256 --cpu-count 1 >"$lc/o" 2>"$lc/e"
rc=$?
if [ $rc -eq 19 ] && grep -q 'cloister allocator' "$lc/e"; then
	pass "no pool: E19 naming 'cloister allocator'"
else
	fail "no pool: exit $rc: $(head -1 "$lc/e")"
fi

if "$cloister" allocator --config "$lc/allocator.yaml" >"$lc/alloc.out" 2>&1; then
	pass "allocator: $(tail -1 "$lc/alloc.out")"
else
	fail "allocator failed: $(cat "$lc/alloc.out")"
	finish
fi
hp0=$(hp_free)

# --- run-enclave
run() { # NAME ARGS...: run-enclave, stdout to $lc/NAME.json, stderr to $lc/NAME.err
	local n=$1
	shift
	"$nitro" run-enclave --eif-path "$eif" "$@" >"$lc/$n.json" 2>"$lc/$n.err"
}
if run a --memory 256 --cpu-count 1 --debug-mode --enclave-name alpha; then
	pass "run-enclave: $(tr -d '\n ' <"$lc/a.json")"
else
	fail "run-enclave exit $?: $(cat "$lc/a.err")"
	tail -20 "$NITRO_CLI_LOGS_PATH"/*.log
	"$cloister" allocator --release >/dev/null 2>&1
	finish
fi
id_a=$(json "$lc/a.json" 'd["EnclaveID"]')
cid_a=$(json "$lc/a.json" 'd["EnclaveCID"]')
pid_a=$(json "$lc/a.json" 'd["ProcessID"]')
cpus_a=$(json "$lc/a.json" 'd["CPUIDs"]')
keys=$(json "$lc/a.json" '",".join(d.keys())')
[ "$keys" = "EnclaveName,EnclaveID,ProcessID,EnclaveCID,NumberOfCPUs,CPUIDs,MemoryMiB" ] &&
	pass "run-enclave JSON keys in nitro-cli's order" || fail "run-enclave JSON keys: $keys"
if grep -qxF 'Start allocating memory...' "$lc/a.err" &&
	grep -qxF "Started enclave with enclave-cid: $cid_a, memory: 256 MiB, cpu-ids: $cpus_a" "$lc/a.err"; then
	pass "run-enclave stderr lines as nitro-cli"
else
	fail "run-enclave stderr: $(cat "$lc/a.err")"
fi
[ "$(json "$lc/a.json" 'd["EnclaveName"]')" = alpha ] && [ "$cid_a" -ge 4 ] &&
	kill -0 "$pid_a" 2>/dev/null && pass "name alpha, CID $cid_a, enclave process $pid_a alive" ||
	fail "name/CID/ProcessID wrong: $(cat "$lc/a.json")"
# The enclave process is the small cloister-enclave program, not the CLI with its image-building
# libraries (nitro/enclave.h).
exe_a=$(readlink "/proc/$pid_a/exe")
maps_a=$(awk '{print $6}' "/proc/$pid_a/maps" | sort -u)
case $exe_a in
*/cloister-enclave)
	echo "$maps_a" | grep -qE 'libarchive|libxml2|libicu|libstdc' &&
		fail "the enclave process maps CLI-only libraries: $(echo "$maps_a" | grep -E 'libarchive|libxml2|libicu|libstdc' | tr '\n' ' ')" ||
		pass "enclave process $pid_a runs cloister-enclave, without the CLI's image libraries" ;;
*) fail "enclave process $pid_a runs $exe_a, not cloister-enclave" ;;
esac

# --- describe-enclaves
"$nitro" describe-enclaves >"$lc/d1.json" 2>"$lc/d1.err"
if [ "$(json "$lc/d1.json" 'len(d)')" = 1 ] &&
	[ "$(json "$lc/d1.json" 'd[0]["EnclaveID"]+" "+d[0]["State"]+" "+d[0]["Flags"]')" = "$id_a RUNNING DEBUG_MODE" ]; then
	pass "describe-enclaves: $id_a RUNNING DEBUG_MODE"
else
	fail "describe-enclaves: $(cat "$lc/d1.json" "$lc/d1.err")"
fi
pcr0_eif=$("$cloister" describe-eif --eif-path "$eif" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Measurements"]["PCR0"])')
[ "$(json "$lc/d1.json" 'd[0]["Measurements"]["PCR0"]')" = "$pcr0_eif" ] &&
	pass "describe-enclaves Measurements = describe-eif's (not zeroed in debug mode)" ||
	fail "describe-enclaves PCR0 differs from describe-eif's"

# --- describe-enclaves --metadata: the EIF's identity, as describe-eif shows it
"$nitro" describe-enclaves --metadata >"$lc/dm.json" 2>&1
want=$("$cloister" describe-eif --eif-path "$eif" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("ImageName"))')
[ "$(json "$lc/dm.json" 'd[0].get("ImageName")')" = "$want" ] &&
	[ "$(json "$lc/dm.json" '"Metadata" in d[0]')" = True ] &&
	pass "describe-enclaves --metadata: ImageName $want and Metadata" ||
	fail "describe-enclaves --metadata: $(head -c 400 "$lc/dm.json")"

# --- vsock: the enclave's echo server through <state>/<EnclaveID>.vsock
uds=$NITRO_CLI_SOCKETS_PATH/$id_a.vsock
if out=$(timeout 120 python3 "$client" echo "$uds" 5000 2 $((1 << 20))); then
	pass "vsock over $uds: $out"
else
	fail "vsock echo: $out"
fi

# --- console (debug mode): streams ttyS0, stops at --disconnect-timeout
timeout 30 "$nitro" console --enclave-id "$id_a" --disconnect-timeout 2 >"$lc/console.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "Connecting to the console for enclave $cid_a" "$lc/console.out" &&
	grep -q serving "$lc/console.out"; then
	pass "console: connected, shows the enclave's ttyS0"
else
	fail "console exit $rc: $(head -5 "$lc/console.out")"
fi

# --- a second enclave at once (needs a second pool CPU), then the pool is exhausted
if [ "$ncpu" -ge 3 ]; then
	if run b --memory 256 --cpu-count 1 --enclave-name alpha --enclave-cid 42; then
		cid_b=$(json "$lc/b.json" 'd["EnclaveCID"]')
		cpus_b=$(json "$lc/b.json" 'd["CPUIDs"]')
		name_b=$(json "$lc/b.json" 'd["EnclaveName"]')
		if [ "$cid_b" = 42 ] && [ "$cpus_b" != "$cpus_a" ] && [ "$name_b" = alpha_1 ]; then
			pass "two enclaves: CIDs $cid_a/$cid_b, CPUs $cpus_a/$cpus_b, names alpha/$name_b"
		else
			fail "second enclave clashes: $(cat "$lc/b.json")"
		fi
		[ "$("$nitro" describe-enclaves | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] &&
			pass "describe-enclaves lists both" || fail "describe-enclaves does not list both"
		g=$(grants)
		run c --memory 128 --cpu-count 1
		rc=$?
		[ $rc -eq 22 ] && [ "$(grants)" = "$g" ] &&
			pass "pool CPUs exhausted: E22, nothing leaked ($g grants)" ||
			fail "third enclave: exit $rc, grants $(grants) (want E22, $g): $(head -1 "$lc/c.err")"
		"$nitro" terminate-enclave --enclave-name alpha_1 >"$lc/tb.json" 2>"$lc/tb.err"
		rc=$?
		[ $rc -eq 0 ] && grep -q '"Terminated": true' "$lc/tb.json" &&
			grep -q "^Successfully terminated enclave" "$lc/tb.err" &&
			pass "terminate-enclave --enclave-name alpha_1" ||
			fail "terminate alpha_1: exit $rc $(cat "$lc/tb.err")"
		run x --memory 128 --cpu-count 1 --enclave-cid "$cid_a"
		rc=$?
		[ $rc -ne 0 ] && [ "$(grants)" = 1 ] &&
			pass "CID $cid_a in use: refused (exit $rc: $(head -1 "$lc/x.err" | cut -c1-80)), nothing leaked" ||
			fail "a second enclave with CID $cid_a: exit $rc, grants $(grants)"
	else
		fail "second enclave: exit $?: $(cat "$lc/b.err")"
	fi
else
	echo "note: $ncpu CPUs: one pool CPU only, so no second enclave (tests/e2e/run uses 3)"
	run c --memory 128 --cpu-count 1
	rc=$?
	[ $rc -eq 22 ] && [ "$(grants)" = 1 ] && pass "pool CPUs exhausted: E22, nothing leaked" ||
		fail "second enclave on a full pool: exit $rc (want 22): $(head -1 "$lc/c.err")"
fi

# --- memory budget exhausted: 256 MiB of 512 used, ask for 512 → E27, nothing leaked
if [ "$ncpu" -ge 3 ]; then
	run m --memory 512 --cpu-count 1
	rc=$?
	[ $rc -eq 27 ] && [ "$(grants)" = 1 ] && pass "pool memory exhausted: E27, nothing leaked" ||
		fail "memory exhaustion: exit $rc grants $(grants): $(head -1 "$lc/m.err")"
fi

# --- wrong uid may describe but not terminate
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$nitro" terminate-enclave --enclave-id "$id_a" >/dev/null 2>"$lc/nobody.err"
	rc=$?
	[ $rc -ne 0 ] && kill -0 "$pid_a" 2>/dev/null && pass "another user cannot terminate (exit $rc)" ||
		fail "uid nobody terminated the enclave (exit $rc)"
fi

# --- the enclave process SIGKILLed: gone at the next describe, resources free
kill -9 "$pid_a"
for _ in $(seq 50); do kill -0 "$pid_a" 2>/dev/null || break; sleep 0.1; done
"$nitro" describe-enclaves >"$lc/d2.json" 2>&1
[ "$(tr -d ' \n' <"$lc/d2.json")" = "[]" ] && [ "$(grants)" = 0 ] &&
	[ ! -e "$NITRO_CLI_SOCKETS_PATH/$(printf %s "$id_a" | sed 's/.*-enc//').sock" ] &&
	[ ! -e "$NITRO_CLI_SOCKETS_PATH/$id_a.vsock" ] &&
	pass "SIGKILL: describe-enclaves shows [] and the grant, control and vsock sockets are gone" ||
	fail "after SIGKILL: $(cat "$lc/d2.json"), grants $(grants)"
[ -s "$NITRO_CLI_LOGS_PATH/$id_a.log" ] && pass "the enclave process logged to $id_a.log" ||
	fail "no enclave process log $NITRO_CLI_LOGS_PATH/$id_a.log"
[ "$(hp_free)" = "$hp0" ] && pass "SIGKILL: all hugepages free again ($hp0)" ||
	fail "hugepages after SIGKILL: $(hp_free) free, want $hp0"

# --- the console of the ended enclave stays readable (beyond nitro-cli)
timeout 10 "$nitro" console --enclave-id "$id_a" >"$lc/console2.out" 2>&1 &&
	grep -q serving "$lc/console2.out" && pass "console of an ended enclave still readable" ||
	fail "console of the ended enclave: $(head -3 "$lc/console2.out")"

# --- the same CPU again, production mode: console refused with E44; terminate --all
if run p --memory 256 --cpu-ids ${cpus_a//[\[\] ]/}; then
	pass "CPU $cpus_a reusable after the SIGKILL"
	"$nitro" console --enclave-name app >"$lc/c44.out" 2>&1
	rc=$?
	[ $rc -eq 44 ] && pass "console of a production enclave: E44" ||
		fail "console of a production enclave: exit $rc"
	[ "$(json "$lc/p.json" 'd["EnclaveName"]')" = app ] && pass "default name from the EIF file" ||
		fail "default name: $(json "$lc/p.json" 'd["EnclaveName"]')"
	"$nitro" terminate-enclave --all >"$lc/ta.json" 2>"$lc/ta.err"
	rc=$?
	[ $rc -eq 0 ] && [ "$(grants)" = 0 ] && [ "$(hp_free)" = "$hp0" ] &&
		pass "terminate-enclave --all: grants and hugepages back" ||
		fail "terminate --all: exit $rc grants $(grants) hugepages $(hp_free)/$hp0"
else
	fail "run after SIGKILL: $(cat "$lc/p.err")"
fi
# --- two run-enclave calls at the same time never get the same CPU
if [ "$ncpu" -ge 3 ]; then
	run p1 --memory 128 --cpu-count 1 --enclave-name p1 &
	j1=$!
	run p2 --memory 128 --cpu-count 1 --enclave-name p2 &
	j2=$!
	wait $j1; r1=$?
	wait $j2; r2=$?
	if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] &&
		[ "$(json "$lc/p1.json" 'd["CPUIDs"]')" != "$(json "$lc/p2.json" 'd["CPUIDs"]')" ] &&
		[ "$(json "$lc/p1.json" 'd["EnclaveCID"]')" != "$(json "$lc/p2.json" 'd["EnclaveCID"]')" ]; then
		pass "concurrent run-enclave: CPUs $(json "$lc/p1.json" 'd["CPUIDs"]')/$(json "$lc/p2.json" 'd["CPUIDs"]')"
	else
		fail "concurrent run-enclave: exit $r1/$r2: $(cat "$lc/p1.err" "$lc/p2.err" | grep -m2 E)"
	fi
	"$nitro" terminate-enclave --all >/dev/null 2>&1
	[ "$(grants)" = 0 ] || fail "grants left after terminate --all: $(grants)"
fi

# --- run-enclave --attach-console: the console follows until the guest powers off by itself
timeout 400 "$nitro" run-enclave --eif-path "$eif" --memory 256 --cpu-count 1 --attach-console \
	>"$lc/ac.out" 2>"$lc/ac.err" &
acpid=$!
for _ in $(seq 2400); do grep -q serving "$lc/ac.out" 2>/dev/null && break; kill -0 $acpid 2>/dev/null || break; sleep 0.1; done
id_c=$("$nitro" describe-enclaves | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0]["EnclaveID"] if d else "")')
if grep -q "Successfully connected to the console." "$lc/ac.out" && grep -q serving "$lc/ac.out" && [ -n "$id_c" ]; then
	pass "run-enclave --attach-console streams the console ($id_c)"
	python3 "$client" quit "$NITRO_CLI_SOCKETS_PATH/$id_c.vsock" >/dev/null
	wait $acpid
	rc=$?
	[ $rc -eq 0 ] && [ "$(grants)" = 0 ] && [ "$(hp_free)" = "$hp0" ] &&
		pass "guest power-off: --attach-console returned 0, grant and hugepages back" ||
		fail "after guest power-off: exit $rc, grants $(grants), hugepages $(hp_free)/$hp0"
else
	fail "run-enclave --attach-console: $(tail -3 "$lc/ac.err" "$lc/ac.out")"
	kill $acpid 2>/dev/null
	"$nitro" terminate-enclave --all >/dev/null 2>&1
fi

"$nitro" describe-enclaves | grep -qx '\[\]' && pass "describe-enclaves: []" ||
	fail "describe-enclaves not empty at the end"

"$cloister" allocator --release >/dev/null 2>&1
finish

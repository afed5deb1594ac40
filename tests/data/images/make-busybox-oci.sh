#!/usr/bin/env bash
# Usage: tests/data/images/make-busybox-oci.sh OUT_DIR [EXIT_STATUS]
# Builds a tiny linux/amd64 OCI image layout at OUT_DIR without Docker or any registry: one
# layer with the static busybox (Debian's busybox-static) and its applet links, plus
# /bin/hello, which greets, shows its environment and working directory, and exits with
# EXIT_STATUS (default 0). Cmd ["/bin/hello"], Env PATH and GREETING, WorkingDir /srv.
# Reproducible: fixed mtimes, owners and order, gzip without a name or time stamp.
# Also writes OUT_DIR.tar (the same layout as an oci-archive) and OUT_DIR.docker.tar (the image
# as `docker save` < v25 writes it, layers named by nothing but the config's diff_ids).
# IMAGE_CONFIG, if set, replaces the config JSON verbatim (tests use it for broken images).
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [EXIT_STATUS]}
status=${2:-0}
# A dynamic busybox names its ELF interpreter (/lib64/ld-linux…); a static one does not.
busybox=""
for b in "$(command -v busybox || true)" /bin/busybox /usr/bin/busybox; do
	if [ -n "$b" ] && [ -x "$b" ] && ! LC_ALL=C grep -qa '/lib64/ld-linux' "$b"; then
		busybox=$b
		break
	fi
done
[ -n "$busybox" ] || {
	echo "need a static busybox (apt-get install busybox-static)" >&2
	exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/srv" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in sh echo cat ls env pwd sleep mount uname; do
	ln -s busybox "$root/bin/$applet"
done
cat >"$root/bin/hello" <<SH
#!/bin/sh
echo "\$GREETING from the enclave: pid \$\$, cwd \$(pwd), kernel \$(uname -r)"
env | sort
exit $status
SH
chmod 0755 "$root/bin/hello"
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"

config='{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","GREETING=Hello"],"Cmd":["/bin/hello"],"WorkingDir":"/srv"},"rootfs":{"type":"layers","diff_ids":["@DIFF_ID@"]},"history":[{"created_by":"tests/data/images/make-busybox-oci.sh"}]}'
# shellcheck source=oci-layout.sh
. "$(dirname "$0")/oci-layout.sh"
oci_layout "$root" "$out" "${IMAGE_CONFIG:-$config}"
echo "$out"

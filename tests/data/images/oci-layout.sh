# Sourced by the make-*-oci.sh scripts: oci_layout ROOTFS_DIR OUT_DIR CONFIG_JSON
# Writes a one-layer linux/amd64 OCI image layout at OUT_DIR (ref name "latest"), the same
# layout as the oci-archive OUT_DIR.tar, and the same image as `docker save` (< v25) writes
# it, OUT_DIR.docker.tar: manifest.json, <image id>.json, <diff_id hex>/layer.tar
# (uncompressed). In CONFIG_JSON the text @DIFF_ID@ becomes the layer's diff_id.
# Reproducible: sorted entries, mtime 0, owner 0:0, gzip -n.
oci_layout() {
	local root=$1 out=$2 config=$3 work diff_id layer config_blob manifest
	work=$(mktemp -d)
	blob() { # FILE → "sha256:<hex> <size>", moving FILE into the layout
		local hex size
		hex=$(sha256sum "$1" | cut -d' ' -f1)
		size=$(stat -c %s "$1")
		mv "$1" "$out/blobs/sha256/$hex"
		echo "sha256:$hex $size"
	}
	rm -rf "$out"
	mkdir -p "$out/blobs/sha256"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$root" -cf "$work/layer.tar" .
	diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
	gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
	read -r layer_digest layer_size < <(blob "$work/layer.tar.gz")
	printf '%s' "${config//@DIFF_ID@/$diff_id}" >"$work/config.json"
	read -r config_digest config_size < <(blob "$work/config.json")
	printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"'"$config_digest"'","size":'"$config_size"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"'"$layer_digest"'","size":'"$layer_size"'}]}' >"$work/manifest.json"
	read -r manifest_digest manifest_size < <(blob "$work/manifest.json")
	printf '%s\n' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"'"$manifest_digest"'","size":'"$manifest_size"',"annotations":{"org.opencontainers.image.ref.name":"latest"},"platform":{"architecture":"amd64","os":"linux"}}]}' >"$out/index.json"
	printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$out" -cf "$out.tar" .
	local dk=$work/docker id=${config_digest#sha256:} lid=${diff_id#sha256:}
	mkdir -p "$dk/$lid"
	mv "$work/layer.tar" "$dk/$lid/layer.tar"
	cp "$out/blobs/sha256/$id" "$dk/$id.json"
	printf '%s' '[{"Config":"'"$id"'.json","RepoTags":null,"Layers":["'"$lid"'/layer.tar"]}]' >"$dk/manifest.json"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dk" \
		-cf "$out.docker.tar" manifest.json "$id.json" "$lid"
	rm -rf "$work"
}

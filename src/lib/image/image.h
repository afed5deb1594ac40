/* SPDX-License-Identifier: Apache-2.0 */
#ifndef CLOISTER_LIB_IMAGE_H
#define CLOISTER_LIB_IMAGE_H

/*
 * Turning application images into the two EIF ramdisks (docs/build-enclave.md).
 *
 * The centre is struct img_tree: an in-memory index of a file system (paths, modes, owners,
 * symlink targets, device numbers) whose file contents sit in one anonymous, already-unlinked
 * spool file. Image layers are streamed into it entry by entry (whiteouts and opaque
 * directories applied against lower layers), and the tree is then written as a reproducible
 * cpio "newc" archive. Nothing is ever extracted onto the host file system, so a hostile
 * layer cannot escape through "..", absolute paths or symlinks, and building needs no root
 * for device nodes or ownership.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

struct archive;
struct img_app;

enum image_error {
	IMAGE_OK = 0,
	IMAGE_ERR_NOMEM,
	IMAGE_ERR_IO, /* reading or writing a host file failed */
	IMAGE_ERR_ARCHIVE, /* libarchive could not read or write an archive */
	IMAGE_ERR_UNSAFE_PATH, /* "..", a path through a symlink or a file, a bad whiteout */
	IMAGE_ERR_FORMAT, /* malformed image layout, manifest or config JSON */
	IMAGE_ERR_NOT_FOUND, /* a named blob, layer, tag or file is missing */
	IMAGE_ERR_UNSUPPORTED, /* e.g. an arm64 image, an unknown media type */
	IMAGE_ERR_DIGEST, /* a blob's bytes do not match its sha256 digest */
	IMAGE_ERR_NO_COMMAND, /* neither Cmd nor Entrypoint, and no --cmd */
};

const char *image_strerror(enum image_error e);

/* ---- the in-memory tree ---------------------------------------------------------------- */

struct img_tree;

/* Create an empty tree. Its spool lives in $TMPDIR (default /tmp) as an unlinked file. */
enum image_error img_tree_new(struct img_tree **out, struct cl_diag *d);
void img_tree_free(struct img_tree *t);

/*
 * Add entries. @path is relative ("rootfs/usr/bin"), normalised like layer paths (leading
 * "/" and "./" dropped, "." components removed, ".." refused). Missing parent directories are
 * created with mode 0755; a parent that exists but is not a directory is an
 * IMAGE_ERR_UNSAFE_PATH. @mode holds permission bits only (07777); owner is uid/gid 0.
 * Adding over an existing entry replaces it (a directory over a directory keeps children).
 */
enum image_error img_tree_add_dir(struct img_tree *t, const char *path, unsigned mode,
                                  struct cl_diag *d);
enum image_error img_tree_add_file(struct img_tree *t, const char *path, unsigned mode,
                                   const void *data, size_t len, struct cl_diag *d);
/* Copy the contents of the host file @host_path (followed if a symlink) into the tree. */
enum image_error img_tree_add_host_file(struct img_tree *t, const char *path, unsigned mode,
                                        const char *host_path, struct cl_diag *d);
enum image_error img_tree_add_symlink(struct img_tree *t, const char *path, const char *target,
                                      struct cl_diag *d);
/*
 * Copy the host directory @host_dir (recursively, symlinks kept as symlinks and never
 * followed) under @prefix. Owners become 0:0 (the builder's uid means nothing in the enclave);
 * modes, symlink targets, FIFOs, device numbers and hard links are kept; sockets are skipped.
 */
enum image_error img_tree_add_host_dir(struct img_tree *t, const char *prefix, const char *host_dir,
                                       struct cl_diag *d);

/*
 * Apply one image layer, a tar stream already opened for reading in @a, under @prefix (the
 * OCI layer semantics: `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq` empties its
 * directory of lower-layer entries, hard links share their target's inode and bytes).
 * @layer numbers layers from 1 upwards in application order. Owners and modes come from the
 * tar headers. Returns IMAGE_ERR_UNSAFE_PATH for "..", entries through a symlink or a file,
 * and malformed whiteouts; IMAGE_ERR_ARCHIVE for a corrupt stream.
 */
enum image_error img_tree_apply_layer(struct img_tree *t, const char *prefix, struct archive *a,
                                      unsigned layer, struct cl_diag *d);

/* Whether @path exists (after normalisation); if so and @mode is not NULL, its st_mode. */
bool img_tree_lookup(const struct img_tree *t, const char *path, unsigned *mode);
/* Number of live entries. */
size_t img_tree_count(const struct img_tree *t);

/*
 * Write the tree to @fd as a cpio "newc" archive that depends only on the tree: entries sorted
 * by path (so parents precede children), every mtime = @mtime, inode numbers 1, 2, … in that
 * order, nlink 1 (2 for directories), no block padding after the trailer. Hard-linked files
 * share the first member's inode number with nlink = their count, and only the first member
 * carries the bytes, as the kernel's initramfs unpacker expects. Returns the number of bytes
 * written in *written if not NULL.
 */
enum image_error img_tree_write_cpio(const struct img_tree *t, int64_t mtime, int fd,
                                     uint64_t *written, struct cl_diag *d);

/*
 * Normalise a layer or tree path into @out (@cap bytes). The empty result means the root.
 * Returns IMAGE_ERR_UNSAFE_PATH for a ".." component or an over-long path.
 */
enum image_error img_path_normalize(const char *in, char *out, size_t cap, struct cl_diag *d);

/* ---- reading OCI / Docker images ---------------------------------------------------------- */

/* What build-enclave needs from an image config (OCI image-spec "config" / docker inspect). */
struct img_config {
	char **entrypoint, **cmd, **env; /* NULL-terminated; NULL when absent */
	size_t n_entrypoint, n_cmd, n_env;
	char *workdir; /* NULL when absent */
	char *architecture, *os;
	/*
	 * rootfs.diff_ids: "sha256:<64 hex>" of each layer's uncompressed tar stream, in
	 * application order (NULL-terminated). NULL when the config has no rootfs or no
	 * diff_ids; an empty vector when it lists none.
	 */
	char **diff_ids;
	size_t n_diff_ids;
};

/*
 * Parse an image config JSON document (@len bytes, untrusted). Unknown keys are ignored;
 * wrong types for the keys above are IMAGE_ERR_FORMAT. A missing "config" object is allowed
 * (all fields absent), and so is a missing "rootfs" (the image reader decides whether it can
 * do without diff_ids); a present rootfs must have type "layers" and diff_ids that are all
 * "sha256:" and 64 lower-case hex digits. Strings with NUL bytes are refused.
 */
enum image_error img_config_parse(const uint8_t *json, size_t len, struct img_config *c,
                                  struct cl_diag *d);
void img_config_free(struct img_config *c);

/*
 * The app nitro-cli would run for this config (nitro-compat §2.10): argv = Cmd, or Entrypoint
 * when there is no Cmd (never both joined); env = Env; workdir = WorkingDir. The strings stay
 * owned by @c. *both_set tells the caller the image had both, so it can warn.
 */
enum image_error img_config_app(const struct img_config *c, struct img_app *app, bool *both_set,
                                struct cl_diag *d);

/* One image manifest: the config blob and the layer blobs in application order. */
struct img_manifest {
	char *config; /* digest "sha256:<hex>" (OCI) or member path (docker-archive) */
	char **layers;
	size_t n_layers;
};
void img_manifest_free(struct img_manifest *m);

/*
 * Untrusted-JSON parsers behind the image reader (each a plain byte-buffer function, fuzzed by
 * fuzz/fuzz_image_json.c):
 *  - img_index_select: an OCI index.json or image index; picks the entry whose
 *    "org.opencontainers.image.ref.name" annotation equals @ref (or ends in ":" @ref), else
 *    the only entry, else the linux/amd64 one. *digest receives "sha256:<hex>" (caller
 *    frees), *is_index whether it names a nested index to select from again.
 *  - img_manifest_parse: an OCI / Docker v2 image manifest.
 *  - img_docker_manifest_parse: docker-archive's manifest.json; entry whose RepoTags holds
 *    @ref (or the only one). *repo_tag receives the matching tag or NULL.
 */
enum image_error img_index_select(const uint8_t *json, size_t len, const char *ref, char **digest,
                                  bool *is_index, struct cl_diag *d);
enum image_error img_manifest_parse(const uint8_t *json, size_t len, struct img_manifest *m,
                                    struct cl_diag *d);
enum image_error img_docker_manifest_parse(const uint8_t *json, size_t len, const char *ref,
                                           struct img_manifest *m, char **repo_tag,
                                           struct cl_diag *d);

struct img_source;

/*
 * Open an image without any daemon or registry. @uri is one of
 *   oci:DIR[:REF]  or a plain DIR    an OCI image layout directory (index.json, blobs/)
 *   oci-archive:PATH[:REF]           a tar of such a layout (podman save, skopeo copy)
 *   docker-archive:PATH[:REF]        `docker save` / `podman save` output (manifest.json)
 * Reads the index/manifest and the config, checks the sha256 of every blob named by digest
 * (and of a docker-archive config named "<64 hex>.json" against that name), checks that the
 * config lists one diff_id per layer, and refuses images that are not linux/amd64, and
 * docker-archives whose layers nothing could verify (no diff_ids, not named by digest). Everything else in @uri is IMAGE_ERR_NOT_FOUND
 * with a message explaining how to export an image from Docker, podman or a registry.
 */
enum image_error img_open(const char *uri, struct img_source **out, struct cl_diag *d);
void img_close(struct img_source *s);

const struct img_config *img_source_config(const struct img_source *s);
/* The raw config JSON (NUL-terminated) for the metadata's DockerInfo. */
const char *img_source_config_json(const struct img_source *s);
/* "sha256:<hex>" of the config: the image ID docker shows. */
const char *img_source_image_id(const struct img_source *s);
/* A human name for the image: the tag it was selected by, else the file or directory name. */
const char *img_source_name(const struct img_source *s);
size_t img_source_layer_count(const struct img_source *s);

/*
 * Stream every layer, in order, into @t under @prefix (img_tree_apply_layer), verifying each
 * layer blob's sha256 where the image names it by digest and, when the config lists
 * rootfs.diff_ids, the sha256 of the layer's uncompressed tar stream against diff_ids[i] (as
 * `docker load` does), in the same pass. A mismatch is IMAGE_ERR_DIGEST naming the layer and
 * both digests; it takes precedence over the tar error a corrupt layer usually causes first.
 * On error @t holds a partial tree and must be discarded. @progress (may be NULL) is called
 * before each layer with its 1-based number and the total.
 */
enum image_error img_source_apply_layers(struct img_source *s, struct img_tree *t,
                                         const char *prefix,
                                         void (*progress)(size_t i, size_t n, void *opaque),
                                         void *opaque, struct cl_diag *d);

/* ---- blobs: the kernel, its command line, init and modules ------------------------------- */

/*
 * A blobs directory (NITRO_CLI_BLOBS, docs/build-enclave.md): bzImage, bzImage.config,
 * cmdline, init, and either
 *   - cloister's layout: modules/load (module names, one a line, in load order) and
 *     modules/<name>.ko (uncompressed), or
 *   - AWS's layout: nsm.ko next to init (no modules/ directory).
 */
struct img_blobs {
	char *dir;
	char *kernel; /* <dir>/bzImage */
	char *kernel_config; /* <dir>/bzImage.config */
	char *init; /* <dir>/init */
	char *cmdline; /* contents of <dir>/cmdline, surrounding whitespace trimmed */
	char os[64]; /* "Linux": word 2 of line 3 of bzImage.config (nitro-compat §1.6) */
	char kernel_version[64]; /* word 4 of that line, e.g. "6.12.95" */
	bool nitro_layout; /* AWS blobs: bootstrap ramdisk is dev/, init, nsm.ko */
	char **modules; /* cloister layout: module names in load order (NULL-terminated) */
	size_t n_modules;
};

/* Check and load a blobs directory. Names the missing file and the fix on error. */
enum image_error img_blobs_open(const char *dir, struct img_blobs *b, struct cl_diag *d);
void img_blobs_free(struct img_blobs *b);

/*
 * The bootstrap ramdisk (ramdisk #0, the same for every app): `dev/` (0755), `init` (0755)
 * and, for AWS blobs, `nsm.ko` (0755) exactly as nitro-cli lays it out (nitro-compat §2.10);
 * for cloister blobs `modules/` (0755) with `modules/load` (0644) and each listed
 * `modules/<name>.ko` (0644) that the blobs directory holds.
 */
enum image_error img_bootstrap_build(const struct img_blobs *b, struct img_tree *t,
                                     struct cl_diag *d);

/* What the enclave runs: argv (@argc >= 1), environment (KEY=VALUE), working directory. */
struct img_app {
	char **argv;
	size_t argc;
	char **env;
	size_t envc;
	char *workdir; /* NULL or "" = none */
};

/*
 * Finish the customer ramdisk (ramdisk #1) whose files are already under `rootfs/`: add the
 * missing rootfs/{dev,run,sys,var,proc,tmp} (0755), `cmd` (0644, one argv element per line)
 * and `env` (0644, one KEY=VALUE per line) as nitro-cli does; with @with_workdir a `workdir`
 * file (0644) when app->workdir is set; with @measure an empty `measure` file (0644) asking
 * cloister-init for the measured launch. Arguments or variables containing a newline cannot
 * be expressed in the line format and are refused (IMAGE_ERR_FORMAT).
 */
enum image_error img_customer_finish(struct img_tree *t, const struct img_app *app,
                                     bool with_workdir, bool measure, struct cl_diag *d);

/*
 * The PCR 16 value cloister-init leaves after a measured launch of @app (docs/build-enclave.md,
 * "Measured launch"): starting from 48 zero bytes, for each record (tag, bytes) in
 * ("cloister:cmd:", the `cmd` file), ("cloister:env:", the `env` file) and, with
 * @with_workdir and a working directory, ("cloister:workdir:", the directory) — the bytes are
 * cut into pieces of at most 4000 (one empty piece for empty bytes) and each piece extends
 * the PCR: PCR = SHA-384(PCR ‖ tag ‖ piece). IMAGE_ERR_NOMEM or IMAGE_ERR_FORMAT on failure.
 */
enum image_error img_measure_launch(const struct img_app *app, bool with_workdir, uint8_t pcr[48],
                                    struct cl_diag *d);

/*
 * Decompress a kernel module (.ko.xz, .ko.zst, .ko.gz or plain .ko) at @src into @dst,
 * written atomically. Uses libarchive's raw format, so any filter libarchive knows works.
 */
enum image_error img_decompress_file(const char *src, const char *dst, struct cl_diag *d);

/*
 * Assemble a cloister blobs directory at @out_dir from an unpacked Debian kernel package
 * @kernel_root (boot/vmlinuz-<release>, boot/config-<release>,
 * lib/modules/<release>/kernel/…), the cloister-init binary @init and the module names
 * @modules (load order). Modules the kernel lacks are left out of the list (they may be
 * built in). The release is written to *release (caller frees) if not NULL.
 */
enum image_error img_blobs_assemble(const char *kernel_root, const char *init,
                                    const char *const *modules, size_t n_modules,
                                    const char *out_dir, char **release, struct cl_diag *d);

/* The default cmdline and module list for cloister blobs (docs/build-enclave.md). */
extern const char img_default_cmdline[];
extern const char *const img_default_modules[];
extern const size_t img_default_modules_count;

#endif

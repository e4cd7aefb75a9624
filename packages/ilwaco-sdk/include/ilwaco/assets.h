/*
 * ilwaco/assets.h: read-only access to the service's assets, the document tree that
 * `denali build` packs into the image (denali.json "assets", default the service's `assets/`
 * directory). Ilwaco has no file system (paper 3.4); like the paper's web server (4.2.2), a
 * service carries its files in its image. The packer is packages/ilwaco-sdk/src/assets.ts,
 * which also documents the blob format.
 *
 * Every asset is a regular file with a relative, '/'-separated path such as "index.html" or
 * "docs/a.css". Lookups normalize the path first (see ilwaco_asset_normalize): leading '/',
 * repeated '/' and "." segments are ignored, so "/index.html", "index.html" and
 * "./index.html" name the same asset; a ".." segment is rejected. The data lives in the
 * image's read-only segment: pointers stay valid for the VM's lifetime, no copy is made, and
 * every function here is safe to call from any thread without locking.
 * Sizes and offsets are bytes. With no assets in the image, the count is 0 and lookups fail.
 */
#ifndef ILWACO_ASSETS_H
#define ILWACO_ASSETS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One packed file. `path` is NUL-terminated; `data` is 16-byte aligned (not NUL-terminated). */
struct ilwaco_asset {
    const char *path;
    const unsigned char *data;
    size_t size;
};

/** Longest asset path in bytes, without the NUL (the packer rejects longer ones). */
#define ILWACO_ASSET_PATH_MAX 1024

/** Number of assets in the image (0 if none, or if the blob is damaged). */
size_t ilwaco_asset_count(void);

/** The i-th asset in path order (bytewise, as strcmp), or NULL if i >= ilwaco_asset_count(). */
const struct ilwaco_asset *ilwaco_asset_at(size_t i);

/**
 * Find the asset named `path` (normalized first). Zero-copy: the result points into the
 * image. Returns NULL if there is no such file, `path` is NULL, contains a ".." segment or
 * is longer than ILWACO_ASSET_PATH_MAX after normalization. A directory is not an asset:
 * see ilwaco_asset_isdir. Cost: O(log count) string comparisons.
 */
const struct ilwaco_asset *ilwaco_asset_find(const char *path);

/**
 * 1 if `path` (normalized) is a directory of the tree, i.e. some asset's path starts with
 * "<path>/"; the root ("", "/") is a directory whenever any asset exists. Otherwise 0.
 */
int ilwaco_asset_isdir(const char *path);

/**
 * Normalize `in` into `out` (capacity `out_size` bytes, including the NUL): drop leading
 * and repeated '/' and "." segments; keep a trailing '/' if `in` has one after a segment
 * ("docs/" stays "docs/", "/" becomes ""). No percent-decoding is done.
 * Returns the length written (without the NUL), or -1 if `in` holds a ".." segment, or -2
 * if the result does not fit in `out` (`out` is then the empty string).
 */
int ilwaco_asset_normalize(const char *in, char *out, size_t out_size);

/**
 * A read cursor over one asset, owned by the caller (no global handle table, no limit on how
 * many are open). Fill it with ilwaco_asset_open; it needs no cleanup beyond
 * ilwaco_asset_close, which only marks it closed.
 */
typedef struct ilwaco_asset_file {
    const struct ilwaco_asset *asset; /* NULL when closed */
    size_t pos;                       /* next byte to read */
} ilwaco_asset_file;

/** `whence` values for ilwaco_asset_seek (same numbers as SEEK_SET/SEEK_CUR/SEEK_END). */
#define ILWACO_ASSET_SEEK_SET 0
#define ILWACO_ASSET_SEEK_CUR 1
#define ILWACO_ASSET_SEEK_END 2

/**
 * Open asset `path` for reading at offset 0. Returns 0, or -1 with errno = ENOENT (no such
 * asset, or a directory) or EINVAL (NULL arguments, ".." segment, path too long).
 */
int ilwaco_asset_open(ilwaco_asset_file *f, const char *path);

/**
 * Copy up to `n` bytes from the cursor into `buf` and advance it. Returns the number of bytes
 * copied (0 at the end of the asset), or -1 with errno = EBADF if `f` is not open.
 */
long ilwaco_asset_read(ilwaco_asset_file *f, void *buf, size_t n);

/**
 * Move the cursor to `off` relative to the start, the cursor, or the end (`whence` =
 * ILWACO_ASSET_SEEK_SET / _CUR / _END). Seeking past the end is allowed (reads then return 0).
 * Returns the new offset, or -1 with errno = EBADF (not open) or EINVAL (bad whence, or a
 * negative result).
 */
long ilwaco_asset_seek(ilwaco_asset_file *f, long off, int whence);

/** Mark `f` closed. Returns 0, or -1 with errno = EBADF if it was not open. */
int ilwaco_asset_close(ilwaco_asset_file *f);

#ifdef __cplusplus
}
#endif
#endif

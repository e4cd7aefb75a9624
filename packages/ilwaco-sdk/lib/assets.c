/*
 * The service's assets (include/ilwaco/assets.h): a read-only view of the blob that
 * `denali build` links between __ilwaco_assets_start and __ilwaco_assets_end (format:
 * src/assets.ts). The symbols are weak: an image without assets leaves them at 0 and the
 * table is empty. A constructor turns the blob's offset entries into `struct ilwaco_asset`s
 * (one malloc of count * sizeof(struct ilwaco_asset) bytes) before main runs, so later calls
 * never write shared state. This file is also compiled for Linux by the native baseline
 * (packages/denali-cli/bench/native), so it uses nothing but standard C.
 */
#include <ilwaco/assets.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char __ilwaco_assets_start[] __attribute__((weak));
extern const unsigned char __ilwaco_assets_end[] __attribute__((weak));

#define BLOB_HEADER 32u
#define BLOB_ENTRY 16u
#define BLOB_VERSION 1u

static struct ilwaco_asset *table;
static size_t table_count;
static int table_ready;

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Validate the blob and build the table; any inconsistency leaves it empty. */
static void assets_init(void) {
    if (table_ready) return;
    table_ready = 1;
    const unsigned char *b = __ilwaco_assets_start;
    const unsigned char *e = __ilwaco_assets_end;
    if (!b || !e || e < b) return;
    size_t len = (size_t)(e - b);
    if (len < BLOB_HEADER || memcmp(b, "ILWASSET", 8) != 0 || le32(b + 8) != BLOB_VERSION) return;
    uint32_t count = le32(b + 12), str_off = le32(b + 16), str_size = le32(b + 20);
    uint32_t data_off = le32(b + 24), total = le32(b + 28);
    if (total > len || count > (total - BLOB_HEADER) / BLOB_ENTRY) return;
    if (str_off != BLOB_HEADER + BLOB_ENTRY * count || str_size > total - str_off || data_off > total) return;
    if (count == 0) return;
    struct ilwaco_asset *t = malloc(count * sizeof *t);
    if (!t) return;
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *ent = b + BLOB_HEADER + BLOB_ENTRY * i;
        uint32_t po = le32(ent), pl = le32(ent + 4), dof = le32(ent + 8), size = le32(ent + 12);
        if (po < str_off || pl >= str_off + str_size - po || b[po + pl] != 0) goto bad;
        if (dof < data_off || size > total - dof) goto bad;
        t[i].path = (const char *)(b + po);
        t[i].data = b + dof;
        t[i].size = size;
        if (i > 0 && strcmp(t[i - 1].path, t[i].path) >= 0) goto bad;
    }
    table = t;
    table_count = count;
    return;
bad:
    free(t);
}

__attribute__((constructor)) static void assets_ctor(void) { assets_init(); }

size_t ilwaco_asset_count(void) {
    assets_init();
    return table_count;
}

const struct ilwaco_asset *ilwaco_asset_at(size_t i) {
    assets_init();
    return i < table_count ? &table[i] : NULL;
}

int ilwaco_asset_normalize(const char *in, char *out, size_t out_size) {
    if (!out || out_size == 0) return -2;
    out[0] = 0;
    if (!in) return -1;
    size_t n = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != '/') p++;
        size_t len = (size_t)(p - s);
        if (len == 1 && s[0] == '.') continue;
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            out[0] = 0;
            return -1;
        }
        size_t need = (n ? 1 : 0) + len;
        if (n + need + 1 > out_size) {
            out[0] = 0;
            return -2;
        }
        if (n) out[n++] = '/';
        memcpy(out + n, s, len);
        n += len;
    }
    if (n > 0 && p > in && p[-1] == '/') {
        if (n + 2 > out_size) {
            out[0] = 0;
            return -2;
        }
        out[n++] = '/';
    }
    out[n] = 0;
    return (int)n;
}

/*
 * Index of the first entry whose path is >= key (table_count if none); *lcp receives the length
 * of the prefix that entry shares with key (0 if none). A binary search over sorted strings
 * that skips the prefix every path still in range shares with key: the minimum of the common
 * prefixes of key with the bounds on either side (Manber & Myers, "Suffix arrays", SIAM J.
 * Comput. 1993, section 3), so the paths under one directory are not compared from their
 * first byte at every step.
 */
static size_t lower_bound(const char *key, size_t *lcp) {
    size_t lo = 0, hi = table_count, lcp_lo = 0, lcp_hi = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *p = table[mid].path;
        size_t k = lcp_lo < lcp_hi ? lcp_lo : lcp_hi;
        while (p[k] && p[k] == key[k]) k++;
        if ((unsigned char)p[k] < (unsigned char)key[k]) {
            lo = mid + 1;
            lcp_lo = k;
        } else {
            hi = mid;
            lcp_hi = k;
        }
    }
    *lcp = lcp_hi; /* hi only moves onto an entry it compared, so this is lo's prefix */
    return lo;
}

const struct ilwaco_asset *ilwaco_asset_find(const char *path) {
    char buf[ILWACO_ASSET_PATH_MAX + 2];
    assets_init();
    if (ilwaco_asset_normalize(path, buf, sizeof buf) <= 0) return NULL;
    size_t lcp, i = lower_bound(buf, &lcp);
    return i < table_count && !buf[lcp] && !table[i].path[lcp] ? &table[i] : NULL;
}

int ilwaco_asset_isdir(const char *path) {
    char buf[ILWACO_ASSET_PATH_MAX + 2];
    assets_init();
    int n = ilwaco_asset_normalize(path, buf, sizeof buf);
    if (n < 0) return 0;
    if (n == 0) return table_count > 0;
    if (buf[n - 1] != '/') {
        buf[n++] = '/';
        buf[n] = 0;
    }
    size_t lcp, i = lower_bound(buf, &lcp);
    return i < table_count && lcp >= (size_t)n;
}

int ilwaco_asset_open(ilwaco_asset_file *f, const char *path) {
    char buf[ILWACO_ASSET_PATH_MAX + 2];
    if (!f || !path) {
        errno = EINVAL;
        return -1;
    }
    f->asset = NULL;
    f->pos = 0;
    if (ilwaco_asset_normalize(path, buf, sizeof buf) < 0) {
        errno = EINVAL;
        return -1;
    }
    const struct ilwaco_asset *a = ilwaco_asset_find(buf);
    if (!a) {
        errno = ENOENT;
        return -1;
    }
    f->asset = a;
    return 0;
}

long ilwaco_asset_read(ilwaco_asset_file *f, void *buf, size_t n) {
    if (!f || !f->asset) {
        errno = EBADF;
        return -1;
    }
    size_t size = f->asset->size;
    if (f->pos >= size) return 0;
    size_t left = size - f->pos;
    if (n > left) n = left;
    if (n > (size_t)LONG_MAX) n = (size_t)LONG_MAX;
    memcpy(buf, f->asset->data + f->pos, n);
    f->pos += n;
    return (long)n;
}

long ilwaco_asset_seek(ilwaco_asset_file *f, long off, int whence) {
    if (!f || !f->asset) {
        errno = EBADF;
        return -1;
    }
    long base;
    switch (whence) {
    case ILWACO_ASSET_SEEK_SET: base = 0; break;
    case ILWACO_ASSET_SEEK_CUR: base = (long)f->pos; break;
    case ILWACO_ASSET_SEEK_END: base = (long)f->asset->size; break;
    default: errno = EINVAL; return -1;
    }
    if ((off < 0 && base + off < 0) || (off > 0 && base > LONG_MAX - off)) {
        errno = EINVAL;
        return -1;
    }
    f->pos = (size_t)(base + off);
    return (long)f->pos;
}

int ilwaco_asset_close(ilwaco_asset_file *f) {
    if (!f || !f->asset) {
        errno = EBADF;
        return -1;
    }
    f->asset = NULL;
    f->pos = 0;
    return 0;
}

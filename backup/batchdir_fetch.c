/* batchdir_fetch.c — the read side of the object store (see batchdir.h): on IT's machine
 * [archive] dir is a cache of the bucket.  One listing of the store per process says what
 * exists; files are fetched when first read.  Trust comes from the readers' own checks
 * against the signed manifest, never from the store or the cache. */
#include "backup/batchdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "backup/volume.h"
#include "common/durable.h"
#include "store/store.h"

/* One object of the store, by its path relative to the cache root
 * ("<mailbox dir>/<batch dir>/<file>"). */
struct entry {
    char *rel;
    unsigned long long size;
    bool fresh;                 /* fetched (or checked against the listing) in this process */
};

static struct {
    bool active;
    char root[BATCHDIR_PATH_MAX];
    size_t root_len;
    char prefix[STORE_KEY_MAX + 1];     /* the key of root-relative path p is prefix + p */
    struct entry *v;
    size_t n, cap;
} fc;

static void index_free(void)
{
    for (size_t i = 0; i < fc.n; i++)
        free(fc.v[i].rel);
    free(fc.v);
    memset(&fc, 0, sizeof fc);
}

void batchdir_store_pull_release(void)
{
    index_free();
}

bool batchdir_store_caching(void)
{
    return fc.active && batchdir_store_current() != NULL;
}

/* dir/name relative to the root into rel; false if dir is not under the root. */
static bool rel_of(const char *dir, const char *name, char *rel, size_t size)
{
    if (!batchdir_store_caching() || strncmp(dir, fc.root, fc.root_len) != 0
        || dir[fc.root_len] != '/' || dir[fc.root_len + 1] == '\0')
        return false;
    return (size_t)snprintf(rel, size, "%s%s%s", dir + fc.root_len + 1,
                            name != NULL ? "/" : "", name != NULL ? name : "") < size;
}

/* The first entry not below rel (byte order, as the store lists). */
static size_t lower_bound(const char *rel)
{
    size_t lo = 0, hi = fc.n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(fc.v[mid].rel, rel) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct entry *find(const char *rel)
{
    size_t i = lower_bound(rel);

    return i < fc.n && strcmp(fc.v[i].rel, rel) == 0 ? &fc.v[i] : NULL;
}

static int insert(const char *rel, unsigned long long size, mr_error *err)
{
    size_t i = lower_bound(rel);
    char *copy;

    if (i < fc.n && strcmp(fc.v[i].rel, rel) == 0) {
        fc.v[i].size = size;
        return 0;
    }
    if (fc.n == fc.cap) {
        size_t nc = fc.cap ? fc.cap * 2 : 256;
        struct entry *nv = realloc(fc.v, nc * sizeof *nv);
        if (nv == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for the store listing");
        fc.v = nv;
        fc.cap = nc;
    }
    if ((copy = strdup(rel)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory for the store listing");
    memmove(&fc.v[i + 1], &fc.v[i], (fc.n - i) * sizeof *fc.v);
    fc.v[i] = (struct entry){ .rel = copy, .size = size };
    fc.n++;
    return 0;
}

/* A batch file's key: "<mailbox dir>/<batch dir>/<file>", none of them hidden.  Other
 * objects under the prefix are not batch files and are left alone. */
static bool batch_key(const char *rel)
{
    const char *a = strchr(rel, '/'), *b = a != NULL ? strchr(a + 1, '/') : NULL;

    return b != NULL && strchr(b + 1, '/') == NULL && rel[0] != '.' && a[1] != '.'
           && b[1] != '.' && b[1] != '\0';
}

static int list_one(void *arg, const char *key, uint64_t size, mr_error *err)
{
    const char *rel;
    (void)arg;

    if (strncmp(key, fc.prefix, strlen(fc.prefix)) != 0)
        return 0;
    rel = key + strlen(fc.prefix);
    if (!batch_key(rel))
        return 0;
    /* The store lists in byte order: appending keeps the index sorted; insert copes
     * with a store that does not. */
    if (fc.n > 0 && strcmp(fc.v[fc.n - 1].rel, rel) >= 0)
        return insert(rel, size, err);
    if (fc.n == fc.cap) {
        size_t nc = fc.cap ? fc.cap * 2 : 256;
        struct entry *nv = realloc(fc.v, nc * sizeof *nv);
        if (nv == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for the store listing");
        fc.v = nv;
        fc.cap = nc;
    }
    if ((fc.v[fc.n].rel = strdup(rel)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory for the store listing");
    fc.v[fc.n].size = size;
    fc.v[fc.n].fresh = false;
    fc.n++;
    return 0;
}

/* The key prefix of the root: the key of root/m/n without its "m/n". */
static int root_prefix(const char *root, mr_error *err)
{
    char dir[BATCHDIR_PATH_MAX], key[STORE_KEY_MAX + 1];
    size_t len;
    int rc;

    if ((size_t)snprintf(dir, sizeof dir, "%s/m", root) >= sizeof dir)
        return mr_error_set(err, MR_E_INVALID, "archive directory path too long");
    rc = batchdir_store_key(dir, "n", key, sizeof key, err);
    if (rc != 0)
        return rc;
    len = strlen(key);
    if (len < 3 || strcmp(key + len - 3, "m/n") != 0)
        return mr_error_set(err, MR_E_INTERNAL, "store key of %s/n is %s", dir, key);
    key[len - 3] = '\0';
    snprintf(fc.prefix, sizeof fc.prefix, "%s", key);
    return 0;
}

/* Files in a cached batch directory that the store does not hold (a locator whose put
 * failed, a fetch cut short) go: the cache never holds more than the store. */
static int sweep(const char *dir, size_t rel_dir_len)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char rel[BATCHDIR_PATH_MAX], path[BATCHDIR_PATH_MAX];

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        /* another process's fetch in progress (common/durable.h's temporary name) */
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0
            || strstr(de->d_name, ".tmp.") != NULL)
            continue;
        if ((size_t)snprintf(rel, sizeof rel, "%.*s/%s", (int)rel_dir_len,
                             dir + fc.root_len + 1, de->d_name) >= sizeof rel
            || find(rel) != NULL)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < sizeof path)
            (void)unlink(path);
    }
    closedir(d);
    return 0;
}

int batchdir_store_pull_tree(const char *root, mr_error *err)
{
    mr_store *st = batchdir_store_current();
    size_t len = root != NULL ? strlen(root) : 0;
    int rc;

    index_free();
    if (st == NULL)
        return 0;
    while (len > 1 && root[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof fc.root)
        return mr_error_set(err, MR_E_INVALID, "archive directory path unusable as a cache");
    memcpy(fc.root, root, len);
    fc.root[len] = '\0';
    fc.root_len = len;
    rc = root_prefix(fc.root, err);
    if (rc == 0)
        rc = store_list(st, fc.prefix, list_one, NULL, err);
    if (rc == 0)
        rc = durable_mkdirs(fc.root, 0700, err);
    /* The local directories the scans of archive_list.c walk. */
    for (size_t i = 0; rc == 0 && i < fc.n; i++) {
        char dir[BATCHDIR_PATH_MAX];
        const char *last = strrchr(fc.v[i].rel, '/');
        int n = snprintf(dir, sizeof dir, "%s/%.*s", fc.root, (int)(last - fc.v[i].rel),
                         fc.v[i].rel);
        if (n < 0 || (size_t)n >= sizeof dir)
            rc = mr_error_set(err, MR_E_INVALID, "batch directory path too long");
        else if (i > 0 && strncmp(fc.v[i - 1].rel, fc.v[i].rel,
                                  (size_t)(last - fc.v[i].rel) + 1) == 0)
            continue;   /* same batch as the previous entry */
        else if ((rc = durable_mkdirs(dir, 0700, err)) == 0)
            rc = sweep(dir, (size_t)(last - fc.v[i].rel));
    }
    if (rc != 0) {
        index_free();
        return mr_error_prefix(err, "reading the archive from the store");
    }
    fc.active = true;
    return 0;
}

bool batchdir_store_dir_gone(const char *dir)
{
    char rel[BATCHDIR_PATH_MAX];
    size_t i, len;

    if (!rel_of(dir, NULL, rel, sizeof rel - 1))
        return false;
    len = strlen(rel);
    rel[len++] = '/';
    rel[len] = '\0';
    i = lower_bound(rel);
    return i >= fc.n || strncmp(fc.v[i].rel, rel, len) != 0;
}

/* 1 present (*size set), 0 absent, -1 not under the cache. */
int batchdir_store_lookup(const char *dir, const char *name, unsigned long long *size)
{
    char rel[BATCHDIR_PATH_MAX];
    const struct entry *e;

    if (!rel_of(dir, name, rel, sizeof rel))
        return -1;
    e = find(rel);
    if (e != NULL && size != NULL)
        *size = e->size;
    return e != NULL;
}

int batchdir_store_list(const char *dir, batchdir_list_fn fn, void *ctx, mr_error *err)
{
    char rel[BATCHDIR_PATH_MAX];
    size_t len;
    int rc = 0;

    if (!rel_of(dir, NULL, rel, sizeof rel - 1))
        return 1;
    len = strlen(rel);
    rel[len++] = '/';
    rel[len] = '\0';
    for (size_t i = lower_bound(rel); rc == 0 && i < fc.n; i++) {
        if (strncmp(fc.v[i].rel, rel, len) != 0)
            break;
        rc = fn(ctx, fc.v[i].rel + len, err);
    }
    return rc;
}

/* Files whose object may be replaced (a hold re-signs the manifest) or appear later. */
static bool changes(const char *name)
{
    return !batchdir_is_content(name);
}

int batchdir_store_fetch(const char *dir, const char *name, mr_error *err)
{
    char rel[BATCHDIR_PATH_MAX], path[BATCHDIR_PATH_MAX], key[STORE_KEY_MAX + 1];
    struct entry *e;
    struct stat sb;
    int rc;

    if (!rel_of(dir, name, rel, sizeof rel))
        return 0;
    rc = batchdir_path(dir, name, path, sizeof path, err);
    if (rc != 0)
        return rc;
    e = find(rel);
    if (e == NULL) {
        /* What the store does not hold is not in the archive, whatever the cache has. */
        if (unlink(path) != 0 && errno != ENOENT)
            return mr_error_errno(err, MR_E_IO, errno, "cannot remove %s from the cache", path);
        return mr_error_set(err, MR_E_NOTFOUND, "%s is not in the object store", name);
    }
    if (e->fresh)
        return 0;
    if (!changes(name) && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)
        && (unsigned long long)sb.st_size == e->size) {
        e->fresh = true;
        return 0;
    }
    rc = batchdir_store_key(dir, name, key, sizeof key, err);
    if (rc == 0)
        rc = store_get_file(batchdir_store_current(), key, path, 0600, err);
    if (rc == MR_E_NOTFOUND)
        return mr_error_set(err, MR_E_NOTFOUND, "%s is not in the object store (any more)",
                            name);
    if (rc != 0)
        return mr_error_prefix(err, "fetching %s", name);
    e->fresh = true;
    return 0;
}

int batchdir_read_path(const char *dir, const char *name, char *out, size_t size,
                       mr_error *err)
{
    int rc = batchdir_path(dir, name, out, size, err);

    return rc == 0 && fc.active ? batchdir_store_fetch(dir, name, err) : rc;
}

void batchdir_store_evict(const char *dir, const char *name)
{
    char rel[BATCHDIR_PATH_MAX], path[BATCHDIR_PATH_MAX];
    struct entry *e;

    if (!rel_of(dir, name, rel, sizeof rel) || batchdir_path(dir, name, path, sizeof path,
                                                             NULL) != 0)
        return;
    (void)unlink(path);
    if ((e = find(rel)) != NULL)
        e->fresh = false;
}

int batchdir_store_verify(const char *dir, const char *name, unsigned long long size,
                          const char *sha256_hex, mr_error *err)
{
    char rel[BATCHDIR_PATH_MAX], key[STORE_KEY_MAX + 1];
    unsigned char sha[32];
    mr_error serr;
    int rc;

    if (!rel_of(dir, name, rel, sizeof rel))
        return 1;
    if (volume_unhex(sha256_hex, sha, 32) != 0 || sha256_hex[64] != '\0')
        return mr_error_set(err, MR_E_TAMPERED, "%s: the manifest's SHA-256 is malformed",
                            name);
    if (find(rel) == NULL)
        return mr_error_set(err, MR_E_NOTFOUND, "%s is not in the object store", name);
    rc = batchdir_store_key(dir, name, key, sizeof key, err);
    if (rc != 0)
        return rc;
    mr_error_clear(&serr);
    rc = store_verify(batchdir_store_current(), key, size, sha, &serr);
    if (rc == MR_E_TAMPERED)
        return mr_error_set(err, rc, "%s: the stored object differs from the manifest (%s)",
                            name, strstr(serr.msg, "size") != NULL ? "size" : "SHA-256");
    if (rc == MR_E_NOTFOUND)
        return mr_error_set(err, rc, "%s is not in the object store (any more)", name);
    if (rc != 0 && err != NULL)
        *err = serr;
    return rc;
}

int batchdir_store_put_new(const char *dir, const char *name, mr_error *err)
{
    char rel[BATCHDIR_PATH_MAX], path[BATCHDIR_PATH_MAX], key[STORE_KEY_MAX + 1];
    mr_store *st = batchdir_store_current();
    unsigned char *data = NULL;
    unsigned char sha[32];
    size_t len = 0;
    int rc;

    if (!rel_of(dir, name, rel, sizeof rel))
        return 1;
    rc = batchdir_path(dir, name, path, sizeof path, err);
    if (rc == 0)
        rc = batchdir_store_key(dir, name, key, sizeof key, err);
    if (rc == 0)
        rc = store_put_file(st, key, path, NULL, err);
    /* Read back what the store now holds against the local file's bytes. */
    if (rc == 0) {
        /* the local file, not the cache's view of the store */
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot read %s", path);
        else {
            struct stat sb;
            if (fstat(fileno(f), &sb) != 0 || (data = malloc((size_t)sb.st_size + 1)) == NULL
                || fread(data, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size)
                rc = mr_error_set(err, MR_E_IO, "cannot read %s", path);
            else
                len = (size_t)sb.st_size;
            fclose(f);
        }
    }
    if (rc == 0) {
        unsigned int mlen = 0;
        if (EVP_Digest(data, len, sha, &mlen, EVP_sha256(), NULL) != 1)
            rc = mr_error_set(err, MR_E_CRYPTO, "SHA-256 of %s failed", name);
    }
    if (rc == 0)
        rc = store_verify(st, key, len, sha, err);
    free(data);
    if (rc == 0)
        rc = insert(rel, len, err);
    if (rc == 0)
        find(rel)->fresh = true;
    return rc != 0 ? mr_error_prefix(err, "putting %s into the object store", name) : 0;
}

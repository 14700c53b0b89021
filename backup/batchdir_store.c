/* batchdir_store.c — the object store mirror of batch directories (see batchdir.h and
 * docs/STORE.md).  The local directory is the primary copy; a push makes the store hold
 * exactly its files, each read back before the next step relies on it. */
#include "backup/batchdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/crashpoint.h"

static struct {
    char root[BATCHDIR_PATH_MAX];
    size_t root_len;
    char prefix[STORE_KEY_MAX + 1];
    mr_store *st;
} g;

int batchdir_store_attach(const char *root, mr_store *st, const char *prefix, mr_error *err)
{
    size_t n;

    if (root == NULL || *root == '\0')
        return mr_error_set(err, MR_E_INVALID, "object store: no archive directory");
    n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (n >= sizeof g.root)
        return mr_error_set(err, MR_E_INVALID, "object store: archive directory path too long");
    if (prefix == NULL)
        prefix = "";
    if (*prefix != '\0' && store_key_check(prefix, err) != 0)
        return mr_error_prefix(err, "object store: key prefix");
    if (strlen(prefix) > STORE_KEY_MAX / 2)
        return mr_error_set(err, MR_E_INVALID, "object store: key prefix too long");
    memcpy(g.root, root, n);
    g.root[n] = '\0';
    g.root_len = n;
    snprintf(g.prefix, sizeof g.prefix, "%s", prefix);
    g.st = st;
    return 0;
}

void batchdir_store_detach(void)
{
    memset(&g, 0, sizeof g);
}

mr_store *batchdir_store_current(void)
{
    return g.st;
}

/* The key of dir itself ("<prefix>/<relative path>"), without a trailing '/'. */
static int dir_key(const char *dir, char *key, size_t size, mr_error *err)
{
    const char *rel;
    size_t rlen;
    int n;

    if (g.st == NULL)
        return mr_error_set(err, MR_E_INVALID, "object store: none attached");
    if (strncmp(dir, g.root, g.root_len) != 0
        || (dir[g.root_len] != '/' && !(g.root_len == 1 && g.root[0] == '/')))
        return mr_error_set(err, MR_E_INVALID, "%s is not under the archive directory %s", dir,
                            g.root);
    rel = dir + g.root_len;
    while (*rel == '/')
        rel++;
    rlen = strlen(rel);
    while (rlen > 0 && rel[rlen - 1] == '/')
        rlen--;
    if (rlen == 0)
        return mr_error_set(err, MR_E_INVALID, "%s is the archive directory, not a batch", dir);
    n = snprintf(key, size, "%s%s%.*s", g.prefix, g.prefix[0] ? "/" : "", (int)rlen, rel);
    if (n < 0 || (size_t)n >= size)
        return mr_error_set(err, MR_E_INVALID, "object key of %s is too long", dir);
    return store_key_check(key, err);
}

int batchdir_store_key(const char *dir, const char *name, char *key, size_t size,
                       mr_error *err)
{
    char base[STORE_KEY_MAX + 1];
    int rc, n;

    if (dir == NULL || name == NULL || key == NULL)
        return mr_error_set(err, MR_E_INVALID, "batchdir_store_key: bad arguments");
    if (*name == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0
        || strcmp(name, "..") == 0)
        return mr_error_set(err, MR_E_INVALID, "%s is not a batch file name", name);
    if ((rc = dir_key(dir, base, sizeof base, err)) != 0)
        return rc;
    n = snprintf(key, size, "%s/%s", base, name);
    if (n < 0 || (size_t)n >= size)
        return mr_error_set(err, MR_E_INVALID, "object key of %s in %s is too long", name, dir);
    return store_key_check(key, err);
}

/* ---- the two sides of a batch: local files and listed objects ---------------------- */

struct entry {
    char name[256];
    uint64_t size;
};

struct entries {
    struct entry *v;
    size_t n, cap;
};

static int entries_add(struct entries *e, const char *name, uint64_t size, mr_error *err)
{
    if (strlen(name) >= sizeof e->v[0].name)
        return mr_error_set(err, MR_E_INVALID, "batch file name too long");
    if (e->n == e->cap) {
        size_t nc = e->cap ? 2 * e->cap : 16;
        struct entry *nv = realloc(e->v, nc * sizeof *nv);
        if (nv == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        e->v = nv;
        e->cap = nc;
    }
    snprintf(e->v[e->n].name, sizeof e->v[e->n].name, "%s", name);
    e->v[e->n].size = size;
    e->n++;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static const struct entry *entries_find(const struct entries *e, const char *name)
{
    struct entry key;

    snprintf(key.name, sizeof key.name, "%s", name);
    return e->n == 0 ? NULL : bsearch(&key, e->v, e->n, sizeof *e->v, cmp_entry);
}

struct local_ctx {
    const char *dir;
    struct entries *e;
};

static int local_one(void *arg, const char *name, mr_error *err)
{
    struct local_ctx *c = arg;
    char path[BATCHDIR_PATH_MAX];
    struct stat st;
    int rc;

    /* An interrupted durable write's temporary file is not part of the batch (the next
     * purge, backup or expire sweeps it). */
    if (strstr(name, ".tmp.") != NULL)
        return 0;
    if ((rc = batchdir_path(c->dir, name, path, sizeof path, err)) != 0)
        return rc;
    if (lstat(path, &st) != 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot stat %s", path);
    if (!S_ISREG(st.st_mode))
        return mr_error_set(err, MR_E_INVALID, "%s is not a regular file", path);
    return entries_add(c->e, name, (uint64_t)st.st_size, err);
}

struct remote_ctx {
    size_t base_len;        /* "<batch key>/" */
    struct entries *e;
};

static int remote_one(void *arg, const char *key, uint64_t size, mr_error *err)
{
    struct remote_ctx *c = arg;
    const char *name = key + c->base_len;

    /* The listing is by prefix "<batch key>/": a deeper key is no file of this batch
     * directory and is left alone. */
    if (strlen(key) <= c->base_len || strchr(name, '/') != NULL)
        return 0;
    return entries_add(c->e, name, size, err);
}

static int list_both(const char *dir, char *base, size_t base_size, struct entries *local,
                     struct entries *remote, mr_error *err)
{
    struct local_ctx lc = { dir, local };
    struct remote_ctx rc_ = { 0, remote };
    size_t n;
    int rc;

    if ((rc = dir_key(dir, base, base_size - 1, err)) != 0)
        return rc;
    n = strlen(base);
    base[n] = '/';
    base[n + 1] = '\0';
    rc_.base_len = n + 1;
    rc = batchdir_list(dir, local_one, &lc, err);
    if (rc != 0)
        return rc;
    rc = store_list(g.st, base, remote_one, &rc_, err);
    if (rc != 0)
        return rc;
    if (local->n > 1)
        qsort(local->v, local->n, sizeof *local->v, cmp_entry);
    if (remote->n > 1)
        qsort(remote->v, remote->n, sizeof *remote->v, cmp_entry);
    return 0;
}

/* ---- pushing one file -------------------------------------------------------------- */

static int file_sha256(const char *path, uint64_t *size, unsigned char out[32], mr_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    ssize_t n;

    *size = 0;
    if (md == NULL || buf == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
    else if (fd < 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot read %s", path);
    while (rc == 0 && (n = read(fd, buf, 1 << 20)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot read %s", path);
        else if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
            rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
        else
            *size += (uint64_t)n;
    }
    if (rc == 0 && EVP_DigestFinal_ex(md, out, NULL) != 1)
        rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
    if (fd >= 0)
        close(fd);
    free(buf);
    EVP_MD_CTX_free(md);
    return rc;
}

/* Store dir/name unless the store's object already is exactly it; read it back either
 * way.  listed: the object as the listing gave it, NULL when it has none. */
static int push_one(const char *dir, const char *base, const char *name,
                    const struct entry *listed, time_t retain_until,
                    struct batchdir_push_stats *stats, mr_error *err)
{
    char path[BATCHDIR_PATH_MAX], key[STORE_KEY_MAX + 1];
    unsigned char sha[32];
    uint64_t size;
    mr_error verr;
    int rc;

    if ((rc = batchdir_path(dir, name, path, sizeof path, err)) != 0)
        return rc;
    if ((size_t)snprintf(key, sizeof key, "%s%s", base, name) >= sizeof key)
        return mr_error_set(err, MR_E_INVALID, "object key of %s is too long", path);
    if ((rc = file_sha256(path, &size, sha, err)) != 0)
        return rc;
    mr_error_clear(&verr);
    if (listed != NULL && listed->size == size) {
        rc = store_verify(g.st, key, size, sha, &verr);
        if (rc == 0) {
            if (stats != NULL)
                stats->skipped++;
            return 0;
        }
        /* A different or vanished object is replaced; a store that cannot answer is an
         * error (a put would most likely fail the same way). */
        if (rc != MR_E_TAMPERED && rc != MR_E_NOTFOUND) {
            if (err != NULL)
                *err = verr;
            return rc;
        }
    }
    mr_crash_point("store-put", path);
    rc = store_put_file_until(g.st, key, path, sha, retain_until, err);
    if (rc == 0)
        rc = store_verify(g.st, key, size, sha, err);
    if (rc == 0 && stats != NULL)
        stats->put++;
    return rc;
}

static int delete_one(const char *base, const char *name, struct batchdir_push_stats *stats,
                      mr_error *err)
{
    char key[STORE_KEY_MAX + 1];
    int rc;

    if ((size_t)snprintf(key, sizeof key, "%s%s", base, name) >= sizeof key)
        return mr_error_set(err, MR_E_INVALID, "object key of %s is too long", name);
    mr_crash_point("store-delete", name);
    rc = store_delete(g.st, key, err);
    if (rc == 0 && stats != NULL)
        stats->deleted++;
    return rc;
}

int batchdir_store_push_stats(const char *dir, time_t retain_until,
                              struct batchdir_push_stats *stats, mr_error *err)
{
    const char *manifest = batchdir_name(BATCHDIR_MANIFEST);
    struct entries local = { 0 }, remote = { 0 };
    char base[STORE_KEY_MAX + 2];
    bool has_manifest, has_tombstone;
    int rc;

    if (stats != NULL)
        memset(stats, 0, sizeof *stats);
    if (g.st == NULL)
        return 0;
    rc = list_both(dir, base, sizeof base, &local, &remote, err);
    if (rc != 0)
        goto out;
    has_manifest = entries_find(&local, manifest) != NULL;
    has_tombstone = entries_find(&local, batchdir_name(BATCHDIR_TOMBSTONE)) != NULL;
    if (!has_manifest && !has_tombstone) {
        rc = mr_error_set(err, MR_E_INVALID, "%s has neither a manifest nor a tombstone: "
                          "not a batch to mirror", dir);
        goto out;
    }
    /* An expired batch: its content objects go first, as locally. */
    for (size_t i = 0; rc == 0 && !has_manifest && i < remote.n; i++)
        if (strcmp(remote.v[i].name, manifest) != 0 && entries_find(&local, remote.v[i].name)
                                                          == NULL)
            rc = delete_one(base, remote.v[i].name, stats, err);
    for (size_t i = 0; rc == 0 && i < local.n; i++)
        if (strcmp(local.v[i].name, manifest) != 0)
            rc = push_one(dir, base, local.v[i].name, entries_find(&remote, local.v[i].name),
                          retain_until, stats, err);
    /* The manifest last: a store never holds a manifest before every file it lists.
     * Without one locally, the store's goes last too, after the tombstone is in. */
    if (rc == 0 && has_manifest)
        rc = push_one(dir, base, manifest, entries_find(&remote, manifest), retain_until,
                      stats, err);
    else if (rc == 0 && entries_find(&remote, manifest) != NULL)
        rc = delete_one(base, manifest, stats, err);
out:
    if (rc != 0)
        mr_error_prefix(err, "object store: batch %s", dir);
    free(local.v);
    free(remote.v);
    return rc;
}

int batchdir_store_push(const char *dir, time_t retain_until, mr_error *err)
{
    return batchdir_store_push_stats(dir, retain_until, NULL, err);
}

int batchdir_store_sync(const char *dir, time_t retain_until, bool *pushed, mr_error *err)
{
    struct entries local = { 0 }, remote = { 0 };
    char base[STORE_KEY_MAX + 2];
    bool same;
    int rc;

    *pushed = false;
    if (g.st == NULL)
        return 0;
    rc = list_both(dir, base, sizeof base, &local, &remote, err);
    same = rc == 0 && local.n == remote.n;
    for (size_t i = 0; same && i < local.n; i++)
        same = strcmp(local.v[i].name, remote.v[i].name) == 0
               && local.v[i].size == remote.v[i].size;
    free(local.v);
    free(remote.v);
    if (rc != 0)
        return mr_error_prefix(err, "object store: batch %s", dir);
    if (same)
        return 0;
    *pushed = true;
    return batchdir_store_push(dir, retain_until, err);
}

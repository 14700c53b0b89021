/* store_local.c — the local directory driver (store.h): one file per object under the
 * store's directory, written with common/durable.h. */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/durable.h"

struct local_store {
    char *dir;
};

static char *obj_path(const struct local_store *ls, const char *key)
{
    size_t n = strlen(ls->dir) + strlen(key) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", ls->dir, key);
    return p;
}

static int local_put(void *self, const char *key, const struct store_source *src,
                     const unsigned char sha256[32], mr_error *err)
{
    struct local_store *ls = self;
    char *path = obj_path(ls, key), *slash;
    durable_file *f = NULL;
    unsigned char *buf = NULL, got[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint64_t off = 0;
    int rc;

    if (path == NULL || md == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto out;
    }
    slash = strrchr(path, '/');
    *slash = '\0';
    rc = durable_mkdirs(path, 0700, err);
    *slash = '/';
    if (rc != 0)
        goto out;
    if ((rc = durable_open(&f, path, 0600, err)) != 0)
        goto out;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
        goto out;
    }
    buf = malloc(1 << 20);
    if (buf == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto out;
    }
    /* Hash what is written, not what the caller believes it handed over. */
    while (off < src->size) {
        size_t n = src->size - off > (1u << 20) ? (1u << 20) : (size_t)(src->size - off);
        if ((rc = store_source_read(src, off, buf, n, err)) != 0 ||
            (rc = durable_write(f, buf, n, err)) != 0)
            goto out;
        if (EVP_DigestUpdate(md, buf, n) != 1) {
            rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
            goto out;
        }
        off += n;
    }
    if (EVP_DigestFinal_ex(md, got, NULL) != 1) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
        goto out;
    }
    if (memcmp(got, sha256, 32) != 0) {
        rc = mr_error_set(err, MR_E_TAMPERED,
                          "the payload's SHA-256 differs from the one given (changed while stored?)");
        goto out;
    }
    rc = durable_commit(f, err);
    f = NULL;
out:
    durable_abort(f);
    free(buf);
    free(path);
    EVP_MD_CTX_free(md);
    return rc;
}

static int open_obj(struct local_store *ls, const char *key, int *fd, uint64_t *size,
                    mr_error *err)
{
    char *path = obj_path(ls, key);
    struct stat sb;

    if (path == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    free(path);
    if (*fd < 0)
        return mr_error_errno(err, errno == ENOENT || errno == ENOTDIR ? MR_E_NOTFOUND : MR_E_IO,
                              errno, "cannot open the object");
    if (fstat(*fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(*fd);
        *fd = -1;
        return mr_error_set(err, MR_E_NOTFOUND, "not a regular file");
    }
    *size = (uint64_t)sb.st_size;
    return 0;
}

static int local_get(void *self, const char *key, uint64_t offset, uint64_t length,
                     store_data_fn fn, void *arg, mr_error *err)
{
    uint64_t size, end;
    unsigned char *buf = NULL;
    int fd, rc;

    if ((rc = open_obj(self, key, &fd, &size, err)) != 0)
        return rc;
    if (offset >= size || (length != STORE_TO_END && length > size - offset)) {
        close(fd);
        return mr_error_set(err, MR_E_INVALID, "range %llu+%llu outside the object's %llu bytes",
                            (unsigned long long)offset,
                            (unsigned long long)(length == STORE_TO_END ? 0 : length),
                            (unsigned long long)size);
    }
    end = length == STORE_TO_END ? size : offset + length;
    buf = malloc(1 << 20);
    if (buf == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
    while (rc == 0 && offset < end) {
        size_t want = end - offset > (1u << 20) ? (1u << 20) : (size_t)(end - offset);
        ssize_t n = pread(fd, buf, want, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot read the object");
        else if (n == 0)
            rc = mr_error_set(err, MR_E_IO, "the object shrank while being read");
        else {
            rc = fn(arg, buf, (size_t)n, err);
            offset += (uint64_t)n;
        }
    }
    free(buf);
    close(fd);
    return rc;
}

static int local_stat(void *self, const char *key, uint64_t *size, mr_error *err)
{
    int fd, rc;

    if ((rc = open_obj(self, key, &fd, size, err)) != 0)
        return rc;
    close(fd);
    return 0;
}

/* A temporary file a writer left (durable.h): "<name>.tmp.<pid>.<n>".  Keys cannot
 * contain ".tmp.", so nothing named so is an object. */
static int is_tmp(const char *name)
{
    return strstr(name, ".tmp.") != NULL;
}

struct keyvec {
    char **v;
    uint64_t *size;
    size_t n, cap;
};

static int keyvec_add(struct keyvec *kv, const char *key, uint64_t size)
{
    if (kv->n == kv->cap) {
        size_t cap = kv->cap ? kv->cap * 2 : 64;
        char **v = realloc(kv->v, cap * sizeof *v);
        uint64_t *s;
        if (v == NULL)
            return -1;
        kv->v = v;
        s = realloc(kv->size, cap * sizeof *s);
        if (s == NULL)
            return -1;
        kv->size = s;
        kv->cap = cap;
    }
    if ((kv->v[kv->n] = strdup(key)) == NULL)
        return -1;
    kv->size[kv->n++] = size;
    return 0;
}

/* Walk dir/rel recursively, collecting keys that start with prefix. */
static int walk(const char *root, const char *rel, const char *prefix, struct keyvec *kv,
                mr_error *err)
{
    char path[4096 + 2], key[STORE_KEY_MAX + 256 + 2];
    DIR *d;
    struct dirent *e;
    int rc = 0;

    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    d = opendir(path);
    if (d == NULL) {
        if (errno == ENOENT && *rel)
            return 0;
        return mr_error_errno(err, MR_E_IO, errno, "cannot list %s", path);
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat sb;
        size_t klen, plen = strlen(prefix);

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || is_tmp(e->d_name))
            continue;
        if ((size_t)snprintf(key, sizeof key, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
            sizeof key)
            continue;       /* longer than any key: not an object */
        klen = strlen(key);
        /* Skip subtrees that cannot hold a key with the prefix. */
        if (strncmp(key, prefix, klen < plen ? klen : plen) != 0)
            continue;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue;   /* deleted meanwhile */
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot stat %s/%s", path, e->d_name);
        } else if (S_ISDIR(sb.st_mode)) {
            rc = walk(root, key, prefix, kv, err);
        } else if (S_ISREG(sb.st_mode) && klen >= plen && store_key_check(key, NULL) == 0) {
            if (keyvec_add(kv, key, (uint64_t)sb.st_size) != 0)
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
    }
    closedir(d);
    return rc;
}

static int cmp_idx(const void *a, const void *b, void *arg)
{
    char **v = arg;
    return strcmp(v[*(const size_t *)a], v[*(const size_t *)b]);
}

static int local_list(void *self, const char *prefix, store_list_fn fn, void *arg,
                      mr_error *err)
{
    struct local_store *ls = self;
    struct keyvec kv = { 0 };
    size_t *idx = NULL;
    int rc = walk(ls->dir, "", prefix, &kv, err);

    if (rc == 0 && kv.n > 0) {
        idx = malloc(kv.n * sizeof *idx);
        if (idx == NULL)
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < kv.n; i++)
            idx[i] = i;
        if (rc == 0)
            qsort_r(idx, kv.n, sizeof *idx, cmp_idx, kv.v);
        for (size_t i = 0; rc == 0 && i < kv.n; i++)
            rc = fn(arg, kv.v[idx[i]], kv.size[idx[i]], err);
    }
    for (size_t i = 0; i < kv.n; i++)
        free(kv.v[i]);
    free(kv.v);
    free(kv.size);
    free(idx);
    return rc;
}

static int local_del(void *self, const char *key, mr_error *err)
{
    struct local_store *ls = self;
    char *path = obj_path(ls, key), *slash;
    int rc = 0;

    if (path == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (unlink(path) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot remove the object");
    } else {
        slash = strrchr(path, '/');
        *slash = '\0';
        rc = durable_fsync_dir(path, err);
    }
    free(path);
    return rc;
}

static void local_close(void *self)
{
    struct local_store *ls = self;

    if (ls == NULL)
        return;
    free(ls->dir);
    free(ls);
}

static const struct store_driver local_driver = {
    .name = "local",
    .put = local_put,
    .get = local_get,
    .stat = local_stat,
    .list = local_list,
    .del = local_del,
    .close = local_close,
};

int store_local_open(const char *dir, mr_store **out, mr_error *err)
{
    struct local_store *ls;
    size_t n;
    int rc;

    if (dir == NULL || *dir == '\0' || out == NULL)
        return mr_error_set(err, MR_E_INVALID, "store_local_open: no directory");
    if ((rc = durable_mkdirs(dir, 0700, err)) != 0)
        return rc;
    ls = calloc(1, sizeof *ls);
    if (ls == NULL || (ls->dir = strdup(dir)) == NULL) {
        free(ls);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    n = strlen(ls->dir);
    while (n > 1 && ls->dir[n - 1] == '/')
        ls->dir[--n] = '\0';
    rc = store_new(&local_driver, ls, out, err);
    if (rc != 0)
        local_close(ls);
    return rc;
}

/* store.c — see store.h: the handle, key rules, and what every driver shares (hashing a
 * source, durable get into a file, verify by reading back). */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/durable.h"
#include "store/store_int.h"

struct mr_store {
    const struct store_driver *drv;
    void *self;
};

int store_new(const struct store_driver *drv, void *self, mr_store **out, mr_error *err)
{
    mr_store *st;

    if (drv == NULL || out == NULL)
        return mr_error_set(err, MR_E_INVALID, "store_new: no driver");
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    st->drv = drv;
    st->self = self;
    *out = st;
    return 0;
}

void *store_driver_state(mr_store *st, const struct store_driver *drv)
{
    return st != NULL && st->drv == drv ? st->self : NULL;
}

const char *store_name(const mr_store *st)
{
    return st != NULL ? st->drv->name : "none";
}

void store_close(mr_store *st)
{
    if (st == NULL)
        return;
    if (st->drv->close != NULL)
        st->drv->close(st->self);
    free(st);
}

/* The rules are those of the strictest driver: a key must map to one file path on the
 * local driver and to the same object on every S3 implementation. */
int store_key_check(const char *key, mr_error *err)
{
    size_t len, seg = 0;
    const unsigned char *p;

    if (key == NULL || *key == '\0')
        return mr_error_set(err, MR_E_INVALID, "empty object key");
    len = strlen(key);
    if (len > STORE_KEY_MAX)
        return mr_error_set(err, MR_E_INVALID, "object key longer than %d bytes", STORE_KEY_MAX);
    if (key[0] == '/' || key[len - 1] == '/')
        return mr_error_set(err, MR_E_INVALID, "object key starts or ends with '/'");
    for (p = (const unsigned char *)key;; p++) {
        if (*p == '/' || *p == '\0') {
            const char *s = (const char *)p - seg;
            if (seg == 0)
                return mr_error_set(err, MR_E_INVALID, "object key has an empty segment");
            if ((seg == 1 && s[0] == '.') || (seg == 2 && s[0] == '.' && s[1] == '.'))
                return mr_error_set(err, MR_E_INVALID, "object key has a '.' or '..' segment");
            if (seg > 255)
                return mr_error_set(err, MR_E_INVALID, "object key segment longer than 255 bytes");
            /* The local driver's temporary files are "<name>.tmp.<pid>.<n>". */
            if (memmem(s, seg, ".tmp.", 5) != NULL)
                return mr_error_set(err, MR_E_INVALID, "object key contains '.tmp.'");
            if (*p == '\0')
                break;
            seg = 0;
            continue;
        }
        if (*p < 0x20 || *p == 0x7f)
            return mr_error_set(err, MR_E_INVALID, "object key contains a control character");
        seg++;
    }
    return 0;
}

/* Read up to len bytes of src at off into buf. */
int store_source_read(const struct store_source *src, uint64_t off, void *buf, size_t len,
                      mr_error *err)
{
    size_t done = 0;

    if (off > src->size || len > src->size - off)
        return mr_error_set(err, MR_E_INTERNAL, "store: read past the end of the payload");
    if (src->buf != NULL) {
        memcpy(buf, src->buf + off, len);
        return 0;
    }
    while (done < len) {
        ssize_t n = pread(src->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return mr_error_errno(err, MR_E_IO, errno, "store: cannot read the payload");
        if (n == 0)
            return mr_error_set(err, MR_E_IO, "store: payload file shrank while being stored");
        done += (size_t)n;
    }
    return 0;
}

/* SHA-256 of len bytes of src from off. */
int store_source_sha256(const struct store_source *src, uint64_t off, uint64_t len,
                        unsigned char out[32], mr_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = NULL;
    int rc = 0;

    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
        goto out;
    }
    if (src->buf != NULL) {
        if (EVP_DigestUpdate(ctx, src->buf + off, (size_t)len) != 1)
            rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
    } else {
        buf = malloc(1 << 20);
        if (buf == NULL) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            goto out;
        }
        while (len > 0 && rc == 0) {
            size_t n = len > (1u << 20) ? (1u << 20) : (size_t)len;
            rc = store_source_read(src, off, buf, n, err);
            if (rc == 0 && EVP_DigestUpdate(ctx, buf, n) != 1)
                rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
            off += n;
            len -= n;
        }
    }
    if (rc == 0 && EVP_DigestFinal_ex(ctx, out, NULL) != 1)
        rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int do_put(mr_store *st, const char *key, const struct store_source *src,
                  const unsigned char sha256[32], time_t retain_until, mr_error *err)
{
    unsigned char h[32];
    int rc;

    if (st == NULL)
        return mr_error_set(err, MR_E_INVALID, "store_put: no store");
    if ((rc = store_key_check(key, err)) != 0)
        return rc;
    if (sha256 == NULL) {
        if ((rc = store_source_sha256(src, 0, src->size, h, err)) != 0)
            return rc;
        sha256 = h;
    }
    /* Retention only where the probe found Object Lock enabled and the date is ahead:
     * anything else is a plain put, with no lock header at all. */
    if (retain_until > time(NULL) && st->drv->put_retained != NULL
        && store_object_lock(st) == STORE_LOCK_ON)
        rc = st->drv->put_retained(st->self, key, src, sha256, retain_until, err);
    else
        rc = st->drv->put(st->self, key, src, sha256, err);
    if (rc != 0)
        mr_error_prefix(err, "%s: put %s", st->drv->name, key);
    return rc;
}

int store_put_buf(mr_store *st, const char *key, const void *buf, size_t len,
                  const unsigned char sha256[32], mr_error *err)
{
    static const unsigned char empty = 0;
    struct store_source src = { buf != NULL ? buf : &empty, -1, len };

    if (buf == NULL && len > 0)
        return mr_error_set(err, MR_E_INVALID, "store_put_buf: no buffer");
    return do_put(st, key, &src, sha256, 0, err);
}

int store_put_file(mr_store *st, const char *key, const char *path,
                   const unsigned char sha256[32], mr_error *err)
{
    return store_put_file_until(st, key, path, sha256, 0, err);
}

int store_put_file_until(mr_store *st, const char *key, const char *path,
                         const unsigned char sha256[32], time_t retain_until, mr_error *err)
{
    struct store_source src = { NULL, -1, 0 };
    struct stat sb;
    int rc;

    if (path == NULL)
        return mr_error_set(err, MR_E_INVALID, "store_put_file: no path");
    src.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (src.fd < 0)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot open %s", path);
    if (fstat(src.fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(src.fd);
        return mr_error_set(err, MR_E_INVALID, "%s is not a regular file", path);
    }
    src.size = (uint64_t)sb.st_size;
    rc = do_put(st, key, &src, sha256, retain_until, err);
    close(src.fd);
    return rc;
}

int store_get(mr_store *st, const char *key, uint64_t offset, uint64_t length,
              store_data_fn fn, void *arg, mr_error *err)
{
    int rc;

    if (st == NULL || fn == NULL)
        return mr_error_set(err, MR_E_INVALID, "store_get: no store or callback");
    if ((rc = store_key_check(key, err)) != 0)
        return rc;
    if (length == 0)
        return 0;
    rc = st->drv->get(st->self, key, offset, length, fn, arg, err);
    if (rc != 0)
        mr_error_prefix(err, "%s: get %s", st->drv->name, key);
    return rc;
}

static int to_durable(void *arg, const void *data, size_t len, mr_error *err)
{
    return durable_write(arg, data, len, err);
}

int store_get_file(mr_store *st, const char *key, const char *path, unsigned mode,
                   mr_error *err)
{
    durable_file *f;
    int rc;

    if ((rc = durable_open(&f, path, (mode_t)mode, err)) != 0)
        return rc;
    rc = store_get(st, key, 0, STORE_TO_END, to_durable, f, err);
    if (rc != 0) {
        durable_abort(f);
        return rc;
    }
    return durable_commit(f, err);
}

int store_stat(mr_store *st, const char *key, uint64_t *size, mr_error *err)
{
    int rc;

    if (st == NULL || size == NULL)
        return mr_error_set(err, MR_E_INVALID, "store_stat: no store");
    if ((rc = store_key_check(key, err)) != 0)
        return rc;
    rc = st->drv->stat(st->self, key, size, err);
    if (rc != 0)
        mr_error_prefix(err, "%s: stat %s", st->drv->name, key);
    return rc;
}

int store_list(mr_store *st, const char *prefix, store_list_fn fn, void *arg, mr_error *err)
{
    int rc;

    if (st == NULL || fn == NULL)
        return mr_error_set(err, MR_E_INVALID, "store_list: no store or callback");
    if (prefix == NULL)
        prefix = "";
    if (strlen(prefix) > STORE_KEY_MAX)
        return mr_error_set(err, MR_E_INVALID, "list prefix longer than %d bytes", STORE_KEY_MAX);
    for (const unsigned char *p = (const unsigned char *)prefix; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return mr_error_set(err, MR_E_INVALID, "list prefix contains a control character");
    rc = st->drv->list(st->self, prefix, fn, arg, err);
    if (rc != 0)
        mr_error_prefix(err, "%s: list", st->drv->name);
    return rc;
}

int store_delete(mr_store *st, const char *key, mr_error *err)
{
    int rc;

    if (st == NULL)
        return mr_error_set(err, MR_E_INVALID, "store_delete: no store");
    if ((rc = store_key_check(key, err)) != 0)
        return rc;
    rc = st->drv->del(st->self, key, err);
    if (rc != 0)
        mr_error_prefix(err, "%s: delete %s", st->drv->name, key);
    return rc;
}

struct verify_ctx {
    EVP_MD_CTX *md;
    uint64_t n;
};

static int verify_data(void *arg, const void *data, size_t len, mr_error *err)
{
    struct verify_ctx *v = arg;

    v->n += len;
    if (EVP_DigestUpdate(v->md, data, len) != 1)
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
    return 0;
}

int store_verify(mr_store *st, const char *key, uint64_t size, const unsigned char sha256[32],
                 mr_error *err)
{
    struct verify_ctx v = { EVP_MD_CTX_new(), 0 };
    unsigned char got[32];
    uint64_t have;
    int rc;

    if (sha256 == NULL)
        rc = mr_error_set(err, MR_E_INVALID, "store_verify: no SHA-256");
    else if (v.md == NULL || EVP_DigestInit_ex(v.md, EVP_sha256(), NULL) != 1)
        rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
    else if ((rc = store_stat(st, key, &have, err)) != 0)
        ;
    else if (have != size)
        rc = mr_error_set(err, MR_E_TAMPERED,
                          "%s: verify %s: stored size %llu, expected %llu", store_name(st), key,
                          (unsigned long long)have, (unsigned long long)size);
    else if (size > 0 && (rc = store_get(st, key, 0, STORE_TO_END, verify_data, &v, err)) != 0)
        ;
    else if (v.n != size)
        rc = mr_error_set(err, MR_E_TAMPERED, "%s: verify %s: read back %llu bytes, expected %llu",
                          store_name(st), key, (unsigned long long)v.n, (unsigned long long)size);
    else if (EVP_DigestFinal_ex(v.md, got, NULL) != 1)
        rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
    else if (memcmp(got, sha256, 32) != 0)
        rc = mr_error_set(err, MR_E_TAMPERED, "%s: verify %s: SHA-256 of the stored object differs",
                          store_name(st), key);
    EVP_MD_CTX_free(v.md);
    return rc;
}

const char *store_lock_name(enum store_lock_state s)
{
    switch (s) {
    case STORE_LOCK_ON: return "enabled";
    case STORE_LOCK_OFF: return "not enabled on the bucket";
    default: return "unsupported";
    }
}

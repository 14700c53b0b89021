/* secret.c — see secret.h.  One implementation for every secret mailret reads, so that
 * the permission check and the wiping cannot drift apart between modules. */
#include "common/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

static int mode_check(const char *path, const struct stat *st, mr_error *err)
{
    if (!S_ISREG(st->st_mode))
        return mr_error_set(err, MR_E_PERM, "secret file %s is not a regular file", path);
    if ((st->st_mode & 077) != 0)
        return mr_error_set(err, MR_E_PERM,
                            "secret file %s is accessible by group or others (mode %04o); "
                            "chmod 600 it", path, (unsigned)(st->st_mode & 07777));
    return 0;
}

int secret_file_check(const char *path, mr_error *err)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot stat secret file %s", path);
    return mode_check(path, &st, err);
}

int secret_file_read(const char *path, unsigned char *buf, size_t max, size_t *len,
                     mr_error *err)
{
    struct stat st;
    size_t got = 0;
    int fd, rc;

    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_PERM, errno,
                              "cannot open secret file %s", path);
    /* Check the file we opened, not the name: no window to swap it in between. */
    if (fstat(fd, &st) != 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot stat secret file %s", path);
        close(fd);
        return rc;
    }
    if ((rc = mode_check(path, &st, err)) != 0) {
        close(fd);
        return rc;
    }
    for (;;) {
        unsigned char extra;
        ssize_t n = got < max ? read(fd, buf + got, max - got) : read(fd, &extra, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot read secret file %s", path);
            break;
        }
        if (n == 0)
            break;
        if (got == max) {
            OPENSSL_cleanse(&extra, sizeof extra);
            rc = mr_error_set(err, MR_E_LIMIT, "secret file %s is larger than %zu bytes",
                              path, max);
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (rc != 0) {
        OPENSSL_cleanse(buf, got);
        return rc;
    }
    *len = got;
    return 0;
}

int secret_read_text(const char *path, const char *env, char **out, mr_error *err)
{
    char *buf;
    size_t len = 0;
    int rc = 0;

    *out = NULL;
    if (path == NULL && env == NULL)
        return mr_error_set(err, MR_E_CONFIG, "no secret source (neither file nor environment)");
    buf = malloc(SECRET_MAX + 1);
    if (buf == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (path != NULL) {
        rc = secret_file_read(path, (unsigned char *)buf, SECRET_MAX, &len, err);
    } else {
        const char *v = getenv(env);
        if (v == NULL)
            rc = mr_error_set(err, MR_E_NOTFOUND, "environment variable %s is not set", env);
        else if ((len = strlen(v)) > SECRET_MAX)
            rc = mr_error_set(err, MR_E_LIMIT, "environment variable %s is longer than %d bytes",
                              env, SECRET_MAX);
        else
            memcpy(buf, v, len);
    }
    if (rc == 0 && len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    if (rc == 0 && (len == 0 || memchr(buf, '\0', len) != NULL))
        rc = mr_error_set(err, MR_E_CONFIG, "the secret in %s%s is empty or holds a NUL byte",
                          path != NULL ? "file " : "environment variable ",
                          path != NULL ? path : env);
    if (rc != 0) {
        OPENSSL_cleanse(buf, SECRET_MAX + 1);
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

void secret_free(char *secret)
{
    if (secret == NULL)
        return;
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
}

/* batchdir.c — see batchdir.h.  The local-directory store. */
#include "backup/batchdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/durable.h"

#define VOLUME_PREFIX "vol-"
#define REID_PREFIX "reid-"
#define VOLUME_SUFFIX ".p7m"

const char *batchdir_name(enum batchdir_file f)
{
    switch (f) {
    case BATCHDIR_MANIFEST: return "manifest.json";
    case BATCHDIR_TOMBSTONE: return "expired.json";
    case BATCHDIR_LOCATOR: return "locator.p7m";
    }
    return "?";
}

void batchdir_volume_name(unsigned no, char out[BATCHDIR_NAME_MAX])
{
    snprintf(out, BATCHDIR_NAME_MAX, VOLUME_PREFIX "%04u" VOLUME_SUFFIX, no);
}

void batchdir_reid_name(unsigned no, char out[BATCHDIR_NAME_MAX])
{
    snprintf(out, BATCHDIR_NAME_MAX, REID_PREFIX "%04u" VOLUME_SUFFIX, no);
}

static bool shaped(const char *name, const char *prefix)
{
    return strncmp(name, prefix, strlen(prefix)) == 0 && strchr(name, '/') == NULL
           && strlen(name) < BATCHDIR_NAME_MAX;
}

bool batchdir_is_volume_name(const char *name)
{
    return shaped(name, VOLUME_PREFIX);
}

bool batchdir_is_reid_name(const char *name)
{
    return shaped(name, REID_PREFIX);
}

bool batchdir_is_content(const char *name)
{
    return strncmp(name, VOLUME_PREFIX, strlen(VOLUME_PREFIX)) == 0
           || strncmp(name, REID_PREFIX, strlen(REID_PREFIX)) == 0;
}

int batchdir_path(const char *dir, const char *name, char *out, size_t size, mr_error *err)
{
    if (strchr(name, '/') != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return mr_error_set(err, MR_E_INVALID, "%s is not a batch file name", name);
    if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size)
        return mr_error_set(err, MR_E_INVALID, "path of %s in %s is too long", name, dir);
    return 0;
}

bool batchdir_exists(const char *dir, const char *name, unsigned long long *size)
{
    char path[BATCHDIR_PATH_MAX];
    struct stat st;
    int in_store = batchdir_store_caching() ? batchdir_store_lookup(dir, name, size) : -1;

    if (in_store >= 0)
        return in_store == 1;
    if (batchdir_path(dir, name, path, sizeof path, NULL) != 0 || stat(path, &st) != 0)
        return false;
    if (size != NULL)
        *size = (unsigned long long)st.st_size;
    return true;
}

int batchdir_read(const char *dir, const char *name, size_t max, unsigned char **out,
                  size_t *len, mr_error *err)
{
    char path[BATCHDIR_PATH_MAX];
    unsigned char *buf;
    size_t n;
    FILE *f;
    int rc;

    *out = NULL;
    *len = 0;
    rc = batchdir_read_path(dir, name, path, sizeof path, err);
    if (rc != 0)
        return rc;
    f = fopen(path, "rb");
    if (f == NULL)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot read %s", path);
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return mr_error_set(err, MR_E_IO, "cannot read %s", path);
    }
    fclose(f);
    if (n > max) {
        free(buf);
        return mr_error_set(err, MR_E_LIMIT, "%s is too large", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int batchdir_write(const char *dir, const char *name, const void *data, size_t len,
                   mr_error *err)
{
    char path[BATCHDIR_PATH_MAX];
    int rc = batchdir_path(dir, name, path, sizeof path, err);

    return rc != 0 ? rc : durable_write_file(path, data, len, 0640, err);
}

int batchdir_remove(const char *dir, const char *name, mr_error *err)
{
    char path[BATCHDIR_PATH_MAX];
    int rc = batchdir_path(dir, name, path, sizeof path, err);

    if (rc != 0)
        return rc;
    if (unlink(path) != 0 && errno != ENOENT)
        return mr_error_errno(err, MR_E_IO, errno, "cannot remove %s", path);
    return 0;
}

int batchdir_sync(const char *dir, mr_error *err)
{
    return durable_fsync_dir(dir, err);
}

int batchdir_list(const char *dir, batchdir_list_fn fn, void *ctx, mr_error *err)
{
    DIR *d;
    struct dirent *de;
    int rc = 0;

    if (batchdir_store_caching()) {
        rc = batchdir_store_list(dir, fn, ctx, err);
        if (rc != 1)
            return rc;
        rc = 0;
    }
    d = opendir(dir);
    if (d == NULL)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot read %s", dir);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = fn(ctx, de->d_name, err);
    }
    closedir(d);
    return rc;
}

static int remove_one(void *ctx, const char *name, mr_error *err)
{
    return batchdir_remove(ctx, name, err);
}

int batchdir_destroy(const char *dir, mr_error *err)
{
    char parent[BATCHDIR_PATH_MAX], *slash;
    int rc = batchdir_list(dir, remove_one, (void *)dir, err);

    if (rc == MR_E_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (rmdir(dir) != 0 && errno != ENOENT)
        return mr_error_errno(err, MR_E_IO, errno, "cannot remove %s", dir);
    snprintf(parent, sizeof parent, "%s", dir);
    slash = strrchr(parent, '/');
    if (slash != NULL && slash != parent) {
        *slash = '\0';
        rc = durable_fsync_dir(parent, err);
    }
    return rc;
}

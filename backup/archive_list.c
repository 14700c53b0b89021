/* archive_list.c — finding batches on disk: ARCHIVE_DIR/<mailbox>/<YYYY-MM>-<batch id>/. */
#include "backup/archive.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int archive_mailbox_dirname(const char *mailbox, char *out, size_t size, mr_error *err)
{
    size_t n = strlen(mailbox);

    if (n == 0 || n >= size || strcmp(mailbox, ".") == 0 || strcmp(mailbox, "..") == 0)
        return mr_error_set(err, MR_E_INVALID, "mailbox name unusable as a directory name");
    for (size_t i = 0; i < n; i++) {
        char c = mailbox[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[n] = '\0';
    if (out[0] == '.')
        out[0] = '_';   /* no hidden or relative-looking names */
    return 0;
}

static int is_batch_name(const char *name)
{
    /* YYYY-MM-<id> */
    return strlen(name) > 8 && name[4] == '-' && name[7] == '-'
           && strspn(name, "0123456789") == 4;
}

static int cmp_ref(const void *a, const void *b)
{
    return strcmp(((const struct archive_batch_ref *)a)->dir,
                  ((const struct archive_batch_ref *)b)->dir);
}

static int scan_mailbox(const char *archive_dir, const char *mbdir,
                        struct archive_batch_ref **v, size_t *n, size_t *cap, mr_error *err)
{
    char path[4096];
    DIR *d;
    struct dirent *de;
    int rc = 0;

    snprintf(path, sizeof path, "%s/%s", archive_dir, mbdir);
    d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 0 : mr_error_errno(err, MR_E_IO, errno, "cannot read %s", path);
    while ((de = readdir(d)) != NULL) {
        struct archive_batch_ref *r;
        char mpath[4200];
        if (!is_batch_name(de->d_name))
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 32;
            struct archive_batch_ref *nv = realloc(*v, nc * sizeof *nv);
            if (nv == NULL) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            *v = nv;
            *cap = nc;
        }
        r = &(*v)[*n];
        memset(r, 0, sizeof *r);
        snprintf(r->mailbox, sizeof r->mailbox, "%s", mbdir);
        if ((size_t)snprintf(r->dir, sizeof r->dir, "%s/%s", path, de->d_name)
            >= sizeof r->dir)
            continue;
        snprintf(mpath, sizeof mpath, "%s/%s", r->dir, ARCHIVE_MANIFEST);
        r->has_manifest = access(mpath, F_OK) == 0;
        (*n)++;
    }
    closedir(d);
    return rc;
}

int archive_batch_list(const char *archive_dir, const char *mailbox,
                       struct archive_batch_ref **out, size_t *n, mr_error *err)
{
    struct archive_batch_ref *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;

    if (mailbox != NULL) {
        char mb[256];
        rc = archive_mailbox_dirname(mailbox, mb, sizeof mb, err);
        if (rc == 0)
            rc = scan_mailbox(archive_dir, mb, &v, &cnt, &cap, err);
    } else {
        DIR *d = opendir(archive_dir);
        struct dirent *de;
        if (d == NULL) {
            if (errno != ENOENT)
                return mr_error_errno(err, MR_E_IO, errno, "cannot read archive directory %s",
                                      archive_dir);
        } else {
            while (rc == 0 && (de = readdir(d)) != NULL) {
                if (de->d_name[0] == '.')
                    continue;
                rc = scan_mailbox(archive_dir, de->d_name, &v, &cnt, &cap, err);
            }
            closedir(d);
        }
    }
    if (rc != 0) {
        free(v);
        return rc;
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof *v, cmp_ref);
    *out = v;
    *n = cnt;
    return 0;
}

int archive_batch_find(const char *archive_dir, const char *batch, char *dir, size_t size,
                       mr_error *err)
{
    struct archive_batch_ref *v = NULL;
    size_t n = 0, found = 0;
    int rc;

    if (batch == NULL || *batch == '\0' || strchr(batch, '/') != NULL)
        return mr_error_set(err, MR_E_INVALID, "bad batch id");
    rc = archive_batch_list(archive_dir, NULL, &v, &n, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *base = strrchr(v[i].dir, '/') + 1;
        /* directory "<YYYY-MM>-<id>": match the whole name or the id part */
        if (strcmp(base, batch) == 0 || strcmp(base + 8, batch) == 0) {
            if (found++ == 0)
                snprintf(dir, size, "%s", v[i].dir);
        }
    }
    free(v);
    if (found == 0)
        return mr_error_set(err, MR_E_NOTFOUND, "batch %s not found under %s", batch,
                            archive_dir);
    if (found > 1)
        return mr_error_set(err, MR_E_INVALID, "batch id %s is ambiguous", batch);
    return 0;
}

/* maildir_source.c — see maildir_source.h.  One message in memory at a time. */
#include "backup/maildir_source.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backup/buf.h"

struct name_list {
    char **v;
    size_t n, cap;
};

static int collect(const char *dir, const char *sub, struct name_list *l, mr_error *err)
{
    char path[4096];
    DIR *d;
    struct dirent *de;

    snprintf(path, sizeof path, "%s/%s", dir, sub);
    d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 0 : mr_error_errno(err, MR_E_IO, errno, "cannot read %s", path);
    while ((de = readdir(d)) != NULL) {
        char *s;
        if (de->d_name[0] == '.')
            continue;
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 128;
            char **nv = realloc(l->v, nc * sizeof *nv);
            if (nv == NULL) {
                closedir(d);
                return mr_error_set(err, MR_E_NOMEM, "out of memory");
            }
            l->v = nv;
            l->cap = nc;
        }
        s = malloc(strlen(sub) + strlen(de->d_name) + 2);
        if (s == NULL) {
            closedir(d);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        sprintf(s, "%s/%s", sub, de->d_name);
        l->v[l->n++] = s;
    }
    closedir(d);
    return 0;
}

static int cmp_base(const void *a, const void *b)
{
    const char *x = strchr(*(char *const *)a, '/') + 1, *y = strchr(*(char *const *)b, '/') + 1;

    return strcmp(x, y);
}

static void flags_from_name(const char *name, char *out, size_t size)
{
    static const struct { char letter; const char *flag; } map[] = {
        { 'S', "\\Seen" }, { 'R', "\\Answered" }, { 'F', "\\Flagged" },
        { 'T', "\\Deleted" }, { 'D', "\\Draft" },
    };
    const char *info = strstr(name, ":2,");

    out[0] = '\0';
    if (info == NULL)
        return;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strchr(info + 3, map[i].letter) != NULL) {
            size_t used = strlen(out);
            snprintf(out + used, size - used, "%s%s", used ? " " : "", map[i].flag);
        }
}

static int read_file(const char *path, struct mr_buf *b, mr_error *err)
{
    FILE *f = fopen(path, "rb");
    unsigned char tmp[65536];
    size_t n;
    int rc = 0;

    if (f == NULL)
        return mr_error_errno(err, MR_E_IO, errno, "cannot open a Maildir message");
    while (rc == 0 && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
        rc = buf_append(b, tmp, n, err);
    if (rc == 0 && ferror(f))
        rc = mr_error_set(err, MR_E_IO, "cannot read a Maildir message");
    fclose(f);
    return rc;
}

int maildir_source_feed(const char *dir, time_t before, archive_batch *b, size_t *n_added,
                        mr_error *err)
{
    struct name_list l = { 0 };
    int rc = collect(dir, "cur", &l, err);

    *n_added = 0;
    if (rc == 0)
        rc = collect(dir, "new", &l, err);
    if (rc == 0 && l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, cmp_base);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char path[4600], flags[80];
        struct stat st;
        struct mr_buf body = { 0 };

        snprintf(path, sizeof path, "%s/%s", dir, l.v[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (before != 0 && st.st_mtime >= before)
            continue;
        flags_from_name(l.v[i], flags, sizeof flags);
        rc = read_file(path, &body, err);
        if (rc == 0) {
            struct archive_message m = {
                .uidvalidity = 1, .uid = (uint32_t)(i + 1), .internaldate = st.st_mtime,
                .flags = flags, .bytes = body.data != NULL ? body.data : (unsigned char *)"",
                .len = body.len,
            };
            rc = archive_batch_add(b, &m, err);
        }
        buf_free(&body);
        if (rc == 0)
            (*n_added)++;
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return rc;
}

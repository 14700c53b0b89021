/* maildir_source.c — see maildir_source.h.  One message in memory at a time. */
#include "backup/maildir_source.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backup/buf.h"
#include "backup/maildir_keywords.h"

/* Every file name of cur/ and new/, to be sorted before the first message is read (the
 * UIDs follow that order).  Packed: the names ("cur/<name>\0" ...) in one buffer and an
 * array of offsets into it, ~50 bytes a message instead of a malloc'd string each (a
 * 200,000-message import held 20 MB of names that way). */
struct name_list {
    struct mr_buf text;
    size_t *off;
    size_t n, cap;
};

static int collect(const char *dir, const char *sub, struct name_list *l, mr_error *err)
{
    char path[4096];
    DIR *d;
    struct dirent *de;
    int rc = 0;

    snprintf(path, sizeof path, "%s/%s", dir, sub);
    d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 0 : mr_error_errno(err, MR_E_IO, errno, "cannot read %s", path);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 128;
            size_t *nv = realloc(l->off, nc * sizeof *nv);
            if (nv == NULL) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            l->off = nv;
            l->cap = nc;
        }
        l->off[l->n] = l->text.len;
        rc = buf_append(&l->text, sub, strlen(sub), err);
        if (rc == 0)
            rc = buf_append(&l->text, "/", 1, err);
        if (rc == 0)
            rc = buf_append(&l->text, de->d_name, strlen(de->d_name) + 1, err);
        if (rc == 0)
            l->n++;
    }
    closedir(d);
    return rc;
}

/* qsort_r: the offsets are sorted by the names they point to, without the "cur/" or
 * "new/" prefix. */
static int cmp_base(const void *a, const void *b, void *arg)
{
    const char *text = arg;
    const char *x = strchr(text + *(const size_t *)a, '/') + 1;
    const char *y = strchr(text + *(const size_t *)b, '/') + 1;

    return strcmp(x, y);
}

/* One more flag in a space-separated list. */
static int flag_add(struct mr_buf *out, const char *flag, mr_error *err)
{
    int rc = out->len > 0 ? buf_append(out, " ", 1, err) : 0;

    return rc == 0 ? buf_append(out, flag, strlen(flag), err) : rc;
}

/* The IMAP flags of a message from its file name's ":2," info: the system flags by their
 * upper-case letters, then the keywords by their lower-case letters through the
 * Maildir's dovecot-keywords table (a letter the table does not name is left out, as
 * Dovecot does).  out is a space-separated list, NUL-terminated. */
static int flags_from_name(const char *name, const maildir_keywords *kw, struct mr_buf *out,
                           mr_error *err)
{
    static const struct { char letter; const char *flag; } map[] = {
        { 'S', "\\Seen" }, { 'R', "\\Answered" }, { 'F', "\\Flagged" },
        { 'T', "\\Deleted" }, { 'D', "\\Draft" },
    };
    const char *info = strstr(name, ":2,");
    int rc = 0;

    buf_wipe_reset(out);
    if (info != NULL) {
        for (size_t i = 0; rc == 0 && i < sizeof map / sizeof map[0]; i++)
            if (strchr(info + 3, map[i].letter) != NULL)
                rc = flag_add(out, map[i].flag, err);
        for (char c = 'a'; rc == 0 && c < 'a' + MAILDIR_KEYWORDS_MAX; c++) {
            const char *k = strchr(info + 3, c) != NULL ? maildir_keywords_name(kw, c) : NULL;
            if (k != NULL)
                rc = flag_add(out, k, err);
        }
    }
    return rc == 0 ? buf_append(out, "", 1, err) : rc;   /* the NUL */
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
    struct mr_buf flags = { 0 };
    maildir_keywords *kw = NULL;
    int rc = collect(dir, "cur", &l, err);

    *n_added = 0;
    if (rc == 0)
        rc = collect(dir, "new", &l, err);
    if (rc == 0)
        rc = maildir_keywords_open(dir, &kw, err);
    if (rc == 0 && l.n > 1)
        qsort_r(l.off, l.n, sizeof *l.off, cmp_base, l.text.data);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const char *name = (const char *)l.text.data + l.off[i];
        char path[4600];
        struct stat st;
        struct mr_buf body = { 0 };

        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (before != 0 && st.st_mtime >= before)
            continue;
        rc = flags_from_name(name, kw, &flags, err);
        if (rc == 0)
            rc = read_file(path, &body, err);
        if (rc == 0) {
            struct archive_message m = {
                .uidvalidity = 1, .uid = (uint32_t)(i + 1), .internaldate = st.st_mtime,
                .flags = (const char *)flags.data,
                .bytes = body.data != NULL ? body.data : (unsigned char *)"",
                .len = body.len,
            };
            rc = archive_batch_add(b, &m, err);
        }
        buf_free(&body);
        if (rc == 0)
            (*n_added)++;
    }
    buf_free(&l.text);
    buf_free(&flags);
    free(l.off);
    maildir_keywords_free(kw);
    return rc;
}

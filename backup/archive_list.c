/* archive_list.c — finding batches on disk: ARCHIVE_DIR/<mailbox>/<YYYY-MM>-<batch id>/. */
#include "backup/archive.h"
#include "backup/batchdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

static bool dirname_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
}

int archive_mailbox_dirname(const char *mailbox, char *out, size_t size, mr_error *err)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = mailbox != NULL ? strlen(mailbox) : 0, o = 0;

    if (n == 0)
        return mr_error_set(err, MR_E_INVALID, "mailbox name unusable as a directory name");
    /* Percent-escaping: every byte outside the safe set, '%' itself and a leading '.'
     * become %XX, so two mailboxes never share a directory and the name can be read
     * back; names made of safe bytes only (INBOX, Sager) are unchanged. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)mailbox[i];
        if (dirname_safe(c) && !(i == 0 && c == '.')) {
            if (o + 1 >= size)
                goto too_long;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= size)
                goto too_long;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    if (o > 255)
        goto too_long;
    return 0;
too_long:
    return mr_error_set(err, MR_E_INVALID, "mailbox name too long for a directory name "
                        "(at most 255 bytes once escaped)");
}

int archive_mailbox_from_dirname(const char *dirname, char *out, size_t size, mr_error *err)
{
    size_t o = 0;

    for (const char *p = dirname; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            unsigned v = 0;
            for (int k = 1; k <= 2; k++) {
                char h = p[k];
                if (h >= '0' && h <= '9')
                    v = v * 16 + (unsigned)(h - '0');
                else if (h >= 'A' && h <= 'F')
                    v = v * 16 + (unsigned)(h - 'A' + 10);
                else
                    return mr_error_set(err, MR_E_INVALID, "archive directory name with a "
                                        "bad %% escape");
            }
            c = (unsigned char)v;
            p += 2;
            if (dirname_safe(c) && !(o == 0 && c == '.'))
                return mr_error_set(err, MR_E_INVALID, "archive directory name with a "
                                    "needless %% escape");
        } else if (!dirname_safe(c) || (o == 0 && c == '.')) {
            return mr_error_set(err, MR_E_INVALID, "not an archive mailbox directory name");
        }
        if (c == 0 || o + 1 >= size)
            return mr_error_set(err, MR_E_INVALID, "archive directory name unusable");
        out[o++] = (char)c;
    }
    if (o == 0)
        return mr_error_set(err, MR_E_INVALID, "empty archive directory name");
    out[o] = '\0';
    return 0;
}

/* The directory name older mailret versions used: unsafe bytes as '_', a leading '.'
 * as '_'.  Several mailboxes could share it; only batches whose manifest names the
 * mailbox are taken from it. */
static void legacy_dirname(const char *mailbox, char *out, size_t size)
{
    size_t n = strlen(mailbox);

    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = dirname_safe((unsigned char)mailbox[i]) ? mailbox[i] : '_';
    out[n] = '\0';
    if (out[0] == '.')
        out[0] = '_';
}

#define MANIFEST_NAMES_MAX ((size_t)16 << 20)     /* manifest.c reads at most as much */

/* True if the manifest in dir names this mailbox.  Read for choosing only: restore and
 * verify authenticate the manifest before trusting anything in it. */
static bool manifest_names(const char *dir, const char *mailbox)
{
    unsigned char *raw = NULL;
    size_t len = 0;
    json_t *o, *m;
    bool same;

    if (batchdir_read(dir, batchdir_name(BATCHDIR_MANIFEST), MANIFEST_NAMES_MAX, &raw, &len,
                      NULL) != 0)
        return false;
    o = json_loadb((const char *)raw, len, 0, NULL);
    free(raw);
    if (o == NULL)
        return false;
    m = json_object_get(o, "mailbox");
    same = json_is_string(m) && strcmp(json_string_value(m), mailbox) == 0;
    json_decref(o);
    return same;
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
        /* Reading from the object store, a directory the store has nothing of is what
         * is left in the cache of a batch that is gone. */
        if (batchdir_store_dir_gone(r->dir))
            continue;
        r->has_manifest = batchdir_exists(r->dir, batchdir_name(BATCHDIR_MANIFEST), NULL);
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
        char mb[256], old[256];
        size_t keep = 0;
        rc = archive_mailbox_dirname(mailbox, mb, sizeof mb, err);
        if (rc == 0)
            rc = scan_mailbox(archive_dir, mb, &v, &cnt, &cap, err);
        legacy_dirname(mailbox, old, sizeof old);
        if (rc == 0 && strcmp(old, mb) != 0)
            rc = scan_mailbox(archive_dir, old, &v, &cnt, &cap, err);
        /* A legacy directory may hold other mailboxes' batches: a batch counts when its
         * manifest names this mailbox (an interrupted run, without one, only in the
         * mailbox's own directory). */
        for (size_t i = 0; rc == 0 && i < cnt; i++) {
            if (v[i].has_manifest ? manifest_names(v[i].dir, mailbox)
                                  : strcmp(v[i].mailbox, mb) == 0)
                v[keep++] = v[i];
        }
        if (rc == 0)
            cnt = keep;
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

void archive_mailbox_account(const char *key, char out[ARCHIVE_ACCOUNT_NAME_MAX + 1])
{
    size_t n = strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789-_");

    if (n >= 1 && n <= ARCHIVE_ACCOUNT_NAME_MAX && key[n] == ':' && key[0] != '-'
        && key[0] != '_') {
        memcpy(out, key, n);
        out[n] = '\0';
    } else {
        snprintf(out, ARCHIVE_ACCOUNT_NAME_MAX + 1, "%s", ARCHIVE_DEFAULT_ACCOUNT);
    }
}

/* The mailbox key a batch was filed under: its manifest's, else its directory's. */
static void batch_mailbox_key(const char *dir, bool has_manifest, const char *mbdir,
                              char *out, size_t size)
{
    char path[BATCHDIR_PATH_MAX];
    json_t *o = NULL, *m;
    mr_error e;

    if (has_manifest
        && batchdir_path(dir, batchdir_name(BATCHDIR_MANIFEST), path, sizeof path, NULL) == 0)
        o = json_load_file(path, 0, NULL);
    m = json_object_get(o, "mailbox");
    if (json_is_string(m))
        snprintf(out, size, "%s", json_string_value(m));
    else if (archive_mailbox_from_dirname(mbdir, out, size, &e) != 0)
        snprintf(out, size, "%s", mbdir);
    json_decref(o);
}

void archive_batch_account(const char *dir, char out[ARCHIVE_ACCOUNT_NAME_MAX + 1])
{
    char mbdir[256] = "", key[256];
    const char *end = strrchr(dir, '/'), *start = end;

    /* ARCHIVE_DIR/<mailbox directory>/<batch directory> */
    while (start != NULL && start > dir && start[-1] != '/')
        start--;
    if (end != NULL && (size_t)(end - start) < sizeof mbdir)
        snprintf(mbdir, sizeof mbdir, "%.*s", (int)(end - start), start);
    batch_mailbox_key(dir, batchdir_exists(dir, batchdir_name(BATCHDIR_MANIFEST), NULL), mbdir,
                      key, sizeof key);
    archive_mailbox_account(key, out);
}

int archive_batch_list_account(const char *archive_dir, const char *account,
                               struct archive_batch_ref **out, size_t *n, mr_error *err)
{
    size_t keep = 0;
    int rc = archive_batch_list(archive_dir, NULL, out, n, err);

    for (size_t i = 0; rc == 0 && i < *n; i++) {
        const struct archive_batch_ref *r = &(*out)[i];
        char key[256], owner[ARCHIVE_ACCOUNT_NAME_MAX + 1];
        batch_mailbox_key(r->dir, r->has_manifest, r->mailbox, key, sizeof key);
        archive_mailbox_account(key, owner);
        if (strcmp(owner, account) == 0)
            (*out)[keep++] = *r;
    }
    if (rc == 0)
        *n = keep;
    return rc;
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

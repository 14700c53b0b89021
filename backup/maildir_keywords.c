/* maildir_keywords.c — see maildir_keywords.h. */
#include "backup/maildir_keywords.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/durable.h"

#define KEYWORDS_FILE "dovecot-keywords"
/* IMAP atoms are short in practice; a longer one is treated as no keyword at all. */
#define KEYWORD_MAX 200

struct maildir_keywords {
    char path[4200];                        /* <dir>/dovecot-keywords */
    char *names[MAILDIR_KEYWORDS_MAX];      /* by index; NULL = free */
    bool changed;
    size_t dropped;
};

void maildir_keywords_free(maildir_keywords *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
        free(k->names[i]);
    free(k);
}

/* One "<index> <keyword>" line of an existing table; anything else is skipped, as Dovecot
 * does. */
static int load_line(maildir_keywords *k, char *line, mr_error *err)
{
    char *end, *name;
    long idx;

    line[strcspn(line, "\r\n")] = '\0';
    idx = strtol(line, &end, 10);
    if (end == line || *end != ' ' || idx < 0 || idx >= MAILDIR_KEYWORDS_MAX)
        return 0;
    name = end + 1;
    if (*name == '\0' || strlen(name) > KEYWORD_MAX || k->names[idx] != NULL)
        return 0;
    k->names[idx] = strdup(name);
    if (k->names[idx] == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    return 0;
}

int maildir_keywords_open(const char *dir, maildir_keywords **out, mr_error *err)
{
    maildir_keywords *k = calloc(1, sizeof *k);
    char line[KEYWORD_MAX + 32];
    FILE *f;
    int rc = 0;

    *out = NULL;
    if (k == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if ((size_t)snprintf(k->path, sizeof k->path, "%s/%s", dir, KEYWORDS_FILE)
        >= sizeof k->path) {
        free(k);
        return mr_error_set(err, MR_E_INVALID, "Maildir path too long");
    }
    f = fopen(k->path, "r");
    if (f == NULL && errno != ENOENT) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot read %s", k->path);
        free(k);
        return rc;
    }
    while (f != NULL && rc == 0 && fgets(line, sizeof line, f) != NULL)
        rc = load_line(k, line, err);
    if (f != NULL && rc == 0 && ferror(f))
        rc = mr_error_set(err, MR_E_IO, "cannot read %s", k->path);
    if (f != NULL)
        fclose(f);
    if (rc != 0) {
        maildir_keywords_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

/* Index of a keyword, added to the table if it is new; -1 when the table is full. */
static int keyword_index(maildir_keywords *k, const char *name, size_t len, mr_error *err,
                         int *rc)
{
    int free_slot = -1;

    *rc = 0;
    for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
        if (k->names[i] == NULL) {
            if (free_slot < 0)
                free_slot = i;
        } else if (strlen(k->names[i]) == len && strncmp(k->names[i], name, len) == 0) {
            return i;
        }
    }
    if (free_slot < 0)
        return -1;
    k->names[free_slot] = strndup(name, len);
    if (k->names[free_slot] == NULL) {
        *rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        return -1;
    }
    k->changed = true;
    return free_slot;
}

const char *maildir_keywords_name(const maildir_keywords *k, char letter)
{
    if (k == NULL || letter < 'a' || letter >= 'a' + MAILDIR_KEYWORDS_MAX)
        return NULL;
    return k->names[letter - 'a'];
}

int maildir_keywords_letters(maildir_keywords *k, const char *flags,
                             char out[MAILDIR_KEYWORDS_MAX + 1], mr_error *err)
{
    bool have[MAILDIR_KEYWORDS_MAX] = { false };
    const char *p = flags != NULL ? flags : "";
    size_t n = 0;

    while (*p != '\0') {
        size_t len = strcspn(p, " ");
        if (len > 0 && p[0] != '\\' && len <= KEYWORD_MAX) {
            int rc, idx = keyword_index(k, p, len, err, &rc);
            if (rc != 0)
                return rc;
            if (idx < 0)
                k->dropped++;
            else
                have[idx] = true;
        }
        p += len;
        while (*p == ' ')
            p++;
    }
    /* Ascending letters, the order Maildir readers expect in the info. */
    for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
        if (have[i])
            out[n++] = (char)('a' + i);
    out[n] = '\0';
    return 0;
}

size_t maildir_keywords_dropped(const maildir_keywords *k)
{
    return k->dropped;
}

int maildir_keywords_save(maildir_keywords *k, mr_error *err)
{
    char buf[MAILDIR_KEYWORDS_MAX * (KEYWORD_MAX + 8)];
    size_t used = 0;

    if (!k->changed)
        return 0;
    for (int i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
        if (k->names[i] != NULL)
            used += (size_t)snprintf(buf + used, sizeof buf - used, "%d %s\n", i, k->names[i]);
    /* Replaced atomically (temporary file, rename): Dovecot may be reading the old table
     * meanwhile. */
    int rc = durable_write_file(k->path, buf, used, 0600, err);
    if (rc == 0)
        k->changed = false;
    return rc;
}

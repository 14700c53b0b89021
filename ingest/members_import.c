/* members_import.c — see members_import.h. */
#include "ingest/members_import.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/cpr.h"
#include "ingest/csv.h"

#define IMPORT_MAX_REPORTED 1000    /* bad rows reported one by one; then only counted */

enum { COL_MEMBER, COL_CPR, COL_NAME, COL_EMAILS, COL_CASES, COL_COUNT };
static const char *const import_columns[COL_COUNT] = { "member_id", "cpr", "name", "emails",
                                                       "cases" };

struct import_ctx {
    members_db *db;
    const char *path;
    members_row_error_fn on_error;
    void *cb_ctx;
    struct members_import_result *res;
    mr_error first;             /* first bad row, for the summary */
};

/* Ids become Maildir directory names and SQL keys: a conservative alphabet keeps them
 * safe in both and in log lines. */
static bool import_id_ok(const char *s, bool allow_extra)
{
    size_t n = strlen(s);

    if (n == 0 || n >= MEMBERS_ID_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.')
            continue;
        if (allow_extra && (c == '/' || c == '#'))
            continue;
        return false;
    }
    return true;
}

/* A plausible addr-spec: one '@', non-empty local part and a dotted domain, no space or
 * control characters.  Full RFC 5322 quoting is not needed for a registry. */
static bool import_addr_ok(const char *s)
{
    const char *at = strchr(s, '@');
    size_t n = strlen(s);

    if (at == NULL || at == s || strchr(at + 1, '@') != NULL || n > 254)
        return false;
    if (strchr(at + 1, '.') == NULL || at[1] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == '"')
            return false;
    }
    return true;
}

static void import_trim(char **s)
{
    char *p = *s, *e;

    while (*p == ' ' || *p == '\t')
        p++;
    e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    *s = p;
}

static void import_bad_msg(struct import_ctx *c, const char *msg)
{
    if (c->res->bad_rows == 0)
        mr_error_set(&c->first, MR_E_PARSE, "%s", msg);
    if (c->res->bad_rows < IMPORT_MAX_REPORTED && c->on_error != NULL)
        c->on_error(c->cb_ctx, msg);
    c->res->bad_rows++;
}

static void import_bad(struct import_ctx *c, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void import_bad(struct import_ctx *c, size_t line, const char *fmt, ...)
{
    char cause[256], msg[MR_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s:%zu: %s", c->path, line, cause);
    import_bad_msg(c, msg);
}

/* Split a ';' list in place and call fn on each trimmed, non-empty item.  Returns the
 * first non-zero from fn. */
static int import_each(char *list, int (*fn)(struct import_ctx *, size_t, const char *,
                                               char *),
                       struct import_ctx *c, size_t line, const char *member)
{
    char *save = NULL, *item;

    for (item = strtok_r(list, ";", &save); item != NULL; item = strtok_r(NULL, ";", &save)) {
        int rc;
        import_trim(&item);
        if (*item == '\0')
            continue;
        if ((rc = fn(c, line, member, item)) != 0)
            return rc;
    }
    return 0;
}

static int import_email(struct import_ctx *c, size_t line, const char *member, char *addr)
{
    mr_error e;
    int rc;

    if (!import_addr_ok(addr)) {
        import_bad(c, line, "invalid e-mail address in column emails");
        return 0;
    }
    if ((rc = members_add_address(c->db, member, addr, &e)) != 0) {
        mr_error_set(&c->first, rc, "%s:%zu: %s", c->path, line, e.msg);
        return rc;
    }
    c->res->addresses++;
    return 0;
}

static int import_case(struct import_ctx *c, size_t line, const char *member, char *id)
{
    char owner[MEMBERS_ID_MAX];
    mr_error e;
    int rc;

    if (!import_id_ok(id, true)) {
        import_bad(c, line, "invalid case id in column cases (letters, digits, - _ . / #)");
        return 0;
    }
    rc = members_add_case(c->db, member, id, owner, &e);
    if (rc == MR_E_EXISTS) {
        /* Case ids are the fund's own references, not personal data: safe to name. */
        import_bad(c, line, "case %s already belongs to member %s", id, owner);
        return 0;
    }
    if (rc != 0) {
        mr_error_set(&c->first, rc, "%s:%zu: %s", c->path, line, e.msg);
        return rc;
    }
    c->res->cases++;
    return 0;
}

/* Returns non-zero only for errors that stop the import (database failures). */
static int import_row(struct import_ctx *c, size_t line, char **f)
{
    char *member = f[COL_MEMBER], *cpr = f[COL_CPR], *name = f[COL_NAME];
    char norm[CPR_LEN + 1], owner[MEMBERS_ID_MAX];
    size_t bad_before = c->res->bad_rows;
    mr_error e;
    int rc;

    import_trim(&member);
    import_trim(&cpr);
    if (!import_id_ok(member, false)) {
        import_bad(c, line, "invalid member_id (1-63 of letters, digits, - _ .)");
        return 0;
    }
    rc = members_add_member(c->db, member, name, &e);
    if (rc == MR_E_EXISTS) {
        import_bad(c, line, "member_id %s appears more than once", member);
        return 0;
    }
    if (rc != 0) {
        mr_error_set(&c->first, rc, "%s:%zu: %s", c->path, line, e.msg);
        return rc;
    }
    if (*cpr != '\0') {
        if (!cpr_normalise(cpr, norm)) {
            import_bad(c, line, "invalid CPR number in column cpr (want DDMMYY-SSSS)");
        } else {
            rc = members_add_cpr(c->db, member, norm, owner, &e);
            if (rc == MR_E_EXISTS)
                import_bad(c, line, "CPR number already registered to member %s", owner);
            else if (rc != 0)
                return mr_error_set(&c->first, rc, "%s:%zu: %s", c->path, line, e.msg);
            else
                c->res->cprs++;
        }
    }
    if ((rc = import_each(f[COL_EMAILS], import_email, c, line, member)) != 0 ||
        (rc = import_each(f[COL_CASES], import_case, c, line, member)) != 0)
        return rc;
    /* One row, one count: several causes on a row are reported but the row counts once. */
    if (c->res->bad_rows > bad_before + 1)
        c->res->bad_rows = bad_before + 1;
    else if (c->res->bad_rows == bad_before)
        c->res->members++;
    return 0;
}

static int import_header(struct import_ctx *c, char **f, size_t n, mr_error *err)
{
    if (n != COL_COUNT)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        char *h = f[i];
        import_trim(&h);
        if (strcmp(h, import_columns[i]) != 0)
            goto bad;
    }
    return 0;
bad:
    return mr_error_set(err, MR_E_PARSE, "%s:1: header must be member_id,cpr,name,emails,cases",
                        c->path);
}

int members_import_csv(members_db *db, const char *path, members_row_error_fn on_error,
                       void *cb_ctx, struct members_import_result *res, mr_error *err)
{
    struct import_ctx c = { .db = db, .path = path, .on_error = on_error, .cb_ctx = cb_ctx,
                            .res = res };
    csv_reader *r = NULL;
    char **f;
    size_t n;
    bool header = true;
    int rc;
    FILE *fp;

    memset(res, 0, sizeof *res);
    mr_error_clear(&c.first);
    fp = fopen(path, "rb");
    if (fp == NULL)
        return mr_error_errno(err, MR_E_IO, errno, "cannot open %s", path);
    if ((rc = csv_open(fp, path, &r, err)) != 0) {
        fclose(fp);
        return rc;
    }
    if ((rc = members_begin(db, err)) != 0)
        goto out;
    if ((rc = members_registry_clear(db, err)) != 0)
        goto out;
    for (;;) {
        mr_error e;
        rc = csv_next(r, &f, &n, &e);
        if (rc == MR_E_PARSE) {
            if (header) {
                rc = mr_error_set(err, MR_E_PARSE, "%s", e.msg);
                goto out;
            }
            import_bad_msg(&c, e.msg);      /* already "FILE:LINE: cause" */
            continue;
        }
        if (rc != 0) {
            rc = mr_error_set(err, rc, "%s", e.msg);
            goto out;
        }
        if (n == 0)
            break;
        if (header) {
            header = false;
            if ((rc = import_header(&c, f, n, err)) != 0)
                goto out;
            continue;
        }
        if (n == 1 && f[0][0] == '\0')
            continue;       /* blank line */
        res->rows++;
        if (n != COL_COUNT) {
            import_bad(&c, csv_line(r), "%zu fields, expected %d", n, COL_COUNT);
            continue;
        }
        if ((rc = import_row(&c, csv_line(r), f)) != 0) {
            rc = mr_error_set(err, rc, "%s", c.first.msg);
            goto out;
        }
    }
    if (header) {
        rc = mr_error_set(err, MR_E_PARSE, "%s: empty file (no header row)", path);
        goto out;
    }
    if (res->bad_rows > 0) {
        rc = mr_error_set(err, MR_E_PARSE, "%zu bad row%s in %s, nothing imported; first: %s",
                          res->bad_rows, res->bad_rows == 1 ? "" : "s", path, c.first.msg);
        goto out;
    }
    rc = members_commit(db, err);
out:
    if (rc != 0)
        members_rollback(db);
    csv_close(r);
    fclose(fp);
    return rc;
}

/* csv.c — see csv.h.  A small state machine over getc(): registries are a few MB at most,
 * and reading byte by byte keeps quoted newlines and line counting simple. */
#include "ingest/csv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A field longer than this is surely not a registry value; refusing it bounds memory on
 * a wrong input file (a binary file or a missing closing quote). */
#define CSV_FIELD_MAX (64 * 1024)
#define CSV_FIELDS_MAX 256

struct csv_reader {
    FILE *f;
    char *name;
    size_t line;        /* current physical line */
    size_t rec_line;    /* line where the current record started */
    bool started;       /* BOM check done */
    int back[4];        /* pushed-back bytes (stdio guarantees only one) */
    size_t n_back;
    char *buf;          /* all fields of the record, NUL-separated */
    size_t len, cap;
    size_t *offs;       /* field start offsets into buf */
    char **fields;
    size_t n, fcap;
};

int csv_open(FILE *f, const char *name, csv_reader **out, mr_error *err)
{
    csv_reader *r = calloc(1, sizeof *r);

    if (r == NULL || (r->name = strdup(name != NULL ? name : "csv")) == NULL) {
        free(r);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    r->f = f;
    r->line = 1;
    *out = r;
    return 0;
}

void csv_close(csv_reader *r)
{
    if (r == NULL)
        return;
    free(r->name);
    free(r->buf);
    free(r->offs);
    free(r->fields);
    free(r);
}

static int csv_getc(csv_reader *r)
{
    if (r->n_back > 0)
        return r->back[--r->n_back];
    return getc(r->f);
}

static void csv_ungetc(csv_reader *r, int c)
{
    if (c != EOF && r->n_back < 4)
        r->back[r->n_back++] = c;
}

size_t csv_line(const csv_reader *r)
{
    return r->rec_line;
}

static int csv_putc(csv_reader *r, char c, mr_error *err)
{
    if (r->len + 1 >= r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 1024;
        char *nb = realloc(r->buf, ncap);
        if (nb == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        r->buf = nb;
        r->cap = ncap;
    }
    r->buf[r->len++] = c;
    return 0;
}

static int csv_end_field(csv_reader *r, mr_error *err)
{
    int rc;

    if (r->n >= CSV_FIELDS_MAX)
        return mr_error_set(err, MR_E_PARSE, "%s:%zu: more than %d fields", r->name,
                            r->rec_line, CSV_FIELDS_MAX);
    if ((rc = csv_putc(r, '\0', err)) != 0)
        return rc;
    if (r->n == r->fcap) {
        size_t ncap = r->fcap ? r->fcap * 2 : 16;
        size_t *no = realloc(r->offs, ncap * sizeof *no);
        if (no == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        r->offs = no;
        char **nf = realloc(r->fields, ncap * sizeof *nf);
        if (nf == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        r->fields = nf;
        r->fcap = ncap;
    }
    r->n++;
    r->offs[r->n] = r->len;     /* provisional start of the next field */
    return 0;
}

/* Strict UTF-8 check (no overlongs, no surrogates), so that later code may trust it. */
static bool csv_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* Skip to the end of the current physical record after an error, so that the caller can
 * report further bad rows.  Quotes are ignored here: after a quoting error we cannot know
 * where the record was meant to end, and the next line is the best guess. */
static void csv_skip_line(csv_reader *r)
{
    int c;

    while ((c = csv_getc(r)) != EOF && c != '\n')
        ;
    if (c == '\n')
        r->line++;
}

int csv_next(csv_reader *r, char ***fields, size_t *n_fields, mr_error *err)
{
    enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED } st = FIELD_START;
    size_t field_len = 0;
    int c, rc;

    *n_fields = 0;
    *fields = NULL;
    if (!r->started) {
        int a, b, d;
        r->started = true;
        a = csv_getc(r);
        if (a == 0xef) {
            b = csv_getc(r);
            d = csv_getc(r);
            if (b != 0xbb || d != 0xbf) {
                csv_ungetc(r, d);
                csv_ungetc(r, b);
                csv_ungetc(r, a);
            }
        } else {
            csv_ungetc(r, a);
        }
    }
    r->len = 0;
    r->n = 0;
    if (r->fcap == 0) {
        r->offs = malloc(16 * sizeof *r->offs);
        r->fields = malloc(16 * sizeof *r->fields);
        if (r->offs == NULL || r->fields == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        r->fcap = 16;
    }
    r->offs[0] = 0;
    r->rec_line = r->line;

    for (;;) {
        c = csv_getc(r);
        if (c == EOF) {
            if (ferror(r->f))
                return mr_error_set(err, MR_E_IO, "%s:%zu: read error", r->name, r->line);
            if (st == QUOTED)
                return mr_error_set(err, MR_E_PARSE,
                                    "%s:%zu: quoted field not closed before end of file",
                                    r->name, r->rec_line);
            if (st == FIELD_START && r->n == 0)
                return 0;       /* clean end (or trailing newline) */
            break;
        }
        if (c == '\n')
            r->line++;
        switch (st) {
        case FIELD_START:
            if (c == '"') {
                st = QUOTED;
                continue;
            }
            st = UNQUOTED;
            /* fall through */
        case UNQUOTED:
            if (c == ',') {
                if ((rc = csv_end_field(r, err)) != 0)
                    return rc;
                field_len = 0;
                st = FIELD_START;
                continue;
            }
            if (c == '\r') {
                int p = csv_getc(r);
                if (p != '\n') {
                    if (p != EOF)
                        csv_ungetc(r, p);
                    csv_skip_line(r);
                    return mr_error_set(err, MR_E_PARSE, "%s:%zu: bare CR in unquoted field",
                                        r->name, r->rec_line);
                }
                r->line++;
                goto record_end;
            }
            if (c == '\n')
                goto record_end;
            if (c == '"') {
                csv_skip_line(r);
                return mr_error_set(err, MR_E_PARSE, "%s:%zu: quote inside unquoted field",
                                    r->name, r->rec_line);
            }
            break;
        case QUOTED:
            if (c == '"') {
                st = QUOTE_IN_QUOTED;
                continue;
            }
            break;
        case QUOTE_IN_QUOTED:
            if (c == '"') {
                st = QUOTED;
                break;          /* doubled quote: one literal quote */
            }
            if (c == ',') {
                if ((rc = csv_end_field(r, err)) != 0)
                    return rc;
                field_len = 0;
                st = FIELD_START;
                continue;
            }
            if (c == '\r') {
                int p = csv_getc(r);
                if (p == '\n') {
                    r->line++;
                    goto record_end;
                }
                if (p != EOF)
                    csv_ungetc(r, p);
            } else if (c == '\n') {
                goto record_end;
            }
            if (c != '\n')
                csv_skip_line(r);
            return mr_error_set(err, MR_E_PARSE,
                                "%s:%zu: characters after a closing quote", r->name,
                                r->rec_line);
        }
        if (++field_len > CSV_FIELD_MAX) {
            csv_skip_line(r);
            return mr_error_set(err, MR_E_PARSE, "%s:%zu: field longer than %d bytes",
                                r->name, r->rec_line, CSV_FIELD_MAX);
        }
        if ((rc = csv_putc(r, (char)c, err)) != 0)
            return rc;
    }
record_end:
    if ((rc = csv_end_field(r, err)) != 0)
        return rc;
    for (size_t i = 0; i < r->n; i++) {
        r->fields[i] = r->buf + r->offs[i];
        if (!csv_utf8_valid((const unsigned char *)r->fields[i], strlen(r->fields[i])))
            return mr_error_set(err, MR_E_PARSE, "%s:%zu: field %zu is not valid UTF-8",
                                r->name, r->rec_line, i + 1);
    }
    *fields = r->fields;
    *n_fields = r->n;
    return 0;
}

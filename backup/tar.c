/* tar.c — see tar.h.  Written here rather than taken from libarchive: the output must be
 * deterministic and stream into our own gzip + CMS pipeline, and only regular files are
 * needed; see docs/ARCHIVE.md. */
#include "backup/tar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USTAR_NAME 100
#define USTAR_SIZE_MAX 077777777777ULL      /* 11 octal digits */

static size_t pad_to_block(size_t n)
{
    return (n + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

static void octal(char *field, size_t width, unsigned long long v)
{
    /* width-1 digits, zero-padded, then NUL, as POSIX prescribes. */
    char tmp[32];

    snprintf(tmp, sizeof tmp, "%0*llo", (int)(width - 1), v);
    memcpy(field, tmp, width - 1);
    field[width - 1] = '\0';
}

static void checksum(unsigned char *h)
{
    unsigned sum = 0;

    memset(h + 148, ' ', 8);
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static void header(unsigned char h[TAR_BLOCK], const char *name, char type,
                   unsigned long long size, time_t mtime)
{
    memset(h, 0, TAR_BLOCK);
    memcpy(h, name, strnlen(name, USTAR_NAME));
    octal((char *)h + 100, 8, 0600);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    octal((char *)h + 124, 12, size);
    octal((char *)h + 136, 12, mtime > 0 ? (unsigned long long)mtime : 0);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    checksum(h);
}

/* One pax record "<len> key=value\n", where len counts the whole record. */
static size_t pax_record(char *out, size_t size, const char *key, const char *value)
{
    size_t body = strlen(key) + strlen(value) + 3;  /* ' ' '=' '\n' */
    size_t len = body + 1;
    int digits;

    for (;;) {
        digits = snprintf(NULL, 0, "%zu", len);
        if (body + (size_t)digits == len)
            break;
        len = body + (size_t)digits;
    }
    if (out != NULL)
        snprintf(out, size, "%zu %s=%s\n", len, key, value);
    return len;
}

static size_t pax_text(char *out, size_t size, const char *name, size_t len)
{
    size_t used = 0;
    char num[32];

    if (strlen(name) > USTAR_NAME)
        used += pax_record(out, size, "path", name);
    if ((unsigned long long)len > USTAR_SIZE_MAX) {
        snprintf(num, sizeof num, "%zu", len);
        used += pax_record(out != NULL ? out + used : NULL, size - used, "size", num);
    }
    return used;
}

size_t tar_entry_size(const char *name, size_t len)
{
    size_t pax = pax_text(NULL, 0, name, len);

    return (pax ? TAR_BLOCK + pad_to_block(pax) : 0) + TAR_BLOCK + pad_to_block(len);
}

int tar_write_entry(struct mr_buf *out, const char *name, time_t mtime,
                    const unsigned char *data, size_t len, mr_error *err)
{
    unsigned char h[TAR_BLOCK];
    char pax[2 * TAR_NAME_MAX];
    size_t pax_len;
    int rc;

    if (name[0] == '\0' || strlen(name) > TAR_NAME_MAX || strchr(name, '\n') != NULL)
        return mr_error_set(err, MR_E_INVALID, "tar: bad entry name");
    pax_len = pax_text(pax, sizeof pax, name, len);
    if (pax_len > 0) {
        header(h, "PaxHeader", 'x', pax_len, mtime);
        rc = buf_append(out, h, TAR_BLOCK, err);
        if (rc == 0)
            rc = buf_append(out, pax, pax_len, err);
        if (rc == 0)
            rc = buf_zeros(out, pad_to_block(pax_len) - pax_len, err);
        if (rc != 0)
            return rc;
    }
    header(h, name, '0', (unsigned long long)len > USTAR_SIZE_MAX ? 0 : len, mtime);
    rc = buf_append(out, h, TAR_BLOCK, err);
    if (rc == 0)
        rc = buf_append(out, data, len, err);
    if (rc == 0)
        rc = buf_zeros(out, pad_to_block(len) - len, err);
    return rc;
}

int tar_write_end(struct mr_buf *out, mr_error *err)
{
    return buf_zeros(out, TAR_END_SIZE, err);
}

int tar_mem_read(void *ctx, void *buf, size_t n, mr_error *err)
{
    struct tar_mem_src *s = ctx;

    if (s->len - s->pos < n)
        return mr_error_set(err, MR_E_PARSE, "tar: truncated archive");
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    return 0;
}

static int parse_octal(const unsigned char *f, size_t width, unsigned long long *v)
{
    size_t i = 0;
    unsigned long long x = 0;

    while (i < width && f[i] == ' ')
        i++;
    if (i == width || f[i] < '0' || f[i] > '7')
        return -1;
    for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
        if (x > (~0ULL >> 3))
            return -1;
        x = x * 8 + (unsigned long long)(f[i] - '0');
    }
    if (i < width && f[i] != '\0' && f[i] != ' ')
        return -1;
    *v = x;
    return 0;
}

static int header_ok(const unsigned char h[TAR_BLOCK])
{
    unsigned long long stored;
    unsigned sum = 0;

    if (parse_octal(h + 148, 8, &stored) != 0)
        return 0;
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == stored;
}

static int is_zero_block(const unsigned char h[TAR_BLOCK])
{
    for (int i = 0; i < TAR_BLOCK; i++)
        if (h[i] != 0)
            return 0;
    return 1;
}

static int skip(tar_read_fn fn, void *ctx, size_t n, mr_error *err)
{
    unsigned char tmp[TAR_BLOCK];

    while (n > 0) {
        size_t k = n < sizeof tmp ? n : sizeof tmp;
        int rc = fn(ctx, tmp, k, err);
        if (rc != 0)
            return rc;
        n -= k;
    }
    return 0;
}

/* A decimal number of at most 19 digits in [p, end), nothing else (no sign, no blanks:
 * strtoul would skip leading white space and read past a record that is not
 * NUL-terminated). */
static int pax_number(const char *p, const char *end, unsigned long long *out)
{
    unsigned long long v = 0;

    if (p >= end || end - p > 19)
        return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    *out = v;
    return 0;
}

/* Apply pax records we understand; others (atime, comments, ...) are ignored.  A record is
 * "<length> <key>=<value>\n" where length counts the whole record; every bound is
 * checked against the record, never against a terminator that may not be there. */
static int pax_apply(const char *text, size_t len, char *path, unsigned long long *size,
                     int *have_size, mr_error *err)
{
    size_t pos = 0;

    while (pos < len) {
        const char *rec_start = text + pos, *digits_end, *kv, *eq, *val_end;
        unsigned long long rec;
        size_t ndigits = 0;

        while (pos + ndigits < len && ndigits < 20 && text[pos + ndigits] >= '0'
               && text[pos + ndigits] <= '9')
            ndigits++;
        digits_end = rec_start + ndigits;
        if (pax_number(rec_start, digits_end, &rec) != 0 || rec > len - pos
            || rec < ndigits + 3 || *digits_end != ' ' || rec_start[rec - 1] != '\n')
            return mr_error_set(err, MR_E_PARSE, "tar: malformed pax header");
        kv = digits_end + 1;
        val_end = rec_start + rec - 1;      /* the newline */
        eq = memchr(kv, '=', (size_t)(val_end - kv));
        if (eq == NULL)
            return mr_error_set(err, MR_E_PARSE, "tar: malformed pax record");
        if ((size_t)(eq - kv) == 4 && memcmp(kv, "path", 4) == 0) {
            size_t vlen = (size_t)(val_end - (eq + 1));
            if (vlen == 0 || vlen > TAR_NAME_MAX)
                return mr_error_set(err, MR_E_PARSE, "tar: bad pax path");
            memcpy(path, eq + 1, vlen);
            path[vlen] = '\0';
        } else if ((size_t)(eq - kv) == 4 && memcmp(kv, "size", 4) == 0) {
            if (pax_number(eq + 1, val_end, size) != 0)
                return mr_error_set(err, MR_E_PARSE, "tar: bad pax size");
            *have_size = 1;
        }
        pos += rec;
    }
    return 0;
}

int tar_read_header(tar_read_fn fn, void *ctx, size_t max_len, struct tar_entry *e,
                    mr_error *err)
{
    unsigned char h[TAR_BLOCK];
    char pax_path[TAR_NAME_MAX + 1] = "";
    unsigned long long pax_size = 0, size, mtime;
    int have_pax_size = 0, rc;

    memset(e, 0, sizeof *e);
    for (;;) {
        rc = fn(ctx, h, TAR_BLOCK, err);
        if (rc != 0)
            return rc;
        if (is_zero_block(h)) {
            rc = fn(ctx, h, TAR_BLOCK, err);
            if (rc != 0)
                return rc;
            if (!is_zero_block(h))
                return mr_error_set(err, MR_E_PARSE, "tar: data after end marker");
            return 0;
        }
        if (!header_ok(h))
            return mr_error_set(err, MR_E_PARSE, "tar: header checksum mismatch");
        if (parse_octal(h + 124, 12, &size) != 0 || parse_octal(h + 136, 12, &mtime) != 0)
            return mr_error_set(err, MR_E_PARSE, "tar: bad numeric field");
        if (h[156] == 'x') {
            char *text;
            if (size > 65536)
                return mr_error_set(err, MR_E_LIMIT, "tar: pax header too large");
            text = malloc((size_t)pad_to_block((size_t)size) + 1);
            if (text == NULL)
                return mr_error_set(err, MR_E_NOMEM, "out of memory");
            rc = fn(ctx, text, pad_to_block((size_t)size), err);
            if (rc == 0)
                rc = pax_apply(text, (size_t)size, pax_path, &pax_size, &have_pax_size, err);
            free(text);
            if (rc != 0)
                return rc;
            continue;
        }
        if (h[156] != '0' && h[156] != '\0')
            return mr_error_set(err, MR_E_PARSE, "tar: unexpected entry type '%c'",
                                h[156] >= 32 && h[156] < 127 ? h[156] : '?');
        break;
    }
    if (have_pax_size)
        size = pax_size;
    if (size > max_len)
        return mr_error_set(err, MR_E_LIMIT, "tar: entry of %llu bytes over the limit", size);
    if (pax_path[0] != '\0')
        memcpy(e->name, pax_path, sizeof e->name);
    else if (h[345] != '\0') {
        /* ustar prefix + '/' + name */
        size_t plen = strnlen((const char *)h + 345, 155), nlen = strnlen((const char *)h, 100);
        if (plen + 1 + nlen > TAR_NAME_MAX)
            return mr_error_set(err, MR_E_PARSE, "tar: name too long");
        memcpy(e->name, h + 345, plen);
        e->name[plen] = '/';
        memcpy(e->name + plen + 1, h, nlen);
        e->name[plen + 1 + nlen] = '\0';
    } else
        memcpy(e->name, h, USTAR_NAME);
    e->name[TAR_NAME_MAX] = '\0';
    if (e->name[0] == '\0')
        return mr_error_set(err, MR_E_PARSE, "tar: entry without a name");
    e->mtime = (time_t)mtime;
    e->len = (size_t)size;
    return 1;
}

int tar_skip_padding(tar_read_fn fn, void *ctx, size_t len, mr_error *err)
{
    return skip(fn, ctx, pad_to_block(len) - len, err);
}

int tar_read_next(tar_read_fn fn, void *ctx, size_t max_len, struct tar_entry *e,
                  mr_error *err)
{
    int rc = tar_read_header(fn, ctx, max_len, e, err);

    if (rc != 1)
        return rc;
    e->data = malloc(e->len ? e->len : 1);
    if (e->data == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = fn(ctx, e->data, e->len, err);
    if (rc == 0)
        rc = skip(fn, ctx, pad_to_block(e->len) - e->len, err);
    if (rc != 0) {
        free(e->data);
        e->data = NULL;
        return rc;
    }
    return 1;
}

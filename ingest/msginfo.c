/* msginfo.c — see msginfo.h. */
#include "ingest/msginfo.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

static bool mi_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* True if s[0..n) is valid UTF-8 (decides how undeclared 8-bit header bytes are read). */
static bool mi_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t k;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if (s[i] >= 0xc2 && s[i] <= 0xdf)
            k = 1;
        else if (s[i] >= 0xe0 && s[i] <= 0xef)
            k = 2;
        else if (s[i] >= 0xf0 && s[i] <= 0xf4)
            k = 3;
        else
            return false;
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

static char *mi_strndup_trim(const char *s, size_t n)
{
    while (n > 0 && mi_wsp((unsigned char)*s))
        s++, n--;
    while (n > 0 && (mi_wsp((unsigned char)s[n - 1]) || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    return strndup(s, n);
}

/* Decode RFC 2047 words to UTF-8.  Undeclared 8-bit text is taken as UTF-8 if it is valid
 * UTF-8, else as ISO-8859-1 (what Danish mail without MIME labels usually is). */
static char *mi_decode_phrase(const char *v, size_t n)
{
    char *out = NULL;
    size_t idx = 0;
    const char *def = mi_utf8((const unsigned char *)v, n) ? "utf-8" : "iso-8859-1";

    if (mailmime_encoded_phrase_parse(def, v, n, &idx, "utf-8", &out) == MAILIMF_NO_ERROR &&
        out != NULL) {
        char *copy = strdup(out);
        free(out);
        return copy;
    }
    return mi_strndup_trim(v, n);
}

/* The addr-spec of a From value: inside the last <...>, else the first word with an '@'.
 * Comments in parentheses are skipped.  Lower-cased (ASCII). */
static char *mi_from_addr(const char *v, size_t n)
{
    const char *lt = NULL, *gt = NULL;
    char *out = NULL;
    size_t depth = 0;
    bool quoted = false;

    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (c == '"' && depth == 0)
            quoted = !quoted;
        else if (quoted)
            continue;
        else if (c == '(')
            depth++;
        else if (c == ')' && depth > 0)
            depth--;
        else if (depth == 0 && c == '<')
            lt = v + i;
        else if (depth == 0 && c == '>' && lt != NULL && gt < lt)
            gt = v + i;
        else if (depth == 0 && c == ',' && lt != NULL && gt > lt)
            break;          /* only the first mailbox of a list */
    }
    if (lt != NULL && gt > lt) {
        out = mi_strndup_trim(lt + 1, (size_t)(gt - lt - 1));
    } else {
        /* No angle brackets: "user@example.dk (Name)" or a bare address. */
        size_t i = 0;
        while (i < n) {
            size_t s, e;
            while (i < n && (mi_wsp((unsigned char)v[i]) || v[i] == ','))
                i++;
            if (i < n && v[i] == '(') {
                size_t d = 0;
                for (; i < n; i++) {
                    if (v[i] == '(')
                        d++;
                    else if (v[i] == ')' && --d == 0) {
                        i++;
                        break;
                    }
                }
                continue;
            }
            s = i;
            while (i < n && !mi_wsp((unsigned char)v[i]) && v[i] != ',' && v[i] != '(')
                i++;
            e = i;
            if (memchr(v + s, '@', e - s) != NULL) {
                out = strndup(v + s, e - s);
                break;
            }
        }
    }
    if (out == NULL)
        return NULL;
    if (strchr(out, '@') == NULL) {
        /* "<>" or a bare local part such as MAILER-DAEMON: keep it, routing checks it. */
    }
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    return out;
}

static bool mi_value_is(const char *v, size_t n, const char *word)
{
    size_t wl = strlen(word);

    while (n > 0 && mi_wsp((unsigned char)*v))
        v++, n--;
    return n >= wl && strncasecmp(v, word, wl) == 0 &&
           (n == wl || !((v[wl] >= 'a' && v[wl] <= 'z') || (v[wl] >= 'A' && v[wl] <= 'Z') ||
                         v[wl] == '-' || v[wl] == '_'));
}

/* Handle one unfolded header field. */
static int mi_field(struct msginfo *info, const char *name, size_t nlen, const char *v,
                    size_t vlen, mr_error *err)
{
#define IS(h) (nlen == sizeof(h) - 1 && strncasecmp(name, h, nlen) == 0)
    if (IS("Subject") && info->subject == NULL) {
        if ((info->subject = mi_decode_phrase(v, vlen)) == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
    } else if (IS("From") && info->from_addr == NULL) {
        info->from_addr = mi_from_addr(v, vlen);
    } else if (IS("Message-ID") && info->message_id == NULL) {
        if ((info->message_id = mi_strndup_trim(v, vlen)) == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
    } else if (IS("Return-Path")) {
        size_t i = 0;
        while (i < vlen && mi_wsp((unsigned char)v[i]))
            i++;
        if (vlen - i >= 2 && v[i] == '<') {
            size_t j = i + 1;
            while (j < vlen && mi_wsp((unsigned char)v[j]))
                j++;
            if (j < vlen && v[j] == '>')
                info->return_path_null = true;
        }
    } else if (IS("Auto-Submitted")) {
        if (!mi_value_is(v, vlen, "no"))
            info->auto_submitted = true;
    } else if (IS("Precedence")) {
        if (mi_value_is(v, vlen, "bulk") || mi_value_is(v, vlen, "junk") ||
            mi_value_is(v, vlen, "list") || mi_value_is(v, vlen, "auto_reply"))
            info->precedence_auto = true;
    } else if (IS("X-Autoreply") || IS("X-Autorespond") || IS("X-Auto-Response")) {
        info->x_autoreply = true;
    } else if (IS("Content-Type")) {
        if (mi_value_is(v, vlen, "multipart/report"))
            info->report = true;
    }
    return 0;
#undef IS
}

int msginfo_parse(const unsigned char *msg, size_t len, struct msginfo *info, mr_error *err)
{
    const char *p = (const char *)msg, *end = p + len;
    char *buf = NULL;
    size_t cap = 0;
    int rc = 0;

    memset(info, 0, sizeof *info);
    while (p < end) {
        const char *line = p, *colon, *fend;
        size_t n = 0;

        if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
            p += *p == '\r' ? 2 : 1;
            break;      /* end of the header */
        }
        /* The field runs to the first line end not followed by a space or tab. */
        fend = p;
        for (;;) {
            const char *nl = memchr(fend, '\n', (size_t)(end - fend));
            if (nl == NULL) {
                fend = end;
                break;
            }
            fend = nl + 1;
            if (fend >= end || !mi_wsp((unsigned char)*fend))
                break;
        }
        p = fend;
        colon = memchr(line, ':', (size_t)(fend - line));
        if (colon == NULL || colon == line)
            continue;   /* not a field (an mbox "From " line, garbage): skip it */
        /* Unfold: drop CR and LF, keep the whitespace that follows. */
        if ((size_t)(fend - colon) + 1 > cap) {
            cap = (size_t)(fend - colon) + 1;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            buf = nb;
        }
        for (const char *q = colon + 1; q < fend; q++)
            if (*q != '\r' && *q != '\n')
                buf[n++] = *q;
        buf[n] = '\0';
        size_t nlen = (size_t)(colon - line);
        while (nlen > 0 && mi_wsp((unsigned char)line[nlen - 1]))
            nlen--;
        if ((rc = mi_field(info, line, nlen, buf, n, err)) != 0)
            break;
    }
    free(buf);
    info->header_len = (size_t)(p - (const char *)msg);
    if (rc != 0)
        msginfo_free(info);
    return rc;
}

void msginfo_free(struct msginfo *info)
{
    free(info->subject);
    free(info->from_addr);
    free(info->message_id);
    memset(info, 0, sizeof *info);
}

static int mi_part_encoding(struct mailmime *m)
{
    clistiter *it;

    if (m->mm_mime_fields == NULL)
        return MAILMIME_MECHANISM_8BIT;
    for (it = clist_begin(m->mm_mime_fields->fld_list); it != NULL; it = clist_next(it)) {
        struct mailmime_field *f = clist_content(it);
        if (f->fld_type == MAILMIME_FIELD_TRANSFER_ENCODING && f->fld_data.fld_encoding)
            return f->fld_data.fld_encoding->enc_type;
    }
    return MAILMIME_MECHANISM_8BIT;
}

static bool mi_is_text(struct mailmime *m)
{
    struct mailmime_content *ct = m->mm_content_type;

    if (ct == NULL)
        return true;    /* RFC 2045 default: text/plain */
    if (ct->ct_type == NULL || ct->ct_type->tp_type != MAILMIME_TYPE_DISCRETE_TYPE)
        return false;
    return ct->ct_type->tp_data.tp_discrete_type != NULL &&
           ct->ct_type->tp_data.tp_discrete_type->dt_type == MAILMIME_DISCRETE_TYPE_TEXT &&
           ct->ct_subtype != NULL &&
           (strcasecmp(ct->ct_subtype, "plain") == 0 || strcasecmp(ct->ct_subtype, "html") == 0);
}

struct mi_walk {
    size_t cap;
    msginfo_text_fn fn;
    void *ctx;
    int depth;
};

/* Returns true to stop. */
static bool mi_walk(struct mi_walk *w, struct mailmime *m)
{
    clistiter *it;

    if (m == NULL || ++w->depth > 32) /* nesting bound: hostile mail cannot recurse deeply */
        return false;
    switch (m->mm_type) {
    case MAILMIME_SINGLE: {
        struct mailmime_data *d = m->mm_data.mm_single;
        char *dec = NULL;
        size_t dlen = 0, idx = 0;
        bool stop;
        int enc;
        size_t elen;
        if (d == NULL || d->dt_type != MAILMIME_DATA_TEXT || !mi_is_text(m))
            break;
        enc = mi_part_encoding(m);
        elen = d->dt_data.dt_text.dt_length;
        if (enc != MAILMIME_MECHANISM_BASE64 && enc != MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
            /* Nothing to decode: search the bytes in place instead of copying a part that
             * may be tens of megabytes. */
            stop = w->fn(w->ctx, d->dt_data.dt_text.dt_data, elen < w->cap ? elen : w->cap);
            w->depth--;
            return stop;
        }
        /* Decode only what can yield `cap` bytes (decoding shrinks at most 3:1, QP's =XX),
         * so memory stays bounded whatever the part's size. */
        if (elen / 3 > w->cap)
            elen = w->cap * 3;
        if (mailmime_part_parse(d->dt_data.dt_text.dt_data, elen,
                                &idx, enc, &dec, &dlen) != MAILIMF_NO_ERROR) {
            /* Broken encoding: match on the raw bytes rather than not at all. */
            size_t n = d->dt_data.dt_text.dt_length;
            stop = w->fn(w->ctx, d->dt_data.dt_text.dt_data, n < w->cap ? n : w->cap);
            w->depth--;
            return stop;
        }
        stop = w->fn(w->ctx, dec, dlen < w->cap ? dlen : w->cap);
        mailmime_decoded_part_free(dec);
        w->depth--;
        return stop;
    }
    case MAILMIME_MULTIPLE:
        for (it = clist_begin(m->mm_data.mm_multipart.mm_mp_list); it != NULL;
             it = clist_next(it)) {
            if (mi_walk(w, clist_content(it))) {
                w->depth--;
                return true;
            }
        }
        break;
    case MAILMIME_MESSAGE:
        if (mi_walk(w, m->mm_data.mm_message.mm_msg_mime)) {
            w->depth--;
            return true;
        }
        break;
    default:
        break;
    }
    w->depth--;
    return false;
}

int msginfo_each_text(const unsigned char *msg, size_t len, size_t cap, msginfo_text_fn fn,
                      void *ctx, mr_error *err)
{
    struct mailmime *mime = NULL;
    struct mi_walk w = { .cap = cap, .fn = fn, .ctx = ctx, .depth = 0 };
    size_t idx = 0;
    int r;

    r = mailmime_parse((const char *)msg, len, &idx, &mime);
    if (r == MAILIMF_ERROR_MEMORY)
        return mr_error_set(err, MR_E_NOMEM, "out of memory parsing MIME");
    if (r != MAILIMF_NO_ERROR || mime == NULL) {
        struct msginfo info;
        int rc = msginfo_parse(msg, len, &info, err);
        if (rc != 0)
            return rc;
        size_t off = info.header_len, n = len - off;
        msginfo_free(&info);
        fn(ctx, (const char *)msg + off, n < cap ? n : cap);
        return 0;
    }
    mi_walk(&w, mime);
    mailmime_free(mime);
    return 0;
}

/* restore_imap.c — an IMAP mailbox as a restore destination (restore.h): APPEND with the
 * original flags and INTERNALDATE.  \Recent cannot be set by a client; \Deleted is left
 * out unless asked for (keep_deleted): the next EXPUNGE by any client of the live mailbox
 * would remove the restored message again. */
#include "backup/restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "imap/imap.h"

struct imap_dest {
    imap_conn *conn;
    char mailbox[1024];
    bool keep_deleted;
    size_t attempted;
    mr_log *log;
};

static void imap_hex(const unsigned char md[32], char hex[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* SHA-256 of the bytes with every bare LF as CRLF: what APPEND sends (libetpan converts)
 * and so what the server stores and FETCH returns. */
static int imap_key(void *self, const unsigned char *msg, size_t len, char hex[65],
                    mr_error *err)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int n = 0;
    size_t start = 0;
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;

    (void)self;
    for (size_t i = 0; ok && i < len; i++) {
        if (msg[i] != '\n' || (i > 0 && msg[i - 1] == '\r'))
            continue;
        ok = EVP_DigestUpdate(c, msg + start, i - start) == 1 &&
             EVP_DigestUpdate(c, "\r\n", 2) == 1;
        start = i + 1;
    }
    ok = ok && EVP_DigestUpdate(c, msg + start, len - start) == 1 &&
         EVP_DigestFinal_ex(c, md, &n) == 1;
    EVP_MD_CTX_free(c);
    if (!ok)
        return mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
    imap_hex(md, hex);
    return 0;
}

struct imap_scan {
    int (*fn)(void *, const char *, mr_error *);
    void *ctx;
};

static int imap_scan_one(void *vctx, const struct imap_message *m, mr_error *err)
{
    struct imap_scan *s = vctx;
    unsigned char md[32];
    unsigned int n = 0;
    char hex[65];

    if (m->oversized)
        return 0;       /* cannot be one we would write: restores are below the limit */
    if (EVP_Digest(m->body, m->body_len, md, &n, EVP_sha256(), NULL) != 1)
        return mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
    imap_hex(md, hex);
    return s->fn(s->ctx, hex, err);
}

static int imap_scan(void *self, int (*fn)(void *, const char *, mr_error *), void *ctx,
                     mr_error *err)
{
    struct imap_dest *d = self;
    struct imap_mailbox_info info;
    struct imap_scan s = { fn, ctx };
    int rc = imap_examine(d->conn, d->mailbox, &info, err);

    if (rc != 0 || info.exists == 0)
        return rc;
    return imap_uid_fetch(d->conn, 1, 0, imap_scan_one, &s, err);
}

static int imap_put(void *self, const struct restore_msg *m, mr_error *err)
{
    struct imap_dest *d = self;
    char clean[512] = "";
    const char *p = m->flags != NULL ? m->flags : "";
    int rc;

    while (*p != '\0') {
        size_t n = strcspn(p, " ");
        bool drop = (n == 7 && strncasecmp(p, "\\Recent", 7) == 0) ||
                    (!d->keep_deleted && n == 8 && strncasecmp(p, "\\Deleted", 8) == 0);
        if (n > 0 && !drop && strlen(clean) + n + 2 < sizeof clean) {
            if (clean[0] != '\0')
                strcat(clean, " ");
            strncat(clean, p, n);
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    d->attempted++;
    rc = imap_append(d->conn, d->mailbox, clean, m->internaldate, m->tz_min, m->bytes, m->len,
                     err);
    /* The server refused this message (NO/BAD: too large, over quota, content it will
     * not store), or it cannot be sent there (a NUL byte without BINARY), and the session
     * is still usable: say so on one line and go on. */
    if ((rc == MR_E_PROTOCOL || rc == MR_E_UNSUPPORTED) && imap_usable(d->conn)) {
        char when[32] = "";
        struct tm tm;
        if (gmtime_r(&m->internaldate, &tm) != NULL)
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        log_error(d->log, "restore: message %zu (INTERNALDATE %s, %zu bytes) not appended: %s",
                  d->attempted, when, m->len, err->msg);
        mr_error_clear(err);
        return RESTORE_REFUSED;
    }
    return rc;
}

static int imap_finish(void *self, mr_error *err)
{
    (void)self;
    (void)err;
    return 0;       /* the server confirmed each APPEND */
}

static void imap_dest_close(void *self)
{
    struct imap_dest *d = self;

    imap_close(d->conn);
    free(d);
}

static const struct restore_driver imap_driver = {
    .name = "imap",
    .key = imap_key,
    .scan = imap_scan,
    .put = imap_put,
    .finish = imap_finish,
    .close = imap_dest_close,
};

int restore_imap_open(const struct restore_imap_options *o, restore_dest **out,
                      mr_error *err)
{
    struct imap_dest *d = calloc(1, sizeof *d);
    int rc;

    *out = NULL;
    if (d == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    snprintf(d->mailbox, sizeof d->mailbox, "%s", o->mailbox);
    d->keep_deleted = o->keep_deleted;
    d->log = o->log;
    rc = imap_connect(o->imap, &d->conn, err);
    if (rc == 0)
        rc = imap_create(d->conn, d->mailbox, true, err);
    if (rc != 0) {
        imap_dest_close(d);
        return rc;
    }
    return restore_dest_new(&imap_driver, d, out, err);
}

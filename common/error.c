/* error.c — see error.h.  Kept free of allocation so it works when memory is exhausted. */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

void mr_error_clear(mr_error *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

/* The format attribute lets -Wformat=2 (clang's -Wformat-nonliteral in particular) check
 * the callers' formats through this va_list helper. */
__attribute__((format(printf, 3, 0)))
static void error_vformat(mr_error *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int mr_error_set(mr_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    va_start(ap, fmt);
    error_vformat(err, code, fmt, ap);
    va_end(ap);
    return code;
}

static void error_append(mr_error *err, const char *tail)
{
    size_t used = strlen(err->msg);

    if (used < sizeof err->msg - 1)
        snprintf(err->msg + used, sizeof err->msg - used, ": %s", tail);
}

int mr_error_errno(mr_error *err, int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    char buf[128];

    if (errnum == ENOSPC || errnum == EDQUOT)
        code = MR_E_NOSPACE;
    if (err == NULL)
        return code;
    va_start(ap, fmt);
    error_vformat(err, code, fmt, ap);
    va_end(ap);
    /* strerror_r (XSI or GNU) is awkward to use portably; strerror is safe here because
     * mailret never calls it from two threads with the same errno string in flight that
     * matters: the text is copied at once. */
    snprintf(buf, sizeof buf, "%s", strerror(errnum));
    error_append(err, buf);
    return code;
}

int mr_error_openssl(mr_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_clear_error();
    if (err == NULL)
        return code;
    va_start(ap, fmt);
    error_vformat(err, code, fmt, ap);
    va_end(ap);
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        error_append(err, buf);
    }
    return code;
}

int mr_error_prefix(mr_error *err, const char *fmt, ...)
{
    char prefix[MR_ERROR_MSG_MAX];
    char old[MR_ERROR_MSG_MAX];
    va_list ap;

    if (err == NULL)
        return MR_E_INTERNAL;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Layers that each name what they work on ("mailbox X") must not say it twice. */
    {
        size_t plen = strlen(prefix);
        if (plen > 0 && strncmp(err->msg, prefix, plen) == 0 && err->msg[plen] == ':' &&
            err->msg[plen + 1] == ' ')
            return err->code;
    }
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* Assembled by hand: snprintf("%s: %s") of two full buffers trips gcc's
     * -Wformat-truncation, and truncation is exactly what we want here. */
    {
        size_t plen = strlen(prefix), olen = strlen(old), cap = sizeof err->msg - 1, at = 0;
        if (plen > cap)
            plen = cap;
        memcpy(err->msg, prefix, plen);
        at = plen;
        if (at + 2 <= cap) {
            memcpy(err->msg + at, ": ", 2);
            at += 2;
        }
        if (olen > cap - at)
            olen = cap - at;
        memcpy(err->msg + at, old, olen);
        err->msg[at + olen] = '\0';
    }
    return err->code;
}

const char *mr_status_name(int code)
{
    switch (code) {
    case MR_OK: return "ok";
    case MR_E_INVALID: return "invalid";
    case MR_E_NOMEM: return "nomem";
    case MR_E_IO: return "io";
    case MR_E_NOSPACE: return "nospace";
    case MR_E_CONFIG: return "config";
    case MR_E_PERM: return "perm";
    case MR_E_NETWORK: return "network";
    case MR_E_TLS: return "tls";
    case MR_E_AUTH: return "auth";
    case MR_E_PROTOCOL: return "protocol";
    case MR_E_CRYPTO: return "crypto";
    case MR_E_DB: return "db";
    case MR_E_TAMPERED: return "tampered";
    case MR_E_NOTFOUND: return "notfound";
    case MR_E_STATE: return "state";
    case MR_E_LIMIT: return "limit";
    case MR_E_UNSUPPORTED: return "unsupported";
    case MR_E_PARSE: return "parse";
    case MR_E_TIMEOUT: return "timeout";
    case MR_E_EXISTS: return "exists";
    case MR_E_INTERNAL: return "internal";
    default: return "unknown";
    }
}

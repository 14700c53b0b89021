/*
 * mutf7.c — see mutf7.h.
 */
#include "imap/mutf7.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
    const char *p = c != '\0' ? strchr(B64, c) : NULL;

    return p != NULL ? (int)(p - B64) : -1;
}

/* One code point from UTF-8 at s (NUL-terminated); its length in *len, or -1 if the
 * bytes are not the shortest encoding of a scalar value. */
static int32_t utf8_next(const unsigned char *s, size_t *len)
{
    uint32_t cp;
    size_t n, i;

    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return -1;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = n;
    return (int32_t)cp;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

int mutf7_encode(const char *utf8, char **out, mr_error *err)
{
    const unsigned char *s = (const unsigned char *)utf8;
    size_t n, cap, o = 0;
    char *buf;

    *out = NULL;
    if (utf8 == NULL)
        return mr_error_set(err, MR_E_INVALID, "no mailbox name");
    n = strlen(utf8);
    /* Worst case: each 3-byte character becomes 16 bits = 8/3 BASE64 characters, plus
     * "&" and "-" around every run; 4 bytes out per byte in is ample. */
    cap = 4 * n + 3;
    buf = malloc(cap);
    if (buf == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    while (*s != '\0') {
        size_t len;
        int32_t cp = utf8_next(s, &len);

        if (cp < 0) {
            free(buf);
            return mr_error_set(err, MR_E_INVALID, "mailbox name is not valid UTF-8");
        }
        if (is_control((uint32_t)cp)) {
            free(buf);
            return mr_error_set(err, MR_E_INVALID, "mailbox name contains a control "
                                "character");
        }
        if (cp >= 0x20 && cp <= 0x7E) {
            buf[o++] = (char)cp;
            if (cp == '&')
                buf[o++] = '-';
            s += len;
            continue;
        }
        /* A run of characters outside printable ASCII: one BASE64 run. */
        uint32_t bits = 0;
        int nbits = 0;

        buf[o++] = '&';
        while (*s != '\0') {
            uint16_t units[2];
            int nu;

            cp = utf8_next(s, &len);
            if (cp < 0 || (cp >= 0x20 && cp <= 0x7E))
                break;
            if (is_control((uint32_t)cp)) {
                free(buf);
                return mr_error_set(err, MR_E_INVALID, "mailbox name contains a control "
                                    "character");
            }
            if (cp >= 0x10000) {
                uint32_t v = (uint32_t)cp - 0x10000;
                units[0] = (uint16_t)(0xD800 | (v >> 10));
                units[1] = (uint16_t)(0xDC00 | (v & 0x3FF));
                nu = 2;
            } else {
                units[0] = (uint16_t)cp;
                nu = 1;
            }
            for (int u = 0; u < nu; u++) {
                bits = (bits << 16) | units[u];
                nbits += 16;
                while (nbits >= 6) {
                    nbits -= 6;
                    buf[o++] = B64[(bits >> nbits) & 0x3F];
                }
                bits &= (1u << nbits) - 1;
            }
            s += len;
        }
        if (nbits > 0)
            buf[o++] = B64[(bits << (6 - nbits)) & 0x3F];
        buf[o++] = '-';
        /* An invalid byte ended the run: the outer loop reports it. */
    }
    buf[o] = '\0';
    *out = buf;
    return 0;
}

static size_t utf8_put(char *p, uint32_t cp)
{
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xC0 | (cp >> 6));
        p[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (char)(0xE0 | (cp >> 12));
        p[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        p[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | (cp >> 18));
    p[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    p[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    p[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int decode_fail(char *buf, mr_error *err, const char *why)
{
    free(buf);
    return mr_error_set(err, MR_E_INVALID, "mailbox name is not valid modified UTF-7: %s",
                        why);
}

int mutf7_decode(const char *mutf7, char **out, mr_error *err)
{
    const unsigned char *s = (const unsigned char *)mutf7;
    size_t o = 0;
    char *buf;
    bool after_run = false;

    *out = NULL;
    if (mutf7 == NULL)
        return mr_error_set(err, MR_E_INVALID, "no mailbox name");
    /* Each BASE64 character carries 6 bits: at most 3 bytes of UTF-8 per 2 characters
     * of input (a 16-bit unit in at least 3 characters gives at most 3 bytes). */
    buf = malloc(2 * strlen(mutf7) + 1);
    if (buf == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    while (*s != '\0') {
        if (*s < 0x20 || *s > 0x7E)
            return decode_fail(buf, err, "a byte outside printable US-ASCII");
        if (*s != '&') {
            buf[o++] = (char)*s++;
            after_run = false;
            continue;
        }
        s++;
        if (*s == '-') {
            buf[o++] = '&';
            s++;
            after_run = false;
            continue;
        }
        if (after_run)
            return decode_fail(buf, err, "two BASE64 runs back to back");
        uint32_t bits = 0, high = 0;
        int nbits = 0;
        size_t chars = 0;

        while (*s != '-') {
            int v = b64_value(*s);
            if (v < 0)
                return decode_fail(buf, err, *s == '\0' ? "a BASE64 run without '-'"
                                                        : "a character outside BASE64");
            bits = (bits << 6) | (uint32_t)v;
            nbits += 6;
            s++;
            if (nbits < 16)
                continue;
            nbits -= 16;
            uint32_t u = (bits >> nbits) & 0xFFFF;
            bits &= (1u << nbits) - 1;
            if (high != 0) {
                if (u < 0xDC00 || u > 0xDFFF)
                    return decode_fail(buf, err, "an unpaired surrogate");
                o += utf8_put(buf + o, 0x10000 + ((high - 0xD800) << 10) + (u - 0xDC00));
                high = 0;
            } else if (u >= 0xD800 && u <= 0xDBFF) {
                high = u;
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                return decode_fail(buf, err, "an unpaired surrogate");
            } else if (u >= 0x20 && u <= 0x7E) {
                return decode_fail(buf, err, "printable ASCII inside a BASE64 run");
            } else if (is_control(u)) {
                return decode_fail(buf, err, "a control character");
            } else {
                o += utf8_put(buf + o, u);
            }
            chars++;
        }
        s++;   /* the '-' */
        if (high != 0)
            return decode_fail(buf, err, "an unpaired surrogate");
        if (nbits >= 6 || bits != 0)
            return decode_fail(buf, err, "stray bits at the end of a BASE64 run");
        if (chars == 0)
            return decode_fail(buf, err, "an empty BASE64 run");
        after_run = true;
    }
    buf[o] = '\0';
    *out = buf;
    return 0;
}

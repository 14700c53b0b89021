/* s3_util.c — see s3_util.h. */
#include "store/s3_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

char *s3_uri_encode(const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

struct enc_param {
    char *name, *value;
};

static int cmp_param(const void *a, const void *b)
{
    const struct enc_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    return c != 0 ? c : strcmp(x->value, y->value);
}

char *s3_canonical_query(const struct s3_param *p, size_t n)
{
    struct enc_param *e = calloc(n + 1, sizeof *e);
    size_t total = 1, i;
    char *out = NULL, *o;

    if (e == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        e[i].name = s3_uri_encode(p[i].name, false);
        e[i].value = s3_uri_encode(p[i].value != NULL ? p[i].value : "", false);
        if (e[i].name == NULL || e[i].value == NULL)
            goto out;
        total += strlen(e[i].name) + strlen(e[i].value) + 2;
    }
    qsort(e, n, sizeof *e, cmp_param);
    out = malloc(total);
    if (out == NULL)
        goto out;
    o = out;
    *o = '\0';
    for (i = 0; i < n; i++)
        o += sprintf(o, "%s%s=%s", i ? "&" : "", e[i].name, e[i].value);
out:
    for (i = 0; i < n; i++) {
        free(e[i].name);
        free(e[i].value);
    }
    free(e);
    return out;
}

void s3_hex(const unsigned char *bin, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[bin[i] >> 4];
        out[2 * i + 1] = hex[bin[i] & 15];
    }
    out[2 * len] = '\0';
}

void s3_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        memset(md, 0, sizeof md);   /* never matches a real payload: the server refuses */
    s3_hex(md, 32, out);
}

/* Decode the five predefined entities and numeric references (ASCII only; anything else
 * is kept as it is). */
static char *xml_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    size_t i = 0;

    if (out == NULL)
        return NULL;
    while (i < n) {
        static const struct { const char *ent; char c; } ents[] = {
            { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
        };
        bool done = false;
        if (s[i] == '&') {
            for (size_t k = 0; k < sizeof ents / sizeof ents[0]; k++) {
                size_t el = strlen(ents[k].ent);
                if (n - i >= el && memcmp(s + i, ents[k].ent, el) == 0) {
                    *o++ = ents[k].c;
                    i += el;
                    done = true;
                    break;
                }
            }
            if (!done && n - i > 3 && s[i + 1] == '#') {
                const char *semi = memchr(s + i, ';', n - i < 12 ? n - i : 12);
                if (semi != NULL) {
                    long v = s[i + 2] == 'x' ? strtol(s + i + 3, NULL, 16) : strtol(s + i + 2, NULL, 10);
                    if (v > 0 && v < 128) {
                        *o++ = (char)v;
                        i = (size_t)(semi - s) + 1;
                        done = true;
                    }
                }
            }
        }
        if (!done)
            *o++ = s[i++];
    }
    *o = '\0';
    return out;
}

char *s3_xml_text(const char *xml, size_t len, size_t *pos, const char *tag)
{
    char otag[80], ctag[80];
    size_t ol, cl, i = *pos;

    ol = (size_t)snprintf(otag, sizeof otag, "<%s>", tag);
    cl = (size_t)snprintf(ctag, sizeof ctag, "</%s>", tag);
    if (ol >= sizeof otag || cl >= sizeof ctag || i > len)
        return NULL;
    {
        const char *a = memmem(xml + i, len - i, otag, ol), *b;
        if (a == NULL) {
            /* An empty element: <tag/> */
            char empty[80];
            size_t el = (size_t)snprintf(empty, sizeof empty, "<%s/>", tag);
            const char *e = memmem(xml + i, len - i, empty, el);
            if (e == NULL)
                return NULL;
            *pos = (size_t)(e - xml) + el;
            return strdup("");
        }
        a += ol;
        b = memmem(a, len - (size_t)(a - xml), ctag, cl);
        if (b == NULL)
            return NULL;
        *pos = (size_t)(b - xml) + cl;
        return xml_decode(a, (size_t)(b - a));
    }
}

void s3_xml_root(const char *xml, size_t len, char *out, size_t outsz)
{
    size_t i = 0, k = 0;

    out[0] = '\0';
    while (i < len) {
        if (xml[i] == '<' && i + 1 < len && xml[i + 1] != '?' && xml[i + 1] != '!') {
            i++;
            while (i < len && k + 1 < outsz && xml[i] != '>' && xml[i] != ' ' && xml[i] != '/' &&
                   xml[i] != '\t' && xml[i] != '\r' && xml[i] != '\n')
                out[k++] = xml[i++];
            out[k] = '\0';
            return;
        }
        i++;
    }
}

char *s3_xml_escape(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(6 * n + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (; *s; s++) {
        switch (*s) {
        case '&': o += sprintf(o, "&amp;"); break;
        case '<': o += sprintf(o, "&lt;"); break;
        case '>': o += sprintf(o, "&gt;"); break;
        case '"': o += sprintf(o, "&quot;"); break;
        default: *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

int s3_lock_headers(bool lock_on, bool governance, time_t retain_until, time_t now,
                    char mode[64], char until[96])
{
    struct tm tm;

    mode[0] = until[0] = '\0';
    if (!lock_on || retain_until <= now || gmtime_r(&retain_until, &tm) == NULL)
        return 0;
    snprintf(mode, 64, "x-amz-object-lock-mode: %s", governance ? "GOVERNANCE" : "COMPLIANCE");
    if (strftime(until, 96, "x-amz-object-lock-retain-until-date: %Y-%m-%dT%H:%M:%S.000Z",
                 &tm) == 0) {
        mode[0] = until[0] = '\0';
        return 0;
    }
    return 2;
}

bool s3_content_md5_header(const void *data, size_t len, char out[64])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n;

    out[0] = '\0';
    if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
        return false;
    memcpy(out, "Content-MD5: ", 13);
    n = EVP_EncodeBlock((unsigned char *)out + 13, md, 16);
    if (n != 24) {
        out[0] = '\0';
        return false;
    }
    return true;
}

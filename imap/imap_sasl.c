/* imap_sasl.c — see imap_sasl.h. */
#include "imap/imap_sasl.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

const char *imap_sasl_name(enum imap_auth mech)
{
    switch (mech) {
    case IMAP_AUTH_PLAIN:
        return "PLAIN";
    case IMAP_AUTH_XOAUTH2:
        return "XOAUTH2";
    case IMAP_AUTH_OAUTHBEARER:
        return "OAUTHBEARER";
    default:
        return NULL;
    }
}

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_b64token(const char *t)
{
    size_t i = 0;

    while (t[i] != '\0' && (strchr("-._~+/", t[i]) != NULL ||
                            (t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
                            (t[i] >= '0' && t[i] <= '9')))
        i++;
    if (i == 0)
        return false;
    while (t[i] == '=')
        i++;
    return t[i] == '\0';
}

int imap_sasl_initial(enum imap_auth mech, const char *user, const char *secret, char **b64,
                      mr_error *err)
{
    size_t ul, sl, cap, n = 0, enc;
    unsigned char *raw;
    char *out;

    *b64 = NULL;
    if (user == NULL || secret == NULL || imap_sasl_name(mech) == NULL)
        return mr_error_set(err, MR_E_INVALID, "imap_sasl_initial: bad arguments");
    ul = strlen(user);
    sl = strlen(secret);
    if (ul == 0 || sl == 0)
        return mr_error_set(err, MR_E_INVALID, "empty user name or credential");
    if (mech != IMAP_AUTH_PLAIN) {
        if (strchr(user, '\x01') != NULL)
            return mr_error_set(err, MR_E_INVALID, "the user name contains a control "
                                "character that OAuth cannot carry");
        if (!is_b64token(secret))
            return mr_error_set(err, MR_E_INVALID, "the access token is not a bearer token "
                                "(characters outside A-Z a-z 0-9 - . _ ~ + / =)");
    }
    cap = 3 * ul + sl + 32;
    raw = malloc(cap);
    if (raw == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    switch (mech) {
    case IMAP_AUTH_PLAIN:
        raw[n++] = '\0';
        memcpy(raw + n, user, ul);
        n += ul;
        raw[n++] = '\0';
        memcpy(raw + n, secret, sl);
        n += sl;
        break;
    case IMAP_AUTH_XOAUTH2:
        memcpy(raw + n, "user=", 5);
        n += 5;
        memcpy(raw + n, user, ul);
        n += ul;
        memcpy(raw + n, "\x01" "auth=Bearer ", 13);
        n += 13;
        memcpy(raw + n, secret, sl);
        n += sl;
        memcpy(raw + n, "\x01\x01", 2);
        n += 2;
        break;
    default:    /* OAUTHBEARER: gs2-header "n,a=<saslname>," */
        memcpy(raw + n, "n,a=", 4);
        n += 4;
        for (size_t i = 0; i < ul; i++) {
            if (user[i] == ',') {
                memcpy(raw + n, "=2C", 3);
                n += 3;
            } else if (user[i] == '=') {
                memcpy(raw + n, "=3D", 3);
                n += 3;
            } else {
                raw[n++] = (unsigned char)user[i];
            }
        }
        memcpy(raw + n, ",\x01" "auth=Bearer ", 14);
        n += 14;
        memcpy(raw + n, secret, sl);
        n += sl;
        memcpy(raw + n, "\x01\x01", 2);
        n += 2;
        break;
    }
    enc = 4 * ((n + 2) / 3) + 1;
    out = malloc(enc);
    if (out == NULL) {
        OPENSSL_cleanse(raw, cap);
        free(raw);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
    OPENSSL_cleanse(raw, cap);
    free(raw);
    *b64 = out;
    return 0;
}

void imap_sasl_error_status(const char *b64, char *buf, size_t size)
{
    size_t len = b64 != NULL ? strlen(b64) : 0;
    unsigned char *raw;
    int n;
    json_t *j;
    const char *status = NULL;
    char num[32];

    if (size == 0)
        return;
    buf[0] = '\0';
    if (len == 0 || len % 4 != 0 || len > 8192)
        return;
    raw = malloc(len);
    if (raw == NULL)
        return;
    n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (n < 0) {
        free(raw);
        return;
    }
    /* EVP_DecodeBlock counts the padding's zero bytes too. */
    if (len >= 1 && b64[len - 1] == '=')
        n--;
    if (len >= 2 && b64[len - 2] == '=')
        n--;
    j = json_loadb((const char *)raw, (size_t)n, 0, NULL);
    free(raw);
    if (j == NULL)
        return;
    {
        json_t *s = json_object_get(j, "status");
        if (json_is_string(s)) {
            status = json_string_value(s);
        } else if (json_is_integer(s)) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(s));
            status = num;
        }
    }
    if (status != NULL && *status != '\0' && strlen(status) <= 40 &&
        strspn(status, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
            strlen(status))
        snprintf(buf, size, "%s", status);
    json_decref(j);
}

bool imap_sasl_mentions(const char *text, const char *secret)
{
    size_t tl, sl, w;

    if (text == NULL || secret == NULL || (sl = strlen(secret)) == 0)
        return false;
    tl = strlen(text);
    w = sl < 12 ? sl : 12;
    for (size_t i = 0; i + w <= sl; i++)
        for (size_t j = 0; j + w <= tl; j++)
            if (memcmp(text + j, secret + i, w) == 0)
                return true;
    return false;
}

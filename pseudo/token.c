/* token.c — normalisation of identifiers and their keyed tokens.
 * A token is HMAC-SHA-256(key, kind-name || 0x00 || normalised value), first 80 bits in
 * lower-case base32: deterministic under one key, meaningless without it. */
#include "pseudo/token.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

struct ptok_entry {
    enum pseudo_kind kind;
    bool listed;
    uint64_t hash;
    char token[PSEUDO_TOKEN_LEN + 1];
    size_t len;
    unsigned char norm[];   /* normalised value, len bytes */
};

const char *pseudo_kind_name(enum pseudo_kind kind)
{
    switch (kind) {
    case PSEUDO_EMAIL: return "email";
    case PSEUDO_CPR: return "cpr";
    case PSEUDO_PHONE: return "phone";
    case PSEUDO_NAME: return "name";
    case PSEUDO_IP: return "ip";
    }
    return "unknown";
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int digits_only(const unsigned char *v, size_t len, unsigned char *d, size_t *n)
{
    size_t k = 0;

    for (size_t i = 0; i < len; i++) {
        if (v[i] >= '0' && v[i] <= '9') {
            if (k == 16)
                return -1;
            d[k++] = v[i];
        }
    }
    *n = k;
    return 0;
}

/* Latin-1 to UTF-8, for names that are not valid UTF-8 (raw 8-bit headers). */
static unsigned char *latin1_to_utf8(const unsigned char *v, size_t len, size_t *out_len)
{
    unsigned char *o = malloc(len * 2 + 1);
    size_t k = 0;

    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < 0x80) {
            o[k++] = v[i];
        } else {
            o[k++] = (unsigned char)(0xC0 | (v[i] >> 6));
            o[k++] = (unsigned char)(0x80 | (v[i] & 0x3F));
        }
    }
    *out_len = k;
    return o;
}

/* The normalisers write into buf (cap bytes) when the result fits, else into a malloc'd
 * buffer: *out == buf tells the caller there is nothing to free.  Values are short and
 * normalised once per match, so the common case allocates nothing. */
static unsigned char *norm_buf(unsigned char *buf, size_t cap, size_t need)
{
    return (buf != NULL && need <= cap) ? buf : malloc(need ? need : 1);
}

static int normalise_name(const unsigned char *v, size_t len, unsigned char *buf, size_t cap,
                          unsigned char **out, size_t *out_len, mr_error *err)
{
    unsigned char *collapsed, *conv = NULL, *folded;
    const unsigned char *src;
    size_t k = 0, srclen, flen = 0;
    bool pending_space = false;

    collapsed = norm_buf(buf, cap, len + 1);
    if (collapsed == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory normalising a name");
    for (size_t i = 0; i < len; i++) {
        if (is_space(v[i])) {
            pending_space = k > 0;
            continue;
        }
        if (pending_space)
            collapsed[k++] = ' ';
        pending_space = false;
        collapsed[k++] = v[i];
    }
    if (k == 0) {
        if (collapsed != buf)
            free(collapsed);
        return mr_error_set(err, MR_E_INVALID, "empty name");
    }
    src = collapsed;
    srclen = k;
    /* Fast path for ASCII and precomposed Latin-1 letters in UTF-8 (almost every name):
     * they are NFC already and case-fold one to one (ß, which folds to "ss", excluded). */
    {
        bool simple = true;
        for (size_t i = 0; i < k && simple; i++) {
            if (collapsed[i] < 0x80)
                continue;
            simple = collapsed[i] == 0xC3 && i + 1 < k && collapsed[i + 1] >= 0x80 &&
                     collapsed[i + 1] <= 0xBF && collapsed[i + 1] != 0x9F;
            i++;
        }
        if (simple) {
            for (size_t i = 0; i < k; i++) {
                unsigned char c = collapsed[i];
                if (c >= 'A' && c <= 'Z')
                    collapsed[i] = (unsigned char)(c + 32);
                else if (c == 0xC3 && collapsed[i + 1] <= 0x9E && collapsed[i + 1] != 0x97)
                    collapsed[++i] += 0x20;
                else if (c == 0xC3)
                    i++;
            }
            collapsed[k] = '\0';
            *out = collapsed;
            *out_len = k;
            return 0;
        }
    }
    if (u8_check(collapsed, k) != NULL) {
        conv = latin1_to_utf8(collapsed, k, &srclen);
        if (conv == NULL) {
            if (collapsed != buf)
                free(collapsed);
            return mr_error_set(err, MR_E_NOMEM, "out of memory normalising a name");
        }
        src = conv;
    }
    /* Case folding with NFC normalisation: "METTE", "mette" and a decomposed "ø" all
     * give the same token. */
    folded = u8_casefold(src, srclen, NULL, UNINORM_NFC, NULL, &flen);
    if (collapsed != buf)
        free(collapsed);
    free(conv);
    if (folded == NULL)
        return mr_error_set(err, MR_E_NOMEM, "cannot case-fold a name");
    *out = folded;
    *out_len = flen;
    return 0;
}

int ptoken_normalise_buf(enum pseudo_kind kind, const unsigned char *v, size_t len,
                         unsigned char *buf, size_t cap, unsigned char **out, size_t *out_len,
                         mr_error *err)
{
    unsigned char d[17];
    size_t n = 0, s = 0, e = len;
    unsigned char *o;

    if (kind == PSEUDO_NAME)
        return normalise_name(v, len, buf, cap, out, out_len, err);
    if (kind == PSEUDO_CPR || kind == PSEUDO_PHONE) {
        const unsigned char *dp = d;
        if (digits_only(v, len, d, &n) != 0)
            return mr_error_set(err, MR_E_INVALID, "too many digits for a %s",
                                pseudo_kind_name(kind));
        if (kind == PSEUDO_PHONE) {
            /* The same number with or without the country code is one person. */
            if (n == 12 && memcmp(d, "0045", 4) == 0) {
                dp += 4;
                n -= 4;
            } else if (n == 10 && memcmp(d, "45", 2) == 0) {
                dp += 2;
                n -= 2;
            }
            if (n != 8)
                return mr_error_set(err, MR_E_INVALID, "a phone number has 8 digits");
        } else if (n != 10) {
            return mr_error_set(err, MR_E_INVALID, "a CPR number has 10 digits");
        }
        o = norm_buf(buf, cap, n + 1);
        if (o == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        memcpy(o, dp, n);
        o[n] = '\0';
        *out = o;
        *out_len = n;
        return 0;
    }
    while (s < e && (is_space(v[s]) || v[s] == '<' || v[s] == '['))
        s++;
    while (e > s && (is_space(v[e - 1]) || v[e - 1] == '>' || v[e - 1] == ']'))
        e--;
    if (e == s)
        return mr_error_set(err, MR_E_INVALID, "empty %s", pseudo_kind_name(kind));
    o = norm_buf(buf, cap, e - s + 1);
    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = s; i < e; i++)
        o[i - s] = (v[i] >= 'A' && v[i] <= 'Z') ? (unsigned char)(v[i] + 32) : v[i];
    /* An IPv4 address written into a host name with dashes ("188-162-151-16.dynamic…")
     * is the same address as 188.162.151.16. */
    if (kind == PSEUDO_IP)
        for (size_t i = 0; i < e - s; i++)
            if (o[i] == '-')
                o[i] = '.';
    o[e - s] = '\0';
    *out = o;
    *out_len = e - s;
    return 0;
}

int ptoken_normalise(enum pseudo_kind kind, const unsigned char *v, size_t len,
                     unsigned char **out, size_t *out_len, mr_error *err)
{
    return ptoken_normalise_buf(kind, v, len, NULL, 0, out, out_len, err);
}

static void b32_token(const unsigned char *md, char out[PSEUDO_TOKEN_LEN + 1]);

int ptoken_compute(const pseudo_key *key, enum pseudo_kind kind, const unsigned char *norm,
                   size_t len, char out[PSEUDO_TOKEN_LEN + 1], mr_error *err)
{
    const char *kn = pseudo_kind_name(kind);
    size_t kl = strlen(kn) + 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char stackbuf[512], *buf = stackbuf;

    /* One-shot HMAC over kind-name || 0x00 || value (the input is assembled because
     * HMAC() takes one buffer; values are short). */
    if (kl + len > sizeof stackbuf) {
        buf = malloc(kl + len);
        if (buf == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory computing a token");
    }
    memcpy(buf, kn, kl);
    memcpy(buf + kl, norm, len);
    if (HMAC(EVP_sha256(), key->bytes, PSEUDO_KEY_LEN, buf, kl + len, md, &mdlen) == NULL ||
        mdlen < 10) {
        if (buf != stackbuf)
            free(buf);
        return mr_error_openssl(err, MR_E_CRYPTO, "HMAC-SHA-256 failed");
    }
    if (buf != stackbuf)
        free(buf);
    b32_token(md, out);
    return 0;
}

void ptokens_init(ptokens *t, psha *sha, parena *arena)
{
    memset(t, 0, sizeof *t);
    t->sha = sha;
    t->arena = arena;
}

void ptokens_reset(ptokens *t)
{
    /* The entries were in the arena.  The keyed states stay: same key, next message. */
    if (t->n_slots > PTOKENS_KEEP_SLOTS) {
        free(t->slots);
        t->slots = NULL;
        t->n_slots = 0;
    } else if (t->n_used > 0) {
        memset(t->slots, 0, t->n_slots * sizeof *t->slots);
    }
    t->n_used = 0;
    t->n_order = 0;
}

void ptokens_free(ptokens *t)
{
    psha *sha = t->sha;
    parena *arena = t->arena;

    psha_hmac_free(t->hmac);
    /* The entries live in the arena. */
    free(t->slots);
    free(t->order);
    memset(t, 0, sizeof *t);
    t->sha = sha;
    t->arena = arena;
}

/* The table's hash of a value: eight bytes per multiply (a multiply per byte, each
 * waiting for the last, would cost more than the lookup it serves).  Only the slot
 * depends on it (the token list keeps the order of first use), so it may
 * change freely; the length is mixed in first so that a zero-padded tail differs from a
 * longer value. */
static uint64_t tok_hash(enum pseudo_kind kind, const unsigned char *v, size_t len)
{
    const uint64_t mul = 0x9E3779B97F4A7C15ULL;
    uint64_t h = ((uint64_t)len << 8 | (uint64_t)kind) * mul, w;

    for (; len >= 8; v += 8, len -= 8) {
        memcpy(&w, v, 8);
        h = (h ^ w) * mul;
        h ^= h >> 29;
    }
    if (len > 0) {
        w = 0;
        memcpy(&w, v, len);
        h = (h ^ w) * mul;
        h ^= h >> 29;
    }
    return h ^ (h >> 32);
}

static int tok_grow(ptokens *t, mr_error *err)
{
    size_t n = t->n_slots ? t->n_slots * 2 : 64;
    struct ptok_entry **ns = calloc(n, sizeof *ns);

    if (ns == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory for tokens");
    for (size_t i = 0; i < t->n_slots; i++) {
        struct ptok_entry *e = t->slots[i];
        if (e == NULL)
            continue;
        size_t j = e->hash & (n - 1);
        while (ns[j] != NULL)
            j = (j + 1) & (n - 1);
        ns[j] = e;
    }
    free(t->slots);
    t->slots = ns;
    t->n_slots = n;
    return 0;
}

static void b32_token(const unsigned char *md, char out[PSEUDO_TOKEN_LEN + 1])
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

    /* 16 base32 characters = 80 bits = the first 10 bytes of the MAC. */
    for (int i = 0; i < PSEUDO_TOKEN_LEN; i++) {
        int bit = i * 5, byte = bit / 8, off = bit % 8;
        unsigned v = ((unsigned)md[byte] << 8) | (byte + 1 < 10 ? md[byte + 1] : 0);
        out[i] = b32[(v >> (11 - off)) & 31];
    }
    out[PSEUDO_TOKEN_LEN] = '\0';
}

/* The token of a normalised value under the keyed HMAC (set up at the first token):
 * the same bytes as ptoken_compute (the test suite checks both against HMAC()). */
static int tok_compute_fast(ptokens *t, const pseudo_key *key, enum pseudo_kind kind,
                            const unsigned char *norm, size_t len,
                            char out[PSEUDO_TOKEN_LEN + 1], mr_error *err)
{
    const char *kn = pseudo_kind_name(kind);
    unsigned char md[32];
    int rc;

    if (t->hmac == NULL) {
        rc = psha_hmac_new(t->sha, key->bytes, PSEUDO_KEY_LEN, &t->hmac, err);
        if (rc != 0)
            return rc;
    }
    rc = psha_hmac_compute(t->hmac, (const unsigned char *)kn, strlen(kn) + 1, norm, len, md,
                           err);
    if (rc != 0)
        return rc;
    b32_token(md, out);
    OPENSSL_cleanse(md, sizeof md);
    return 0;
}

int ptokens_get(ptokens *t, const pseudo_key *key, enum pseudo_kind kind,
                const unsigned char *norm, size_t len, bool list, const char **token,
                mr_error *err)
{
    uint64_t h = tok_hash(kind, norm, len);
    struct ptok_entry *e = NULL;
    size_t j;
    int rc;

    if ((t->n_used + 1) * 2 > t->n_slots) {
        rc = tok_grow(t, err);
        if (rc != 0)
            return rc;
    }
    for (j = h & (t->n_slots - 1); t->slots[j] != NULL; j = (j + 1) & (t->n_slots - 1)) {
        struct ptok_entry *c = t->slots[j];
        if (c->hash == h && c->kind == kind && c->len == len && memcmp(c->norm, norm, len) == 0) {
            e = c;
            break;
        }
    }
    if (e == NULL) {
        e = parena_alloc(t->arena, sizeof *e + len + 1, err);
        if (e == NULL)
            return MR_E_NOMEM;
        e->kind = kind;
        e->listed = false;
        e->hash = h;
        e->len = len;
        memcpy(e->norm, norm, len);
        e->norm[len] = '\0';
        rc = tok_compute_fast(t, key, kind, norm, len, e->token, err);
        if (rc != 0)
            return rc;      /* the entry stays in the arena, unused */
        t->slots[j] = e;
        t->n_used++;
    }
    if (list && !e->listed) {
        if (t->n_order == t->cap_order) {
            size_t cap = t->cap_order ? t->cap_order * 2 : 16;
            struct ptok_entry **no = realloc(t->order, cap * sizeof *no);
            if (no == NULL)
                return mr_error_set(err, MR_E_NOMEM, "out of memory for tokens");
            t->order = no;
            t->cap_order = cap;
        }
        t->order[t->n_order++] = e;
        e->listed = true;
    }
    *token = e->token;
    return 0;
}

void ptokens_reset_list(ptokens *t)
{
    for (size_t i = 0; i < t->n_order; i++)
        t->order[i]->listed = false;
    t->n_order = 0;
}

size_t ptokens_count(const ptokens *t)
{
    return t->n_order;
}

void ptokens_at(const ptokens *t, size_t i, enum pseudo_kind *kind, const char **token)
{
    *kind = t->order[i]->kind;
    *token = t->order[i]->token;
}

size_t ptoken_shape(enum pseudo_kind kind, const char *token, char out[PSEUDO_SHAPE_MAX])
{
    static const char *const pre[PSEUDO_KIND_COUNT] = {"p-", "CPR-", "TLF-", "Navn-", "IP-"};
    static const char suf[] = "@pseudonym.invalid";
    size_t tl = strnlen(token, PSEUDO_TOKEN_LEN), pl, n;

    /* Called for every replacement: plain copies instead of snprintf. */
    if ((int)kind < 0 || (int)kind >= PSEUDO_KIND_COUNT)
        return 0;
    pl = strlen(pre[kind]);
    memcpy(out, pre[kind], pl);
    memcpy(out + pl, token, tl);
    n = pl + tl;
    if (kind == PSEUDO_EMAIL) {
        memcpy(out + n, suf, sizeof suf - 1);
        n += sizeof suf - 1;
    }
    out[n] = '\0';
    return n;
}

int pseudo_token(const pseudo_key *key, enum pseudo_kind kind, const char *value,
                 char out[PSEUDO_TOKEN_LEN + 1], mr_error *err)
{
    unsigned char *norm = NULL;
    size_t nlen = 0;
    int rc;

    if (key == NULL || value == NULL || out == NULL || (int)kind < 0 ||
        (int)kind >= PSEUDO_KIND_COUNT)
        return mr_error_set(err, MR_E_INVALID, "pseudo_token: bad argument");
    rc = ptoken_normalise(kind, (const unsigned char *)value, strlen(value), &norm, &nlen, err);
    if (rc != 0)
        return rc;
    rc = ptoken_compute(key, kind, norm, nlen, out, err);
    free(norm);
    return rc;
}

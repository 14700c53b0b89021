/* mime.c — walks one entity: header fields by kind, then the body by MIME type.
 * The same walk runs twice: pass 1 (ctx->collecting) only gathers display names and
 * addresses from address headers at every level; pass 2 writes the output.  Every byte of
 * the entity is written exactly once in pass 2 (copied, or replaced through an edit), so a
 * parse that goes wrong can only cost recall, never the byte-exact restore. */
#include "pseudo/mime.h"
#include "pseudo/policy.h"
#include "pseudo/scan.h"
#include "pseudo/text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PFIND_SSE2
#include <emmintrin.h>
#endif

enum hclass { H_GENERIC, H_ADDR, H_MSGID, H_IP, H_CTYPE, H_CDISP, H_CTE, H_SKIP, H_SIG };

#define H(n, c) {n, sizeof n - 1, c}
static const struct {
    const char *name;
    size_t len;
    enum hclass cls;
} HEADERS[] = {
    H("from", H_ADDR), H("to", H_ADDR), H("cc", H_ADDR), H("bcc", H_ADDR),
    H("reply-to", H_ADDR), H("sender", H_ADDR), H("return-path", H_ADDR),
    H("delivered-to", H_ADDR), H("x-original-to", H_ADDR), H("resent-from", H_ADDR),
    H("resent-to", H_ADDR), H("resent-cc", H_ADDR), H("resent-bcc", H_ADDR),
    H("resent-sender", H_ADDR), H("resent-reply-to", H_ADDR),
    H("disposition-notification-to", H_ADDR), H("errors-to", H_ADDR),
    H("x-envelope-from", H_ADDR), H("x-envelope-to", H_ADDR), H("envelope-to", H_ADDR),
    H("x-original-from", H_ADDR), H("x-sender", H_ADDR), H("x-receiver", H_ADDR),
    H("mail-followup-to", H_ADDR), H("mail-reply-to", H_ADDR), H("return-receipt-to", H_ADDR),
    H("apparently-to", H_ADDR), H("x-forwarded-to", H_ADDR), H("original-recipient", H_ADDR),
    H("final-recipient", H_ADDR),
    H("message-id", H_MSGID), H("in-reply-to", H_MSGID), H("references", H_MSGID),
    H("resent-message-id", H_MSGID), H("content-id", H_MSGID), H("original-message-id", H_MSGID),
    H("x-message-id", H_MSGID),
    H("received", H_IP), H("x-originating-ip", H_IP), H("x-sender-ip", H_IP),
    H("x-client-ip", H_IP), H("x-remote-ip", H_IP), H("x-real-ip", H_IP),
    H("x-forwarded-for", H_IP), H("x-remote-addr", H_IP), H("received-spf", H_IP),
    H("authentication-results", H_IP), H("x-ms-exchange-organization-originalclientipaddress", H_IP),
    H("content-type", H_CTYPE), H("content-disposition", H_CDISP),
    H("content-transfer-encoding", H_CTE),
    H("mime-version", H_SKIP), H("content-length", H_SKIP), H("lines", H_SKIP),
    H("date", H_SKIP), H("resent-date", H_SKIP),
    /* Signatures: long base64 in which only an address (i=, the signer) can be personal. */
    H("dkim-signature", H_SIG), H("x-google-dkim-signature", H_SIG), H("arc-seal", H_SIG),
    H("arc-message-signature", H_SIG), H("domainkey-signature", H_SIG),
};
#undef H

enum cte { CTE_IDENTITY, CTE_QP, CTE_B64 };

/* How a text subtype is read: HTML through its entities, iCalendar and vCard with their
 * folded lines joined (RFC 5545 3.1, RFC 6350 3.2). */
static unsigned text_view_flags(const char *subtype)
{
    if (strcmp(subtype, "html") == 0)
        return PTEXT_HTML;
    if (strcmp(subtype, "calendar") == 0 || strcmp(subtype, "vcard") == 0 ||
        strcmp(subtype, "x-vcard") == 0 || strcmp(subtype, "directory") == 0 ||
        strcmp(subtype, "x-vcalendar") == 0)
        return PTEXT_FOLDED;
    return 0;
}

struct entity_info {
    char type[32], subtype[64];
    bool has_type;
    unsigned char boundary[256];
    size_t boundary_len;
    enum cte cte;
    bool cte_other;         /* a transfer encoding not decoded here (x-uuencode, ...) */
    char charset[24];       /* text: the charset parameter, lower-cased, if it is short */
};

static unsigned char lc(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool ieq(const unsigned char *a, size_t n, const char *b)
{
    size_t l = strlen(b);

    if (n != l)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lc(a[i]) != (unsigned char)b[i])
            return false;
    return true;
}

/* Slot of a lower-cased header name low[0, n) (2 <= n <= HNAME_MAX): the top byte of
 * its length and five of its bytes (the first two, the middle one, the last two) times a
 * multiplier chosen so that the names of HEADERS fall into distinct slots (HSLOT and HMUL
 * are written by scripts/gen-header-slots from HEADERS, and the test pseudo_header_slots
 * fails when they differ from what it writes; after adding a header run it with
 * --write).  Five bytes, not every byte: a multiplication per byte would make each wait
 * for the one before in pass 1's walk over every field name, and the comparison that
 * confirms a slot reads the whole name anyway. */
#define HMUL UINT64_C(0xbe40f38e4a945555)
static inline unsigned hslot(const unsigned char *low, size_t n)
{
    uint64_t k = (uint64_t)low[0] | (uint64_t)low[1] << 8 | (uint64_t)low[n - 2] << 16 |
                 (uint64_t)low[n - 1] << 24 | (uint64_t)low[n / 2] << 32 | (uint64_t)n << 40;

    return (unsigned)((k * HMUL) >> 56);
}

/* HEADERS index + 1 per slot, 0 for none. */
static const unsigned char HSLOT[256] = {
    32,  0,  0, 56,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 35,  0,
     0,  0,  0,  0, 50,  0,  0,  0,  0, 34,  0,  0, 58,  0,  0,  0,
    53,  0,  0,  0, 27,  0, 13,  6,  0,  0,  8,  0,  0, 49, 57, 29,
     0,  0, 61, 60,  0,  0,  0,  0, 43,  0,  0,  0,  0,  0, 38,  0,
    40,  0,  0,  0,  0, 23, 39,  0,  0, 37,  5,  0,  0,  0, 15,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0, 47,  0,  0,  0, 24,  0,  0,  0,  0, 45,  0,  0,
     0, 14,  0,  0,  0, 42, 59, 17, 44,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0, 21,  0,  0,  0, 55, 41,  0,  0,  0,  0,
     0,  0,  1, 33,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    51, 25,  0,  0,  0,  0, 19,  0, 36,  0, 11,  0,  0,  0, 26,  0,
    30,  0,  0,  0, 10,  0,  0,  0,  0,  0,  0,  0, 22, 20,  4,  0,
     0,  0,  0,  0, 52,  0,  0,  9,  0,  0,  0,  0,  0,  0,  0,  0,
     0, 18, 12,  0,  0,  0,  0,  0,  0,  0,  0, 54,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  3, 31,  0,  0,  2,  0,  0,  7,
     0,  0, 48,  0,  0,  0,  0,  0,  0, 46, 28,  0,  0,  0,  0, 16,
};

/* Longest name the table is looked up for (longer ones are H_GENERIC). */
#define HNAME_MAX 64

/* Per byte, what it is in a field name: 0 where it cannot be in one (controls, blanks,
 * the colon, DEL, 8-bit), else the byte lower-cased.  One load per byte of every header
 * name in pass 1, instead of four comparisons and a lower-casing. */
#define HN1(c) ((unsigned char)((c) > ' ' && (c) < 127 && (c) != ':' ? \
                                 ((c) >= 'A' && (c) <= 'Z' ? (c) + 32 : (c)) : 0))
#define HN4(c) HN1(c), HN1((c) + 1), HN1((c) + 2), HN1((c) + 3)
#define HN16(c) HN4(c), HN4((c) + 4), HN4((c) + 8), HN4((c) + 12)
#define HN64(c) HN16(c), HN16((c) + 16), HN16((c) + 32), HN16((c) + 48)
static const unsigned char HNAME_LOWER[256] = {HN64(0), HN64(64), HN64(128), HN64(192)};
#undef HN64
#undef HN16
#undef HN4
#undef HN1

/* a[0, n) == b[0, n) for 2 <= n: by loads of 8, 4 or 2 bytes, the last one overlapping,
 * rather than a call to memcmp for a name of a dozen bytes. */
static inline bool same_name(const unsigned char *a, const char *b, size_t n)
{
    uint64_t x, y;
    uint32_t s, t;
    uint16_t u, v;

    if (n >= 8) {
        for (size_t j = 0; j + 8 < n; j += 8) {
            memcpy(&x, a + j, 8);
            memcpy(&y, b + j, 8);
            if (x != y)
                return false;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        memcpy(&s, a, 4);
        memcpy(&t, b, 4);
        if (s != t)
            return false;
        memcpy(&s, a + n - 4, 4);
        memcpy(&t, b + n - 4, 4);
        return s == t;
    }
    memcpy(&u, a, 2);
    memcpy(&v, b, 2);
    if (u != v)
        return false;
    memcpy(&u, a + n - 2, 2);
    memcpy(&v, b + n - 2, 2);
    return u == v;
}

/* A trace or spam-report header not in HEADERS, by the parts of its lower-cased name:
 * "x-…" with a part that says where the message came from or what a filter saw
 * (X-Forefront-Antispam-Report "CIP:", X-Spam-Status, X-MS-Exchange-…-OriginalClientIP,
 * X-Sender-IP …), and ARC-Authentication-Results.  Their IP addresses are replaced. */
static unsigned trace_class(const unsigned char *low, size_t n)
{
    static const char *const PARTS[] = {"ip", "ips", "spam", "antispam", "forefront",
                                        "originating", "relay", "peer", "client", "remote",
                                        "source", "received", "helo", "rdns", "ptr", "addr",
                                        "ipaddress", "clientip", "originalclientip",
                                        "originalclientipaddress", "senderip", "remoteip",
                                        "connecting", "virus", "scanned", "report"};
    size_t s;

    if (n == 26 && memcmp(low, "arc-authentication-results", 26) == 0)
        return H_IP;
    if (n < 3 || low[0] != 'x' || low[1] != '-')
        return H_GENERIC;
    s = 2;
    for (size_t i = 2; i <= n; i++) {
        if (i < n && low[i] != '-')
            continue;
        for (size_t k = 0; k < sizeof PARTS / sizeof PARTS[0]; k++)
            if (strlen(PARTS[k]) == i - s && memcmp(low + s, PARTS[k], i - s) == 0)
                return H_IP;
        s = i + 1;
    }
    return H_GENERIC;
}

/* The class of a lower-cased name low[0, n) (n <= HNAME_MAX): one comparison confirms
 * the slot.  No name in HEADERS is shorter than two bytes. */
static inline unsigned classify_lowered(const unsigned char *low, size_t n)
{
    unsigned k;

    if (n < 2)
        return H_GENERIC;
    k = HSLOT[hslot(low, n)];
    if (k != 0 && HEADERS[k - 1].len == n && same_name(low, HEADERS[k - 1].name, n))
        return HEADERS[k - 1].cls;
    return trace_class(low, n);
}

/* header_parse does the same walk fused with its check of the name. */
unsigned pmime_classify(const unsigned char *name, size_t n)
{
    unsigned char low[HNAME_MAX];

    if (n > sizeof low)
        return H_GENERIC;
    for (size_t i = 0; i < n; i++)
        low[i] = lc(name[i]);
    return classify_lowered(low, n);
}

/* The reference: every table entry in turn. */
unsigned pmime_classify_linear(const unsigned char *name, size_t n)
{
    unsigned char low[HNAME_MAX];

    if (n > sizeof low)
        return H_GENERIC;
    for (size_t i = 0; i < n; i++)
        low[i] = lc(name[i]);
    for (size_t i = 0; i < sizeof HEADERS / sizeof HEADERS[0]; i++)
        if (HEADERS[i].len == n && memcmp(low, HEADERS[i].name, n) == 0)
            return HEADERS[i].cls;
    return trace_class(low, n);
}

const char *pmime_header_name(size_t i)
{
    return i < sizeof HEADERS / sizeof HEADERS[0] ? HEADERS[i].name : NULL;
}

static size_t skip_ws(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* type/subtype and boundary from a Content-Type value. */
static void parse_ctype(const unsigned char *v, size_t len, struct entity_info *info)
{
    size_t i = skip_ws(v, len, 0), k = 0;
    char type[32], sub[64];

    while (i < len && k + 1 < sizeof type && v[i] != '/' && v[i] != ';' && v[i] > ' ')
        type[k++] = (char)lc(v[i++]);
    type[k] = '\0';
    if (i >= len || v[i] != '/' || k == 0)
        return;     /* unparseable: RFC 2045 says treat as text/plain */
    i++;
    k = 0;
    while (i < len && k + 1 < sizeof sub && v[i] != ';' && v[i] > ' ' && v[i] != '(')
        sub[k++] = (char)lc(v[i++]);
    sub[k] = '\0';
    memcpy(info->type, type, sizeof type);
    memcpy(info->subtype, sub, sizeof sub);
    info->has_type = true;
    /* Only a multipart body is split at its boundary, and only a text's charset decides
     * whether the scanner can read it: other parameters are not parsed here. */
    if (strcmp(type, "text") == 0) {
        unsigned char cs[sizeof info->charset];
        size_t n = ptext_param_get(v, len, "charset", cs, sizeof cs - 1);
        if (n != SIZE_MAX) {
            for (size_t j = 0; j < n; j++)
                info->charset[j] = (char)lc(cs[j]);
            info->charset[n] = '\0';
        }
        return;
    }
    if (strcmp(type, "multipart") != 0)
        return;
    info->boundary_len = ptext_param_get(v, len, "boundary", info->boundary,
                                         sizeof info->boundary);
    if (info->boundary_len == SIZE_MAX)
        info->boundary_len = 0;
}

static enum cte parse_cte(const unsigned char *v, size_t len, bool *other)
{
    size_t i = skip_ws(v, len, 0), e = i;

    while (e < len && v[e] > ' ' && v[e] != ';' && v[e] != '(')
        e++;
    *other = false;
    if (ieq(v + i, e - i, "base64"))
        return CTE_B64;
    if (ieq(v + i, e - i, "quoted-printable"))
        return CTE_QP;
    /* Anything but the identities is an encoding this code does not decode: the body is
     * walked as it stands, and sealed where it would have been scanned. */
    *other = e > i && !ieq(v + i, e - i, "7bit") && !ieq(v + i, e - i, "8bit") &&
             !ieq(v + i, e - i, "binary");
    return CTE_IDENTITY;
}

/* Pass 1's reading of an address header (below, after the per-message cache it uses). */
static int collect_addresses(struct pseudo_ctx *ctx, const unsigned char *v, size_t len);

/* ---- headers ------------------------------------------------------------------------- */

/* End of the header field starting at i: after the '\n' of its last line (a line that
 * begins with a blank continues it), or len.  One scan finds the line ends and looks at
 * the byte after each: a memchr per line cost more in the call than in the search (the
 * lines are short, a message has dozens), with SSE2 16 bytes are looked at a time. */
static inline size_t field_end(const unsigned char *p, size_t len, size_t i)
{
#ifdef PFIND_SSE2
    const __m128i nl = _mm_set1_epi8('\n');

    for (; len - i >= 16; i += 16) {
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i)), nl));
        while (m != 0) {
            size_t e = i + (size_t)__builtin_ctz(m) + 1;
            if (e == len || (p[e] != ' ' && p[e] != '\t'))
                return e;
            m &= m - 1;
        }
    }
#endif
    for (; i < len; i++)
        if (p[i] == '\n' && (i + 1 == len || (p[i + 1] != ' ' && p[i + 1] != '\t')))
            return i + 1;
    return len;
}

static bool blank_line(const unsigned char *p, size_t len, size_t i)
{
    return (i < len && p[i] == '\n') || (i + 1 < len && p[i] == '\r' && p[i + 1] == '\n');
}

/* Parse the header line p[fs, fe): its value start (0: not a header field) and class;
 * the entity's Content-Type and Content-Transfer-Encoding go into info.  A field is a
 * name of printable ASCII, blanks, then the colon.  Pass 1 runs this for every header
 * line, so one walk over the name checks it and lower-cases it for the table (as
 * pmime_classify does). */
static size_t header_parse(const unsigned char *p, size_t fs, size_t fe, enum hclass *cls,
                           struct entity_info *info)
{
    unsigned char low[HNAME_MAX], c;
    size_t ne = fs, end = fe - fs > sizeof low ? fs + sizeof low : fe, colon, vs;

    *cls = H_GENERIC;
    /* The name ends at the first byte that cannot be in it: the colon if the line is a
     * field, or blanks before the colon.  Past HNAME_MAX bytes it is only checked.  With
     * SSE2 16 bytes are checked and lower-cased at a time, as HNAME_LOWER does it (a name
     * byte is above the blank and below DEL, as signed bytes, and not the colon); what
     * is stored past the name's end is not read. */
#ifdef PFIND_SSE2
    while (end - ne >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + ne));
        __m128i in = _mm_andnot_si128(
            _mm_cmpeq_epi8(v, _mm_set1_epi8(':')),
            _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(' ')),
                          _mm_cmplt_epi8(v, _mm_set1_epi8(127))));
        __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
        unsigned out = ~(unsigned)_mm_movemask_epi8(in) & 0xffffu;
        _mm_storeu_si128((__m128i *)(void *)(low + (ne - fs)),
                         _mm_add_epi8(v, _mm_and_si128(upper, _mm_set1_epi8(32))));
        if (out != 0) {
            ne += (size_t)__builtin_ctz(out);   /* the loop below stops there */
            break;
        }
        ne += 16;
    }
#endif
    while (ne < end && (c = HNAME_LOWER[p[ne]]) != 0) {
        low[ne - fs] = c;
        ne++;
    }
    if (ne == end)
        while (ne < fe && HNAME_LOWER[p[ne]] != 0)
            ne++;
    colon = ne;
    while (colon < fe && (p[colon] == ' ' || p[colon] == '\t'))
        colon++;
    if (ne == fs || colon == fe || p[colon] != ':')
        return 0;
    vs = colon + 1;
    if (ne - fs <= sizeof low)
        *cls = (enum hclass)classify_lowered(low, ne - fs);
    if (*cls == H_CTYPE && !info->has_type)
        parse_ctype(p + vs, fe - vs, info);
    if (*cls == H_CTE)
        info->cte = parse_cte(p + vs, fe - vs, &info->cte_other);
    return vs;
}

/* A sealed part's Content-Type or Content-Transfer-Encoding value (below). */
static int seal_header(struct pseudo_ctx *ctx, const unsigned char *v, size_t len,
                       enum hclass cls, pout *out);

/* The header line p[fs, fe) once parsed, written (the later passes), or a line that is
 * not a header field, in any pass.  sealed: the entity's body is sealed, so its type and
 * encoding fields describe the placeholder instead. */
static int header_write(struct pseudo_ctx *ctx, const unsigned char *p, size_t fs, size_t fe,
                        size_t vs, enum hclass cls, bool sealed, pout *out)
{
    unsigned flags = pscan_policy_flags(ctx->pol);
    int rc;

    if (vs == 0)   /* not a header field: scan it as text */
        return ptext_header(ctx, p + fs, fe - fs, flags, out);
    rc = pout_copy(out, p + fs, vs - fs, ctx->err);
    if (rc != 0)
        return rc;
    if (sealed && (cls == H_CTYPE || cls == H_CTE))
        return seal_header(ctx, p + vs, fe - vs, cls, out);
    switch (cls) {
    case H_MSGID:
        return ptext_header(ctx, p + vs, fe - vs, (flags & PSCAN_EMAIL) | PSCAN_MSGID, out);
    case H_IP:
        return ptext_header(ctx, p + vs, fe - vs, flags, out);
    case H_SIG:
        return ptext_plain(ctx, p + vs, fe - vs, flags & PSCAN_EMAIL, out);
    case H_CTYPE:
    case H_CDISP:
        return ptext_ctype_params(ctx, p + vs, fe - vs, out);
    case H_CTE:
    case H_SKIP:
        return pout_copy(out, p + vs, fe - vs, ctx->err);
    case H_ADDR:
    case H_GENERIC:
        break;
    }
    return ptext_header(ctx, p + vs, fe - vs, flags & ~PSCAN_IP, out);
}

/* The header line p[fs, fe) once parsed: pass 1 collects from it, the later passes write
 * it.  Pass 1 reads only address fields, so for the others it returns here, without a
 * call per header line. */
static inline int header_use(struct pseudo_ctx *ctx, const unsigned char *p, size_t fs,
                             size_t fe, size_t vs, enum hclass cls, bool sealed, pout *out)
{
    if (ctx->collecting && vs != 0)
        return cls == H_ADDR ? collect_addresses(ctx, p + vs, fe - vs) : 0;
    return header_write(ctx, p, fs, fe, vs, cls, sealed, out);
}

/* ---- what pass 1 keeps of a message: header blocks, delimiters, addresses seen ------- */

/* Pass 1 parses every header block (line ends, folding, field names, classes, Content-Type
 * parameters); the passes after it walk the same entities in the same order and take
 * that from here instead of parsing again.  Only entities whose bytes stay put for the
 * whole message are kept (in the message itself or in a cached decoded body), so that an
 * address and a length name the same bytes in every pass. */
#define PHCACHE_FIELDS 4096
#define PHCACHE_ENTITIES 256

struct phfield {
    size_t fs, fe, vs;          /* line; value start, 0: not a header field */
    enum hclass cls;
};

struct phentity {
    const unsigned char *p;
    size_t len;
    bool msg_default;
    size_t first, n;            /* its fields */
    size_t end;                 /* where the header block ends (the blank line) */
    struct entity_info info;
};

/* The delimiter lines of each multipart body, kept from pass 1 the same way (searching
 * for them is a memmem over the whole body, in every pass).  A body with more delimiters
 * than PDCACHE_PER_BODY is searched again. */
#define PDCACHE_BODIES 256
#define PDCACHE_DELIMS 4096
#define PDCACHE_PER_BODY 32

struct pdelim {
    size_t ds, de;              /* as next_delimiter gives them */
    bool close;
};

/* A body is found again by its address and length, as an entity is (the boundary's
 * length is compared as well: a cheap guard). */
struct pdbody {
    const unsigned char *b;
    size_t len, boundary_len;
    size_t first, n;            /* its delimiters, in the order pass 1 found them */
    bool known;                 /* false: pass 1 did not finish the body (searched again) */
};

/* The addresses pass 1 has taken from the message's address headers, by their bytes as
 * written: the same address comes back in Return-Path and From, Delivered-To and To, and
 * in every header of a quoted message.  Taking one again changes nothing (the address
 * list skips what it has), so pass 1 only remembers whether it was the fund's own, which
 * decides whether its display name is taken.  Bounded: what does not fit is normalised
 * again, only slower. */
#define PSEEN_MAX 16
#define PSEEN_BYTES 1024

struct pseen {
    unsigned short off, len;    /* in seen_bytes */
    bool own;
};

struct pmime_cache {
    struct phfield *f;
    size_t n_f, cap_f;
    struct phentity *e;
    size_t n_e, cap_e;
    size_t cursor;              /* next entity expected by a later pass */
    struct pdelim *d;
    size_t n_d, cap_d;
    struct pdbody *db;
    size_t n_db, cap_db;
    size_t db_cursor;           /* next multipart body expected by a later pass */
    struct pseen seen[PSEEN_MAX];
    size_t n_seen, n_seen_bytes;
    unsigned char seen_bytes[PSEEN_BYTES];
};

void pmime_cache_reset(struct pseudo_ctx *ctx)
{
    struct pmime_cache *c = ctx->hcache;

    if (c != NULL)
        c->n_f = c->n_e = c->cursor = c->n_d = c->n_db = c->db_cursor = c->n_seen =
            c->n_seen_bytes = 0;
}

void pmime_cache_free(struct pseudo_ctx *ctx)
{
    if (ctx->hcache != NULL) {
        free(ctx->hcache->f);
        free(ctx->hcache->e);
        free(ctx->hcache->d);
        free(ctx->hcache->db);
        free(ctx->hcache);
        ctx->hcache = NULL;
    }
}

/* The cache, made at its first use. */
static int cache_get(struct pseudo_ctx *ctx, struct pmime_cache **out)
{
    if (ctx->hcache == NULL)
        ctx->hcache = calloc(1, sizeof *ctx->hcache);
    *out = ctx->hcache;
    if (*out == NULL)
        return mr_error_set(ctx->err, MR_E_NOMEM, "out of memory for the header cache");
    return 0;
}

static bool stable_bytes(const struct pseudo_ctx *ctx, const unsigned char *p, size_t len)
{
    if (p >= ctx->msg && len <= ctx->msg_len && (size_t)(p - ctx->msg) <= ctx->msg_len - len)
        return true;
    for (size_t i = 0; i < ctx->n_dec; i++) {
        const pbuf *d = &ctx->dec_cache[i].dec;
        if (d->p != NULL && p >= d->p && len <= d->len && (size_t)(p - d->p) <= d->len - len)
            return true;
    }
    return false;
}

/* Pass 1 records the header block of p[0, len) ... */
static int phcache_record(struct pseudo_ctx *ctx, const unsigned char *p, size_t len,
                          bool msg_default, const struct phfield *fields, size_t n,
                          size_t end, const struct entity_info *info)
{
    struct pmime_cache *c;
    int rc;

    if (!stable_bytes(ctx, p, len))
        return 0;
    rc = cache_get(ctx, &c);
    if (rc != 0)
        return rc;
    if (c->n_e >= PHCACHE_ENTITIES || n > PHCACHE_FIELDS - c->n_f)
        return 0;   /* parsed again later: only slower */
    if (c->n_f + n > c->cap_f) {
        size_t cap = c->cap_f ? c->cap_f : 64;
        while (cap < c->n_f + n)
            cap *= 2;
        struct phfield *nf = realloc(c->f, cap * sizeof *nf);
        if (nf == NULL)
            return mr_error_set(ctx->err, MR_E_NOMEM, "out of memory for the header cache");
        c->f = nf;
        c->cap_f = cap;
    }
    if (c->n_e == c->cap_e) {
        size_t cap = c->cap_e ? c->cap_e * 2 : 8;
        struct phentity *ne = realloc(c->e, cap * sizeof *ne);
        if (ne == NULL)
            return mr_error_set(ctx->err, MR_E_NOMEM, "out of memory for the header cache");
        c->e = ne;
        c->cap_e = cap;
    }
    if (n > 0)
        memcpy(c->f + c->n_f, fields, n * sizeof *fields);
    /* Field by field: a compound literal would be built and then copied, info twice. */
    struct phentity *e = &c->e[c->n_e++];
    e->p = p;
    e->len = len;
    e->msg_default = msg_default;
    e->first = c->n_f;
    e->n = n;
    e->end = end;
    /* The boundary only as far as it is set: the whole struct is a 256-byte copy. */
    e->info.has_type = info->has_type;
    memcpy(e->info.type, info->type, sizeof info->type);
    memcpy(e->info.subtype, info->subtype, sizeof info->subtype);
    e->info.boundary_len = info->boundary_len;
    memcpy(e->info.boundary, info->boundary, info->boundary_len);
    e->info.cte = info->cte;
    e->info.cte_other = info->cte_other;
    memcpy(e->info.charset, info->charset, sizeof info->charset);
    c->n_f += n;
    return 0;
}

/* ... and the later passes find it: the next entity in walk order, normally. */
static const struct phentity *phcache_find(struct pseudo_ctx *ctx, const unsigned char *p,
                                           size_t len, bool msg_default)
{
    struct pmime_cache *c = ctx->hcache;

    if (c == NULL)
        return NULL;
    for (size_t k = c->cursor; k < c->n_e; k++) {
        const struct phentity *e = &c->e[k];
        if (e->p == p && e->len == len && e->msg_default == msg_default) {
            c->cursor = k + 1;
            return e;
        }
    }
    return NULL;
}

/* ---- pass 1: names and addresses from an address header ------------------------------- */

static const struct pseen *seen_find(const struct pmime_cache *c, const unsigned char *p,
                                     size_t len)
{
    for (size_t k = 0; k < c->n_seen; k++) {
        const struct pseen *s = &c->seen[k];
        if (s->len == len && memcmp(c->seen_bytes + s->off, p, len) == 0)
            return s;
    }
    return NULL;
}

static void seen_add(struct pmime_cache *c, const unsigned char *p, size_t len, bool own)
{
    if (c->n_seen == PSEEN_MAX || len > PSEEN_BYTES - c->n_seen_bytes)
        return;
    memcpy(c->seen_bytes + c->n_seen_bytes, p, len);
    c->seen[c->n_seen++] = (struct pseen){.off = (unsigned short)c->n_seen_bytes,
                                          .len = (unsigned short)len, .own = own};
    c->n_seen_bytes += len;
}

static int collect_mailbox(struct pseudo_ctx *ctx, pbuf *phrase, pbuf *addr, pbuf *comment,
                           bool angle)
{
    pbuf *a = angle ? addr : phrase;
    pbuf *name = angle ? phrase : comment;
    struct pmime_cache *c;
    bool own = false;
    int rc = cache_get(ctx, &c);

    if (rc == 0 && a->len > 0 && memchr(a->p, '@', a->len) != NULL) {
        const struct pseen *s = seen_find(c, a->p, a->len);
        unsigned char nbuf[256], *norm = NULL;
        size_t nlen = 0;
        if (s != NULL) {
            own = s->own;
        } else if (ptoken_normalise_buf(PSEUDO_EMAIL, a->p, a->len, nbuf, sizeof nbuf, &norm,
                                        &nlen, NULL) == 0) {
            own = pseudo_is_own(ctx->pol, norm, nlen);
            if (!own)
                rc = paddrs_add(&ctx->addrs, norm, nlen, ctx->err);
            if (norm != nbuf)
                free(norm);
            if (rc == 0)
                seen_add(c, a->p, a->len, own);
        }
    }
    if (rc == 0 && !own && ctx->pol->names && name->len > 0) {
        pbuf *u = &ctx->utf8;
        u->len = 0;
        rc = ptext_header_utf8(name->p, name->len, u, ctx->err);
        if (rc == 0 && u->len > 0)
            rc = pnames_add(&ctx->names, u->p, u->len, ctx->err);
    }
    phrase->len = addr->len = comment->len = 0;
    return rc;
}

/* A run of bytes onto a scratch buffer: the common case is a copy into its capacity
 * (kept between headers). */
static inline int put_run(pbuf *b, const void *p, size_t n, mr_error *err)
{
    if (n <= b->cap - b->len) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
        return 0;
    }
    return pbuf_append(b, p, n, err);
}

/* What ends a run of bytes that collect_addresses copies as they are: bit 1 outside
 * angle brackets (quotes, comments, brackets, list and group separators), bit 2 inside
 * (only comments and brackets).  Runs are appended whole, not byte by byte. */
#define ASTOP_OUT 1u
#define ASTOP_IN 2u
static const unsigned char ADDR_STOP[256] = {
    ['"'] = ASTOP_OUT, [','] = ASTOP_OUT, [';'] = ASTOP_OUT, [':'] = ASTOP_OUT,
    ['('] = ASTOP_OUT | ASTOP_IN, ['<'] = ASTOP_OUT | ASTOP_IN, ['>'] = ASTOP_OUT | ASTOP_IN,
};

static int collect_addresses(struct pseudo_ctx *ctx, const unsigned char *v, size_t len)
{
    pbuf *phrase = &ctx->phrase, *addr = &ctx->addr, *comment = &ctx->comment;
    bool angle = false, in_angle = false;
    int rc = 0;

    phrase->len = addr->len = comment->len = 0;
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned stop = in_angle ? ASTOP_IN : ASTOP_OUT;
        size_t r = i;
        while (r < len && !(ADDR_STOP[v[r]] & stop))
            r++;
        if (r > i) {
            /* Inside angle brackets the address, else the phrase (or a bare address). */
            rc = put_run(in_angle ? addr : phrase, v + i, r - i, ctx->err);
            if (rc != 0 || r == len)
                break;
            i = r;
        }
        unsigned char c = v[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < len && v[j] != '"') {
                if (v[j] == '\\' && j + 1 < len)
                    j++;
                j++;
            }
            rc = put_run(phrase, v + i, (j < len ? j + 1 : len) - i, ctx->err);
            i = j < len ? j : len;
        } else if (c == '(') {
            int depth = 0;
            size_t j = i;
            for (; j < len; j++) {
                if (v[j] == '\\' && j + 1 < len) {
                    j++;
                    continue;
                }
                if (v[j] == '(')
                    depth++;
                else if (v[j] == ')' && --depth == 0)
                    break;
            }
            if (comment->len > 0)
                rc = put_run(comment, " ", 1, ctx->err);
            if (rc == 0 && j > i + 1)
                rc = put_run(comment, v + i + 1, (j < len ? j : len) - i - 1, ctx->err);
            i = j < len ? j : len;
        } else if (c == '<') {
            in_angle = angle = true;
        } else if (c == '>') {
            in_angle = false;
        } else if (c == ',' || c == ';') {
            rc = collect_mailbox(ctx, phrase, addr, comment, angle);
            angle = false;
        } else if (c == ':' && !angle) {
            phrase->len = comment->len = 0;   /* a group name is not a person */
        } else {
            rc = put_run(phrase, &c, 1, ctx->err);   /* ':' after an address */
        }
    }
    if (rc == 0)
        rc = collect_mailbox(ctx, phrase, addr, comment, angle);
    return rc;
}

/* ---- bodies -------------------------------------------------------------------------- */

static int body_entity(struct pseudo_ctx *ctx, const unsigned char *b, size_t len, int depth,
                       const struct entity_info *info, pout *out);
/* UTF-16 text parts (after the sealing rules, below). */
static char utf16_charset(const char *cs);
static int utf16_readable(struct pseudo_ctx *ctx, const unsigned char *b, size_t len,
                          const struct entity_info *info, bool *ok);
static int body_utf16(struct pseudo_ctx *ctx, const unsigned char *b, size_t len,
                      const struct entity_info *info, pout *out);

/* The decoded form of an encoded body, and for quoted-printable where its lines are: from
 * the cache (decoded in pass 1), else decoded now (the lines into own).  *cached tells the
 * caller not to free the decoded body.  *lines is NULL where they are not needed (pass 1,
 * base64). */
static int body_decode(struct pseudo_ctx *ctx, const unsigned char *b, size_t len,
                       const struct entity_info *info, pbuf *dec, pqp_lines *own,
                       const pqp_lines **lines, bool *cached)
{
    bool cacheable;
    pqp_lines *l = NULL;
    int rc;

    *cached = false;
    *lines = NULL;
    for (size_t i = 0; i < ctx->n_dec; i++) {
        if (ctx->dec_cache[i].src == b && ctx->dec_cache[i].src_len == len) {
            *dec = ctx->dec_cache[i].dec;
            if (info->cte == CTE_QP)
                *lines = &ctx->dec_cache[i].lines;
            *cached = true;
            return 0;
        }
    }
    /* Only bodies in the message itself: a body inside a decoded (and freed) buffer has
     * no stable address to be found again by. */
    cacheable = ctx->collecting && b >= ctx->msg && len <= ctx->msg_len &&
                (size_t)(b - ctx->msg) <= ctx->msg_len - len && ctx->n_dec < PDEC_CACHE_MAX;
    if (info->cte == CTE_QP)
        l = cacheable ? &ctx->dec_cache[ctx->n_dec].lines : own;
    *dec = pscratch_get(ctx);   /* kept by the cache below, or returned by the caller */
    rc = info->cte == CTE_B64 ? pcodec_b64_decode(b, len, dec, ctx->err)
                              : pcodec_qp_decode(b, len, dec, l, ctx->err);
    if (rc == 0 && cacheable && dec->len <= PDEC_CACHE_BYTES - ctx->dec_bytes) {
        struct pdec_entry *e = &ctx->dec_cache[ctx->n_dec++];
        e->src = b;
        e->src_len = len;
        e->dec = *dec;
        ctx->dec_bytes += dec->len;
        *cached = true;
    }
    if (!ctx->collecting)
        *lines = l;
    return rc;
}

/* A body in base64 or quoted-printable: decode, process, and if anything changed
 * re-encode in the same encoding.  A quoted-printable text gets only its changed lines
 * re-encoded (pqp_patch), for which the text's edits are kept in decoded offsets; any
 * other body is re-encoded whole and its edit covers the whole encoded body (base64
 * groups run across lines, and a message's edits lie in other buffers). */
static int body_encoded(struct pseudo_ctx *ctx, const unsigned char *b, size_t len, int depth,
                        const struct entity_info *info, bool as_message, pout *out)
{
    pbuf dec = {0}, enc = {0};
    pqp_lines own = {0};
    const pqp_lines *lines = NULL;
    pout tmp;
    const char *eol = pcodec_eol_of(b, len);
    bool cached = false, patch;
    int rc;

    pout_init(&tmp, NULL, 0);
    rc = body_decode(ctx, b, len, info, &dec, &own, &lines, &cached);
    patch = lines != NULL && !lines->partial && !as_message;
    if (rc == 0 && dec.len > 0) {
        if (patch)
            pout_init(&tmp, dec.p, dec.len);
        tmp.buf = pscratch_get(ctx);
        if (as_message)
            rc = pmime_entity(ctx, dec.p, dec.len, depth + 1, false, &tmp);
        else
            rc = ptext_plain(ctx, dec.p, dec.len,
                             (pscan_policy_flags(ctx->pol) & ~PSCAN_IP) |
                                 text_view_flags(info->subtype),
                             &tmp);
    }
    if (rc == 0 && !ctx->collecting) {
        if (tmp.buf.len == dec.len && (dec.len == 0 || memcmp(tmp.buf.p, dec.p, dec.len) == 0)) {
            rc = pout_copy(out, b, len, ctx->err);
        } else {
            enc = pscratch_get(ctx);
            if (patch)
                rc = pqp_patch(b, len, eol, lines, &tmp, &enc, out, ctx->err);
            else if (info->cte == CTE_B64)
                rc = pcodec_b64_encode(tmp.buf.p, tmp.buf.len, eol,
                                       len > 0 && b[len - 1] == '\n', &enc, ctx->err);
            else
                rc = pcodec_qp_encode(tmp.buf.p, tmp.buf.len, eol, &enc, ctx->err);
            if (rc == 0 && !patch)
                rc = pout_replace(out, b, len, enc.p, enc.len, ctx->err);
        }
    }
    /* A cached decoded body belongs to the cache. */
    if (!cached)
        pscratch_put(ctx, &dec);
    pqp_lines_free(&own);
    pscratch_put(ctx, &enc);
    pscratch_put(ctx, &tmp.buf);
    pout_free(&tmp);
    return rc;
}

/* Delimiter line "--boundary[--][blanks]EOL" starting at i: its end (after EOL), or 0. */
static size_t delimiter_at(const unsigned char *b, size_t len, size_t i, const unsigned char *bd,
                           size_t bl, bool *close)
{
    size_t j = i + 2 + bl;

    if (len - i < 2 + bl || b[i] != '-' || b[i + 1] != '-' || memcmp(b + i + 2, bd, bl) != 0)
        return 0;
    *close = j + 2 <= len && b[j] == '-' && b[j + 1] == '-';
    if (*close)
        j += 2;
    while (j < len && (b[j] == ' ' || b[j] == '\t'))
        j++;
    if (j == len)
        return j;
    if (b[j] == '\n')
        return j + 1;
    if (b[j] == '\r' && j + 1 < len && b[j + 1] == '\n')
        return j + 2;
    return 0;
}

/* How far from where a search starts next_delimiter looks at the line starts itself
 * before it leaves the rest to memmem (below). */
#define PDELIM_SCAN 4096

/* The first k in [at, lim) (at < lim <= len) where a line begins with "--" (k == 0
 * begins one): where a delimiter can start.  With SSE2 16 positions at a time, each
 * from the byte before it and the two at it. */
static size_t dash_line(const unsigned char *b, size_t len, size_t at, size_t lim)
{
    if (at == 0) {
        if (len >= 2 && b[0] == '-' && b[1] == '-')
            return 0;
        at = 1;
    }
#ifdef PFIND_SSE2
    const __m128i nl = _mm_set1_epi8('\n'), dash = _mm_set1_epi8('-');

    /* Positions [at, at + 16) read b[at - 1, at + 17). */
    for (; at < lim && len - at >= 17; at += 16) {
        const unsigned char *q = b + at;
        __m128i before = _mm_loadu_si128((const __m128i *)(const void *)(q - 1));
        __m128i first = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i second = _mm_loadu_si128((const __m128i *)(const void *)(q + 1));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(before, nl),
                          _mm_and_si128(_mm_cmpeq_epi8(first, dash),
                                        _mm_cmpeq_epi8(second, dash))));
        if (m != 0) {
            size_t k = at + (size_t)__builtin_ctz(m);
            return k < lim ? k : lim;
        }
    }
#endif
    for (; at < lim && at + 1 < len; at++)
        if (b[at - 1] == '\n' && b[at] == '-' && b[at + 1] == '-')
            return at;
    return lim;
}

/* The delimiter line found at at: its start goes back over the line break before it
 * (which belongs to the delimiter), not before from. */
static size_t delimiter_start(const unsigned char *b, size_t from, size_t at)
{
    if (at > from && b[at - 1] == '\n') {
        at--;
        if (at > from && b[at - 1] == '\r')
            at--;
    }
    return at;
}

/* Next delimiter at a line start at or after from: its start (including the line break
 * before it, which belongs to the delimiter) in *dstart, its end in *dend.  It is the
 * first line start at or after from where delimiter_at holds, however it is found.
 * A part is mostly short: its first PDELIM_SCAN bytes are searched by line starts that
 * begin with "--" (one pass, no setup); a long one (an attachment) goes on with memmem,
 * whose skips by the boundary's length pay there more than its setup costs. */
static bool next_delimiter(const unsigned char *b, size_t len, size_t from,
                           const struct entity_info *info, size_t *dstart, size_t *dend,
                           bool *close)
{
    unsigned char needle[2 + sizeof info->boundary];
    size_t nl = 2 + info->boundary_len, at = from;
    size_t lim = len - from > PDELIM_SCAN ? from + PDELIM_SCAN : len;

    while (at < lim && (at = dash_line(b, len, at, lim)) < lim) {
        size_t e = delimiter_at(b, len, at, info->boundary, info->boundary_len, close);
        if (e != 0) {
            *dstart = delimiter_start(b, from, at);
            *dend = e;
            return true;
        }
        at++;
    }
    /* Candidates past lim are the places "--boundary" occurs that begin a line. */
    at = lim;
    needle[0] = needle[1] = '-';
    memcpy(needle + 2, info->boundary, info->boundary_len);
    while (at < len) {
        const unsigned char *hit = memmem(b + at, len - at, needle, nl);
        if (hit == NULL)
            return false;
        at = (size_t)(hit - b);
        if (at == 0 || b[at - 1] == '\n') {
            size_t e = delimiter_at(b, len, at, info->boundary, info->boundary_len, close);
            if (e != 0) {
                *dstart = delimiter_start(b, from, at);
                *dend = e;
                return true;
            }
        }
        /* Nothing else on this line can begin it: go on at the next line, which keeps
         * the search linear whatever the boundary and the text. */
        const unsigned char *eol = memchr(b + at, '\n', len - at);
        if (eol == NULL)
            return false;
        at = (size_t)(eol - b) + 1;
    }
    return false;
}

/* Where body_multipart gets the delimiters of one body: pass 1 searches and notes what it
 * finds; a later pass replays that when pass 1 noted the whole body, else searches.  The
 * walk asks for them in the same order in every pass (each search starts where the last
 * delimiter ended), so the k-th answer of pass 1 is the k-th answer of the next pass, and
 * "none" after the last one noted. */
struct delim_walk {
    bool replaying;
    const struct pdelim *replay;    /* a later pass: what pass 1 found */
    size_t n_replay, next;
    size_t slot;                    /* pass 1: the body's pdbody, SIZE_MAX: not noted */
    struct pdelim found[PDCACHE_PER_BODY];
    size_t n_found;
};

/* Pass 1 reserves the body's entry before its parts are walked, so that the entries are
 * in the order a later pass meets the bodies (a part's own multipart body comes after
 * its parent's); a later pass looks the body up. */
static int delim_walk_start(struct pseudo_ctx *ctx, const unsigned char *b, size_t len,
                            const struct entity_info *info, struct delim_walk *w)
{
    struct pmime_cache *c = ctx->hcache;
    int rc;

    w->replaying = false;
    w->slot = SIZE_MAX;
    w->n_found = 0;
    if (!ctx->collecting) {
        for (size_t k = c != NULL ? c->db_cursor : 0; c != NULL && k < c->n_db; k++) {
            const struct pdbody *e = &c->db[k];
            if (e->b == b && e->len == len && e->boundary_len == info->boundary_len) {
                c->db_cursor = k + 1;
                w->replaying = e->known;
                w->replay = e->n > 0 ? c->d + e->first : NULL;   /* c->d may be NULL */
                w->n_replay = e->n;
                w->next = 0;
                break;
            }
        }
        return 0;
    }
    if (!stable_bytes(ctx, b, len))
        return 0;
    rc = cache_get(ctx, &c);
    if (rc != 0)
        return rc;
    if (c->n_db >= PDCACHE_BODIES)
        return 0;   /* searched again later: only slower */
    if (c->n_db == c->cap_db) {
        size_t cap = c->cap_db ? c->cap_db * 2 : 8;
        struct pdbody *nb = realloc(c->db, cap * sizeof *nb);
        if (nb == NULL)
            return mr_error_set(ctx->err, MR_E_NOMEM, "out of memory for the delimiter cache");
        c->db = nb;
        c->cap_db = cap;
    }
    c->db[c->n_db] = (struct pdbody){.b = b, .len = len, .boundary_len = info->boundary_len};
    w->slot = c->n_db++;
    return 0;
}

static bool delim_next(struct delim_walk *w, const unsigned char *b, size_t len, size_t from,
                       const struct entity_info *info, size_t *dstart, size_t *dend,
                       bool *close)
{
    if (w->replaying) {
        if (w->next == w->n_replay)
            return false;
        *dstart = w->replay[w->next].ds;
        *dend = w->replay[w->next].de;
        *close = w->replay[w->next].close;
        w->next++;
        return true;
    }
    if (!next_delimiter(b, len, from, info, dstart, dend, close))
        return false;
    if (w->slot != SIZE_MAX) {
        if (w->n_found < PDCACHE_PER_BODY)
            w->found[w->n_found++] = (struct pdelim){.ds = *dstart, .de = *dend, .close = *close};
        else
            w->slot = SIZE_MAX;   /* too many to keep: the body stays unknown */
    }
    return true;
}

/* Pass 1, after the body's last search: its delimiters into the cache. */
static int delim_walk_end(struct pseudo_ctx *ctx, struct delim_walk *w)
{
    struct pmime_cache *c = ctx->hcache;

    if (w->slot == SIZE_MAX || w->n_found > PDCACHE_DELIMS - c->n_d)
        return 0;
    if (c->n_d + w->n_found > c->cap_d) {
        size_t cap = c->cap_d ? c->cap_d : 16;
        while (cap < c->n_d + w->n_found)
            cap *= 2;
        struct pdelim *nd = realloc(c->d, cap * sizeof *nd);
        if (nd == NULL)
            return mr_error_set(ctx->err, MR_E_NOMEM, "out of memory for the delimiter cache");
        c->d = nd;
        c->cap_d = cap;
    }
    if (w->n_found > 0)
        memcpy(c->d + c->n_d, w->found, w->n_found * sizeof *w->found);
    c->db[w->slot].first = c->n_d;
    c->db[w->slot].n = w->n_found;
    c->db[w->slot].known = true;
    c->n_d += w->n_found;
    return 0;
}

static int body_multipart(struct pseudo_ctx *ctx, const unsigned char *b, size_t len, int depth,
                          const struct entity_info *info, pout *out)
{
    unsigned flags = pscan_policy_flags(ctx->pol) & ~PSCAN_IP;
    bool digest = strcmp(info->subtype, "digest") == 0, close = false;
    struct delim_walk w;
    size_t ds, de, pos;
    int rc;

    rc = delim_walk_start(ctx, b, len, info, &w);
    if (rc != 0)
        return rc;
    if (!delim_next(&w, b, len, 0, info, &ds, &de, &close)) {
        rc = delim_walk_end(ctx, &w);
        /* no parts: text as it is */
        return rc != 0 ? rc : ptext_plain(ctx, b, len, flags, out);
    }
    rc = ptext_plain(ctx, b, ds, flags, out);           /* preamble */
    if (rc == 0 && !ctx->collecting)
        rc = pout_copy(out, b + ds, de - ds, ctx->err);
    pos = de;
    while (rc == 0 && !close) {
        size_t nds, nde;
        bool nclose = false;
        if (!delim_next(&w, b, len, pos, info, &nds, &nde, &nclose)) {
            /* Unterminated: the last part runs to the end. */
            rc = delim_walk_end(ctx, &w);
            return rc != 0 ? rc : pmime_entity(ctx, b + pos, len - pos, depth + 1, digest, out);
        }
        rc = pmime_entity(ctx, b + pos, nds - pos, depth + 1, digest, out);
        if (rc == 0 && !ctx->collecting)
            rc = pout_copy(out, b + nds, nde - nds, ctx->err);
        pos = nde;
        close = nclose;
    }
    if (rc == 0)
        rc = delim_walk_end(ctx, &w);
    if (rc == 0)
        rc = ptext_plain(ctx, b + pos, len - pos, flags, out);   /* epilogue */
    return rc;
}

static int body_entity(struct pseudo_ctx *ctx, const unsigned char *b, size_t len, int depth,
                       const struct entity_info *info, pout *out)
{
    unsigned flags = pscan_policy_flags(ctx->pol) & ~PSCAN_IP;
    const char *t = info->type, *s = info->subtype;

    if (strcmp(t, "multipart") == 0) {
        if (info->boundary_len > 0 && info->cte == CTE_IDENTITY)
            return body_multipart(ctx, b, len, depth, info, out);
        if (info->cte != CTE_IDENTITY)   /* encoded multipart is invalid: leave it */
            return ctx->collecting ? 0 : pout_copy(out, b, len, ctx->err);
        return ptext_plain(ctx, b, len, flags, out);
    }
    /* text/rfc822-headers (bounces) is a header block: walked like a message, so its
     * address headers give names and get their kinds of replacement. */
    if ((strcmp(t, "message") == 0 &&
         (strcmp(s, "rfc822") == 0 || strcmp(s, "global") == 0 || strcmp(s, "news") == 0)) ||
        (strcmp(t, "text") == 0 && strcmp(s, "rfc822-headers") == 0) ||
        (strcmp(t, "message") == 0 && strcmp(s, "global-headers") == 0)) {
        if (info->cte == CTE_IDENTITY)
            return pmime_entity(ctx, b, len, depth + 1, false, out);
        return body_encoded(ctx, b, len, depth, info, true, out);
    }
    if (strcmp(t, "text") == 0 || strcmp(t, "message") == 0) {
        if (info->charset[0] != '\0' && utf16_charset(info->charset) != 0) {
            bool u16 = false;
            int rc = utf16_readable(ctx, b, len, info, &u16);
            if (rc != 0 || u16)
                return rc != 0 ? rc : body_utf16(ctx, b, len, info, out);
        }
        if (info->cte == CTE_IDENTITY)
            return ptext_plain(ctx, b, len, flags | text_view_flags(s), out);
        if (ctx->collecting && !ctx->pol->names)
            return 0;
        return body_encoded(ctx, b, len, depth, info, false, out);
    }
    /* Binary and other attachments are left alone (their file names are in headers). */
    return ctx->collecting ? 0 : pout_copy(out, b, len, ctx->err);
}

/* ---- UTF-16 text, pseudonymised in place ---------------------------------------------- */

/* A declared charset that is UTF-16 (UCS-2 is its BMP subset; Microsoft's "unicode" is
 * UTF-16LE): 'L' or 'B' for a declared byte order, '?' for none, 0 for another charset. */
static char utf16_charset(const char *cs)
{
    if (strcmp(cs, "utf-16le") == 0 || strcmp(cs, "utf16le") == 0 ||
        strcmp(cs, "unicode") == 0 || strcmp(cs, "unicodelittleunmarked") == 0)
        return 'L';
    if (strcmp(cs, "utf-16be") == 0 || strcmp(cs, "utf16be") == 0 ||
        strcmp(cs, "unicodefffe") == 0 || strcmp(cs, "unicodebigunmarked") == 0)
        return 'B';
    if (strcmp(cs, "utf-16") == 0 || strcmp(cs, "utf16") == 0 || strcmp(cs, "ucs-2") == 0 ||
        strcmp(cs, "ucs2") == 0 || strcmp(cs, "iso-10646-ucs-2") == 0 ||
        strcmp(cs, "csunicode") == 0)
        return '?';
    return 0;
}

/* The byte order of UTF-16 text d[0, n) declared as order ('L', 'B', '?'), and the
 * length of its byte order mark (skipped: before the text, it would glue itself to the
 * first word).  Undeclared and unmarked: the order whose high bytes are more often zero
 * (text in Latin script), big-endian on a tie (RFC 2781). */
static bool utf16_big(char order, const unsigned char *d, size_t n, size_t *bom)
{
    size_t even = 0, odd = 0;
    bool big;

    *bom = 0;
    if (order == '?' && n >= 2 &&
        ((d[0] == 0xFF && d[1] == 0xFE) || (d[0] == 0xFE && d[1] == 0xFF))) {
        *bom = 2;
        return d[0] == 0xFE;
    }
    if (order != '?') {
        big = order == 'B';
    } else {
        for (size_t i = 0; i + 1 < n && i < 1024; i += 2) {
            even += d[i] == 0;
            odd += d[i + 1] == 0;
        }
        big = even >= odd;
    }
    if (n >= 2 && (big ? (d[0] == 0xFE && d[1] == 0xFF) : (d[0] == 0xFF && d[1] == 0xFE)))
        *bom = 2;
    return big;
}

static unsigned u16_at(const unsigned char *d, size_t i, bool big)
{
    return big ? (unsigned)d[i] << 8 | d[i + 1] : (unsigned)d[i + 1] << 8 | d[i];
}

/* Is d[0, n) UTF-16 that converts both ways: an even length, surrogates in pairs? */
static bool utf16_valid(const unsigned char *d, size_t n, bool big)
{
    if (n % 2 != 0)
        return false;
    for (size_t i = 0; i < n; i += 2) {
        unsigned u = u16_at(d, i, big);
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (i + 3 >= n)
                return false;
            unsigned v = u16_at(d, i + 2, big);
            if (v < 0xDC00 || v > 0xDFFF)
                return false;
            i += 2;
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
            return false;
        }
    }
    return true;
}

/* Bodies larger than this (decoded) are sealed rather than converted: the conversion
 * keeps a 4-byte offset per byte of UTF-8 text. */
#define PUTF16_MAX (64u << 20)

/* The decoded bytes of a text body in an identity or base64 encoding: the body itself,
 * or its decoding through the pass-1 cache (body_decode: decoded once per message where
 * the cache has room), else into *own, which the caller returns to the pool. */
static int text_decoded(struct pseudo_ctx *ctx, const unsigned char *b, size_t len,
                        const struct entity_info *info, const unsigned char **d, size_t *n,
                        pbuf *own)
{
    pqp_lines no_lines = {0};
    const pqp_lines *lines;
    bool cached;
    int rc;

    *own = (pbuf){0};
    if (info->cte == CTE_IDENTITY) {
        *d = b;
        *n = len;
        return 0;
    }
    rc = body_decode(ctx, b, len, info, own, &no_lines, &lines, &cached);
    pqp_lines_free(&no_lines);
    *d = own->p != NULL ? own->p : (const unsigned char *)"";
    *n = own->len;
    if (cached)
        *own = (pbuf){0};   /* the cache's */
    return rc;
}

/* Can this text part be pseudonymised in place as UTF-16? */
static int utf16_readable(struct pseudo_ctx *ctx, const unsigned char *b, size_t len,
                          const struct entity_info *info, bool *ok)
{
    char order = info->charset[0] != '\0' ? utf16_charset(info->charset) : 0;
    const unsigned char *d;
    size_t n, bom;
    pbuf own;
    int rc;

    *ok = false;
    /* Quoted-printable UTF-16 (rare) is sealed: its encoder is for text lines. */
    if (order == 0 || info->cte_other || info->cte == CTE_QP)
        return 0;
    rc = text_decoded(ctx, b, len, info, &d, &n, &own);
    if (rc == 0 && n <= PUTF16_MAX) {
        bool big = utf16_big(order, d, n, &bom);
        *ok = utf16_valid(d + bom, n - bom, big);
    }
    pscratch_put(ctx, &own);
    return rc;
}

static int put_u16(pbuf *o, unsigned u, bool big, mr_error *err)
{
    unsigned char c[2] = {(unsigned char)(big ? u >> 8 : u), (unsigned char)(big ? u : u >> 8)};
    return pbuf_append(o, c, 2, err);
}

/* UTF-8 (the scanner's replacement text: tokens, in ASCII) to UTF-16. */
static int utf8_to_utf16(const unsigned char *s, size_t n, bool big, pbuf *o, mr_error *err)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0;) {
        unsigned c = s[i], cp = c, k = 0;
        if (c >= 0xF0 && c < 0xF5)
            cp = c & 7, k = 3;
        else if (c >= 0xE0)
            cp = c & 15, k = 2;
        else if (c >= 0xC2 && c < 0xE0)
            cp = c & 31, k = 1;
        else if (c >= 0x80)
            cp = '?';
        i++;
        for (; k > 0 && i < n && (s[i] & 0xC0) == 0x80; k--)
            cp = cp << 6 | (s[i++] & 0x3F);
        if (k > 0)
            cp = '?';
        if (cp >= 0x10000) {
            cp -= 0x10000;
            rc = put_u16(o, 0xD800 | cp >> 10, big, err);
            if (rc == 0)
                rc = put_u16(o, 0xDC00 | (cp & 0x3FF), big, err);
        } else {
            rc = put_u16(o, cp, big, err);
        }
    }
    return rc;
}

/* A text part in UTF-16: converted to UTF-8 with, per UTF-8 byte, the offset of its
 * UTF-16 code unit; scanned like any text (names learnt in pass 1, replaced in the later
 * passes); where something was replaced, the UTF-16 is rebuilt — the original code units
 * between replacements, each replacement converted — and encoded again in the part's
 * transfer encoding.  The edit covers the whole body, so the reversal is exact whatever
 * the conversion does. */
static int body_utf16(struct pseudo_ctx *ctx, const unsigned char *b, size_t len,
                      const struct entity_info *info, pout *out)
{
    const unsigned char *d;
    size_t n, bom = 0;
    pbuf own, u = pscratch_get(ctx), w = {0}, enc = {0};
    uint32_t *map = NULL;
    pout tmp;
    bool big;
    int rc = text_decoded(ctx, b, len, info, &d, &n, &own);

    pout_init(&tmp, NULL, 0);
    if (rc == 0 && n > PUTF16_MAX)
        rc = mr_error_set(ctx->err, MR_E_PARSE, "UTF-16 text too large to convert");
    big = rc == 0 && utf16_big(utf16_charset(info->charset), d, n, &bom);
    if (rc == 0 && !utf16_valid(d + bom, n - bom, big))
        rc = mr_error_set(ctx->err, MR_E_PARSE, "invalid UTF-16 in a text part");
    /* At most three UTF-8 bytes per code unit. */
    if (rc == 0 && (map = malloc(((n - bom) / 2 * 3 + 1) * sizeof *map)) == NULL)
        rc = mr_error_set(ctx->err, MR_E_NOMEM, "out of memory for a UTF-16 text");
    if (rc == 0)
        rc = pbuf_reserve(&u, (n - bom) / 2 * 3 + 1, ctx->err);
    for (size_t i = bom; rc == 0 && i < n; i += 2) {
        unsigned cp = u16_at(d, i, big), at = (unsigned)i;
        unsigned char *p = u.p + u.len;
        size_t k = 0;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (u16_at(d, i + 2, big) - 0xDC00);
            i += 2;
        }
        if (cp < 0x80) {
            p[k++] = (unsigned char)cp;
        } else if (cp < 0x800) {
            p[k++] = (unsigned char)(0xC0 | cp >> 6);
            p[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            p[k++] = (unsigned char)(0xE0 | cp >> 12);
            p[k++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            p[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
            p[k++] = (unsigned char)(0xF0 | cp >> 18);
            p[k++] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            p[k++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            p[k++] = (unsigned char)(0x80 | (cp & 0x3F));
        }
        for (size_t j = 0; j < k; j++)
            map[u.len + j] = at;
        u.len += k;
    }
    if (rc == 0) {
        map[u.len] = (uint32_t)n;
        pout_init(&tmp, u.p, u.len);
        tmp.buf = pscratch_get(ctx);
        rc = ptext_plain(ctx, u.p, u.len,
                         (pscan_policy_flags(ctx->pol) & ~PSCAN_IP) |
                             (strcmp(info->subtype, "html") == 0 ? PTEXT_HTML : 0),
                         &tmp);
    }
    if (rc == 0 && !ctx->collecting && tmp.n_edits == 0)
        rc = pout_copy(out, b, len, ctx->err);
    else if (rc == 0 && !ctx->collecting) {
        size_t dpos = 0;
        w = pscratch_get(ctx);
        for (size_t k = 0; k < tmp.n_edits && rc == 0; k++) {
            const struct pedit *e = &tmp.edits[k];
            size_t ds = map[e->orig_off];
            rc = pbuf_append(&w, d + dpos, ds - dpos, ctx->err);
            if (rc == 0)
                rc = utf8_to_utf16(tmp.buf.p + e->out_off, e->out_len, big, &w, ctx->err);
            dpos = map[e->orig_off + e->orig_len];
        }
        if (rc == 0)
            rc = pbuf_append(&w, d + dpos, n - dpos, ctx->err);
        if (rc == 0) {
            enc = pscratch_get(ctx);
            const char *eol = pcodec_eol_of(b, len);
            if (info->cte == CTE_B64)
                rc = pcodec_b64_encode(w.p, w.len, eol, len > 0 && b[len - 1] == '\n', &enc,
                                       ctx->err);
            else if (info->cte == CTE_QP)
                rc = pcodec_qp_encode(w.p, w.len, eol, &enc, ctx->err);
            else
                rc = pbuf_append(&enc, w.p, w.len, ctx->err);
        }
        if (rc == 0)
            rc = pout_replace(out, b, len, enc.p, enc.len, ctx->err);
    }
    free(map);
    pscratch_put(ctx, &own);
    pscratch_put(ctx, &u);
    pscratch_put(ctx, &w);
    pscratch_put(ctx, &enc);
    pscratch_put(ctx, &tmp.buf);
    pout_free(&tmp);
    return rc;
}

/* ---- sealing: parts the scanner cannot read ------------------------------------------ */

/* Charsets in which an address or a digit is not its ASCII byte: UTF-16/32 and UCS-2/4
 * (Microsoft's "unicode" is UTF-16LE) and UTF-7 (where '@' may be written "+AEA-"). */
static bool wide_charset(const char *cs)
{
    static const char *const wide[] = {"utf-16", "utf16", "utf-32", "utf32", "ucs-2",
                                       "ucs2", "ucs-4", "ucs4", "utf-7", "utf7", "unicode",
                                       "iso-10646-ucs", "csunicode", "x-unicode"};

    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (strncmp(cs, wide[i], strlen(wide[i])) == 0)
            return true;
    return false;
}

/* The start of a text that is UTF-16/32 whatever its label says: a byte order mark, or
 * NULs (ASCII in UTF-16 is every other byte zero; text mail has none). */
static bool looks_wide(const unsigned char *t, size_t n)
{
    size_t nul = 0;

    if (n >= 2 && ((t[0] == 0xFF && t[1] == 0xFE) || (t[0] == 0xFE && t[1] == 0xFF)))
        return true;
    if (n >= 4 && t[0] == 0 && t[1] == 0 && t[2] == 0xFE && t[3] == 0xFF)
        return true;
    if (n > 512)
        n = 512;
    if (memchr(t, 0, n) == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        nul += t[i] == 0;
    return nul >= 2 && nul * 8 >= n;
}

/* Would the walk read this body as text (scanned) or as a MIME structure (walked)? */
static bool walked_message(const struct entity_info *info)
{
    const char *t = info->type, *s = info->subtype;

    return (strcmp(t, "message") == 0 &&
            (strcmp(s, "rfc822") == 0 || strcmp(s, "global") == 0 || strcmp(s, "news") == 0 ||
             strcmp(s, "global-headers") == 0)) ||
           (strcmp(t, "text") == 0 && strcmp(s, "rfc822-headers") == 0);
}

/* Is the body b[0, len) of this entity sealed?  Everything the walk does not read as
 * text or as a structure it walks into: non-text types, an encoded multipart, text in a
 * wide charset or an encoding not decoded here, text that turns out to be UTF-16/32 —
 * unless the policy keeps the type. */
static int seal_decide(struct pseudo_ctx *ctx, const struct entity_info *info,
                       const unsigned char *b, size_t len, bool *seal)
{
    const char *t = info->type;
    bool candidate;
    int rc = 0;

    *seal = false;
    if (len == 0 || walked_message(info))
        return 0;
    if (strcmp(t, "multipart") == 0) {
        candidate = info->cte != CTE_IDENTITY;
    } else if (strcmp(t, "text") == 0 || strcmp(t, "message") == 0) {
        bool u16 = false;
        rc = utf16_readable(ctx, b, len, info, &u16);
        if (rc != 0 || u16)
            return rc;      /* UTF-16 that converts: pseudonymised in place */
        candidate = info->cte_other || (info->charset[0] != '\0' && wide_charset(info->charset));
        if (!candidate && info->cte == CTE_IDENTITY) {
            candidate = looks_wide(b, len);
        } else if (!candidate) {
            /* The first 1 KB decoded is enough to see a byte order mark or NULs: from the
             * body pass 1 decoded and kept, else decoded here. */
            for (size_t k = 0; k < ctx->n_dec; k++) {
                const struct pdec_entry *e = &ctx->dec_cache[k];
                if (e->src == b && e->src_len == len) {
                    candidate = e->dec.len > 0 && looks_wide(e->dec.p, e->dec.len);
                    goto decided;
                }
            }
            pbuf d = pscratch_get(ctx);
            size_t n = len < 1024 ? len : 1024;
            rc = info->cte == CTE_B64 ? pcodec_b64_decode(b, n, &d, ctx->err)
                                      : pcodec_qp_decode(b, n, &d, NULL, ctx->err);
            candidate = rc == 0 && d.len > 0 && looks_wide(d.p, d.len);
            pscratch_put(ctx, &d);
        }
    } else {
        candidate = true;
    }
decided:
    if (rc == 0 && candidate)
        *seal = !pseudo_type_kept(ctx->pol, info->type, info->subtype);
    return rc;
}

/* Appends a C string to a scratch output. */
static int seal_put(pbuf *b, const char *s, mr_error *err)
{
    return pbuf_append(b, s, strlen(s), err);
}

/* A type, subtype or charset as the placeholder states it: restricted-name characters
 * only (RFC 6838), anything else written '_'. */
static void seal_name(char *out, size_t cap, const char *in)
{
    size_t k = 0;

    for (; in[k] != '\0' && k + 1 < cap; k++) {
        char c = in[k];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("!#$&-^_.+", c) != NULL;
        out[k] = ok ? c : '_';
    }
    out[k] = '\0';
}

/* Content-Type of a sealed part: "text/plain; charset=us-ascii" and the original's
 * parameters (file names pseudonymised as anywhere else) but its charset; the
 * Content-Transfer-Encoding: 7bit.  The whole value is one edit, so the original value
 * goes into the reid data as written. */
static int seal_header(struct pseudo_ctx *ctx, const unsigned char *v, size_t len,
                       enum hclass cls, pout *out)
{
    size_t end = len, semi;
    pout tmp;
    pbuf rest = {0};
    int rc;

    if (end > 0 && v[end - 1] == '\n')
        end--;
    if (end > 0 && v[end - 1] == '\r')
        end--;
    pout_init(&tmp, NULL, 0);
    tmp.buf = pscratch_get(ctx);
    if (cls == H_CTE) {
        rc = seal_put(&tmp.buf, " 7bit", ctx->err);
    } else {
        rc = seal_put(&tmp.buf, " text/plain; charset=us-ascii", ctx->err);
        for (semi = 0; semi < end && v[semi] != ';'; semi++)
            ;
        rest = pscratch_get(ctx);
        /* The parameters after the type, one ';' segment at a time (quotes respected),
         * without charset: the placeholder is ASCII whatever the original was. */
        while (rc == 0 && semi < end) {
            size_t e = semi + 1, a;
            bool q = false;
            for (; e < end && (q || v[e] != ';'); e++) {
                if (v[e] == '\\' && q && e + 1 < end)
                    e++;
                else if (v[e] == '"')
                    q = !q;
            }
            a = skip_ws(v, e, semi + 1);
            if (!(e - a >= 7 && ieq(v + a, 7, "charset") &&
                  (a + 7 == e || v[a + 7] == '=' || v[a + 7] == '*' || v[a + 7] == ' ' ||
                   v[a + 7] == '\t')))
                rc = pbuf_append(&rest, v + semi, e - semi, ctx->err);
            semi = e;
        }
        if (rc == 0 && rest.len > 0)
            rc = ptext_ctype_params(ctx, rest.p, rest.len, &tmp);
    }
    if (rc == 0 && end < len)
        rc = pbuf_append(&tmp.buf, v + end, len - end, ctx->err);
    if (rc == 0)
        rc = pout_replace(out, v, len, tmp.buf.p, tmp.buf.len, ctx->err);
    pscratch_put(ctx, &rest);
    pscratch_put(ctx, &tmp.buf);
    pout_free(&tmp);
    return rc;
}

/* The blank line and body p[i, len) of a sealed part: one edit puts them into the reid
 * data and writes in their place an X-Mailret-Sealed field (the original type, charset
 * and encoding, the size and SHA-256 of the body after decoding base64 or
 * quoted-printable, as the file's owner would see it), the blank line and a short ASCII
 * text saying the same.  No line of it begins with "--", so no delimiter can appear. */
static int seal_body(struct pseudo_ctx *ctx, const unsigned char *p, size_t i, size_t len,
                     const struct entity_info *info, pout *out)
{
    const char *eol = p[i] == '\r' ? "\r\n" : "\n";
    size_t b = i + strlen(eol);
    bool final_eol = p[len - 1] == '\n';
    const unsigned char *content = p + b;
    size_t clen = len - b;
    pbuf dec = {0}, t = pscratch_get(ctx);
    unsigned char sha[32];
    char hex[65], type[32], sub[64], cs[sizeof info->charset], line[256];
    const char *enc = info->cte == CTE_B64  ? "base64"
                      : info->cte == CTE_QP ? "quoted-printable"
                      : info->cte_other     ? "not-decoded"
                                            : "none";
    int rc = 0;

    if (info->cte != CTE_IDENTITY) {
        dec = pscratch_get(ctx);
        rc = info->cte == CTE_B64 ? pcodec_b64_decode(p + b, len - b, &dec, ctx->err)
                                  : pcodec_qp_decode(p + b, len - b, &dec, NULL, ctx->err);
        content = dec.p != NULL ? dec.p : (const unsigned char *)"";
        clen = dec.len;
    }
    if (rc == 0)
        rc = psha_digest(&ctx->sha, content, clen, sha, ctx->err);
    for (size_t k = 0; k < 32; k++)
        snprintf(hex + 2 * k, 3, "%02x", sha[k]);
    seal_name(type, sizeof type, info->type);
    seal_name(sub, sizeof sub, info->subtype);
    seal_name(cs, sizeof cs, info->charset);
    snprintf(line, sizeof line, "X-Mailret-Sealed: type=%s/%s;%s%s%s encoding=%s; size=%zu;%s",
             type, sub, cs[0] ? " charset=" : "", cs, cs[0] ? ";" : "", enc, clen, eol);
    if (rc == 0)
        rc = seal_put(&t, line, ctx->err);
    snprintf(line, sizeof line, " sha256=%s%s%s", hex, eol, eol);
    if (rc == 0)
        rc = seal_put(&t, line, ctx->err);
    static const char *const text[] = {
        "This part was sealed by mailret: its content is not in this archive.",
        "It is kept, encrypted, in the re-identification data, and a full",
        "restore puts it back byte for byte.",
    };
    for (size_t k = 0; rc == 0 && k < sizeof text / sizeof text[0]; k++) {
        rc = seal_put(&t, text[k], ctx->err);
        if (rc == 0)
            rc = seal_put(&t, eol, ctx->err);
    }
    snprintf(line, sizeof line, "Type: %s/%s%s%s%sSize: %zu bytes%s%s%sSHA-256: %s", type, sub,
             cs[0] ? "; charset=" : "", cs, eol, clen,
             info->cte != CTE_IDENTITY && !info->cte_other ? " after decoding " : "",
             info->cte != CTE_IDENTITY && !info->cte_other ? enc : "", eol, hex);
    if (rc == 0)
        rc = seal_put(&t, line, ctx->err);
    if (rc == 0 && final_eol)
        rc = seal_put(&t, eol, ctx->err);
    if (rc == 0)
        rc = pout_replace(out, p + i, len - i, t.p, t.len, ctx->err);
    if (rc == 0)
        ctx->n_sealed++;
    pscratch_put(ctx, &dec);
    pscratch_put(ctx, &t);
    return rc;
}

int pmime_entity(struct pseudo_ctx *ctx, const unsigned char *p, size_t len, int depth,
                 bool msg_default, pout *out)
{
    /* The entity's type and encoding: parsed here, or those pass 1 kept (not copied: the
     * later passes add nothing to the cache, so its entries stay where they are).  Of a
     * parse only the fields that say what is set are cleared: the arrays are written
     * before they are read (the boundary up to boundary_len), and clearing or copying
     * the whole struct (its 256-byte boundary) cost more than a small header. */
    struct entity_info parsed;
    const struct entity_info *info = &parsed;
    const struct phentity *known = NULL;
    bool sealed = false;
    size_t i = 0;
    int rc = 0;

    parsed.has_type = false;
    parsed.boundary_len = 0;
    parsed.cte = CTE_IDENTITY;
    parsed.cte_other = false;
    parsed.charset[0] = '\0';
    if (depth > PSEUDO_MAX_DEPTH) {
        /* Absurd nesting: opaque text, scanned raw. */
        return ptext_plain(ctx, p, len, pscan_policy_flags(ctx->pol) & ~PSCAN_IP, out);
    }
    if (depth == 0 && ctx->hcache != NULL)
        ctx->hcache->cursor = ctx->hcache->db_cursor = 0;    /* a pass starts */
    if (!ctx->collecting) {
        /* Whether the body is sealed changes how the type and encoding fields are
         * written, so it is decided before the header block is: from pass 1's parse,
         * or from a parse of the block that writes nothing. */
        known = phcache_find(ctx, p, len, msg_default);
        if (known != NULL) {
            i = known->end;
            info = &known->info;
        } else {
            while (i < len && !blank_line(p, len, i)) {
                size_t fe = field_end(p, len, i);
                enum hclass cls;
                (void)header_parse(p, i, fe, &cls, &parsed);
                i = fe;
            }
            if (!parsed.has_type) {
                strcpy(parsed.type, msg_default ? "message" : "text");
                strcpy(parsed.subtype, msg_default ? "rfc822" : "plain");
            }
        }
        if (i < len) {
            size_t b = i + (p[i] == '\n' ? 1 : 2);
            rc = seal_decide(ctx, info, p + b, len - b, &sealed);
        }
        if (rc == 0 && known != NULL) {
            const struct phfield *f = known->n > 0 ? ctx->hcache->f + known->first : NULL;
            for (size_t k = 0; k < known->n && rc == 0; k++)
                rc = header_use(ctx, p, f[k].fs, f[k].fe, f[k].vs, f[k].cls, sealed, out);
        } else if (rc == 0) {
            struct entity_info again;   /* the second parse's results are not needed */
            again.has_type = true;
            for (size_t j = 0; j < i && rc == 0;) {
                size_t fe = field_end(p, len, j), vs;
                enum hclass cls;
                vs = header_parse(p, j, fe, &cls, &again);
                rc = header_use(ctx, p, j, fe, vs, cls, sealed, out);
                j = fe;
            }
        }
        if (rc == 0 && sealed)
            return seal_body(ctx, p, i, len, info, out);
    } else {
        struct phfield fields[64], *fv = fields;
        size_t n = 0, cap = sizeof fields / sizeof fields[0];
        /* Pass 1 keeps what it parsed; a block too long for the stack is parsed again. */
        bool keep = true;
        while (i < len && rc == 0 && !blank_line(p, len, i)) {
            size_t fs = i, fe = field_end(p, len, i), vs;
            enum hclass cls;
            vs = header_parse(p, fs, fe, &cls, &parsed);
            rc = header_use(ctx, p, fs, fe, vs, cls, false, out);
            if (keep && n == cap)
                keep = false;
            if (keep)
                fv[n++] = (struct phfield){.fs = fs, .fe = fe, .vs = vs, .cls = cls};
            i = fe;
        }
        if (!parsed.has_type) {
            strcpy(parsed.type, msg_default ? "message" : "text");
            strcpy(parsed.subtype, msg_default ? "rfc822" : "plain");
        }
        if (rc == 0 && keep)
            rc = phcache_record(ctx, p, len, msg_default, fv, n, i, &parsed);
    }
    if (rc != 0)
        return rc;
    if (i < len) {
        /* The blank line the walk stopped at (i < len: it stopped at one). */
        size_t b = i + (p[i] == '\n' ? 1 : 2);
        if (!ctx->collecting)
            rc = pout_copy(out, p + i, b - i, ctx->err);
        i = b;
    }
    if (rc == 0 && i < len)
        rc = body_entity(ctx, p + i, len - i, depth, info, out);
    return rc;
}

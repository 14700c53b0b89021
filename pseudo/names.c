/* names.c — display names taken from address headers, and finding them again in
 * the message text (salutations, signatures, subjects).  A name is matched as written in
 * UTF-8 and in ISO-8859-1 (parts are often Latin-1 while headers are UTF-8), ignoring
 * case for ASCII and Latin-1 letters (æ/Æ, ø/Ø, å/Å ...), across a line break. */
#include "pseudo/names.h"
#include "pseudo/token.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

/* Bounds the work per word start on hostile input (thousands of recipients). */
#define PNAMES_MAX_PATTERNS 1024

void pnames_init(pnames *n, parena *arena)
{
    memset(n, 0, sizeof *n);
    n->arena = arena;
}

static unsigned char first_key(const struct pname_pat *p);

void pnames_reset(pnames *n)
{
    /* The patterns and canonical values were in the arena, which is reset with them; the
     * arrays keep their capacity unless an unusual message made them big. */
    if (n->cap_pats > PNAMES_KEEP || n->cap_canon > PNAMES_KEEP || n->cap_index > PNAMES_KEEP ||
        n->cap_heads > 2 * PNAMES_KEEP) {
        pnames_free(n);
        return;
    }
    /* The first-byte filter is cleared where these patterns set it (a few entries, not
     * 2 KB; pnames_prepare counts on it being clear when nothing is indexed). */
    for (size_t i = 0; i < n->n_indexed; i++) {
        unsigned char k = first_key(&n->pats[i]);
        n->first[k] = 0;
        if (k >= 32)
            n->first[k - 32] = 0;
    }
    n->n_pats = n->n_canon = 0;
    n->n_heads = 0;
    n->n_indexed = 0;
    n->n_seen = 0;
    n->prepared = false;
}

void pnames_free(pnames *n)
{
    parena *arena = n->arena;

    /* Patterns and canonical values live in the arena. */
    free(n->pats);
    free(n->canon);
    free(n->canon_len);
    free(n->next);
    free(n->heads);
    memset(n, 0, sizeof *n);
    n->arena = arena;
}

static unsigned char fold_ascii(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static unsigned char fold_latin1(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c + 32);
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return (unsigned char)(c + 32);
    return c;
}

/* UTF-8: the Latin-1 supplement capitals are C3 80..9E; their small letters C3 A0..BE. */
static unsigned char fold_utf8(unsigned char prev, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c + 32);
    if (prev == 0xC3 && c >= 0x80 && c <= 0x9E && c != 0x97)
        return (unsigned char)(c + 32);
    return c;
}

static bool utf8_cont_byte(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

static bool word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_' || c >= 0x80;
}

/* Patterns and names are a few bytes long and most comparisons fail at the first: a loop
 * here costs less than a call to memcmp. */
static bool same_bytes(const unsigned char *a, const unsigned char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* The canonical value of a name: its token's input (ptoken_normalise_buf: blanks
 * collapsed, NFC, case-folded), stored once per distinct value.  folded, when not NULL, is
 * that value already: the caller folded a name of ASCII and precomposed Latin-1 letters,
 * for which NFC and case folding are the byte folding of fold_utf8 (see simple_utf8). */
static int canon_add(pnames *n, const unsigned char *v, size_t len, const unsigned char *folded,
                     size_t *idx, mr_error *err)
{
    unsigned char buf[256], *made = NULL, *kept;
    const unsigned char *norm = folded;
    size_t nlen = len;

    if (folded == NULL) {
        int rc = ptoken_normalise_buf(PSEUDO_NAME, v, len, buf, sizeof buf, &made, &nlen, err);
        if (rc != 0)
            return rc;
        norm = made;
    }
    for (size_t i = 0; i < n->n_canon; i++) {
        if (n->canon_len[i] == nlen && same_bytes(n->canon[i], norm, nlen)) {
            if (made != buf)
                free(made);
            *idx = i;
            return 0;
        }
    }
    kept = parena_dup(n->arena, norm, nlen, err);
    if (made != buf)
        free(made);
    if (kept == NULL)
        return MR_E_NOMEM;
    if (n->n_canon == n->cap_canon) {
        size_t cap = n->cap_canon ? n->cap_canon * 2 : 16;
        unsigned char **nc = realloc(n->canon, cap * sizeof *nc);
        size_t *nl;
        if (nc == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for names");
        n->canon = nc;
        nl = realloc(n->canon_len, cap * sizeof *nl);
        if (nl == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for names");
        n->canon_len = nl;
        n->cap_canon = cap;
    }
    n->canon[n->n_canon] = kept;
    n->canon_len[n->n_canon] = nlen;
    *idx = n->n_canon++;
    return 0;
}

static uint64_t pat_key_hash(const unsigned char *pat, size_t len, bool latin1, size_t *fw);

/* Copy pat (the caller has checked that it is new) into the arena as a pattern; kept,
 * when not NULL, is the same bytes in the arena already (a canonical value). */
static int pat_push_copy(pnames *n, const unsigned char *pat, size_t len, bool latin1,
                         bool exact, size_t canon, unsigned char *kept, mr_error *err)
{
    unsigned char *c;
    size_t fw = 0;

    if (n->n_pats == n->cap_pats) {
        size_t cap = n->cap_pats ? n->cap_pats * 2 : 16;
        struct pname_pat *np = realloc(n->pats, cap * sizeof *np);
        if (np == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for names");
        n->pats = np;
        n->cap_pats = cap;
    }
    c = kept != NULL ? kept : parena_dup(n->arena, pat, len, err);
    if (c == NULL)
        return MR_E_NOMEM;
    uint64_t kh = pat_key_hash(c, len, latin1, &fw);
    n->pats[n->n_pats++] = (struct pname_pat){.pat = c, .len = len, .latin1 = latin1,
                                              .exact_case = exact, .canon = canon,
                                              .khash = kh, .first_word = fw};
    n->prepared = false;
    return 0;
}

static bool pat_exists(const pnames *n, const unsigned char *pat, size_t len, bool latin1,
                       bool exact)
{
    for (size_t i = 0; i < n->n_pats; i++) {
        const struct pname_pat *p = &n->pats[i];
        if (p->len == len && p->latin1 == latin1 && p->exact_case == exact &&
            same_bytes(p->pat, pat, len))
            return true;
    }
    return false;
}

/* Valid UTF-8 whose only non-ASCII letters are the precomposed Latin-1 ones (C3 80..BF,
 * without ß, which folds to "ss"): NFC already, and case-folded byte by byte as fold_utf8
 * does.  Almost every name in Danish mail is. */
static bool simple_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x80)
            continue;
        if (s[i] != 0xC3 || i + 1 >= len || s[i + 1] < 0x80 || s[i + 1] > 0xBF ||
            s[i + 1] == 0x9F)
            return false;
        i++;
    }
    return true;
}

/* A byte's classes for pattern_add's walk over a name, one table lookup instead of a
 * dozen compares: a character's first byte (not a UTF-8 continuation byte), a letter
 * (ASCII, or 0xC0 and up: a lead byte of a letter beyond ASCII), not ASCII, a word byte
 * (word_byte), and the 32
 * that fold_utf8 adds to it (an ASCII capital, or after C3 one of 80..9E but 97). */
enum { NC_LEAD = 1, NC_LETTER = 2, NC_HIGH = 4, NC_WORD = 8, NC_FOLD = 32 };
#define NC_IS_WORD(c) (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') ||          \
                       ((c) >= 'A' && (c) <= 'Z') || (c) == '_' || (c) >= 0x80)
#define NC_IS_FOLD(c) (((c) >= 'A' && (c) <= 'Z') || ((c) >= 0x80 && (c) <= 0x9E && (c) != 0x97))
#define NC1(c)                                                                                  \
    ((unsigned char)((((c) & 0xC0) != 0x80 ? NC_LEAD : 0) |                                     \
                     ((unsigned)(((c) | 0x20) - 'a') < 26u || (c) >= 0xC0 ? NC_LETTER : 0) |   \
                     ((c) >= 0x80 ? NC_HIGH : 0) | (NC_IS_WORD(c) ? NC_WORD : 0) |              \
                     (NC_IS_FOLD(c) ? NC_FOLD : 0)))
#define NC4(c) NC1(c), NC1((c) + 1), NC1((c) + 2), NC1((c) + 3)
#define NC16(c) NC4(c), NC4((c) + 4), NC4((c) + 8), NC4((c) + 12)
#define NC64(c) NC16(c), NC16((c) + 16), NC16((c) + 32), NC16((c) + 48)
static const unsigned char NAME_CLASS[256] = {NC64(0), NC64(64), NC64(128), NC64(192)};

/* One pattern (a whole name or a part) in UTF-8, plus its Latin-1 form when it has one. */
static int pattern_add(pnames *n, const unsigned char *s, size_t len, mr_error *err)
{
    size_t canon = 0, chars = 0, ll = 0;
    bool exact, letter, ascii, simple, latin1_ok = true, any8 = false;
    unsigned char fbuf[256], lbuf[256], *f = fbuf, *l = lbuf;
    int rc = 0;

    if (len == 0 || n->n_pats + 2 > PNAMES_MAX_PATTERNS)
        return 0;
    if (len > sizeof fbuf) {
        f = malloc(len);
        l = malloc(len);
        if (f == NULL || l == NULL) {
            free(f);
            free(l);
            return mr_error_set(err, MR_E_NOMEM, "out of memory for names");
        }
    }
    /* One walk: letters, characters, ASCII, and the folded UTF-8 form (fold_utf8: the
     * fold of a byte from 80 up applies only after C3). */
    {
        unsigned acc = 0;
        unsigned char prev = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = s[i], k = NAME_CLASS[c];
            acc |= k;
            chars += k & NC_LEAD;
            f[i] = (unsigned char)(c + ((c < 0x80 || prev == 0xC3) ? (k & NC_FOLD) : 0));
            prev = c;
        }
        letter = (acc & NC_LETTER) != 0;
        ascii = (acc & NC_HIGH) == 0;
    }
    /* Names with a letter, of two characters or more, in valid UTF-8. */
    simple = ascii || simple_utf8(s, len);
    if (!letter || (!simple && u8_check(s, len) != NULL) || chars < 2)
        goto done;
    /* Two-letter names ("Bo") are also ordinary words; only their capitalised form is
     * taken as the name. */
    exact = chars < 3;
    if (!ascii) {
        for (size_t i = 0; i < len; i++) {
            if (s[i] < 0x80) {
                l[ll++] = exact ? s[i] : fold_latin1(s[i]);
            } else if ((s[i] == 0xC2 || s[i] == 0xC3) && i + 1 < len &&
                       utf8_cont_byte(s[i + 1])) {
                unsigned char c = (unsigned char)(((s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F));
                l[ll++] = exact ? c : fold_latin1(c);
                any8 = true;
                i++;
            } else {
                latin1_ok = false;
            }
        }
    }
    /* The same name seen again (every header, every pass): its pattern already exists,
     * and with it its canonical value and Latin-1 form (both follow from the pattern), so
     * there is nothing to normalise or add.  Exact-case patterns are the name as written. */
    {
        const unsigned char *u = exact ? s : f;
        if (!pat_exists(n, u, len, false, exact)) {
            rc = canon_add(n, s, len, simple ? f : NULL, &canon, err);
            /* A simple name's canonical value is its folded pattern: the same bytes, stored
             * once (neither is ever written). */
            if (rc == 0)
                rc = pat_push_copy(n, u, len, false, exact, canon,
                                   simple && !exact ? n->canon[canon] : NULL, err);
            if (rc == 0 && latin1_ok && any8 && !pat_exists(n, l, ll, true, exact))
                rc = pat_push_copy(n, l, ll, true, exact, canon, NULL, err);
        }
    }
done:
    if (f != fbuf) {
        free(f);
        free(l);
    }
    return rc;
}

/* What pnames_add does with a byte of a display name: most bytes are kept; quotes,
 * escapes, parentheses and angle brackets dropped; blanks collapsed; an '@' makes it no
 * name (one table lookup instead of ten compares a byte). */
enum { NB_KEEP, NB_DROP, NB_BLANK, NB_AT };
static const unsigned char NAME_BYTE[256] = {
    ['"'] = NB_DROP, ['\\'] = NB_DROP, ['('] = NB_DROP, [')'] = NB_DROP, ['<'] = NB_DROP,
    ['>'] = NB_DROP, [' '] = NB_BLANK, ['\t'] = NB_BLANK, ['\r'] = NB_BLANK, ['\n'] = NB_BLANK,
    ['@'] = NB_AT,
};

static uint64_t key_hash(const unsigned char *w, size_t len, size_t avail, bool *high);

/* The bytes that end a part of a cleaned name (a table, not four compares a byte). */
static const bool PART_END[256] = {[' '] = true, [','] = true, ['.'] = true, ['/'] = true};

/* Was the cleaned name c added already (and is it still in the ring)?  Else remember
 * it.  The ring's hash only saves comparisons: key_hash, eight bytes per multiply. */
static int seen_before(pnames *n, const unsigned char *c, size_t len, bool *seen,
                       mr_error *err)
{
    bool high;
    uint64_t h = key_hash(c, len, len, &high);
    unsigned char *copy;

    for (size_t i = 0; i < n->n_seen && i < PNAMES_SEEN; i++) {
        const struct pname_seen *s = &n->seen[i];
        if (s->hash == h && s->len == len && same_bytes(s->p, c, len)) {
            *seen = true;
            return 0;
        }
    }
    *seen = false;
    copy = parena_dup(n->arena, c, len, err);
    if (copy == NULL)
        return MR_E_NOMEM;
    n->seen[n->n_seen++ % PNAMES_SEEN] = (struct pname_seen){.hash = h, .p = copy, .len = len};
    return 0;
}

int pnames_add(pnames *n, const unsigned char *utf8, size_t len, mr_error *err)
{
    unsigned char stack[512], *clean = stack;
    size_t k = 0;
    int rc;

    if (len + 1 > sizeof stack) {
        clean = malloc(len + 1);
        if (clean == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for names");
    }
    /* Drop quotes and escapes, collapse blanks: what a reader sees of the name.  A run of
     * blanks (and dropped bytes) after a kept byte is one blank; one at the end is
     * trimmed below with the commas and full stops. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = utf8[i], b = NAME_BYTE[c];
        if (b == NB_KEEP) {
            clean[k++] = c;
        } else if (b == NB_BLANK) {
            if (k > 0 && clean[k - 1] != ' ')
                clean[k++] = ' ';
        } else if (b == NB_AT) {
            /* an address used as display name is replaced as an address */
            if (clean != stack)
                free(clean);
            return 0;
        }
    }
    while (k > 0 && (clean[k - 1] == ',' || clean[k - 1] == '.' || clean[k - 1] == ' '))
        k--;
    /* Adding a name twice adds nothing (test_pseudo_names checks it). */
    bool seen = false;
    rc = k > 0 ? seen_before(n, clean, k, &seen, err) : 0;
    if (rc != 0 || seen || k == 0) {
        if (clean != stack)
            free(clean);
        return rc;
    }
    rc = pattern_add(n, clean, k, err);
    /* Parts: "Mette Hansen" -> "Mette", "Hansen"; "Hansen, Mette"; "Anne-Mette" also
     * gives "Anne" and "Mette". */
    for (size_t s = 0; rc == 0 && s < k;) {
        size_t e = s;
        while (e < k && !PART_END[clean[e]])
            e++;
        if (e > s && e - s < k) {
            rc = pattern_add(n, clean + s, e - s, err);
            for (size_t a = s; rc == 0 && a < e;) {
                size_t b = a;
                while (b < e && clean[b] != '-')
                    b++;
                if (b - a < e - s)
                    rc = pattern_add(n, clean + a, b - a, err);
                a = b + 1;
            }
        }
        s = e + 1;
    }
    if (clean != stack)
        free(clean);
    return rc;
}

static unsigned char first_key(const struct pname_pat *p)
{
    return p->latin1 ? fold_latin1(p->pat[0]) : fold_ascii(p->pat[0]);
}

/* The chain key of a word: a hash of its bytes with bit 5 set in each (0x20: ASCII
 * letters so fold alike in both variants, as do the capitals of the Latin-1 supplement in
 * Latin-1 and in UTF-8), eight bytes per multiply (a hash of a byte per multiply makes
 * each wait for the last, on every word of text).  Coarser than
 * either variant's folding: a text word's chain holds every pattern whose first word folds
 * (as that pattern's variant folds) to the word, and perhaps some others, which
 * pnames_match compares with the text and finds different (a pattern that matches has
 * the word's key either way), so which pattern matches is the same as with an exact key.
 * One key for both variants: one hash per text word.  avail >= len bytes are readable at
 * w; *high tells whether any of the len bytes is beyond ASCII. */
static uint64_t key_hash(const unsigned char *w, size_t len, size_t avail, bool *high)
{
    const uint64_t K = UINT64_C(0x9E3779B97F4A7C15), B5 = UINT64_C(0x2020202020202020);
    uint64_t h = len * K, x, all = 0;
    size_t j = 0;

    for (; j + 8 <= len; j += 8) {
        memcpy(&x, w + j, 8);
        all |= x;
        h = (h ^ (x | B5)) * K;
        h ^= h >> 29;
    }
    if (j < len) {
        size_t r = len - j;
        /* The tail as a little-endian number of its r bytes, whichever way it is read:
         * one load where 8 bytes are readable (on a little-endian CPU the load is that
         * number once masked), else byte by byte.  A word must get one key however much
         * of the text follows it. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (avail - j >= 8) {
            memcpy(&x, w + j, 8);
            x &= ~UINT64_C(0) >> (64 - 8 * r);
        } else
#else
        (void)avail;
#endif
        {
            x = 0;
            for (size_t k = 0; k < r; k++)
                x |= (uint64_t)w[j + k] << (8 * k);
        }
        all |= x;
        x = (x | B5) & (~UINT64_C(0) >> (64 - 8 * r));
        h = (h ^ x) * K;
    }
    *high = (all & UINT64_C(0x8080808080808080)) != 0;
    h ^= h >> 32;
    h *= K;
    return h ^ (h >> 29);
}

/* The chain key of a pattern (key_hash of its first word) and, in *fw, that word's
 * length.  A first word is hashed up to 256 bytes, a text word in full (as always): a
 * pattern whose first word is longer is not found. */
static uint64_t pat_key_hash(const unsigned char *pat, size_t len, bool latin1, size_t *fw)
{
    size_t we = 0;

    (void)latin1;
    while (we < len && (NAME_CLASS[pat[we]] & NC_WORD))
        we++;
    *fw = we;
    bool high;
    return key_hash(pat, we < 256 ? we : 256, len, &high);
}

/* Pattern p into its chain, which stays longest first, then in order of addition (p was
 * added after every pattern already there, so it goes after all that are as long: where
 * a sort of all would put it), and its first byte and first two bytes into the filters. */
static void index_pat(pnames *n, size_t p, size_t nh)
{
    size_t *tails = n->heads + nh;
    const struct pname_pat *pp = &n->pats[p];
    size_t slot = pp->khash & (nh - 1);

    n->next[p] = SIZE_MAX;
    if (n->heads[slot] == SIZE_MAX) {
        n->heads[slot] = tails[slot] = p;
    } else if (n->pats[tails[slot]].len >= pp->len) {
        n->next[tails[slot]] = p;
        tails[slot] = p;
    } else {
        /* Before the first shorter pattern (there is one: the tail). */
        size_t *link = &n->heads[slot];
        while (n->pats[*link].len >= pp->len)
            link = &n->next[*link];
        n->next[p] = *link;
        *link = p;
    }
    /* The text bytes that fold (as this pattern's variant folds) to its folded first
     * byte can start it; a word can only match it when it is as long as its first word
     * (they are compared up to the word's end). */
    unsigned char k = first_key(pp);
    /* ... or one byte longer: its genitive ("Mølgaards", see pat_match). */
    uint64_t bit = 1ull << (pp->first_word < 63 ? pp->first_word : 63);
    bit |= pp->first_word < 62 ? bit << 1 : 0;
    n->first[k] |= bit;
    if ((k >= 'a' && k <= 'z') || (pp->latin1 && k >= 0xE0 && k <= 0xFE && k != 0xF7))
        n->first[k - 32] |= bit;
    /* The first two bytes into the pairs table (see pnames.pairs), and its row into the
     * groups. */
    unsigned row = pp->pat[0] & 31;
    if (pp->len > 1 && pp->pat[1] != ' ')
        n->pairs[row] |= UINT32_C(1) << (pp->pat[1] & 31);
    else
        n->pairs[row] = UINT32_MAX;
    n->pair_groups[row] = PNAMES_GROUPS(n->pairs[row]);
}

/* Runs before every text is scanned, and again whenever a name was learnt: only the
 * patterns added since the last prepare go into the tables (filter bits are only ever
 * added; a new pattern goes into its chain where a sort by length would put it).  The
 * chains are built again, in order of addition, only when the table of heads grows. */
int pnames_prepare(pnames *n, mr_error *err)
{
    size_t nh = 16, from = n->n_indexed;

    if (n->prepared)
        return 0;
    if (from == 0) {
        /* first[] is clear: pnames_init, pnames_free and pnames_reset leave it so. */
        memset(n->pairs, 0, sizeof n->pairs);
        memset(n->pair_groups, 0, sizeof n->pair_groups);
    }
    if (n->n_pats == 0) {
        n->n_heads = 0;
        n->prepared = true;
        return 0;
    }
    while (nh < n->n_pats * 2)
        nh *= 2;
    if (n->n_pats > n->cap_index || nh > n->cap_heads) {
        size_t cap = n->n_pats > n->cap_index ? n->cap_pats : n->cap_index;
        size_t hcap = nh > n->cap_heads ? nh : n->cap_heads;
        size_t *nx = realloc(n->next, cap * sizeof *nx);
        if (nx == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for names");
        n->next = nx;
        n->cap_index = cap;
        size_t *hd = realloc(n->heads, 2 * hcap * sizeof *hd);
        if (hd == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for names");
        n->heads = hd;
        n->cap_heads = hcap;
    }
    if (nh != n->n_heads || from == 0) {
        /* New heads (and tails, the second half): every pattern again; setting its filter
         * bits again changes nothing. */
        memset(n->heads, 0xFF, 2 * nh * sizeof *n->heads);   /* SIZE_MAX */
        n->n_heads = nh;
        from = 0;
    }
    for (size_t p = from; p < n->n_pats; p++)
        index_pat(n, p, nh);
    n->n_indexed = n->n_pats;
    n->prepared = true;
    return 0;
}

static bool is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Length of the text matched by pattern p at t[i], 0 if none. */
static size_t pat_match(const struct pname_pat *p, const unsigned char *t, size_t len, size_t i)
{
    size_t j = i;

    for (size_t k = 0; k < p->len; k++) {
        unsigned char pc = p->pat[k];
        if (pc == ' ') {
            /* A blank in the name matches blanks with at most one line break. */
            size_t s = j;
            while (j < len && is_blank(t[j]))
                j++;
            if (j < len && t[j] == '\r' && j + 1 < len && t[j + 1] == '\n')
                j += 2;
            else if (j < len && t[j] == '\n')
                j++;
            while (j < len && is_blank(t[j]))
                j++;
            if (j == s)
                return 0;
            continue;
        }
        if (j >= len)
            return 0;
        unsigned char tc = t[j];
        if (!p->exact_case)
            tc = p->latin1 ? fold_latin1(tc) : fold_utf8(j > i ? t[j - 1] : 0, tc);
        if (tc != pc)
            return 0;
        j++;
    }
    /* A whole word, or the Danish genitive: "Mølgaards", "Hansens" (the 's' stays). */
    if (j < len && word_byte(t[j]) &&
        !((t[j] | 0x20) == 's' && (j + 1 == len || !word_byte(t[j + 1]))))
        return 0;
    return j - i;
}

size_t pnames_match(const pnames *n, const unsigned char *t, size_t len, size_t i, size_t we,
                    size_t *canon)
{
    size_t best = 0;
    bool high;
    uint64_t h;

    if (n->n_heads == 0)
        return 0;
    /* One key for both variants (key_hash); for an ASCII word both fold alike, so one
     * chain walk. */
    h = key_hash(t + i, we - i, len - i, &high);
    bool ascii = !high;
    for (int v = 0; v < (ascii ? 1 : 2); v++) {
        for (size_t p = n->heads[h & (n->n_heads - 1)]; p != SIZE_MAX; p = n->next[p]) {
            const struct pname_pat *pp = &n->pats[p];
            size_t m;
            if (pp->khash != h || (!ascii && pp->latin1 != (v == 1)))
                continue;
            if (pp->len <= best)
                break;  /* longest first: nothing longer follows in this chain */
            m = pat_match(pp, t, len, i);
            if (m > best) {
                best = m;
                *canon = pp->canon;
                break;
            }
        }
    }
    return best;
}

void paddrs_reset(paddrs *a)
{
    if (a->cap > PNAMES_KEEP)
        paddrs_free(a);
    else
        a->n = 0;
}

void paddrs_free(paddrs *a)
{
    parena *arena = a->arena;

    /* The addresses live in the arena. */
    free(a->v);
    free(a->lens);
    memset(a, 0, sizeof *a);
    a->arena = arena;
}

int paddrs_add(paddrs *a, const unsigned char *norm, size_t len, mr_error *err)
{
    unsigned char *c;

    if (len < 3)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->lens[i] == len && memcmp(a->v[i], norm, len) == 0)
            return 0;
    if (a->n >= PNAMES_MAX_PATTERNS)
        return 0;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        unsigned char **nv = realloc(a->v, cap * sizeof *nv);
        size_t *nl;
        if (nv == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for addresses");
        a->v = nv;
        nl = realloc(a->lens, cap * sizeof *nl);
        if (nl == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for addresses");
        a->lens = nl;
        a->cap = cap;
    }
    c = parena_dup(a->arena, norm, len, err);
    if (c == NULL)
        return MR_E_NOMEM;
    a->v[a->n] = c;
    a->lens[a->n++] = len;
    return 0;
}

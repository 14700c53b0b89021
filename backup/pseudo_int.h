/*
 * pseudo_int.h — private to backup/pseudo*.c: the pieces the pseudonymiser is built from.
 *
 *   pseudo_out.c    growable output buffer that records edits (the reversal data)
 *   pseudo_arena.c  per-message memory: bump allocator and a pool of scratch buffers
 *   pseudo_token.c  normalisation, HMAC tokens, per-message token cache and list
 *   pseudo_codec.c  base64, quoted-printable, RFC 2047 decode/encode
 *   pseudo_names.c  display names collected from address headers, matched in text
 *   pseudo_find.c   candidate positions for the scanner, 64 bytes at a time (SSE2 or plain)
 *   pseudo_scan.c   linear-time identifier detection in one text buffer
 *   pseudo_text.c   text views (HTML entities, RFC 2231), replacement, header values
 *   pseudo_mime.c   header and MIME tree walk, dispatch per part
 *   pseudo_reid.c   the versioned reversal format and pseudo_restore()
 *   pseudo_sha.c    SHA-256 of the reid record, keyed HMAC-SHA-256 of the tokens
 *   pseudo.c        public API: pseudo_message(), verification, whole-message fallback
 */
#ifndef MAILRET_BACKUP_PSEUDO_INT_H
#define MAILRET_BACKUP_PSEUDO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup/pseudo.h"
#include "common/error.h"

/* Deeper MIME nesting is treated as opaque text (still scanned raw): bounds recursion and
 * work on hostile input. */
#define PSEUDO_MAX_DEPTH 32

/* Longest token shape: "p-" + token + "@pseudonym.invalid" (and escaped forms). */
#define PSEUDO_SHAPE_MAX 64

/* ---- pseudo_out.c ------------------------------------------------------------------ */

typedef struct pbuf {
    unsigned char *p;
    size_t len, cap;
} pbuf;

int pbuf_reserve(pbuf *b, size_t extra, mr_error *err);
int pbuf_append(pbuf *b, const void *data, size_t n, mr_error *err);
void pbuf_free(pbuf *b);

/* One edit: out[out_off, out_off+out_len) was original[orig_off, orig_off+orig_len). */
struct pedit {
    size_t out_off, out_len;
    size_t orig_off, orig_len;
};

/* Output under construction.  When base is set (the top-level output), every replacement
 * records an edit whose original bytes lie in base; temporary outputs for decoded parts
 * (base NULL) only collect bytes, since their parent records the whole encoded span. */
typedef struct pout {
    pbuf buf;
    struct pedit *edits;
    size_t n_edits, cap_edits;
    const unsigned char *base;
    size_t base_len;
} pout;

void pout_init(pout *o, const unsigned char *base, size_t base_len);
void pout_free(pout *o);
int pout_copy(pout *o, const unsigned char *p, size_t n, mr_error *err);
int pout_replace(pout *o, const unsigned char *orig, size_t orig_len,
                 const unsigned char *rep, size_t rep_len, mr_error *err);

/* Apply edits to pseudonymised bytes (no checks beyond bounds): used by verification and
 * by pseudo_restore after it has validated the framing. */
int pedits_apply(const unsigned char *pseudo, size_t pseudo_len, const struct pedit *edits,
                 size_t n_edits, const unsigned char *orig_base, pbuf *out, mr_error *err);

/* ---- pseudo_sha.c ------------------------------------------------------------------ */

/* SHA-256 fetched at most once per pseudo_message call (lazily) and shared by the HMAC
 * tokens and the reid record; ctx is a scratch context for whole-buffer digests. */
typedef struct psha {
    struct evp_md_st *md;
    struct evp_md_ctx_st *ctx;
} psha;

/* Fetch s->md if not yet done. */
int psha_md(psha *s, mr_error *err);
int psha_digest(psha *s, const unsigned char *p, size_t len, unsigned char out[32],
                mr_error *err);
void psha_free(psha *s);

/* HMAC-SHA-256 under one key, keyed once (the states after key^ipad and key^opad) and
 * wiped by psha_hmac_free.  s: for the algorithm where the EVP path needs it. */
typedef struct psha_hmac psha_hmac;
int psha_hmac_new(psha *s, const unsigned char *key, size_t key_len, psha_hmac **out,
                  mr_error *err);
/* HMAC over a || b. */
int psha_hmac_compute(psha_hmac *h, const unsigned char *a, size_t a_len,
                      const unsigned char *b, size_t b_len, unsigned char out[32],
                      mr_error *err);
void psha_hmac_free(psha_hmac *h);

/* ---- pseudo_arena.c ---------------------------------------------------------------- */

/* Bump allocator for objects that live until the end of the message; freed as a whole. */
struct parena_block;
typedef struct parena {
    struct parena_block *blocks;    /* newest first */
    unsigned char *cur;             /* the newest block's bytes */
    size_t used, cap;
} parena;

void parena_init(parena *a);
/* n bytes, aligned for any type; NULL (err set) when out of memory. */
void *parena_alloc(parena *a, size_t n, mr_error *err);
/* A copy of n bytes plus a NUL. */
void *parena_dup(parena *a, const void *p, size_t n, mr_error *err);
/* Forget every object but keep one standard block for the next message. */
void parena_reset(parena *a);
void parena_free(parena *a);

/* ---- pseudo_token.c ---------------------------------------------------------------- */

struct ptok_entry;

typedef struct ptokens {
    struct ptok_entry **slots;   /* open-addressing hash of (kind, normalised value) */
    size_t n_slots, n_used;
    struct ptok_entry **order;   /* distinct tokens actually used, first-seen order */
    size_t n_order, cap_order;
    /* HMAC-SHA-256 keyed at the first token (for a session, once for all messages). */
    psha_hmac *hmac;
    psha *sha;                  /* the message's SHA-256 (not owned) */
    parena *arena;              /* where the entries live (not owned) */
} ptokens;

/* A hash table bigger than this is freed between messages, not cleared. */
#define PTOKENS_KEEP_SLOTS 1024

void ptokens_init(ptokens *t, psha *sha, parena *arena);
/* Forget the tokens of a message (before the arena is reset); the HMAC key schedule is
 * kept for the next message under the same key. */
void ptokens_reset(ptokens *t);
void ptokens_free(ptokens *t);

/* Normalise a raw value of a kind into out (malloc'd).  Email: trimmed, lower-cased;
 * CPR: 10 digits; phone: 8 national digits (+45/0045 dropped); name: NFC + case-folded,
 * whitespace collapsed; IP: lower-cased, trimmed.  MR_E_INVALID if nothing is left. */
int ptoken_normalise(enum pseudo_kind kind, const unsigned char *v, size_t len,
                     unsigned char **out, size_t *out_len, mr_error *err);

/* The same, into buf (cap bytes) when it fits: then *out == buf and nothing is to be
 * freed; otherwise *out is malloc'd. */
int ptoken_normalise_buf(enum pseudo_kind kind, const unsigned char *v, size_t len,
                         unsigned char *buf, size_t cap, unsigned char **out, size_t *out_len,
                         mr_error *err);

/* Bare token of an already normalised value. */
int ptoken_compute(const pseudo_key *key, enum pseudo_kind kind, const unsigned char *norm,
                   size_t len, char out[PSEUDO_TOKEN_LEN + 1], mr_error *err);

/* Token of a normalised value, cached per message; remembered in the token list when
 * list is true.  *token points into the cache. */
int ptokens_get(ptokens *t, const pseudo_key *key, enum pseudo_kind kind,
                const unsigned char *norm, size_t len, bool list, const char **token,
                mr_error *err);
/* Forget the token list (not the cache), for a pass that starts over. */
void ptokens_reset_list(ptokens *t);
size_t ptokens_count(const ptokens *t);
void ptokens_at(const ptokens *t, size_t i, enum pseudo_kind *kind, const char **token);

/* Writes the shape of a token ("CPR-<token>" ...) into out; returns its length. */
size_t ptoken_shape(enum pseudo_kind kind, const char *token, char out[PSEUDO_SHAPE_MAX]);

/* ---- pseudo_codec.c ---------------------------------------------------------------- */

/* Lenient decoders: skip what is not part of the encoding, never fail on content. */
int pcodec_b64_decode(const unsigned char *in, size_t len, pbuf *out, mr_error *err);
/* Where each encoded line of a quoted-printable body ends (after its '\n', or at the end
 * of the body) and where its decoded bytes end.  The decoder never looks past a line end,
 * so each line decodes on its own to the bytes between its decoded end and the line
 * before's: pqp_patch re-encodes single lines by it. */
struct pqp_line {
    size_t enc_end, dec_end;
};
/* A table entry costs 16 bytes; a body of very short lines (hostile: a megabyte of line
 * ends) would cost 16 times its size.  So no more than one line per PQP_LINE_MIN bytes of
 * body is recorded (real mail has 60 to 76): a body with more is left partial, and
 * re-encoded whole as before the table existed. */
#define PQP_LINE_MIN 8
typedef struct pqp_lines {
    struct pqp_line *v;
    size_t n, cap, max;
    bool partial;           /* lines after the n-th were not recorded */
} pqp_lines;
void pqp_lines_free(pqp_lines *lines);
/* lines: NULL, or filled with the body's lines. */
int pcodec_qp_decode(const unsigned char *in, size_t len, pbuf *out, pqp_lines *lines,
                     mr_error *err);
/* Q encoding of RFC 2047 ('_' is space). */
int pcodec_q_decode(const unsigned char *in, size_t len, pbuf *out, mr_error *err);

/* Encoders.  eol is the line ending of the part ("\r\n" or "\n"); final_eol says whether
 * the encoded text ends with one (as the original did). */
int pcodec_b64_encode(const unsigned char *in, size_t len, const char *eol, bool final_eol,
                      pbuf *out, mr_error *err);
int pcodec_qp_encode(const unsigned char *in, size_t len, const char *eol, pbuf *out,
                     mr_error *err);
/* One or more encoded-words "=?charset?X?...?=" separated by eol + " ". */
int pcodec_2047_encode(const unsigned char *in, size_t len, const unsigned char *charset,
                       size_t charset_len, char enc, const char *eol, pbuf *out,
                       mr_error *err);

/* The line ending used in a span: "\r\n" if its first line break is CRLF, else "\n". */
const char *pcodec_eol_of(const unsigned char *p, size_t len);

/* ---- pseudo_qppatch.c --------------------------------------------------------------- */

/* The quoted-printable body b[0, len) with eol as its line ending and lines as
 * pcodec_qp_decode gave them, whose decoded text a pout has rewritten (text: its base was
 * the decoded body, so its edits are in decoded offsets): written to out as the body's
 * lines, except that each run of lines holding an edit is replaced by the encoding of its
 * new text.  MR_E_INTERNAL if the lines or the edits do not fit the body. */
int pqp_patch(const unsigned char *b, size_t len, const char *eol, const pqp_lines *lines,
              const pout *text, pbuf *scratch, pout *out, mr_error *err);

/* ---- pseudo_names.c ---------------------------------------------------------------- */

struct pname_pat {
    unsigned char *pat;     /* folded pattern bytes (see pnames_match) */
    size_t len;
    bool latin1;            /* pattern is ISO-8859-1, else UTF-8 */
    bool exact_case;        /* short parts: must match as written */
    size_t canon;           /* index into canon[] */
    /* Computed once when the pattern is added, not at every prepare: the hash of its
     * folded first word (the chain it goes in) and that word's length. */
    uint64_t khash;
    size_t first_word;
};

#define PNAMES_SEEN 16

typedef struct pnames {
    struct pname_pat *pats; /* sorted longest first before scanning */
    size_t n_pats, cap_pats;
    unsigned char **canon;  /* normalised (NFC, case-folded) value per distinct name */
    size_t *canon_len;
    size_t n_canon, cap_canon;
    /* Per text byte: bit l (l < 63; bit 63: 63 or longer) set when some pattern can start
     * with that byte and has a first word of l bytes.  A word that passes neither is not
     * hashed at all (see pnames_could_match). */
    uint64_t first[256];
    /* The first two bytes of every pattern, by their low five bits: bit (b1 & 31) of
     * pairs[b0 & 31], a whole row when the second byte is a blank (it matches any
     * blanks).  Folding a letter either way only touches bit 5, so a text word can only
     * match a pattern if its own first two bytes pass this (pfind's exact test). */
    uint32_t pairs[32];
    /* The same rows folded to eight groups by the second byte's low three bits: bit
     * (b1 & 7) of pair_groups[b0 & 31] (for the AVX2 prefilter, pseudo_find.c). */
    unsigned char pair_groups[32];
    /* Patterns chained by the hash of their folded first word (longest first), so a word
     * of text is compared only with patterns that begin with that same word.  The arrays
     * are kept between prepares (cap_index entries of next, 2 * cap_heads of heads: the
     * second half is scratch). */
    size_t *next, *heads;
    size_t n_heads, cap_index, cap_heads;
    size_t n_indexed;       /* patterns in the tables (pnames_prepare adds the rest) */
    bool prepared;
    /* The display names most recently added, cleaned: most are added again (every
     * address header, signature and pass names the same person), and a name added before
     * adds nothing, so it is recognised before it is split and folded.  A ring; the bytes
     * live in the arena. */
    struct pname_seen {
        uint64_t hash;
        const unsigned char *p;
        size_t len;
    } seen[PNAMES_SEEN];
    size_t n_seen;
    parena *arena;          /* patterns and canonical values live here (not owned) */
} pnames;

/* Arrays of more entries than this are freed between messages, not kept. */
#define PNAMES_KEEP 1024

void pnames_init(pnames *n, parena *arena);
/* Forget the names (before the arena is reset), keep the arrays' capacity. */
void pnames_reset(pnames *n);
void pnames_free(pnames *n);
/* Add a display name given in UTF-8 (the full name and its parts). */
int pnames_add(pnames *n, const unsigned char *utf8, size_t len, mr_error *err);
int pnames_prepare(pnames *n, mr_error *err);
/* Longest pattern matching at t[i], whose first word is t[i, we) (word boundary before
 * is the caller's job; after is checked here).  Returns the match length (0 if none) and
 * the canon index. */
size_t pnames_match(const pnames *n, const unsigned char *t, size_t len, size_t i, size_t we,
                    size_t *canon);

/* Quick filter before pnames_match: can a pattern start with the word t[i, we)? */
static inline bool pnames_could_match(const pnames *n, const unsigned char *t, size_t i,
                                      size_t we)
{
    size_t l = we - i;

    return (n->first[t[i]] >> (l < 63 ? l : 63)) & 1u;
}

/* Known personal addresses (normalised), for Message-ID rules. */
typedef struct paddrs {
    unsigned char **v;      /* the addresses live in arena */
    size_t *lens;
    size_t n, cap;
    parena *arena;
} paddrs;
void paddrs_reset(paddrs *a);
void paddrs_free(paddrs *a);
int paddrs_add(paddrs *a, const unsigned char *norm, size_t len, mr_error *err);

/* ---- context ----------------------------------------------------------------------- */

/* Decoded (base64 / quoted-printable) bodies kept from pass 1 for the passes after it:
 * decoding twice costs more than keeping them, up to these bounds. */
#define PDEC_CACHE_MAX 32
#define PDEC_CACHE_BYTES (4u << 20)

struct pdec_entry {
    const unsigned char *src;   /* the encoded body, in the message itself */
    size_t src_len;
    pbuf dec;
    pqp_lines lines;            /* quoted-printable: its lines (kept with their capacity) */
};

/* Scratch buffers kept for reuse within a message (see pscratch_get). */
#define PSCRATCH_MAX 8
#define PSCRATCH_KEEP (1u << 20)

struct pseudo_ctx {
    const pseudo_key *key;
    const struct pseudo_policy *pol;
    bool collecting;        /* pass 1: only collect names and addresses */
    parena arena;
    pbuf scratch[PSCRATCH_MAX];
    size_t n_scratch;
    pnames names;
    paddrs addrs;
    psha sha;
    ptokens tokens;
    /* Scratch buffers reused for every address header (pass 1), freed with the context. */
    pbuf phrase, addr, comment, utf8;
    const unsigned char *msg;   /* the whole message (bodies inside it can be cached) */
    size_t msg_len;
    struct pdec_entry dec_cache[PDEC_CACHE_MAX];
    size_t n_dec, dec_bytes;
    struct pmime_cache *hcache;     /* header blocks parsed in pass 1 (pseudo_mime.c) */
    size_t n_sealed;                /* parts sealed by the writing pass */
    mr_error *err;
};

/* A temporary buffer (empty, perhaps with capacity) and its return; pscratch_free at the
 * end of the message. */
pbuf pscratch_get(struct pseudo_ctx *ctx);
void pscratch_put(struct pseudo_ctx *ctx, pbuf *b);
void pscratch_free(struct pseudo_ctx *ctx);

/* Does the policy keep (true) or seal (false) a part of this lower-case type/subtype? */
bool pseudo_type_kept(const struct pseudo_policy *pol, const char *type, const char *subtype);

/* Is a normalised (lower-case) address the fund's own? */
bool pseudo_is_own(const struct pseudo_ctx *ctx, const unsigned char *norm, size_t len);

/* ---- pseudo_find.c ----------------------------------------------------------------- */

/* The candidate search uses SSE2 where the compiler targets it (x86-64 always), else a
 * plain loop; -DPSEUDO_NO_SIMD (CMake option MAILRET_PSEUDO_NO_SIMD) forces the latter.
 * With GCC or Clang on x86-64 an AVX2 classifier is compiled too and used when the CPU
 * has AVX2 (checked at run time): it also computes the prefilter of word starts.  An
 * AVX-512BW one (64 bytes at once, masks straight from the compares) is used before it
 * where the CPU has that. */
#if defined(__SSE2__) && !defined(PSEUDO_NO_SIMD)
#define PFIND_SSE2 1
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PFIND_AVX2 1
#define PFIND_AVX512 1
#endif
#endif

/* Bytes that continue a word: ASCII letters and digits, '_' and every 8-bit byte. */
extern const unsigned char pfind_word[256];

/* What can start a match, for pfind_next: first-byte classes of a word and two non-word
 * bytes. */
#define PFIND_HEX    0x01u   /* [0-9A-Fa-f]: IPv6 / IPv4 */
#define PFIND_DIGIT  0x02u   /* [0-9]: CPR, phone */
#define PFIND_CTNI   0x04u   /* 'C' 'T' 'N' 'I': token-shaped text */
#define PFIND_PLUS   0x08u   /* '+': international phone number */
#define PFIND_COLON  0x10u   /* ':': IPv6 */

struct pfilter {
    unsigned cls;               /* PFIND_* */
    const uint64_t *first;      /* per first byte, word lengths of learnt names (pnames) */
    const uint32_t *name_pairs; /* pnames.pairs: their first two bytes */
    unsigned kw_mask;           /* 0xFFFF: greetings and sign-offs (prules_live), else 0 */
    bool avx2;                  /* classify with AVX2 and prefilter (the CPU has it) */
    bool avx512;                /* with AVX-512BW instead (the CPU has it; implies avx2) */
    bool none;                  /* nothing asked for: no position is a candidate */
    /* For the AVX2 prefilter: per low five bits of a first byte, bit (b & 7) set when a
     * greeting or a learnt name has such a first byte and a second byte b. */
    unsigned char pair_groups[32];
};

/* A pairs row folded to the groups of pnames.pair_groups. */
#define PFIND_GROUPS(row) ((unsigned char)(((row) | (row) >> 8 | (row) >> 16 | (row) >> 24) & 0xFFu))

/* names: the learnt names (prepared), or NULL for none; keywords: greetings and sign-offs.
 * f->avx2 is set when the CPU has AVX2, f->avx512 when it has AVX-512BW too (a test may
 * clear either to try the other paths: avx512 first, then avx2). */
void pfind_filter_init(struct pfilter *f, unsigned cls, const pnames *names, bool keywords);

/* An iterator over the candidate positions of one text under one filter: the bit masks of
 * the current 64-byte window are kept, so a scanner that resumes after each candidate does
 * not classify the same bytes again. */
struct pfind {
    const struct pfilter *f;
    const unsigned char *t;
    size_t len;
    size_t base, n;             /* the window t[base, base + n) */
    uint64_t hits;              /* its candidates */
};

void pfind_start(struct pfind *it, const struct pfilter *f, const unsigned char *t, size_t len);

/* The first position p in [from, limit) where the scanner has to look: a word start (a
 * word byte after a non-word byte; from itself counts as one) whose first byte and length
 * pass the filter, a '+' / ':' that it asks for, or (under PFIND_DIGIT) a digit after a
 * word byte that is not a digit.  limit if there is none.  Word
 * lengths are measured to the end of the word even past limit. */
size_t pfind_next(struct pfind *it, size_t from, size_t limit);

/* The definition pfind_next follows, one position at a time (for the tests): is p a
 * candidate when the scanner resumes at from (from <= p)? */
bool pfind_candidate(const struct pfilter *f, const unsigned char *t, size_t len, size_t from,
                     size_t p);

/* First non-word byte at or after j (len if none). */
size_t pfind_word_end(const unsigned char *t, size_t len, size_t j);

/* The masks of up to 64 bytes: bit k set when t[k] is a word byte, an ASCII letter or
 * digit, a hex digit, '+', ':', '.', a digit.  Exposed so that the tests can compare the
 * implementations. */
struct pfind_masks {
    uint64_t word, alnum, hex, plus, colon, dot, digit;
};
void pfind_masks_scalar(const unsigned char *t, size_t n, struct pfind_masks *m);
#ifdef PFIND_SSE2
/* The same for blocks * 16 bytes (1 <= blocks <= 4). */
void pfind_masks_sse2(const unsigned char *t, unsigned blocks, struct pfind_masks *m);
#endif
#ifdef PFIND_AVX2
/* The same for 32 * halves bytes (halves 1 or 2) with AVX2 (only where the CPU has it),
 * and *pre: bit k set when t[k], t[k + 1] may begin something f wants (a superset of the
 * candidates: every word start that passes the exact test passes this).  Reads
 * t[0, 32 * halves + 1); the bits of a half not read are 0. */
void pfind_classify_avx2(const struct pfilter *f, const unsigned char *t, unsigned halves,
                         struct pfind_masks *m, uint64_t *pre);
/* For a filter of greetings and sign-offs only (no class, no names): *word as
 * pfind_masks.word, and *pre bit k set when t[k], t[k + 1] may begin such a word (a
 * superset, as above).  Reads as pfind_classify_avx2. */
void pfind_classify_kw_avx2(const unsigned char *t, unsigned halves, uint64_t *word,
                            uint64_t *pre);
#endif
#ifdef PFIND_AVX512
/* The same with AVX-512BW (only where the CPU has it) for t[0, avail), 64 bytes or fewer:
 * reads t[0, min(avail, 65)) and no byte more (masked loads), and classifies the bytes
 * from avail on as NULs.  So each is bit for bit pfind_classify_avx2 (halves 2) or
 * pfind_classify_kw_avx2 (halves 2) of t padded with NULs to 65 bytes. */
void pfind_classify_avx512(const struct pfilter *f, const unsigned char *t, size_t avail,
                           struct pfind_masks *m, uint64_t *pre);
void pfind_classify_kw_avx512(const unsigned char *t, size_t avail, uint64_t *word,
                              uint64_t *pre);
#endif

/* ---- pseudo_rules.c: the word rules (pseudo_rules.def) and what is derived from them -- */

enum prule_kind { PRULE_NONE, PRULE_KW_GREETING, PRULE_KW_SIGN_OFF, PRULE_STOP, PRULE_FIELD };

struct prule {
    const char *w;
    size_t len;
    unsigned char kind;         /* enum prule_kind */
};

#define PRULES_KW_MAX 64        /* greetings and sign-offs */
#define PRULES_KW_LEN 15        /* longest one: its length is a bit of a uint16_t */
#define PRULES_SECOND_MAX 32    /* distinct second bytes */

/* The fast filters of the greetings and sign-offs, all computed by prules_derive. */
struct prules {
    const struct prule *rules;
    unsigned char kw[PRULES_KW_MAX];            /* indexes of the keywords in rules */
    unsigned nkw;
    unsigned char bucket[26][PRULES_KW_LEN + 1][2]; /* by first letter, length: kw[] range */
    unsigned char second[256];                  /* second byte -> column of len2 (0: none) */
    uint16_t len2[26][PRULES_SECOND_MAX];       /* bit n: a keyword of n bytes begins so */
    unsigned char groups[32];                   /* AVX2 prefilter, as pfilter.pair_groups */
    unsigned char first_lo[16], first_hi[16];   /* keyword-only search: nibble tables */
    unsigned char second_lo[16], second_hi[16];
};

/* The rules of pseudo_rules.def, in its order. */
const struct prule *prules_list(size_t *n);
/* Fills *d from r[0, n); -1 when a keyword cannot be matched (first byte not an ASCII
 * letter, a byte that ends a word, longer than PRULES_KW_LEN) or the tables are full. */
int prules_derive(const struct prule *r, size_t n, struct prules *d);
/* The tables every scan uses, derived once by prules_init (pfind_filter_init calls it;
 * thread-safe).  Tests may overwrite them to show that a table missing a word is noticed. */
extern struct prules prules_live;
void prules_init(void);
/* PRULE_KW_GREETING / PRULE_KW_SIGN_OFF if w[0, wl) is one (ASCII letters in either
 * case), else PRULE_NONE. */
int prules_keyword(const unsigned char *w, size_t wl);

/* ---- pseudo_scan.c ----------------------------------------------------------------- */

#define PSCAN_EMAIL   0x01u
#define PSCAN_CPR     0x02u
#define PSCAN_PHONE   0x04u
#define PSCAN_NAME    0x08u
#define PSCAN_IP      0x10u
#define PSCAN_MSGID   0x20u   /* only known personal addresses (Message-ID & co.) */
#define PSCAN_ESCAPE  0x40u   /* text already shaped like a token */

struct pmatch {
    size_t start, end;      /* in the scanned text */
    enum pseudo_kind kind;
    bool escape;            /* token-shaped text to be escaped, not a personal value */
    size_t canon;           /* names: index into pnames canon */
};

typedef int (*pscan_emit)(void *arg, const struct pmatch *m);

/* Scan t[0,len) and call emit for every match in increasing, non-overlapping order.
 * Linear in len (for a bounded number of names).  Returns 0 or emit's error. */
int pscan_run(const struct pseudo_ctx *ctx, const unsigned char *t, size_t len,
              unsigned flags, pscan_emit emit, void *arg, mr_error *err);

/* Pass 1: learn names from salutations and signatures ("Hej Søren", "Mvh\nMette Hansen"). */
int pscan_learn(struct pseudo_ctx *ctx, const unsigned char *t, size_t len);

/* Flags for a policy (everything the policy turns on, plus escaping). */
unsigned pscan_policy_flags(const struct pseudo_policy *pol);

/* ---- pseudo_text.c ----------------------------------------------------------------- */

#define PTEXT_HTML   0x100u  /* decode HTML entities and %XX before scanning */
#define PTEXT_FOLDED 0x200u  /* join folded lines (CRLF + blank) before scanning */

/* Scan plain (already decoded) text and write it with replacements to out. */
int ptext_plain(struct pseudo_ctx *ctx, const unsigned char *src, size_t len, unsigned flags,
                pout *out);
/* A header value (or parameter value): raw text with RFC 2047 encoded-words. */
int ptext_header(struct pseudo_ctx *ctx, const unsigned char *src, size_t len,
                 unsigned flags, pout *out);
/* Content-Type / Content-Disposition value: only name/filename parameters are scanned
 * (plain, quoted, 2047 inside quotes, RFC 2231 extended and continued). */
int ptext_ctype_params(struct pseudo_ctx *ctx, const unsigned char *src, size_t len,
                       pout *out);
/* Value of a simple (non-RFC 2231) parameter, unquoted, into out; SIZE_MAX if absent or
 * longer than cap. */
size_t ptext_param_get(const unsigned char *s, size_t len, const char *name, unsigned char *out,
                       size_t cap);
/* Decode RFC 2047 words of a header value to UTF-8 where possible (for names). */
int ptext_header_utf8(const unsigned char *src, size_t len, pbuf *out, mr_error *err);

/* ---- pseudo_mime.c ----------------------------------------------------------------- */

/* Process one entity (headers + body).  msg_default: without Content-Type the body is
 * message/rfc822 (inside multipart/digest) instead of text/plain. */
int pmime_entity(struct pseudo_ctx *ctx, const unsigned char *p, size_t len, int depth,
                 bool msg_default, pout *out);

/* Forget the header blocks of a message, keep the arrays (bounded by PHCACHE_*). */
void pmime_cache_reset(struct pseudo_ctx *ctx);
void pmime_cache_free(struct pseudo_ctx *ctx);

/* Class of a header field name (H_* in pseudo_mime.c), by hash; the linear search it
 * replaced, and the table's names (NULL past the end), for the tests. */
unsigned pmime_classify(const unsigned char *name, size_t n);
unsigned pmime_classify_linear(const unsigned char *name, size_t n);
const char *pmime_header_name(size_t i);

/* ---- pseudo_reid.c ----------------------------------------------------------------- */

/* Append the reid record (current format version) to out; orig_sha256 receives the
 * SHA-256 of the original that the record holds. */
int preid_write(psha *sha, const unsigned char *orig, size_t orig_len, size_t pseudo_len,
                const struct pedit *edits, size_t n_edits, pbuf *out,
                unsigned char orig_sha256[32], mr_error *err);

/* ---- pseudo.c (test hooks) ---------------------------------------------------------- */

#define PSEUDO_TEST_FORCE_WHOLE 0x1u   /* exercise the whole-message fallback */

int pseudo_message_ex(const pseudo_key *key, const struct pseudo_policy *policy,
                      const unsigned char *msg, size_t len, unsigned test_flags,
                      pseudo_result **out, mr_error *err);
int pseudo_session_message_ex(pseudo_session *s, const unsigned char *msg, size_t len,
                              unsigned test_flags, pseudo_result **out, mr_error *err);
/* True when the message was replaced as a whole (fallback). */
bool pseudo_result_is_whole(const pseudo_result *res);

#endif

/*
 * pseudo.h — the pseudonymiser: one RFC 5322 message in, its pseudonymised form out, plus
 * the re-identification data that turns it back byte for byte.  Pure: no I/O, no global
 * state, thread-safe (archive workers call it in parallel with their own results).
 *
 * Contract: for every input m (malformed MIME, NUL bytes, bare CR/LF, 8-bit, 0 bytes, huge)
 *   pseudo_restore(pseudo_message(m).bytes, pseudo_message(m).reid) == m, byte for byte.
 * A part that cannot be understood is left as it is or replaced whole; never lossy.
 *
 * Tokens: HMAC-SHA-256 under the pseudonym key over kind || 0x00 || normalised value,
 * truncated and written in lower-case base32 (PSEUDO_TOKEN_LEN characters).  Shapes:
 *   address  p-<token>@pseudonym.invalid     CPR   CPR-<token>
 *   phone    TLF-<token>                      name  Navn-<token>
 *   IP       IP-<token>
 */
#ifndef MAILRET_PSEUDO_PSEUDO_H
#define MAILRET_PSEUDO_PSEUDO_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define PSEUDO_KEY_LEN 32
#define PSEUDO_TOKEN_LEN 16     /* base32 characters: 80 bits of the HMAC */

enum pseudo_kind {
    PSEUDO_EMAIL = 0,
    PSEUDO_CPR = 1,
    PSEUDO_PHONE = 2,
    PSEUDO_NAME = 3,
    PSEUDO_IP = 4,
};
#define PSEUDO_KIND_COUNT 5

/* Short name of a kind: "email", "cpr", "phone", "name", "ip". */
const char *pseudo_kind_name(enum pseudo_kind kind);

typedef struct pseudo_key {
    unsigned char bytes[PSEUDO_KEY_LEN];
} pseudo_key;

/* What to replace.  pseudo_policy_default() turns everything on and keeps nothing. */
struct pseudo_policy {
    bool emails, cpr, phones, names, ips;
    const char *const *own_domains;     /* the fund's domains, kept as they are */
    size_t n_own_domains;
    const char *const *own_addresses;   /* the fund's addresses, kept as they are */
    size_t n_own_addresses;
    /* A part the scanner cannot read (not text, or text in a charset or encoding it does
     * not decode) is sealed: its body goes into the reid data and the archived message
     * gets a placeholder.  Patterns decide per part (any case): a type
     * ("application/pdf"), a top-level type with any subtype ("image/" and an asterisk)
     * or any type (an asterisk alone, or asterisk/asterisk).  The most specific match
     * wins, seal over keep at equal specificity; a part no pattern matches is sealed.
     * keep_types leaves the part as it is (in clear, apart from its file name). */
    const char *const *keep_types;
    size_t n_keep_types;
    const char *const *seal_types;
    size_t n_seal_types;
};

/* Is a type pattern well formed (one of the three shapes above)? */
bool pseudo_type_pattern_valid(const char *pattern);
void pseudo_policy_default(struct pseudo_policy *policy);

typedef struct pseudo_result pseudo_result;

/* Pseudonymise one message.  On success *out holds the result (free with
 * pseudo_result_free). */
int pseudo_message(const pseudo_key *key, const struct pseudo_policy *policy,
                   const unsigned char *msg, size_t len, pseudo_result **out, mr_error *err);

/* A session pseudonymises many messages, one at a time, under one key and policy: the
 * same results as pseudo_message, but the buffers and the HMAC key schedule are kept from
 * one message to the next (faster by the fixed cost of a message; nothing learnt from
 * one message — names, addresses, tokens — is used for another).  One per thread: a
 * session is not shared.  The key is copied (and wiped by pseudo_session_free); the
 * policy struct is copied, the strings it points to must outlive the session. */
typedef struct pseudo_session pseudo_session;

int pseudo_session_new(const pseudo_key *key, const struct pseudo_policy *policy,
                       pseudo_session **out, mr_error *err);
int pseudo_session_message(pseudo_session *s, const unsigned char *msg, size_t len,
                           pseudo_result **out, mr_error *err);
void pseudo_session_free(pseudo_session *s);

/* The pseudonymised message bytes. */
const unsigned char *pseudo_result_bytes(const pseudo_result *res, size_t *len);

/* The re-identification data (an opaque, self-delimiting byte string, versioned). */
const unsigned char *pseudo_result_reid(const pseudo_result *res, size_t *len);

/* The SHA-256 (32 bytes) of the original message, as computed for the reid data (which
 * holds it to verify the restore): callers that need the original's digest, e.g. for an
 * index, take it from here instead of hashing the message a second time.  Valid until
 * pseudo_result_free. */
const unsigned char *pseudo_result_original_sha256(const pseudo_result *res);

/* Parts of the message that were sealed (at every level, nested messages included). */
size_t pseudo_result_sealed_count(const pseudo_result *res);

/* Distinct tokens found in the message, in first-seen order (kind + token, never value). */
size_t pseudo_result_token_count(const pseudo_result *res);
int pseudo_result_token(const pseudo_result *res, size_t i, enum pseudo_kind *kind,
                        const char **token);

void pseudo_result_free(pseudo_result *res);

/* Rebuild the original bytes.  *out is malloc'd.  Fails with MR_E_PARSE/MR_E_TAMPERED if
 * the reid data does not belong to these bytes. */
int pseudo_restore(const unsigned char *pseudo, size_t pseudo_len, const unsigned char *reid,
                   size_t reid_len, unsigned char **out, size_t *out_len, mr_error *err);
/* The same, and sha256 (32 bytes) receives the SHA-256 of the restored bytes, which the
 * restore has just computed to check them against the reid data: a caller comparing the
 * original with a digest it holds (an index, the fetched bytes) need not hash it again. */
int pseudo_restore_digest(const unsigned char *pseudo, size_t pseudo_len,
                          const unsigned char *reid, size_t reid_len, unsigned char **out,
                          size_t *out_len, unsigned char sha256[32], mr_error *err);

/* The token a value gets (for restore selection and erasure requests).  value is raw
 * (e.g. "Anna@Example.DK" or "010203-1234"); it is normalised as the scanner does.
 * out receives the bare token (PSEUDO_TOKEN_LEN chars + NUL). */
int pseudo_token(const pseudo_key *key, enum pseudo_kind kind, const char *value,
                 char out[PSEUDO_TOKEN_LEN + 1], mr_error *err);

#endif

/*
 * ledger.h — the erasure ledger ([state] erasure_ledger), the one module that writes and
 * reads it.  A person's erasure request is recorded as the tokens their identifiers get
 * under the pseudonym key ("kind:token", e.g. "cpr:ab12..."), never the identifier.
 * Archives stay immutable; every restore leaves out the messages that carry a listed token.
 *
 * The host can append but not read: each entry is sealed (CMS AuthEnvelopedData,
 * AES-256-GCM) to IT's certificate and the plaintext is never stored, because with the
 * pseudonym key the tokens of CPR and phone numbers can be reversed by brute force.
 * The ledger is authenticated so that IT notices a removed, reordered, altered or
 * truncated ledger:
 *
 *   mailret-ledger/2
 *   <seq> <signer id> <sealed entry, base64 DER> <chain hex> <signature hex>
 *
 * seq counts from 1; chain_n = SHA-256("mailret-ledger/2" NUL, seq as 8 bytes big-endian,
 * chain_{n-1} (32 zero bytes for the first), the sealed DER); the signature is the host
 * signing key's Ed25519 signature over "mailret-ledger/2 <seq> <chain hex>".  Cutting
 * entries off the end leaves a valid shorter ledger, so every signed manifest records the
 * ledger's count and head (struct ledger_anchor) at the time, and IT checks the ledger
 * against every manifest it has (ledger_check_anchor).
 */
#ifndef MAILRET_BACKUP_LEDGER_H
#define MAILRET_BACKUP_LEDGER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pseudo/pseudo.h"
#include "common/audit.h"
#include "common/error.h"
#include "keys/keys.h"

#define LEDGER_HEAD_HEX 65      /* 64 hex digits + NUL */

/* Where a ledger stands: how many entries and the chain value of the last (64 zeros for
 * an empty ledger). */
struct ledger_anchor {
    unsigned long long count;
    char head[LEDGER_HEAD_HEX];
};

/* The entry for one identifier: "<kind>:<token>" into out (at least 48 bytes). */
int ledger_entry(const pseudo_key *key, enum pseudo_kind kind, const char *identifier,
                 char *out, size_t size, mr_error *err);

/* ---- host side ---------------------------------------------------------------------- */

struct ledger_writer {
    const char *path;
    X509 *it_cert;                  /* entries are sealed to this certificate */
    EVP_PKEY *signer;               /* the host's signing key */
    const keys_keyring *keyring;    /* to check the existing entries' signatures */
    audit_log *audit;               /* NULL only in unit tests */
};

/* Make the ledger ready to anchor or append to: create an empty one when missing, seal a
 * ledger in the old plaintext format ("kind:token" lines; each entry sealed, then the
 * plaintext file's bytes overwritten; audited as erasure.ledger_sealed), and check the
 * chain and signatures of an existing one (MR_E_TAMPERED naming the cause).  *anchor
 * (may be NULL) receives where it stands. */
int ledger_prepare(const struct ledger_writer *w, struct ledger_anchor *anchor,
                   mr_error *err);

/* Append one sealed entry ("kind:token"); callable several times per erasure (one token
 * per pseudonym key).  Durable; audited as erasure.record with the new seq and head,
 * never the token.  Entries are not de-duplicated: the host cannot read them. */
int ledger_append(const struct ledger_writer *w, const char *entry,
                  struct ledger_anchor *anchor, mr_error *err);

/* ---- IT side ------------------------------------------------------------------------ */

typedef struct ledger_reader ledger_reader;

/* Read and authenticate: header, seq, chain and every signature by a key in keyring.
 * MR_E_TAMPERED names the line and the cause; MR_E_UNSUPPORTED for a plaintext ledger
 * (with the command that seals it). */
int ledger_open(const char *path, const keys_keyring *keyring, ledger_reader **out, mr_error *err);
void ledger_free(ledger_reader *l);
void ledger_anchor_get(const ledger_reader *l, struct ledger_anchor *out);
/* The ledger holds a->count entries or more and entry a->count's chain value is a->head:
 * otherwise MR_E_TAMPERED (truncated to an older state, or rewritten). */
int ledger_check_anchor(const ledger_reader *l, const struct ledger_anchor *a, mr_error *err);
/* Unseal every entry with IT's private key: *entries is a malloc'd array of malloc'd
 * "kind:token" strings (free with ledger_entries_free). */
int ledger_entries(const ledger_reader *l, EVP_PKEY *it_key, char ***entries, size_t *n,
                   mr_error *err);
void ledger_entries_free(char **entries, size_t n);

#endif

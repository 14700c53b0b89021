/*
 * keys.h — mailret's key hierarchy (see docs/ARCHIVE.md, "Keys"):
 *
 *   IT restore key pair     created by `keys init-it` on IT's machine; the private key is a
 *                           passphrase-encrypted PKCS#8 PEM that never reaches the host,
 *                           the self-signed certificate is installed on the host.
 *   re-identification cert  the holder of re-identification data (by default IT's cert).
 *   pseudonym keys          32 random bytes per epoch, 0600 on the host, plus a copy sealed
 *                           to the re-identification holder.
 *   manifest key            32 random bytes, 0600 on the host: HMAC of batch manifests.
 *   epoch key pairs         EC P-256, two per batch (content, re-identification), made at
 *                           backup time, private halves sealed (CMS AuthEnvelopedData,
 *                           AES-256-GCM) to the holder's certificate into the key vault,
 *                           then wiped from memory.  Shredding the sealed file is what
 *                           makes an expired batch unrecoverable.
 *
 * Vault layout (a directory apart from the archive directory), per epoch key id:
 *   <id>.key.p7m   the sealed private key (DER; `openssl cms -decrypt` opens it)
 *   <id>.crt.pem   the epoch certificate (public)
 *   <id>.json      metadata: id, role, holder, batch, created, expires (no secrets)
 *
 * Every operation that creates, unseals, forgets or shreds a key appends an audit record
 * when given an audit log (the CLI always gives one; NULL is for unit tests only).
 */
#ifndef MAILRET_KEYS_KEYS_H
#define MAILRET_KEYS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/audit.h"
#include "common/error.h"

/* Key ids: the first 16 bytes of SHA-256 over the DER SubjectPublicKeyInfo, in hex. */
#define KEYS_ID_LEN 32
#define KEYS_SECRET_LEN 32          /* pseudonym and (legacy) manifest keys */
#define KEYS_FPR_LEN 64             /* SHA-256 fingerprints, hex */

/* ---- secrets (passphrases) ---------------------------------------------------------- */

/* Where a passphrase comes from, tried in this order: file, environment variable, terminal.
 * A file readable or writable by group/other is refused (MR_E_PERM).  Never argv. */
struct keys_secret_source {
    const char *file;       /* path or NULL */
    const char *env;        /* name of an environment variable or NULL */
    bool terminal;          /* prompt on /dev/tty (echo off) if nothing else was given */
    const char *prompt;     /* for the terminal; NULL = "Passphrase: " */
    bool confirm;           /* terminal: ask twice (creating a key) */
};

/* File and environment go through common/secret.h (same checks as every secret); the
 * terminal prompt is the one thing added here.  *out is malloc'd, NUL-terminated, trailing
 * newline removed; free with secret_free. */
int keys_secret_read(const struct keys_secret_source *src, char **out, mr_error *err);

/* Read a raw 32-byte key file (pseudonym or manifest key), checking its mode. */
int keys_secret_key_read(const char *path, unsigned char out[KEYS_SECRET_LEN], mr_error *err);

/* A short, non-secret id of a raw key (HMAC-SHA-256(key, "mailret key id"), 8 bytes hex). */
void keys_secret_key_id(const unsigned char key[KEYS_SECRET_LEN], char out[17]);

/* ---- certificates and key pairs -------------------------------------------------------- */

enum keys_algo { KEYS_ALGO_P256 = 0, KEYS_ALGO_RSA3072 = 1 };

int keys_generate(enum keys_algo algo, EVP_PKEY **out, mr_error *err);
/* Self-signed certificate for pkey, valid from now for `days`, CN = cn. */
int keys_self_signed(EVP_PKEY *pkey, const char *cn, int days, X509 **out, mr_error *err);
int keys_key_id(EVP_PKEY *pkey, char out[KEYS_ID_LEN + 1], mr_error *err);

int keys_cert_load(const char *path, X509 **out, mr_error *err);
/* Load a (possibly passphrase-encrypted) PEM private key; passphrase may be NULL. */
int keys_private_load(const char *path, const char *passphrase, EVP_PKEY **out, mr_error *err);
/* True if pkey is the private half of cert's public key. */
bool keys_cert_matches(X509 *cert, EVP_PKEY *pkey);

/* ---- sealing: CMS AuthEnvelopedData (AES-256-GCM) to one certificate -------------------- */

/* Seal data to recipient and write it durably to path with mode (refuses to overwrite). */
int keys_seal_file(const unsigned char *data, size_t len, X509 *recipient, const char *path,
                   mr_error *err);
/* Open a sealed file with pkey.  *out is malloc'd; wipe with keys_wipe_free(*out, *len). */
int keys_unseal_file(const char *path, EVP_PKEY *pkey, unsigned char **out, size_t *len,
                     mr_error *err);
void keys_wipe_free(void *p, size_t len);

/* ---- init-it and init-host ---------------------------------------------------------------- */

struct keys_it_options {
    const char *key_path;       /* encrypted PKCS#8 PEM, written 0600 */
    const char *cert_path;      /* self-signed certificate, 0644 */
    const char *common_name;    /* NULL = "mailret IT restore" */
    int days;                   /* certificate validity; 0 = 10 years */
    enum keys_algo algo;
    const char *passphrase;     /* required, at least KEYS_IT_PASSPHRASE_MIN characters */
};
#define KEYS_IT_PASSPHRASE_MIN 12
#define KEYS_IT_PBKDF2_ITER 600000
int keys_init_it(const struct keys_it_options *opt, audit_log *audit,
                 char key_id[KEYS_ID_LEN + 1], mr_error *err);

struct keys_host_options {
    const char *it_cert_source;     /* IT's certificate as handed over by IT */
    const char *reid_cert_source;   /* NULL = IT's */
    const char *it_cert;            /* where to install them */
    const char *reid_cert;
    const char *pseudonym_key_file; /* 0600; epoch 0 of the pseudonym key */
    const char *vault_dir;          /* its copy sealed to the re-identification holder */
    const char *signing_key_file;   /* Ed25519, 0600 */
    const char *host_keyring;       /* its public key is appended here (public) */
    /* Disaster recovery: a host that continues an existing archive.  No pseudonym key is
     * made (IT re-provisions the archive's with keys_pseudonym_import), and the public
     * keys in previous_keyring (the earlier hosts' keys as IT pinned them) are put into
     * the keyring first, so batches they signed keep verifying here. */
    bool recover;
    const char *previous_keyring;   /* may be NULL */
    /* out: the signing key's id and fingerprint, for IT to pin */
    char signing_id[KEYS_ID_LEN + 1];
    char signing_fpr[KEYS_FPR_LEN + 1];
};
/* Refuses (MR_E_EXISTS) to replace an existing pseudonym or signing key: that would
 * orphan every archive's tokens and signatures. */
int keys_init_host(struct keys_host_options *opt, audit_log *audit, mr_error *err);

/* ---- pseudonym keys, by epoch ------------------------------------------------------------ */

/* The pseudonym key has epochs 0, 1, 2, ...: epoch 0 is the key `init-host` made; `keys
 * rotate-pseudonym` adds the next one.  New batches use the newest epoch and name it in
 * their manifest (no epoch named: 0); finding or erasing a person means computing their
 * token under every epoch.  On the host each epoch is a raw 32-byte file (epoch 0 is
 * [keys] pseudonym_key_file itself, epoch N "<that file>.N"); in the vault each has a copy
 * sealed to the re-identification holder (never to the content holder).  Only this module
 * names these files. */
#define KEYS_PSEUDONYM_EPOCH_MAX 9999

struct keys_pseudonym {
    unsigned epoch;
    unsigned char key[KEYS_SECRET_LEN];
    char id[17];                    /* keys_secret_key_id */
};
/* Every epoch's key, ascending by epoch; wipe with keys_pseudonym_set_free. */
struct keys_pseudonym_set {
    struct keys_pseudonym *v;
    size_t n;
};
void keys_pseudonym_set_free(struct keys_pseudonym_set *s);
/* The newest epoch (NULL for an empty set). */
const struct keys_pseudonym *keys_pseudonym_current(const struct keys_pseudonym_set *s);

/* The host's file of `epoch` and the vault's sealed copy of it, into buf. */
int keys_pseudonym_host_path(const char *key_file, unsigned epoch, char *buf, size_t size,
                             mr_error *err);
int keys_pseudonym_sealed_path(const char *vault_dir, unsigned epoch, char *buf,
                               size_t size, mr_error *err);

/* Host: every epoch from the host's files.  Epoch 0 must be there (MR_E_NOTFOUND). */
int keys_pseudonym_load_host(const char *key_file, struct keys_pseudonym_set *out,
                             mr_error *err);
/* IT: every epoch sealed in the vault, each unsealed with the first of holders[] that
 * opens it (the re-identification holder's key; IT's for vaults sealed before the copies
 * went to the re-identification holder).  Audited (keys.pseudonym.unseal).  MR_E_NOTFOUND
 * when the vault holds none; MR_E_CRYPTO when a copy opens with none of the keys. */
int keys_pseudonym_load_sealed(const char *vault_dir, EVP_PKEY *const *holders,
                               size_t n_holders, audit_log *audit,
                               struct keys_pseudonym_set *out, mr_error *err);

/* Make epoch 0 (init-host): refuses MR_E_EXISTS if the host file is there.  The sealed
 * copy is written first: no token is ever made with a key the holder cannot recover. */
int keys_pseudonym_create(const char *key_file, const char *vault_dir, X509 *holder,
                          char id[17], mr_error *err);
/* A new epoch, one past the highest on the host or in the vault: sealed to holder into the
 * vault, then the host file.  Audited (keys.pseudonym.rotate). */
int keys_pseudonym_rotate(const char *key_file, const char *vault_dir, X509 *holder,
                          audit_log *audit, unsigned *epoch, char id[17], mr_error *err);
/* Seal every epoch of the host's key again to holder (e.g. after [keys] reid_cert was set
 * on a host whose copies went to IT), replacing the vault's copies.  Audited. */
int keys_pseudonym_reseal(const char *key_file, const char *vault_dir, X509 *holder,
                          audit_log *audit, size_t *n, mr_error *err);

/* Disaster recovery, three steps.  The new host makes a one-time transfer key pair (the
 * private half 0600 beside key_file, the certificate written to request_out for IT); IT
 * exports every epoch of the archive's pseudonym key sealed to that certificate; the new
 * host imports the file: each epoch's host file is written (an identical one is kept, a
 * different one refused MR_E_EXISTS), a copy sealed to holder goes to the vault where
 * missing, and the transfer key is shredded.  All audited. */
int keys_pseudonym_request(const char *key_file, const char *request_out, audit_log *audit,
                           mr_error *err);
int keys_pseudonym_export(const struct keys_pseudonym_set *s, X509 *recipient,
                          const char *out_path, audit_log *audit, mr_error *err);
int keys_pseudonym_import(const char *bundle, const char *key_file, const char *vault_dir,
                          X509 *holder, audit_log *audit, size_t *n, mr_error *err);

/* Append to keyring_path every public key in from_path it does not hold yet (each must be
 * Ed25519); *added says how many.  Audited (keys.keyring.import). */
int keys_keyring_import(const char *keyring_path, const char *from_path, audit_log *audit,
                        size_t *added, mr_error *err);

/* ---- epoch keys --------------------------------------------------------------------------- */

enum keys_epoch_role { KEYS_EPOCH_CONTENT = 0, KEYS_EPOCH_REID = 1 };
const char *keys_epoch_role_name(enum keys_epoch_role role);

typedef struct keys_epoch keys_epoch;

struct keys_epoch_options {
    const char *vault_dir;
    enum keys_epoch_role role;
    X509 *holder;               /* the certificate the private half is sealed to */
    const char *holder_name;    /* "it" or "reid" — a role name, never a person's name */
    const char *batch_id;
    time_t created, expires;
};

/* Generate a P-256 pair and a self-signed certificate; write the metadata (naming the
 * batch), the certificate and the sealed private half into the vault, in that order and
 * each durably, before returning: a volume is never encrypted to a key whose sealed copy
 * is not on disk, and a kill at any point leaves nothing the batch's discard cannot find
 * by its metadata. */
int keys_epoch_create(const struct keys_epoch_options *opt, audit_log *audit,
                      keys_epoch **out, mr_error *err);
const char *keys_epoch_id(const keys_epoch *ep);
X509 *keys_epoch_cert(const keys_epoch *ep);
/* The private half, NULL once forgotten (or for an unsealed-only handle). */
EVP_PKEY *keys_epoch_private(const keys_epoch *ep);
/* Drop the private half (EVP_PKEY_free wipes it); audited. */
void keys_epoch_forget(keys_epoch *ep, audit_log *audit);
void keys_epoch_free(keys_epoch *ep);

/* IT side: open <vault>/<id>.key.p7m with the holder's private key. */
int keys_epoch_unseal(const char *vault_dir, const char *key_id, EVP_PKEY *holder_key,
                      audit_log *audit, EVP_PKEY **out, mr_error *err);

/* expire: shred the sealed private key (and certificate and metadata); audited.  A key
 * that is already gone is not an error (expire may be re-run after a crash). */
int keys_epoch_shred(const char *vault_dir, const char *key_id, audit_log *audit,
                     mr_error *err);

/* True if name (a file name in the vault) is one of an epoch key's files: sealed key,
 * certificate or metadata; id receives the key's id.  Readers of the vault use this
 * instead of spelling the names. */
bool keys_vault_epoch_file(const char *name, char id[KEYS_ID_LEN + 1]);

/* True if the sealed private key of key_id is in the vault. */
bool keys_epoch_present(const char *vault_dir, const char *key_id);

/* SHA-256 (hex) of the DER certificate: what a signed manifest records per epoch key. */
int keys_cert_fingerprint(X509 *cert, char out[KEYS_FPR_LEN + 1], mr_error *err);
/* <vault>/<id>.crt.pem (MR_E_NOTFOUND when it is gone); X509_free it. */
int keys_epoch_cert_load(const char *vault_dir, const char *key_id, X509 **out,
                         mr_error *err);
/* The fingerprint of <vault>/<id>.crt.pem (MR_E_NOTFOUND when it is gone). */
int keys_epoch_cert_fingerprint(const char *vault_dir, const char *key_id,
                                char out[KEYS_FPR_LEN + 1], mr_error *err);
/* From <vault>/<id>.json: the batch the key was made for and when it expires.  Used when
 * a batch's manifest cannot be trusted, to decide on the vault's own record whether its
 * keys are past expiry. */
int keys_epoch_meta_read(const char *vault_dir, const char *key_id, char batch[80],
                         time_t *expires, mr_error *err);

/* ---- host signing key and pinned host keys ------------------------------------------- */

/* Ed25519.  The private key is an unencrypted PKCS#8 PEM, 0600, on the host only
 * ([keys] signing_key_file); its public halves, current and earlier, are the keyring
 * ([keys] host_keyring, PEM "PUBLIC KEY" blocks, public), which IT copies and pins.
 * A key's id is keys_key_id (16 bytes of SHA-256 over the SubjectPublicKeyInfo); its
 * fingerprint the full SHA-256, in hex. */
#define KEYS_SIG_LEN 64

int keys_fingerprint(EVP_PKEY *pkey, char out[KEYS_FPR_LEN + 1], mr_error *err);
int keys_signing_load(const char *path, EVP_PKEY **out, mr_error *err);
int keys_sign(EVP_PKEY *key, const void *msg, size_t len, unsigned char sig[KEYS_SIG_LEN],
              mr_error *err);
/* Create the signing key (rotate false: refuses MR_E_EXISTS if there is one) or replace
 * it (rotate true: the old public key stays in the keyring, the old private key is
 * shredded).  The new public key is appended to the keyring before the private key is
 * installed.  Audited (keys.signing.create / keys.signing.rotate). */
int keys_signing_new(const char *key_path, const char *keyring_path, bool rotate,
                     audit_log *audit, char id[KEYS_ID_LEN + 1], char fpr[KEYS_FPR_LEN + 1],
                     mr_error *err);

typedef struct keys_keyring keys_keyring;
keys_keyring *keys_keyring_new(void);      /* NULL when out of memory */
void keys_keyring_free(keys_keyring *kr);
/* Add every PEM public key in path (at least one; each must be Ed25519). */
int keys_keyring_add_file(keys_keyring *kr, const char *path, mr_error *err);
/* Add pub's public half (a private key's public half when given one). */
int keys_keyring_add(keys_keyring *kr, EVP_PKEY *pub, mr_error *err);
size_t keys_keyring_size(const keys_keyring *kr);
const char *keys_keyring_id(const keys_keyring *kr, size_t i);
bool keys_keyring_has(const keys_keyring *kr, const char *id);
/* 0 if sig is signer's signature over msg and signer is pinned; MR_E_TAMPERED otherwise
 * (the message says which: not pinned, or does not verify). */
int keys_keyring_verify(const keys_keyring *kr, const char *signer, const void *msg,
                        size_t len, const unsigned char sig[KEYS_SIG_LEN], mr_error *err);

/* ---- listing ------------------------------------------------------------------------------ */

struct keys_entry {
    char id[KEYS_ID_LEN + 1];
    char kind[24];          /* "it-cert", "reid-cert", "pseudonym", "manifest-legacy",
                               "host-signing", "epoch-content", "epoch-reid" */
    char holder[64];
    char batch[80];
    char created[24];       /* YYYY-MM-DDTHH:MM:SSZ or "" */
    char expires[24];
    bool sealed_present;    /* epoch keys: the sealed private key is in the vault */
};

struct keys_list_options {
    const char *vault_dir;          /* may be NULL */
    const char *it_cert, *reid_cert;    /* may be NULL */
    const char *pseudonym_key_file, *manifest_key_file;     /* may be NULL */
    const char *signing_key_file, *host_keyring;            /* may be NULL */
};
/* *out is malloc'd (free()). */
int keys_list(const struct keys_list_options *opt, struct keys_entry **out, size_t *n,
              mr_error *err);

#endif

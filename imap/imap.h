/*
 * imap.h — mailret's IMAP client: the one driver every command uses to talk to the server.
 *
 * Built on libetpan's IMAP parser, but over a mailstream of our own on an OpenSSL SSL*
 * that we connect and verify ourselves (chain + host name, before LOGIN, after STARTTLS
 * too): Debian's libetpan is built on GnuTLS and verifies nothing.  Our stream also turns
 * EOF in the middle of a literal into an error (libetpan 1.9.4 would spin), enforces a
 * timeout on every read and write, and FETCH streams message bodies to the caller one at a
 * time with a cap on the literal size, so memory is bounded by the largest message.
 *
 * All functions follow common/error.h: 0 or a negative MR_E_* code, with err filled.
 * Codes: MR_E_NETWORK (refused, reset, EOF, BYE), MR_E_TIMEOUT (connect_timeout_s or
 * io_timeout_s passed), MR_E_TLS (handshake, chain, host name, no STARTTLS offered, data
 * injected before the handshake), MR_E_AUTH (LOGIN refused), MR_E_PROTOCOL (NO/BAD, e.g.
 * a missing mailbox — the session stays usable), MR_E_UNSUPPORTED (no UIDPLUS).
 * After a transport failure, an unparseable response, or a fetch stopped by its callback
 * mid-response, the connection is unusable: every later call returns MR_E_STATE at once;
 * imap_close it (no LOGOUT round trip is attempted) and connect again.
 */
#ifndef MAILRET_IMAP_IMAP_H
#define MAILRET_IMAP_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"

typedef struct imap_conn imap_conn;

enum imap_tls_mode {
    IMAP_TLS_IMAPS = 0,     /* TLS from the first byte (port 993) — the default */
    IMAP_TLS_STARTTLS = 1,  /* plain connect, STARTTLS required; never falls back */
};

/* How to log in.  Every way sends a credential, so each needs TLS first (imap_connect
 * refuses otherwise).  The SASL ones need the server to advertise AUTH=<mechanism>; the
 * client's response goes with the command when the server offers SASL-IR (RFC 4959), else
 * after the server's empty challenge. */
enum imap_auth {
    IMAP_AUTH_LOGIN = 0,        /* the LOGIN command */
    IMAP_AUTH_PLAIN = 1,        /* SASL PLAIN (RFC 4616) */
    IMAP_AUTH_XOAUTH2 = 2,      /* SASL XOAUTH2: user + OAuth 2.0 access token */
    IMAP_AUTH_OAUTHBEARER = 3,  /* SASL OAUTHBEARER (RFC 7628) */
};

/* Obtains the secret (password or access token) for one connection: called by
 * imap_connect once per connection, before it connects, so that a token command gives a
 * fresh token each time.  *secret is malloc'd; imap wipes and frees it (secret_free). */
typedef int (*imap_secret_fn)(void *ctx, char **secret, mr_error *err);

struct imap_options {
    const char *host;           /* name or address to connect to */
    int port;                   /* 0 = 993 for IMAPS, 143 for STARTTLS */
    enum imap_tls_mode tls;
    const char *ca_file;        /* PEM bundle; NULL = the system's trust store */
    bool insecure_skip_verify;  /* tests only: no chain/host check; logged loudly */
    const char *user;
    const char *password;       /* read by the caller from a file or the environment */
    imap_secret_fn secret_fn;   /* if set, asked instead of password, once per connection */
    void *secret_ctx;
    enum imap_auth auth;        /* default IMAP_AUTH_LOGIN */
    int throttle_max_wait_s;    /* total backoff a server may ask for (Exchange: "Request
                                   is throttled. Suggested Backoff Time: N milliseconds")
                                   per connection; each wait is at most 60 s; 0 = never
                                   wait, the command fails */
    bool plaintext_auth_for_tests;  /* imap_connect_fd only: allow credentials without TLS
                                       (the fuzz target's socketpair); imap_connect ignores it */
    int connect_timeout_s;      /* 0 = 30 */
    int io_timeout_s;           /* every read and write; 0 = 120 */
    size_t max_literal;         /* largest literal accepted; 0 = 256 MiB */
    mr_log *log;                /* optional (NULL = silent): warnings such as insecure mode */
};

struct imap_mailbox_info {
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint32_t exists;
};

/* One message as fetched by imap_uid_fetch.  The pointers are valid only during the
 * callback.  flags is a space-separated IMAP flag list without parentheses
 * ("\\Seen \\Answered"), never NULL; the session flag \\Recent is left out (it cannot
 * be stored or re-APPENDed). */
struct imap_message {
    uint32_t uid;
    time_t internaldate;        /* seconds since the epoch, UTC */
    int internaldate_tz_min;    /* the server's zone offset in minutes, for re-APPEND */
    uint32_t rfc822_size;       /* as the server announced it */
    const char *flags;
    const unsigned char *body;  /* BODY.PEEK[] bytes, exact */
    size_t body_len;
    bool oversized;             /* body over max_literal: body is NULL, body_len 0 */
};

/* Return 0 to continue, or a negative MR_E_* code (with err set) to stop the fetch; the
 * fetch then returns that code and message.  Only UIDs that were asked for are passed on
 * ("UID n:*" makes servers return the highest message even when its UID is below n).  A
 * server answering NIL for a body is an error (MR_E_PROTOCOL), never an empty message. */
typedef int (*imap_message_fn)(void *ctx, const struct imap_message *msg, mr_error *err);

/* Connect, negotiate TLS, verify the server's certificate and host name, log in.  A login
 * refused by the server is MR_E_AUTH with one line naming the cause (for the OAuth
 * mechanisms the server's status, e.g. "token rejected: invalid_token"); the credential
 * never appears in a message. */
int imap_connect(const struct imap_options *opt, imap_conn **out, mr_error *err);

/* The same session over a socket that is already connected, in plain text: greeting,
 * LOGIN unless pre-authenticated, capabilities (opt->host only names the server in
 * messages; port, tls and ca_file are not used).  Credentials are refused (MR_E_TLS,
 * before anything is sent) unless opt->plaintext_auth_for_tests.  For tests that bring their own
 * transport — the fuzz target runs it on a socketpair — never for a real server.  The
 * connection owns fd from here, and on failure fd is closed. */
int imap_connect_fd(int fd, const struct imap_options *opt, imap_conn **out, mr_error *err);

/* LOGOUT (best effort) and free.  NULL is allowed. */
void imap_close(imap_conn *conn);

/* False once the connection failed (transport, parse error, BYE): only imap_close is
 * left.  After a NO or BAD the session stays usable. */
bool imap_usable(const imap_conn *conn);

/* True if the server advertised this capability after login (e.g. "UIDPLUS"). */
bool imap_has_capability(imap_conn *conn, const char *name);

/* EXAMINE (read-only, what ingest and backup use) or SELECT (read-write, purge). */
int imap_examine(imap_conn *conn, const char *mailbox, struct imap_mailbox_info *info,
                 mr_error *err);
int imap_select(imap_conn *conn, const char *mailbox, struct imap_mailbox_info *info,
                mr_error *err);

/* CREATE, tolerating "already exists" when exist_ok. */
int imap_create(imap_conn *conn, const char *mailbox, bool exist_ok, mr_error *err);

/* UID SEARCH: UIDs in [first, last] (last 0 = '*'), and, if before is not 0, with
 * INTERNALDATE before that day (IMAP BEFORE compares dates in the server's zone; the
 * caller re-checks exact INTERNALDATE from FETCH).  *uids is malloc'd, ascending.
 * Because IMAP BEFORE only knows whole days in the server's zone, the result is a
 * SUPERSET: every message with INTERNALDATE < before is in it, and so may be messages up
 * to about two days later; the caller must filter by the exact INTERNALDATE.  UIDs
 * outside [first, last] are never returned (even though "n:*" matches the highest UID). */
int imap_uid_search(imap_conn *conn, uint32_t first, uint32_t last, time_t before,
                    uint32_t **uids, size_t *n_uids, mr_error *err);

/* UID SEARCH DELETED: the UIDs that carry \Deleted (purge checks, before a plain EXPUNGE
 * on a server without UIDPLUS, that no one else's message would go with it). */
int imap_uid_search_deleted(imap_conn *conn, uint32_t **uids, size_t *n_uids, mr_error *err);

/* UID FETCH first:last (UID INTERNALDATE RFC822.SIZE FLAGS BODY.PEEK[]); last 0 = '*'.
 * Calls fn once per message, in the server's order, streaming: one message in memory. */
int imap_uid_fetch(imap_conn *conn, uint32_t first, uint32_t last, imap_message_fn fn,
                   void *ctx, mr_error *err);

/* As imap_uid_fetch for an explicit UID set (sorted ascending; sent in compact ranges). */
int imap_uid_fetch_set(imap_conn *conn, const uint32_t *uids, size_t n_uids,
                       imap_message_fn fn, void *ctx, mr_error *err);

/* UID STORE +FLAGS.SILENT (\Deleted) on the set; then UID EXPUNGE of exactly that set
 * (needs UIDPLUS: returns MR_E_UNSUPPORTED without it). */
int imap_uid_store_deleted(imap_conn *conn, const uint32_t *uids, size_t n_uids,
                           mr_error *err);
int imap_uid_expunge(imap_conn *conn, const uint32_t *uids, size_t n_uids, mr_error *err);

/* Plain EXPUNGE — only for purge's explicit --allow-plain-expunge path. */
int imap_expunge(imap_conn *conn, mr_error *err);

/* APPEND with flags ("\\Seen ..." or "") and INTERNALDATE, which is always sent (0 = the
 * current time, UTC), since Exchange and Outlook date a message by it.
 * libetpan sends bare LF as CRLF (IMAP requires CRLF); CRLF messages go byte for byte.
 * A message holding a NUL byte goes as a BINARY literal8 (RFC 3516) where the server
 * offers BINARY and LITERAL+; elsewhere it is MR_E_UNSUPPORTED, before anything is sent,
 * and the session stays usable (a plain literal cannot carry NUL). */
int imap_append(imap_conn *conn, const char *mailbox, const char *flags,
                time_t internaldate, int tz_min, const unsigned char *msg, size_t len,
                mr_error *err);

#endif

/*
 * imap_sasl.h — private to imap/imap.c: the bytes of the SASL mechanisms mailret speaks
 * (PLAIN, RFC 4616; XOAUTH2, Google's and Microsoft's; OAUTHBEARER, RFC 7628) and the
 * reading of a server's OAuth error challenge.  Pure functions, no I/O.
 */
#ifndef MAILRET_IMAP_IMAP_SASL_H
#define MAILRET_IMAP_IMAP_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "imap/imap.h"

/* The mechanism's name as IMAP spells it ("PLAIN", "XOAUTH2", "OAUTHBEARER"); NULL for
 * IMAP_AUTH_LOGIN. */
const char *imap_sasl_name(enum imap_auth mech);

/* The client's first (and only) response, base64-encoded, malloc'd: the caller wipes it
 * (it holds the secret) and frees it.
 *   PLAIN:        "" NUL user NUL secret            (no authorisation identity)
 *   XOAUTH2:      "user=" user ^A "auth=Bearer " token ^A ^A
 *   OAUTHBEARER:  "n,a=" user' "," ^A "auth=Bearer " token ^A ^A
 *                 (user' with "," as "=2C" and "=" as "=3D", RFC 5801)
 * MR_E_INVALID (message names no value) for a user or secret that cannot be carried:
 * a NUL in either, ^A in the user or a token that is not an RFC 6750 b64token. */
int imap_sasl_initial(enum imap_auth mech, const char *user, const char *secret, char **b64,
                      mr_error *err);

/* A server challenge after the client's response (base64 text as sent after "+ "): for
 * the OAuth mechanisms an error report (RFC 7628 section 3.2.2: JSON with "status").
 * Writes a short, printable cause into buf ("invalid_token", "401"), or "" if there is
 * none that is safe to show (only [A-Za-z0-9_.-], at most 40 characters, is kept). */
void imap_sasl_error_status(const char *b64, char *buf, size_t size);

/* True if text contains the secret or any 12-byte piece of it (all of it if shorter):
 * a server that echoes a credential in its error must not get it into ours. */
bool imap_sasl_mentions(const char *text, const char *secret);

#endif

/*
 * mutf7.h — IMAP mailbox names in modified UTF-7 (RFC 3501 section 5.1.3).
 *
 * mailret's configuration names mailboxes in UTF-8; an IMAP4rev1 server knows them in
 * modified UTF-7: printable US-ASCII stands for itself ("&" as "&-"), every other run of
 * characters is "&" + the modified BASE64 (",", not "/"; no padding) of its UTF-16BE
 * form + "-".  Both directions are strict: the encoder takes only valid UTF-8 without
 * control characters, the decoder only what the RFC allows (no stray bits, no unpaired
 * surrogates, no printable ASCII inside a BASE64 run, no two runs back to back).
 * Results are malloc'd and NUL-terminated.
 */
#ifndef MAILRET_IMAP_MUTF7_H
#define MAILRET_IMAP_MUTF7_H

#include "common/error.h"

/* UTF-8 -> modified UTF-7.  MR_E_INVALID for malformed UTF-8 (overlong forms,
 * surrogates, code points above U+10FFFF) or a control character (below U+0020, U+007F,
 * U+0080..U+009F): none of these can name a mailbox. */
int mutf7_encode(const char *utf8, char **out, mr_error *err);

/* Modified UTF-7 -> UTF-8.  MR_E_INVALID for anything RFC 3501 does not allow. */
int mutf7_decode(const char *mutf7, char **out, mr_error *err);

#endif

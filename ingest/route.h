/*
 * route.h — which member (and case) a message belongs to.  Rules, in this order:
 *   own    From is one of the fund's own addresses or domains          → not routed
 *   auto   auto-reply or bounce: Auto-Submitted, Precedence bulk/junk/list/auto_reply,
 *          X-Autoreply, From MAILER-DAEMON/postmaster, Return-Path <>, multipart/report
 *                                                                      → not routed
 *   case   a case reference in the (RFC 2047-decoded) subject matching the configured
 *          pattern (POSIX ERE, case-insensitive; the case id is the last capture group
 *          that matched) and registered to a member
 *   sender the From address is registered to exactly one member
 *   cpr    a CPR number in the subject or a decoded text part registered to a member
 *   none   nothing matched: unrouted, for manual handling
 * Auto-replies are checked before own addresses: an out-of-office from a colleague is
 * still an auto-reply.  See docs/INGEST.md.
 */
#ifndef MAILRET_INGEST_ROUTE_H
#define MAILRET_INGEST_ROUTE_H

#include <stddef.h>

#include "common/error.h"
#include "ingest/members.h"
#include "ingest/msginfo.h"

/* Matches "Sag 2024-12345", "[Sag #12345]", "sag nr. 12345", "SAG: 2024-00001". */
#define ROUTE_DEFAULT_CASE_PATTERN \
    "(^|[^[:alnum:]])sag[[:space:]]*(nr\\.?|:)?[[:space:]]*#?[[:space:]]*" \
    "([0-9]{4}-[0-9]{1,10}|[0-9]{3,10})"

/* ROUTE_MANUAL is never a routing decision: `mailret unrouted assign` delivers a queued
 * message with it, so that the member system can tell a caseworker's choice from a rule. */
enum route_rule { ROUTE_CASE, ROUTE_SENDER, ROUTE_CPR, ROUTE_NONE, ROUTE_OWN, ROUTE_AUTO,
                  ROUTE_MANUAL };
#define ROUTE_RULE_COUNT 7

struct route_config {
    const char *case_pattern;           /* NULL = ROUTE_DEFAULT_CASE_PATTERN */
    const char *const *own_addresses;   /* compared case-insensitively */
    size_t n_own_addresses;
    const char *const *own_domains;     /* "akasse.dk" also covers "mail.akasse.dk" */
    size_t n_own_domains;
    size_t text_cap;                    /* bytes of each text part searched; 0 = 1 MiB */
};

struct route_result {
    enum route_rule rule;
    char member[MEMBERS_ID_MAX];        /* empty unless routed */
    char case_id[MEMBERS_ID_MAX];       /* empty unless rule == ROUTE_CASE */
};

typedef struct router router;

/* Compile the rules; a bad pattern is MR_E_CONFIG naming the regex error. */
int route_new(const struct route_config *cfg, router **out, mr_error *err);
void route_free(router *r);

/* Decide for one message; info from msginfo_parse of the same bytes. */
int route_message(router *r, members_db *db, const unsigned char *msg, size_t len,
                  const struct msginfo *info, struct route_result *out, mr_error *err);

/* "case", "sender", "cpr", "none", "own", "auto", "manual". */
const char *route_rule_name(enum route_rule rule);

#endif

/* policy.c — what a pseudo_policy decides: its defaults, which part types are kept in
 * clear, and which addresses are the fund's own (kept as they are). */
#include "pseudo/policy.h"

#include <string.h>
#include <strings.h>

void pseudo_policy_default(struct pseudo_policy *policy)
{
    memset(policy, 0, sizeof *policy);
    policy->emails = policy->cpr = policy->phones = policy->names = policy->ips = true;
}

/* A restricted-name character of RFC 6838 (letters, digits and !#$&-^_.+). */
static bool type_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$&-^_.+", c) != NULL);
}

static bool type_token(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!type_char(s[i]))
            return false;
    return true;
}

bool pseudo_type_pattern_valid(const char *pat)
{
    const char *slash;

    if (pat == NULL)
        return false;
    if (strcmp(pat, "*") == 0 || strcmp(pat, "*/*") == 0)
        return true;
    slash = strchr(pat, '/');
    if (slash == NULL || !type_token(pat, (size_t)(slash - pat)))
        return false;
    return strcmp(slash + 1, "*") == 0 || type_token(slash + 1, strlen(slash + 1));
}

/* How specifically pat matches type/subtype: 3 exactly, 2 the type with any subtype,
 * 1 any type, 0 not at all. */
static int type_match(const char *pat, const char *type, const char *subtype)
{
    const char *slash;
    size_t tl;

    if (pat == NULL)
        return 0;
    if (strcmp(pat, "*") == 0 || strcmp(pat, "*/*") == 0)
        return 1;
    slash = strchr(pat, '/');
    if (slash == NULL)
        return 0;
    tl = (size_t)(slash - pat);
    if (strlen(type) != tl || strncasecmp(pat, type, tl) != 0)
        return 0;
    if (strcmp(slash + 1, "*") == 0)
        return 2;
    return strcasecmp(slash + 1, subtype) == 0 ? 3 : 0;
}

bool pseudo_type_kept(const struct pseudo_policy *pol, const char *type, const char *subtype)
{
    int keep = 0, seal = 0;

    for (size_t i = 0; i < pol->n_keep_types; i++) {
        int m = type_match(pol->keep_types[i], type, subtype);
        if (m > keep)
            keep = m;
    }
    if (keep == 0)
        return false;
    for (size_t i = 0; i < pol->n_seal_types; i++) {
        int m = type_match(pol->seal_types[i], type, subtype);
        if (m > seal)
            seal = m;
    }
    return keep > seal;
}

/* own (a domain, "@fund.dk" or "fund.dk") against the normalised address norm, whose
 * first '@' is found only when the domain's bytes already match norm's tail: most
 * addresses differ from the fund's domain in their last bytes, so most calls end after
 * a strlen and a byte or two, with no memchr. */
static bool domain_matches(const unsigned char *norm, size_t len, const unsigned char **at,
                           bool *at_known, const char *own)
{
    size_t ol = strlen(own), dlen;

    while (ol > 0 && own[0] == '@') {
        own++;
        ol--;
    }
    if (ol == 0 || ol > len)
        return false;
    /* The domain is a tail of norm: compared from its end (lower-cased as it goes). */
    for (size_t i = ol; i-- > 0;) {
        unsigned char c = (unsigned char)own[i];
        if ((unsigned char)(c - 'A') < 26u)
            c = (unsigned char)(c + 32);
        if (norm[len - ol + i] != c)
            return false;
    }
    if (!*at_known) {
        *at = memchr(norm, '@', len);
        *at_known = true;
    }
    if (*at == NULL)
        return false;
    dlen = len - (size_t)(*at + 1 - norm);
    if (ol > dlen)
        return false;
    /* Exact domain or a subdomain of it: "mail.fund.dk" is the fund's, "xfund.dk" not. */
    return ol == dlen || norm[len - ol - 1] == '.';
}

bool pseudo_is_own(const struct pseudo_policy *pol, const unsigned char *norm, size_t len)
{
    const unsigned char *at = NULL;
    bool at_known = false;

    for (size_t i = 0; i < pol->n_own_addresses; i++) {
        const char *a = pol->own_addresses[i];
        size_t al = a ? strlen(a) : 0;
        size_t k;
        if (al != len)
            continue;
        for (k = 0; k < len; k++) {
            unsigned char c = (unsigned char)a[k];
            if (c >= 'A' && c <= 'Z')
                c = (unsigned char)(c + 32);
            if (c != norm[k])
                break;
        }
        if (k == len)
            return true;
    }
    for (size_t i = 0; i < pol->n_own_domains; i++)
        if (pol->own_domains[i] != NULL &&
            domain_matches(norm, len, &at, &at_known, pol->own_domains[i]))
            return true;
    return false;
}

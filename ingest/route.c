/* route.c — see route.h. */
#include "ingest/route.h"

#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/cpr.h"

#define ROUTE_MAX_GROUPS 10

struct router {
    regex_t case_re;
    char **own_addresses;
    size_t n_own_addresses;
    char **own_domains;
    size_t n_own_domains;
    size_t text_cap;
};

static void route_free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static int route_copy_list(const char *const *in, size_t n, char ***out, mr_error *err)
{
    *out = calloc(n ? n : 1, sizeof **out);
    if (*out == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = in[i];
        while (*s == '@' || *s == ' ')
            s++;        /* "@akasse.dk" and "akasse.dk" both name the domain */
        if (((*out)[i] = strdup(s)) == NULL) {
            route_free_list(*out, i);
            *out = NULL;
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
    }
    return 0;
}

int route_new(const struct route_config *cfg, router **out, mr_error *err)
{
    router *r = calloc(1, sizeof *r);
    const char *pat = cfg->case_pattern ? cfg->case_pattern : ROUTE_DEFAULT_CASE_PATTERN;
    int rc;

    *out = NULL;
    if (r == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = regcomp(&r->case_re, pat, REG_EXTENDED | REG_ICASE);
    if (rc != 0) {
        char buf[160];
        regerror(rc, &r->case_re, buf, sizeof buf);
        free(r);
        return mr_error_set(err, MR_E_CONFIG, "case_pattern: %s", buf);
    }
    if (r->case_re.re_nsub >= ROUTE_MAX_GROUPS) {
        regfree(&r->case_re);
        free(r);
        return mr_error_set(err, MR_E_CONFIG, "case_pattern: more than %d groups",
                            ROUTE_MAX_GROUPS - 1);
    }
    if ((rc = route_copy_list(cfg->own_addresses, cfg->n_own_addresses, &r->own_addresses,
                              err)) != 0 ||
        (rc = route_copy_list(cfg->own_domains, cfg->n_own_domains, &r->own_domains, err)) !=
            0) {
        route_free(r);
        return rc;
    }
    r->n_own_addresses = cfg->n_own_addresses;
    r->n_own_domains = cfg->n_own_domains;
    r->text_cap = cfg->text_cap ? cfg->text_cap : 1024 * 1024;
    *out = r;
    return 0;
}

void route_free(router *r)
{
    if (r == NULL)
        return;
    regfree(&r->case_re);
    route_free_list(r->own_addresses, r->own_addresses ? r->n_own_addresses : 0);
    route_free_list(r->own_domains, r->own_domains ? r->n_own_domains : 0);
    free(r);
}

const char *route_rule_name(enum route_rule rule)
{
    static const char *const names[ROUTE_RULE_COUNT] = { "case", "sender", "cpr", "none",
                                                         "own",  "auto",   "manual" };
    return (unsigned)rule < ROUTE_RULE_COUNT ? names[rule] : "?";
}

static bool route_is_own(const router *r, const char *addr)
{
    const char *at;

    if (addr == NULL || (at = strrchr(addr, '@')) == NULL)
        return false;
    for (size_t i = 0; i < r->n_own_addresses; i++)
        if (strcasecmp(addr, r->own_addresses[i]) == 0)
            return true;
    for (size_t i = 0; i < r->n_own_domains; i++) {
        const char *dom = at + 1, *own = r->own_domains[i];
        size_t dl = strlen(dom), ol = strlen(own);
        if (strcasecmp(dom, own) == 0 ||
            (dl > ol && dom[dl - ol - 1] == '.' && strcasecmp(dom + dl - ol, own) == 0))
            return true;
    }
    return false;
}

static bool route_is_auto(const struct msginfo *info)
{
    if (info->auto_submitted || info->precedence_auto || info->x_autoreply ||
        info->return_path_null || info->report)
        return true;
    if (info->from_addr != NULL) {
        size_t n = strcspn(info->from_addr, "@");
        if ((n == 13 && strncmp(info->from_addr, "mailer-daemon", 13) == 0) ||
            (n == 10 && strncmp(info->from_addr, "postmaster", 10) == 0))
            return true;
    }
    return false;
}

/* Every match of the case pattern in the subject, first registered case wins. */
static int route_by_case(router *r, members_db *db, const char *subject,
                         struct route_result *out, bool *done, mr_error *err)
{
    const char *p = subject;
    regmatch_t m[ROUTE_MAX_GROUPS];
    int eflags = 0;

    while (*p != '\0' && regexec(&r->case_re, p, ROUTE_MAX_GROUPS, m, eflags) == 0) {
        char ref[MEMBERS_ID_MAX];
        size_t g = r->case_re.re_nsub, len;
        bool found;
        int rc;

        while (g > 0 && m[g].rm_so < 0)
            g--;
        len = (size_t)(m[g].rm_eo - m[g].rm_so);
        if (len > 0 && len < sizeof ref) {
            memcpy(ref, p + m[g].rm_so, len);
            ref[len] = '\0';
            rc = members_find_case(db, ref, &found, out->member, out->case_id, err);
            if (rc == 0 && !found) {
                /* A pattern whose group is the whole reference ("Sag 2024-12345",
                 * "[Sag #12345]"): try the part from the first digit, trimmed. */
                char *d = strpbrk(ref, "0123456789");
                if (d != NULL && d != ref) {
                    char *e = d + strlen(d);
                    while (e > d && !((e[-1] >= '0' && e[-1] <= '9') ||
                                      (e[-1] >= 'A' && e[-1] <= 'Z') ||
                                      (e[-1] >= 'a' && e[-1] <= 'z')))
                        *--e = '\0';
                    rc = members_find_case(db, d, &found, out->member, out->case_id, err);
                }
            }
            if (rc != 0)
                return rc;
            if (found) {
                out->rule = ROUTE_CASE;
                *done = true;
                return 0;
            }
        }
        p += m[0].rm_eo > m[0].rm_so ? m[0].rm_eo : m[0].rm_so + 1;
        eflags = REG_NOTBOL;
    }
    return 0;
}

struct route_cpr_ctx {
    members_db *db;
    struct route_result *out;
    bool found;
    int rc;
    mr_error *err;
};

static bool route_on_cpr(void *vctx, const char *cpr)
{
    struct route_cpr_ctx *c = vctx;
    bool found;

    c->rc = members_find_cpr(c->db, cpr, &found, c->out->member, c->err);
    if (c->rc != 0)
        return true;
    if (found) {
        c->found = true;
        return true;
    }
    return false;
}

static bool route_on_text(void *vctx, const char *text, size_t len)
{
    return cpr_scan(text, len, route_on_cpr, vctx);
}

int route_message(router *r, members_db *db, const unsigned char *msg, size_t len,
                  const struct msginfo *info, struct route_result *out, mr_error *err)
{
    struct route_cpr_ctx c = { .db = db, .out = out, .err = err };
    bool done = false, found, amb;
    int rc;

    memset(out, 0, sizeof *out);
    out->rule = ROUTE_NONE;
    if (route_is_auto(info)) {
        out->rule = ROUTE_AUTO;
        return 0;
    }
    if (route_is_own(r, info->from_addr)) {
        out->rule = ROUTE_OWN;
        return 0;
    }
    if (info->subject != NULL) {
        if ((rc = route_by_case(r, db, info->subject, out, &done, err)) != 0 || done)
            return rc;
        out->member[0] = out->case_id[0] = '\0';
    }
    if (info->from_addr != NULL && strchr(info->from_addr, '@') != NULL) {
        if ((rc = members_find_address(db, info->from_addr, &found, &amb, out->member,
                                       err)) != 0)
            return rc;
        if (found) {
            out->rule = ROUTE_SENDER;
            return 0;
        }
        out->member[0] = '\0';
    }
    if (info->subject != NULL)
        route_on_text(&c, info->subject, strlen(info->subject));
    if (!c.found && c.rc == 0) {
        rc = msginfo_each_text(msg, len, r->text_cap, route_on_text, &c, err);
        if (rc != 0)
            return rc;
    }
    if (c.rc != 0)
        return c.rc;
    if (c.found) {
        out->rule = ROUTE_CPR;
        return 0;
    }
    out->member[0] = '\0';
    return 0;
}

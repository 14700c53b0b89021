/* cmd_unrouted.c — `mailret unrouted list|show|assign|done`: the queue of mail no rule
 * could route (ingest/unrouted.h), worked without sqlite3.  Nothing read from a message
 * goes to the log or the audit log: `show` prints its header lines on stdout only. */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/runlock.h"
#include "common/secret.h"
#include "cli/cli_setup.h"
#include "ingest/ingest.h"
#include "ingest/members.h"
#include "ingest/unrouted.h"

static void unrouted_usage(FILE *out)
{
    fprintf(out,
            "usage: mailret unrouted list [--all] [--json]\n"
            "       mailret unrouted show ID [--json]\n"
            "       mailret unrouted assign ID --member MEMBER [--case CASE] [--json]\n"
            "       mailret unrouted done ID [--json]\n"
            "\n"
            "The queue of mail that no routing rule could place (docs/INGEST.md), in the\n"
            "member database.\n"
            "\n"
            "  list    waiting messages: id, account, mailbox, date received, age in the\n"
            "          queue, size (no addresses or subjects); --all also the handled ones\n"
            "  show    one message: where it came from, and its Date, From, To, Cc and\n"
            "          Subject header lines on the terminal (never in a log; not in --json)\n"
            "  assign  deliver the message to MEMBER (and CASE, which must be MEMBER's)\n"
            "          through the configured member-system sink with rule \"manual\", then\n"
            "          mark it handled; a message whose bytes the sink kept (maildir,\n"
            "          exec) is fetched again from its account's IMAP server and checked\n"
            "          by SHA-256.  Assigning twice delivers once.\n"
            "  done    mark the message handled without delivering it\n"
            "\n"
            "[members] unrouted_warn_count and unrouted_warn_days make `check` and `status`\n"
            "warn about a growing or ageing queue.  assign and done are audited (event and\n"
            "queue id only).\n"
            "\n"
            "  --json  one JSON object (on failure: error and message)\n"
            "\n"
            "Exit status: 0 done, 1 failure (no such id, unknown member, sink refused),\n"
            "2 usage error.\n");
}

static void unrouted_day(time_t t, char *buf, size_t size)
{
    struct tm tm;

    if (t == 0 || gmtime_r(&t, &tm) == NULL)
        snprintf(buf, size, "-");
    else
        strftime(buf, size, "%Y-%m-%d", &tm);
}

static void unrouted_age(time_t since, time_t now, char *buf, size_t size)
{
    long long s = since > 0 && now > since ? (long long)(now - since) : 0;

    if (s >= 86400)
        snprintf(buf, size, "%lldd", s / 86400);
    else if (s >= 3600)
        snprintf(buf, size, "%lldh", s / 3600);
    else
        snprintf(buf, size, "%lldm", s / 60);
}

/* The configured account an entry came from: ingest records the account's state key
 * (NAME, or user@host for the unnamed one); NULL when no account of the configuration has
 * it any more. */
static const struct config_account *unrouted_account(const struct mr_config *cfg,
                                                     const struct unrouted_entry *e)
{
    for (size_t i = 0; i < cfg->n_accounts; i++) {
        const struct config_account *a = &cfg->accounts[i];
        struct imap_options io = { .host = a->imap.host, .user = a->imap.user };
        char key[512];
        ingest_account_key(&io, cli_account_state_key(a), key, sizeof key);
        if (strcmp(key, e->account) == 0)
            return a;
    }
    return NULL;
}

/* How list and show name an entry's source: the account's name and the mailbox's key
 * (NAME:mailbox for a named account, as status, check and purge name it). */
static void unrouted_source(const struct mr_config *cfg, const struct unrouted_entry *e,
                            const char **account, char *mailbox, size_t size)
{
    const struct config_account *a = unrouted_account(cfg, e);
    mr_error kerr;

    *account = a != NULL ? a->name : e->account;
    if (a == NULL || cli_mailbox_key(a, e->mailbox, mailbox, size, &kerr) != 0)
        snprintf(mailbox, size, "%s", e->mailbox);
}

static json_t *unrouted_json_entry(const struct mr_config *cfg, const struct unrouted_entry *e,
                                   time_t now)
{
    char rec[24], ing[24], hnd[24], mb[1024];
    const char *acct;

    unrouted_source(cfg, e, &acct, mb, sizeof mb);

    mrtime_format_utc(e->received, rec, sizeof rec);
    mrtime_format_utc(e->ingested, ing, sizeof ing);
    if (e->handled)
        mrtime_format_utc(e->handled, hnd, sizeof hnd);
    return json_pack("{s:I, s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:s, s:s, s:b, s:s}",
                     "id", (json_int_t)e->id, "account", acct, "mailbox", mb,
                     "uidvalidity", (json_int_t)e->uidvalidity, "uid", (json_int_t)e->uid,
                     "received", rec, "queued", ing,
                     "age_seconds", (json_int_t)(now > e->ingested ? now - e->ingested : 0),
                     "size", (json_int_t)e->size, "reason", e->reason,
                     "handled", e->handled ? hnd : "", "bytes_stored", e->has_raw,
                     "sha256", e->sha256);
}

static int unrouted_print_json(json_t *o, mr_error *err)
{
    int rc = 0;

    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "cannot build the JSON output");
    if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        fputc('\n', stdout) == EOF)
        rc = mr_error_set(err, MR_E_IO, "cannot write the JSON output");
    json_decref(o);
    fflush(stdout);
    return rc;
}

/* The header lines a caseworker needs to decide, as sent (folded lines unfolded). */
static void unrouted_print_headers(const unsigned char *raw, size_t len)
{
    static const char *const want[] = { "Date", "From", "To", "Cc", "Subject", "Message-ID" };
    size_t i = 0;
    bool printing = false;

    while (i < len) {
        size_t j = i;
        while (j < len && raw[j] != '\n')
            j++;
        size_t end = j > i && raw[j - 1] == '\r' ? j - 1 : j;
        if (end == i)
            break;                  /* the blank line ending the header */
        if (raw[i] == ' ' || raw[i] == '\t') {
            if (printing) {
                putchar(' ');
                for (size_t k = i; k < end; k++)
                    if (raw[k] != '\t')
                        putchar(isprint(raw[k]) || raw[k] >= 0x80 ? raw[k] : '?');
            }
        } else {
            if (printing)
                putchar('\n');
            printing = false;
            for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
                size_t n = strlen(want[w]);
                if (end - i > n && raw[i + n] == ':' &&
                    strncasecmp((const char *)raw + i, want[w], n) == 0)
                    printing = true;
            }
            if (printing) {
                fputs("  ", stdout);
                for (size_t k = i; k < end; k++)
                    putchar(isprint(raw[k]) || raw[k] >= 0x80 ? raw[k] : '?');
            }
        }
        i = j + 1;
    }
    if (printing)
        putchar('\n');
}

static bool unrouted_parse_id(const char *s, int64_t *id)
{
    char *end;
    long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    v = strtoll(s, &end, 10);
    if (*end != '\0' || v <= 0)
        return false;
    *id = v;
    return true;
}

static int unrouted_audit(const struct mr_config *cfg, const char *event, int64_t id,
                          const char *extra_key, const char *extra, mr_error *err)
{
    audit_log *a = NULL;
    char idbuf[24];
    struct audit_field f[2] = { { "id", idbuf }, { extra_key, extra } };
    int rc;

    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    if ((rc = audit_open(&a, cfg->audit.log, err)) != 0)
        return rc;
    rc = audit_append(a, event, f, extra_key != NULL ? 2 : 1, err);
    audit_close(a);
    return rc;
}

int cmd_unrouted(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "all", no_argument, NULL, 'a' },
        { "json", no_argument, NULL, 'j' },
        { "member", required_argument, NULL, 'm' },
        { "case", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *sub, *member = NULL, *case_id = NULL;
    struct mr_config *cfg = NULL;
    bool all = false, json = false;
    members_db *db = NULL;
    cli_ingest *setup = NULL;
    runlock *lock = NULL;
    int64_t id = 0;
    time_t now = time(NULL);
    mr_error err;
    int o, rc;

    if (cli_wants_help(argc, argv)) {
        unrouted_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2)
        return cli_usage_error("unrouted", "a subcommand is needed: list, show, assign, done");
    sub = argv[1];
    if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "assign") != 0 &&
        strcmp(sub, "done") != 0)
        return cli_usage_error("unrouted", "unknown subcommand '%s'", sub);
    argc--;
    argv++;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'a': all = true; break;
        case 'j': json = true; break;
        case 'm': member = optarg; break;
        case 'C': case_id = optarg; break;
        default: return cli_usage_error("unrouted", "bad option");
        }
    }
    if (strcmp(sub, "list") == 0) {
        if (optind != argc)
            return cli_usage_error("unrouted", "list takes no arguments");
    } else {
        if (optind + 1 != argc)
            return cli_usage_error("unrouted", "%s needs exactly one ID", sub);
        if (!unrouted_parse_id(argv[optind], &id))
            return cli_usage_error("unrouted", "'%s' is not a queue id", argv[optind]);
    }
    if (all && strcmp(sub, "list") != 0)
        return cli_usage_error("unrouted", "--all is for list");
    if ((member != NULL || case_id != NULL) && strcmp(sub, "assign") != 0)
        return cli_usage_error("unrouted", "--member and --case are for assign");
    if (strcmp(sub, "assign") == 0 && member == NULL)
        return cli_usage_error("unrouted", "assign needs --member MEMBER");

    mr_error_clear(&err);
    if ((rc = cli_config_load(ctx, &cfg, &err)) != 0)
        goto out;

    if (strcmp(sub, "list") == 0) {
        struct unrouted_entry *v = NULL;
        size_t n = 0;
        if ((rc = members_open(cfg->members.database, &db, &err)) != 0 ||
            (rc = unrouted_list(db, all, &v, &n, &err)) != 0)
            goto out;
        if (json) {
            json_t *arr = json_array();
            for (size_t i = 0; arr != NULL && i < n; i++)
                json_array_append_new(arr, unrouted_json_entry(cfg, &v[i], now));
            rc = unrouted_print_json(json_pack("{s:I, s:o}", "count", (json_int_t)n,
                                               "messages", arr), &err);
        } else {
            printf("%8s  %-16s %-24s %-10s %6s %10s%s\n", "ID", "ACCOUNT", "MAILBOX", "DATE",
                   "AGE", "SIZE", all ? "  HANDLED" : "");
            for (size_t i = 0; i < n; i++) {
                char d[24], age[24], h[24], mb[1024];
                const char *acct;
                unrouted_source(cfg, &v[i], &acct, mb, sizeof mb);
                unrouted_day(v[i].received, d, sizeof d);
                unrouted_age(v[i].ingested, now, age, sizeof age);
                unrouted_day(v[i].handled, h, sizeof h);
                printf("%8" PRId64 "  %-16s %-24s %-10s %6s %10" PRId64 "%s%s\n", v[i].id,
                       acct, mb, d, age, v[i].size, all ? "  " : "", all ? h : "");
            }
            printf("%zu %s\n", n, all ? "message(s)" : "message(s) waiting");
        }
        free(v);
        goto out;
    }

    if (strcmp(sub, "show") == 0) {
        struct unrouted_entry e;
        unsigned char *raw = NULL;
        size_t len = 0;
        char rec[24], ing[24], mb[1024];
        const char *acct;
        if ((rc = members_open(cfg->members.database, &db, &err)) != 0 ||
            (rc = unrouted_get(db, id, &e, json ? NULL : &raw, &len, &err)) != 0)
            goto out;
        if (json) {
            rc = unrouted_print_json(unrouted_json_entry(cfg, &e, now), &err);
            goto out;
        }
        if (raw == NULL) {
            /* The sink kept the bytes: read the header from the account's server. */
            const struct config_account *a = unrouted_account(cfg, &e);
            struct imap_options io;
            char *password = NULL;
            mr_error ferr;
            mr_error_clear(&ferr);
            if (a == NULL)
                mr_error_set(&ferr, MR_E_NOTFOUND, "its account is not in the configuration");
            else if (cli_imap_options(a, &io, &password, &ferr) == 0) {
                io.password = password;
                io.log = ctx->log;
                (void)unrouted_fetch(&io, &e, &raw, &len, &ferr);
            }
            secret_free(password);
            if (raw == NULL)
                fprintf(stderr, "mailret unrouted: header not shown: %s\n",
                        ferr.msg[0] ? ferr.msg : "not available");
        }
        mrtime_format_utc(e.received, rec, sizeof rec);
        mrtime_format_utc(e.ingested, ing, sizeof ing);
        unrouted_source(cfg, &e, &acct, mb, sizeof mb);
        printf("id        %" PRId64 "\naccount   %s\nmailbox   %s\n"
               "uid       %u (UIDVALIDITY %u)\nreceived  %s\nqueued    %s\n"
               "size      %" PRId64 "\nsha256    %s\n"
               "status    ", e.id, acct, mb, e.uid, e.uidvalidity, rec, ing, e.size,
               e.sha256);
        if (e.handled) {
            char h[24];
            mrtime_format_utc(e.handled, h, sizeof h);
            printf("handled %s\n", h);
        } else {
            printf("waiting\n");
        }
        if (raw != NULL) {
            printf("header\n");
            unrouted_print_headers(raw, len);
        }
        fflush(stdout);
        free(raw);
        goto out;
    }

    /* assign and done change the queue (and the sink): not while ingest runs. */
    if ((rc = runlock_acquire(cfg->state.dir, 60, &lock, &err)) != 0)
        goto out;
    if (strcmp(sub, "done") == 0) {
        bool was = false;
        if ((rc = members_open(cfg->members.database, &db, &err)) != 0 ||
            (rc = unrouted_done(db, id, now, &was, &err)) != 0)
            goto out;
        if (!was && (rc = unrouted_audit(cfg, "unrouted.done", id, NULL, NULL, &err)) != 0)
            goto out;
        if (json)
            rc = unrouted_print_json(json_pack("{s:I, s:s}", "id", (json_int_t)id, "status",
                                               was ? "already handled" : "handled"), &err);
        else
            printf("%" PRId64 ": %s\n", id, was ? "already handled" : "marked handled");
        goto out;
    }

    /* assign */
    {
        const struct config_account *acct;
        struct ingest_options *iopt;
        struct unrouted_entry e;
        enum sink_outcome outcome;
        unsigned char *raw = NULL;
        size_t len = 0;
        /* The entry says which account it came from: its bytes are fetched again from
         * that account's server. */
        if ((rc = members_open(cfg->members.database, &db, &err)) != 0 ||
            (rc = unrouted_get(db, id, &e, NULL, &len, &err)) != 0)
            goto out;
        members_close(db);
        db = NULL;
        if (e.handled) {
            rc = mr_error_set(&err, MR_E_EXISTS, "%" PRId64 " is already handled", id);
            goto out;
        }
        if ((acct = unrouted_account(cfg, &e)) == NULL) {
            rc = mr_error_set(&err, MR_E_NOTFOUND, "%" PRId64 ": the account it came from is "
                              "not in the configuration", id);
            goto out;
        }
        if ((rc = cli_ingest_open(cfg, acct, ctx->log, &setup, &err)) != 0)
            goto out;
        iopt = cli_ingest_options(setup);
        if ((rc = unrouted_get(iopt->members, id, &e, &raw, &len, &err)) != 0)
            goto out;
        if (e.handled) {
            free(raw);
            rc = mr_error_set(&err, MR_E_EXISTS, "%" PRId64 " is already handled", id);
            goto out;
        }
        if (raw == NULL && (rc = unrouted_fetch(iopt->imap, &e, &raw, &len, &err)) != 0) {
            mr_error_prefix(&err, "%" PRId64, id);
            goto out;
        }
        rc = unrouted_assign(iopt->members, iopt->sink, &e, raw, len, member, case_id,
                             &outcome, &err);
        free(raw);
        if (rc != 0)
            goto out;
        if ((rc = unrouted_audit(cfg, "unrouted.assign", id, "sink",
                                 sink_name(iopt->sink), &err)) != 0)
            goto out;
        log_info(ctx->log, "unrouted %" PRId64 ": assigned through the %s sink%s", id,
                 sink_name(iopt->sink), outcome == SINK_DUPLICATE ? " (already there)" : "");
        if (json)
            rc = unrouted_print_json(json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id,
                                               "status", outcome == SINK_DUPLICATE
                                                   ? "already delivered" : "delivered",
                                               "sink", sink_name(iopt->sink), "rule",
                                               "manual"), &err);
        else
            printf("%" PRId64 ": %s to member %s%s%s through the %s sink; handled\n", id,
                   outcome == SINK_DUPLICATE ? "already delivered" : "delivered", member,
                   case_id ? ", case " : "", case_id ? case_id : "", sink_name(iopt->sink));
    }

out:
    cli_ingest_close(setup);
    members_close(db);
    runlock_release(lock);
    config_free(cfg);
    if (rc != 0) {
        char cmd[32];
        snprintf(cmd, sizeof cmd, "unrouted %s", sub);
        return cli_fail_json(cmd, json, &err);
    }
    return CLI_EXIT_OK;
}

/* cmd_status.c — `mailret status`: what an operator looks at first.  Per mailbox the last
 * ingest and purge with their results and what the server holds; one test login per
 * account (bounded by its connect_timeout); the unrouted queue; certificate and key dates; the archive's
 * disk use and the free space beside it.  Read-only: no lock, nothing written. */

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/secret.h"
#include "ingest/state.h"
#include "ingest/unrouted.h"
#include "keys/keys.h"
#include "purge/journal.h"

static void status_usage(FILE *out)
{
    fprintf(out,
            "usage: mailret status [--json] [--offline] [--account NAME]\n"
            "\n"
            "What mailret is doing, per account and mailbox: the last ingest and the last\n"
            "purge with their result (and error), and the messages on the server; one test\n"
            "login per account, bounded by its connect_timeout; the unrouted queue (a\n"
            "warning above [members] unrouted_warn_count or unrouted_warn_days); the\n"
            "certificates' and keys' dates (a warning within [retention]\n"
            "expiring_warn_days of a certificate's end); the archive's disk use and the\n"
            "free space on its file system.  Reads only; no lock, so it can run beside\n"
            "ingest or purge.\n"
            "\n"
            "  --json     one JSON object (on failure: error and message)\n"
            "  --offline  no test login, no server counts\n"
            "  --account NAME  only this account's login and mailboxes (default: every\n"
            "             account's; a named account's mailboxes read NAME:mailbox)\n"
            "\n"
            "Exit status: 0 nothing wrong (warnings may be shown), 1 a problem: the login\n"
            "failed, the last ingest or purge of a mailbox failed, a certificate expired\n"
            "(each listed under \"problems\"), or status could not run; 2 usage error.\n");
}

static void status_time(time_t t, char buf[24])
{
    if (t == 0)
        snprintf(buf, 24, "-");
    else
        mrtime_format_utc(t, buf, 24);
}

static double status_now(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Disk use of the archive, as du counts it (allocated blocks). */
static uint64_t status_du_bytes;
static uint64_t status_du_files;

static int status_du_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F || flag == FTW_D) {
        status_du_bytes += (uint64_t)sb->st_blocks * 512u;
        status_du_files += flag == FTW_F;
    }
    return 0;
}

static void status_human(uint64_t b, char *buf, size_t size)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)b;
    int u = 0;

    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", v, unit[u]);
}

struct status_problems {
    json_t *list;       /* strings */
    json_t *warnings;
};

static void status_problem(struct status_problems *p, bool warning, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void status_problem(struct status_problems *p, bool warning, const char *fmt, ...)
{
    char line[MR_ERROR_MSG_MAX + 256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_scrub(line);
    json_array_append_new(warning ? p->warnings : p->list, json_string(line));
}

/* One account: its test login, then a row per mailbox appended to mbs (named by the key
 * purge and check use, NAME:mailbox for a named account).  *out: the account's entry. */
static int status_account(struct cli_ctx *ctx, const struct config_account *a, bool offline,
                          const char *istate, const char *journal, json_t *mbs, json_t **out,
                          struct status_problems *pr, mr_error *err)
{
    struct imap_options io;
    char *password = NULL, account[512];
    imap_conn *conn = NULL;
    json_t *login;
    mr_error oerr;
    int rc;

    *out = NULL;
    /* An account whose credentials cannot be read is a failed login: the others and its
     * mailboxes' last runs are still shown. */
    if (cli_imap_options(a, &io, &password, &oerr) != 0) {
        char line[MR_ERROR_MSG_MAX];
        snprintf(line, sizeof line, "%s", oerr.msg);
        log_scrub(line);
        memset(&io, 0, sizeof io);
        io.host = a->imap.host;
        io.user = a->imap.user;
        offline = true;
        login = json_pack("{s:s, s:s, s:s}", "status", "failed", "error", line, "code",
                          cli_error_code(&oerr));
        status_problem(pr, false, "account %s: %s", a->name, line);
    } else {
        login = NULL;
    }
    io.password = password;
    io.log = ctx->log;
    ingest_account_key(&io, cli_account_state_key(a), account, sizeof account);

    /* The test login: a stalled server must not hold status longer than a connect. */
    if (login == NULL && offline) {
        login = json_pack("{s:s}", "status", "skipped");
    } else if (login == NULL) {
        double t0 = status_now();
        mr_error lerr;
        io.io_timeout_s = io.connect_timeout_s > 0 ? io.connect_timeout_s : 30;
        if (imap_connect(&io, &conn, &lerr) == 0) {
            login = json_pack("{s:s, s:I}", "status", "ok", "ms",
                              (json_int_t)((status_now() - t0) * 1000));
        } else {
            char line[MR_ERROR_MSG_MAX];
            snprintf(line, sizeof line, "%s", lerr.msg);
            log_scrub(line);
            login = json_pack("{s:s, s:s, s:s}", "status", "failed", "error", line, "code",
                              cli_error_code(&lerr));
            if (a->legacy_keys)
                status_problem(pr, false, "IMAP login failed: %s", line);
            else
                status_problem(pr, false, "account %s: IMAP login failed: %s", a->name, line);
        }
    }
    secret_free(password);
    password = NULL;
    io.password = NULL;

    for (size_t i = 0; i < a->mailboxes.n; i++) {
        const char *box = a->mailboxes.items[i];
        char mb[1024];
        struct state_run ir;
        struct purge_jresult pj;
        char iat[24], pat[24];
        json_t *server = json_null(), *ingest, *purge;
        mr_error e;

        if ((rc = cli_mailbox_key(a, box, mb, sizeof mb, err)) != 0) {
            imap_close(conn);
            json_decref(login);
            return rc;
        }
        memset(&pj, 0, sizeof pj);
        /* Ingest keys its state by (account, mailbox on the server); purge its journal by
         * the mailbox key. */
        if (state_run_read(istate, account, box, &ir, &e) != 0) {
            status_problem(pr, true, "mailbox %s: ingest state: %s", mb, e.msg);
            memset(&ir, 0, sizeof ir);
        }
        if (purge_journal_result_read(journal, mb, &pj, &e) != 0)
            status_problem(pr, true, "mailbox %s: purge journal: %s", mb, e.msg);
        status_time(ir.at, iat);
        status_time(pj.at, pat);
        ingest = ir.found ? json_pack("{s:s, s:s, s:s, s:I}", "at", iat, "status", ir.status,
                                      "error", ir.error, "fetched", (json_int_t)ir.fetched)
                          : json_null();
        purge = pj.found ? json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "at", pat, "status",
                                     pj.status, "error", pj.error, "archived",
                                     (json_int_t)pj.archived, "expunged",
                                     (json_int_t)pj.expunged, "held", (json_int_t)pj.held)
                         : json_null();
        if (ir.found && strcmp(ir.status, "ok") != 0)
            status_problem(pr, false, "mailbox %s: the last ingest failed: %s", mb, ir.error);
        if (pj.found && strcmp(pj.status, "ok") != 0)
            status_problem(pr, false, "mailbox %s: the last purge failed: %s", mb, pj.error);
        if (!ir.found)
            status_problem(pr, true, "mailbox %s: never ingested", mb);
        if (conn != NULL) {
            struct imap_mailbox_info info;
            if (imap_examine(conn, box, &info, &e) == 0) {
                server = json_pack("{s:I, s:I}", "messages", (json_int_t)info.exists,
                                   "uidvalidity", (json_int_t)info.uidvalidity);
            } else {
                char line[MR_ERROR_MSG_MAX];
                snprintf(line, sizeof line, "%s", e.msg);
                log_scrub(line);
                server = json_pack("{s:s}", "error", line);
                status_problem(pr, false, "mailbox %s: %s", mb, line);
                if (!imap_usable(conn)) {
                    imap_close(conn);
                    conn = NULL;
                }
            }
        }
        json_array_append_new(mbs, json_pack("{s:s, s:s, s:o, s:o, s:o}", "mailbox", mb,
                                             "account", a->name, "last_ingest", ingest,
                                             "last_purge", purge, "server", server));
    }
    imap_close(conn);
    *out = json_pack("{s:s, s:s, s:o}", "name", a->name, "key", account, "login", login);
    if (*out == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    return 0;
}

int cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "offline", no_argument, NULL, 'o' },
        { "account", required_argument, NULL, 'A' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mr_config *cfg = NULL;
    struct status_problems pr = { NULL, NULL };
    json_t *root = NULL, *mbs = NULL, *keys = NULL, *accts = NULL;
    char istate[4096], journal[4096];
    const char *account_name = NULL;
    size_t first = 0, count = 0;
    bool json = false, offline = false;
    time_t now = time(NULL);
    mr_error err;
    int o, rc;

    if (cli_wants_help(argc, argv)) {
        status_usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'j': json = true; break;
        case 'o': offline = true; break;
        case 'A': account_name = optarg; break;
        default: return cli_usage_error("status", "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
    mr_error_clear(&err);
    pr.list = json_array();
    pr.warnings = json_array();
    mbs = json_array();
    keys = json_array();
    accts = json_array();
    if (pr.list == NULL || pr.warnings == NULL || mbs == NULL || keys == NULL ||
        accts == NULL) {
        rc = mr_error_set(&err, MR_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = cli_config_load(ctx, &cfg, &err)) != 0 ||
        (rc = cli_accounts_select(cfg, account_name, &first, &count, &err)) != 0 ||
        (rc = cli_state_path(cfg, CLI_INGEST_STATE_FILE, istate, sizeof istate, &err)) != 0 ||
        (rc = cli_state_path(cfg, PURGE_JOURNAL_FILE, journal, sizeof journal, &err)) != 0)
        goto out;
    for (size_t a = 0; a < count; a++) {
        json_t *acct = NULL;
        if ((rc = status_account(ctx, &cfg->accounts[first + a], offline, istate, journal, mbs,
                                 &acct, &pr, &err)) != 0)
            goto out;
        json_array_append_new(accts, acct);
    }

    /* The unrouted queue. */
    json_t *unrouted;
    {
        struct unrouted_backlog b;
        mr_error e;
        if (unrouted_backlog_read(cfg->members.database, &b, &e) != 0) {
            status_problem(&pr, true, "unrouted queue: %s", e.msg);
            unrouted = json_pack("{s:s}", "error", e.msg);
        } else {
            long long days = b.waiting > 0 && b.oldest > 0 && now > b.oldest
                             ? (long long)((now - b.oldest) / 86400) : 0;
            if (cfg->unrouted.warn_count > 0 && b.waiting > (int64_t)cfg->unrouted.warn_count)
                status_problem(&pr, true, "unrouted queue: %lld waiting (warn above %u)",
                               (long long)b.waiting, cfg->unrouted.warn_count);
            if (cfg->unrouted.warn_days > 0 && days > cfg->unrouted.warn_days)
                status_problem(&pr, true, "unrouted queue: the oldest has waited %lld days "
                               "(warn above %u)", days, cfg->unrouted.warn_days);
            unrouted = json_pack("{s:I, s:I, s:I, s:I}", "waiting", (json_int_t)b.waiting,
                                 "oldest_days", (json_int_t)days, "warn_count",
                                 (json_int_t)cfg->unrouted.warn_count, "warn_days",
                                 (json_int_t)cfg->unrouted.warn_days);
        }
    }

    /* Certificates and keys (epoch keys summarised: they end with their batches). */
    {
        struct keys_list_options lo = {
            .vault_dir = cfg->keys.vault_dir, .it_cert = cfg->keys.it_cert,
            .reid_cert = cfg->keys.reid_cert,
            .pseudonym_key_file = cfg->keys.pseudonym_key_file,
            .manifest_key_file = cfg->keys.manifest_key_file,
            .signing_key_file = cfg->keys.signing_key_file,
            .host_keyring = cfg->keys.host_keyring,
        };
        struct keys_entry *v = NULL;
        size_t n = 0, epochs = 0;
        char next_epoch[24] = "";
        mr_error e;
        if (keys_list(&lo, &v, &n, &e) != 0) {
            status_problem(&pr, true, "keys: %s", e.msg);
        } else {
            for (size_t i = 0; i < n; i++) {
                if (strncmp(v[i].kind, "epoch", 5) == 0) {
                    if (v[i].sealed_present) {
                        epochs++;
                        if (v[i].expires[0] &&
                            (!next_epoch[0] || strcmp(v[i].expires, next_epoch) < 0))
                            snprintf(next_epoch, sizeof next_epoch, "%s", v[i].expires);
                    }
                    continue;
                }
                json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s}", "kind",
                                                      v[i].kind, "id", v[i].id, "created",
                                                      v[i].created, "expires", v[i].expires));
                time_t exp;
                mr_error te;
                if (v[i].expires[0] && mrtime_parse_utc(v[i].expires, &exp, &te) == 0) {
                    if (exp <= now)
                        status_problem(&pr, false, "%s %s expired on %s", v[i].kind, v[i].id,
                                       v[i].expires);
                    else if (exp - now < (time_t)cfg->retention.expiring_warn_days * 86400)
                        status_problem(&pr, true, "%s %s expires on %s", v[i].kind, v[i].id,
                                       v[i].expires);
                }
            }
            json_array_append_new(keys, json_pack("{s:s, s:I, s:s}", "kind", "epoch-keys",
                                                  "present", (json_int_t)epochs,
                                                  "next_expiry", next_epoch));
        }
        free(v);
    }

    /* The archive on disk. */
    json_t *archive;
    {
        struct statvfs fs;
        struct stat sb;
        status_du_bytes = status_du_files = 0;
        if (stat(cfg->archive.dir, &sb) != 0 && errno == ENOENT) {
            /* Before the first purge (or before `mailret init`): nothing to count yet. */
            status_problem(&pr, true, "archive %s does not exist yet (mailret init)",
                           cfg->archive.dir);
            archive = json_pack("{s:s, s:s}", "dir", cfg->archive.dir, "error",
                                "does not exist");
        } else if (nftw(cfg->archive.dir, status_du_one, 16, FTW_PHYS) != 0 ||
                   statvfs(cfg->archive.dir, &fs) != 0) {
            mr_error e;
            mr_error_errno(&e, MR_E_IO, errno, "archive %s", cfg->archive.dir);
            status_problem(&pr, false, "%s", e.msg);
            archive = json_pack("{s:s, s:s}", "dir", cfg->archive.dir, "error", e.msg);
        } else {
            archive = json_pack("{s:s, s:I, s:I, s:I, s:I}", "dir", cfg->archive.dir,
                                "used_bytes", (json_int_t)status_du_bytes, "files",
                                (json_int_t)status_du_files, "free_bytes",
                                (json_int_t)((uint64_t)fs.f_bavail * fs.f_frsize),
                                "total_bytes",
                                (json_int_t)((uint64_t)fs.f_blocks * fs.f_frsize));
        }
    }

    char at[24];
    status_time(now, at);
    root = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:O, s:O}", "at", at, "config",
                     cfg->path, "accounts", accts, "mailboxes", mbs, "unrouted", unrouted,
                     "keys", keys, "archive", archive, "problems", pr.list, "warnings",
                     pr.warnings);
    accts = mbs = keys = NULL;
    /* One account shown: its key and login also at the top, as before accounts. */
    if (root != NULL && count == 1) {
        json_t *a0 = json_array_get(json_object_get(root, "accounts"), 0);
        if (json_object_set(root, "account", json_object_get(a0, "key")) != 0 ||
            json_object_set(root, "login", json_object_get(a0, "login")) != 0) {
            json_decref(root);
            root = NULL;
        }
    }
    if (root == NULL) {
        rc = mr_error_set(&err, MR_E_NOMEM, "cannot build the status");
        goto out;
    }
    if (json) {
        if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
            fputc('\n', stdout) == EOF) {
            rc = mr_error_set(&err, MR_E_IO, "cannot write the status");
            goto out;
        }
    } else {
        printf("mailret status as of %s (%s)\n", at, cfg->path);
        size_t i, k;
        json_t *m, *ac;
        json_array_foreach(json_object_get(root, "accounts"), k, ac) {
            json_t *l = json_object_get(ac, "login");
            const char *aname = json_string_value(json_object_get(ac, "name"));
            printf("\naccount %s: login %s", json_string_value(json_object_get(ac, "key")),
                   json_string_value(json_object_get(l, "status")));
            if (json_object_get(l, "ms"))
                printf(" (%lld ms)", (long long)json_integer_value(json_object_get(l, "ms")));
            if (json_object_get(l, "error"))
                printf(": %s", json_string_value(json_object_get(l, "error")));
            printf("\n");
            json_array_foreach(json_object_get(root, "mailboxes"), i, m) {
                if (strcmp(json_string_value(json_object_get(m, "account")), aname) != 0)
                    continue;
                json_t *ig = json_object_get(m, "last_ingest");
                json_t *pg = json_object_get(m, "last_purge");
                json_t *sv = json_object_get(m, "server");
                printf("\nmailbox %s\n", json_string_value(json_object_get(m, "mailbox")));
                if (json_is_object(ig))
                    printf("  last ingest  %s %s (%lld fetched)%s%s\n",
                           json_string_value(json_object_get(ig, "at")),
                           json_string_value(json_object_get(ig, "status")),
                           (long long)json_integer_value(json_object_get(ig, "fetched")),
                           *json_string_value(json_object_get(ig, "error")) ? ": " : "",
                           json_string_value(json_object_get(ig, "error")));
                else
                    printf("  last ingest  never\n");
                if (json_is_object(pg) && strcmp(json_string_value(json_object_get(pg, "status")),
                                                 "ok") == 0)
                    printf("  last purge   %s ok (%lld archived, %lld expunged, %lld held back)\n",
                           json_string_value(json_object_get(pg, "at")),
                           (long long)json_integer_value(json_object_get(pg, "archived")),
                           (long long)json_integer_value(json_object_get(pg, "expunged")),
                           (long long)json_integer_value(json_object_get(pg, "held")));
                else if (json_is_object(pg))
                    printf("  last purge   %s %s: %s\n",
                           json_string_value(json_object_get(pg, "at")),
                           json_string_value(json_object_get(pg, "status")),
                           json_string_value(json_object_get(pg, "error")));
                else
                    printf("  last purge   never\n");
                if (json_object_get(sv, "messages"))
                    printf("  on server    %lld messages\n",
                           (long long)json_integer_value(json_object_get(sv, "messages")));
                else if (json_object_get(sv, "error"))
                    printf("  on server    %s\n", json_string_value(json_object_get(sv, "error")));
            }
        }
        json_t *u = json_object_get(root, "unrouted");
        if (json_object_get(u, "waiting"))
            printf("\nunrouted queue: %lld waiting, the oldest for %lld days\n",
                   (long long)json_integer_value(json_object_get(u, "waiting")),
                   (long long)json_integer_value(json_object_get(u, "oldest_days")));
        printf("\nkeys\n");
        json_array_foreach(json_object_get(root, "keys"), i, m) {
            const char *kind = json_string_value(json_object_get(m, "kind"));
            if (strcmp(kind, "epoch-keys") == 0) {
                printf("  %-15s %lld present, the next expires %s\n", kind,
                       (long long)json_integer_value(json_object_get(m, "present")),
                       *json_string_value(json_object_get(m, "next_expiry"))
                           ? json_string_value(json_object_get(m, "next_expiry")) : "-");
                continue;
            }
            const char *cr = json_string_value(json_object_get(m, "created"));
            const char *ex = json_string_value(json_object_get(m, "expires"));
            printf("  %-15s %s  created %s  expires %s\n", kind,
                   json_string_value(json_object_get(m, "id")), *cr ? cr : "-",
                   *ex ? ex : "never");
        }
        json_t *a = json_object_get(root, "archive");
        if (json_object_get(a, "used_bytes")) {
            char used[32], fr[32], tot[32];
            status_human((uint64_t)json_integer_value(json_object_get(a, "used_bytes")), used,
                         sizeof used);
            status_human((uint64_t)json_integer_value(json_object_get(a, "free_bytes")), fr,
                         sizeof fr);
            status_human((uint64_t)json_integer_value(json_object_get(a, "total_bytes")), tot,
                         sizeof tot);
            printf("\narchive %s: %s in %lld files; %s free of %s\n", cfg->archive.dir, used,
                   (long long)json_integer_value(json_object_get(a, "files")), fr, tot);
        }
        json_array_foreach(pr.warnings, i, m)
            printf("%swarning: %s\n", i == 0 ? "\n" : "", json_string_value(m));
        json_array_foreach(pr.list, i, m)
            printf("%sPROBLEM: %s\n", i == 0 ? "\n" : "", json_string_value(m));
    }
    fflush(stdout);
    rc = json_array_size(pr.list) > 0 ? 1 : 0;
    json_decref(root);
    json_decref(pr.list);
    json_decref(pr.warnings);
    config_free(cfg);
    return rc;

out:
    json_decref(root);
    json_decref(accts);
    json_decref(mbs);
    json_decref(keys);
    json_decref(pr.list);
    json_decref(pr.warnings);
    config_free(cfg);
    return cli_fail_json("status", json, &err);
}

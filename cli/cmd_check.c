/* cmd_check.c — `mailret check`: the compliance check (purge/check.h) for monitoring and
 * auditors.  Exit status 0 all good, 1 warnings, 2 violations (or the check could not
 * run: compliance not shown is not compliance).  --nagios follows the plugin convention
 * instead: 3 (UNKNOWN) when the check could not run, so a monitor tells "mailret is
 * broken" from "IMAP is down". */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/secret.h"
#include "purge/check.h"
#include "purge/journal.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret check [--json | --nagios] [--offline] [--at DATE]\n"
            "                     [--account NAME]\n"
            "\n"
            "Compliance check.  For every batch: mailbox, period, created, expires and a\n"
            "status: ok, expiring (within [retention] expiring_warn_days), OVERDUE (past\n"
            "expiry and still restorable), held (legal hold), damaged (manifest or volume),\n"
            "key-missing, key-present-after-expiry, expired (tombstone), incomplete (no\n"
            "manifest).  For every configured mailbox: nothing older than the last monthly\n"
            "cutoff is left (the purge really ran; one day of grace after the 1st), and if\n"
            "something is, why: HELD BACK (the member system has not accepted it since\n"
            "DATE; a warning for [retention] held_back_days, then a violation), or NOT\n"
            "PURGED (not ingested, or the last purge failed: its error); the last purge's\n"
            "result.  The unrouted queue: a warning above [members] unrouted_warn_count\n"
            "waiting or unrouted_warn_days waited.  The audit log's hash chain verifies,\n"
            "and so does the erasure ledger ([state] erasure_ledger): its chain, its\n"
            "signatures by a pinned host key, and the anchor every signed manifest holds.\n"
            "See docs/COMPLIANCE.md.\n"
            "\n"
            "  --json        one JSON object instead of the table (on failure: error and\n"
            "                message)\n"
            "  --nagios      one line in the Nagios/Icinga plugin format with perfdata;\n"
            "                exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check could\n"
            "                not run, e.g. configuration broken, IMAP unreachable)\n"
            "  --offline     do not connect to IMAP (mailboxes are not checked)\n"
            "  --account NAME  check only this account's mailboxes (default: every\n"
            "                account's; batches are always all checked)\n"
            "  --at DATE     evaluate as of DATE (YYYY-MM-DD local, or ...THH:MM:SSZ)\n"
            "\n"
            "Exit status: 0 all good, 1 warnings, 2 violations or the check could not run\n"
            "(with --nagios: 3).\n");
}

#define CHECK_EXIT_UNKNOWN 3

static int unknown_usage(bool nagios, const char *what)
{
    int rc = cli_usage_error("check", "%s", what);

    if (!nagios)
        return rc;
    printf("MAILRET UNKNOWN - usage: %s\n", what);
    return CHECK_EXIT_UNKNOWN;
}

int cmd_check(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "offline", no_argument, NULL, 'o' },
        { "account", required_argument, NULL, 'A' },
        { "nagios", no_argument, NULL, 'N' },
        { "at", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct check_options co;
    struct check_report *report = NULL;
    struct mr_config *cfg = NULL;
    struct cli_keys keys;
    struct imap_options *io = NULL;
    struct check_account *ca = NULL;
    char **passwords = NULL, (*akeys)[512] = NULL, (*prefixes)[CONFIG_ACCOUNT_NAME_MAX + 2] = NULL;
    const char *account_name = NULL;
    size_t first = 0, count = 0;
    const char *at_text = NULL;
    char istate[4096], journal[4096];
    bool json = false, offline = false, nagios = false;
    mr_error err;
    int o, rc, status;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    /* A monitor reads any usage mistake as UNKNOWN, not as a compliance verdict. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        nagios = nagios || strcmp(argv[i], "--nagios") == 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'j': json = true; break;
        case 'o': offline = true; break;
        case 'A': account_name = optarg; break;
        case 'N': nagios = true; break;
        case 'a': at_text = optarg; break;
        default: return unknown_usage(nagios, "bad option");
        }
    }
    if (optind < argc && !nagios)
        return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
    if (optind < argc)
        return unknown_usage(nagios, "unexpected argument");
    if (json && nagios)
        return unknown_usage(nagios, "--json and --nagios exclude each other");
    memset(&co, 0, sizeof co);
    memset(&keys, 0, sizeof keys);
    mr_error_clear(&err);
    co.at = time(NULL);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc == 0 && at_text != NULL)
        rc = mrtime_parse(at_text, cfg->retention.timezone, &co.at, &err);
    if (rc == 0)
        rc = cli_keys_load(cfg, CLI_NEED_TRUST, &keys, &err);
    if (rc == 0)
        rc = cli_accounts_select(cfg, account_name, &first, &count, &err);
    if (rc == 0 && ((io = calloc(count, sizeof *io)) == NULL ||
                    (ca = calloc(count, sizeof *ca)) == NULL ||
                    (passwords = calloc(count, sizeof *passwords)) == NULL ||
                    (akeys = calloc(count, sizeof *akeys)) == NULL ||
                    (prefixes = calloc(count, sizeof *prefixes)) == NULL))
        rc = mr_error_set(&err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const struct config_account *a = &cfg->accounts[first + i];
        ca[i].mailboxes = (const char *const *)a->mailboxes.items;
        ca[i].n_mailboxes = a->mailboxes.n;
        ca[i].key_prefix = cli_account_prefix(a, prefixes[i], sizeof prefixes[i]);
        if (offline)
            continue;
        rc = cli_imap_options(a, &io[i], &passwords[i], &err);
        io[i].log = ctx->log;
        ingest_account_key(&io[i], cli_account_state_key(a), akeys[i], sizeof akeys[i]);
        ca[i].imap = &io[i];
        ca[i].account = akeys[i];
    }
    if (rc == 0)
        rc = cli_state_path(cfg, CLI_INGEST_STATE_FILE, istate, sizeof istate, &err);
    if (rc == 0)
        rc = cli_state_path(cfg, PURGE_JOURNAL_FILE, journal, sizeof journal, &err);
    if (rc == 0) {
        co.archive_dir = cfg->archive.dir;
        co.vault_dir = cfg->keys.vault_dir;
        co.trust = &keys.trust;
        co.warn_days = cfg->retention.expiring_warn_days;
        co.zone = cfg->retention.timezone;
        co.accounts = ca;
        co.n_accounts = count;
        co.grace = 86400;
        co.audit_path = cfg->audit.log;
        co.ledger_path = cfg->state.erasure_ledger;
        if (!offline)
            co.ingest_state = istate;
        co.journal_path = journal;
        co.held_days = cfg->retention.held_back_days;
        co.insecure_tls = cfg->imap.insecure_skip_verify;
        co.members_db = cfg->members.database;
        co.unrouted_warn_count = cfg->unrouted.warn_count;
        co.unrouted_warn_days = cfg->unrouted.warn_days;
        co.log = ctx->log;
        rc = check_run(&co, &report, &err);
    }
    for (size_t i = 0; passwords != NULL && i < count; i++)
        secret_free(passwords[i]);
    free(passwords);
    free(io);
    free(ca);
    free(akeys);
    free(prefixes);
    cli_keys_release(&keys);
    config_free(cfg);
    if (rc != 0) {
        if (nagios) {
            char line[MR_ERROR_MSG_MAX];
            snprintf(line, sizeof line, "%s", err.msg[0] ? err.msg : "failed");
            for (char *p = line; *p != '\0'; p++)
                if (*p == '|')
                    *p = ' ';
            log_scrub(line);
            printf("MAILRET UNKNOWN - check could not run (%s): %s\n", cli_error_code(&err),
                   line);
            fflush(stdout);
            cli_fail("check", &err);
            return CHECK_EXIT_UNKNOWN;
        }
        cli_fail_json("check", json, &err);
        return CLI_EXIT_USAGE;  /* 2: not shown compliant */
    }
    if (nagios) {
        status = (int)check_report_nagios(stdout, report);
        fflush(stdout);
        check_report_free(report);
        return status;
    }
    if (json) {
        if (check_report_json(stdout, report, &err) != 0) {
            check_report_free(report);
            return cli_fail("check", &err) + 1;     /* 2: not shown compliant */
        }
    } else {
        check_report_print(stdout, report);
    }
    fflush(stdout);
    status = (int)report->level;
    if (status != 0)
        log_warn(ctx->log, "compliance check: %zu warning(s), %zu violation(s)",
                 report->warnings, report->violations);
    check_report_free(report);
    return status;
}

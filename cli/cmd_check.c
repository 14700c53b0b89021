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
#include "ingest/ingest_setup.h"
#include "purge/check.h"
#include "purge/journal.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret check [--json | --nagios] [--offline] [--at DATE]\n"
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
            "result.  The audit log's hash chain verifies.  See docs/COMPLIANCE.md.\n"
            "\n"
            "  --json        one JSON object instead of the table (on failure: error and\n"
            "                message)\n"
            "  --nagios      one line in the Nagios/Icinga plugin format with perfdata;\n"
            "                exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check could\n"
            "                not run, e.g. configuration broken, IMAP unreachable)\n"
            "  --offline     do not connect to IMAP (mailboxes are not checked)\n"
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
        { "nagios", no_argument, NULL, 'N' },
        { "at", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct check_options co;
    struct check_report *report = NULL;
    struct mr_config *cfg = NULL;
    struct cli_keys keys;
    struct imap_options io;
    const char *at_text = NULL;
    char *password = NULL, istate[4096], journal[4096], account[512];
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
    if (rc == 0 && !offline)
        rc = ingest_setup_imap_options(cfg, &io, &password, &err);
    if (rc == 0)
        rc = cli_state_path(cfg, INGEST_STATE_FILE, istate, sizeof istate, &err);
    if (rc == 0)
        rc = cli_state_path(cfg, PURGE_JOURNAL_FILE, journal, sizeof journal, &err);
    if (rc == 0) {
        io.password = password;
        io.log = ctx->log;
        co.archive_dir = cfg->archive.dir;
        co.vault_dir = cfg->keys.vault_dir;
        co.trust = &keys.trust;
        co.warn_days = cfg->retention.expiring_warn_days;
        co.zone = cfg->retention.timezone;
        co.imap = offline ? NULL : &io;
        co.mailboxes = (const char *const *)cfg->mailboxes.items;
        co.n_mailboxes = cfg->mailboxes.n;
        co.grace = 86400;
        co.audit_path = cfg->audit.log;
        if (!offline) {
            ingest_account_key(&io, NULL, account, sizeof account);
            co.ingest_state = istate;
            co.account = account;
        }
        co.journal_path = journal;
        co.held_days = cfg->retention.held_back_days;
        co.insecure_tls = cfg->imap.insecure_skip_verify;
        co.log = ctx->log;
        rc = check_run(&co, &report, &err);
    }
    secret_free(password);
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

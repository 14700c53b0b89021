/* cmd_expire.c — `mailret expire`: crypto-shred and delete batches past their expiry that
 * are not held (purge/expire.h), under the run lock. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "cli/cli_store.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/log.h"
#include "common/runlock.h"
#include "purge/expire.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret expire [--dry-run] [--json] [--at DATE] [--lock-wait SECONDS]\n"
            "\n"
            "Destroy every batch whose expiry ([retention] years after the purge that made\n"
            "it) has passed and that is not under legal hold: first the sealed epoch keys\n"
            "are shredded in the vault (so no surviving copy of the volumes can ever be\n"
            "decrypted), then the volumes and re-identification files are deleted, and a\n"
            "tombstone (no personal data) replaces the manifest.  Audited.  With [archive]\n"
            "store = s3 the bucket follows: the batch's objects are deleted, its tombstone\n"
            "put.\n"
            "\n"
            "  --dry-run   list what would be destroyed; change nothing\n"
            "  --json      one JSON object (batches, counts; on failure: error, message)\n"
            "  --at DATE   act as if it were DATE (tests, and catching up after an outage);\n"
            "              YYYY-MM-DD local or YYYY-MM-DDTHH:MM:SSZ; not before today\n"
            "  --lock-wait SECONDS  wait this long for another mailret run to finish\n"
            "              (default 900; 0 = fail at once)\n"
            "\n"
            "Exit status: 0 done, 1 a batch could not be expired (named), 2 usage error.\n");
}

/* The report as one JSON object (text, malloc'd; NULL without memory). */
static char *report_json(const struct expire_report *r, bool dry_run)
{
    static const char *const actions[] = { "expired", "would-expire", "held", "failed" };
    json_t *items = json_array(), *o;
    char *text;

    for (size_t i = 0; items != NULL && i < r->n; i++) {
        const struct expire_item *it = &r->items[i];
        char exp[24] = "", detail[MR_ERROR_MSG_MAX];
        if (it->expires != 0)
            mrtime_format_utc(it->expires, exp, sizeof exp);
        snprintf(detail, sizeof detail, "%s", it->detail);
        log_scrub(detail);
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:s}", "mailbox",
                                               it->mailbox, "batch_id", it->batch_id,
                                               "expires", exp, "action", actions[it->action],
                                               "detail", detail));
    }
    o = json_pack("{s:b, s:I, s:I, s:I, s:o}", "dry_run", dry_run, "expired",
                  (json_int_t)r->expired, "held", (json_int_t)r->held, "failed",
                  (json_int_t)r->failed, "batches", items);
    if (o == NULL)
        return NULL;
    text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL)
        return NULL;
    /* one object per line-terminated output, as the other commands print it */
    {
        size_t len = strlen(text);
        char *t = realloc(text, len + 2);
        if (t == NULL) {
            free(text);
            return NULL;
        }
        t[len] = '\n';
        t[len + 1] = '\0';
        text = t;
    }
    return text;
}

int cmd_expire(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dry-run", no_argument, NULL, 'n' },
        { "at", required_argument, NULL, 'a' },
        { "lock-wait", required_argument, NULL, 'w' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct expire_options eo;
    struct expire_report *report = NULL;
    struct mr_config *cfg = NULL;
    struct cli_keys keys;
    runlock *lock = NULL;
    audit_log *audit = NULL;
    mr_store *store = NULL;
    const char *at_text = NULL;
    char *jbuf = NULL;
    bool json = false;
    mr_error err;
    int o, rc, lock_wait = CLI_LOCK_WAIT_DEFAULT_S;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    memset(&eo, 0, sizeof eo);
    memset(&keys, 0, sizeof keys);
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'n': eo.dry_run = true; break;
        case 'j': json = true; break;
        case 'a': at_text = optarg; break;
        case 'w':
            if (!cli_parse_seconds(optarg, &lock_wait))
                return cli_usage_error("expire", "--lock-wait takes seconds (0-86400)");
            break;
        default: return cli_usage_error("expire", "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error("expire", "unexpected argument '%s'", argv[optind]);
    mr_error_clear(&err);
    eo.at = time(NULL);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc == 0 && at_text != NULL) {
        time_t at;
        rc = mrtime_parse(at_text, cfg->retention.timezone, &at, &err);
        /* Only forward: expiring "as of last year" would be a no-op at best, and a date
         * in the past is more likely a typo than a need. */
        if (rc == 0 && at < eo.at - 86400)
            rc = mr_error_set(&err, MR_E_INVALID, "--at %s lies in the past", at_text);
        eo.at = at > eo.at ? at : eo.at;
    }
    if (rc == 0)
        rc = runlock_acquire(cfg->state.dir, lock_wait, &lock, &err);
    if (rc == 0 && !eo.dry_run)
        rc = cli_sweep_tmp(cfg, ctx->log, &err);
    if (rc == 0)
        rc = cli_keys_load(cfg, CLI_NEED_SIGNER, &keys, &err);
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    /* Expiry is mirrored to the object store; a dry run changes nothing there either. */
    if (rc == 0 && !eo.dry_run)
        rc = cli_store_attach(cfg, &store, &err);
    if (rc == 0) {
        eo.archive_dir = cfg->archive.dir;
        eo.vault_dir = cfg->keys.vault_dir;
        eo.trust = &keys.trust;
        eo.signing_key = keys.signer;
        eo.audit = audit;
        eo.log = ctx->log;
        rc = expire_run(&eo, &report, &err);
        if (report != NULL && json)
            jbuf = report_json(report, eo.dry_run);
        else if (report != NULL)
            expire_report_print(stdout, report);
        fflush(stdout);
    }
    expire_report_free(report);
    cli_store_detach(store);
    audit_close(audit);
    cli_keys_release(&keys);
    runlock_release(lock);
    config_free(cfg);
    if (json)
        (void)cli_json_result(stdout, "expire", jbuf, rc == 0 ? NULL : &err);
    free(jbuf);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("expire", &err);
}

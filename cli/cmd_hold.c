/* cmd_hold.c — `mailret hold BATCH --reason TEXT` / `mailret hold --release BATCH --reason
 * TEXT`: legal hold (purge/hold.h), audited, under the run lock so that it never races
 * with expire. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "cli/cli_store.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/runlock.h"
#include "purge/hold.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret hold BATCH --reason TEXT\n"
            "       mailret hold --release BATCH --reason TEXT\n"
            "\n"
            "Place (or release) a legal hold on a batch: a held batch is kept past its\n"
            "expiry (expire skips it) and `mailret check` lists it as held.  Both are\n"
            "recorded in the audit log with the reason; name a case or a letter, not a\n"
            "person (anything shaped like an address, CPR or phone number is redacted).\n"
            "BATCH is a batch id or its directory name (see `mailret check`).\n");
}

int cmd_hold(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "release", no_argument, NULL, 'r' },
        { "reason", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mr_config *cfg = NULL;
    struct cli_keys keys;
    runlock *lock = NULL;
    audit_log *audit = NULL;
    mr_store *store = NULL;
    mr_error store_err;
    int store_rc = 0;
    const char *reason = NULL, *batch;
    bool release = false;
    char dir[4096];
    mr_error err;
    int o, rc;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'r': release = true; break;
        case 'm': reason = optarg; break;
        default: return cli_usage_error("hold", "bad option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("hold", "exactly one BATCH wanted");
    if (reason == NULL)
        return cli_usage_error("hold", "--reason TEXT is required");
    batch = argv[optind];
    memset(&keys, 0, sizeof keys);
    mr_error_clear(&err);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc == 0)
        rc = runlock_acquire(cfg->state.dir, 10, &lock, &err);
    if (rc == 0)
        rc = cli_keys_load(cfg, CLI_NEED_SIGNER, &keys, &err);
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    /* A hold is placed here even while the object store is out of reach: the store's
     * copy follows when the command is run again. */
    if (rc == 0)
        store_rc = cli_store_attach(cfg, &store, &store_err);
    if (rc == 0)
        rc = hold_set(cfg->archive.dir, cfg->keys.vault_dir, batch, !release, reason,
                      &keys.trust, keys.signer, audit, dir, sizeof dir, &err);
    if (rc == 0)
        printf("%s: legal hold %s\n", batch, release ? "released" : "placed");
    if (rc == 0 && store_rc != 0) {
        rc = store_rc;
        err = store_err;
        mr_error_prefix(&err, "batch %s: legal hold %s here, but not in the object store (run "
                        "the command again)", batch, release ? "released" : "placed");
    }
    cli_store_detach(store);
    audit_close(audit);
    cli_keys_release(&keys);
    runlock_release(lock);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("hold", &err);
}

/* cmd_erase.c — `mailret erase --email|--cpr`: record a person's erasure request in the
 * erasure ledger as tokens (purge/ledger.h).  The identifier is personal data, so it is
 * read from standard input by default: it then lands neither in shell history nor in the
 * process list (ps, /proc/PID/cmdline). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/runlock.h"
#include "purge/ledger.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret erase --email [-]  < identifiers\n"
            "       mailret erase --cpr [-]    < identifiers\n"
            "       mailret erase --email=VALUE | --cpr=VALUE   (discouraged)\n"
            "\n"
            "IT: record a person's erasure request.  Each identifier (one per line on\n"
            "standard input) is turned into its token under each epoch of the pseudonym key\n"
            "and each \"email:<token>\" or \"cpr:<token>\" is added to the erasure ledger\n"
            "([state] erasure_ledger) unless already there.  The identifier itself is\n"
            "stored nowhere.  Archives are immutable; every later restore leaves out the\n"
            "messages that carry a ledger token and reports how many.  Audited.\n"
            "Give the identifier on standard input (the default): a value on the command\n"
            "line is visible to every user of the host (ps) and stays in shell history.\n");
}

/* One ledger entry per epoch of the pseudonym key: the person's mail is in batches of
 * every epoch, each under that epoch's token. */
static int record(const struct keys_pseudonym_set *keys, enum pseudo_kind kind,
                  const char *value, const char *ledger, audit_log *audit, mr_error *err)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < keys->n; i++) {
        pseudo_key key;
        char entry[64];
        bool added = false;
        memcpy(key.bytes, keys->v[i].key, sizeof key.bytes);
        rc = ledger_entry(&key, kind, value, entry, sizeof entry, err);
        OPENSSL_cleanse(&key, sizeof key);
        if (rc == 0)
            rc = ledger_add(ledger, entry, audit, &added, err);
        if (rc == 0)
            printf("%s\t%s\n", entry, added ? "recorded" : "already in the ledger");
    }
    return rc;
}

int cmd_erase(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "email", optional_argument, NULL, 'e' },
        { "cpr", optional_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mr_config *cfg = NULL;
    struct cli_keys keys;
    runlock *lock = NULL;
    audit_log *audit = NULL;
    const char *value = NULL;
    enum pseudo_kind kind = PSEUDO_EMAIL;
    int kinds = 0, o, rc;
    size_t n = 0;
    mr_error err;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'e': kind = PSEUDO_EMAIL; kinds++; value = optarg; break;
        case 'c': kind = PSEUDO_CPR; kinds++; value = optarg; break;
        default: return cli_usage_error("erase", "bad option");
        }
    }
    /* getopt hands an optional argument over only as --email=VALUE: accept the
     * documented "--email -" spelling too. */
    if (value == NULL && optind < argc && strcmp(argv[optind], "-") == 0)
        optind++;
    if (kinds != 1)
        return cli_usage_error("erase", "give exactly one of --email or --cpr");
    if (optind < argc)
        return cli_usage_error("erase", "unexpected argument (identifiers go on stdin)");
    if (value != NULL && strcmp(value, "-") == 0)
        value = NULL;
    memset(&keys, 0, sizeof keys);
    mr_error_clear(&err);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc == 0)
        rc = runlock_acquire(cfg->state.dir, 60, &lock, &err);
    if (rc == 0)
        rc = cli_keys_load(cfg, CLI_NEED_PSEUDONYM_KEY, &keys, &err);
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    if (rc == 0 && value != NULL) {
        log_warn(ctx->log, "identifier given on the command line: prefer standard input");
        rc = record(&keys.pkeys, kind, value, cfg->state.erasure_ledger, audit, &err);
        n = 1;
    } else if (rc == 0) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while (rc == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'
                               || line[len - 1] == ' '))
                line[--len] = '\0';
            if (len == 0)
                continue;
            rc = record(&keys.pkeys, kind, line, cfg->state.erasure_ledger, audit, &err);
            n++;
        }
        if (line != NULL) {
            OPENSSL_cleanse(line, cap);
            free(line);
        }
        if (rc == 0 && n == 0)
            rc = mr_error_set(&err, MR_E_INVALID, "no identifier on standard input");
    }
    audit_close(audit);
    cli_keys_release(&keys);
    runlock_release(lock);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("erase", &err);
}

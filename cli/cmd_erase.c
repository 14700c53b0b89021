/* cmd_erase.c — `mailret erase --email|--cpr`: record a person's erasure request in the
 * erasure ledger as tokens, sealed to IT (backup/ledger.h).  The identifier is personal data, so it is
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
#include "backup/ledger.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret erase --email [-]  < identifiers\n"
            "       mailret erase --cpr [-]    < identifiers\n"
            "       mailret erase --email=VALUE | --cpr=VALUE   (discouraged)\n"
            "       mailret erase --seal-ledger\n"
            "\n"
            "IT: record a person's erasure request.  Each identifier (one per line on\n"
            "standard input) is turned into its token under each epoch of the pseudonym\n"
            "key, and each entry \"email:<token>\" or \"cpr:<token>\" is sealed to IT's\n"
            "certificate and appended to the erasure ledger ([state] erasure_ledger), chained\n"
            "and signed with the host's signing key.  Neither the identifier nor the token is\n"
            "stored readably: the host can add to the ledger but not read it.  Archives are\n"
            "immutable; every later restore leaves out the messages that carry a ledger token\n"
            "and reports how many.  Audited (the entry's number, never the token).\n"
            "--seal-ledger seals a ledger in the old plaintext format (and creates an empty\n"
            "one when there is none) without recording anything.\n"
            "Give the identifier on standard input (the default): a value on the command\n"
            "line is visible to every user of the host (ps) and stays in shell history.\n");
}

/* One ledger entry per epoch of the pseudonym key: the person's mail is in batches of
 * every epoch, each under that epoch's token. */
static int record(const struct keys_pseudonym_set *keys, enum pseudo_kind kind,
                  const char *value, const struct ledger_writer *w, mr_error *err)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < keys->n; i++) {
        pseudo_key key;
        char entry[64];
        struct ledger_anchor a;
        memcpy(key.bytes, keys->v[i].key, sizeof key.bytes);
        rc = ledger_entry(&key, kind, value, entry, sizeof entry, err);
        OPENSSL_cleanse(&key, sizeof key);
        if (rc == 0)
            rc = ledger_append(w, entry, &a, err);
        OPENSSL_cleanse(entry, sizeof entry);
        if (rc == 0)
            printf("%s: recorded as erasure ledger entry %llu (pseudonym key epoch %u)\n",
                   pseudo_kind_name(kind), a.count, keys->v[i].epoch);
    }
    return rc;
}

int cmd_erase(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "email", optional_argument, NULL, 'e' },
        { "cpr", optional_argument, NULL, 'c' },
        { "seal-ledger", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mr_config *cfg = NULL;
    struct cli_keys keys;
    runlock *lock = NULL;
    audit_log *audit = NULL;
    const char *value = NULL;
    enum pseudo_kind kind = PSEUDO_EMAIL;
    struct ledger_writer w;
    bool seal_only = false;
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
        case 's': seal_only = true; break;
        default: return cli_usage_error("erase", "bad option");
        }
    }
    /* getopt hands an optional argument over only as --email=VALUE: accept the
     * documented "--email -" spelling too. */
    if (value == NULL && optind < argc && strcmp(argv[optind], "-") == 0)
        optind++;
    if (kinds != (seal_only ? 0 : 1))
        return cli_usage_error("erase", seal_only ? "--seal-ledger goes alone"
                                                  : "give exactly one of --email or --cpr");
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
        rc = cli_sweep_tmp(cfg, ctx->log, &err);
    if (rc == 0)
        rc = cli_keys_load(cfg, (seal_only ? 0 : CLI_NEED_PSEUDONYM_KEY) | CLI_NEED_CERTS
                                    | CLI_NEED_SIGNER, &keys, &err);
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    w = (struct ledger_writer){ .path = cfg != NULL ? cfg->state.erasure_ledger : NULL,
                                .it_cert = keys.it, .signer = keys.signer,
                                .keyring = keys.keyring, .audit = audit };
    if (rc == 0 && seal_only) {
        struct ledger_anchor a;
        rc = ledger_prepare(&w, &a, &err);
        if (rc == 0)
            printf("erasure ledger %s: sealed, %llu entries\n", w.path, a.count);
    } else if (rc == 0 && value != NULL) {
        log_warn(ctx->log, "identifier given on the command line: prefer standard input");
        rc = record(&keys.pkeys, kind, value, &w, &err);
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
            rc = record(&keys.pkeys, kind, line, &w, &err);
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

/* cmd_keys.c — `mailret keys init-it | init-host | rotate-signing | rotate-pseudonym |
 * reseal-pseudonym | export-pseudonym | import-pseudonym | list`.  init-it and
 * export-pseudonym run on IT's machine without a configuration; the others read [keys]
 * from the configuration file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/durable.h"
#include "common/secret.h"
#include "keys/keys.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret keys init-it --key FILE --cert FILE [--algo p256|rsa3072]\n"
            "                            [--cn NAME] [--days N] [--passphrase-file FILE]\n"
            "       mailret keys init-host --it-cert FILE [--reid-cert FILE]\n"
            "                              [--recover [--previous-keys FILE]]\n"
            "       mailret keys rotate-signing\n"
            "       mailret keys rotate-pseudonym\n"
            "       mailret keys reseal-pseudonym\n"
            "       mailret keys export-pseudonym --key FILE --to CERT --out FILE\n"
            "                       [--passphrase-file FILE] [--vault-dir DIR] [--audit-log FILE]\n"
            "       mailret keys import-pseudonym (--request FILE | FILE)\n"
            "       mailret keys list\n"
            "\n"
            "init-it    (IT's own machine) create IT's restore key pair: a private key\n"
            "           encrypted with a passphrase (from --passphrase-file, a file that only\n"
            "           its owner may read, or $MAILRET_IT_PASSPHRASE, or the terminal) and a\n"
            "           self-signed certificate to hand to the host.  P-256 by default.\n"
            "           Audited to --audit-log FILE if given.\n"
            "init-host  (the mailret host) install IT's certificate (and the re-identification\n"
            "           holder's, default IT's) where [keys] it_cert/reid_cert say, create the\n"
            "           pseudonym key (0600) with a copy sealed to the re-identification\n"
            "           holder in the vault, and create the Ed25519 batch-signing key (0600)\n"
            "           whose public key goes to [keys] host_keyring.  Prints the signing\n"
            "           key's fingerprint: IT pins the keyring file after comparing it.\n"
            "           Refuses to replace existing keys.  --recover: a new host continuing\n"
            "           the archive of a lost one: no pseudonym key is made (import the\n"
            "           archive's with import-pseudonym) and --previous-keys (IT's pinned\n"
            "           keyring of the earlier hosts) is added to the keyring first.\n"
            "rotate-signing  a new batch-signing key; the old public key stays in the\n"
            "           keyring (batches it signed still verify), its private key is\n"
            "           shredded.  Also creates the key on a host set up before signing.\n"
            "           Give IT the new keyring and fingerprint.\n"
            "rotate-pseudonym  a new epoch of the pseudonym key, sealed to the\n"
            "           re-identification holder; new batches use it and name it in their\n"
            "           manifest.  Earlier epochs stay: erase and restore --person compute a\n"
            "           person's token under every epoch.\n"
            "reseal-pseudonym  seal every epoch again to the current [keys] reid_cert,\n"
            "           replacing the vault's copies (after a re-identification holder was\n"
            "           set or changed).\n"
            "export-pseudonym  (IT / the re-identification holder) unseal every epoch of\n"
            "           the pseudonym key from the vault with --key (passphrase: --passphrase-\n"
            "           file, $MAILRET_REID_PASSPHRASE or the terminal) and seal them to the\n"
            "           new host's transfer certificate --to into --out.  Audited.\n"
            "import-pseudonym  (a recovered host) --request FILE: make a one-time transfer\n"
            "           key and write its certificate to FILE for IT; then FILE from IT:\n"
            "           install every epoch (host files, vault copies) and shred the\n"
            "           transfer key.  Audited.\n"
            "list       key ids, kinds, holders, created, expires; never key material.\n");
}

static int init_it(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' },   { "cert", required_argument, NULL, 'c' },
        { "algo", required_argument, NULL, 'a' },  { "cn", required_argument, NULL, 'n' },
        { "days", required_argument, NULL, 'd' },
        { "passphrase-file", required_argument, NULL, 'p' },
        { "audit-log", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 },
    };
    struct keys_it_options o = { .algo = KEYS_ALGO_P256 };
    struct keys_secret_source src = { .env = "MAILRET_IT_PASSPHRASE", .terminal = true,
                                      .prompt = "New IT key passphrase: ", .confirm = true };
    const char *audit_path = NULL;
    char *pass = NULL, id[KEYS_ID_LEN + 1];
    audit_log *audit = NULL;
    mr_error err;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'k': o.key_path = optarg; break;
        case 'c': o.cert_path = optarg; break;
        case 'n': o.common_name = optarg; break;
        case 'd': o.days = atoi(optarg); break;
        case 'p': src.file = optarg; break;
        case 'l': audit_path = optarg; break;
        case 'a':
            if (strcmp(optarg, "p256") == 0 || strcmp(optarg, "P-256") == 0)
                o.algo = KEYS_ALGO_P256;
            else if (strcmp(optarg, "rsa3072") == 0 || strcmp(optarg, "RSA-3072") == 0)
                o.algo = KEYS_ALGO_RSA3072;
            else
                return cli_usage_error("keys", "--algo must be p256 or rsa3072");
            break;
        default: return cli_usage_error("keys", "bad option for init-it");
        }
    }
    if (o.key_path == NULL || o.cert_path == NULL)
        return cli_usage_error("keys", "init-it needs --key and --cert");
    mr_error_clear(&err);
    rc = keys_secret_read(&src, &pass, &err);
    if (rc == 0 && audit_path != NULL)
        rc = audit_open(&audit, audit_path, &err);
    if (rc == 0) {
        o.passphrase = pass;
        rc = keys_init_it(&o, audit, id, &err);
    }
    secret_free(pass);
    audit_close(audit);
    if (rc != 0)
        return cli_fail("keys", &err);
    printf("IT key %s created\n  private key (keep with IT, never on the host): %s\n"
           "  certificate (install on the host with `keys init-host`): %s\n",
           id, o.key_path, o.cert_path);
    return CLI_EXIT_OK;
}

static int init_host(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "it-cert", required_argument, NULL, 'i' },
        { "reid-cert", required_argument, NULL, 'r' },
        { "recover", no_argument, NULL, 'R' },
        { "previous-keys", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 },
    };
    struct keys_host_options o = { 0 };
    struct mr_config *cfg = NULL;
    audit_log *audit = NULL;
    char sealed[4096];
    mr_error err;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'i': o.it_cert_source = optarg; break;
        case 'r': o.reid_cert_source = optarg; break;
        case 'R': o.recover = true; break;
        case 'p': o.previous_keyring = optarg; break;
        default: return cli_usage_error("keys", "bad option for init-host");
        }
    }
    if (o.it_cert_source == NULL)
        return cli_usage_error("keys", "init-host needs --it-cert FILE (IT's certificate)");
    if (o.previous_keyring != NULL && !o.recover)
        return cli_usage_error("keys", "--previous-keys goes with --recover");
    mr_error_clear(&err);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc != 0)
        return cli_fail("keys", &err);
    o.it_cert = cfg->keys.it_cert;
    o.reid_cert = cfg->keys.reid_cert != NULL ? cfg->keys.reid_cert : cfg->keys.it_cert;
    if (strcmp(o.reid_cert, o.it_cert) == 0 && o.reid_cert_source != NULL) {
        config_free(cfg);
        return cli_usage_error("keys", "--reid-cert given but [keys] reid_cert is not set");
    }
    o.pseudonym_key_file = cfg->keys.pseudonym_key_file;
    o.signing_key_file = cfg->keys.signing_key_file;
    o.host_keyring = cfg->keys.host_keyring;
    o.vault_dir = cfg->keys.vault_dir;
    rc = keys_pseudonym_sealed_path(cfg->keys.vault_dir, 0, sealed, sizeof sealed, &err);
    if (rc == 0)
        rc = durable_mkdirs(cfg->keys.vault_dir, 0700, &err);
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    if (rc == 0)
        rc = keys_init_host(&o, audit, &err);
    audit_close(audit);
    if (rc == 0 && o.recover)
        printf("host keys created for a recovered host; no pseudonym key yet: run `mailret "
               "keys import-pseudonym --request FILE` and give FILE to IT\n");
    else if (rc == 0)
        printf("host keys created: pseudonym key %s, sealed copy for the re-identification "
               "holder %s\n", o.pseudonym_key_file, sealed);
    if (rc == 0)
        printf("batch-signing key %s (id %s)\n"
               "  fingerprint SHA256:%s\n"
               "  IT pins the public keyring %s (compare this fingerprint)\n",
               o.signing_key_file, o.signing_id, o.signing_fpr, o.host_keyring);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("keys", &err);
}

static int rotate_signing(struct cli_ctx *ctx, int argc)
{
    struct mr_config *cfg = NULL;
    audit_log *audit = NULL;
    char id[KEYS_ID_LEN + 1], fpr[KEYS_FPR_LEN + 1];
    mr_error err;
    int rc;

    if (argc > 1)
        return cli_usage_error("keys", "rotate-signing takes no arguments");
    mr_error_clear(&err);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc != 0)
        return cli_fail("keys", &err);
    rc = audit_open(&audit, cfg->audit.log, &err);
    if (rc == 0)
        rc = keys_signing_new(cfg->keys.signing_key_file, cfg->keys.host_keyring, true, audit,
                              id, fpr, &err);
    audit_close(audit);
    if (rc == 0)
        printf("batch-signing key %s (id %s)\n  fingerprint SHA256:%s\n"
               "  give IT the keyring %s: it keeps the earlier keys\n",
               cfg->keys.signing_key_file, id, fpr, cfg->keys.host_keyring);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("keys", &err);
}

/* rotate-pseudonym and reseal-pseudonym: the host's keys, sealed to [keys] reid_cert. */
static int pseudonym_host(struct cli_ctx *ctx, int argc, bool rotate)
{
    struct mr_config *cfg = NULL;
    audit_log *audit = NULL;
    X509 *reid = NULL;
    char id[17] = "";
    unsigned epoch = 0;
    size_t n = 0;
    mr_error err;
    int rc;

    if (argc > 1)
        return cli_usage_error("keys", "%s takes no arguments",
                               rotate ? "rotate-pseudonym" : "reseal-pseudonym");
    mr_error_clear(&err);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc != 0)
        return cli_fail("keys", &err);
    rc = keys_cert_load(cfg->keys.reid_cert, &reid, &err);
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    if (rc == 0 && rotate)
        rc = keys_pseudonym_rotate(cfg->keys.pseudonym_key_file, cfg->keys.vault_dir, reid,
                                   audit, &epoch, id, &err);
    else if (rc == 0)
        rc = keys_pseudonym_reseal(cfg->keys.pseudonym_key_file, cfg->keys.vault_dir, reid,
                                   audit, &n, &err);
    audit_close(audit);
    X509_free(reid);
    config_free(cfg);
    if (rc != 0)
        return cli_fail("keys", &err);
    if (rotate)
        printf("pseudonym key epoch %u (id %s) created, sealed to the re-identification "
               "holder; new batches use it\n", epoch, id);
    else
        printf("%zu pseudonym key epoch(s) sealed again to the re-identification holder\n",
               n);
    return CLI_EXIT_OK;
}

static int export_pseudonym(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' }, { "to", required_argument, NULL, 't' },
        { "out", required_argument, NULL, 'o' },
        { "passphrase-file", required_argument, NULL, 'p' },
        { "vault-dir", required_argument, NULL, 'V' },
        { "audit-log", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 },
    };
    struct keys_secret_source src = { .env = "MAILRET_REID_PASSPHRASE", .terminal = true,
                                      .prompt = "Re-identification key passphrase: " };
    const char *key_path = NULL, *to = NULL, *out = NULL, *vault = NULL, *audit_path = NULL;
    struct keys_pseudonym_set set = { 0 };
    struct mr_config *cfg = NULL;
    audit_log *audit = NULL;
    EVP_PKEY *holder = NULL;
    X509 *recipient = NULL;
    char *pass = NULL;
    mr_error err;
    int opt, rc = 0;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'k': key_path = optarg; break;
        case 't': to = optarg; break;
        case 'o': out = optarg; break;
        case 'p': src.file = optarg; break;
        case 'V': vault = optarg; break;
        case 'l': audit_path = optarg; break;
        default: return cli_usage_error("keys", "bad option for export-pseudonym");
        }
    }
    if (optind < argc)
        return cli_usage_error("keys", "export-pseudonym: unexpected argument");
    if (key_path == NULL || to == NULL || out == NULL)
        return cli_usage_error("keys", "export-pseudonym needs --key, --to and --out");
    mr_error_clear(&err);
    /* On IT's machine there may be no configuration; explicit options win. */
    if (vault == NULL || audit_path == NULL || ctx->config_explicit) {
        rc = cli_config_load(ctx, &cfg, &err);
        if (rc == 0 && vault == NULL)
            vault = cfg->keys.vault_dir;
        if (rc == 0 && audit_path == NULL)
            audit_path = cfg->audit.log;
    }
    if (rc == 0)
        rc = keys_cert_load(to, &recipient, &err);
    if (rc == 0)
        rc = keys_secret_read(&src, &pass, &err);
    if (rc == 0)
        rc = keys_private_load(key_path, pass, &holder, &err);
    secret_free(pass);
    if (rc == 0)
        rc = audit_open(&audit, audit_path, &err);
    if (rc == 0)
        rc = keys_pseudonym_load_sealed(vault, &holder, 1, audit, &set, &err);
    if (rc == 0)
        rc = keys_pseudonym_export(&set, recipient, out, audit, &err);
    if (rc == 0)
        printf("%zu pseudonym key epoch(s) sealed to the transfer certificate %s into %s\n",
               set.n, to, out);
    keys_pseudonym_set_free(&set);
    audit_close(audit);
    EVP_PKEY_free(holder);
    X509_free(recipient);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("keys", &err);
}

static int import_pseudonym(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "request", required_argument, NULL, 'r' }, { NULL, 0, NULL, 0 },
    };
    const char *request = NULL, *bundle = NULL;
    struct mr_config *cfg = NULL;
    audit_log *audit = NULL;
    X509 *reid = NULL;
    size_t n = 0;
    mr_error err;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r': request = optarg; break;
        default: return cli_usage_error("keys", "bad option for import-pseudonym");
        }
    }
    if (optind < argc)
        bundle = argv[optind++];
    if (optind < argc || (request == NULL) == (bundle == NULL))
        return cli_usage_error("keys", "import-pseudonym needs either --request FILE or the "
                               "FILE IT exported");
    mr_error_clear(&err);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc != 0)
        return cli_fail("keys", &err);
    rc = durable_mkdirs(cfg->keys.vault_dir, 0700, &err);
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    if (rc == 0 && request != NULL)
        rc = keys_pseudonym_request(cfg->keys.pseudonym_key_file, request, audit, &err);
    if (rc == 0 && bundle != NULL)
        rc = keys_cert_load(cfg->keys.reid_cert, &reid, &err);
    if (rc == 0 && bundle != NULL)
        rc = keys_pseudonym_import(bundle, cfg->keys.pseudonym_key_file, cfg->keys.vault_dir,
                                   reid, audit, &n, &err);
    if (rc == 0 && request != NULL)
        printf("transfer certificate written to %s: give it to IT, who runs `mailret keys "
               "export-pseudonym --to %s`\n", request, request);
    else if (rc == 0)
        printf("%zu pseudonym key epoch(s) imported; transfer key shredded\n", n);
    audit_close(audit);
    X509_free(reid);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("keys", &err);
}

static int list(struct cli_ctx *ctx)
{
    struct mr_config *cfg = NULL;
    struct keys_entry *v = NULL;
    size_t n = 0;
    mr_error err;
    int rc;

    mr_error_clear(&err);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc != 0)
        return cli_fail("keys", &err);
    struct keys_list_options lo = {
        .vault_dir = cfg->keys.vault_dir, .it_cert = cfg->keys.it_cert,
        .reid_cert = cfg->keys.reid_cert, .pseudonym_key_file = cfg->keys.pseudonym_key_file,
        .manifest_key_file = cfg->keys.manifest_key_file,
        .signing_key_file = cfg->keys.signing_key_file, .host_keyring = cfg->keys.host_keyring,
    };
    rc = keys_list(&lo, &v, &n, &err);
    config_free(cfg);
    if (rc != 0)
        return cli_fail("keys", &err);
    printf("%-32s  %-13s  %-20s  %-20s  %-20s  %s\n", "ID", "KIND", "HOLDER", "CREATED",
           "EXPIRES", "BATCH");
    for (size_t i = 0; i < n; i++) {
        const struct keys_entry *e = &v[i];
        printf("%-32s  %-13s  %-20s  %-20s  %-20s  %s%s\n", e->id, e->kind, e->holder,
               e->created[0] ? e->created : "-", e->expires[0] ? e->expires : "-",
               e->batch[0] ? e->batch : "-",
               strncmp(e->kind, "epoch", 5) == 0 && !e->sealed_present ? " (shredded)" : "");
    }
    free(v);
    return CLI_EXIT_OK;
}

int cmd_keys(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
        || cli_wants_help(argc, argv)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "init-it") == 0)
        return init_it(argc - 1, argv + 1);
    if (strcmp(argv[1], "init-host") == 0)
        return init_host(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "rotate-signing") == 0)
        return rotate_signing(ctx, argc - 1);
    if (strcmp(argv[1], "rotate-pseudonym") == 0)
        return pseudonym_host(ctx, argc - 1, true);
    if (strcmp(argv[1], "reseal-pseudonym") == 0)
        return pseudonym_host(ctx, argc - 1, false);
    if (strcmp(argv[1], "export-pseudonym") == 0)
        return export_pseudonym(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "import-pseudonym") == 0)
        return import_pseudonym(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return list(ctx);
    return cli_usage_error("keys", "unknown subcommand '%s'", argv[1]);
}

/* cmd_restore.c — `mailret restore`, IT's command (see backup/restore.h).  Works with the
 * configuration file or, on IT's own machine, with --archive-dir/--vault-dir/--audit-log. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "pseudo/pseudo.h"
#include "backup/restore.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/secret.h"
#include "ingest/imap.h"
#include "ingest/ingest_setup.h"
#include "keys/keys.h"

#define MAX_LIST 64
#define PERSON_MAX 322      /* an address (320) or a CPR number, and the NUL */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret restore --reason TEXT --it-key FILE\n"
            "                       (--maildir DIR | --mbox FILE | --imap-mailbox NAME)\n"
            "                       [--batch ID]... [--mailbox NAME] [--from DATE] [--to DATE]\n"
            "                       [--message-id ID] [--person < FILE]\n"
            "                       [--pseudonymised] (--ledger FILE | --no-ledger)\n"
            "                       [--reid-key FILE] [--pseudonym-key FILE]\n"
            "                       [--archive-dir DIR --vault-dir DIR --audit-log FILE]\n"
            "                       [--json]\n"
            "                       [--host-key FILE]... [--legacy-manifest-key FILE]\n"
            "                       [--trust-unsigned]\n"
            "\n"
            "IT: restore archived mail, byte for byte, with its flags and INTERNALDATE.\n"
            "The batch's epoch keys are unsealed with IT's private key; its passphrase comes\n"
            "from --it-passphrase-file (readable by its owner only) or $MAILRET_IT_PASSPHRASE\n"
            "or the terminal.  --reid-key (passphrase: --reid-passphrase-file or\n"
            "$MAILRET_REID_PASSPHRASE) if re-identification is held by a second person.\n"
            "\n"
            "  --batch ID         a batch id or directory name (repeatable; default: all)\n"
            "  --from/--to DATE   INTERNALDATE in [from, to): YYYY-MM-DD or ...THH:MM:SSZ\n"
            "  --message-id ID    only this Message-ID\n"
            "  --person           messages naming one of the addresses or CPR numbers read\n"
            "                     from standard input, one per line (never on the command\n"
            "                     line, which every user can see); matched via their tokens,\n"
            "                     under every epoch of the pseudonym key: the host's\n"
            "                     (--pseudonym-key, [keys]) or the vault's copies, sealed to\n"
            "                     the re-identification holder (--reid-key)\n"
            "  --pseudonymised    no re-identification: the archived bytes (content key only)\n"
            "  --ledger FILE      the erasure ledger copied from the host (default on the\n"
            "                     host: [state] erasure_ledger).  Required: it must be signed\n"
            "                     by a pinned host key and agree with every batch's manifest;\n"
            "                     messages carrying a listed token are always left out\n"
            "  --no-ledger        restore without it: erased people come back (printed and\n"
            "                     audited)\n"
            "  --imap-mailbox NAME  APPEND into this mailbox on the configured [imap] server\n"
            "                     (created if missing) with original flags and INTERNALDATE,\n"
            "                     except \\Deleted\n"
            "  --keep-deleted     with --imap-mailbox: set \\Deleted again where it was set\n"
            "  --reason TEXT      why, e.g. a ticket number (required; goes to the audit log;\n"
            "                     never a person's name or address)\n"
            "  --host-key FILE    the host's pinned public signing keys (its keyring; default\n"
            "                     [keys] host_keyring).  A batch is restored only if its\n"
            "                     manifest is signed by one of them and every file matches\n"
            "  --legacy-manifest-key FILE  HMAC key of batches from before signing\n"
            "  --trust-unsigned   restore a batch whose manifest is not authentic anyway\n"
            "                     (printed, logged and audited per batch)\n"
            "  --json             one JSON object: restored, batches, erased (on failure:\n"
            "                     error and message)\n"
            "\n"
            "Exit status: 0 restored (or everything that matched is erased), 1 failed or\n"
            "nothing matched the selection, 2 usage error.\n");
}

static int load_private(const char *path, const char *pass_file, const char *env,
                        const char *prompt, EVP_PKEY **out, mr_error *err)
{
    struct keys_secret_source src = { .file = pass_file, .env = env, .terminal = true,
                                      .prompt = prompt };
    char *pass = NULL;
    int rc = keys_secret_read(&src, &pass, err);

    if (rc == 0)
        rc = keys_private_load(path, pass, out, err);
    secret_free(pass);
    return rc;
}

/* IMAP APPEND as a restore destination.  \Recent cannot be set by a client; \Deleted is
 * left out unless asked for (--keep-deleted): the next EXPUNGE by any client of the live
 * mailbox would remove the restored message again. */
struct imap_sink {
    imap_conn *conn;
    const char *mailbox;
    bool keep_deleted;
    size_t attempted;
    mr_log *log;
};

static int imap_sink_put(void *ctx, const unsigned char *msg, size_t len, const char *flags,
                         time_t internaldate, int tz_min, mr_error *err)
{
    struct imap_sink *s = ctx;
    char clean[512] = "";
    int rc;
    const char *p = flags != NULL ? flags : "";

    while (*p != '\0') {
        size_t n = strcspn(p, " ");
        bool drop = (n == 7 && strncasecmp(p, "\\Recent", 7) == 0) ||
                    (!s->keep_deleted && n == 8 && strncasecmp(p, "\\Deleted", 8) == 0);
        if (n > 0 && !drop && strlen(clean) + n + 2 < sizeof clean) {
            if (clean[0] != '\0')
                strcat(clean, " ");
            strncat(clean, p, n);
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    s->attempted++;
    rc = imap_append(s->conn, s->mailbox, clean, internaldate, tz_min, msg, len, err);
    /* The server refused this message (NO/BAD: too large, over quota, content it will
     * not store) and the session is still usable: say so on one line and go on. */
    if (rc == MR_E_PROTOCOL && imap_usable(s->conn)) {
        char when[32] = "";
        struct tm tm;
        if (gmtime_r(&internaldate, &tm) != NULL)
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        log_error(s->log, "restore: message %zu (INTERNALDATE %s, %zu bytes) not appended: %s",
                  s->attempted, when, len, err->msg);
        mr_error_clear(err);
        return RESTORE_SINK_REFUSED;
    }
    return rc;
}

static int imap_sink_open(const struct mr_config *cfg, struct imap_sink *s, mr_error *err)
{
    struct imap_options io;
    char *password = NULL;
    int rc = ingest_setup_imap_options(cfg, &io, &password, err);

    if (rc == 0)
        rc = imap_connect(&io, &s->conn, err);
    secret_free(password);
    if (rc == 0)
        rc = imap_create(s->conn, s->mailbox, true, err);
    return rc;
}

/* "kind:token" for an address or a CPR number. */
static int person_token(const pseudo_key *pk, const char *value, char *out, size_t size,
                        mr_error *err)
{
    char tok[PSEUDO_TOKEN_LEN + 1];
    enum pseudo_kind kind = strchr(value, '@') != NULL ? PSEUDO_EMAIL : PSEUDO_CPR;
    int rc = pseudo_token(pk, kind, value, tok, err);

    if (rc != 0)
        return mr_error_prefix(err, "--person");
    snprintf(out, size, "%s:%s", pseudo_kind_name(kind), tok);
    return 0;
}

/* The persons for --person: one address or CPR number per line on standard input. */
static int read_persons(char buf[MAX_LIST][PERSON_MAX], size_t *n)
{
    char line[PERSON_MAX + 2];

    *n = 0;
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line);
        char *s = line;
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            OPENSSL_cleanse(line, sizeof line);
            return cli_usage_error("restore", "--person: a line on standard input is longer "
                                   "than %d characters", PERSON_MAX - 1);
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'
                           || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            continue;
        if (*n == MAX_LIST) {
            OPENSSL_cleanse(line, sizeof line);
            return cli_usage_error("restore", "--person: more than %d lines on standard input",
                                   MAX_LIST);
        }
        len = strlen(s);
        if (len >= PERSON_MAX)
            len = PERSON_MAX - 1;   /* not reached: longer lines were refused above */
        memcpy(buf[*n], s, len);
        buf[(*n)++][len] = '\0';
    }
    OPENSSL_cleanse(line, sizeof line);
    if (*n == 0)
        return cli_usage_error("restore", "--person: no address or CPR number on standard "
                               "input");
    return CLI_EXIT_OK;
}

/* Every epoch of the pseudonym key: the host's files when readable (restore on the host),
 * otherwise the vault's copies, sealed to the re-identification holder (IT's key opens
 * only copies made before they went to that holder). */
static int load_pseudonym_keys(const char *file, const char *vault, EVP_PKEY *reid,
                               EVP_PKEY *it, audit_log *audit, struct keys_pseudonym_set *out,
                               mr_error *err)
{
    EVP_PKEY *holders[2] = { reid, it };
    int rc;

    if (file != NULL && keys_pseudonym_load_host(file, out, err) == 0)
        return 0;
    rc = keys_pseudonym_load_sealed(vault, holders, 2, audit, out, err);
    return rc != 0 ? mr_error_prefix(err, "--person needs the pseudonym key") : 0;
}

/* Each person's token under each epoch, with the epoch it belongs to. */
static int person_tokens(const struct keys_pseudonym_set *ks, const char *const *persons,
                         size_t n_persons, char ***tokens, unsigned **epochs, size_t *n,
                         mr_error *err)
{
    size_t total = n_persons * ks->n;
    int rc = 0;

    *n = 0;
    *tokens = calloc(total ? total : 1, sizeof **tokens);
    *epochs = calloc(total ? total : 1, sizeof **epochs);
    if (*tokens == NULL || *epochs == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n_persons; i++)
        for (size_t e = 0; rc == 0 && e < ks->n; e++) {
            pseudo_key pk;
            char *t = malloc(PSEUDO_TOKEN_LEN + 16);
            if (t == NULL) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            memcpy(pk.bytes, ks->v[e].key, sizeof pk.bytes);
            rc = person_token(&pk, persons[i], t, PSEUDO_TOKEN_LEN + 16, err);
            OPENSSL_cleanse(&pk, sizeof pk);
            (*tokens)[*n] = t;
            (*epochs)[(*n)++] = ks->v[e].epoch;
        }
    return rc;
}

int cmd_restore(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "reason", required_argument, NULL, 'r' },
        { "it-key", required_argument, NULL, 'k' },
        { "it-passphrase-file", required_argument, NULL, 'P' },
        { "reid-key", required_argument, NULL, 'K' },
        { "reid-passphrase-file", required_argument, NULL, 'Q' },
        { "maildir", required_argument, NULL, 'M' },
        { "mbox", required_argument, NULL, 'B' },
        { "batch", required_argument, NULL, 'b' },
        { "mailbox", required_argument, NULL, 'm' },
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "message-id", required_argument, NULL, 'i' },
        { "person", no_argument, NULL, 'p' },
        { "pseudonymised", no_argument, NULL, 'z' },
        { "ledger", required_argument, NULL, 'l' },
        { "no-ledger", no_argument, NULL, 'N' },
        { "pseudonym-key", required_argument, NULL, 'y' },
        { "archive-dir", required_argument, NULL, 'A' },
        { "vault-dir", required_argument, NULL, 'V' },
        { "audit-log", required_argument, NULL, 'L' },
        { "imap-mailbox", required_argument, NULL, 'I' },
        { "keep-deleted", no_argument, NULL, 'D' },
        { "json", no_argument, NULL, 'j' },
        { "host-key", required_argument, NULL, 'H' },
        { "legacy-manifest-key", required_argument, NULL, 'G' },
        { "trust-unsigned", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct restore_options o = { .format = RESTORE_MAILDIR };
    const char *it_key = NULL, *it_pass = NULL, *reid_key = NULL, *reid_pass = NULL;
    const char *from = NULL, *to = NULL, *pkey_file = NULL, *audit_path = NULL;
    const char *batches[MAX_LIST], *persons[MAX_LIST], *host_keys[MAX_LIST];
    static char person_buf[MAX_LIST][PERSON_MAX];
    bool persons_stdin = false;
    const char *legacy_key = NULL;
    size_t n_host_keys = 0;
    bool trust_unsigned = false;
    struct cli_trust trust = { 0 };
    char **tokens = NULL, ledger_default[4096];
    unsigned *token_epochs = NULL;
    size_t n_tokens = 0;
    struct keys_pseudonym_set pkeys = { 0 };
    size_t n_batches = 0, n_persons = 0;
    struct mr_config *cfg = NULL;
    audit_log *audit = NULL;
    EVP_PKEY *it = NULL, *reid = NULL;
    struct restore_stats st;
    const char *zone = MRTIME_DEFAULT_ZONE;
    struct imap_sink imap_out = { 0 };
    bool json = false;
    mr_error err;
    int opt, rc = 0;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r': o.reason = optarg; break;
        case 'k': it_key = optarg; break;
        case 'P': it_pass = optarg; break;
        case 'K': reid_key = optarg; break;
        case 'Q': reid_pass = optarg; break;
        case 'M': o.format = RESTORE_MAILDIR; o.output = optarg; break;
        case 'B': o.format = RESTORE_MBOX; o.output = optarg; break;
        case 'b':
            if (n_batches == MAX_LIST)
                return cli_usage_error("restore", "too many --batch");
            batches[n_batches++] = optarg;
            break;
        case 'm': o.mailbox = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'i': o.message_id = optarg; break;
        case 'p': persons_stdin = true; break;
        case 'z': o.pseudonymised = true; break;
        case 'l': o.ledger_path = optarg; break;
        case 'N': o.no_ledger = true; break;
        case 'y': pkey_file = optarg; break;
        case 'A': o.archive_dir = optarg; break;
        case 'V': o.vault_dir = optarg; break;
        case 'L': audit_path = optarg; break;
        case 'j': json = true; break;
        case 'I': o.format = RESTORE_SINK; imap_out.mailbox = optarg; o.output = optarg; break;
        case 'D': imap_out.keep_deleted = true; break;
        case 'H':
            if (n_host_keys == MAX_LIST)
                return cli_usage_error("restore", "too many --host-key");
            host_keys[n_host_keys++] = optarg;
            break;
        case 'G': legacy_key = optarg; break;
        case 'U': trust_unsigned = true; break;
        default: return cli_usage_error("restore", "unknown option");
        }
    }
    /* A stray argument may be a person's address or CPR number: never echoed. */
    if (optind < argc)
        return cli_usage_error("restore", persons_stdin
                                              ? "--person reads the addresses or CPR numbers "
                                                "from standard input, one per line, not from "
                                                "the command line"
                                              : "unexpected argument (%d)", optind);
    if (o.reason == NULL)
        return cli_usage_error("restore", "--reason is required (it goes to the audit log)");
    if (o.output == NULL)
        return cli_usage_error("restore", "give --maildir DIR, --mbox FILE or --imap-mailbox");
    if (imap_out.keep_deleted && o.format != RESTORE_SINK)
        return cli_usage_error("restore", "--keep-deleted goes with --imap-mailbox");
    if (it_key == NULL)
        return cli_usage_error("restore", "--it-key FILE is required: only IT can restore");
    if (o.ledger_path != NULL && o.no_ledger)
        return cli_usage_error("restore", "give either --ledger FILE or --no-ledger");
    if (persons_stdin) {
        rc = read_persons(person_buf, &n_persons);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < n_persons; i++)
            persons[i] = person_buf[i];
    }
    mr_error_clear(&err);
    /* The configuration is optional on IT's machine; explicit options win. */
    if (o.archive_dir == NULL || o.vault_dir == NULL || audit_path == NULL
        || ctx->config_explicit || o.format == RESTORE_SINK) {
        rc = cli_config_load(ctx, &cfg, &err);
        if (rc != 0)
            return cli_fail_json("restore", json, &err);
        if (o.archive_dir == NULL)
            o.archive_dir = cfg->archive.dir;
        if (o.vault_dir == NULL)
            o.vault_dir = cfg->keys.vault_dir;
        if (audit_path == NULL)
            audit_path = cfg->audit.log;
        if (pkey_file == NULL)
            pkey_file = cfg->keys.pseudonym_key_file;
        if (o.ledger_path == NULL && !o.no_ledger) {
            snprintf(ledger_default, sizeof ledger_default, "%s", cfg->state.erasure_ledger);
            if (access(ledger_default, F_OK) != 0) {
                rc = mr_error_set(&err, MR_E_NOTFOUND, "no erasure ledger at %s: give "
                                  "--ledger FILE, or --no-ledger to restore without one",
                                  ledger_default);
                config_free(cfg);
                return cli_fail_json("restore", json, &err);
            }
            o.ledger_path = ledger_default;
        }
        zone = cfg->retention.timezone;
    }
    if (o.ledger_path == NULL && !o.no_ledger)
        rc = mr_error_set(&err, MR_E_INVALID, "the erasure ledger is required: copy it from "
                          "the host beside the batches and give --ledger FILE (or "
                          "--no-ledger, audited)");
    if (rc == 0)
        rc = cli_trust_setup(cfg, host_keys, n_host_keys, legacy_key, trust_unsigned,
                             &trust, &err);
    if (rc == 0)
        o.trust = &trust.trust;
    if (rc == 0 && from != NULL)
        rc = mrtime_parse(from, zone, &o.from, &err);
    if (rc == 0 && to != NULL)
        rc = mrtime_parse(to, zone, &o.to, &err);
    if (rc == 0)
        rc = load_private(it_key, it_pass, "MAILRET_IT_PASSPHRASE", "IT key passphrase: ", &it,
                          &err);
    /* The re-identification key also opens the pseudonym key, which --person needs even
     * for pseudonymised output. */
    if (rc == 0 && reid_key != NULL && (!o.pseudonymised || n_persons > 0))
        rc = load_private(reid_key, reid_pass, "MAILRET_REID_PASSPHRASE",
                          "Re-identification key passphrase: ", &reid, &err);
    if (rc == 0)
        rc = audit_open(&audit, audit_path, &err);
    if (rc == 0 && n_persons > 0) {
        rc = load_pseudonym_keys(pkey_file, o.vault_dir, reid, it, audit, &pkeys, &err);
        if (rc == 0)
            rc = person_tokens(&pkeys, persons, n_persons, &tokens, &token_epochs, &n_tokens,
                               &err);
        keys_pseudonym_set_free(&pkeys);
    }
    if (rc == 0 && o.no_ledger)
        fprintf(stderr, "mailret restore: WARNING: restoring WITHOUT the erasure ledger "
                "(--no-ledger): mail of people who asked to be erased comes back; this is "
                "recorded in the audit log\n");
    if (rc == 0 && o.format == RESTORE_SINK) {
        imap_out.log = ctx->log;
        rc = imap_sink_open(cfg, &imap_out, &err);
        o.sink = imap_sink_put;
        o.sink_ctx = &imap_out;
    }
    if (rc == 0) {
        o.batches = batches;
        o.n_batches = n_batches;
        o.tokens = (const char *const *)tokens;
        o.n_tokens = n_tokens;
        o.token_epochs = token_epochs;
        o.it_key = it;
        o.reid_key = o.pseudonymised ? NULL : reid;
        o.audit = audit;
        o.log = ctx->log;
        rc = restore_run(&o, &st, &err);
    }
    /* A selection that matched nothing is a mistake to report, not a successful restore;
     * everything matched but erased is the ledger doing its job. */
    if (rc == 0 && st.restored == 0 && st.erased == 0 && st.refused == 0)
        rc = mr_error_set(&err, MR_E_NOTFOUND, "nothing matched the selection (%zu batch(es) "
                          "searched); nothing restored", st.batches);
    if (rc == 0 && json) {
        printf("{\"restored\": %zu, \"batches\": %zu, \"erased\": %zu, "
               "\"not_selected\": %zu, \"refused\": %zu}\n", st.restored, st.batches,
               st.erased, st.not_selected, st.refused);
    } else if (rc == 0) {
        printf("restored %zu messages from %zu batches to %s; %zu left out by the erasure "
               "ledger", st.restored, st.batches, o.output, st.erased);
        if (o.format == RESTORE_SINK)
            printf("; %zu refused by the server", st.refused);
        printf("\n");
    }
    if (rc == 0 && st.unverified > 0)
        printf("WARNING: %zu batch(es) restored WITHOUT an authentic manifest "
               "(--trust-unsigned)\n", st.unverified);
    if (rc == 0 && st.legacy > 0)
        printf("%zu batch(es) authenticated by the legacy manifest HMAC only\n", st.legacy);
    cli_trust_release(&trust);
    if (rc == 0 && st.refused > 0)
        rc = mr_error_set(&err, MR_E_PROTOCOL, "%zu message%s refused by the IMAP "
                          "server (each named in the log); the others were restored",
                          st.refused, st.refused == 1 ? "" : "s");
    else if (rc != 0 && json)
        (void)cli_json_result(stdout, "restore", NULL, &err);
    imap_close(imap_out.conn);
    audit_close(audit);
    EVP_PKEY_free(it);
    EVP_PKEY_free(reid);
    for (size_t i = 0; i < n_tokens; i++)
        free(tokens[i]);
    free(tokens);
    free(token_epochs);
    OPENSSL_cleanse(person_buf, sizeof person_buf);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("restore", &err);
}

/* cmd_restore.c — `mailret restore`, IT's command (see backup/restore.h).  Works with the
 * configuration file or, on IT's own machine, with --archive-dir/--vault-dir/--audit-log. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/cli_it.h"
#include "pseudo/pseudo.h"
#include "backup/restore.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/progress.h"
#include "common/secret.h"
#include "imap/imap.h"
#include "keys/keys.h"

#define MAX_LIST 64
#define PERSON_MAX 322      /* an address (320) or a CPR number, and the NUL */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret restore --reason TEXT --it-key FILE\n"
            "                       (--maildir DIR | --mbox FILE | --imap-mailbox NAME |\n"
            "                        --list)\n"
            "                       [--batch ID]... [--mailbox NAME] [--from DATE] [--to DATE]\n"
            "                       [--message-id ID] [--person < FILE]\n"
            "                       [--pseudonymised] (--ledger FILE | --no-ledger)\n"
            "                       [--reid-key FILE] [--pseudonym-key FILE]\n"
            "                       [--archive-dir DIR --vault-dir DIR --audit-log FILE]\n"
            "                       [--json] [--progress | --no-progress] [--no-locator]\n"
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
            "  --account NAME     the account the mail came from: only its batches (filed\n"
            "                     as NAME:mailbox; the account default's under the bare\n"
            "                     name), --mailbox is its mailbox, and --imap-mailbox\n"
            "                     restores into its server (needed with several accounts)\n"
            "  --imap-mailbox NAME  APPEND into this mailbox on the configured IMAP server\n"
            "                     (created if missing) with original flags and INTERNALDATE,\n"
            "                     except \\Deleted\n"
            "  --keep-deleted     with --imap-mailbox: set \\Deleted again where it was set\n"
            "  --list             write no mail: per batch, how many messages and bytes the\n"
            "                     selection would restore (after the erasure ledger)\n"
            "  --progress, --no-progress  a progress line on stderr (messages, bytes, rate,\n"
            "                     ETA); default: on when stderr is a terminal outside systemd\n"
            "\n"
            "Restoring is idempotent: a message whose bytes (SHA-256, as the destination\n"
            "stores them) are in the Maildir, mbox or IMAP mailbox already is not written\n"
            "again, so a restore repeated into the same place adds nothing (counted as\n"
            "\"already there\").\n"
            "  --reason TEXT      why, e.g. a ticket number (required; goes to the audit log;\n"
            "                     never a person's name or address)\n"
            "  --host-key FILE    the host's pinned public signing keys (its keyring; default\n"
            "                     [keys] host_keyring).  A batch is restored only if its\n"
            "                     manifest is signed by one of them and every file matches\n"
            "  --legacy-manifest-key FILE  HMAC key of batches from before signing\n"
            "  --trust-unsigned   restore a batch whose manifest is not authentic anyway\n"
            "                     (printed, logged and audited per batch)\n"
            "  --json             one JSON object: restored, batches, erased, duplicates,\n"
            "                     volumes read and skipped (with --list: per batch messages\n"
            "                     and bytes; on failure: error and message)\n"
            "  --no-locator       read every volume even for --person, --message-id or\n"
            "                     dates (by default each batch's locator picks the volumes\n"
            "                     that hold a match; a batch without one is read whole)\n"
            "\n"
            "On IT's machine a configuration with [archive] store = s3 reads the batches\n"
            "from the object store ([archive] dir is a cache; only the volumes a selection\n"
            "needs are fetched, each checked against its signed manifest).\n"
            "\n"
            "Exit status: 0 restored (or everything that matched is erased), 1 failed or\n"
            "nothing matched the selection, 2 usage error.\n");
}

static void access_usage(FILE *out)
{
    fprintf(out,
            "usage: mailret access-request --reason TEXT --it-key FILE\n"
            "                              (--maildir DIR | --mbox FILE) [--summary FILE]\n"
            "                              [--reid-key FILE] [--pseudonym-key FILE]\n"
            "                              (--ledger FILE | --no-ledger)\n"
            "                              [--archive-dir DIR --vault-dir DIR --audit-log FILE]\n"
            "                              [--host-key FILE]... [--json] < IDENTIFIERS\n"
            "\n"
            "IT, for a data subject's request for access (GDPR Art. 15): every archived\n"
            "message of one person, across all batches and mailboxes, re-identified, into\n"
            "a Maildir or an mbox file, and a summary (messages per batch, and their dates)\n"
            "on standard output and in --summary FILE (created; it names no person).\n"
            "The person's addresses and CPR numbers are read from standard input, one per\n"
            "line (never the command line).  The erasure ledger applies as for restore;\n"
            "each batch's locator picks the volumes to decrypt.  Other options as for\n"
            "`mailret restore`.  Exit status: 0 done, 1 failed or nothing found, 2 usage.\n");
}

/* --list: what each batch would bring back, printed after the run. */
struct restore_listing {
    json_t *batches;
};

static void restore_listing_add(void *ctx, const char *batch_id, const char *mailbox,
                                size_t messages, uint64_t bytes)
{
    struct restore_listing *l = ctx;

    if (l->batches == NULL && (l->batches = json_array()) == NULL)
        return;
    json_array_append_new(l->batches, json_pack("{s:s, s:s, s:I, s:I}", "batch", batch_id,
                                                "mailbox", mailbox, "messages",
                                                (json_int_t)messages, "bytes",
                                                (json_int_t)bytes));
}

static int restore_listing_print(struct restore_listing *l, const struct restore_stats *st,
                                 bool json, mr_error *err)
{
    size_t i;
    json_t *b;

    if (l->batches == NULL && (l->batches = json_array()) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (json) {
        json_t *o = json_pack("{s:O, s:I, s:I, s:I, s:I}", "batches", l->batches, "messages",
                              (json_int_t)st->listed, "bytes", (json_int_t)st->listed_bytes,
                              "erased", (json_int_t)st->erased, "not_selected",
                              (json_int_t)st->not_selected);
        int rc = o != NULL && json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0
                 ? 0 : mr_error_set(err, MR_E_IO, "cannot write the listing");
        json_decref(o);
        printf("\n");
        return rc;
    }
    printf("%-40s %-20s %9s %14s\n", "BATCH", "MAILBOX", "MESSAGES", "BYTES");
    json_array_foreach(l->batches, i, b)
        printf("%-40s %-20s %9lld %14lld\n", json_string_value(json_object_get(b, "batch")),
               json_string_value(json_object_get(b, "mailbox")),
               (long long)json_integer_value(json_object_get(b, "messages")),
               (long long)json_integer_value(json_object_get(b, "bytes")));
    printf("%zu messages, %llu bytes in %zu batches would be restored; %zu left out by the "
           "erasure ledger; nothing written\n", st->listed,
           (unsigned long long)st->listed_bytes, st->batches, st->erased);
    return 0;
}

static void restore_listing_free(struct restore_listing *l)
{
    json_decref(l->batches);
    l->batches = NULL;
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

/* An access request's summary: how many messages, from which batches and months. */
#define SUMMARY_MAX 512
struct access_summary {
    struct { char mailbox[256], batch[64]; size_t n; time_t first, last; } b[SUMMARY_MAX];
    size_t n_b;
    size_t total, overflow;
};

static void summary_add(void *ctx, const char *mailbox, const char *batch_id, time_t when)
{
    struct access_summary *s = ctx;
    size_t i;

    s->total++;
    for (i = 0; i < s->n_b; i++)
        if (strcmp(s->b[i].batch, batch_id) == 0)
            break;
    if (i == s->n_b) {
        if (s->n_b == SUMMARY_MAX) {
            s->overflow++;
            return;
        }
        snprintf(s->b[i].mailbox, sizeof s->b[i].mailbox, "%s", mailbox);
        snprintf(s->b[i].batch, sizeof s->b[i].batch, "%s", batch_id);
        s->b[i].first = s->b[i].last = when;
        s->n_b++;
    }
    s->b[i].n++;
    if (when < s->b[i].first)
        s->b[i].first = when;
    if (when > s->b[i].last)
        s->b[i].last = when;
}

static void month(time_t t, const char *zone, char out[16])
{
    if (mrtime_format_month(t, zone, out, 16, NULL) != 0)
        snprintf(out, 16, "?");
}

/* The summary names mailboxes, batches and months, never the person. */
static int summary_write(const struct access_summary *s, const struct restore_stats *st,
                         const char *path, const char *zone, bool json, mr_error *err)
{
    FILE *f = path != NULL ? fopen(path, "wx") : NULL;
    FILE *outs[2] = { json ? NULL : stdout, f };
    time_t first = 0, last = 0;
    char a[16] = "-", b[16] = "-";

    if (path != NULL && f == NULL)
        return mr_error_errno(err, MR_E_IO, errno, "cannot create summary %s", path);
    for (size_t i = 0; i < s->n_b; i++) {
        if (first == 0 || s->b[i].first < first)
            first = s->b[i].first;
        if (s->b[i].last > last)
            last = s->b[i].last;
    }
    for (int k = 0; k < 2; k++) {
        FILE *o = outs[k];
        if (o == NULL)
            continue;
        if (s->total > 0) {
            month(first, zone, a);
            month(last, zone, b);
        }
        fprintf(o, "access request: %zu messages from %zu batch(es), dated %s to %s; %zu "
                "left out by the erasure ledger\n", s->total, s->n_b, a, b, st->erased);
        for (size_t i = 0; i < s->n_b; i++) {
            month(s->b[i].first, zone, a);
            month(s->b[i].last, zone, b);
            fprintf(o, "  %s\t%s\t%zu messages\t%s to %s\n", s->b[i].mailbox, s->b[i].batch,
                    s->b[i].n, a, b);
        }
        if (s->overflow > 0)
            fprintf(o, "  (%zu more messages in batches past the first %d)\n", s->overflow,
                    SUMMARY_MAX);
    }
    if (f != NULL && fclose(f) != 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot write summary %s", path);
    return 0;
}

static int restore_command(struct cli_ctx *ctx, int argc, char **argv, bool access_request)
{
    const char *name = access_request ? "access-request" : "restore";
    static const struct option opts[] = {
        { "reason", required_argument, NULL, 'r' },
        { "maildir", required_argument, NULL, 'M' },
        { "mbox", required_argument, NULL, 'B' },
        { "batch", required_argument, NULL, 'b' },
        { "mailbox", required_argument, NULL, 'm' },
        { "account", required_argument, NULL, 'a' },
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "message-id", required_argument, NULL, 'i' },
        { "person", no_argument, NULL, 'p' },
        { "pseudonymised", no_argument, NULL, 'z' },
        { "ledger", required_argument, NULL, 'l' },
        { "no-ledger", no_argument, NULL, 'N' },
        { "pseudonym-key", required_argument, NULL, 'y' },
        { "imap-mailbox", required_argument, NULL, 'I' },
        { "keep-deleted", no_argument, NULL, 'D' },
        { "json", no_argument, NULL, 'j' },
        { "no-locator", no_argument, NULL, 'O' },
        { "summary", required_argument, NULL, 'S' },
        { "list", no_argument, NULL, 'T' },
        { "progress", no_argument, NULL, 'g' },
        { "no-progress", no_argument, NULL, 'n' },
        CLI_IT_LONG_OPTIONS,
        CLI_IT_TRUST_UNSIGNED_OPTION,
        { NULL, 0, NULL, 0 },
    };
    struct restore_options o = { .format = RESTORE_MAILDIR };
    static struct access_summary summary;
    const char *summary_path = NULL;
    bool selection_given = false;
    struct cli_it_args args = { 0 };
    struct cli_it it = { 0 };
    const char *from = NULL, *to = NULL, *pkey_file = NULL;
    const char *batches[MAX_LIST], *persons[MAX_LIST];
    static char person_buf[MAX_LIST][PERSON_MAX];
    bool persons_stdin = false;
    char **tokens = NULL, ledger_default[4096];
    unsigned *token_epochs = NULL;
    size_t n_tokens = 0;
    struct keys_pseudonym_set pkeys = { 0 };
    size_t n_batches = 0, n_persons = 0;
    struct mr_config *cfg = NULL;
    struct restore_stats st;
    const char *zone = MRTIME_DEFAULT_ZONE;
    struct restore_imap_options imap_out = { 0 };
    struct imap_options io;
    char *imap_password = NULL;
    const char *account = NULL;
    char mailbox_key[CLI_MAILBOX_KEY_MAX];
    size_t first = 0, count = 0;
    restore_dest *dest = NULL;
    enum cli_progress_mode progress_mode = CLI_PROGRESS_AUTO;
    struct restore_listing listing = { 0 };
    bool json = false;
    mr_error err;
    int opt, rc = 0;

    if (cli_wants_help(argc, argv)) {
        if (access_request)
            access_usage(stdout);
        else
            usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r': o.reason = optarg; break;
        case 'M': o.format = RESTORE_MAILDIR; o.output = optarg; break;
        case 'B': o.format = RESTORE_MBOX; o.output = optarg; break;
        case 'b':
            if (n_batches == MAX_LIST)
                return cli_usage_error("restore", "too many --batch");
            batches[n_batches++] = optarg;
            break;
        case 'm': o.mailbox = optarg; break;
        case 'a': account = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'i': o.message_id = optarg; break;
        case 'p': persons_stdin = true; break;
        case 'z': o.pseudonymised = true; break;
        case 'l': o.ledger_path = optarg; break;
        case 'N': o.no_ledger = true; break;
        case 'y': pkey_file = optarg; break;
        case 'j': json = true; break;
        case 'I': imap_out.mailbox = optarg; o.output = optarg; break;
        case 'T': o.list_only = true; break;
        case 'g': progress_mode = CLI_PROGRESS_ON; break;
        case 'n': progress_mode = CLI_PROGRESS_OFF; break;
        case 'D': imap_out.keep_deleted = true; break;
        case 'O': o.no_locator = true; break;
        case 'S': summary_path = optarg; break;
        default:
            rc = cli_it_arg(&args, "restore", opt, optarg);
            if (rc == 0)
                return cli_usage_error(name, "unknown option");
            if (rc != 1)
                return rc;
            rc = 0;
        }
    }
    selection_given = n_batches > 0 || o.mailbox != NULL || from != NULL || to != NULL
                      || o.message_id != NULL || persons_stdin || o.pseudonymised;
    if (access_request && (selection_given || imap_out.mailbox != NULL || o.list_only))
        return cli_usage_error(name, "an access request covers every batch and mailbox, "
                               "re-identified, into --maildir or --mbox: no selection options");
    if (!access_request && summary_path != NULL)
        return cli_usage_error(name, "--summary goes with access-request");
    if (summary_path != NULL && access(summary_path, F_OK) == 0) {
        mr_error_set(&err, MR_E_EXISTS, "summary file %s exists", summary_path);
        return cli_fail(name, &err);
    }
    if (access_request) {
        persons_stdin = true;
        o.restored = summary_add;
        o.restored_ctx = &summary;
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
    if (account != NULL && o.mailbox != NULL) {
        /* Named the way purge and backup filed it (cli_mailbox_key); no configuration is
         * needed for that on IT's machine. */
        struct config_account a = { .name = (char *)account,
                                    .legacy_keys = strcmp(account, CONFIG_DEFAULT_ACCOUNT) == 0 };
        mr_error kerr;
        if (cli_mailbox_key(&a, o.mailbox, mailbox_key, sizeof mailbox_key, &kerr) != 0)
            return cli_usage_error("restore", "--mailbox: %s", kerr.msg);
        o.mailbox = mailbox_key;
    }
    if (account != NULL && !access_request)
        o.account = account;    /* that account's batches only */
    if (o.output == NULL && !o.list_only)
        return cli_usage_error("restore", "give --maildir DIR, --mbox FILE, --imap-mailbox "
                                          "NAME or --list");
    if (o.output != NULL && o.list_only)
        return cli_usage_error("restore", "--list writes no mail: no destination with it");
    if (imap_out.keep_deleted && imap_out.mailbox == NULL)
        return cli_usage_error("restore", "--keep-deleted goes with --imap-mailbox");
    if (args.it_key == NULL)
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
    rc = cli_it_open(ctx, &args, imap_out.mailbox != NULL, &it, &err);
    if (rc != 0)
        return cli_fail_json(name, json, &err);
    cfg = it.cfg;
    o.archive_dir = it.archive_dir;
    o.vault_dir = it.vault_dir;
    if (cfg != NULL) {
        if (pkey_file == NULL)
            pkey_file = cfg->keys.pseudonym_key_file;
        if (o.ledger_path == NULL && !o.no_ledger) {
            snprintf(ledger_default, sizeof ledger_default, "%s", cfg->state.erasure_ledger);
            if (access(ledger_default, F_OK) != 0) {
                rc = mr_error_set(&err, MR_E_NOTFOUND, "no erasure ledger at %s: give "
                                  "--ledger FILE, or --no-ledger to restore without one",
                                  ledger_default);
                cli_it_close(&it);
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
        o.trust = &it.trust.trust;
    if (rc == 0 && from != NULL)
        rc = mrtime_parse(from, zone, &o.from, &err);
    if (rc == 0 && to != NULL)
        rc = mrtime_parse(to, zone, &o.to, &err);
    /* The re-identification key also opens the pseudonym key, which --person needs even
     * for pseudonymised output. */
    if (rc == 0)
        rc = cli_it_keys(&it, &args, true, !o.pseudonymised || n_persons > 0, &err);
    if (rc == 0)
        rc = cli_it_ready(&it, false, &err);
    if (rc == 0 && n_persons > 0) {
        rc = load_pseudonym_keys(pkey_file, o.vault_dir, it.reid, it.it, it.audit, &pkeys,
                                 &err);
        if (rc == 0)
            rc = person_tokens(&pkeys, persons, n_persons, &tokens, &token_epochs, &n_tokens,
                               &err);
        keys_pseudonym_set_free(&pkeys);
    }
    if (rc == 0 && o.no_ledger)
        fprintf(stderr, "mailret restore: WARNING: restoring WITHOUT the erasure ledger "
                "(--no-ledger): mail of people who asked to be erased comes back; this is "
                "recorded in the audit log\n");
    if (rc == 0 && imap_out.mailbox != NULL) {
        imap_out.log = ctx->log;
        /* The target: the server of --account NAME, or of the configuration's one account. */
        rc = cli_accounts_select(cfg, account, &first, &count, &err);
        if (rc == 0 && count > 1)
            rc = mr_error_set(&err, MR_E_INVALID, "--imap-mailbox with several accounts: give "
                              "--account NAME (the server to restore into)");
        if (rc == 0)
            rc = cli_imap_options(&cfg->accounts[first], &io, &imap_password, &err);
        if (rc == 0) {
            io.password = imap_password;
            io.log = ctx->log;
            imap_out.imap = &io;
            rc = restore_imap_open(&imap_out, &dest, &err);
        }
        secret_free(imap_password);
        imap_password = NULL;
        o.dest = dest;
    }
    if (rc == 0 && o.list_only) {
        o.list = restore_listing_add;
        o.list_ctx = &listing;
    }
    if (rc == 0) {
        o.batches = batches;
        o.n_batches = n_batches;
        o.tokens = (const char *const *)tokens;
        o.n_tokens = n_tokens;
        o.token_epochs = token_epochs;
        o.it_key = it.it;
        o.reid_key = o.pseudonymised ? NULL : it.reid;
        o.audit = it.audit;
        o.log = ctx->log;
        o.progress = o.list_only ? NULL : cli_progress_open(progress_mode);
        rc = restore_run(&o, &st, &err);
        progress_close(o.progress);
    }
    /* A selection that matched nothing is a mistake to report, not a successful restore;
     * everything matched but erased is the ledger doing its job. */
    if (rc == 0 && st.restored == 0 && st.erased == 0 && st.refused == 0 &&
        st.duplicates == 0 && st.listed == 0)
        rc = mr_error_set(&err, MR_E_NOTFOUND, "nothing matched the selection (%zu batch(es) "
                          "searched); nothing restored", st.batches);
    if (rc == 0 && access_request)
        rc = summary_write(&summary, &st, summary_path, zone, json, &err);
    if (rc == 0 && o.list_only) {
        rc = restore_listing_print(&listing, &st, json, &err);
    } else if (rc == 0 && json) {
        printf("{\"restored\": %zu, \"batches\": %zu, \"erased\": %zu, "
               "\"not_selected\": %zu, \"refused\": %zu, \"duplicates\": %zu, "
               "\"volumes_read\": %zu, \"volumes_skipped\": %zu, \"located_batches\": %zu, "
               "\"slow_batches\": %zu, \"locators_refused\": %zu}\n", st.restored,
               st.batches, st.erased, st.not_selected, st.refused, st.duplicates,
               st.volumes_read, st.volumes_skipped, st.located_batches, st.slow_batches,
               st.locators_refused);
    } else if (rc == 0) {
        printf("restored %zu messages from %zu batches to %s; %zu already there; %zu left out "
               "by the erasure ledger", st.restored, st.batches, o.output, st.duplicates,
               st.erased);
        if (imap_out.mailbox != NULL)
            printf("; %zu refused by the server", st.refused);
        printf("\n");
        if (st.located_batches + st.slow_batches > 0)
            printf("%zu volumes decrypted, %zu skipped by the locators of %zu batch(es); %zu "
                   "batch(es) without a usable locator read whole\n", st.volumes_read,
                   st.volumes_skipped, st.located_batches, st.slow_batches);
    }
    if (rc == 0 && st.locators_refused > 0)
        printf("WARNING: %zu batch(es) have a locator that is NOT AUTHENTIC: not used, every "
               "volume read (audited)\n", st.locators_refused);
    if (rc == 0 && st.unverified > 0)
        printf("WARNING: %zu batch(es) restored WITHOUT an authentic manifest "
               "(--trust-unsigned)\n", st.unverified);
    if (rc == 0 && st.legacy > 0)
        printf("%zu batch(es) authenticated by the legacy manifest HMAC only\n", st.legacy);
    if (rc == 0 && st.refused > 0)
        rc = mr_error_set(&err, MR_E_PROTOCOL, "%zu message%s refused by the IMAP "
                          "server (each named in the log); the others were restored",
                          st.refused, st.refused == 1 ? "" : "s");
    else if (rc != 0 && json)
        (void)cli_json_result(stdout, "restore", NULL, &err);
    restore_dest_close(dest);
    restore_listing_free(&listing);
    for (size_t i = 0; i < n_tokens; i++)
        free(tokens[i]);
    free(tokens);
    free(token_epochs);
    OPENSSL_cleanse(person_buf, sizeof person_buf);
    cli_it_close(&it);
    return rc == 0 ? CLI_EXIT_OK : cli_fail(name, &err);
}

int cmd_restore(struct cli_ctx *ctx, int argc, char **argv)
{
    return restore_command(ctx, argc, argv, false);
}

int cmd_access_request(struct cli_ctx *ctx, int argc, char **argv)
{
    return restore_command(ctx, argc, argv, true);
}

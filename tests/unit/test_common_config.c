/* test_common_config.c — the configuration file and secrets (common/config.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/secret.h"
#include "common/config.h"
#include "helpers/test_helpers.h"

struct fixture {
    char *dir;
    char conf[512];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL || (fx->dir = th_tempdir("mrconfig")) == NULL)
        return -1;
    snprintf(fx->conf, sizeof fx->conf, "%s/mailret.conf", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    th_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* The smallest valid file; tests append or substitute lines. */
#define MINIMAL \
    "[imap]\n"                              /* 1 */ \
    "host = imap.example.org\n"             /* 2 */ \
    "user = mailret\n"                      /* 3 */ \
    "password_file = imap.pass\n"           /* 4 */ \
    "[mailboxes]\n"                         /* 5 */ \
    "mailbox = INBOX\n"                     /* 6 */ \
    "[archive]\n"                           /* 7 */ \
    "dir = /srv/mailret/archive\n"          /* 8 */ \
    "[keys]\n"                              /* 9 */ \
    "vault_dir = /srv/mailret/vault\n"      /* 10 */ \
    "it_cert = certs/it.pem\n"              /* 11 */

static struct mr_config *load_text(struct fixture *fx, const char *text, int want_rc,
                                   mr_error *err)
{
    struct mr_config *cfg = NULL;
    int rc;

    assert_int_equal(th_write_file(fx->conf, text, strlen(text)), 0);
    mr_error_clear(err);
    rc = config_load(fx->conf, &cfg, err);
    if (rc != want_rc)
        fail_msg("config_load returned %d (%s), wanted %d", rc, err->msg, want_rc);
    if (rc != 0)
        assert_null(cfg);
    return cfg;
}

/* The error must start "<conf>:<line>: " and contain `what`. */
static void expect_error(struct fixture *fx, const char *text, int line, const char *what)
{
    mr_error err;
    char prefix[600];

    load_text(fx, text, MR_E_CONFIG, &err);
    snprintf(prefix, sizeof prefix, "%s:%d: ", fx->conf, line);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
        fail_msg("error '%s' does not start with '%s'", err.msg, prefix);
    if (strstr(err.msg, what) == NULL)
        fail_msg("error '%s' does not mention '%s'", err.msg, what);
}

static void test_minimal_defaults(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    struct mr_config *cfg = load_text(fx, MINIMAL, 0, &err);
    char want[600];

    assert_non_null(cfg);
    assert_string_equal(cfg->imap.host, "imap.example.org");
    assert_int_equal(cfg->imap.port, 993);
    assert_int_equal(cfg->imap.tls, CONFIG_TLS_IMAPS);
    assert_false(cfg->imap.insecure_skip_verify);
    assert_null(cfg->imap.ca_file);
    assert_int_equal(cfg->imap.connect_timeout, 30);
    assert_int_equal(cfg->imap.io_timeout, 300);
    assert_int_equal(cfg->imap.fetch_batch, 200);
    assert_int_equal(cfg->imap.max_message_size, 64ULL << 20);
    /* relative paths resolve against the config file's directory */
    snprintf(want, sizeof want, "%s/imap.pass", fx->dir);
    assert_string_equal(cfg->imap.password_file, want);
    snprintf(want, sizeof want, "%s/certs/it.pem", fx->dir);
    assert_string_equal(cfg->keys.it_cert, want);
    assert_string_equal(cfg->keys.reid_cert, want);
    assert_int_equal(cfg->mailboxes.n, 1);
    assert_string_equal(cfg->mailboxes.items[0], "INBOX");
    assert_int_equal(cfg->members.backend, CONFIG_MEMBERS_SQLITE);
    assert_string_equal(cfg->members.database, "/var/lib/mailret/members.sqlite");
    assert_null(cfg->members.case_pattern); /* ingest's built-in default applies */
    assert_int_equal(cfg->archive.volume_size, 8ULL << 20);
    assert_int_equal(cfg->archive.compression_level, 6);
    assert_int_equal(cfg->archive.workers, 0);
    assert_string_equal(cfg->keys.pseudonym_key_file, "/var/lib/mailret/pseudonym.key");
    assert_string_equal(cfg->keys.manifest_key_file, "/var/lib/mailret/manifest.key");
    assert_int_equal(cfg->retention.years, 5);
    assert_string_equal(cfg->retention.timezone, "Europe/Copenhagen");
    assert_int_equal(cfg->retention.expiring_warn_days, 30);
    assert_true(cfg->pseudonymisation.emails && cfg->pseudonymisation.cpr &&
                cfg->pseudonymisation.phones && cfg->pseudonymisation.names &&
                cfg->pseudonymisation.ips);
    assert_string_equal(cfg->state.dir, "/var/lib/mailret");
    assert_int_equal(cfg->log.level, LOG_LEVEL_INFO);
    assert_false(cfg->log.level_set);
    assert_null(cfg->log.file);
    assert_string_equal(cfg->audit.log, "/var/lib/mailret/audit.log");
    assert_string_equal(cfg->state.erasure_ledger, "/var/lib/mailret/erasure.ledger");
    snprintf(want, sizeof want, "%s/mailret.conf", fx->dir);
    assert_string_equal(cfg->path, want);
    config_free(cfg);
}

static void test_every_key(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    struct mr_config *cfg;
    const char *text =
        "# mailret test configuration\n"
        "; with every key\n"
        "[imap]\n"
        "host = imap.example.org\n"
        "port = 1143\n"
        "tls = starttls\n"
        "ca_file = ca.pem\n"
        "insecure_skip_verify = yes-for-testing-only\n"
        "user = mailret@example.org\n"
        "password_env = MAILRET_IMAP_PASSWORD\n"
        "connect_timeout = 5\n"
        "io_timeout = 60\n"
        "fetch_batch = 50\n"
        "max_message_size = 10M\n"
        "\n"
        "[mailboxes]\n"
        "mailbox = INBOX\n"
        "mailbox = Sager/Indgående\n"
        "mailbox = Shared.Medlemsservice\n"
        "[members]\n"
        "backend = exec\n"
        "database = /var/lib/x/members.db\n"
        "maildir = members-maildir\n"
        "command = /usr/local/bin/to-member-system --case\n"
        "case_pattern = Sag[ ]+[0-9]+\n"
        "own_addresses = post@fund.dk, sager@fund.dk\n"
        "own_domains = fund.dk,fund-a.dk\n"
        "[archive]\n"
        "dir = archive\n"
        "volume_size = 512K\n"
        "compression_level = 9\n"
        "workers = 4\n"
        "[keys]\n"
        "vault_dir = /srv/vault\n"
        "it_cert = /etc/mailret/it.pem\n"
        "reid_cert = /etc/mailret/dpo.pem\n"
        "pseudonym_key_file = /etc/mailret/pseudonym.key\n"
        "manifest_key_file = /etc/mailret/manifest.key\n"
        "[retention]\n"
        "years = 7\n"
        "timezone = UTC\n"
        "expiring_warn_days = 60\n"
        "[pseudonymisation]\n"
        "emails = yes\n"
        "cpr = true\n"
        "phones = on\n"
        "names = no\n"
        "ips = off\n"
        "own_addresses = post@fund.dk\n"
        "own_domains =\n"
        "keep = image/*, application/PDF\n"
        "seal = image/svg+xml,*\n"
        "[state]\n"
        "dir = /srv/mailret/state\n"
        "erasure_ledger = ledger/erasure\n"
        "[log]\n"
        "level = debug\n"
        "file = /var/log/mailret.log\n"
        "[audit]\n"
        "log = /srv/mailret/audit/audit.log\n";
    char want[600];

    cfg = load_text(fx, text, 0, &err);
    assert_non_null(cfg);
    assert_int_equal(cfg->imap.port, 1143);
    assert_int_equal(cfg->imap.tls, CONFIG_TLS_STARTTLS);
    snprintf(want, sizeof want, "%s/ca.pem", fx->dir);
    assert_string_equal(cfg->imap.ca_file, want);
    assert_true(cfg->imap.insecure_skip_verify);
    assert_string_equal(cfg->imap.user, "mailret@example.org");
    assert_null(cfg->imap.password_file);
    assert_string_equal(cfg->imap.password_env, "MAILRET_IMAP_PASSWORD");
    assert_int_equal(cfg->imap.connect_timeout, 5);
    assert_int_equal(cfg->imap.io_timeout, 60);
    assert_int_equal(cfg->imap.fetch_batch, 50);
    assert_int_equal(cfg->imap.max_message_size, 10ULL << 20);
    assert_int_equal(cfg->mailboxes.n, 3);
    assert_string_equal(cfg->mailboxes.items[1], "Sager/Indgående");
    assert_string_equal(cfg->mailboxes.items[2], "Shared.Medlemsservice");
    assert_int_equal(cfg->members.backend, CONFIG_MEMBERS_EXEC);
    assert_string_equal(cfg->members.database, "/var/lib/x/members.db");
    snprintf(want, sizeof want, "%s/members-maildir", fx->dir);
    assert_string_equal(cfg->members.maildir, want);
    assert_string_equal(cfg->members.command, "/usr/local/bin/to-member-system --case");
    assert_string_equal(cfg->members.case_pattern, "Sag[ ]+[0-9]+");
    assert_int_equal(cfg->members.own_addresses.n, 2);
    assert_string_equal(cfg->members.own_addresses.items[0], "post@fund.dk");
    assert_string_equal(cfg->members.own_addresses.items[1], "sager@fund.dk");
    assert_int_equal(cfg->members.own_domains.n, 2);
    assert_string_equal(cfg->members.own_domains.items[1], "fund-a.dk");
    snprintf(want, sizeof want, "%s/archive", fx->dir);
    assert_string_equal(cfg->archive.dir, want);
    assert_int_equal(cfg->archive.volume_size, 512 * 1024);
    assert_int_equal(cfg->archive.compression_level, 9);
    assert_int_equal(cfg->archive.workers, 4);
    assert_string_equal(cfg->keys.reid_cert, "/etc/mailret/dpo.pem");
    assert_string_equal(cfg->keys.pseudonym_key_file, "/etc/mailret/pseudonym.key");
    assert_string_equal(cfg->keys.manifest_key_file, "/etc/mailret/manifest.key");
    assert_int_equal(cfg->retention.years, 7);
    assert_string_equal(cfg->retention.timezone, "UTC");
    assert_int_equal(cfg->retention.expiring_warn_days, 60);
    assert_true(cfg->pseudonymisation.emails);
    assert_true(cfg->pseudonymisation.cpr);
    assert_true(cfg->pseudonymisation.phones);
    assert_false(cfg->pseudonymisation.names);
    assert_false(cfg->pseudonymisation.ips);
    /* set explicitly: not inherited from [members] */
    assert_int_equal(cfg->pseudonymisation.own_addresses.n, 1);
    assert_int_equal(cfg->pseudonymisation.own_domains.n, 0);
    assert_int_equal(cfg->pseudonymisation.keep_types.n, 2);
    assert_string_equal(cfg->pseudonymisation.keep_types.items[0], "image/*");
    assert_string_equal(cfg->pseudonymisation.keep_types.items[1], "application/PDF");
    assert_int_equal(cfg->pseudonymisation.seal_types.n, 2);
    assert_string_equal(cfg->pseudonymisation.seal_types.items[1], "*");
    assert_string_equal(cfg->state.dir, "/srv/mailret/state");
    snprintf(want, sizeof want, "%s/ledger/erasure", fx->dir);    /* relative to the file */
    assert_string_equal(cfg->state.erasure_ledger, want);
    assert_int_equal(cfg->log.level, LOG_LEVEL_DEBUG);
    assert_true(cfg->log.level_set);
    assert_string_equal(cfg->log.file, "/var/log/mailret.log");
    assert_string_equal(cfg->audit.log, "/srv/mailret/audit/audit.log");
    config_free(cfg);
}

static void test_inherited_lists_and_state_defaults(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    struct mr_config *cfg = load_text(fx, MINIMAL
                                      "[members]\n"
                                      "own_addresses = post@fund.dk\n"
                                      "own_domains = fund.dk\n"
                                      "[state]\n"
                                      "dir = state\n"
                                      "[imap]\n"
                                      "tls = starttls\n"
                                      "[log]\n"
                                      "file = -\n",
                                      0, &err);
    char want[600];

    assert_int_equal(cfg->pseudonymisation.own_addresses.n, 1);
    assert_string_equal(cfg->pseudonymisation.own_addresses.items[0], "post@fund.dk");
    assert_int_equal(cfg->pseudonymisation.own_domains.n, 1);
    assert_string_equal(cfg->pseudonymisation.own_domains.items[0], "fund.dk");
    snprintf(want, sizeof want, "%s/state/audit.log", fx->dir);
    assert_string_equal(cfg->audit.log, want);
    snprintf(want, sizeof want, "%s/state/members.sqlite", fx->dir);
    assert_string_equal(cfg->members.database, want);
    assert_int_equal(cfg->imap.port, 143);  /* starttls default port */
    assert_null(cfg->log.file);
    config_free(cfg);
}

static void test_error_lines(void **state)
{
    struct fixture *fx = *state;

    expect_error(fx, MINIMAL "[bogus]\nx = 1\n", 12, "unknown section [bogus]");
    expect_error(fx, MINIMAL "[retention]\n[bogus]\n", 13, "unknown section [bogus]");
    expect_error(fx, MINIMAL "[imap]\nhots = x\n", 13, "unknown key 'hots' in [imap]");
    expect_error(fx, "port = 1\n" MINIMAL, 1, "outside any [section]");
    expect_error(fx, MINIMAL "[imap]\npassword = hunter2\n", 13, "use password_file");
    expect_error(fx, MINIMAL "[imap]\nport = 99999\n", 13, "bad number '99999'");
    expect_error(fx, MINIMAL "[imap]\nport = 12x\n", 13, "bad number");
    expect_error(fx, MINIMAL "[imap]\nport = -1\n", 13, "bad number");
    expect_error(fx, MINIMAL "[archive]\ncompression_level = 10\n", 13, "from 0 to 9");
    expect_error(fx, MINIMAL "[archive]\nworkers = 17\n", 13, "from 0 to 16");
    expect_error(fx, MINIMAL "[archive]\nvolume_size = 64X\n", 13, "bad size");
    expect_error(fx, MINIMAL "[imap]\nmax_message_size = 1\n", 13, "bad size");
    expect_error(fx, MINIMAL "[retention]\nyears = 0\n", 13, "years: bad number");
    expect_error(fx, MINIMAL "[pseudonymisation]\ncpr = maybe\n", 13, "bad boolean 'maybe'");
    expect_error(fx, MINIMAL "[imap]\nhost = other\n", 13,
                 "duplicate key 'host' in [imap] (first set on line 2)");
    expect_error(fx, MINIMAL "[mailboxes]\nmailbox = INBOX\n", 13, "listed twice");
    expect_error(fx, MINIMAL "[imap]\ntls = ssl\n", 13, "imaps or starttls");
    expect_error(fx, MINIMAL "[members]\nbackend = ldap\n", 13, "sqlite, maildir or exec");
    expect_error(fx, MINIMAL "[members]\ncase_pattern = (Sag\n", 13, "bad regular expression");
    /* Stacked repetition operators made glibc's regcomp take unbounded memory (found by
     * fuzz_common_config): refused before regcomp. */
    expect_error(fx, MINIMAL "[members]\ncase_pattern = s++++++++ag\n", 13,
                 "consecutive repetition operators");
    expect_error(fx, MINIMAL "[members]\ncase_pattern = (Sag)*{2}\n", 13,
                 "consecutive repetition operators");
    {
        /* Repetition characters inside a bracket expression or escaped stay legal. */
        mr_error ok_err;
        struct mr_config *ok = load_text(fx, MINIMAL "[members]\ncase_pattern = [*+]+x\\++y\n", 0,
                                         &ok_err);
        assert_string_equal(ok->members.case_pattern, "[*+]+x\\++y");
        config_free(ok);
    }
    expect_error(fx, MINIMAL "[members]\nown_addresses = fund.dk\n", 13,
                 "not an e-mail address");
    expect_error(fx, MINIMAL "[members]\nown_domains = post@fund.dk\n", 13, "not a domain");
    expect_error(fx, MINIMAL "[pseudonymisation]\nkeep = pdf\n", 13, "not a MIME type pattern");
    expect_error(fx, MINIMAL "[pseudonymisation]\nkeep = image/, text/plain\n", 13,
                 "element 1 is not a MIME type pattern");
    expect_error(fx, MINIMAL "[pseudonymisation]\nseal = */pdf\n", 13, "not a MIME type");
    expect_error(fx, MINIMAL "[pseudonymisation]\nkeep = image/png;x\n", 13, "not a MIME type");
    expect_error(fx, MINIMAL "[pseudonymisation]\nkeep =\n", 13, "empty value");
    expect_error(fx, MINIMAL "[retention]\ntimezone = Mars/Olympus\n", 13, "timezone");
    expect_error(fx, MINIMAL "[log]\nlevel = loud\n", 13, "unknown log level");
    expect_error(fx, MINIMAL "[imap]\nca_file =\n", 13, "empty value");
    expect_error(fx, MINIMAL "[imap]\nthis line has no equals sign\n", 13, "syntax error");
    expect_error(fx, MINIMAL "[imap]\n  connect_timeout = 5\n", 13, "indented");
    expect_error(fx, MINIMAL "[imap]\npassword_env = X\n", 13, "only one of");
    {
        /* a line longer than inih's buffer is an error at its own line, and the line
         * count stays right after it */
        char text[1200];
        char longv[400];
        memset(longv, 'x', sizeof longv - 1);
        longv[sizeof longv - 1] = '\0';
        snprintf(text, sizeof text, MINIMAL "[members]\ncommand = %s\n", longv);
        expect_error(fx, text, 13, "line too long");
        snprintf(text, sizeof text, MINIMAL "[members]\n# %s\nbogus = 1\n", longv);
        expect_error(fx, text, 14, "unknown key 'bogus'");
    }
}

/* The login method and where its secret comes from. */
static void test_auth_and_token_command(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    struct mr_config *cfg;
    /* MINIMAL without its password_file line, so that token_command may stand alone. */
    const char *base = "[imap]\nhost = h\nuser = shared@fund.dk\n[mailboxes]\nmailbox = I\n"
                       "[archive]\ndir = a\n[keys]\nvault_dir = v\nit_cert = c\n";
    char text[2048];

    cfg = load_text(fx, MINIMAL, 0, &err);
    assert_int_equal(cfg->imap.auth, CONFIG_AUTH_LOGIN);
    assert_null(cfg->imap.token_command);
    assert_int_equal(cfg->imap.token_timeout, 30);
    assert_int_equal(cfg->imap.throttle_max_wait, 600);
    config_free(cfg);

    static const char *const names[] = { "login", "plain", "xoauth2", "oauthbearer" };
    static const enum config_auth want[] = { CONFIG_AUTH_LOGIN, CONFIG_AUTH_PLAIN,
                                             CONFIG_AUTH_XOAUTH2, CONFIG_AUTH_OAUTHBEARER };
    for (size_t i = 0; i < 4; i++) {
        snprintf(text, sizeof text, MINIMAL "[imap]\nauth = %s\n", names[i]);
        cfg = load_text(fx, text, 0, &err);
        assert_int_equal(cfg->imap.auth, want[i]);
        config_free(cfg);
    }
    expect_error(fx, MINIMAL "[imap]\nauth = XOAUTH2\n", 13, "use login, plain, xoauth2");
    expect_error(fx, MINIMAL "[imap]\nauth = cram-md5\n", 13, "auth: 'cram-md5'");

    /* Words as a shell would split them, but no shell: quotes and backslashes only. */
    snprintf(text, sizeof text, "%s[imap]\ntoken_command = /usr/bin/env  'a b' \"c \\\" d\" "
             "e\\ f g'h'\\\"i\\\" --x=%%s\ntoken_timeout = 7\nthrottle_max_wait = 0\n", base);
    cfg = load_text(fx, text, 0, &err);
    assert_non_null(cfg->imap.token_command);
    {
        static const char *const words[] = { "/usr/bin/env", "a b", "c \" d", "e f", "gh\"i\"",
                                             "--x=%s" };
        size_t n = 0;
        while (cfg->imap.token_command[n] != NULL) {
            assert_true(n < 6);
            assert_string_equal(cfg->imap.token_command[n], words[n]);
            n++;
        }
        assert_int_equal(n, 6);
    }
    assert_int_equal(cfg->imap.token_timeout, 7);
    assert_int_equal(cfg->imap.throttle_max_wait, 0);
    assert_null(cfg->imap.password_file);
    config_free(cfg);

    /* Exactly one secret source. */
    expect_error(fx, MINIMAL "[imap]\ntoken_command = /bin/true\n", 13, "only one of");
    snprintf(text, sizeof text, "%s[imap]\ntoken_command = /bin/true\npassword_env = X\n",
             base);
    expect_error(fx, text, 13, "only one of password_file, password_env and token_command");
    expect_error(fx, base, 1, "token_command");

    /* Shell syntax is refused, not passed on as words; nothing of the line is echoed. */
    static const struct { const char *cmd; const char *what; } bad[] = {
        { "get-token | tr -d x", "'|' would need a shell" },
        { "get-token > /tmp/t", "'>' would need a shell" },
        { "get-token; rm -rf /", "';' would need a shell" },
        { "get-token $HOME", "'$' would need a shell" },
        { "get-token `id`", "'`' would need a shell" },
        { "get-token && x", "'&' would need a shell" },
        { "~/bin/get-token", "'~' is not expanded" },
        { "get-token 'open", "unterminated single quote" },
        { "get-token \"open", "unterminated double quote" },
        { "get-token \\", "backslash at the end" },
        { "''", "empty command" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%s[imap]\ntoken_command = %s\n", base, bad[i].cmd);
        expect_error(fx, text, 12, bad[i].what);
    }
    /* Quoted, the same characters are plain arguments. */
    snprintf(text, sizeof text, "%s[imap]\ntoken_command = get-token '|' \"$HOME\" \\;\n",
             base);
    cfg = load_text(fx, text, 0, &err);
    assert_string_equal(cfg->imap.token_command[1], "|");
    assert_string_equal(cfg->imap.token_command[2], "$HOME");
    assert_string_equal(cfg->imap.token_command[3], ";");
    assert_null(cfg->imap.token_command[4]);
    config_free(cfg);
    snprintf(text, sizeof text, "%s[imap]\ntoken_command = x\ntoken_timeout = 0\n", base);
    expect_error(fx, text, 13, "token_timeout: bad number");
}

static void test_insecure_spelling(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    struct mr_config *cfg;

    expect_error(fx, MINIMAL "[imap]\ninsecure_skip_verify = yes\n", 13,
                 "only the value 'yes-for-testing-only'");
    expect_error(fx, MINIMAL "[imap]\ninsecure_skip_verify = true\n", 13, "refusing");
    expect_error(fx, MINIMAL "[imap]\ninsecure_skip_verify = 1\n", 13, "refusing");
    expect_error(fx, MINIMAL "[imap]\ninsecure_skip_verify = YES-FOR-TESTING-ONLY\n", 13,
                 "bad boolean");
    cfg = load_text(fx, MINIMAL "[imap]\ninsecure_skip_verify = no\n", 0, &err);
    assert_false(cfg->imap.insecure_skip_verify);
    config_free(cfg);
}

static void test_missing_required(void **state)
{
    struct fixture *fx = *state;

    /* a missing key names its section's header line */
    expect_error(fx,
                 "[imap]\nuser = u\npassword_file = p\n[mailboxes]\nmailbox = INBOX\n"
                 "[archive]\ndir = a\n[keys]\nvault_dir = v\nit_cert = c\n",
                 1, "[imap] lacks required key 'host'");
    expect_error(fx,
                 "[imap]\nhost = h\nuser = u\n[mailboxes]\nmailbox = INBOX\n"
                 "[archive]\ndir = a\n[keys]\nvault_dir = v\nit_cert = c\n",
                 1, "password_file");
    expect_error(fx,
                 "[imap]\nhost = h\nuser = u\npassword_file = p\n[mailboxes]\n"
                 "[archive]\ndir = a\n[keys]\nvault_dir = v\nit_cert = c\n",
                 5, "[mailboxes] lacks required key 'mailbox'");
    expect_error(fx, MINIMAL "[members]\nbackend = maildir\n", 12, "'maildir'");
    expect_error(fx, MINIMAL "[members]\nbackend = exec\n", 12, "'command'");
    /* a missing section: the end of the file */
    expect_error(fx,
                 "[imap]\nhost = h\nuser = u\npassword_file = p\n[mailboxes]\nmailbox = I\n"
                 "[keys]\nvault_dir = v\nit_cert = c\n",
                 9, "missing section [archive]");
}

static void test_missing_file(void **state)
{
    struct mr_config *cfg = NULL;
    mr_error err;

    (void)state;
    assert_int_equal(config_load("/nonexistent/mailret.conf", &cfg, &err), MR_E_NOTFOUND);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "/nonexistent/mailret.conf"));
    assert_int_equal(config_load("/tmp", &cfg, &err), MR_E_CONFIG);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

static void test_secret_file_modes(void **state)
{
    struct fixture *fx = *state;
    char path[600], *secret = NULL;
    mr_error err;

    snprintf(path, sizeof path, "%s/imap.pass", fx->dir);
    assert_int_equal(th_write_file(path, "s3cret\n", 7), 0);

    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(secret_read_text(path, NULL, &secret, &err), MR_E_PERM);
    assert_null(secret);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "0644"));
    assert_null(strstr(err.msg, "s3cret"));

    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(secret_read_text(path, NULL, &secret, &err), MR_E_PERM);
    assert_non_null(strstr(err.msg, "0640"));
    assert_int_equal(chmod(path, 0602), 0);
    assert_int_equal(secret_read_text(path, NULL, &secret, &err), MR_E_PERM);

    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(secret_read_text(path, "IGNORED_WHEN_FILE_GIVEN", &secret, &err), 0);
    assert_string_equal(secret, "s3cret");      /* one newline stripped */
    secret_free(secret);

    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(th_write_file(path, "a b\n\n", 5), 0);
    assert_int_equal(secret_read_text(path, NULL, &secret, &err), 0);
    assert_string_equal(secret, "a b\n");       /* only one */
    secret_free(secret);

    assert_int_equal(th_write_file(path, "crlf\r\n", 6), 0);
    assert_int_equal(secret_read_text(path, NULL, &secret, &err), 0);
    assert_string_equal(secret, "crlf");
    secret_free(secret);

    assert_int_equal(th_write_file(path, "\n", 1), 0);
    assert_int_equal(secret_read_text(path, NULL, &secret, &err), MR_E_CONFIG);
    assert_int_equal(th_write_file(path, "a\0b", 3), 0);
    assert_int_equal(secret_read_text(path, NULL, &secret, &err), MR_E_CONFIG);

    snprintf(path, sizeof path, "%s/missing.pass", fx->dir);
    assert_int_equal(secret_read_text(path, NULL, &secret, &err), MR_E_NOTFOUND);
    assert_int_equal(secret_read_text(fx->dir, NULL, &secret, &err), MR_E_PERM);

    /* A symlink in place of the secret file is refused (O_NOFOLLOW), even to a 0600
     * file; and a file over SECRET_MAX bytes is refused, not truncated. */
    {
        char target[600], big[SECRET_MAX + 2];
        snprintf(target, sizeof target, "%s/real.pass", fx->dir);
        assert_int_equal(th_write_file(target, "s3cret\n", 7), 0);
        assert_int_equal(chmod(target, 0600), 0);
        snprintf(path, sizeof path, "%s/link.pass", fx->dir);
        assert_int_equal(symlink(target, path), 0);
        assert_int_equal(secret_read_text(path, NULL, &secret, &err), MR_E_PERM);
        assert_null(secret);
        memset(big, 'x', sizeof big);
        snprintf(path, sizeof path, "%s/big.pass", fx->dir);
        assert_int_equal(th_write_file(path, big, sizeof big), 0);
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(secret_read_text(path, NULL, &secret, &err), MR_E_LIMIT);
        assert_null(secret);
    }
    secret_free(NULL);
}

static void test_secret_env(void **state)
{
    char *secret = NULL;
    mr_error err;

    (void)state;
    assert_int_equal(setenv("MAILRET_TEST_SECRET", "from-env", 1), 0);
    assert_int_equal(secret_read_text(NULL, "MAILRET_TEST_SECRET", &secret, &err), 0);
    assert_string_equal(secret, "from-env");
    secret_free(secret);
    assert_int_equal(setenv("MAILRET_TEST_SECRET", "", 1), 0);
    assert_int_equal(secret_read_text(NULL, "MAILRET_TEST_SECRET", &secret, &err),
                     MR_E_CONFIG);
    unsetenv("MAILRET_TEST_SECRET");
    assert_int_equal(secret_read_text(NULL, "MAILRET_TEST_SECRET", &secret, &err),
                     MR_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "MAILRET_TEST_SECRET"));
    assert_int_equal(secret_read_text(NULL, NULL, &secret, &err), MR_E_CONFIG);
}

static void test_parse_size(void **state)
{
    uint64_t v;
    mr_error err;

    (void)state;
    assert_int_equal(config_parse_size("123", &v, &err), 0);
    assert_int_equal(v, 123);
    assert_int_equal(config_parse_size("64K", &v, &err), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(config_parse_size("64m", &v, &err), 0);
    assert_int_equal(v, 64ULL << 20);
    assert_int_equal(config_parse_size("2G", &v, &err), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(config_parse_size("M", &v, &err), MR_E_INVALID);
    assert_int_equal(config_parse_size("1.5M", &v, &err), MR_E_INVALID);
    assert_int_equal(config_parse_size("99999999999999999999G", &v, &err), MR_E_INVALID);
    assert_int_equal(config_parse_size("", &v, &err), MR_E_INVALID);
}

/* The shipped example must load as it is (with its paths pointing nowhere yet). */
static void test_example_file_loads(void **state)
{
    const char *src = getenv("MAILRET_SOURCE_DIR");
    char path[1024];
    struct mr_config *cfg = NULL;
    mr_error err;

    (void)state;
    if (src == NULL)
        skip();
    snprintf(path, sizeof path, "%s/scripts/mailret.conf.example", src);
    if (config_load(path, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(cfg->mailboxes.n >= 1);
    config_free(cfg);
}


/* The rest of a file with accounts (no [imap], no [mailboxes]). */
#define COMMON \
    "[archive]\n"                           /* 1 */ \
    "dir = /srv/mailret/archive\n"          /* 2 */ \
    "[keys]\n"                              /* 3 */ \
    "vault_dir = /srv/mailret/vault\n"      /* 4 */ \
    "it_cert = certs/it.pem\n"              /* 5 */

static void test_accounts(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    char want[600];
    struct mr_config *cfg = load_text(fx, COMMON
        "[account kbh]\n"                   /* 6 */
        "host = imap.example.org\n"
        "user = sager\n"
        "password_file = kbh.pass\n"
        "mailbox = INBOX\n"
        "mailbox = Sager/2026\n"
        "[account aarhus-2]\n"              /* 12 */
        "host = outlook.office365.com\n"
        "tls = starttls\n"
        "user = post@aarhus.example\n"
        "auth = xoauth2\n"
        "token_command = /usr/local/bin/token\n"
        "fetch_batch = 50\n"
        "mailbox = INBOX\n", 0, &err);
    const struct config_account *a, *b;

    assert_int_equal(cfg->n_accounts, 2);
    a = &cfg->accounts[0];
    b = &cfg->accounts[1];
    assert_string_equal(a->name, "kbh");
    assert_false(a->legacy_keys);
    assert_string_equal(a->imap.host, "imap.example.org");
    assert_int_equal(a->imap.port, 993);
    assert_int_equal(a->imap.io_timeout, 300);
    snprintf(want, sizeof want, "%s/kbh.pass", fx->dir);
    assert_string_equal(a->imap.password_file, want);
    assert_int_equal(a->mailboxes.n, 2);
    assert_string_equal(a->mailboxes.items[1], "Sager/2026");
    assert_string_equal(b->name, "aarhus-2");
    assert_int_equal(b->imap.tls, CONFIG_TLS_STARTTLS);
    assert_int_equal(b->imap.port, 143);
    assert_int_equal(b->imap.auth, CONFIG_AUTH_XOAUTH2);
    assert_string_equal(b->imap.token_command[0], "/usr/local/bin/token");
    assert_null(b->imap.token_command[1]);
    assert_int_equal(b->imap.fetch_batch, 50);
    assert_int_equal(b->mailboxes.n, 1);
    assert_ptr_equal(config_account_find(cfg, "aarhus-2"), b);
    assert_null(config_account_find(cfg, "aarhus"));
    assert_int_equal(config_account_key_line(b, "fetch_batch"), 18);
    assert_int_equal(config_account_key_line(a, "mailbox"), 10);
    assert_int_equal(config_account_key_line(a, "port"), 0);

    /* config show writes a file that loads to the same accounts. */
    {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        struct mr_config *again;
        assert_non_null(mem);
        assert_int_equal(config_show(cfg, mem, &err), 0);
        fclose(mem);
        assert_non_null(strstr(text, "\n[account kbh]\n"));
        assert_non_null(strstr(text, "\n[account aarhus-2]\n"));
        assert_null(strstr(text, "[imap]"));
        assert_null(strstr(text, "[mailboxes]"));
        again = load_text(fx, text, 0, &err);
        assert_int_equal(again->n_accounts, 2);
        assert_string_equal(again->accounts[1].imap.host, "outlook.office365.com");
        assert_int_equal(again->accounts[1].imap.port, 143);
        assert_int_equal(again->accounts[0].mailboxes.n, 2);
        config_free(again);
        free(text);
    }
    config_free(cfg);

    /* A single-account file is the account "default", with the state keys of before. */
    cfg = load_text(fx, MINIMAL, 0, &err);
    assert_int_equal(cfg->n_accounts, 1);
    assert_string_equal(cfg->accounts[0].name, CONFIG_DEFAULT_ACCOUNT);
    assert_true(cfg->accounts[0].legacy_keys);
    assert_string_equal(cfg->accounts[0].imap.host, "imap.example.org");
    assert_int_equal(cfg->accounts[0].mailboxes.n, 1);
    assert_int_equal(config_account_key_line(&cfg->accounts[0], "user"), 3);
    config_free(cfg);

    /* [account default] is the same account, spelt as a section. */
    cfg = load_text(fx, COMMON "[account default]\nhost = h.example\nuser = u\n"
                    "password_env = P\nmailbox = INBOX\n", 0, &err);
    assert_true(cfg->accounts[0].legacy_keys);
    config_free(cfg);
}

static void test_account_errors(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad_names[] = { "Kbh", "a/b", "-x", "_x", "x.y", "a b", "",
                                             "abcdefghijklmnopqrstuvwxyz0123456" };
    char text[2048];

    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        snprintf(text, sizeof text, COMMON "[account %s]\nhost = h\nuser = u\n"
                 "password_env = P\nmailbox = INBOX\n", bad_names[i]);
        expect_error(fx, text, 6, "bad account name");
    }
    /* 32 characters is the limit, and it is allowed. */
    {
        struct mr_config *cfg;
        mr_error err;
        cfg = load_text(fx, COMMON "[account abcdefghijklmnopqrstuvwxyz012345]\nhost = h\n"
                        "user = u\npassword_env = P\nmailbox = INBOX\n", 0, &err);
        config_free(cfg);
    }
#define ACCT(name, user) "[account " name "]\nhost = h\nuser = " user "\npassword_env = P\n"
    expect_error(fx, COMMON ACCT("a", "u") "mailbox = INBOX\n" ACCT("a", "v") "mailbox = X\n",
                 11, "duplicate section [account a]");
    expect_error(fx, MINIMAL ACCT("a", "u") "mailbox = INBOX\n", 1,
                 "rename [imap] to [account default]");
    expect_error(fx, COMMON "[mailboxes]\nmailbox = INBOX\n" ACCT("a", "u") "mailbox = INBOX\n",
                 6, "do not go with [account NAME]");
    expect_error(fx, COMMON "[account a]\nuser = u\npassword_env = P\nmailbox = INBOX\n", 6,
                 "[account a] lacks required key 'host'");
    expect_error(fx, COMMON ACCT("a", "u"), 6, "[account a] lacks required key 'mailbox'");
    expect_error(fx, COMMON "[account a]\nhost = h\nuser = u\nmailbox = INBOX\n", 6,
                 "lacks required key 'password_file' (or password_env or token_command)");
    expect_error(fx, COMMON ACCT("a", "u") "password_file = p\nmailbox = INBOX\n", 10,
                 "set only one of");
    expect_error(fx, COMMON ACCT("a", "u") "user = v\nmailbox = INBOX\n", 10,
                 "duplicate key 'user' in [account a] (first set on line 8)");
    expect_error(fx, COMMON ACCT("a", "u") "mailbox = INBOX\nmailbox = INBOX\n", 11,
                 "listed twice");
    expect_error(fx, COMMON ACCT("a", "u") "dir = /x\nmailbox = INBOX\n", 10,
                 "unknown key 'dir' in [account a]");
    expect_error(fx, COMMON ACCT("a", "u") "password = hunter2\nmailbox = INBOX\n", 10,
                 "secrets do not belong");
    expect_error(fx, COMMON ACCT("a", "u") "port = 0\nmailbox = INBOX\n", 10, "port: bad number");
    /* Two accounts on one server mailbox would ingest and purge it twice. */
    expect_error(fx, COMMON ACCT("a", "u") "mailbox = INBOX\nmailbox = X\n"
                 ACCT("b", "u") "mailbox = X\n", 12, "name the same mailbox of the same login");
    /* ... unless they are different logins. */
    {
        struct mr_config *cfg;
        mr_error err;
        cfg = load_text(fx, COMMON ACCT("a", "u") "mailbox = INBOX\n"
                        ACCT("b", "v") "mailbox = INBOX\n", 0, &err);
        assert_int_equal(cfg->n_accounts, 2);
        config_free(cfg);
    }
    /* "default" files its mailboxes by their bare names: "b:X" would be account b's X. */
    expect_error(fx, COMMON ACCT("default", "u") "mailbox = b:X\n" ACCT("b", "v")
                 "mailbox = X\n", 6, "would share its archive and journal name");
#undef ACCT
}
/* [archive] store keys: an S3 mirror with every key, its defaults, and each mistake a
 * one-line error naming the key on its line. */
#define S3_LINES \
    "[archive]\n"                                   /* 12 */ \
    "store = s3\n"                                  /* 13 */ \
    "store_endpoint = https://s3.example.org:8443\n" /* 14 */ \
    "store_region = eu-north-1\n"                   /* 15 */ \
    "store_bucket = fund-archive\n"                 /* 16 */

static void test_store_keys(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    char want[700], *text = NULL;
    size_t len = 0;
    struct mr_config *cfg, *again;
    FILE *mem;

    /* Without the keys: no store, and show prints none of them as a setting. */
    cfg = load_text(fx, MINIMAL, 0, &err);
    assert_int_equal(cfg->archive.store, CONFIG_STORE_LOCAL);
    assert_null(cfg->archive.store_endpoint);
    mem = open_memstream(&text, &len);
    assert_int_equal(config_show(cfg, mem, &err), 0);
    fclose(mem);
    assert_null(strstr(text, "\nstore_path_style ="));
    assert_non_null(strstr(text, "\nstore = local\n"));
    again = load_text(fx, text, 0, &err);
    config_free(again);
    free(text);
    config_free(cfg);

    cfg = load_text(fx, MINIMAL S3_LINES, 0, &err);
    assert_int_equal(cfg->archive.store, CONFIG_STORE_S3);
    assert_string_equal(cfg->archive.store_endpoint, "https://s3.example.org:8443");
    assert_string_equal(cfg->archive.store_region, "eu-north-1");
    assert_string_equal(cfg->archive.store_bucket, "fund-archive");
    assert_true(cfg->archive.store_path_style);
    assert_null(cfg->archive.store_prefix);
    assert_null(cfg->archive.store_credentials_file);
    assert_int_equal(cfg->archive.store_multipart_threshold, 64ULL << 20);
    assert_int_equal(cfg->archive.store_part_size, 16ULL << 20);
    assert_int_equal(cfg->archive.store_timeout, 900);
    assert_int_equal(cfg->archive.object_lock_mode, CONFIG_LOCK_COMPLIANCE);
    assert_false(cfg->archive.require_object_lock);
    config_free(cfg);

    cfg = load_text(fx, MINIMAL S3_LINES
                    "store_path_style = no\n"
                    "store_prefix = funds/kbh-1\n"
                    "store_ca_file = certs/s3-ca.pem\n"
                    "store_credentials_file = s3.credentials\n"
                    "store_multipart_threshold = 128M\n"
                    "store_part_size = 32M\n"
                    "store_timeout = 120\n"
                    "object_lock_mode = governance\n"
                    "require_object_lock = yes\n", 0, &err);
    assert_false(cfg->archive.store_path_style);
    assert_string_equal(cfg->archive.store_prefix, "funds/kbh-1");
    snprintf(want, sizeof want, "%s/certs/s3-ca.pem", fx->dir);
    assert_string_equal(cfg->archive.store_ca_file, want);
    snprintf(want, sizeof want, "%s/s3.credentials", fx->dir);
    assert_string_equal(cfg->archive.store_credentials_file, want);
    assert_int_equal(cfg->archive.store_multipart_threshold, 128ULL << 20);
    assert_int_equal(cfg->archive.store_part_size, 32ULL << 20);
    assert_int_equal(cfg->archive.store_timeout, 120);
    assert_int_equal(cfg->archive.object_lock_mode, CONFIG_LOCK_GOVERNANCE);
    assert_true(cfg->archive.require_object_lock);
    /* show's output loads again, to the same values. */
    text = NULL;
    mem = open_memstream(&text, &len);
    assert_int_equal(config_show(cfg, mem, &err), 0);
    fclose(mem);
    again = load_text(fx, text, 0, &err);
    assert_string_equal(again->archive.store_prefix, "funds/kbh-1");
    assert_int_equal(again->archive.object_lock_mode, CONFIG_LOCK_GOVERNANCE);
    assert_int_equal(again->archive.store_part_size, 32ULL << 20);
    config_free(again);
    free(text);
    config_free(cfg);

    /* Loopback may speak plain http; a part size above the default threshold raises it. */
    cfg = load_text(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = http://127.0.0.1:8080\n"
                    "store_region = r1\nstore_bucket = b-1\nstore_part_size = 100M\n", 0, &err);
    assert_int_equal(cfg->archive.store_multipart_threshold, 100ULL << 20);
    config_free(cfg);
    cfg = load_text(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = http://[::1]\n"
                    "store_region = r1\nstore_bucket = b-1\n", 0, &err);
    config_free(cfg);

    /* Each mistake: FILE:LINE and the key. */
    expect_error(fx, MINIMAL "[archive]\nstore = ftp\n", 13, "store: 'ftp'");
    expect_error(fx, MINIMAL "[archive]\nstore_bucket = x-1\n", 13,
                 "store_bucket: only used with store = s3");
    expect_error(fx, MINIMAL "[archive]\nrequire_object_lock = yes\n", 13,
                 "require_object_lock: only used with store = s3");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_region = r\nstore_bucket = bbb\n", 7,
                 "lacks required key 'store_endpoint' (store = s3)");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = https://h\n"
                 "store_bucket = bbb\n", 7, "'store_region'");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = https://h\n"
                 "store_region = r\n", 7, "'store_bucket'");
    expect_error(fx, MINIMAL S3_LINES "store_endpoint = x\n", 17, "duplicate key");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = http://s3.example.org\n"
                 "store_region = r\nstore_bucket = bbb\n", 14,
                 "store_endpoint: http:// is allowed only for");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = s3.example.org\n"
                 "store_region = r\nstore_bucket = bbb\n", 14, "store_endpoint: must start");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = https://h/bucket\n"
                 "store_region = r\nstore_bucket = bbb\n", 14, "store_endpoint: must be");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = https://u@h\n"
                 "store_region = r\nstore_bucket = bbb\n", 14, "store_endpoint: must be");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = https://h:99999\n"
                 "store_region = r\nstore_bucket = bbb\n", 14, "store_endpoint: has a bad port");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = https://h\n"
                 "store_region = a/b\nstore_bucket = bbb\n", 15, "store_region");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = https://h\n"
                 "store_region = r\nstore_bucket = Fund_Archive\n", 16, "store_bucket: 3 to 63");
    expect_error(fx, MINIMAL "[archive]\nstore = s3\nstore_endpoint = https://h\n"
                 "store_region = r\nstore_bucket = ab\n", 16, "store_bucket");
    expect_error(fx, MINIMAL S3_LINES "store_prefix = /abs\n", 17, "store_prefix: starts or ends");
    expect_error(fx, MINIMAL S3_LINES "store_prefix = a/\n", 17, "store_prefix: starts or ends");
    expect_error(fx, MINIMAL S3_LINES "store_prefix = a//b\n", 17, "store_prefix: has an empty");
    expect_error(fx, MINIMAL S3_LINES "store_prefix = a/../b\n", 17, "store_prefix: has a '.'");
    expect_error(fx, MINIMAL S3_LINES "store_prefix = x.tmp.1\n", 17, "store_prefix: contains");
    expect_error(fx, MINIMAL S3_LINES "store_part_size = 1M\n", 17, "store_part_size: bad size");
    expect_error(fx, MINIMAL S3_LINES "store_multipart_threshold = 6G\n", 17,
                 "store_multipart_threshold: bad size");
    expect_error(fx, MINIMAL S3_LINES "store_multipart_threshold = 8M\nstore_part_size = 16M\n",
                 17, "store_multipart_threshold: smaller than store_part_size");
    expect_error(fx, MINIMAL S3_LINES "store_timeout = 0\n", 17, "store_timeout: bad number");
    expect_error(fx, MINIMAL S3_LINES "object_lock_mode = strict\n", 17,
                 "object_lock_mode: 'strict'");
    expect_error(fx, MINIMAL S3_LINES "require_object_lock = maybe\n", 17,
                 "require_object_lock: bad boolean");
    expect_error(fx, MINIMAL S3_LINES "store_secret = abc\n", 17,
                 "unknown key 'store_secret' in [archive]");
}


int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_minimal_defaults), T(test_every_key),
        T(test_inherited_lists_and_state_defaults), T(test_error_lines),
        T(test_auth_and_token_command), T(test_insecure_spelling),
        T(test_missing_required), T(test_missing_file),
        T(test_secret_file_modes), T(test_secret_env), T(test_parse_size),
        T(test_example_file_loads), T(test_accounts), T(test_account_errors),
        T(test_store_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

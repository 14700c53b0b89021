/*
 * config.c — see config.h and docs/CONFIG.md.
 *
 * libinih does the INI syntax; we feed it through our own line reader so that we know
 * the line number of every key (Debian's inih is built without INI_HANDLER_LINENO) and
 * can see section headers (inih calls the handler only for keys, so an unknown but empty
 * section would otherwise pass silently).  Every key is described once in KEYS below.
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "common/mrtime.h"
#include "common/secret.h"

#define DEFAULT_STATE_DIR "/var/lib/mailret"
#define INSECURE_SPELLING "yes-for-testing-only"
#define MIB (1024ULL * 1024ULL)

enum key_type {
    KT_STR,         /* any non-empty string */
    KT_PATH,        /* resolved against the config file's directory */
    KT_UINT,        /* unsigned, range lo..hi */
    KT_INT,         /* int, range lo..hi */
    KT_SIZE,        /* uint64_t with K/M/G suffix, range lo..hi */
    KT_BOOL,
    KT_TLS,
    KT_BACKEND,
    KT_LEVEL,
    KT_INSECURE,
    KT_REGEX,
    KT_ZONE,
    KT_ADDRLIST,    /* comma list of e-mail addresses */
    KT_DOMLIST,     /* comma list of domains */
    KT_TYPELIST,    /* comma list of MIME type patterns (see type_pattern_ok) */
    KT_REPEAT,      /* repeatable key, one value each */
    KT_AUTH,
    KT_COMMAND,     /* a command line, split into argv without a shell */
    KT_STORE,       /* local | s3 */
    KT_LOCKMODE,    /* governance | compliance */
};

struct key_def {
    const char *section;
    const char *name;
    enum key_type type;
    size_t off;
    long long lo, hi;
};

#define K(sec, name, type, field) { sec, name, type, offsetof(struct mr_config, field), 0, 0 }
#define KR(sec, name, type, field, lo, hi) \
    { sec, name, type, offsetof(struct mr_config, field), lo, hi }

static const struct key_def KEYS[] = {
    K("imap", "host", KT_STR, imap.host),
    KR("imap", "port", KT_UINT, imap.port, 1, 65535),
    K("imap", "tls", KT_TLS, imap.tls),
    K("imap", "ca_file", KT_PATH, imap.ca_file),
    K("imap", "insecure_skip_verify", KT_INSECURE, imap.insecure_skip_verify),
    K("imap", "user", KT_STR, imap.user),
    K("imap", "auth", KT_AUTH, imap.auth),
    K("imap", "password_file", KT_PATH, imap.password_file),
    K("imap", "password_env", KT_STR, imap.password_env),
    K("imap", "token_command", KT_COMMAND, imap.token_command),
    KR("imap", "token_timeout", KT_UINT, imap.token_timeout, 1, 600),
    KR("imap", "throttle_max_wait", KT_UINT, imap.throttle_max_wait, 0, 86400),
    KR("imap", "connect_timeout", KT_UINT, imap.connect_timeout, 1, 3600),
    KR("imap", "io_timeout", KT_UINT, imap.io_timeout, 1, 86400),
    KR("imap", "fetch_batch", KT_UINT, imap.fetch_batch, 1, 100000),
    KR("imap", "max_message_size", KT_SIZE, imap.max_message_size, 1024, 4096 * MIB),
    K("mailboxes", "mailbox", KT_REPEAT, mailboxes),
    K("members", "backend", KT_BACKEND, members.backend),
    K("members", "database", KT_PATH, members.database),
    K("members", "maildir", KT_PATH, members.maildir),
    K("members", "command", KT_STR, members.command),
    K("members", "case_pattern", KT_REGEX, members.case_pattern),
    K("members", "own_addresses", KT_ADDRLIST, members.own_addresses),
    K("members", "own_domains", KT_DOMLIST, members.own_domains),
    KR("members", "unrouted_warn_count", KT_UINT, unrouted.warn_count, 0, 10000000),
    KR("members", "unrouted_warn_days", KT_UINT, unrouted.warn_days, 0, 3650),
    K("archive", "dir", KT_PATH, archive.dir),
    KR("archive", "volume_size", KT_SIZE, archive.volume_size, 64 * 1024, 4096 * MIB),
    KR("archive", "compression_level", KT_INT, archive.compression_level, 0, 9),
    KR("archive", "workers", KT_UINT, archive.workers, 0, 16),   /* ARCHIVE_MAX_WORKERS */
    K("archive", "store", KT_STORE, archive.store),
    K("archive", "store_endpoint", KT_STR, archive.store_endpoint),
    K("archive", "store_region", KT_STR, archive.store_region),
    K("archive", "store_bucket", KT_STR, archive.store_bucket),
    K("archive", "store_path_style", KT_BOOL, archive.store_path_style),
    K("archive", "store_prefix", KT_STR, archive.store_prefix),
    K("archive", "store_ca_file", KT_PATH, archive.store_ca_file),
    K("archive", "store_credentials_file", KT_PATH, archive.store_credentials_file),
    /* S3's limits: parts of 5 MiB to 5 GiB, one PUT of at most 5 GiB. */
    KR("archive", "store_multipart_threshold", KT_SIZE, archive.store_multipart_threshold,
       5 * MIB, 5120 * MIB),
    KR("archive", "store_part_size", KT_SIZE, archive.store_part_size, 5 * MIB, 5120 * MIB),
    KR("archive", "store_timeout", KT_UINT, archive.store_timeout, 1, 86400),
    K("archive", "object_lock_mode", KT_LOCKMODE, archive.object_lock_mode),
    K("archive", "require_object_lock", KT_BOOL, archive.require_object_lock),
    K("keys", "vault_dir", KT_PATH, keys.vault_dir),
    K("keys", "it_cert", KT_PATH, keys.it_cert),
    K("keys", "reid_cert", KT_PATH, keys.reid_cert),
    K("keys", "pseudonym_key_file", KT_PATH, keys.pseudonym_key_file),
    K("keys", "manifest_key_file", KT_PATH, keys.manifest_key_file),
    K("keys", "signing_key_file", KT_PATH, keys.signing_key_file),
    K("keys", "host_keyring", KT_PATH, keys.host_keyring),
    KR("retention", "years", KT_INT, retention.years, 1, 100),
    K("retention", "timezone", KT_ZONE, retention.timezone),
    KR("retention", "expiring_warn_days", KT_INT, retention.expiring_warn_days, 0, 3650),
    KR("retention", "held_back_days", KT_INT, retention.held_back_days, 0, 3650),
    K("pseudonymisation", "emails", KT_BOOL, pseudonymisation.emails),
    K("pseudonymisation", "cpr", KT_BOOL, pseudonymisation.cpr),
    K("pseudonymisation", "phones", KT_BOOL, pseudonymisation.phones),
    K("pseudonymisation", "names", KT_BOOL, pseudonymisation.names),
    K("pseudonymisation", "ips", KT_BOOL, pseudonymisation.ips),
    K("pseudonymisation", "own_addresses", KT_ADDRLIST, pseudonymisation.own_addresses),
    K("pseudonymisation", "own_domains", KT_DOMLIST, pseudonymisation.own_domains),
    K("pseudonymisation", "keep", KT_TYPELIST, pseudonymisation.keep_types),
    K("pseudonymisation", "seal", KT_TYPELIST, pseudonymisation.seal_types),
    K("state", "dir", KT_PATH, state.dir),
    K("state", "erasure_ledger", KT_PATH, state.erasure_ledger),
    K("log", "level", KT_LEVEL, log.level),
    K("log", "file", KT_PATH, log.file),
    K("audit", "log", KT_PATH, audit.log),
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

static const char *const SECTIONS[] = { "imap", "mailboxes", "members", "archive", "keys",
                                        "retention", "pseudonymisation", "state", "log",
                                        "audit" };
#define N_SECTIONS (sizeof SECTIONS / sizeof SECTIONS[0])

struct parse_ctx {
    struct mr_config *cfg;
    const char *path;       /* as given, for messages */
    char *base_dir;         /* absolute directory of the file */
    FILE *f;
    int line;               /* line the reader returned last */
    int key_line[N_KEYS];   /* where each key was (first) set; 0 = not set */
    int section_line[N_SECTIONS];
    int err_line;           /* first error's line, 0 = none */
    mr_error *err;
};

/* Keys of an [account NAME] section: those of [imap], and mailbox. */
static bool account_key(const struct key_def *k)
{
    return strcmp(k->section, "imap") == 0 || strcmp(k->section, "mailboxes") == 0;
}

/* Where key k of an account lives inside it. */
static void *account_field(struct config_account *a, const struct key_def *k)
{
    if (strcmp(k->section, "mailboxes") == 0)
        return &a->mailboxes;
    return (char *)&a->imap + (k->off - offsetof(struct mr_config, imap));
}

static bool account_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > CONFIG_ACCOUNT_NAME_MAX || name[0] == '-' || name[0] == '_')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '-' || name[i] == '_'))
            return false;
    return true;
}

static struct config_account *account_get(struct mr_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_accounts; i++)
        if (strcmp(cfg->accounts[i].name, name) == 0)
            return &cfg->accounts[i];
    return NULL;
}

const struct config_account *config_account_find(const struct mr_config *cfg,
                                                 const char *name)
{
    return cfg != NULL && name != NULL ? account_get((struct mr_config *)cfg, name) : NULL;
}

static void imap_defaults(struct config_imap *imap)
{
    imap->tls = CONFIG_TLS_IMAPS;
    imap->connect_timeout = 30;
    imap->io_timeout = 300;
    imap->fetch_batch = 200;
    imap->auth = CONFIG_AUTH_LOGIN;
    imap->token_timeout = 30;
    imap->throttle_max_wait = 600;
    imap->max_message_size = 64 * MIB;
}

static int ctx_error(struct parse_ctx *c, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record the first error only: later ones are usually consequences. */
static int ctx_error(struct parse_ctx *c, int line, int code, const char *fmt, ...)
{
    char msg[MR_ERROR_MSG_MAX];
    va_list ap;

    if (c->err_line != 0)
        return 0;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->err_line = line > 0 ? line : 1;
    mr_error_set(c->err, code, "%s:%d: %s", c->path, line, msg);
    return 0;
}

static int section_index(const char *name)
{
    for (size_t i = 0; i < N_SECTIONS; i++)
        if (strcmp(name, SECTIONS[i]) == 0)
            return (int)i;
    return -1;
}

/* Inline comments and quotes are refused on the raw line, before inih sees it: libinih
 * strips " ;..." or not depending on how it was built, and keeps quotes and " #..." as
 * part of the value, so `user = mailret # svc` would silently log in as "mailret # svc".
 * Refusing (rather than stripping) never changes the meaning of a value that really
 * contains " #" (a regular expression, a mailbox name): it is an error, not a new value. */
/* Whether the line sets a key whose value is a command line. */
static bool command_key(const char *line)
{
    size_t n = strcspn(line, "=:");

    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < N_KEYS; i++)
        if (KEYS[i].type == KT_COMMAND && strlen(KEYS[i].name) == n &&
            strncmp(KEYS[i].name, line, n) == 0)
            return true;
    return false;
}

static const char *value_problem(const char *line)
{
    const char *v = strpbrk(line, "=:");
    size_t len;

    if (v == NULL)
        return NULL;    /* inih reports the syntax error */
    v++;
    v += strspn(v, " \t");
    len = strcspn(v, "\r\n");
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    for (size_t i = 1; i < len; i++)
        if ((v[i] == '#' || v[i] == ';') && (v[i - 1] == ' ' || v[i - 1] == '\t'))
            return "comment after a value (inline comments are not supported; put the "
                   "comment on a line of its own)";
    /* A command line has its own quoting (KT_COMMAND).  Elsewhere a value that starts with
     * a quote, or ends with one left unpaired, is an operator quoting it; paired quotes
     * inside a value (a mailbox named 'Gendannet "x"') are part of it. */
    if (len > 0 && !command_key(line)) {
        size_t pairs = 0;
        for (size_t i = 0; i < len; i++)
            pairs += v[i] == v[len - 1];
        if (v[0] == '"' || v[0] == '\'' ||
            ((v[len - 1] == '"' || v[len - 1] == '\'') && pairs % 2 == 1))
            return "quoted value (quotes are not supported; write the value without them)";
    }
    return NULL;
}

/* An [account NAME] header: a new account with the [imap] defaults.  The name is not
 * echoed when it is refused: whatever it is, it is not a valid account name. */
static void account_section(struct parse_ctx *c, const char *name)
{
    struct mr_config *cfg = c->cfg;
    struct config_account *a;

    if (!account_name_ok(name)) {
        ctx_error(c, c->line, MR_E_CONFIG, "bad account name in [account NAME] (1-%d of a-z, "
                  "0-9, '-' and '_', starting with a letter or digit)",
                  CONFIG_ACCOUNT_NAME_MAX);
        return;
    }
    if ((a = account_get(cfg, name)) != NULL) {
        ctx_error(c, c->line, MR_E_CONFIG, "duplicate section [account %s] (first on line %d)",
                  name, a->line);
        return;
    }
    a = realloc(cfg->accounts, (cfg->n_accounts + 1) * sizeof *a);
    if (a == NULL) {
        ctx_error(c, c->line, MR_E_NOMEM, "out of memory");
        return;
    }
    cfg->accounts = a;
    a = &cfg->accounts[cfg->n_accounts];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->key_lines = calloc(N_KEYS, sizeof *a->key_lines);
    if (a->name == NULL || a->key_lines == NULL) {
        free(a->name);
        free(a->key_lines);
        ctx_error(c, c->line, MR_E_NOMEM, "out of memory");
        return;
    }
    a->line = c->line;
    a->legacy_keys = strcmp(name, CONFIG_DEFAULT_ACCOUNT) == 0;
    imap_defaults(&a->imap);
    cfg->n_accounts++;
}

/* inih's line source: counts lines and checks what inih does not report itself. */
static char *config_reader(char *str, int num, void *stream)
{
    struct parse_ctx *c = stream;
    char *got = fgets(str, num, c->f);
    size_t len;
    const char *p;

    if (got == NULL)
        return NULL;
    c->line++;
    len = strlen(str);
    if (len > 0 && str[len - 1] != '\n' && !feof(c->f)) {
        int ch;
        /* inih would read the rest as a new line; swallow it and say why. */
        while ((ch = fgetc(c->f)) != EOF && ch != '\n')
            ;
        p = str + strspn(str, " \t");
        if (*p != ';' && *p != '#')     /* a long comment is harmless */
            ctx_error(c, c->line, MR_E_CONFIG, "line too long (at most %d characters)",
                      num - 2);
        str[0] = '\0';
        return str;
    }
    p = str + strspn(str, " \t");
    if (p != str && *p != '\0' && *p != '\r' && *p != '\n' && *p != ';' && *p != '#') {
        /* inih joins indented lines to the previous value (multi-line values), which
         * would silently turn a misplaced key into part of a value. */
        ctx_error(c, c->line, MR_E_CONFIG,
                  "indented line (continuation lines are not supported)");
        str[0] = '\0';
        return str;
    }
    if (*p != '[' && *p != ';' && *p != '#' && value_problem(p) != NULL) {
        ctx_error(c, c->line, MR_E_CONFIG, "%s", value_problem(p));
        str[0] = '\0';
        return str;
    }
    if (*p == '[') {
        const char *end = strchr(p, ']');
        char name[64];
        size_t n;
        int idx;
        if (end != NULL && (n = (size_t)(end - p - 1)) < sizeof name) {
            memcpy(name, p + 1, n);
            name[n] = '\0';
            idx = section_index(name);
            if (strncmp(name, "account", 7) == 0 && (name[7] == ' ' || name[7] == '\0'))
                account_section(c, name[7] == ' ' ? name + 8 : "");
            else if (idx < 0)
                ctx_error(c, c->line, MR_E_CONFIG, "unknown section [%s]", name);
            else if (c->section_line[idx] == 0)
                c->section_line[idx] = c->line;
        }
    }
    return str;
}

static int parse_ull(const char *s, unsigned long long *out)
{
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    return 0;
}

int config_parse_size(const char *text, uint64_t *out, mr_error *err)
{
    char num[32];
    size_t len;
    unsigned long long v, mult = 1;

    if (text == NULL || out == NULL || (len = strlen(text)) == 0 || len >= sizeof num)
        return mr_error_set(err, MR_E_INVALID, "bad size '%.32s'", text ? text : "");
    memcpy(num, text, len + 1);
    switch (num[len - 1]) {
    case 'K': case 'k': mult = 1024ULL; break;
    case 'M': case 'm': mult = MIB; break;
    case 'G': case 'g': mult = 1024ULL * MIB; break;
    default: break;
    }
    if (mult != 1)
        num[--len] = '\0';
    if (parse_ull(num, &v) != 0 || v > UINT64_MAX / mult)
        return mr_error_set(err, MR_E_INVALID,
                            "bad size '%.32s' (a number, optionally with K, M or G)", text);
    *out = v * mult;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static char *resolve_path(const char *base_dir, const char *v)
{
    size_t n;
    char *p;

    if (v[0] == '/')
        return strdup(v);
    n = strlen(base_dir) + strlen(v) + 2;
    p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", base_dir, v);
    return p;
}

static int list_add(struct config_list *l, const char *v, size_t len)
{
    char **items = realloc(l->items, (l->n + 1) * sizeof *items);

    if (items == NULL)
        return -1;
    l->items = items;
    l->items[l->n] = strndup(v, len);
    if (l->items[l->n] == NULL)
        return -1;
    l->n++;
    return 0;
}

static void list_free(struct config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int list_copy(struct config_list *dst, const struct config_list *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (list_add(dst, src->items[i], strlen(src->items[i])) != 0)
            return -1;
    return 0;
}

/* "a@x.dk, b@x.dk" -> items; checks each element's shape (values are never echoed:
 * they are addresses). */
/* A MIME type name (RFC 6838 restricted-name: letters, digits, !#$&-^_.+), 1-63 bytes. */
static bool type_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (ch != '\0' && strchr("!#$&-^_.+", ch) != NULL)))
            return false;
    }
    return true;
}

/* "type/subtype", "type/" + "*", or any type ("*" alone or "*" + "/" + "*"). */
static bool type_pattern_ok(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    size_t tl;

    if ((n == 1 && s[0] == '*') || (n == 3 && memcmp(s, "*/*", 3) == 0))
        return true;
    if (slash == NULL)
        return false;
    tl = (size_t)(slash - s);
    if (!type_name_ok(s, tl))
        return false;
    return (n - tl - 1 == 1 && slash[1] == '*') || type_name_ok(slash + 1, n - tl - 1);
}

static int parse_list(struct parse_ctx *c, const struct key_def *k, const char *v,
                      struct config_list *l)
{
    const char *p = v;

    while (*p != '\0') {
        const char *start, *end;
        size_t len;
        p += strspn(p, " \t,");
        if (*p == '\0')
            break;
        start = p;
        p += strcspn(p, ",");
        end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        len = (size_t)(end - start);
        if (memchr(start, ' ', len) != NULL || memchr(start, '\t', len) != NULL)
            return ctx_error(c, c->line, MR_E_CONFIG,
                             "%s: list elements are separated by commas", k->name);
        if (k->type == KT_TYPELIST) {
            if (!type_pattern_ok(start, len))
                return ctx_error(c, c->line, MR_E_CONFIG,
                                 "%s: element %zu is not a MIME type pattern (type/subtype, "
                                 "type/* or *)", k->name, l->n + 1);
        } else if (k->type == KT_ADDRLIST) {
            const char *at = memchr(start, '@', len);
            if (at == NULL || at == start || at == end - 1)
                return ctx_error(c, c->line, MR_E_CONFIG,
                                 "%s: element %zu is not an e-mail address", k->name, l->n + 1);
        } else if (memchr(start, '@', len) != NULL || memchr(start, '.', len) == NULL) {
            return ctx_error(c, c->line, MR_E_CONFIG,
                             "%s: element %zu is not a domain name", k->name, l->n + 1);
        }
        if (list_add(l, start, len) != 0)
            return ctx_error(c, c->line, MR_E_NOMEM, "out of memory");
    }
    return 1;
}

/* Patterns come from the operator, but glibc's regcomp can take unbounded memory on
 * stacked repetition operators ("a+++++..."; found by fuzz_common_config), which POSIX
 * leaves undefined in an ERE anyway.  Refuse them before regcomp sees them (the length
 * is already bounded by the line limit).  Returns NULL or the reason. */
static const char *regex_shape_problem(const char *v)
{
    bool prev_repeat = false;
    size_t len = strlen(v);

    for (size_t i = 0; i < len; i++) {
        char ch = v[i];
        bool repeat = false;

        if (ch == '\\') {
            i++;                        /* an escaped character is a literal */
        } else if (ch == '[') {
            /* A bracket expression: ']' right after '[' or '[^' is literal; [:class:],
             * [=x=] and [.x.] hold no closing bracket of their own. */
            i++;
            if (i < len && v[i] == '^')
                i++;
            if (i < len && v[i] == ']')
                i++;
            while (i < len && v[i] != ']') {
                if (v[i] == '[' && i + 1 < len && strchr(":=.", v[i + 1]) != NULL) {
                    const char *end = strstr(v + i + 2, (char[]){ v[i + 1], ']', '\0' });
                    if (end == NULL)
                        break;
                    i = (size_t)(end - v) + 1;
                } else {
                    i++;
                }
            }
        } else if (ch == '*' || ch == '+' || ch == '?') {
            repeat = true;
        } else if (ch == '{') {
            const char *close = strchr(v + i, '}');
            if (close != NULL) {
                i = (size_t)(close - v);
                repeat = true;
            }
        }
        if (repeat && prev_repeat)
            return "consecutive repetition operators (undefined in a POSIX ERE)";
        prev_repeat = repeat;
    }
    return NULL;
}

static int set_value(struct parse_ctx *c, const struct key_def *k, const char *v,
                     void *field)
{
    unsigned long long n;
    mr_error local;

    switch (k->type) {
    case KT_STR:
    case KT_REGEX:
    case KT_ZONE: {
        char **s = field;
        if (k->type == KT_REGEX) {
            const char *problem = regex_shape_problem(v);
            regex_t re;
            int rc;

            if (problem != NULL)
                return ctx_error(c, c->line, MR_E_CONFIG, "%s: bad regular expression: %s",
                                 k->name, problem);
            rc = regcomp(&re, v, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char why[128];
                regerror(rc, &re, why, sizeof why);
                return ctx_error(c, c->line, MR_E_CONFIG, "%s: bad regular expression: %s",
                                 k->name, why);
            }
            regfree(&re);
        }
        if (k->type == KT_ZONE && mrtime_zone_check(v, &local) != 0)
            return ctx_error(c, c->line, MR_E_CONFIG, "%s: %s", k->name, local.msg);
        *s = strdup(v);
        if (*s == NULL)
            return ctx_error(c, c->line, MR_E_NOMEM, "out of memory");
        return 1;
    }
    case KT_PATH: {
        char **s = field;
        /* "-" means stderr for the log file; never a file named "-". */
        *s = (k->off == offsetof(struct mr_config, log.file) && strcmp(v, "-") == 0)
                 ? NULL : resolve_path(c->base_dir, v);
        if (*s == NULL && strcmp(v, "-") != 0)
            return ctx_error(c, c->line, MR_E_NOMEM, "out of memory");
        return 1;
    }
    case KT_UINT:
    case KT_INT:
        if (parse_ull(v, &n) != 0 || n < (unsigned long long)k->lo ||
            n > (unsigned long long)k->hi)
            return ctx_error(c, c->line, MR_E_CONFIG,
                             "%s: bad number '%.40s' (expected an integer from %lld to %lld)",
                             k->name, v, k->lo, k->hi);
        if (k->type == KT_UINT)
            *(unsigned *)field = (unsigned)n;
        else
            *(int *)field = (int)n;
        return 1;
    case KT_SIZE: {
        uint64_t size;
        if (config_parse_size(v, &size, &local) != 0 || size < (uint64_t)k->lo ||
            size > (uint64_t)k->hi)
            return ctx_error(c, c->line, MR_E_CONFIG,
                             "%s: bad size '%.40s' (expected %lldK to %lldM; suffix K, M or G)",
                             k->name, v, k->lo / 1024, k->hi / (long long)MIB);
        *(uint64_t *)field = size;
        return 1;
    }
    case KT_BOOL:
        if (parse_bool(v, field) != 0)
            return ctx_error(c, c->line, MR_E_CONFIG, "%s: bad boolean '%.40s' (use yes or no)",
                             k->name, v);
        return 1;
    case KT_INSECURE: {
        bool b;
        if (strcmp(v, INSECURE_SPELLING) == 0) {
            *(bool *)field = true;
            return 1;
        }
        if (parse_bool(v, &b) != 0)
            return ctx_error(c, c->line, MR_E_CONFIG, "%s: bad boolean '%.40s' (use no)",
                             k->name, v);
        if (b)
            return ctx_error(c, c->line, MR_E_CONFIG,
                             "%s: refusing to turn off certificate verification; only the "
                             "value '" INSECURE_SPELLING "' does that, for test servers",
                             k->name);
        *(bool *)field = false;
        return 1;
    }
    case KT_TLS:
        if (strcmp(v, "imaps") == 0)
            *(enum config_tls *)field = CONFIG_TLS_IMAPS;
        else if (strcmp(v, "starttls") == 0)
            *(enum config_tls *)field = CONFIG_TLS_STARTTLS;
        else
            return ctx_error(c, c->line, MR_E_CONFIG, "tls: '%.40s' (use imaps or starttls)", v);
        return 1;
    case KT_AUTH: {
        static const char *const names[] = { "login", "plain", "xoauth2", "oauthbearer" };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            if (strcmp(v, names[i]) == 0) {
                *(enum config_auth *)field = (enum config_auth)i;
                return 1;
            }
        }
        return ctx_error(c, c->line, MR_E_CONFIG,
                         "auth: '%.40s' (use login, plain, xoauth2 or oauthbearer)", v);
    }
    case KT_COMMAND: {
        char ***argv = field;
        if (secret_command_parse(v, argv, &local) != 0)
            return ctx_error(c, c->line, local.code, "%s: %s", k->name, local.msg);
        return 1;
    }
    case KT_STORE:
        if (strcmp(v, "local") == 0)
            *(enum config_store *)field = CONFIG_STORE_LOCAL;
        else if (strcmp(v, "s3") == 0)
            *(enum config_store *)field = CONFIG_STORE_S3;
        else
            return ctx_error(c, c->line, MR_E_CONFIG, "store: '%.40s' (use local or s3)", v);
        return 1;
    case KT_LOCKMODE:
        if (strcasecmp(v, "compliance") == 0)
            *(enum config_lock_mode *)field = CONFIG_LOCK_COMPLIANCE;
        else if (strcasecmp(v, "governance") == 0)
            *(enum config_lock_mode *)field = CONFIG_LOCK_GOVERNANCE;
        else
            return ctx_error(c, c->line, MR_E_CONFIG,
                             "object_lock_mode: '%.40s' (use compliance or governance)", v);
        return 1;
    case KT_BACKEND:
        if (strcmp(v, "sqlite") == 0)
            *(enum config_members_backend *)field = CONFIG_MEMBERS_SQLITE;
        else if (strcmp(v, "maildir") == 0)
            *(enum config_members_backend *)field = CONFIG_MEMBERS_MAILDIR;
        else if (strcmp(v, "exec") == 0)
            *(enum config_members_backend *)field = CONFIG_MEMBERS_EXEC;
        else
            return ctx_error(c, c->line, MR_E_CONFIG,
                             "backend: '%.40s' (use sqlite, maildir or exec)", v);
        return 1;
    case KT_LEVEL:
        if (log_level_parse(v, field, &local) != 0)
            return ctx_error(c, c->line, MR_E_CONFIG, "level: %s", local.msg);
        c->cfg->log.level_set = true;
        return 1;
    case KT_ADDRLIST:
    case KT_DOMLIST:
    case KT_TYPELIST:
        return parse_list(c, k, v, field);
    case KT_REPEAT: {
        struct config_list *l = field;
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(l->items[i], v) == 0)
                return ctx_error(c, c->line, MR_E_CONFIG, "mailbox '%.80s' listed twice", v);
        if (list_add(l, v, strlen(v)) != 0)
            return ctx_error(c, c->line, MR_E_NOMEM, "out of memory");
        return 1;
    }
    }
    return ctx_error(c, c->line, MR_E_INTERNAL, "unhandled key type");
}

/* A key of [account NAME]: any key of [imap], and mailbox (repeatable). */
static int account_handler(struct parse_ctx *c, const char *account, const char *name,
                           const char *value)
{
    struct config_account *a = account_get(c->cfg, account);

    if (a == NULL)
        return 0;   /* the reader reported the bad section */
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key_def *k = &KEYS[i];
        if (!account_key(k) || strcmp(k->name, name) != 0)
            continue;
        if (a->key_lines[i] != 0 && k->type != KT_REPEAT)
            return ctx_error(c, c->line, MR_E_CONFIG,
                             "duplicate key '%s' in [account %s] (first set on line %d)", name,
                             account, a->key_lines[i]);
        if (*value == '\0')
            return ctx_error(c, c->line, MR_E_CONFIG, "%s: empty value", name);
        if (a->key_lines[i] == 0)
            a->key_lines[i] = c->line;
        return set_value(c, k, value, account_field(a, k));
    }
    if (strcmp(name, "password") == 0)
        return ctx_error(c, c->line, MR_E_CONFIG,
                         "unknown key 'password' in [account %s]: secrets do not belong in "
                         "the configuration file; use password_file or password_env", account);
    return ctx_error(c, c->line, MR_E_CONFIG, "unknown key '%.40s' in [account %s]", name,
                     account);
}

static int config_handler(void *user, const char *section, const char *name,
                          const char *value)
{
    struct parse_ctx *c = user;
    int sidx = section_index(section);

    if (c->err_line != 0)
        return 1;   /* already failed; let inih finish quietly */
    if (*section == '\0')
        return ctx_error(c, c->line, MR_E_CONFIG, "key '%.40s' outside any [section]", name);
    if (strncmp(section, "account ", 8) == 0)
        return account_handler(c, section + 8, name, value);
    if (sidx < 0)
        return 0;   /* the reader reported the unknown section */
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key_def *k = &KEYS[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
            continue;
        if (c->key_line[i] != 0 && k->type != KT_REPEAT)
            return ctx_error(c, c->line, MR_E_CONFIG,
                             "duplicate key '%s' in [%s] (first set on line %d)", name,
                             section, c->key_line[i]);
        if (*value == '\0' && k->type != KT_ADDRLIST && k->type != KT_DOMLIST)
            return ctx_error(c, c->line, MR_E_CONFIG, "%s: empty value", name);
        if (c->key_line[i] == 0)
            c->key_line[i] = c->line;
        return set_value(c, k, value, (char *)c->cfg + k->off);
    }
    if (strcmp(section, "imap") == 0 && strcmp(name, "password") == 0)
        return ctx_error(c, c->line, MR_E_CONFIG,
                         "unknown key 'password' in [imap]: secrets do not belong in the "
                         "configuration file; use password_file or password_env");
    return ctx_error(c, c->line, MR_E_CONFIG, "unknown key '%.40s' in [%s]", name, section);
}

static int key_index(const char *section, const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(KEYS[i].section, section) == 0 && strcmp(KEYS[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int key_set(const struct parse_ctx *c, const char *section, const char *name)
{
    int i = key_index(section, name);
    return i >= 0 && c->key_line[i] != 0;
}

static int missing(struct parse_ctx *c, const char *section, const char *name, const char *why)
{
    int s = section_index(section);

    if (s >= 0 && c->section_line[s] != 0)
        return ctx_error(c, c->section_line[s], MR_E_CONFIG, "[%s] lacks required key '%s'%s",
                         section, name, why);
    return ctx_error(c, c->line, MR_E_CONFIG,
                     "missing section [%s] (required key '%s'%s) at end of file", section, name,
                     why);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* An account's required keys and defaults: [imap] + [mailboxes] (label "imap"), or
 * [account NAME] (label "account NAME").  lines: where each of KEYS was set. */
static int finish_imap(struct parse_ctx *c, struct config_imap *imap, const int *lines,
                       const char *label, int section_line, struct config_list *mailboxes)
{
    static const char *const src[] = { "password_file", "password_env", "token_command" };
    bool legacy = strcmp(label, "imap") == 0;
    const char *need = NULL, *why = "";
    int n = 0, last = 0;

    if (imap->host == NULL)
        need = "host";
    else if (imap->user == NULL)
        need = "user";
    else if (imap->password_file == NULL && imap->password_env == NULL &&
             imap->token_command == NULL)
        need = "password_file", why = " (or password_env or token_command)";
    if (need != NULL) {
        if (legacy)
            return missing(c, "imap", need, why) , -1;
        return ctx_error(c, section_line, MR_E_CONFIG, "[%s] lacks required key '%s'%s", label,
                         need, why), -1;
    }
    for (size_t i = 0; i < 3; i++) {
        int l = lines[key_index("imap", src[i])];
        if (l != 0) {
            n++;
            last = l > last ? l : last;
        }
    }
    if (n > 1)
        return ctx_error(c, last, MR_E_CONFIG,
                         "set only one of password_file, password_env and token_command"), -1;
    if (lines[key_index("imap", "port")] == 0)
        imap->port = imap->tls == CONFIG_TLS_IMAPS ? 993 : 143;
    if (mailboxes->n == 0) {
        if (legacy)
            return missing(c, "mailboxes", "mailbox", " (at least one)"), -1;
        return ctx_error(c, section_line, MR_E_CONFIG, "[%s] lacks required key 'mailbox' (at "
                         "least one)", label), -1;
    }
    return 0;
}

/* Every [account NAME]: its keys, and no two accounts on one server mailbox (it would be
 * ingested and purged twice) or on one journal and archive name. */
static int finish_accounts(struct parse_ctx *c)
{
    struct mr_config *cfg = c->cfg;

    for (size_t i = 0; i < cfg->n_accounts; i++) {
        struct config_account *a = &cfg->accounts[i];
        char label[16 + CONFIG_ACCOUNT_NAME_MAX];
        snprintf(label, sizeof label, "account %s", a->name);
        if (finish_imap(c, &a->imap, a->key_lines, label, a->line, &a->mailboxes) != 0)
            return -1;
    }
    for (size_t i = 0; i < cfg->n_accounts; i++) {
        const struct config_account *a = &cfg->accounts[i];
        for (size_t j = i + 1; j < cfg->n_accounts; j++) {
            const struct config_account *b = &cfg->accounts[j];
            bool same_login = strcasecmp(a->imap.host, b->imap.host) == 0 &&
                              a->imap.port == b->imap.port &&
                              strcmp(a->imap.user, b->imap.user) == 0;
            for (size_t x = 0; same_login && x < a->mailboxes.n; x++)
                for (size_t y = 0; y < b->mailboxes.n; y++)
                    if (strcmp(a->mailboxes.items[x], b->mailboxes.items[y]) == 0)
                        return ctx_error(c, b->line, MR_E_CONFIG, "[account %s] and [account "
                                         "%s] name the same mailbox of the same login",
                                         a->name, b->name), -1;
        }
        /* "default" keys its mailboxes by their bare names, the others as "NAME:mailbox". */
        if (!a->legacy_keys)
            continue;
        for (size_t j = 0; j < cfg->n_accounts; j++) {
            const struct config_account *b = &cfg->accounts[j];
            size_t n = strlen(b->name);
            for (size_t x = 0; !b->legacy_keys && x < a->mailboxes.n; x++)
                if (strncmp(a->mailboxes.items[x], b->name, n) == 0 &&
                    a->mailboxes.items[x][n] == ':')
                    return ctx_error(c, a->line, MR_E_CONFIG, "[account %s]: a mailbox name "
                                     "starting with '%s:' would share its archive and journal "
                                     "name with [account %s]", a->name, b->name, b->name), -1;
        }
    }
    return 0;
}

/* Keys of [archive] that only mean something with store = s3. */
static bool s3_only_key(const struct key_def *k)
{
    return strcmp(k->section, "archive") == 0
           && ((strncmp(k->name, "store_", 6) == 0) || strcmp(k->name, "object_lock_mode") == 0
               || strcmp(k->name, "require_object_lock") == 0);
}

/* The host part of an endpoint "scheme://host[:port]" is a loopback name: plain http is
 * allowed only there (credentials and archive bytes would otherwise cross a network
 * in clear, and a signature does not hide a body). */
static bool loopback_host(const char *host)
{
    size_t n = strcspn(host, ":");

    if (host[0] == '[')
        return strncmp(host, "[::1]", 5) == 0 && (host[5] == '\0' || host[5] == ':');
    return (n == 9 && strncmp(host, "127.0.0.1", 9) == 0)
           || (n == 9 && strncmp(host, "localhost", 9) == 0);
}

static const char *endpoint_problem(const char *e)
{
    const char *host, *port;

    if (strncmp(e, "https://", 8) == 0)
        host = e + 8;
    else if (strncmp(e, "http://", 7) == 0)
        host = e + 7;
    else
        return "must start with https:// (http:// only for 127.0.0.1, [::1] or localhost)";
    if (*host == '\0' || strpbrk(host, "/?#@ \t") != NULL)
        return "must be https://host[:port], without a path, query or user";
    port = host[0] == '[' ? strstr(host, "]:") : strchr(host, ':');
    if (port != NULL) {
        unsigned long long p;
        port += host[0] == '[' ? 2 : 1;
        if (parse_ull(port, &p) != 0 || p == 0 || p > 65535)
            return "has a bad port";
    }
    if (e[4] != 's' && !loopback_host(host))
        return "http:// is allowed only for 127.0.0.1, [::1] or localhost (use https://)";
    return NULL;
}

/* An object key prefix: the same rules as an object key (store_key_check), which this
 * module cannot call. */
static const char *prefix_problem(const char *p)
{
    size_t len = strlen(p), seg = 0;

    if (len > 512)
        return "longer than 512 bytes";
    if (p[0] == '/' || p[len - 1] == '/')
        return "starts or ends with '/'";
    for (size_t i = 0; i <= len; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            const char *s = p + i - seg;
            if (seg == 0)
                return "has an empty segment ('//')";
            if ((seg == 1 && s[0] == '.') || (seg == 2 && s[0] == '.' && s[1] == '.'))
                return "has a '.' or '..' segment";
            if (seg > 255)
                return "has a segment longer than 255 bytes";
            if (memmem(s, seg, ".tmp.", 5) != NULL)
                return "contains '.tmp.'";
            seg = 0;
            continue;
        }
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return "contains a control character";
        seg++;
    }
    return NULL;
}

/* [archive] store keys: with store = s3 the bucket's address is required and checked;
 * with store = local no store key may be set (a typo in `store` would otherwise leave
 * every batch on this host alone while the operator believes it is mirrored). */
static int finish_store(struct parse_ctx *c)
{
    struct mr_config *cfg = c->cfg;
    const char *problem;

    if (cfg->archive.store != CONFIG_STORE_S3) {
        for (size_t i = 0; i < N_KEYS; i++)
            if (s3_only_key(&KEYS[i]) && c->key_line[i] != 0)
                return ctx_error(c, c->key_line[i], MR_E_CONFIG, "%s: only used with store "
                                 "= s3 (store is local)", KEYS[i].name), -1;
        return 0;
    }
    if (cfg->archive.store_endpoint == NULL)
        return missing(c, "archive", "store_endpoint", " (store = s3)"), -1;
    if (cfg->archive.store_region == NULL)
        return missing(c, "archive", "store_region", " (store = s3)"), -1;
    if (cfg->archive.store_bucket == NULL)
        return missing(c, "archive", "store_bucket", " (store = s3)"), -1;
    if ((problem = endpoint_problem(cfg->archive.store_endpoint)) != NULL)
        return ctx_error(c, c->key_line[key_index("archive", "store_endpoint")], MR_E_CONFIG,
                         "store_endpoint: %s", problem), -1;
    if (strpbrk(cfg->archive.store_region, ": /\t") != NULL)
        return ctx_error(c, c->key_line[key_index("archive", "store_region")], MR_E_CONFIG,
                         "store_region: not a plain region name"), -1;
    {
        const char *b = cfg->archive.store_bucket;
        size_t n = strlen(b);
        bool ok = n >= 3 && n <= 63;
        for (size_t i = 0; ok && i < n; i++)
            ok = (b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-'
                 || b[i] == '.';
        if (!ok)
            return ctx_error(c, c->key_line[key_index("archive", "store_bucket")], MR_E_CONFIG,
                             "store_bucket: 3 to 63 of a-z, 0-9, '-' and '.'"), -1;
    }
    if (cfg->archive.store_prefix != NULL
        && (problem = prefix_problem(cfg->archive.store_prefix)) != NULL)
        return ctx_error(c, c->key_line[key_index("archive", "store_prefix")], MR_E_CONFIG,
                         "store_prefix: %s", problem), -1;
    if (cfg->archive.store_multipart_threshold < cfg->archive.store_part_size) {
        if (key_set(c, "archive", "store_multipart_threshold"))
            return ctx_error(c, c->key_line[key_index("archive", "store_multipart_threshold")],
                             MR_E_CONFIG, "store_multipart_threshold: smaller than "
                             "store_part_size"), -1;
        cfg->archive.store_multipart_threshold = cfg->archive.store_part_size;
    }
    return 0;
}

/* Defaults that depend on other keys, and checks across keys.  Runs after parsing. */
static int finish(struct parse_ctx *c)
{
    struct mr_config *cfg = c->cfg;

    if (cfg->n_accounts > 0) {
        int l = c->section_line[section_index("imap")];
        if (l == 0)
            l = c->section_line[section_index("mailboxes")];
        if (l != 0)
            return ctx_error(c, l, MR_E_CONFIG, "[imap] and [mailboxes] do not go with [account "
                             "NAME] sections: rename [imap] to [account default] (it keeps "
                             "its state) and move its mailbox lines into it");
        if (finish_accounts(c) != 0)
            return 0;
    } else {
        if (finish_imap(c, &cfg->imap, c->key_line, "imap", c->section_line[section_index("imap")],
                        &cfg->mailboxes) != 0)
            return 0;
        cfg->accounts = calloc(1, sizeof *cfg->accounts);
        if (cfg->accounts == NULL || (cfg->accounts[0].name = strdup(CONFIG_DEFAULT_ACCOUNT))
                                         == NULL)
            goto nomem;
        cfg->n_accounts = 1;
        cfg->accounts[0].legacy_keys = true;
        cfg->accounts[0].borrowed = true;
        cfg->accounts[0].key_lines = c->key_line;   /* replaced by cfg->key_lines on success */
        cfg->accounts[0].imap = cfg->imap;
        cfg->accounts[0].mailboxes = cfg->mailboxes;
    }
    if (cfg->archive.dir == NULL)
        return missing(c, "archive", "dir", "");
    if (finish_store(c) != 0)
        return 0;
    if (cfg->keys.vault_dir == NULL)
        return missing(c, "keys", "vault_dir", "");
    if (cfg->keys.it_cert == NULL)
        return missing(c, "keys", "it_cert", "");
    if (cfg->members.backend == CONFIG_MEMBERS_MAILDIR && cfg->members.maildir == NULL)
        return missing(c, "members", "maildir", " (backend = maildir)");
    if (cfg->members.backend == CONFIG_MEMBERS_EXEC && cfg->members.command == NULL)
        return missing(c, "members", "command", " (backend = exec)");

    if (cfg->state.dir == NULL && (cfg->state.dir = strdup(DEFAULT_STATE_DIR)) == NULL)
        goto nomem;
    if (cfg->members.database == NULL &&
        (cfg->members.database = join(cfg->state.dir, "members.sqlite")) == NULL)
        goto nomem;
    if (cfg->keys.reid_cert == NULL && (cfg->keys.reid_cert = strdup(cfg->keys.it_cert)) == NULL)
        goto nomem;
    if (cfg->keys.pseudonym_key_file == NULL &&
        (cfg->keys.pseudonym_key_file = join(cfg->state.dir, "pseudonym.key")) == NULL)
        goto nomem;
    if (cfg->keys.manifest_key_file == NULL &&
        (cfg->keys.manifest_key_file = join(cfg->state.dir, "manifest.key")) == NULL)
        goto nomem;
    if (cfg->keys.signing_key_file == NULL &&
        (cfg->keys.signing_key_file = join(cfg->state.dir, "signing-key.pem")) == NULL)
        goto nomem;
    if (cfg->keys.host_keyring == NULL &&
        (cfg->keys.host_keyring = join(cfg->state.dir, "host-keys.pem")) == NULL)
        goto nomem;
    if (cfg->retention.timezone == NULL &&
        (cfg->retention.timezone = strdup(MRTIME_DEFAULT_ZONE)) == NULL)
        goto nomem;
    if (cfg->state.erasure_ledger == NULL &&
        (cfg->state.erasure_ledger = join(cfg->state.dir, "erasure.ledger")) == NULL)
        goto nomem;
    if (cfg->audit.log == NULL && (cfg->audit.log = join(cfg->state.dir, "audit.log")) == NULL)
        goto nomem;
    if (!key_set(c, "pseudonymisation", "own_addresses") &&
        list_copy(&cfg->pseudonymisation.own_addresses, &cfg->members.own_addresses) != 0)
        goto nomem;
    if (!key_set(c, "pseudonymisation", "own_domains") &&
        list_copy(&cfg->pseudonymisation.own_domains, &cfg->members.own_domains) != 0)
        goto nomem;
    return 0;
nomem:
    return ctx_error(c, c->line, MR_E_NOMEM, "out of memory");
}

static void apply_defaults(struct mr_config *cfg)
{
    imap_defaults(&cfg->imap);
    cfg->members.backend = CONFIG_MEMBERS_SQLITE;
    cfg->unrouted.warn_count = 100;
    cfg->unrouted.warn_days = 7;
    cfg->archive.volume_size = 8 * MIB;
    cfg->archive.compression_level = 6;
    cfg->archive.workers = 0;
    cfg->archive.store = CONFIG_STORE_LOCAL;
    cfg->archive.store_path_style = true;
    cfg->archive.store_multipart_threshold = 64 * MIB;
    cfg->archive.store_part_size = 16 * MIB;
    cfg->archive.store_timeout = 900;
    cfg->archive.object_lock_mode = CONFIG_LOCK_COMPLIANCE;
    cfg->retention.years = 5;
    cfg->retention.expiring_warn_days = 30;
    cfg->retention.held_back_days = 30;
    cfg->pseudonymisation.emails = true;
    cfg->pseudonymisation.cpr = true;
    cfg->pseudonymisation.phones = true;
    cfg->pseudonymisation.names = true;
    cfg->pseudonymisation.ips = true;
    cfg->log.level = LOG_LEVEL_INFO;
}

int config_load(const char *path, struct mr_config **out, mr_error *err)
{
    struct parse_ctx c;
    struct mr_config *cfg;
    char *abs = NULL, *slash;
    int rc;

    if (out == NULL || path == NULL || *path == '\0')
        return mr_error_set(err, MR_E_INVALID, "config_load: no path");
    *out = NULL;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.err = err;
    c.f = fopen(path, "r");
    if (c.f == NULL)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_CONFIG, errno,
                              "cannot open configuration file %s", path);
    {
        struct stat st;
        if (fstat(fileno(c.f), &st) != 0 || !S_ISREG(st.st_mode)) {
            fclose(c.f);
            return mr_error_set(err, MR_E_CONFIG, "configuration file %s is not a regular file",
                                path);
        }
    }
    abs = realpath(path, NULL);
    cfg = calloc(1, sizeof *cfg);
    if (abs == NULL || cfg == NULL) {
        int e = errno;
        fclose(c.f);
        free(abs);
        free(cfg);
        return mr_error_errno(err, MR_E_CONFIG, e, "cannot resolve %s", path);
    }
    cfg->path = abs;
    c.base_dir = strdup(abs);
    if (c.base_dir == NULL) {
        fclose(c.f);
        config_free(cfg);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    slash = strrchr(c.base_dir, '/');
    if (slash == c.base_dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    c.cfg = cfg;
    apply_defaults(cfg);

    rc = ini_parse_stream(config_reader, &c, config_handler, &c);
    if (ferror(c.f) && c.err_line == 0)
        ctx_error(&c, c.line, MR_E_CONFIG, "read error");
    fclose(c.f);
    if (rc > 0 && (c.err_line == 0 || rc < c.err_line)) {
        /* inih's own complaint on an earlier line: a syntax error. */
        c.err_line = 0;
        ctx_error(&c, rc, MR_E_CONFIG,
                  "syntax error (expected 'key = value', '[section]' or a comment)");
    } else if (rc < 0 && c.err_line == 0) {
        ctx_error(&c, 0, MR_E_NOMEM, "out of memory while parsing");
    }
    if (c.err_line == 0)
        finish(&c);
    free(c.base_dir);
    if (c.err_line != 0) {
        config_free(cfg);
        return err != NULL ? err->code : MR_E_CONFIG;
    }
    cfg->key_lines = malloc(sizeof c.key_line);
    if (cfg->key_lines == NULL) {
        config_free(cfg);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    memcpy(cfg->key_lines, c.key_line, sizeof c.key_line);
    if (cfg->accounts[0].borrowed)
        cfg->accounts[0].key_lines = cfg->key_lines;
    *out = cfg;
    return 0;
}

int config_account_key_line(const struct config_account *a, const char *key)
{
    int i = key_index(strcmp(key, "mailbox") == 0 ? "mailboxes" : "imap", key);

    return a != NULL && a->key_lines != NULL && i >= 0 ? a->key_lines[i] : 0;
}

int config_key_line(const struct mr_config *cfg, const char *section, const char *key)
{
    int i = key_index(section, key);

    return cfg != NULL && cfg->key_lines != NULL && i >= 0 ? cfg->key_lines[i] : 0;
}

static bool key_is_secret(const struct key_def *k)
{
    size_t n = strlen(k->name);

    if (k->type != KT_STR)
        return false;
    if ((n > 5 && strcmp(k->name + n - 5, "_file") == 0)
        || (n > 4 && strcmp(k->name + n - 4, "_env") == 0))
        return false;   /* where the secret is, not the secret */
    return strstr(k->name, "password") != NULL || strstr(k->name, "secret") != NULL
           || strstr(k->name, "token") != NULL;
}

static void show_size(FILE *out, uint64_t v)
{
    static const char units[] = "GMK";
    for (int i = 0; i < 3; i++) {
        uint64_t m = 1ULL << (10 * (3 - i));
        if (v >= m && v % m == 0) {
            fprintf(out, "%llu%c", (unsigned long long)(v / m), units[i]);
            return;
        }
    }
    fprintf(out, "%llu", (unsigned long long)v);
}

static void show_list(FILE *out, const struct config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        fprintf(out, "%s%s", i ? ", " : "", l->items[i]);
}

/* One key with its effective value (set: given in the file, else "# default"). */
static void show_key(FILE *out, const struct key_def *k, const void *field, bool set)
{
    static const char *const levels[] = { "error", "warn", "info", "debug" };

    if (k->type == KT_REPEAT) {
        const struct config_list *l = field;
        for (size_t j = 0; j < l->n; j++)
            fprintf(out, "%s = %s\n", k->name, l->items[j]);
        return;
    }
    if ((k->type == KT_STR || k->type == KT_PATH || k->type == KT_REGEX
         || k->type == KT_ZONE) && *(char *const *)field == NULL) {
        if (k->off == offsetof(struct mr_config, log.file))
            fprintf(out, "# default\n%s = -\n", k->name);
        else
            fprintf(out, "# %s is not set%s\n", k->name,
                    k->type == KT_REGEX ? " (built-in default)" : "");
        return;
    }
    if ((k->type == KT_ADDRLIST || k->type == KT_DOMLIST || k->type == KT_TYPELIST) &&
        ((const struct config_list *)field)->n == 0) {
        fprintf(out, "# %s is empty\n", k->name);
        return;
    }
    if (k->type == KT_COMMAND && *(char **const *)field == NULL) {
        fprintf(out, "# %s is not set\n", k->name);
        return;
    }
    if (!set)
        fprintf(out, "# default\n");
    fprintf(out, "%s = ", k->name);
    switch (k->type) {
    case KT_STR: case KT_PATH: case KT_REGEX: case KT_ZONE:
        fputs(key_is_secret(k) ? "(redacted)" : *(char *const *)field, out);
        break;
    case KT_UINT: fprintf(out, "%u", *(const unsigned *)field); break;
    case KT_INT: fprintf(out, "%d", *(const int *)field); break;
    case KT_SIZE: show_size(out, *(const uint64_t *)field); break;
    case KT_BOOL: fputs(*(const bool *)field ? "yes" : "no", out); break;
    case KT_INSECURE:
        fputs(*(const bool *)field ? INSECURE_SPELLING : "no", out);
        break;
    case KT_TLS:
        fputs(*(const enum config_tls *)field == CONFIG_TLS_STARTTLS ? "starttls"
                                                                     : "imaps", out);
        break;
    case KT_STORE:
        fputs(*(const enum config_store *)field == CONFIG_STORE_S3 ? "s3" : "local", out);
        break;
    case KT_LOCKMODE:
        fputs(*(const enum config_lock_mode *)field == CONFIG_LOCK_GOVERNANCE ? "governance"
                                                                              : "compliance",
              out);
        break;
    case KT_BACKEND: {
        enum config_members_backend b = *(const enum config_members_backend *)field;
        fputs(b == CONFIG_MEMBERS_EXEC ? "exec"
              : b == CONFIG_MEMBERS_MAILDIR ? "maildir" : "sqlite", out);
        break;
    }
    case KT_LEVEL: {
        unsigned lv = (unsigned)*(const enum log_level *)field;
        fputs(lv < 4 ? levels[lv] : "info", out);
        break;
    }
    case KT_ADDRLIST: case KT_DOMLIST: case KT_TYPELIST: show_list(out, field); break;
    case KT_AUTH: {
        static const char *const auths[] = { "login", "plain", "xoauth2",
                                             "oauthbearer" };
        unsigned a = (unsigned)*(const enum config_auth *)field;
        fputs(a < 4 ? auths[a] : "login", out);
        break;
    }
    case KT_COMMAND: {
        /* The program, not its arguments: an operator may have put a secret there. */
        char *const *argv = *(char **const *)field;
        fprintf(out, "%s%s", argv[0], argv[1] != NULL ? " (arguments not shown)" : "");
        break;
    }
    case KT_REPEAT: break;
    }
    fputc('\n', out);
}

int config_show(const struct mr_config *cfg, FILE *out, mr_error *err)
{
    bool accounts = cfg != NULL && !(cfg->n_accounts == 1 && cfg->accounts[0].borrowed);

    if (cfg == NULL || out == NULL)
        return mr_error_set(err, MR_E_INVALID, "config_show: bad arguments");
    fprintf(out, "# effective configuration of %s\n", cfg->path);
    for (size_t s = 0; s < N_SECTIONS; s++) {
        bool acct_section = strcmp(SECTIONS[s], "imap") == 0
                            || strcmp(SECTIONS[s], "mailboxes") == 0;
        if (accounts && acct_section) {
            if (strcmp(SECTIONS[s], "imap") != 0)
                continue;
            /* [account NAME] sections stand where [imap] would. */
            for (size_t a = 0; a < cfg->n_accounts; a++) {
                const struct config_account *ac = &cfg->accounts[a];
                fprintf(out, "\n[account %s]\n", ac->name);
                for (size_t i = 0; i < N_KEYS; i++)
                    if (account_key(&KEYS[i]))
                        show_key(out, &KEYS[i], account_field((struct config_account *)ac,
                                                              &KEYS[i]),
                                 ac->key_lines != NULL && ac->key_lines[i] != 0);
            }
            continue;
        }
        fprintf(out, "\n[%s]\n", SECTIONS[s]);
        for (size_t i = 0; i < N_KEYS; i++) {
            if (strcmp(KEYS[i].section, SECTIONS[s]) != 0)
                continue;
            if (s3_only_key(&KEYS[i]) && cfg->archive.store != CONFIG_STORE_S3) {
                fprintf(out, "# %s: only with store = s3\n", KEYS[i].name);
                continue;
            }
            show_key(out, &KEYS[i], (const char *)cfg + KEYS[i].off,
                     cfg->key_lines != NULL && cfg->key_lines[i] != 0);
        }
    }
    if (fflush(out) != 0 || ferror(out))
        return mr_error_errno(err, MR_E_IO, errno, "cannot write the configuration");
    return 0;
}

static void imap_free(struct config_imap *imap)
{
    free(imap->host);
    free(imap->ca_file);
    free(imap->user);
    free(imap->password_file);
    free(imap->password_env);
    secret_command_free(imap->token_command);
}

void config_free(struct mr_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n_accounts; i++) {
        struct config_account *a = &cfg->accounts[i];
        free(a->name);
        if (a->borrowed)
            continue;
        free(a->key_lines);
        imap_free(&a->imap);
        list_free(&a->mailboxes);
    }
    free(cfg->accounts);
    free(cfg->path);
    free(cfg->key_lines);
    imap_free(&cfg->imap);
    list_free(&cfg->mailboxes);
    free(cfg->members.database);
    free(cfg->members.maildir);
    free(cfg->members.command);
    free(cfg->members.case_pattern);
    list_free(&cfg->members.own_addresses);
    list_free(&cfg->members.own_domains);
    free(cfg->archive.dir);
    free(cfg->archive.store_endpoint);
    free(cfg->archive.store_region);
    free(cfg->archive.store_bucket);
    free(cfg->archive.store_prefix);
    free(cfg->archive.store_ca_file);
    free(cfg->archive.store_credentials_file);
    free(cfg->keys.vault_dir);
    free(cfg->keys.it_cert);
    free(cfg->keys.reid_cert);
    free(cfg->keys.pseudonym_key_file);
    free(cfg->keys.manifest_key_file);
    free(cfg->keys.signing_key_file);
    free(cfg->keys.host_keyring);
    free(cfg->retention.timezone);
    list_free(&cfg->pseudonymisation.own_addresses);
    list_free(&cfg->pseudonymisation.own_domains);
    list_free(&cfg->pseudonymisation.keep_types);
    list_free(&cfg->pseudonymisation.seal_types);
    free(cfg->state.dir);
    free(cfg->log.file);
    free(cfg->state.erasure_ledger);
    free(cfg->audit.log);
    free(cfg);
}


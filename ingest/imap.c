/*
 * imap.c — see imap.h.  libetpan's mailimap does the protocol (commands and parser); the
 * transport is ours (imap_stream.c).  Things this file guards against, each a trap of
 * Debian's libetpan 1.9.4:
 *  - TLS: verified by imap_stream_start_tls before LOGIN, also after STARTTLS; STARTTLS
 *    is required when asked for and never skipped; bytes the server sent before the TLS
 *    handshake are refused (STARTTLS command injection).
 *  - FETCH memory: without a body handler libetpan keeps every literal of a UID FETCH
 *    response in memory; with mailimap_set_msg_body_handler it hands the body over in
 *    chunks — but only on the parse path that is taken when a progress callback is set.
 *    We keep one message (capped at max_literal) and pass it on from the msg_att handler.
 *  - EOF mid-literal: the stream returns -1 (never 0), so the parser fails instead of
 *    looping; we report the stream's recorded cause.
 */
#include "ingest/imap.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libetpan/libetpan.h>
#include <openssl/crypto.h>

#include "common/secret.h"
#include "ingest/imap_sasl.h"
#include "ingest/imap_stream.h"
#include "ingest/mutf7.h"

#define IMAP_DEFAULT_MAX_LITERAL ((size_t)256 * 1024 * 1024)
#define IMAP_SET_CHUNK 500      /* UID ranges per command: keeps lines far below 64 KiB */

struct imap_conn {
    mailimap *imap;
    imap_stream *st;        /* owned by imap's mailstream */
    char *host;             /* for error messages: a server name is not personal data */
    size_t max_literal;
    char **caps;            /* upper-cased capability names after login */
    size_t n_caps;
    bool broken;            /* the protocol state is unknown: only imap_close is safe */
    bool plaintext_auth_ok; /* imap_connect_fd for tests: credentials without TLS */
    long long throttle_left_ms;  /* server-requested backoff still allowed */
    char sep;               /* hierarchy separator, 0 = not asked yet */
    mr_log *log;
};

/* ---------------------------------------------------------------- errors */

/* A copy of the server's response text that is safe for an error message: one line,
 * printable, short, and scrubbed of anything shaped like a personal identifier. */
static void server_text(const imap_conn *c, char *buf, size_t size)
{
    const char *t = c->imap != NULL ? c->imap->imap_response : NULL;
    size_t i = 0;

    if (t == NULL)
        t = "";
    for (; *t != '\0' && i + 1 < size && i < 160; t++)
        buf[i++] = isprint((unsigned char)*t) ? *t : ' ';
    buf[i] = '\0';
    log_scrub(buf);
}

/* Map a libetpan result to an mr_error.  `what` names the command ("UID FETCH"). */
static int imap_fail(imap_conn *c, int r, const char *what, mr_error *err)
{
    char text[200];

    if (imap_stream_failed(c->st) || r == MAILIMAP_ERROR_STREAM) {
        int code = imap_stream_error(c->st, err);
        c->broken = true;
        mr_error_prefix(err, "IMAP %s on %s", what, c->host);
        return code;
    }
    switch (r) {
    case MAILIMAP_ERROR_MEMORY:
        c->broken = true;
        return mr_error_set(err, MR_E_NOMEM, "IMAP %s: out of memory", what);
    case MAILIMAP_ERROR_PARSE:
        c->broken = true;
        return mr_error_set(err, MR_E_PROTOCOL, "IMAP %s: unparseable response from %s", what,
                            c->host);
    case MAILIMAP_ERROR_FATAL:
        c->broken = true;
        server_text(c, text, sizeof text);
        return mr_error_set(err, MR_E_NETWORK, "IMAP %s: %s closed the session (BYE) %s",
                            what, c->host, text);
    case MAILIMAP_ERROR_BAD_STATE:
        return mr_error_set(err, MR_E_STATE, "IMAP %s: not allowed in the current state",
                            what);
    default:
        /* NO or BAD: the command was refused, the session is still usable. */
        server_text(c, text, sizeof text);
        return mr_error_set(err, MR_E_PROTOCOL, "IMAP %s refused by %s: %s", what, c->host,
                            text[0] != '\0' ? text : "no reason given");
    }
}

static int check_usable(imap_conn *c, mr_error *err)
{
    if (c == NULL)
        return mr_error_set(err, MR_E_INVALID, "no IMAP connection");
    if (c->broken)
        return mr_error_set(err, MR_E_STATE, "the IMAP connection to %s failed earlier; "
                            "reconnect", c->host);
    return 0;
}

/* ---------------------------------------------------------------- throttling */

#define THROTTLE_MAX_ONE_MS 60000   /* no single wait longer than this */
#define THROTTLE_DEFAULT_MS 1000    /* throttled without a usable suggestion */

/* Exchange Online answers a client it throttles with "NO ... Request is throttled.
 * Suggested Backoff Time: N milliseconds" and executes nothing.  If the last command was
 * refused that way (a NO, not BAD or a broken stream) and the connection's budget allows,
 * sleep as suggested (bounded) and return true: the caller sends the command again. */
static bool throttle_wait(imap_conn *c, int r, const char *what)
{
    const char *t = c->imap != NULL ? c->imap->imap_response : NULL, *p;
    long long ms = THROTTLE_DEFAULT_MS;
    struct timespec ts;

    if (c->broken || t == NULL || r == MAILIMAP_NO_ERROR || r == MAILIMAP_ERROR_STREAM ||
        r == MAILIMAP_ERROR_PARSE || r == MAILIMAP_ERROR_FATAL || r == MAILIMAP_ERROR_MEMORY ||
        r == MAILIMAP_ERROR_PROTOCOL || r == MAILIMAP_ERROR_BAD_STATE ||
        imap_stream_failed(c->st) || strcasestr(t, "Request is throttled") == NULL)
        return false;
    p = strcasestr(t, "Backoff Time:");
    if (p != NULL) {
        char *end;
        long long v;
        p += strlen("Backoff Time:");
        while (*p == ' ')
            p++;
        v = strtoll(p, &end, 10);
        if (end != p && v >= 0)
            ms = v;
    }
    if (ms > THROTTLE_MAX_ONE_MS)
        ms = THROTTLE_MAX_ONE_MS;
    if (ms > c->throttle_left_ms)
        return false;
    c->throttle_left_ms -= ms;
    log_info(c->log, "IMAP %s: %s throttles this client; waiting %lld ms as it suggests, "
             "then sending the command again", what, c->host, ms);
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0)
        ;
    return true;
}

/* ---------------------------------------------------------------- capabilities */

static void caps_free(imap_conn *c)
{
    for (size_t i = 0; i < c->n_caps; i++)
        free(c->caps[i]);
    free(c->caps);
    c->caps = NULL;
    c->n_caps = 0;
}

/* A command without arguments ("CAPABILITY"), sent exactly as "tag SP name CRLF", its
 * untagged data left to libetpan's parser.  Not mailimap_custom_command(): it writes a
 * blank before the CRLF, which the grammar does not allow and strict servers (Cyrus)
 * answer with BAD. */
static int simple_command(imap_conn *c, const char *name, const char *what, mr_error *err)
{
    struct mailimap_response *resp = NULL;
    mailstream *s = c->imap->imap_stream;
    int r, state;

    r = mailimap_send_current_tag(c->imap);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(c, r, what, err);
    if (mailstream_write(s, name, strlen(name)) < 0 || mailstream_write(s, "\r\n", 2) < 0 ||
        mailstream_flush(s) == -1)
        return imap_fail(c, MAILIMAP_ERROR_STREAM, what, err);
    if (mailimap_read_line(c->imap) == NULL)
        return imap_fail(c, MAILIMAP_ERROR_STREAM, what, err);
    r = mailimap_parse_response(c->imap, &resp);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(c, r, what, err);
    state = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
    mailimap_response_free(resp);
    if (state != MAILIMAP_RESP_COND_STATE_OK)
        return imap_fail(c, MAILIMAP_ERROR_CUSTOM_COMMAND, what, err);
    return 0;
}

static int caps_load(imap_conn *c, mr_error *err)
{
    struct mailimap_connection_info *info = c->imap->imap_connection_info;
    struct mailimap_capability_data *cd;
    clistiter *it;
    int r;

    /* Not mailimap_capability(): libetpan 1.9.4 dereferences the stored capability list
     * without checking it, so a server that answers OK without an untagged CAPABILITY
     * line crashes it (found by fuzz_ingest_imap).  We send the command ourselves and
     * read what the parser stored, after forgetting any list from before login. */
    if (info != NULL && info->imap_capability != NULL) {
        mailimap_capability_data_free(info->imap_capability);
        info->imap_capability = NULL;
    }
    r = simple_command(c, "CAPABILITY", "CAPABILITY", err);
    if (r != 0)
        return r;
    info = c->imap->imap_connection_info;
    if (info == NULL || info->imap_capability == NULL || info->imap_capability->cap_list == NULL)
        return mr_error_set(err, MR_E_PROTOCOL,
                            "the server answered CAPABILITY without listing capabilities");
    cd = info->imap_capability;     /* libetpan's; we copy the names out */
    caps_free(c);
    c->caps = calloc((size_t)clist_count(cd->cap_list) + 1, sizeof *c->caps);
    if (c->caps == NULL) {
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    for (it = clist_begin(cd->cap_list); it != NULL; it = clist_next(it)) {
        struct mailimap_capability *cap = clist_content(it);
        const char *name = NULL;
        char *copy;
        size_t n;

        if (cap->cap_type == MAILIMAP_CAPABILITY_NAME)
            name = cap->cap_data.cap_name;
        else if (cap->cap_type == MAILIMAP_CAPABILITY_AUTH_TYPE)
            name = cap->cap_data.cap_auth_type;
        if (name == NULL)
            continue;
        n = strlen(name) + 6;
        copy = malloc(n);
        if (copy == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        snprintf(copy, n, "%s%s", cap->cap_type == MAILIMAP_CAPABILITY_AUTH_TYPE ? "AUTH=" : "",
                 name);
        c->caps[c->n_caps++] = copy;
    }
    return 0;
}

bool imap_usable(const imap_conn *conn)
{
    return conn != NULL && !conn->broken;
}

bool imap_has_capability(imap_conn *conn, const char *name)
{
    if (conn == NULL || name == NULL)
        return false;
    for (size_t i = 0; i < conn->n_caps; i++)
        if (strcasecmp(conn->caps[i], name) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- connect */

static int do_starttls(imap_conn *c, const struct imap_options *opt, mr_error *err)
{
    int r, rc;

    /* Refuse rather than fall back: a server (or an attacker in the path stripping the
     * capability) that does not offer STARTTLS would otherwise get the password. */
    rc = caps_load(c, err);
    if (rc != 0)
        return rc;
    if (!imap_has_capability(c, "STARTTLS"))
        return mr_error_set(err, MR_E_TLS, "IMAP server %s does not offer STARTTLS; refusing "
                            "to log in without TLS", c->host);
    r = mailimap_starttls(c->imap);
    /* Anything already buffered was sent in the clear before the handshake and could
     * have been injected by a man in the middle: never parse it as protected data.
     * (Debian's libetpan has the CVE-2020-15953 fix and then fails STARTTLS itself;
     * we check regardless, and say what happened.) */
    if (c->imap->imap_stream != NULL && c->imap->imap_stream->read_buffer_len != 0) {
        c->broken = true;
        return mr_error_set(err, MR_E_TLS, "IMAP server %s sent data after STARTTLS before "
                            "the TLS handshake; refusing", c->host);
    }
    if (r != MAILIMAP_NO_ERROR) {
        /* Whatever went wrong, TLS was not established: report it as a TLS failure. */
        imap_fail(c, r, "STARTTLS", err);
        c->broken = true;
        if (err != NULL)
            err->code = MR_E_TLS;
        return MR_E_TLS;
    }
    rc = imap_stream_start_tls(c->st, opt->host, opt->ca_file, opt->insecure_skip_verify, err);
    if (rc != 0) {
        c->broken = true;
        return rc;
    }
    caps_free(c);   /* pre-TLS capabilities are not to be trusted */
    return 0;
}

/* What both ways in check: a host to name in messages, a user and a password. */
static int options_check(const struct imap_options *opt, imap_conn **out, mr_error *err)
{
    if (out == NULL || opt == NULL)
        return mr_error_set(err, MR_E_INVALID, "imap_connect: missing argument");
    *out = NULL;
    if (opt->host == NULL || *opt->host == '\0')
        return mr_error_set(err, MR_E_CONFIG, "no IMAP server host configured");
    if (opt->user == NULL || *opt->user == '\0' ||
        (opt->password == NULL && opt->secret_fn == NULL))
        return mr_error_set(err, MR_E_CONFIG, "no IMAP user or password configured");
    if (imap_sasl_name(opt->auth) == NULL && opt->auth != IMAP_AUTH_LOGIN)
        return mr_error_set(err, MR_E_CONFIG, "unknown IMAP authentication method");
    return 0;
}

/* The credential for this connection: asked for anew each time (a token command prints
 * a fresh access token), or a copy of the fixed password.  Release with secret_free. */
static int secret_obtain(const struct imap_options *opt, char **secret, mr_error *err)
{
    int rc;

    *secret = NULL;
    if (opt->secret_fn == NULL) {
        *secret = strdup(opt->password);
        return *secret != NULL ? 0 : mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    rc = opt->secret_fn(opt->secret_ctx, secret, err);
    if (rc == 0 && (*secret == NULL || **secret == '\0')) {
        secret_free(*secret);
        *secret = NULL;
        rc = mr_error_set(err, MR_E_AUTH, "no IMAP credential obtained");
    }
    return rc;
}

static int conn_new(const struct imap_options *opt, imap_conn **out, mr_error *err)
{
    imap_conn *c = calloc(1, sizeof *c);

    if (c == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    c->host = strdup(opt->host);
    c->max_literal = opt->max_literal != 0 ? opt->max_literal : IMAP_DEFAULT_MAX_LITERAL;
    c->log = opt->log;
    c->throttle_left_ms = opt->throttle_max_wait_s > 0 ? opt->throttle_max_wait_s * 1000LL : 0;
    c->imap = mailimap_new(0, NULL);
    *out = c;
    if (c->host == NULL || c->imap == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    return 0;
}

/* ---------------------------------------------------------------- login */

/* Bytes of a command (or of a SASL response) as they are, through the session's stream. */
static int send_raw(imap_conn *c, const char *bytes, size_t n)
{
    if (n > 0 && mailstream_write(c->imap->imap_stream, bytes, n) != (ssize_t)n)
        return MAILIMAP_ERROR_STREAM;
    return MAILIMAP_NO_ERROR;
}

static int send_flush(imap_conn *c)
{
    return mailstream_flush(c->imap->imap_stream) == -1 ? MAILIMAP_ERROR_STREAM
                                                        : MAILIMAP_NO_ERROR;
}

static void wipe_free(char *p)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, strlen(p));
        free(p);
    }
}

/* "TAG AUTHENTICATE MECH [initial-response]" and the exchange that follows, written by
 * hand: libetpan's SASL path needs Cyrus SASL plugins, and its XOAUTH2 answers an error
 * challenge with a bare CRLF whatever the mechanism.  The lines are exactly RFC 3501 /
 * 4959 / 7628: no blank at the end, base64 without line breaks. */
static int sasl_authenticate(imap_conn *c, const struct imap_options *opt, const char *secret,
                             mr_error *err)
{
    const char *mech = imap_sasl_name(opt->auth);
    struct mailimap_response *resp = NULL;
    char capname[32], cause[48] = "", text[200];
    char *ir = NULL;
    bool challenged = false;
    int r, rc, rounds = 0, state;

    if (c->n_caps == 0 && (rc = caps_load(c, err)) != 0)
        return rc;
    snprintf(capname, sizeof capname, "AUTH=%s", mech);
    if (!imap_has_capability(c, capname))
        return mr_error_set(err, MR_E_UNSUPPORTED, "IMAP server %s does not offer %s; "
                            "choose another auth method", c->host, capname);
    rc = imap_sasl_initial(opt->auth, opt->user, secret, &ir, err);
    if (rc != 0)
        return mr_error_prefix(err, "IMAP %s", mech);

    r = mailimap_send_current_tag(c->imap);
    if (r == MAILIMAP_NO_ERROR)
        r = send_raw(c, "AUTHENTICATE ", 13);
    if (r == MAILIMAP_NO_ERROR)
        r = send_raw(c, mech, strlen(mech));
    if (r == MAILIMAP_NO_ERROR && imap_has_capability(c, "SASL-IR")) {
        /* RFC 4959: the response rides on the command line. */
        r = send_raw(c, " ", 1);
        if (r == MAILIMAP_NO_ERROR)
            r = send_raw(c, ir, strlen(ir));
        wipe_free(ir);
        ir = NULL;
    }
    if (r == MAILIMAP_NO_ERROR)
        r = send_raw(c, "\r\n", 2);
    if (r == MAILIMAP_NO_ERROR)
        r = send_flush(c);
    while (r == MAILIMAP_NO_ERROR) {
        const char *line;
        size_t len;

        if (mailimap_read_line(c->imap) == NULL) {
            r = MAILIMAP_ERROR_STREAM;
            break;
        }
        line = c->imap->imap_stream_buffer->str;
        len = c->imap->imap_stream_buffer->len;
        if (len >= 3 && line[len - 3] == '}') {
            /* A literal in the middle of a login: not something we can skip safely. */
            r = MAILIMAP_ERROR_PARSE;
            break;
        }
        if (line[0] == '*')
            continue;   /* untagged data; the capabilities are read again after login */
        if (line[0] != '+')
            break;      /* the tagged completion */
        if (++rounds > 2) {
            r = MAILIMAP_ERROR_PARSE;
            break;
        }
        if (ir != NULL) {
            /* No SASL-IR: the server's empty challenge asks for the initial response. */
            r = send_raw(c, ir, strlen(ir));
            wipe_free(ir);
            ir = NULL;
        } else if (opt->auth == IMAP_AUTH_PLAIN) {
            r = send_raw(c, "*", 1);     /* PLAIN has no second round: cancel */
        } else {
            /* RFC 7628 3.2.2: a failed OAuth login is a challenge carrying the error; the
             * client ends it with a dummy response (%x01 for OAUTHBEARER, an empty one
             * for XOAUTH2) and the server then answers NO. */
            char b64[8200];
            size_t n = 0;
            const char *p = line + 1;

            if (*p == ' ')
                p++;
            while (p[n] != '\0' && p[n] != '\r' && p[n] != '\n' && n + 1 < sizeof b64) {
                b64[n] = p[n];
                n++;
            }
            b64[n] = '\0';
            imap_sasl_error_status(b64, cause, sizeof cause);
            challenged = true;
            if (opt->auth == IMAP_AUTH_OAUTHBEARER)
                r = send_raw(c, "AQ==", 4);
        }
        if (r == MAILIMAP_NO_ERROR)
            r = send_raw(c, "\r\n", 2);
        if (r == MAILIMAP_NO_ERROR)
            r = send_flush(c);
    }
    wipe_free(ir);
    if (r == MAILIMAP_NO_ERROR)
        r = mailimap_parse_response(c->imap, &resp);
    if (r != MAILIMAP_NO_ERROR) {
        rc = imap_fail(c, r, "AUTHENTICATE", err);
        c->broken = true;
        return rc;
    }
    state = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
    mailimap_response_free(resp);
    if (state == MAILIMAP_RESP_COND_STATE_OK && !challenged) {
        c->imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
        return 0;
    }
    /* A server that says OK after reporting an error is not logged in as far as we know. */
    c->broken = true;
    server_text(c, text, sizeof text);
    if (opt->auth == IMAP_AUTH_PLAIN)
        return mr_error_set(err, MR_E_AUTH, "IMAP server %s: PLAIN login failed for the "
                            "configured user (wrong user name or password): %s", c->host,
                            text[0] != '\0' ? text : "no reason given");
    return mr_error_set(err, MR_E_AUTH, "IMAP server %s: %s login failed for the configured "
                        "user: token rejected%s%s (%s)", c->host, mech,
                        cause[0] != '\0' ? ": " : "", cause,
                        text[0] != '\0' ? text : "no reason given");
}

/* libetpan sends LOGIN's arguments as atoms or quoted strings, and a quoted string may
 * hold only 7-bit characters other than CR and LF: anything else goes as literals. */
static bool login_quotable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80 || *s == '\r' || *s == '\n')
            return false;
    return true;
}

/* LOGIN with both arguments as non-synchronizing literals (RFC 7888), for a user name or
 * password that a quoted string cannot carry (8-bit, CR, LF).  Needs LITERAL+ (or
 * LITERAL- for short ones): without it, refuse rather than send what the grammar does not
 * allow.  Returns a libetpan code, or a negative MR_E_* code with err set. */
static int login_literal(imap_conn *c, const char *user, const char *password,
                         mr_error *err)
{
    struct mailimap_response *resp = NULL;
    mailstream *s = c->imap->imap_stream;
    size_t ul = strlen(user), pl = strlen(password);
    char head[64];
    int r, rc, state;

    rc = caps_load(c, err);
    if (rc != 0)
        return rc;
    if (!imap_has_capability(c, "LITERAL+") &&
        !(imap_has_capability(c, "LITERAL-") && ul <= 4096 && pl <= 4096))
        return mr_error_set(err, MR_E_CONFIG, "the IMAP user name or password contains "
                            "non-ASCII characters or a line break, which LOGIN can carry "
                            "only as a literal, and %s does not offer LITERAL+", c->host);
    r = mailimap_send_current_tag(c->imap);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(c, r, "LOGIN", err);
    snprintf(head, sizeof head, "LOGIN {%zu+}\r\n", ul);
    if (mailstream_write(s, head, strlen(head)) < 0 || mailstream_write(s, user, ul) < 0)
        return imap_fail(c, MAILIMAP_ERROR_STREAM, "LOGIN", err);
    snprintf(head, sizeof head, " {%zu+}\r\n", pl);
    if (mailstream_write(s, head, strlen(head)) < 0 || mailstream_write(s, password, pl) < 0 ||
        mailstream_write(s, "\r\n", 2) < 0 || mailstream_flush(s) == -1)
        return imap_fail(c, MAILIMAP_ERROR_STREAM, "LOGIN", err);
    if (mailimap_read_line(c->imap) == NULL)
        return imap_fail(c, MAILIMAP_ERROR_STREAM, "LOGIN", err);
    r = mailimap_parse_response(c->imap, &resp);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(c, r, "LOGIN", err);
    state = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
    mailimap_response_free(resp);
    if (state != MAILIMAP_RESP_COND_STATE_OK)
        return MAILIMAP_ERROR_LOGIN;
    c->imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;   /* as mailimap_login does */
    return MAILIMAP_NO_ERROR;
}

/* Log in with the configured method; never without TLS (unless a test's own transport
 * allows it), checked before a byte of it is sent. */
static int authenticate(imap_conn *c, const struct imap_options *opt, const char *secret,
                        mr_error *err)
{
    char *b64 = NULL;
    int r, rc = 0;

    if (!imap_stream_is_tls(c->st) && !c->plaintext_auth_ok)
        return mr_error_set(err, MR_E_TLS, "refusing to send credentials to IMAP server %s "
                            "without TLS", c->host);
    if (opt->auth != IMAP_AUTH_LOGIN) {
        rc = sasl_authenticate(c, opt, secret, err);
    } else {
        if (!login_quotable(opt->user) || !login_quotable(secret))
            r = login_literal(c, opt->user, secret, err);
        else
            r = mailimap_login(c->imap, opt->user, secret);
        if (r < 0)
            rc = r;   /* login_literal's own error */
        else if (r == MAILIMAP_ERROR_LOGIN)
            /* No user name here: a shared mailbox's login is often an address. */
            rc = mr_error_set(err, MR_E_AUTH, "IMAP server %s: login failed for the "
                              "configured user (wrong user name or password)", c->host);
        else if (r != MAILIMAP_NO_ERROR)
            rc = imap_fail(c, r, "LOGIN", err);
    }
    if (rc == 0 || err == NULL)
        return rc;
    /* The server's text goes into the message: never if it repeats the credential, as
     * given or as the base64 it was sent in. */
    if (opt->auth != IMAP_AUTH_LOGIN &&
        imap_sasl_initial(opt->auth, opt->user, secret, &b64, NULL) != 0)
        b64 = NULL;
    if (imap_sasl_mentions(err->msg, secret) || imap_sasl_mentions(err->msg, b64))
        mr_error_set(err, rc, "IMAP server %s: login failed for the configured user (the "
                     "server's reason is withheld: it repeated the credential)", c->host);
    wipe_free(b64);
    return rc;
}

/* Greeting, STARTTLS when asked for, login unless pre-authenticated, capabilities: the
 * session on a stream that is connected (and for IMAPS already encrypted).  c->imap owns
 * the stream from the greeting on. */
static int session_start(imap_conn *c, mailstream *s, const struct imap_options *opt,
                         bool starttls, const char *secret, mr_error *err)
{
    int rc, r = mailimap_connect(c->imap, s);

    if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED)
        return imap_fail(c, r, "greeting", err);
    if (starttls) {
        if (r == MAILIMAP_NO_ERROR_AUTHENTICATED)
            return mr_error_set(err, MR_E_TLS, "IMAP server %s pre-authenticated the plain "
                                "connection; refusing to continue without TLS", c->host);
        rc = do_starttls(c, opt, err);
        if (rc != 0)
            return rc;
    }
    if (r == MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
        rc = authenticate(c, opt, secret, err);
        if (rc != 0)
            return rc;
    }
    return caps_load(c, err);
}

/* The end of both ways in: the connection on success, else it is closed (as broken: no
 * LOGOUT on a stream in an unknown state). */
static int conn_finish(imap_conn *c, int rc, imap_conn **out)
{
    if (rc == 0) {
        *out = c;
        return 0;
    }
    if (c != NULL) {
        c->broken = true;
        imap_close(c);
    }
    return rc;
}

int imap_connect(const struct imap_options *opt, imap_conn **out, mr_error *err)
{
    imap_conn *c = NULL;
    mailstream *s = NULL;
    char *secret = NULL;
    int rc, port, cto, ioto;

    rc = options_check(opt, out, err);
    if (rc != 0)
        return rc;
    if (opt->tls != IMAP_TLS_IMAPS && opt->tls != IMAP_TLS_STARTTLS)
        return mr_error_set(err, MR_E_CONFIG, "unknown IMAP TLS mode");
    port = opt->port != 0 ? opt->port : (opt->tls == IMAP_TLS_IMAPS ? 993 : 143);
    if (port < 1 || port > 65535)
        return mr_error_set(err, MR_E_CONFIG, "IMAP port %d out of range", port);
    cto = opt->connect_timeout_s > 0 ? opt->connect_timeout_s : 30;
    ioto = opt->io_timeout_s > 0 ? opt->io_timeout_s : 120;
    /* Before connecting: a token command's child then holds no socket of ours, and a
     * server does not wait for it. */
    rc = secret_obtain(opt, &secret, err);
    if (rc != 0)
        return mr_error_prefix(err, "IMAP credential");

    rc = conn_new(opt, &c, err);
    if (rc != 0)
        goto fail;
    if (opt->insecure_skip_verify)
        log_error(c->log, "IMAP: TLS certificate and host-name verification are DISABLED for "
                 "%s (insecure_skip_verify); use only in tests", c->host);

    rc = imap_stream_open(opt->host, port, cto, ioto, &s, &c->st, err);
    if (rc != 0)
        goto fail;
    if (opt->tls == IMAP_TLS_IMAPS) {
        rc = imap_stream_start_tls(c->st, opt->host, opt->ca_file, opt->insecure_skip_verify,
                                   err);
        if (rc != 0) {
            mailstream_close(s);
            c->st = NULL;
            goto fail;
        }
    }
    rc = session_start(c, s, opt, opt->tls == IMAP_TLS_STARTTLS, secret, err);
fail:
    secret_free(secret);
    return conn_finish(c, rc, out);
}

int imap_connect_fd(int fd, const struct imap_options *opt, imap_conn **out, mr_error *err)
{
    imap_conn *c = NULL;
    mailstream *s = NULL;
    char *secret = NULL;
    int rc = options_check(opt, out, err);

    if (rc == 0 && (rc = secret_obtain(opt, &secret, err)) != 0)
        mr_error_prefix(err, "IMAP credential");
    if (rc != 0) {
        close(fd);
        return rc;
    }
    rc = conn_new(opt, &c, err);
    if (rc != 0) {
        close(fd);
        goto fail;
    }
    c->plaintext_auth_ok = opt->plaintext_auth_for_tests;
    rc = imap_stream_adopt_fd(fd, opt->io_timeout_s > 0 ? opt->io_timeout_s : 120, &s, &c->st,
                              err);
    if (rc == 0)
        rc = session_start(c, s, opt, false, secret, err);
fail:
    secret_free(secret);
    return conn_finish(c, rc, out);
}

void imap_close(imap_conn *conn)
{
    if (conn == NULL)
        return;
    if (conn->imap != NULL) {
        /* mailimap_free sends LOGOUT on a live stream; on a dead one that would only wait
         * for the I/O timeout, so close the stream first. */
        if (conn->broken && conn->imap->imap_stream != NULL) {
            mailstream_close(conn->imap->imap_stream);
            conn->imap->imap_stream = NULL;
        }
        mailimap_free(conn->imap);
    }
    caps_free(conn);
    free(conn->host);
    free(conn);
}

/* ---------------------------------------------------------------- mailboxes */

/* The server's hierarchy separator, from LIST "" "" once per connection; '/' when it
 * names none (a flat server) or the answer cannot be had. */
static char hierarchy_sep(imap_conn *c)
{
    clist *list = NULL;
    int r;

    if (c->sep != '\0')
        return c->sep;
    c->sep = '/';
    r = mailimap_list(c->imap, "", "", &list);
    if (r != MAILIMAP_NO_ERROR && r != MAILIMAP_ERROR_LIST)
        c->broken = true;   /* not a refusal: the stream or the parse failed */
    if (r == MAILIMAP_NO_ERROR && list != NULL && clist_begin(list) != NULL) {
        struct mailimap_mailbox_list *mb = clist_content(clist_begin(list));
        if (mb != NULL && mb->mb_delimiter != '\0' && mb->mb_delimiter != '"' &&
            mb->mb_delimiter != '\\' && (unsigned char)mb->mb_delimiter > 0x20 &&
            (unsigned char)mb->mb_delimiter < 0x7F)
            c->sep = mb->mb_delimiter;
    }
    if (list != NULL)
        mailimap_list_result_free(list);
    return c->sep;
}

/* A configured (UTF-8) mailbox name as the server knows it: modified UTF-7, with '/' (the
 * hierarchy separator in the configuration) as the server's own separator.  Modified
 * UTF-7 never writes '/' itself (its BASE64 has ',' instead), so every '/' here is one
 * the name had.  Other characters go as written: "INBOX.Sager" on a server with '.'. */
static int wire_name(imap_conn *c, const char *mailbox, char **out, mr_error *err)
{
    int rc = mutf7_encode(mailbox, out, err);
    char sep;

    if (rc != 0) {
        mr_error_prefix(err, "mailbox %s", mailbox);
        return rc;
    }
    if (strchr(*out, '/') == NULL)
        return 0;
    sep = hierarchy_sep(c);
    if (c->broken) {
        free(*out);
        *out = NULL;
        return mr_error_set(err, MR_E_NETWORK, "IMAP LIST on %s: the connection failed",
                            c->host);
    }
    for (char *p = *out; *p != '\0'; p++)
        if (*p == '/')
            *p = sep;
    return 0;
}

static int open_mailbox(imap_conn *c, const char *mailbox, bool readonly,
                        struct imap_mailbox_info *info, mr_error *err)
{
    const char *what = readonly ? "EXAMINE" : "SELECT";
    struct mailimap_selection_info *si;
    char *wire = NULL;
    int r, rc = check_usable(c, err);

    if (rc != 0)
        return rc;
    if (mailbox == NULL || *mailbox == '\0')
        return mr_error_set(err, MR_E_INVALID, "no mailbox name");
    rc = wire_name(c, mailbox, &wire, err);
    if (rc != 0)
        return rc;
    do
        r = readonly ? mailimap_examine(c->imap, wire) : mailimap_select(c->imap, wire);
    while (throttle_wait(c, r, what));
    free(wire);
    if (r != MAILIMAP_NO_ERROR) {
        rc = imap_fail(c, r, what, err);
        if (rc == MR_E_PROTOCOL)
            mr_error_prefix(err, "mailbox %s", mailbox);
        return rc;
    }
    si = c->imap->imap_selection_info;
    if (si == NULL || si->sel_uidvalidity == 0)
        return mr_error_set(err, MR_E_PROTOCOL, "IMAP %s %s: server sent no UIDVALIDITY", what,
                            mailbox);
    if (info != NULL) {
        info->uidvalidity = si->sel_uidvalidity;
        info->uidnext = si->sel_uidnext;
        info->exists = si->sel_exists;
    }
    return 0;
}

int imap_examine(imap_conn *conn, const char *mailbox, struct imap_mailbox_info *info,
                 mr_error *err)
{
    return open_mailbox(conn, mailbox, true, info, err);
}

int imap_select(imap_conn *conn, const char *mailbox, struct imap_mailbox_info *info,
                mr_error *err)
{
    return open_mailbox(conn, mailbox, false, info, err);
}

int imap_create(imap_conn *conn, const char *mailbox, bool exist_ok, mr_error *err)
{
    clist *list = NULL;
    char *wire = NULL;
    int r, rc = check_usable(conn, err);
    bool exists;

    if (rc != 0)
        return rc;
    if (mailbox == NULL || *mailbox == '\0')
        return mr_error_set(err, MR_E_INVALID, "no mailbox name");
    rc = wire_name(conn, mailbox, &wire, err);
    if (rc != 0)
        return rc;
    r = mailimap_create(conn->imap, wire);
    if (r == MAILIMAP_NO_ERROR) {
        free(wire);
        return 0;
    }
    rc = imap_fail(conn, r, "CREATE", err);
    if (rc != MR_E_PROTOCOL || !exist_ok) {
        free(wire);
        return rc;
    }
    /* Servers word "already exists" differently; ask whether the mailbox is there. */
    r = mailimap_list(conn->imap, "", wire, &list);
    if (r != MAILIMAP_NO_ERROR) {
        free(wire);
        return imap_fail(conn, r, "LIST", err);
    }
    /* A name holding "%" or "*" is a pattern to LIST: only an exact match counts. */
    exists = false;
    for (clistiter *it = list != NULL ? clist_begin(list) : NULL; it != NULL;
         it = clist_next(it)) {
        struct mailimap_mailbox_list *mb = clist_content(it);
        if (mb != NULL && mb->mb_name != NULL && strcmp(mb->mb_name, wire) == 0)
            exists = true;
    }
    free(wire);
    if (list != NULL)
        mailimap_list_result_free(list);
    if (!exists)
        return rc;   /* err still holds the CREATE refusal */
    mr_error_clear(err);
    return 0;
}

/* ---------------------------------------------------------------- UID sets */

/* A set of UIDs [uids[*pos] ...] as compact ranges, at most IMAP_SET_CHUNK of them;
 * advances *pos.  uids must be ascending (duplicates are tolerated). */
static struct mailimap_set *set_next_chunk(const uint32_t *uids, size_t n, size_t *pos)
{
    struct mailimap_set *set = mailimap_set_new_empty();
    size_t ranges = 0;

    if (set == NULL)
        return NULL;
    while (*pos < n && ranges < IMAP_SET_CHUNK) {
        uint32_t lo = uids[*pos], hi = lo;
        (*pos)++;
        while (*pos < n && (uids[*pos] == hi || uids[*pos] == hi + 1))
            hi = uids[(*pos)++];
        if (mailimap_set_add_interval(set, lo, hi) != MAILIMAP_NO_ERROR) {
            mailimap_set_free(set);
            return NULL;
        }
        ranges++;
    }
    return set;
}

static int check_uid_list(const uint32_t *uids, size_t n, mr_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (uids[i] == 0)
            return mr_error_set(err, MR_E_INVALID, "UID 0 is not a valid UID");
        if (i > 0 && uids[i] < uids[i - 1])
            return mr_error_set(err, MR_E_INVALID, "UID list is not sorted ascending");
    }
    return 0;
}

/* ---------------------------------------------------------------- SEARCH */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Run UID SEARCH with key (freed here) and collect the UIDs within [first, last]
 * (last 0 = no upper bound), sorted. */
static int search_run(imap_conn *conn, struct mailimap_search_key *key, uint32_t first,
                      uint32_t last, uint32_t **uids, size_t *n_uids, mr_error *err)
{
    clist *result = NULL;
    clistiter *it;
    uint32_t *out;
    size_t n = 0;
    int r;

    do
        r = mailimap_uid_search(conn->imap, NULL, key, &result);
    while (throttle_wait(conn, r, "UID SEARCH"));
    mailimap_search_key_free(key);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(conn, r, "UID SEARCH", err);
    if (result == NULL) {
        *uids = calloc(1, sizeof **uids);   /* empty, but never NULL on success */
        return *uids != NULL ? 0 : mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    out = malloc(((size_t)clist_count(result) + 1) * sizeof *out);
    if (out == NULL) {
        mailimap_search_result_free(result);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    for (it = clist_begin(result); it != NULL; it = clist_next(it)) {
        uint32_t uid = *(uint32_t *)clist_content(it);
        /* "first:*" matches the highest UID even when it is below first. */
        if (uid >= first && (last == 0 || uid <= last))
            out[n++] = uid;
    }
    mailimap_search_result_free(result);
    qsort(out, n, sizeof *out, cmp_u32);
    *uids = out;
    *n_uids = n;
    return 0;
}

int imap_uid_search(imap_conn *conn, uint32_t first, uint32_t last, time_t before,
                    uint32_t **uids, size_t *n_uids, mr_error *err)
{
    struct mailimap_search_key *key = NULL, *k;
    struct mailimap_set *set;
    int rc = check_usable(conn, err);

    if (rc != 0)
        return rc;
    if (uids == NULL || n_uids == NULL || first == 0 || (last != 0 && last < first))
        return mr_error_set(err, MR_E_INVALID, "imap_uid_search: bad UID range");
    *uids = NULL;
    *n_uids = 0;
    key = mailimap_search_key_new_multiple_empty();
    set = mailimap_set_new_interval(first, last);
    if (key == NULL || set == NULL)
        goto nomem;
    k = mailimap_search_key_new_uid(set);
    if (k == NULL) {
        mailimap_set_free(set);
        goto nomem;
    }
    if (mailimap_search_key_multiple_add(key, k) != MAILIMAP_NO_ERROR) {
        mailimap_search_key_free(k);
        goto nomem;
    }
    if (before != 0) {
        /* The server compares the date of INTERNALDATE in its own zone (at most 14 h
         * from UTC) with BEFORE's day: asking for "before the UTC day after
         * before + 14 h" catches every message older than `before` in any zone. */
        time_t t = before + 14 * 3600;
        struct tm tm;
        struct mailimap_date *d;

        if (gmtime_r(&t, &tm) == NULL)
            goto nomem;
        tm.tm_mday += 1;
        tm.tm_hour = 12;
        t = timegm(&tm);   /* normalises month/year overflow */
        gmtime_r(&t, &tm);
        d = mailimap_date_new(tm.tm_mday, tm.tm_mon + 1, tm.tm_year + 1900);
        k = d != NULL ? mailimap_search_key_new_before(d) : NULL;
        if (k == NULL) {
            if (d != NULL)
                mailimap_date_free(d);
            goto nomem;
        }
        if (mailimap_search_key_multiple_add(key, k) != MAILIMAP_NO_ERROR) {
            mailimap_search_key_free(k);
            goto nomem;
        }
    }
    return search_run(conn, key, first, last, uids, n_uids, err);

nomem:
    if (key != NULL)
        mailimap_search_key_free(key);
    return mr_error_set(err, MR_E_NOMEM, "out of memory");
}

int imap_uid_search_deleted(imap_conn *conn, uint32_t **uids, size_t *n_uids, mr_error *err)
{
    struct mailimap_search_key *key;
    int rc = check_usable(conn, err);

    if (rc != 0)
        return rc;
    if (uids == NULL || n_uids == NULL)
        return mr_error_set(err, MR_E_INVALID, "imap_uid_search_deleted: no output");
    *uids = NULL;
    *n_uids = 0;
    key = mailimap_search_key_new(MAILIMAP_SEARCH_KEY_DELETED, NULL, NULL, NULL, NULL, NULL,
                                  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0,
                                  NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL);
    if (key == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    return search_run(conn, key, 1, 0, uids, n_uids, err);
}

/* ---------------------------------------------------------------- FETCH */

struct fetch_ctx {
    imap_conn *conn;
    imap_message_fn fn;
    void *user;
    /* What was asked for: "UID n:*" also returns the highest message when its UID is below
     * n, and a server may volunteer others; only these UIDs reach the caller. */
    uint32_t first, last;       /* last 0 = no upper bound */
    const uint32_t *set;        /* if not NULL: only these (ascending) */
    size_t n_set;
    /* the message being received */
    unsigned char *buf;
    size_t len, cap;
    size_t literal_size;     /* from the progress callback, 0 = not known yet */
    bool got_body;
    bool oversized;
    /* outcome */
    int rc;                  /* first error from the callback or from us */
    mr_error err;
    size_t delivered;
    /* UIDs already handed to fn: a FETCH sent again after the server throttled it
     * resumes after them and never delivers one twice. */
    uint32_t *done;
    size_t n_done, cap_done;
    bool done_unsorted;         /* the server answered out of UID order */
    size_t chunk_lo, chunk_hi;  /* set mode: the slice of set this FETCH asks for */
};

static bool fetch_is_done(const struct fetch_ctx *f, uint32_t uid)
{
    if (!f->done_unsorted)
        return f->n_done > 0 &&
               bsearch(&uid, f->done, f->n_done, sizeof *f->done, cmp_u32) != NULL;
    for (size_t i = 0; i < f->n_done; i++)
        if (f->done[i] == uid)
            return true;
    return false;
}

static bool fetch_mark_done(struct fetch_ctx *f, uint32_t uid)
{
    if (f->n_done == f->cap_done) {
        size_t ncap = f->cap_done < 64 ? 64 : f->cap_done * 2;
        uint32_t *nd = realloc(f->done, ncap * sizeof *nd);
        if (nd == NULL)
            return false;
        f->done = nd;
        f->cap_done = ncap;
    }
    if (f->n_done > 0 && uid <= f->done[f->n_done - 1])
        f->done_unsorted = true;
    f->done[f->n_done++] = uid;
    return true;
}

static void fetch_reset_message(struct fetch_ctx *f)
{
    f->len = 0;
    f->literal_size = 0;
    f->got_body = false;
    f->oversized = false;
    /* Keep a small buffer for the next message, give big ones back at once. */
    if (f->cap > 1024 * 1024) {
        free(f->buf);
        f->buf = NULL;
        f->cap = 0;
    }
}

static bool fetch_reserve(struct fetch_ctx *f, size_t need)
{
    unsigned char *nb;
    size_t ncap;

    if (need <= f->cap)
        return true;
    ncap = f->cap < 65536 ? 65536 : f->cap;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (f->literal_size != 0 && need <= f->literal_size && ncap > f->literal_size)
        ncap = f->literal_size;   /* exact size known: no doubling slack */
    nb = realloc(f->buf, ncap);
    if (nb == NULL)
        return false;
    f->buf = nb;
    f->cap = ncap;
    return true;
}

static void fetch_mark_oversized(struct fetch_ctx *f)
{
    f->oversized = true;
    f->len = 0;
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
}

/* libetpan reports the literal's announced size here, after the first chunk: reserve
 * exactly that (one allocation instead of a doubling series) or drop the message now. */
static void fetch_progress(size_t current, size_t maximum, void *ctx)
{
    struct fetch_ctx *f = ctx;

    (void)current;
    if (!f->got_body || f->literal_size != 0 || maximum == 0)
        return;
    f->literal_size = maximum;
    if (maximum > f->conn->max_literal) {
        fetch_mark_oversized(f);
    } else if (!fetch_reserve(f, maximum)) {
        /* Not fatal here: the body handler will fail on the next chunk if memory stays
         * short. */
    }
}

static bool fetch_body(int att_type, struct mailimap_msg_att_body_section *section,
                       const char *bytes, size_t length, void *ctx)
{
    struct fetch_ctx *f = ctx;

    (void)att_type;
    (void)section;
    if (f->rc != 0)
        return false;   /* the callback asked to stop: abort the parse */
    f->got_body = true;
    if (f->oversized)
        return true;    /* count nothing, keep nothing: just let the bytes pass */
    if (length > f->conn->max_literal - f->len) {
        fetch_mark_oversized(f);
        return true;
    }
    if (!fetch_reserve(f, f->len + length)) {
        f->rc = mr_error_set(&f->err, MR_E_NOMEM, "out of memory buffering a message of "
                             "%zu bytes", f->len + length);
        return false;
    }
    memcpy(f->buf + f->len, bytes, length);
    f->len += length;
    return true;
}

static int flag_append(char *buf, size_t size, size_t *used, const char *name)
{
    int n = snprintf(buf + *used, size - *used, "%s%s", *used > 0 ? " " : "", name);

    if (n < 0 || (size_t)n >= size - *used)
        return -1;
    *used += (size_t)n;
    return 0;
}

/* An IMAP atom (RFC 3501): one or more CHARs but atom-specials — "(" ")" "{" SP CTL "%"
 * "*" DQUOTE "\" "]".  libetpan's parser lets more through as a keyword; such a "flag"
 * would break the space-separated list and could not be APPENDed back, so it is left out. */
static bool is_atom(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7F || strchr("(){%*\"\\]", c) != NULL)
            return false;
    }
    return true;
}

static int flags_format(clist *flags, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    if (flags == NULL)
        return 0;
    for (clistiter *it = clist_begin(flags); it != NULL; it = clist_next(it)) {
        struct mailimap_flag_fetch *ff = clist_content(it);
        struct mailimap_flag *fl;
        const char *name = NULL;
        char ext[256];

        if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || ff->fl_flag == NULL)
            continue;   /* \Recent */
        fl = ff->fl_flag;
        switch (fl->fl_type) {
        case MAILIMAP_FLAG_ANSWERED: name = "\\Answered"; break;
        case MAILIMAP_FLAG_FLAGGED: name = "\\Flagged"; break;
        case MAILIMAP_FLAG_DELETED: name = "\\Deleted"; break;
        case MAILIMAP_FLAG_SEEN: name = "\\Seen"; break;
        case MAILIMAP_FLAG_DRAFT: name = "\\Draft"; break;
        case MAILIMAP_FLAG_KEYWORD:
            name = is_atom(fl->fl_data.fl_keyword) ? fl->fl_data.fl_keyword : NULL;
            break;
        case MAILIMAP_FLAG_EXTENSION:
            if (is_atom(fl->fl_data.fl_extension) &&
                strcasecmp(fl->fl_data.fl_extension, "Recent") != 0) {
                snprintf(ext, sizeof ext, "\\%s", fl->fl_data.fl_extension);
                name = ext;
            }
            break;
        default: break;
        }
        if (name != NULL && flag_append(buf, size, &used, name) != 0)
            return -1;
    }
    return 0;
}

static time_t imap_date_to_time(const struct mailimap_date_time *dt, int *tz_min)
{
    struct tm tm = { 0 };
    int zone = dt->dt_zone, sign = zone < 0 ? -1 : 1, minutes;

    zone *= sign;
    minutes = sign * ((zone / 100) * 60 + zone % 100);
    tm.tm_year = dt->dt_year - 1900;
    tm.tm_mon = dt->dt_month - 1;
    tm.tm_mday = dt->dt_day;
    tm.tm_hour = dt->dt_hour;
    tm.tm_min = dt->dt_min;
    tm.tm_sec = dt->dt_sec;
    *tz_min = minutes;
    return timegm(&tm) - (time_t)minutes * 60;
}

static bool fetch_wanted(const struct fetch_ctx *f, uint32_t uid)
{
    if (fetch_is_done(f, uid))
        return false;
    if (f->set != NULL)
        return bsearch(&uid, f->set, f->n_set, sizeof *f->set, cmp_u32) != NULL;
    return uid >= f->first && (f->last == 0 || uid <= f->last);
}

/* Called by libetpan once per complete FETCH response (after its body went through
 * fetch_body): assemble the message and hand it to the caller. */
static void fetch_msg_att(struct mailimap_msg_att *att, void *ctx)
{
    struct fetch_ctx *f = ctx;
    struct imap_message m = { 0 };
    char flags[2048];
    bool have_uid = false, have_body = false, nil_body = false;
    const char *inline_body = NULL;
    size_t inline_len = 0;
    clist *flag_list = NULL;

    if (f->rc != 0)
        goto done;
    for (clistiter *it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
        struct mailimap_msg_att_item *item = clist_content(it);

        if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
            flag_list = item->att_data.att_dyn->att_list;
            continue;
        }
        if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
            continue;
        switch (item->att_data.att_static->att_type) {
        case MAILIMAP_MSG_ATT_UID:
            m.uid = item->att_data.att_static->att_data.att_uid;
            have_uid = true;
            break;
        case MAILIMAP_MSG_ATT_INTERNALDATE:
            m.internaldate = imap_date_to_time(
                item->att_data.att_static->att_data.att_internal_date,
                &m.internaldate_tz_min);
            break;
        case MAILIMAP_MSG_ATT_RFC822_SIZE:
            m.rfc822_size = item->att_data.att_static->att_data.att_rfc822_size;
            break;
        case MAILIMAP_MSG_ATT_BODY_SECTION: {
            struct mailimap_msg_att_body_section *bs =
                item->att_data.att_static->att_data.att_body_section;
            have_body = true;
            nil_body = bs == NULL || bs->sec_body_part == NULL;
            /* A body sent as a quoted string bypasses the body handler. */
            if (bs != NULL && bs->sec_body_part != NULL && bs->sec_length > 0) {
                inline_body = bs->sec_body_part;
                inline_len = bs->sec_length;
            }
            break;
        }
        default:
            break;
        }
    }
    /* Unsolicited FETCH responses (flag changes by other sessions) carry no body. */
    if (!have_body)
        goto done;
    if (!have_uid) {
        f->rc = mr_error_set(&f->err, MR_E_PROTOCOL, "IMAP UID FETCH: response without UID");
        goto done;
    }
    if (!fetch_wanted(f, m.uid))
        goto done;
    if (nil_body && !f->got_body) {
        /* NIL instead of the message: never pass that on as an empty message, it would
         * be archived (and later expunged) as if it were the original. */
        f->rc = mr_error_set(&f->err, MR_E_PROTOCOL, "IMAP UID FETCH: server returned no "
                             "body (NIL) for UID %u", m.uid);
        goto done;
    }
    if (!f->got_body && inline_body != NULL) {
        if (inline_len > f->conn->max_literal)
            fetch_mark_oversized(f);
        else if (!fetch_reserve(f, inline_len)) {
            f->rc = mr_error_set(&f->err, MR_E_NOMEM, "out of memory");
            goto done;
        } else {
            memcpy(f->buf, inline_body, inline_len);
            f->len = inline_len;
        }
    }
    if (flags_format(flag_list, flags, sizeof flags) != 0) {
        f->rc = mr_error_set(&f->err, MR_E_LIMIT, "IMAP UID FETCH: flag list of UID %u too "
                             "long", m.uid);
        goto done;
    }
    m.flags = flags;
    m.oversized = f->oversized;
    m.body = f->oversized ? NULL : (f->buf != NULL ? f->buf : (const unsigned char *)"");
    m.body_len = f->oversized ? 0 : f->len;
    mr_error_clear(&f->err);
    f->rc = f->fn(f->user, &m, &f->err);
    if (f->rc > 0 || (f->rc < 0 && f->err.code == 0)) {
        /* A callback that broke the convention still stops the fetch, with a message. */
        if (f->rc > 0)
            f->rc = MR_E_INTERNAL;
        mr_error_set(&f->err, f->rc, "message callback failed for UID %u", m.uid);
    }
    f->delivered++;
    if (f->rc == 0 && !fetch_mark_done(f, m.uid))
        f->rc = mr_error_set(&f->err, MR_E_NOMEM, "out of memory");
done:
    fetch_reset_message(f);
}

/* The set for a FETCH sent again after a throttled one: what was asked for minus what was
 * delivered.  NULL with *r = MAILIMAP_NO_ERROR if nothing is left, NULL with
 * MAILIMAP_ERROR_MEMORY if out of memory. */
static struct mailimap_set *fetch_resume_set(const struct fetch_ctx *f, int *r)
{
    struct mailimap_set *set;
    size_t added = 0;

    *r = MAILIMAP_ERROR_MEMORY;
    if (f->set == NULL) {
        uint32_t first = f->first;
        /* In UID order so far (what servers do): go on after the last one.  Otherwise
         * ask for the whole range again; the done list keeps out the repeats. */
        if (!f->done_unsorted && f->n_done > 0 && f->done[f->n_done - 1] >= first) {
            if (f->done[f->n_done - 1] == UINT32_MAX ||
                (f->last != 0 && f->done[f->n_done - 1] >= f->last)) {
                *r = MAILIMAP_NO_ERROR;
                return NULL;
            }
            first = f->done[f->n_done - 1] + 1;
        }
        set = mailimap_set_new_interval(first, f->last);
        return set;
    }
    set = mailimap_set_new_empty();
    if (set == NULL)
        return NULL;
    for (size_t i = f->chunk_lo; i < f->chunk_hi; i++) {
        uint32_t lo = f->set[i], hi = lo;
        if (fetch_is_done(f, lo))
            continue;
        while (i + 1 < f->chunk_hi && f->set[i + 1] <= hi + 1 && !fetch_is_done(f, f->set[i + 1]))
            hi = f->set[++i];
        if (mailimap_set_add_interval(set, lo, hi) != MAILIMAP_NO_ERROR) {
            mailimap_set_free(set);
            return NULL;
        }
        added++;
    }
    if (added == 0) {
        mailimap_set_free(set);
        *r = MAILIMAP_NO_ERROR;
        return NULL;
    }
    return set;
}

static int fetch_run(imap_conn *c, struct mailimap_set *set, struct fetch_ctx *want,
                     mr_error *err)
{
    struct mailimap_fetch_type *ft;
    struct mailimap_section *sec;
    struct mailimap_fetch_att *fa;
    struct fetch_ctx f = *want;
    struct mailimap_set *resume = NULL;
    clist *result = NULL;
    int r, rc = 0;

    ft = mailimap_fetch_type_new_fetch_att_list_empty();
    if (ft == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid()) != 0 ||
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_internaldate()) != 0 ||
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size()) != 0 ||
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_flags()) != 0) {
        mailimap_fetch_type_free(ft);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    sec = mailimap_section_new(NULL);
    fa = sec != NULL ? mailimap_fetch_att_new_body_peek_section(sec) : NULL;
    if (fa == NULL || mailimap_fetch_type_new_fetch_att_list_add(ft, fa) != 0) {
        if (fa != NULL)
            mailimap_fetch_att_free(fa);
        else if (sec != NULL)
            mailimap_section_free(sec);
        mailimap_fetch_type_free(ft);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }

    for (;;) {
        /* The body and att handlers are only honoured on the parse path that a progress
         * callback selects; all three are removed again so other commands parse
         * normally. */
        mailimap_set_progress_callback(c->imap, fetch_progress, NULL, &f);
        mailimap_set_msg_body_handler(c->imap, fetch_body, &f);
        mailimap_set_msg_att_handler(c->imap, fetch_msg_att, &f);
        result = NULL;
        r = mailimap_uid_fetch(c->imap, resume != NULL ? resume : set, ft, &result);
        mailimap_set_msg_att_handler(c->imap, NULL, NULL);
        mailimap_set_msg_body_handler(c->imap, NULL, NULL);
        mailimap_set_progress_callback(c->imap, NULL, NULL, NULL);
        /* On NO libetpan frees the list but leaves the pointer: only a success owns it. */
        if (r == MAILIMAP_NO_ERROR && result != NULL)
            mailimap_fetch_list_free(result);
        fetch_reset_message(&f);
        if (r == MAILIMAP_NO_ERROR || f.rc != 0 || !throttle_wait(c, r, "UID FETCH"))
            break;
        /* Throttled part-way: ask again for what has not arrived yet. */
        if (resume != NULL)
            mailimap_set_free(resume);
        resume = fetch_resume_set(&f, &r);
        if (resume == NULL)
            break;
    }
    if (resume != NULL)
        mailimap_set_free(resume);
    mailimap_fetch_type_free(ft);
    free(f.buf);
    free(f.done);

    if (r != MAILIMAP_NO_ERROR) {
        if (f.rc != 0) {
            /* We aborted the parse (callback error or no memory): the rest of the response
             * is unread, so the session cannot be used any more. */
            c->broken = true;
            rc = f.rc;
            mr_error_set(err, f.err.code, "%s", f.err.msg);
        } else {
            rc = imap_fail(c, r, "UID FETCH", err);
        }
    } else if (f.rc != 0) {
        rc = f.rc;
        mr_error_set(err, f.err.code, "%s", f.err.msg);
    }
    return rc;
}

int imap_uid_fetch(imap_conn *conn, uint32_t first, uint32_t last, imap_message_fn fn,
                   void *ctx, mr_error *err)
{
    struct mailimap_set *set;
    int rc = check_usable(conn, err);

    if (rc != 0)
        return rc;
    if (fn == NULL || first == 0 || (last != 0 && last < first))
        return mr_error_set(err, MR_E_INVALID, "imap_uid_fetch: bad arguments");
    set = mailimap_set_new_interval(first, last);
    if (set == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    {
        struct fetch_ctx f = { .conn = conn, .fn = fn, .user = ctx, .first = first,
                               .last = last };
        rc = fetch_run(conn, set, &f, err);
    }
    mailimap_set_free(set);
    return rc;
}

int imap_uid_fetch_set(imap_conn *conn, const uint32_t *uids, size_t n_uids,
                       imap_message_fn fn, void *ctx, mr_error *err)
{
    size_t pos = 0;
    int rc = check_usable(conn, err);

    if (rc != 0)
        return rc;
    if (fn == NULL || (uids == NULL && n_uids > 0))
        return mr_error_set(err, MR_E_INVALID, "imap_uid_fetch_set: bad arguments");
    rc = check_uid_list(uids, n_uids, err);
    while (rc == 0 && pos < n_uids) {
        size_t lo = pos;
        struct mailimap_set *set = set_next_chunk(uids, n_uids, &pos);
        if (set == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        struct fetch_ctx f = { .conn = conn, .fn = fn, .user = ctx, .set = uids,
                               .n_set = n_uids, .chunk_lo = lo, .chunk_hi = pos };
        rc = fetch_run(conn, set, &f, err);
        mailimap_set_free(set);
    }
    return rc;
}

/* ---------------------------------------------------------------- STORE / EXPUNGE */

int imap_uid_store_deleted(imap_conn *conn, const uint32_t *uids, size_t n_uids,
                           mr_error *err)
{
    size_t pos = 0;
    int rc = check_usable(conn, err);

    if (rc != 0)
        return rc;
    if (uids == NULL && n_uids > 0)
        return mr_error_set(err, MR_E_INVALID, "imap_uid_store_deleted: no UIDs");
    rc = check_uid_list(uids, n_uids, err);
    while (rc == 0 && pos < n_uids) {
        struct mailimap_set *set = set_next_chunk(uids, n_uids, &pos);
        struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
        struct mailimap_flag *del = mailimap_flag_new_deleted();
        struct mailimap_store_att_flags *sa = NULL;
        int r;

        if (set == NULL || fl == NULL || del == NULL ||
            mailimap_flag_list_add(fl, del) != MAILIMAP_NO_ERROR) {
            if (del != NULL)
                mailimap_flag_free(del);
            if (fl != NULL)
                mailimap_flag_list_free(fl);
            if (set != NULL)
                mailimap_set_free(set);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        sa = mailimap_store_att_flags_new_add_flags_silent(fl);
        if (sa == NULL) {
            mailimap_flag_list_free(fl);
            mailimap_set_free(set);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        do
            r = mailimap_uid_store(conn->imap, set, sa);
        while (throttle_wait(conn, r, "UID STORE"));
        mailimap_store_att_flags_free(sa);
        mailimap_set_free(set);
        if (r != MAILIMAP_NO_ERROR)
            rc = imap_fail(conn, r, "UID STORE", err);
    }
    return rc;
}

int imap_uid_expunge(imap_conn *conn, const uint32_t *uids, size_t n_uids, mr_error *err)
{
    size_t pos = 0;
    int rc = check_usable(conn, err);

    if (rc != 0)
        return rc;
    /* Without UIDPLUS only plain EXPUNGE exists, which also removes every other message
     * someone marked \Deleted: never do that implicitly. */
    if (!imap_has_capability(conn, "UIDPLUS"))
        return mr_error_set(err, MR_E_UNSUPPORTED, "IMAP server %s does not support UIDPLUS; "
                            "refusing to expunge (plain EXPUNGE could remove other messages)",
                            conn->host);
    if (uids == NULL && n_uids > 0)
        return mr_error_set(err, MR_E_INVALID, "imap_uid_expunge: no UIDs");
    rc = check_uid_list(uids, n_uids, err);
    while (rc == 0 && pos < n_uids) {
        struct mailimap_set *set = set_next_chunk(uids, n_uids, &pos);
        int r;

        if (set == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        do
            r = mailimap_uid_expunge(conn->imap, set);
        while (throttle_wait(conn, r, "UID EXPUNGE"));
        mailimap_set_free(set);
        if (r != MAILIMAP_NO_ERROR)
            rc = imap_fail(conn, r, "UID EXPUNGE", err);
    }
    return rc;
}

int imap_expunge(imap_conn *conn, mr_error *err)
{
    int r, rc = check_usable(conn, err);

    if (rc != 0)
        return rc;
    do
        r = mailimap_expunge(conn->imap);
    while (throttle_wait(conn, r, "EXPUNGE"));
    return r == MAILIMAP_NO_ERROR ? 0 : imap_fail(conn, r, "EXPUNGE", err);
}

/* ---------------------------------------------------------------- APPEND */

static struct mailimap_flag *flag_from_name(const char *name)
{
    char *copy;
    struct mailimap_flag *f;

    if (strcasecmp(name, "\\Seen") == 0)
        return mailimap_flag_new_seen();
    if (strcasecmp(name, "\\Answered") == 0)
        return mailimap_flag_new_answered();
    if (strcasecmp(name, "\\Flagged") == 0)
        return mailimap_flag_new_flagged();
    if (strcasecmp(name, "\\Deleted") == 0)
        return mailimap_flag_new_deleted();
    if (strcasecmp(name, "\\Draft") == 0)
        return mailimap_flag_new_draft();
    copy = strdup(name[0] == '\\' ? name + 1 : name);
    if (copy == NULL)
        return NULL;
    f = name[0] == '\\' ? mailimap_flag_new_flag_extension(copy)
                        : mailimap_flag_new_flag_keyword(copy);
    if (f == NULL)
        free(copy);
    return f;
}

static bool flag_name_ok(const char *name)
{
    /* IMAP atom characters only (RFC 3501 atom-specials excluded), optional leading '\'. */
    const char *p = name[0] == '\\' ? name + 1 : name;

    if (*p == '\0')
        return false;
    for (; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
            strchr("(){%*\"\\]", *p) != NULL)
            return false;
    return true;
}

static int flags_parse(const char *flags, struct mailimap_flag_list **out, mr_error *err)
{
    struct mailimap_flag_list *fl;
    char *copy, *save = NULL, *tok;

    *out = NULL;
    if (flags == NULL || flags[strspn(flags, " ")] == '\0')
        return 0;
    fl = mailimap_flag_list_new_empty();
    copy = strdup(flags);
    if (fl == NULL || copy == NULL) {
        free(copy);
        if (fl != NULL)
            mailimap_flag_list_free(fl);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        struct mailimap_flag *f;

        if (strcasecmp(tok, "\\Recent") == 0)
            continue;   /* a session flag: the server sets it, APPEND may not */
        if (!flag_name_ok(tok)) {
            free(copy);
            mailimap_flag_list_free(fl);
            return mr_error_set(err, MR_E_INVALID, "invalid IMAP flag in flag list");
        }
        f = flag_from_name(tok);
        if (f == NULL || mailimap_flag_list_add(fl, f) != MAILIMAP_NO_ERROR) {
            if (f != NULL)
                mailimap_flag_free(f);
            free(copy);
            mailimap_flag_list_free(fl);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
    }
    free(copy);
    *out = fl;
    return 0;
}

int imap_append(imap_conn *conn, const char *mailbox, const char *flags,
                time_t internaldate, int tz_min, const unsigned char *msg, size_t len,
                mr_error *err)
{
    struct mailimap_flag_list *fl = NULL;
    struct mailimap_date_time *dt = NULL;
    char *wire = NULL;
    int r, rc = check_usable(conn, err);

    if (rc != 0)
        return rc;
    if (mailbox == NULL || msg == NULL || len == 0)
        return mr_error_set(err, MR_E_INVALID, "imap_append: empty message or no mailbox");
    if (tz_min < -14 * 60 || tz_min > 14 * 60)
        return mr_error_set(err, MR_E_INVALID, "imap_append: time zone offset out of range");
    rc = flags_parse(flags, &fl, err);
    if (rc != 0)
        return rc;
    /* Always with a date-time: Exchange/Outlook show a message by it, and one left out
     * would become the time of the restore.  Unknown (0): now, in UTC, said explicitly. */
    if (internaldate == 0) {
        internaldate = time(NULL);
        tz_min = 0;
    }
    {
        time_t local = internaldate + (time_t)tz_min * 60;
        int a = tz_min < 0 ? -tz_min : tz_min;
        struct tm tm;

        /* date-year is exactly four digits. */
        if (gmtime_r(&local, &tm) == NULL || tm.tm_year + 1900 < 1 ||
            tm.tm_year + 1900 > 9999) {
            if (fl != NULL)
                mailimap_flag_list_free(fl);
            return mr_error_set(err, MR_E_INVALID, "imap_append: INTERNALDATE out of range");
        }
        dt = mailimap_date_time_new(tm.tm_mday, tm.tm_mon + 1, tm.tm_year + 1900, tm.tm_hour,
                                    tm.tm_min, tm.tm_sec,
                                    (tz_min < 0 ? -1 : 1) * ((a / 60) * 100 + a % 60));
        if (dt == NULL) {
            if (fl != NULL)
                mailimap_flag_list_free(fl);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
    }
    rc = wire_name(conn, mailbox, &wire, err);
    if (rc != 0) {
        if (fl != NULL)
            mailimap_flag_list_free(fl);
        if (dt != NULL)
            mailimap_date_time_free(dt);
        return rc;
    }
    do
        r = mailimap_append(conn->imap, wire, fl, dt, (const char *)msg, len);
    while (throttle_wait(conn, r, "APPEND"));
    free(wire);
    if (fl != NULL)
        mailimap_flag_list_free(fl);
    if (dt != NULL)
        mailimap_date_time_free(dt);
    if (r != MAILIMAP_NO_ERROR) {
        rc = imap_fail(conn, r, "APPEND", err);
        if (rc == MR_E_PROTOCOL)
            mr_error_prefix(err, "mailbox %s", mailbox);
        return rc;
    }
    return 0;
}

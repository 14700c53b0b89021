/*
 * itest_imap_util.h — shared by the itest_imap_*.c tests (header-only, static
 * functions, so the test CMake glob needs no change): the test server's facts, a fresh
 * user per test and the fixture holding both, generated messages, a collecting fetch
 * callback and the fault proxy.
 */
#ifndef MAILRET_ITEST_INGEST_IMAP_UTIL_H
#define MAILRET_ITEST_INGEST_IMAP_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "helpers/test_helpers.h"
#include "imap/imap.h"

struct it_server {
    char *host, *ca_file, *other_ca, *script, *dir, *log;
    int imap_port, imaps_port, noplus_port;
};

static inline int it_env_int(const char *key)
{
    char *v = th_imap_env(key);
    int n = v != NULL ? atoi(v) : 0;

    free(v);
    return n;
}

/* Fails the calling test (via abort) if the fixture did not run. */
static inline void it_server_load(struct it_server *s)
{
    const char *src = getenv("MAILRET_SOURCE_DIR");
    char path[4096];

    memset(s, 0, sizeof *s);
    s->dir = getenv("MAILRET_TEST_IMAP_DIR") ? strdup(getenv("MAILRET_TEST_IMAP_DIR")) : NULL;
    s->host = th_imap_env("HOST");
    s->ca_file = th_imap_env("CA_FILE");
    s->other_ca = th_imap_env("OTHER_CA_FILE");
    s->log = th_imap_env("LOG");
    s->imap_port = it_env_int("IMAP_PORT");
    s->imaps_port = it_env_int("IMAPS_PORT");
    s->noplus_port = it_env_int("NOPLUS_PORT");
    snprintf(path, sizeof path, "%s/scripts/imap-test-server", src ? src : ".");
    s->script = strdup(path);
    if (s->dir == NULL || s->host == NULL || s->ca_file == NULL || s->imaps_port == 0) {
        fprintf(stderr, "test server not running: run the imap_server_start fixture "
                        "(MAILRET_TEST_IMAP_DIR)\n");
        abort();
    }
}

static inline void it_server_free(struct it_server *s)
{
    free(s->host);
    free(s->ca_file);
    free(s->other_ca);
    free(s->script);
    free(s->dir);
    free(s->log);
}

static inline void it_random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];

    if (nbytes > sizeof b)
        nbytes = sizeof b;
    if (RAND_bytes(b, (int)nbytes) != 1)
        abort();
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* A fresh user with a random name and password (written to add-user's stdin, never argv).
 * name needs 40 bytes, password 40. Returns 0 or -1. */
static inline int it_new_user(const struct it_server *s, char *name, char *password)
{
    char cmd[8192];
    FILE *p;

    strcpy(name, "t");
    it_random_hex(name + 1, 8);
    it_random_hex(password, 12);
    snprintf(cmd, sizeof cmd, "'%s' add-user --dir '%s' '%s' -", s->script, s->dir, name);
    p = popen(cmd, "w");
    if (p == NULL)
        return -1;
    fprintf(p, "%s\n", password);
    return pclose(p) == 0 ? 0 : -1;
}

/* A pool of users made with one add-users call (one passwd-file reread wait for all),
 * created in a cmocka group setup; each test's setup takes the next one. */
#define IT_POOL_MAX 32

struct it_pool {
    size_t n, next;
    char user[IT_POOL_MAX][40];
    char password[IT_POOL_MAX][40];
};

static inline int it_pool_create(void **state, size_t n)
{
    struct it_server s;
    struct it_pool *p = calloc(1, sizeof *p);
    char cmd[8192];
    FILE *f;
    int rc;

    if (p == NULL || n > IT_POOL_MAX)
        return -1;
    it_server_load(&s);
    snprintf(cmd, sizeof cmd, "'%s' add-users --dir '%s'", s.script, s.dir);
    f = popen(cmd, "w");
    for (size_t i = 0; f != NULL && i < n; i++) {
        strcpy(p->user[i], "t");
        it_random_hex(p->user[i] + 1, 8);
        it_random_hex(p->password[i], 12);
        fprintf(f, "%s %s\n", p->user[i], p->password[i]);
    }
    rc = f != NULL && pclose(f) == 0 ? 0 : -1;
    it_server_free(&s);
    p->n = n;
    *state = p;
    return rc;
}

static inline int it_pool_free(void **state)
{
    free(*state);
    return 0;
}

/* Next user of the group's pool (state as given to a test's setup), or a fresh one. */
static inline int it_take_user(void *group, const struct it_server *s, char *name,
                               char *password)
{
    struct it_pool *p = group;

    if (p == NULL || p->next >= p->n)
        return it_new_user(s, name, password);
    strcpy(name, p->user[p->next]);
    strcpy(password, p->password[p->next]);
    p->next++;
    return 0;
}

/* The fixture of a test that needs the server and a user of its own. */
struct it_fixture {
    struct it_server srv;
    char user[40], password[40];
};

/* A cmocka setup: *state is the group's pool (it_pool_create) and becomes a fixture with
 * the pool's next user. */
static inline int it_fixture_setup(void **state)
{
    struct it_fixture *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    it_server_load(&f->srv);
    if (it_take_user(*state, &f->srv, f->user, f->password) != 0) {
        it_server_free(&f->srv);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int it_fixture_teardown(void **state)
{
    struct it_fixture *f = *state;

    it_server_free(&f->srv);
    free(f);
    return 0;
}

/* Entries of a cmocka test list whose test gets a fixture: from it_fixture_setup, or from
 * a setup of the file's own that calls it first. */
#define IT_FIXTURE_TEST(fn) \
    cmocka_unit_test_setup_teardown(fn, it_fixture_setup, it_fixture_teardown)
#define IT_FIXTURE_TEST_SETUP(fn, setup) \
    cmocka_unit_test_setup_teardown(fn, setup, it_fixture_teardown)

static inline void it_options(struct imap_options *o, const struct it_server *s,
                              enum imap_tls_mode tls, const char *user, const char *password)
{
    memset(o, 0, sizeof *o);
    o->host = s->host;
    o->tls = tls;
    o->port = tls == IMAP_TLS_IMAPS ? s->imaps_port : s->imap_port;
    o->ca_file = s->ca_file;
    o->user = user;
    o->password = password;
    o->connect_timeout_s = 10;
    o->io_timeout_s = 30;
}

/* RFC 5322 message of about `size` bytes, CRLF line ends, deterministic for `seed`. */
static inline unsigned char *it_make_message(size_t size, unsigned seed, size_t *len)
{
    unsigned char *m = malloc(size + 512);
    size_t n;
    unsigned x = seed * 2654435761u + 1;

    *len = 0;
    if (m == NULL)
        return NULL;
    n = (size_t)sprintf((char *)m,
                        "From: Sender %u <sender%u@example.invalid>\r\n"
                        "To: Fund <post@fund.example.invalid>\r\n"
                        "Subject: test message %u\r\n"
                        "Message-ID: <%u.test@example.invalid>\r\n"
                        "Date: Mon, 2 Feb 2026 10:00:00 +0100\r\n"
                        "MIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                        seed, seed, seed, seed);
    while (n + 78 <= size || n < 300) {
        for (size_t i = 0; i < 76; i++) {
            x = x * 1103515245u + 12345u;
            m[n++] = (unsigned char)('a' + (x >> 16) % 26);
        }
        m[n++] = '\r';
        m[n++] = '\n';
    }
    *len = n;
    return m;
}

/* A fetch callback that keeps copies of everything it is given. */
struct it_fetched {
    uint32_t uid;
    time_t internaldate;
    int tz_min;
    uint32_t rfc822_size;
    char *flags;
    unsigned char *body;
    size_t body_len;
    bool oversized;
};

struct it_collect {
    struct it_fetched m[64];
    size_t n;
    int fail_at;        /* >0: return an error for the fail_at-th message */
};

static inline int it_collect_fn(void *ctx, const struct imap_message *msg, mr_error *err)
{
    struct it_collect *c = ctx;
    struct it_fetched *f;

    if (c->n >= 64)
        return mr_error_set(err, MR_E_LIMIT, "collector full");
    if (c->fail_at > 0 && (int)c->n + 1 == c->fail_at)
        return mr_error_set(err, MR_E_IO, "collector asked to fail");
    f = &c->m[c->n++];
    f->uid = msg->uid;
    f->internaldate = msg->internaldate;
    f->tz_min = msg->internaldate_tz_min;
    f->rfc822_size = msg->rfc822_size;
    f->flags = strdup(msg->flags);
    f->oversized = msg->oversized;
    f->body_len = msg->body_len;
    f->body = NULL;
    if (msg->body != NULL) {
        f->body = malloc(msg->body_len + 1);
        memcpy(f->body, msg->body, msg->body_len);
    }
    return 0;
}

static inline void it_collect_free(struct it_collect *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->m[i].flags);
        free(c->m[i].body);
    }
    c->n = 0;
}

/* Flags compared as sets: the server may reorder them. */
static inline bool it_flag_has(const char *flags, const char *flag)
{
    size_t n = strlen(flag);

    for (const char *p = flags; (p = strstr(p, flag)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return true;
    return false;
}

static inline bool it_flags_equal(const char *a, const char *b)
{
    char *copy = strdup(a), *save = NULL, *tok;
    size_t na = 0, nb = 0;
    bool ok = true;

    for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        na++;
        if (!it_flag_has(b, tok))
            ok = false;
    }
    free(copy);
    copy = strdup(b);
    for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
        nb++;
    free(copy);
    return ok && na == nb;
}

/* Start tests/tools/faultproxy.py in front of 127.0.0.1:target_port; returns its pid and
 * the port it listens on, or -1.  extra: NULL-terminated further arguments. */
static inline pid_t it_proxy_start(int target_port, int *listen_port, const char *const *extra)
{
    const char *src = getenv("MAILRET_SOURCE_DIR");
    char script[4096], tport[16], line[64];
    const char *argv[32];
    int pfd[2], n = 0;
    pid_t pid;
    FILE *f;

    snprintf(script, sizeof script, "%s/tests/tools/faultproxy.py", src ? src : ".");
    snprintf(tport, sizeof tport, "%d", target_port);
    argv[n++] = "python3";
    argv[n++] = script;
    argv[n++] = "--target-port";
    argv[n++] = tport;
    argv[n++] = "--lifetime";
    argv[n++] = "120";
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    if (pipe(pfd) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    f = fdopen(pfd[0], "r");
    if (f == NULL || fgets(line, sizeof line, f) == NULL) {
        if (f != NULL)
            fclose(f);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return -1;
    }
    fclose(f);
    *listen_port = atoi(line);
    return pid;
}

static inline void it_proxy_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

static inline double it_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* How many successful logins of this user the Dovecot log records. */
static inline int it_log_logins(const struct it_server *s, const char *user)
{
    size_t len;
    unsigned char *log = th_read_file(s->log, &len);
    char needle[128];
    int n = 0;

    if (log == NULL)
        return 0;
    snprintf(needle, sizeof needle, "Login: user=<%s>", user);
    for (const char *p = (char *)log; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* Wait (up to 10 s) until the log shows at least `want` logins of the user; returns the
 * count seen.  Dovecot's log process writes in order, so once a later login is in the
 * log, every earlier one is too. */
static inline int it_log_wait_logins(const struct it_server *s, const char *user, int want)
{
    int n = 0;

    for (int i = 0; i < 100 && (n = it_log_logins(s, user)) < want; i++)
        usleep(100000);
    return n;
}

#endif

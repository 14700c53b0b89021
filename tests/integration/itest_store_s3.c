/* itest_store_s3.c — the S3 driver (store/store_s3.c) against a real OpenStack Swift with
 * its S3 API (scripts/swift-test-server, fixture swift_server): put, get, ranged get,
 * list with paging, delete and verify; multipart above the threshold; keys that need
 * URI encoding; wrong credentials; Swift unreachable mid-upload (a fault proxy stopped
 * by pid) and 503 answers (bounded retries, then one clear line); a short outage that
 * the retries ride out; and the Object Lock probe, which Swift does not support. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/store.h"
#include "helpers/test_helpers.h"
#include "helpers/test_store.h"

static char *env_file;

/* KEY from the Swift test server's env file; malloc'd. */
static char *swift_env(const char *key)
{
    size_t len = 0, klen = strlen(key);
    char *data = (char *)th_read_file(env_file, &len), *line, *save = NULL, *v = NULL;

    if (data == NULL)
        return NULL;
    for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            v = strdup(line + klen + 1);
            break;
        }
    free(data);
    return v;
}

struct swift {
    char *endpoint, *region, *bucket, *access, *secret, *cred_file, *port, *log_dir;
    char *tls_endpoint, *tls_port, *ca_file, *other_ca_file;
};
static struct swift sw;

static int group_setup(void **state)
{
    const char *dir = getenv("MAILRET_TEST_SWIFT_DIR");
    (void)state;
    if (dir == NULL || asprintf(&env_file, "%s/env", dir) < 0)
        return -1;
    sw.endpoint = swift_env("ENDPOINT");
    sw.region = swift_env("REGION");
    sw.bucket = swift_env("BUCKET");
    sw.access = swift_env("ACCESS_KEY");
    sw.secret = swift_env("SECRET_KEY");
    sw.cred_file = swift_env("CREDENTIALS_FILE");
    sw.port = swift_env("PROXY_PORT");
    sw.log_dir = swift_env("LOG_DIR");
    sw.tls_endpoint = swift_env("TLS_ENDPOINT");
    sw.tls_port = swift_env("TLS_PORT");
    sw.ca_file = swift_env("CA_FILE");
    sw.other_ca_file = swift_env("OTHER_CA_FILE");
    return sw.tls_endpoint && sw.tls_port && sw.ca_file && sw.other_ca_file && sw.endpoint && sw.region && sw.bucket && sw.access && sw.secret && sw.cred_file &&
           sw.port && sw.log_dir ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    free(sw.endpoint); free(sw.region); free(sw.bucket); free(sw.access); free(sw.secret);
    free(sw.cred_file); free(sw.port); free(sw.log_dir); free(env_file);
    free(sw.tls_endpoint); free(sw.tls_port); free(sw.ca_file); free(sw.other_ca_file);
    return 0;
}

static struct store_s3_options opts(const char *endpoint)
{
    struct store_s3_options o = { 0 };
    o.endpoint = endpoint ? endpoint : sw.endpoint;
    o.region = sw.region;
    o.bucket = sw.bucket;
    o.path_style = true;
    o.credentials_file = sw.cred_file;
    o.connect_timeout_s = 5;
    o.request_timeout_s = 120;
    o.low_speed_time_s = 20;
    o.retries = 2;
    o.backoff_max_ms = 300;
    return o;
}

/* Keys are unique per run so that a re-run against the same server starts clean. */
static void key_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "itest-%d-%ld/%s", (int)getpid(), (long)time(NULL), name);
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(((i + seed) * 2654435761u) >> 13);
    return b;
}

static void assert_one_line(const mr_error *err)
{
    print_message("error line: %s\n", err->msg);
    assert_true(err->msg[0] != '\0');
    assert_null(strchr(err->msg, '\n'));
    assert_null(strstr(err->msg, sw.secret));
}

static void test_roundtrip(void **state)
{
    struct store_s3_options o = opts(NULL);
    unsigned char *b = pattern(100000, 1), h[32];
    struct test_gathered c = { 0 };
    char key[256];
    uint64_t size = 0;
    mr_store *st;
    mr_error err;

    (void)state;
    key_of(key, sizeof key, "vol-0001.cms");
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    test_store_sha(b, 100000, h);
    assert_int_equal(store_put_buf(st, key, b, 100000, h, &err), 0);
    assert_int_equal(store_stat(st, key, &size, &err), 0);
    assert_int_equal(size, 100000);
    assert_int_equal(store_get(st, key, 0, STORE_TO_END, test_gather, &c, &err), 0);
    assert_int_equal(c.n, 100000);
    assert_memory_equal(c.p, b, 100000);
    c.n = 0;
    assert_int_equal(store_get(st, key, 4095, 10000, test_gather, &c, &err), 0);
    assert_int_equal(c.n, 10000);
    assert_memory_equal(c.p, b + 4095, 10000);
    c.n = 0;
    assert_int_equal(store_get(st, key, 99990, STORE_TO_END, test_gather, &c, &err), 0);
    assert_int_equal(c.n, 10);
    assert_memory_equal(c.p, b + 99990, 10);
    c.n = 0;
    /* A range past the end is refused, and nothing was delivered. */
    assert_int_equal(store_get(st, key, 99990, 11, test_gather, &c, &err), MR_E_INVALID);
    assert_int_equal(store_get(st, key, 100000, STORE_TO_END, test_gather, &c, &err), MR_E_INVALID);
    assert_int_equal(c.n, 0);
    assert_int_equal(store_verify(st, key, 100000, h, &err), 0);
    assert_int_equal(store_verify(st, key, 99999, h, &err), MR_E_TAMPERED);
    h[0] ^= 1;
    assert_int_equal(store_verify(st, key, 100000, h, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "SHA-256"));
    /* A payload that is not what its hash says is refused. */
    assert_int_equal(store_put_buf(st, key, b, 100000, h, &err), MR_E_TAMPERED);
    h[0] ^= 1;
    assert_int_equal(store_verify(st, key, 100000, h, &err), 0);

    assert_int_equal(store_delete(st, key, &err), 0);
    assert_int_equal(store_stat(st, key, &size, &err), MR_E_NOTFOUND);
    assert_int_equal(store_get(st, key, 0, STORE_TO_END, test_gather, &c, &err), MR_E_NOTFOUND);
    assert_int_equal(store_verify(st, key, 100000, h, &err), MR_E_NOTFOUND);
    assert_int_equal(store_delete(st, key, &err), 0);       /* gone already: fine */
    /* The empty object, from a buffer and from a file. */
    test_store_sha("", 0, h);
    assert_int_equal(store_put_buf(st, key, NULL, 0, NULL, &err), 0);
    assert_int_equal(store_verify(st, key, 0, h, &err), 0);
    assert_int_equal(store_put_buf(st, key, "x", 1, NULL, &err), 0);
    assert_int_equal(store_put_file(st, key, "/dev/null", h, &err), MR_E_INVALID);
    {
        char *dir = th_tempdir("mrs3empty"), path[512];
        snprintf(path, sizeof path, "%s/empty", dir);
        assert_int_equal(th_write_file(path, "", 0), 0);
        assert_int_equal(store_put_file(st, key, path, h, &err), 0);
        th_rmtree(dir);
        free(dir);
    }
    assert_int_equal(store_verify(st, key, 0, h, &err), 0);
    assert_int_equal(store_delete(st, key, &err), 0);
    store_close(st);
    free(c.p);
    free(b);
}

/* Above the threshold the payload goes in parts (5 MiB, S3's minimum): Swift's own log
 * shows the part uploads, and what comes back is the whole file. */
static void test_multipart(void **state)
{
    struct store_s3_options o = opts(NULL);
    size_t n = (12u << 20) + 12345;
    unsigned char *b = pattern(n, 2), h[32];
    struct test_gathered c = { 0 };
    char key[256], path[512], cmd[1024];
    mr_store *st;
    mr_error err;
    char *dir = th_tempdir("mrs3mp");

    (void)state;
    o.multipart_threshold = 5u << 20;
    o.part_size = 5u << 20;
    key_of(key, sizeof key, "big.cms");
    snprintf(path, sizeof path, "%s/big", dir);
    assert_int_equal(th_write_file(path, b, n), 0);
    test_store_sha(b, n, h);
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    assert_int_equal(store_put_file(st, key, path, h, &err), 0);
    assert_int_equal(store_verify(st, key, n, h, &err), 0);
    /* A range across the first part boundary. */
    assert_int_equal(store_get(st, key, (5u << 20) - 100, 200, test_gather, &c, &err), 0);
    assert_int_equal(c.n, 200);
    assert_memory_equal(c.p, b + (5u << 20) - 100, 200);
    /* Swift's proxy log has the request paths (query URL-encoded): three parts, no fourth. */
    snprintf(cmd, sizeof cmd, "grep -q 'PUT /%s/%s%%3FpartNumber%%3D3%%26uploadId' '%s/proxy.log'",
             sw.bucket, key, sw.log_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -q 'PUT /%s/%s%%3FpartNumber%%3D4%%26' '%s/proxy.log'",
             sw.bucket, key, sw.log_dir);
    assert_int_not_equal(system(cmd), 0);
    /* A file that is not what its hash says: refused before completion; nothing stored. */
    h[5] ^= 0x40;
    assert_int_equal(store_put_file(st, "mp-wrong-hash", path, h, &err), MR_E_TAMPERED);
    uint64_t size;
    assert_int_equal(store_stat(st, "mp-wrong-hash", &size, &err), MR_E_NOTFOUND);
    assert_int_equal(store_delete(st, key, &err), 0);
    store_close(st);
    th_rmtree(dir);
    free(dir);
    free(c.p);
    free(b);
}

struct listed {
    char keys[32][300];
    int n;
};

static int on_list(void *arg, const char *key, uint64_t size, mr_error *err)
{
    struct listed *l = arg;
    (void)err;
    (void)size;
    assert_true(l->n < 32);
    snprintf(l->keys[l->n++], sizeof l->keys[0], "%s", key);
    return 0;
}

/* Keys with characters that need URI encoding (in the path and in the list prefix) go
 * and come back unchanged; a listing of more keys than a page holds pages with markers. */
static void test_keys_and_list(void **state)
{
    struct store_s3_options o = opts(NULL);
    const char *names[] = { "a b+c", "a&b=c%25", "ä/ø~å", "x$y,z;@:", "plain", "q?r#s" };
    char base[200], key[400], prefix[300];
    struct listed l = { 0 };
    mr_store *st;
    mr_error err;

    (void)state;
    o.list_page = 2;
    key_of(base, sizeof base, "odd keys+&");
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    for (size_t i = 0; i < 6; i++) {
        unsigned char h[32];
        snprintf(key, sizeof key, "%s/%s", base, names[i]);
        test_store_sha(names[i], strlen(names[i]), h);
        assert_int_equal(store_put_buf(st, key, names[i], strlen(names[i]), h, &err), 0);
        assert_int_equal(store_verify(st, key, strlen(names[i]), h, &err), 0);
    }
    snprintf(prefix, sizeof prefix, "%s/", base);
    assert_int_equal(store_list(st, prefix, on_list, &l, &err), 0);
    assert_int_equal(l.n, 6);
    /* Byte order of the names: "a b+c" < "a&b=c%25" < "plain" < "q?r#s" < "x$y,z;@:" < "ä/ø~å" */
    snprintf(key, sizeof key, "%s/a b+c", base);
    assert_string_equal(l.keys[0], key);
    snprintf(key, sizeof key, "%s/a&b=c%%25", base);
    assert_string_equal(l.keys[1], key);
    snprintf(key, sizeof key, "%s/ä/ø~å", base);
    assert_string_equal(l.keys[5], key);
    l.n = 0;
    snprintf(prefix, sizeof prefix, "%s/a", base);
    assert_int_equal(store_list(st, prefix, on_list, &l, &err), 0);
    assert_int_equal(l.n, 2);
    for (size_t i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "%s/%s", base, names[i]);
        assert_int_equal(store_delete(st, key, &err), 0);
    }
    l.n = 0;
    snprintf(prefix, sizeof prefix, "%s/", base);
    assert_int_equal(store_list(st, prefix, on_list, &l, &err), 0);
    assert_int_equal(l.n, 0);
    store_close(st);
}

/* Wrong secret: open fails at its first request with one line naming the cause. */
static void test_wrong_secret(void **state)
{
    struct store_s3_options o = opts(NULL);
    mr_store *st = NULL;
    mr_error err;

    (void)state;
    o.credentials_file = NULL;
    o.access_key_env = "MAILRET_TEST_S3_ACCESS";
    o.secret_key_env = "MAILRET_TEST_S3_SECRET";
    setenv("MAILRET_TEST_S3_ACCESS", sw.access, 1);
    setenv("MAILRET_TEST_S3_SECRET", "not-the-secret", 1);
    assert_int_equal(store_s3_open(&o, &st, &err), MR_E_AUTH);
    assert_null(st);
    assert_one_line(&err);
    assert_null(strstr(err.msg, "not-the-secret"));
    assert_non_null(strstr(err.msg, "HTTP 403"));
    /* From the environment, right secret: works (the access key holds a ':'). */
    assert_non_null(strchr(sw.access, ':'));
    setenv("MAILRET_TEST_S3_SECRET", sw.secret, 1);
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    store_close(st);
    unsetenv("MAILRET_TEST_S3_SECRET");
    /* Unknown bucket, and a credentials file others may read. */
    o = opts(NULL);
    o.bucket = "no-such-bucket-here";
    assert_int_equal(store_s3_open(&o, &st, &err), MR_E_NOTFOUND);
    assert_one_line(&err);
    {
        char *dir = th_tempdir("mrs3cred"), path[512];
        snprintf(path, sizeof path, "%s/cred", dir);
        assert_int_equal(th_write_file(path, "access_key_id = a\nsecret_access_key = b\n", 40), 0);
        chmod(path, 0644);
        o = opts(NULL);
        o.credentials_file = path;
        assert_int_equal(store_s3_open(&o, &st, &err), MR_E_PERM);
        assert_one_line(&err);
        th_rmtree(dir);
        free(dir);
    }
}

/* Swift ignores Object Lock: the probe says unsupported, and require_object_lock makes
 * open fail with one line. */
static void test_object_lock_unsupported(void **state)
{
    struct store_s3_options o = opts(NULL);
    mr_store *st = NULL;
    mr_error err;

    (void)state;
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    assert_int_equal(store_object_lock(st), STORE_LOCK_UNSUPPORTED);
    store_close(st);
    o.require_object_lock = true;
    st = NULL;
    assert_int_equal(store_s3_open(&o, &st, &err), MR_E_UNSUPPORTED);
    assert_null(st);
    assert_one_line(&err);
    assert_non_null(strstr(err.msg, "Object Lock"));
    assert_non_null(strstr(err.msg, "unsupported"));
}

/* Over TLS (the same Swift behind its own TLS listener): verified against the CA file
 * given; another CA, the system's bundle, or a host name the certificate is not for
 * (127.0.0.1 for a certificate for localhost) fail at once with one line. */
static void test_tls(void **state)
{
    struct store_s3_options o = opts(NULL);
    char key[256], ip_endpoint[64];
    unsigned char h[32];
    mr_store *st = NULL;
    mr_error err;

    (void)state;
    o.endpoint = sw.tls_endpoint;
    o.ca_file = sw.ca_file;
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    key_of(key, sizeof key, "tls.cms");
    test_store_sha("over tls", 8, h);
    assert_int_equal(store_put_buf(st, key, "over tls", 8, h, &err), 0);
    assert_int_equal(store_verify(st, key, 8, h, &err), 0);
    assert_int_equal(store_delete(st, key, &err), 0);
    store_close(st);

    st = NULL;
    o.ca_file = sw.other_ca_file;
    assert_int_equal(store_s3_open(&o, &st, &err), MR_E_TLS);
    assert_null(st);
    assert_one_line(&err);
    assert_non_null(strstr(err.msg, "certificate"));
    o.ca_file = NULL;
    assert_int_equal(store_s3_open(&o, &st, &err), MR_E_TLS);
    assert_one_line(&err);
    assert_non_null(strstr(err.msg, "certificate"));
    snprintf(ip_endpoint, sizeof ip_endpoint, "https://127.0.0.1:%s", sw.tls_port);
    o.endpoint = ip_endpoint;
    o.ca_file = sw.ca_file;
    assert_int_equal(store_s3_open(&o, &st, &err), MR_E_TLS);
    assert_one_line(&err);
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    /* Plain HTTP to the TLS port is not silently anything else. */
    snprintf(ip_endpoint, sizeof ip_endpoint, "http://localhost:%s", sw.tls_port);
    o.endpoint = ip_endpoint;
    assert_int_not_equal(store_s3_open(&o, &st, &err), 0);
    assert_one_line(&err);
}

/* ---- the fault proxy (tests/tools/faultproxy.py) between the driver and Swift ---- */

struct fproxy {
    pid_t pid;
    int port;
};

static void fproxy_start(struct fproxy *fp, int listen_port, const char *const extra[])
{
    const char *src = getenv("MAILRET_SOURCE_DIR");
    char script[512], target[16], lport[16], line[64];
    const char *argv[24];
    int pipefd[2], n = 0;
    FILE *f;

    assert_non_null(src);
    snprintf(script, sizeof script, "%s/tests/tools/faultproxy.py", src);
    snprintf(target, sizeof target, "%s", sw.port);
    snprintf(lport, sizeof lport, "%d", listen_port);
    argv[n++] = "python3";
    argv[n++] = script;
    argv[n++] = "--target-port";
    argv[n++] = target;
    argv[n++] = "--listen-port";
    argv[n++] = lport;
    argv[n++] = "--lifetime";
    argv[n++] = "300";
    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    assert_int_equal(pipe(pipefd), 0);
    fp->pid = fork();
    assert_true(fp->pid >= 0);
    if (fp->pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    f = fdopen(pipefd[0], "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    fp->port = atoi(line);
    assert_true(fp->port > 0);
}

static void fproxy_stop(struct fproxy *fp)
{
    if (fp->pid > 0) {
        kill(fp->pid, SIGKILL);
        waitpid(fp->pid, NULL, 0);
        fp->pid = 0;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct killer {
    struct fproxy *fp;
    double after;
    int restart;        /* non-zero: start it again on the same port this much later (ms) */
};

static void *kill_later(void *arg)
{
    struct killer *k = arg;
    struct timespec ts = { (time_t)k->after, (long)((k->after - (time_t)k->after) * 1e9) };

    nanosleep(&ts, NULL);
    {
        int port = k->fp->port;
        fproxy_stop(k->fp);
        if (k->restart > 0) {
            struct timespec r = { k->restart / 1000, (k->restart % 1000) * 1000000L };
            nanosleep(&r, NULL);
            fproxy_start(k->fp, port, NULL);
        }
    }
    return NULL;
}

/* Swift goes away in the middle of a multipart upload (every answer is slowed down to a
 * second, and the proxy is killed by pid after two): the driver retries a bounded number
 * of times, then fails with one line; no object appears. */
static void test_outage_mid_upload(void **state)
{
    static const char *const slow[] = { "--mode", "delay", "--delay", "1.0", NULL };
    struct store_s3_options o;
    struct fproxy fp;
    struct killer k;
    char endpoint[64], key[256];
    size_t n = (11u << 20);
    unsigned char *b = pattern(n, 3), h[32];
    pthread_t t;
    mr_store *st, *direct;
    mr_error err;
    uint64_t size;
    double t0, took;
    int rc;

    (void)state;
    fproxy_start(&fp, 0, slow);
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", fp.port);
    o = opts(endpoint);
    o.multipart_threshold = 5u << 20;
    o.part_size = 5u << 20;
    o.retries = 3;
    o.backoff_max_ms = 400;
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    key_of(key, sizeof key, "outage.cms");
    test_store_sha(b, n, h);
    k.fp = &fp;
    k.after = 2.0;
    k.restart = 0;
    assert_int_equal(pthread_create(&t, NULL, kill_later, &k), 0);
    t0 = now();
    rc = store_put_buf(st, key, b, n, h, &err);
    took = now() - t0;
    pthread_join(t, NULL);
    assert_true(rc == MR_E_NETWORK || rc == MR_E_TIMEOUT);
    assert_one_line(&err);
    assert_non_null(strstr(err.msg, "after 4 attempts"));
    assert_non_null(strstr(err.msg, key));
    /* Bounded: 4 attempts, backoff at most 0.4 s each, connection refused at once. */
    assert_true(took < 30.0);
    store_close(st);
    o = opts(NULL);
    assert_int_equal(store_s3_open(&o, &direct, &err), 0);
    assert_int_equal(store_stat(direct, key, &size, &err), MR_E_NOTFOUND);
    store_close(direct);
    free(b);
}

/* A short outage within the retry budget: the put succeeds once the store is back. */
static void test_outage_recovered(void **state)
{
    struct store_s3_options o;
    struct fproxy fp;
    struct killer k;
    char endpoint[64], key[256];
    unsigned char *b = pattern(70000, 4), h[32];
    pthread_t t;
    mr_store *st;
    mr_error err;
    int rc;

    (void)state;
    fproxy_start(&fp, 0, NULL);
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", fp.port);
    o = opts(endpoint);
    /* At least 10 s of retries (backoff 250-500 ms each): the proxy restarting 1.5 s later
     * is a Python process, which a busy host can take seconds more to bring up. */
    o.retries = 40;
    o.backoff_max_ms = 500;
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    fproxy_stop(&fp);                   /* down now; back in 1.5 s on the same port */
    fp.port = atoi(endpoint + strlen("http://127.0.0.1:"));
    k.fp = &fp;
    k.after = 0.0;
    k.restart = 1500;
    assert_int_equal(pthread_create(&t, NULL, kill_later, &k), 0);
    key_of(key, sizeof key, "recovered.cms");
    test_store_sha(b, 70000, h);
    rc = store_put_buf(st, key, b, 70000, h, &err);
    pthread_join(t, NULL);              /* before any assert: the thread uses fp and k */
    assert_int_equal(rc, 0);
    assert_int_equal(store_verify(st, key, 70000, h, &err), 0);
    assert_int_equal(store_delete(st, key, &err), 0);
    store_close(st);
    fproxy_stop(&fp);
    free(b);
}

/* Every connection is cut after 60,000 bytes from the server: a get that broke off
 * resumes at the first byte it has not delivered (a Range request on a new connection)
 * and the bytes come out exactly once, in order, whole and ranged. */
static void test_get_resumes(void **state)
{
    static const char *const cut[] = { "--mode", "cut", "--after", "60000", NULL };
    struct store_s3_options o = opts(NULL);
    size_t n = 200000;
    unsigned char *b = pattern(n, 5), h[32];
    struct test_gathered c = { 0 };
    struct fproxy fp;
    char endpoint[64], key[256];
    mr_store *direct, *st;
    mr_error err;

    (void)state;
    key_of(key, sizeof key, "resume.cms");
    test_store_sha(b, n, h);
    assert_int_equal(store_s3_open(&o, &direct, &err), 0);
    assert_int_equal(store_put_buf(direct, key, b, n, h, &err), 0);
    fproxy_start(&fp, 0, cut);
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", fp.port);
    o = opts(endpoint);
    o.retries = 8;
    o.backoff_max_ms = 100;
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    assert_int_equal(store_get(st, key, 0, STORE_TO_END, test_gather, &c, &err), 0);
    assert_int_equal(c.n, n);
    assert_memory_equal(c.p, b, n);
    c.n = 0;
    assert_int_equal(store_get(st, key, 1000, 150000, test_gather, &c, &err), 0);
    assert_int_equal(c.n, 150000);
    assert_memory_equal(c.p, b + 1000, 150000);
    assert_int_equal(store_verify(st, key, n, h, &err), 0);
    /* With too few attempts the same get fails, with one line, instead of returning less. */
    store_close(st);
    o.retries = 1;
    assert_int_equal(store_s3_open(&o, &st, &err), 0);
    c.n = 0;
    assert_int_not_equal(store_get(st, key, 0, STORE_TO_END, test_gather, &c, &err), 0);
    assert_one_line(&err);
    assert_true(c.n < n);
    store_close(st);
    fproxy_stop(&fp);
    assert_int_equal(store_delete(direct, key, &err), 0);
    store_close(direct);
    free(c.p);
    free(b);
}

/* Every answer a 503: a bounded number of attempts (the proxy's record of what the client
 * sent counts them), then one line saying so. */
static void test_503_bounded(void **state)
{
    char record[512];
    const char *const args[] = { "--replace", "HTTP/1.1 200 OK", "HTTP/1.1 503 OK",
                                 "--record-client", record, NULL };
    struct store_s3_options o;
    struct fproxy fp;
    char endpoint[64];
    char *dir = th_tempdir("mrs3rec");
    unsigned char *rec;
    size_t len = 0, count = 0;
    mr_store *st = NULL;
    mr_error err;

    (void)state;
    snprintf(record, sizeof record, "%s/client", dir);
    fproxy_start(&fp, 0, args);
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", fp.port);
    o = opts(endpoint);
    o.retries = 3;
    o.backoff_max_ms = 200;
    assert_int_equal(store_s3_open(&o, &st, &err), MR_E_NETWORK);
    assert_one_line(&err);
    assert_non_null(strstr(err.msg, "HTTP 503"));
    assert_non_null(strstr(err.msg, "after 4 attempts"));
    fproxy_stop(&fp);
    rec = th_read_file(record, &len);
    assert_non_null(rec);
    for (const unsigned char *p = rec; (p = memmem(p, len - (size_t)(p - rec), "GET /", 5)) != NULL; p += 5)
        count++;
    assert_int_equal(count, 4);
    free(rec);
    th_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_keys_and_list),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_object_lock_unsupported),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_outage_mid_upload),
        cmocka_unit_test(test_outage_recovered),
        cmocka_unit_test(test_get_resumes),
        cmocka_unit_test(test_503_bounded),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

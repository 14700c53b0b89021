/* test_store_s3config.c — store_s3_open refuses bad options and bad credentials with one
 * line naming the cause, before any request: the endpoint is a closed loopback port, so
 * an option that slipped through would show as a network error instead. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "helpers/test_helpers.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = th_tempdir("mrs3cfg");
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    th_rmtree(dir);
    free(dir);
    return 0;
}

static const char *cred(const char *name, const char *text, mode_t mode)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(th_write_file(path, text, strlen(text)), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static struct store_s3_options base(void)
{
    struct store_s3_options o = { 0 };
    o.endpoint = "http://127.0.0.1:1";
    o.region = "eu-north-1";
    o.bucket = "mailret-archive";
    o.path_style = true;
    o.access_key_env = "MAILRET_TEST_NO_SUCH_ACCESS";
    o.secret_key_env = "MAILRET_TEST_NO_SUCH_SECRET";
    o.retries = -1;             /* no retries: a request would fail at once */
    return o;
}

static void refused(const struct store_s3_options *o, int code, const char *needle)
{
    mr_store *st = NULL;
    mr_error err;
    int rc = store_s3_open(o, &st, &err);

    print_message("refused: %s\n", err.msg);
    assert_int_equal(rc, code);
    assert_null(st);
    assert_null(strchr(err.msg, '\n'));
    if (needle != NULL)
        assert_non_null(strstr(err.msg, needle));
    assert_null(strstr(err.msg, "s3cr3t"));
}

static void test_bad_options(void **state)
{
    struct store_s3_options o;
    const char *bad_endpoints[] = { "ftp://h", "https://", "https://h/path", "h:443",
                                    "https://user@h", "https://h?x" };

    (void)state;
    for (size_t i = 0; i < sizeof bad_endpoints / sizeof bad_endpoints[0]; i++) {
        o = base();
        o.endpoint = bad_endpoints[i];
        refused(&o, MR_E_CONFIG, "endpoint");
    }
    o = base();
    o.bucket = "Upper_Case";
    refused(&o, MR_E_CONFIG, "bucket");
    o.bucket = "ab";
    refused(&o, MR_E_CONFIG, "bucket");
    o = base();
    o.region = "eu:north";
    refused(&o, MR_E_CONFIG, "region");
    o.region = NULL;
    refused(&o, MR_E_CONFIG, "region");
    o = base();
    o.part_size = (5u << 20) - 1;
    refused(&o, MR_E_CONFIG, "part_size");
    o.part_size = (5ull << 30) + 1;
    refused(&o, MR_E_CONFIG, "part_size");
    o = base();
    o.multipart_threshold = (5ull << 30) + 1;
    refused(&o, MR_E_CONFIG, "multipart_threshold");
}

static void test_bad_credentials(void **state)
{
    struct store_s3_options o = base();

    (void)state;
    /* Neither file nor environment. */
    refused(&o, MR_E_NOTFOUND, "s3 credentials: ");
    o.credentials_file = cred("open", "access_key_id = a\nsecret_access_key = s3cr3t\n", 0644);
    refused(&o, MR_E_PERM, "0644");
    o.credentials_file = cred("nosecret", "access_key_id = a\n", 0600);
    refused(&o, MR_E_CONFIG, "secret_access_key");
    o.credentials_file = cred("unknown", "access_key_id = a\nsecret = s3cr3t\n", 0600);
    refused(&o, MR_E_CONFIG, "unknown");
    o.credentials_file = cred("twice", "access_key_id = a\naccess_key_id = b\nsecret_access_key = s3cr3t\n", 0600);
    refused(&o, MR_E_CONFIG, "repeated");
    o.credentials_file = cred("noeq", "access_key_id a\nsecret_access_key = s3cr3t\n", 0600);
    refused(&o, MR_E_CONFIG, "'='");
    o.credentials_file = cred("empty", "access_key_id =\nsecret_access_key = s3cr3t\n", 0600);
    refused(&o, MR_E_CONFIG, NULL);
    o.credentials_file = "/nonexistent/credentials";
    refused(&o, MR_E_NOTFOUND, NULL);
    /* A good file (comments, blanks, CRLF, an access key with ':'): the options pass and
     * the first request is made, to a port where nothing listens. */
    o.credentials_file = cred("good", "# store\r\n\r\n  access_key_id = acct:user \r\nsecret_access_key=s3cr3t\r\n", 0600);
    refused(&o, MR_E_NETWORK, NULL);
    /* From the environment. */
    o.credentials_file = NULL;
    setenv("MAILRET_TEST_NO_SUCH_ACCESS", "acct:user", 1);
    refused(&o, MR_E_NOTFOUND, NULL);       /* the secret's variable is still unset */
    setenv("MAILRET_TEST_NO_SUCH_SECRET", "s3cr3t", 1);
    refused(&o, MR_E_NETWORK, NULL);
    unsetenv("MAILRET_TEST_NO_SUCH_ACCESS");
    unsetenv("MAILRET_TEST_NO_SUCH_SECRET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_bad_credentials),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

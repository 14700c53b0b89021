/*
 * test_imap_sasl.c — the SASL bytes mailret sends and its reading of OAuth error
 * challenges.  The expected base64 strings were computed independently (Python's
 * base64 module over the byte layouts of RFC 4616, RFC 7628 and Google's XOAUTH2
 * documentation, whose own example is the XOAUTH2 vector), not by this code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_sasl.h"

static void expect_initial(enum imap_auth mech, const char *user, const char *secret,
                           const char *want)
{
    char *b64 = NULL;
    mr_error err;

    assert_int_equal(imap_sasl_initial(mech, user, secret, &b64, &err), 0);
    assert_string_equal(b64, want);
    free(b64);
}

static void test_initial_responses(void **state)
{
    (void)state;
    assert_string_equal(imap_sasl_name(IMAP_AUTH_PLAIN), "PLAIN");
    assert_string_equal(imap_sasl_name(IMAP_AUTH_XOAUTH2), "XOAUTH2");
    assert_string_equal(imap_sasl_name(IMAP_AUTH_OAUTHBEARER), "OAUTHBEARER");
    assert_null(imap_sasl_name(IMAP_AUTH_LOGIN));
    /* PLAIN: empty authzid, NUL user NUL password (a password may hold a blank). */
    expect_initial(IMAP_AUTH_PLAIN, "u", "p w", "AHUAcCB3");
    /* Google's published XOAUTH2 example. */
    expect_initial(IMAP_AUTH_XOAUTH2, "someuser@example.com",
                   "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
                   "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
                   "YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
    /* OAUTHBEARER: gs2-header with the user's ',' and '=' escaped (RFC 5801). */
    expect_initial(IMAP_AUTH_OAUTHBEARER, "a=b,c@x.dk", "tok-1.2_3~4+5/6==",
                   "bixhPWE9M0RiPTJDY0B4LmRrLAFhdXRoPUJlYXJlciB0b2stMS4yXzN+NCs1LzY9PQEB");
}

static void test_refused_credentials(void **state)
{
    char *b64 = (char *)"x";
    mr_error err;

    (void)state;
    /* A token that is not a b64token would break the ^A-separated layout. */
    assert_int_equal(imap_sasl_initial(IMAP_AUTH_XOAUTH2, "u", "abc\x01" "auth=x", &b64, &err),
                     MR_E_INVALID);
    assert_null(b64);
    assert_null(strstr(err.msg, "abc"));
    assert_int_equal(imap_sasl_initial(IMAP_AUTH_OAUTHBEARER, "u", "has space", &b64, &err),
                     MR_E_INVALID);
    assert_int_equal(imap_sasl_initial(IMAP_AUTH_OAUTHBEARER, "u", "=abc", &b64, &err),
                     MR_E_INVALID);
    assert_int_equal(imap_sasl_initial(IMAP_AUTH_OAUTHBEARER, "u", "ab=c", &b64, &err),
                     MR_E_INVALID);
    assert_int_equal(imap_sasl_initial(IMAP_AUTH_XOAUTH2, "u\x01" "x", "tok", &b64, &err),
                     MR_E_INVALID);
    assert_int_equal(imap_sasl_initial(IMAP_AUTH_PLAIN, "", "p", &b64, &err), MR_E_INVALID);
    assert_int_equal(imap_sasl_initial(IMAP_AUTH_PLAIN, "u", "", &b64, &err), MR_E_INVALID);
    assert_int_equal(imap_sasl_initial(IMAP_AUTH_LOGIN, "u", "p", &b64, &err), MR_E_INVALID);
}

static void expect_status(const char *b64, const char *want)
{
    char buf[48] = "garbage";

    imap_sasl_error_status(b64, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_error_status(void **state)
{
    (void)state;
    expect_status("eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJ4In0=", "invalid_token");
    expect_status("eyJzdGF0dXMiOjQwMX0=", "401");                 /* a number */
    expect_status("eyJzdGF0dXMiOiJiYWQgdmFsdWU7IHJtIn0=", "");   /* unsafe text dropped */
    expect_status("bm90IGpzb24=", "");                           /* not JSON */
    expect_status("not base64!", "");
    expect_status("", "");
    expect_status(NULL, "");
}

static void test_mentions(void **state)
{
    const char *tok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ";

    (void)state;
    assert_true(imap_sasl_mentions("invalid token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ", tok));
    /* a piece of it is enough: the signature alone, or 12 bytes of the middle */
    assert_true(imap_sasl_mentions("bad signature c2lnbmF0dXJlLXBhcnQ", tok));
    assert_true(imap_sasl_mentions("x=UzI1NiJ9.eyJz", tok));
    assert_false(imap_sasl_mentions("Authentication failed.", tok));
    assert_false(imap_sasl_mentions("eyJhbGciOiJ", tok));       /* 11 bytes: not yet */
    /* a short secret must appear whole */
    assert_true(imap_sasl_mentions("wrong: hunter2!", "hunter2"));
    assert_false(imap_sasl_mentions("wrong: hunter", "hunter2"));
    assert_false(imap_sasl_mentions(NULL, tok));
    assert_false(imap_sasl_mentions("x", NULL));
    assert_false(imap_sasl_mentions("x", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_responses),
        cmocka_unit_test(test_refused_credentials),
        cmocka_unit_test(test_error_status),
        cmocka_unit_test(test_mentions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

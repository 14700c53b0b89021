/* test_store_sigv4.c — the parts of a SigV4 request mailret computes itself (store/s3_util.h:
 * canonical URI, sorted canonical query, payload hash), checked against the worked
 * examples in AWS's S3 API reference ("Signature Calculations for the Authorization
 * Header: Transferring Payload in a Single Chunk", examplebucket, 20130524).  The test
 * assembles each canonical request around them and computes the signature with its own
 * HMAC chain; a wrong byte anywhere makes the published signature differ. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "store/s3_util.h"

static const char SECRET[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
static const char EMPTY_SHA[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int n = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg),
                         out, &n));
    assert_int_equal(n, 32);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* The signature of a canonical request for examplebucket on 2013-05-24, us-east-1. */
static void signature(const char *canonical, char out[65])
{
    unsigned char h[32], k[32];
    char hh[65], sts[512], key[64];
    unsigned int n = 0;

    assert_non_null(EVP_Digest(canonical, strlen(canonical), h, &n, EVP_sha256(), NULL) ? h : NULL);
    hex(h, 32, hh);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n%s", hh);
    snprintf(key, sizeof key, "AWS4%s", SECRET);
    hmac(key, strlen(key), "20130524", k);
    hmac(k, 32, "us-east-1", k);
    hmac(k, 32, "s3", k);
    hmac(k, 32, "aws4_request", k);
    hmac(k, 32, sts, h);
    hex(h, 32, out);
}

/* GET /test.txt with Range: the empty payload's hash, no query. */
static void test_get_object(void **state)
{
    char payload[65], canon[1024], sig[65];
    char *uri = s3_uri_encode("test.txt", true), *query = s3_canonical_query(NULL, 0);

    (void)state;
    s3_sha256_hex("", 0, payload);
    assert_string_equal(payload, EMPTY_SHA);
    snprintf(canon, sizeof canon,
             "GET\n/%s\n%s\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
             "x-amz-content-sha256:%s\nx-amz-date:20130524T000000Z\n\n"
             "host;range;x-amz-content-sha256;x-amz-date\n%s", uri, query, payload, payload);
    signature(canon, sig);
    assert_string_equal(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    free(uri);
    free(query);
}

/* PUT /test$file.text: '$' in a key is percent-encoded; the payload hash is of the body. */
static void test_put_object(void **state)
{
    static const char body[] = "Welcome to Amazon S3.";
    char payload[65], canon[1024], sig[65];
    char *uri = s3_uri_encode("test$file.text", true);

    (void)state;
    assert_string_equal(uri, "test%24file.text");
    s3_sha256_hex(body, strlen(body), payload);
    assert_string_equal(payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    snprintf(canon, sizeof canon,
             "PUT\n/%s\n\ndate:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n"
             "x-amz-content-sha256:%s\nx-amz-date:20130524T000000Z\n"
             "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
             "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n%s",
             uri, payload, payload);
    signature(canon, sig);
    assert_string_equal(sig, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    free(uri);
}

/* GET /?lifecycle: a parameter without a value is "name=". */
static void test_get_lifecycle(void **state)
{
    struct s3_param q[] = { { "lifecycle", NULL } };
    char canon[1024], sig[65];
    char *query = s3_canonical_query(q, 1);

    (void)state;
    assert_string_equal(query, "lifecycle=");
    snprintf(canon, sizeof canon,
             "GET\n/\n%s\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:%s\n"
             "x-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n%s",
             query, EMPTY_SHA, EMPTY_SHA);
    signature(canon, sig);
    assert_string_equal(sig, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    free(query);
}

/* GET /?max-keys=2&prefix=J, the parameters given out of order: they must come sorted. */
static void test_list_objects_sorted(void **state)
{
    struct s3_param q[] = { { "prefix", "J" }, { "max-keys", "2" } };
    char canon[1024], sig[65];
    char *query = s3_canonical_query(q, 2);

    (void)state;
    assert_string_equal(query, "max-keys=2&prefix=J");
    snprintf(canon, sizeof canon,
             "GET\n/\n%s\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:%s\n"
             "x-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n%s",
             query, EMPTY_SHA, EMPTY_SHA);
    signature(canon, sig);
    assert_string_equal(sig, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    free(query);
}

/* The encoding rules themselves (AWS: "URI encode every byte except the unreserved
 * characters A-Z a-z 0-9 - . _ ~", upper-case hex, '/' kept only in the path). */
static void test_encoding_rules(void **state)
{
    struct s3_param q[] = { { "uploadId", "a/b+c=d&e f" }, { "partNumber", "10" },
                            { "b", "2" }, { "b", "1" } };
    char *p = s3_uri_encode("2026-12/vol 1+ä~_.-*'()!,;:@=&$", true);
    char *qs = s3_canonical_query(q, 4);

    (void)state;
    assert_string_equal(p, "2026-12/vol%201%2B%C3%A4~_.-%2A%27%28%29%21%2C%3B%3A%40%3D%26%24");
    assert_string_equal(qs, "b=1&b=2&partNumber=10&uploadId=a%2Fb%2Bc%3Dd%26e%20f");
    free(p);
    free(qs);
}

static void test_xml(void **state)
{
    static const char x[] = "<?xml version=\"1.0\"?>\n<ListBucketResult xmlns=\"x\"><Contents>"
                            "<Key>a&amp;b&lt;&#39;</Key><Size>7</Size></Contents><Key/></ListBucketResult>";
    char root[64], *t;
    size_t pos = 0;

    (void)state;
    s3_xml_root(x, strlen(x), root, sizeof root);
    assert_string_equal(root, "ListBucketResult");
    t = s3_xml_text(x, strlen(x), &pos, "Key");
    assert_string_equal(t, "a&b<'");
    free(t);
    t = s3_xml_text(x, strlen(x), &pos, "Key");
    assert_string_equal(t, "");
    free(t);
    assert_null(s3_xml_text(x, strlen(x), &pos, "Key"));
}

/* The library linked is curl's OpenSSL flavour (store/CMakeLists.txt), with SigV4. */
static void test_curl_flavour(void **state)
{
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

    (void)state;
    assert_non_null(v->ssl_version);
    assert_true(strncmp(v->ssl_version, "OpenSSL/3", 9) == 0);
    assert_true(v->version_num >= 0x074b00);     /* 7.75: CURLOPT_AWS_SIGV4 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_object),
        cmocka_unit_test(test_put_object),
        cmocka_unit_test(test_get_lifecycle),
        cmocka_unit_test(test_list_objects_sorted),
        cmocka_unit_test(test_encoding_rules),
        cmocka_unit_test(test_xml),
        cmocka_unit_test(test_curl_flavour),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* store_s3.c — the S3 driver (store.h) on libcurl.  curl signs every request with SigV4
 * (CURLOPT_AWS_SIGV4); what curl 7.88 does not do is done here: the payload's SHA-256 is
 * sent and signed as x-amz-content-sha256, query parameters are sorted and encoded
 * (s3_util.c), and the access key goes through CURLOPT_USERNAME so that one containing
 * ':' (Swift's "account:user") is not split.  No request runs without a connect timeout,
 * a total timeout and a low-speed limit; a 5xx answer or a network error is retried with
 * bounded exponential backoff, and a get that broke off resumes where it stopped. */
#include "store/store_int.h"
#include "store/s3_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/secret.h"

#define ERRBODY_MAX (64 * 1024)
#define MIN_PART (5ull << 20)
#define MAX_SINGLE (5ull << 30)     /* S3's largest single PUT, and largest part */
#define MAX_PARTS 10000

struct s3_store {
    CURL *curl;
    char *base;             /* scheme://host[:port][/bucket]: requests append /key */
    char *bucket;
    char *sigv4;            /* "aws:amz:<region>:s3" */
    char *access, *secret;
    char *ca_file;
    uint64_t threshold, part_size;
    long connect_timeout, request_timeout, low_speed_time;
    int retries, backoff_max_ms;
    char list_page[16];
    enum store_lock_state lock;
    bool governance;        /* retention mode of locked puts */
};

struct buf {
    char *p;
    size_t n, cap;
};

static int buf_add(struct buf *b, const void *data, size_t len, size_t max)
{
    if (b->n + len > max)
        len = max > b->n ? max - b->n : 0;
    if (b->n + len + 1 > b->cap) {
        size_t cap = (b->n + len + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    b->p[b->n] = '\0';
    return 0;
}

struct req {
    const char *method;         /* GET HEAD PUT POST DELETE */
    const char *key;            /* NULL: the bucket itself */
    const struct s3_param *q;
    size_t nq;
    const unsigned char *body;  /* what a PUT or POST sends (may be NULL with len 0) */
    size_t body_len;
    const char *content_type;
    const char *extra[3];       /* more header lines ("Name: value"), NULL-padded */
    char payload_hex[65];
    bool ranged;                /* GET: a Range from offset, length */
    uint64_t offset, length;
    store_data_fn fn;           /* GET: stream 2xx bodies here; NULL: collect into resp */
    void *arg;
    size_t resp_max;
    /* results */
    long status;
    char etag[160];
    bool have_total;
    uint64_t total;             /* from Content-Range */
    curl_off_t content_length;
    struct buf resp;
    /* transfer state */
    size_t sent;
    uint64_t delivered;         /* bytes given to fn, over all attempts */
    uint64_t skip;              /* a 200 answer to a Range: bytes before the range */
    bool first_write;
    int cb_rc;
    mr_error *cb_err;
};

static bool ok_status(long s) { return s >= 200 && s < 300; }

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    size_t len = size * n;

    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {    /* a new response (100, then 200) */
        const char *sp = memchr(data, ' ', len);
        r->status = sp != NULL ? strtol(sp + 1, NULL, 10) : 0;
        r->etag[0] = '\0';
        r->have_total = false;
    } else if (len > 5 && strncasecmp(data, "ETag:", 5) == 0) {
        size_t i = 5, k = 0;
        while (i < len && (data[i] == ' ' || data[i] == '\t'))
            i++;
        while (i < len && data[i] != '\r' && data[i] != '\n' && k + 1 < sizeof r->etag)
            r->etag[k++] = data[i++];
        r->etag[k] = '\0';
    } else if (len > 14 && strncasecmp(data, "Content-Range:", 14) == 0) {
        const char *slash = memchr(data, '/', len);
        if (slash != NULL && isdigit((unsigned char)slash[1])) {
            r->total = strtoull(slash + 1, NULL, 10);
            r->have_total = true;
        }
    }
    return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    size_t len = size * n, give;

    if (r->first_write) {
        r->first_write = false;
        if (r->fn != NULL && ok_status(r->status) && r->ranged && r->have_total &&
            r->length != STORE_TO_END && r->offset + r->length > r->total) {
            r->cb_rc = mr_error_set(r->cb_err, MR_E_INVALID,
                                    "range %llu+%llu outside the object's %llu bytes",
                                    (unsigned long long)r->offset,
                                    (unsigned long long)r->length,
                                    (unsigned long long)r->total);
            return 0;
        }
        /* A server that ignored the Range sends the object from its start. */
        if (r->fn != NULL && r->status == 200)
            r->skip = r->offset + r->delivered;
    }
    if (r->fn == NULL || !ok_status(r->status)) {
        if (buf_add(&r->resp, data, len, r->resp_max) != 0) {
            r->cb_rc = mr_error_set(r->cb_err, MR_E_NOMEM, "out of memory");
            return 0;
        }
        return len;
    }
    if (r->skip > 0) {
        size_t k = r->skip < len ? (size_t)r->skip : len;
        r->skip -= k;
        data += k;
        give = len - k;
    } else {
        give = len;
    }
    if (r->length != STORE_TO_END && r->length - r->delivered < give)
        give = (size_t)(r->length - r->delivered);
    if (give > 0) {
        int rc = r->fn(r->arg, data, give, r->cb_err);
        if (rc != 0) {
            r->cb_rc = rc;
            return 0;
        }
        r->delivered += give;
    }
    return len;
}

static size_t on_read(char *dest, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    size_t want = size * n, left = r->body_len - r->sent;

    if (want > left)
        want = left;
    if (want == 0)
        return 0;
    memcpy(dest, r->body + r->sent, want);
    r->sent += want;
    return want;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
    struct req *r = arg;

    if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
        return CURL_SEEKFUNC_FAIL;
    r->sent = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

static bool retryable_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static bool retryable_status(long s)
{
    return s == 500 || s == 502 || s == 503 || s == 504 || s == 429;
}

/* Printable ASCII of at most max bytes: a server's message goes into a one-line error. */
static void clean(char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] && i < max; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            s[i] = ' ';
    s[i] = '\0';
}

/* The error of an HTTP answer: code and message from S3's <Error> body when there is one. */
static int http_error(struct req *r, mr_error *err)
{
    size_t pos = 0;
    char *code = r->resp.p ? s3_xml_text(r->resp.p, r->resp.n, &pos, "Code") : NULL;
    char *msg;
    int rc;

    pos = 0;
    msg = r->resp.p ? s3_xml_text(r->resp.p, r->resp.n, &pos, "Message") : NULL;
    if (code != NULL)
        clean(code, 64);
    if (msg != NULL)
        clean(msg, 200);
    if (r->status == 404)
        rc = MR_E_NOTFOUND;
    else if (r->status == 401 || r->status == 403)
        rc = MR_E_AUTH;
    else if (r->status == 416)
        rc = MR_E_INVALID;
    else if (r->status >= 500)
        rc = MR_E_NETWORK;
    else
        rc = MR_E_PROTOCOL;
    if (r->status == 416)
        mr_error_set(err, rc, "range %llu+ outside the object (HTTP 416)",
                     (unsigned long long)r->offset);
    else
        mr_error_set(err, rc, "HTTP %ld%s%s%s%s", r->status, code ? " " : "", code ? code : "",
                     msg && *msg ? ": " : "", msg && *msg ? msg : "");
    free(code);
    free(msg);
    return rc;
}

static void backoff(const struct s3_store *s, int attempt)
{
    long ms = 250L << (attempt < 10 ? attempt : 10);
    unsigned char j = 0;
    struct timespec ts;

    if (ms > s->backoff_max_ms)
        ms = s->backoff_max_ms;
    if (RAND_bytes(&j, 1) == 1)
        ms = ms / 2 + (ms / 2) * j / 255;   /* jitter: between half and all of it */
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static char *make_url(const struct s3_store *s, const struct req *r)
{
    char *key = r->key ? s3_uri_encode(r->key, true) : strdup("");
    char *query = s3_canonical_query(r->q, r->nq);
    char *url = NULL;
    size_t n;

    if (key != NULL && query != NULL) {
        n = strlen(s->base) + strlen(key) + strlen(query) + 4;
        url = malloc(n);
        if (url != NULL)
            snprintf(url, n, "%s/%s%s%s", s->base, key, *query ? "?" : "", query);
    }
    free(key);
    free(query);
    return url;
}

/* One request, retried as the options say.  0 only for a 2xx answer. */
static int perform(struct s3_store *s, struct req *r, mr_error *err)
{
    char *url = make_url(s, r);
    char hdr[128], range[64], ebuf[CURL_ERROR_SIZE];
    int attempt, rc = 0;
    CURLcode res = CURLE_OK;

    if (url == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (r->payload_hex[0] == '\0')
        s3_sha256_hex(r->body ? (const void *)r->body : "", r->body_len, r->payload_hex);
    if (r->resp_max == 0)
        r->resp_max = ERRBODY_MAX;
    r->cb_err = err;
    for (attempt = 0; attempt <= s->retries; attempt++) {
        struct curl_slist *h = NULL, *h2;
        CURL *c = s->curl;

        if (attempt > 0)
            backoff(s, attempt - 1);
        r->status = 0;
        r->etag[0] = '\0';
        r->have_total = false;
        r->resp.n = 0;
        r->sent = 0;
        r->skip = 0;
        r->first_write = true;
        r->cb_rc = 0;
        curl_easy_reset(c);
        snprintf(hdr, sizeof hdr, "x-amz-content-sha256: %s", r->payload_hex);
        h = curl_slist_append(NULL, hdr);
        if (h != NULL && r->content_type != NULL) {
            char ct[96];
            snprintf(ct, sizeof ct, "Content-Type: %s", r->content_type);
            h2 = curl_slist_append(h, ct);
            h = h2;
        }
        for (size_t x = 0; h != NULL && x < 3 && r->extra[x] != NULL; x++) {
            h2 = curl_slist_append(h, r->extra[x]);
            if (h2 == NULL)
                curl_slist_free_all(h);
            h = h2;
        }
        if (h == NULL) {
            free(url);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        ebuf[0] = '\0';
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
        curl_easy_setopt(c, CURLOPT_USERNAME, s->access);
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->secret);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, s->connect_timeout);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, s->request_timeout);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->low_speed_time);
        if (s->ca_file != NULL)
            curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        if (strcmp(r->method, "PUT") == 0) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, r);
            curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        } else if (strcmp(r->method, "POST") == 0) {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? (const char *)r->body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        } else if (strcmp(r->method, "HEAD") == 0) {
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else if (strcmp(r->method, "DELETE") == 0) {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
        }
        if (r->ranged || (r->fn != NULL && r->delivered > 0)) {
            /* A resumed get asks only for what it has not delivered yet. */
            uint64_t from = r->offset + r->delivered;
            if (r->length == STORE_TO_END)
                snprintf(range, sizeof range, "%llu-", (unsigned long long)from);
            else
                snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)from,
                         (unsigned long long)(r->offset + r->length - 1));
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        res = curl_easy_perform(c);
        curl_slist_free_all(h);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->cb_rc != 0) {
            rc = r->cb_rc;
            break;
        }
        if (res == CURLE_OK && ok_status(r->status)) {
            if (r->fn != NULL && r->length != STORE_TO_END && r->delivered < r->length) {
                /* Fewer bytes than asked for: the object is shorter than the range. */
                rc = mr_error_set(err, MR_E_INVALID,
                                  "range %llu+%llu outside the object",
                                  (unsigned long long)r->offset, (unsigned long long)r->length);
                break;
            }
            if (strcmp(r->method, "HEAD") == 0)
                curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->content_length);
            rc = 0;
            break;
        }
        if (res == CURLE_OK) {
            rc = http_error(r, err);
            if (!retryable_status(r->status))
                break;
        } else {
            /* curl's own line says more than its code ("no alternative certificate
             * subject name matches ..."); it names hosts and files, never credentials. */
            clean(ebuf, sizeof ebuf - 1);
            rc = mr_error_set(err, res == CURLE_OPERATION_TIMEDOUT ? MR_E_TIMEOUT :
                                   (res == CURLE_SSL_CACERT_BADFILE || res == CURLE_PEER_FAILED_VERIFICATION ||
                                    res == CURLE_SSL_CONNECT_ERROR) ? MR_E_TLS : MR_E_NETWORK,
                              "%s", ebuf[0] ? ebuf : curl_easy_strerror(res));
            if (!retryable_curl(res))
                break;
        }
        /* The message names the last failure; the loop tries again. */
    }
    if (rc != 0 && attempt > s->retries && s->retries > 0)
        mr_error_prefix(err, "after %d attempts", s->retries + 1);
    free(url);
    return rc;
}

static void req_free(struct req *r)
{
    free(r->resp.p);
    r->resp.p = NULL;
}

/* ---- operations ---- */

static int put_single(struct s3_store *s, const char *key, const struct store_source *src,
                      const unsigned char sha256[32], time_t retain_until, mr_error *err)
{
    struct req r = { .method = "PUT", .key = key, .content_type = "application/octet-stream" };
    unsigned char *data = NULL, got[32];
    char mode[64], until[96], md5[64];
    int rc;

    /* One request: read the payload once, hash what is sent, and sign the caller's hash.
     * Should the two differ, the store refuses the body (x-amz-content-sha256) or the
     * comparison below catches it. */
    if (src->buf != NULL) {
        r.body = src->buf;
    } else if (src->size > 0) {
        data = malloc((size_t)src->size);
        if (data == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        if ((rc = store_source_read(src, 0, data, (size_t)src->size, err)) != 0)
            goto out;
        r.body = data;
    }
    r.body_len = (size_t)src->size;
    {
        struct store_source b = { r.body ? r.body : (const unsigned char *)"", -1, src->size };
        if ((rc = store_source_sha256(&b, 0, src->size, got, err)) != 0)
            goto out;
    }
    if (memcmp(got, sha256, 32) != 0) {
        rc = mr_error_set(err, MR_E_TAMPERED,
                          "the payload's SHA-256 differs from the one given (changed while stored?)");
        goto out;
    }
    s3_hex(sha256, 32, r.payload_hex);
    if (s3_lock_headers(s->lock == STORE_LOCK_ON, s->governance, retain_until, time(NULL),
                        mode, until) == 2) {
        /* S3 wants a Content-MD5 on a put that carries retention. */
        if (!s3_content_md5_header(r.body ? (const void *)r.body : "", r.body_len, md5)) {
            rc = mr_error_openssl(err, MR_E_CRYPTO, "MD5");
            goto out;
        }
        r.extra[0] = mode;
        r.extra[1] = until;
        r.extra[2] = md5;
    }
    rc = perform(s, &r, err);
out:
    req_free(&r);
    free(data);
    return rc;
}

static void abort_multipart(struct s3_store *s, const char *key, const char *upload_id)
{
    struct s3_param q[] = { { "uploadId", upload_id } };
    struct req r = { .method = "DELETE", .key = key, .q = q, .nq = 1 };
    mr_error ignored;
    int saved = s->retries;

    s->retries = 1;     /* best effort: the bucket's lifecycle rules clean up the rest */
    (void)perform(s, &r, &ignored);
    s->retries = saved;
    req_free(&r);
}

static int put_multipart(struct s3_store *s, const char *key, const struct store_source *src,
                         const unsigned char sha256[32], time_t retain_until, mr_error *err)
{
    struct s3_param init_q[] = { { "uploads", "" } };
    struct req r = { .method = "POST", .key = key, .q = init_q, .nq = 1,
                     .content_type = "application/octet-stream" };
    char mode[64], until[96];
    bool locked = s3_lock_headers(s->lock == STORE_LOCK_ON, s->governance, retain_until,
                                  time(NULL), mode, until) == 2;
    uint64_t nparts = (src->size + s->part_size - 1) / s->part_size, off = 0;
    char *upload_id = NULL, **etags = NULL;
    unsigned char *part = NULL, whole[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    struct buf body = { 0 };
    size_t pos = 0;
    int rc;

    if (nparts > MAX_PARTS)
        return mr_error_set(err, MR_E_LIMIT, "%llu parts: more than S3's %d (raise part_size)",
                            (unsigned long long)nparts, MAX_PARTS);
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
    }
    /* The retention goes with the upload's creation; its parts carry a Content-MD5. */
    if (locked) {
        r.extra[0] = mode;
        r.extra[1] = until;
    }
    if ((rc = perform(s, &r, err)) != 0) {
        mr_error_prefix(err, "initiate multipart upload");
        goto out;
    }
    upload_id = r.resp.p ? s3_xml_text(r.resp.p, r.resp.n, &pos, "UploadId") : NULL;
    req_free(&r);
    if (upload_id == NULL || *upload_id == '\0') {
        rc = mr_error_set(err, MR_E_PROTOCOL, "initiate multipart upload: no UploadId in the answer");
        goto out;
    }
    etags = calloc((size_t)nparts, sizeof *etags);
    part = malloc((size_t)s->part_size);
    if (etags == NULL || part == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto fail;
    }
    for (uint64_t i = 0; i < nparts; i++, off += s->part_size) {
        size_t len = (size_t)(src->size - off < s->part_size ? src->size - off : s->part_size);
        char num[24];
        struct s3_param q[] = { { "partNumber", num }, { "uploadId", upload_id } };
        struct req p = { .method = "PUT", .key = key, .q = q, .nq = 2, .body = part,
                         .body_len = len, .content_type = "application/octet-stream" };
        char md5[64];

        snprintf(num, sizeof num, "%llu", (unsigned long long)(i + 1));
        /* The part is read once into memory: the hash signed is the hash of what is sent. */
        if ((rc = store_source_read(src, off, part, len, err)) != 0)
            goto fail;
        if (EVP_DigestUpdate(md, part, len) != 1) {
            rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
            goto fail;
        }
        s3_sha256_hex(part, len, p.payload_hex);
        if (locked) {
            if (!s3_content_md5_header(part, len, md5)) {
                rc = mr_error_openssl(err, MR_E_CRYPTO, "MD5");
                goto fail;
            }
            p.extra[0] = md5;
        }
        rc = perform(s, &p, err);
        if (rc == 0 && p.etag[0] == '\0')
            rc = mr_error_set(err, MR_E_PROTOCOL, "no ETag in the answer");
        if (rc == 0 && (etags[i] = strdup(p.etag)) == NULL)
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        req_free(&p);
        if (rc != 0) {
            mr_error_prefix(err, "part %llu of %llu", (unsigned long long)(i + 1),
                            (unsigned long long)nparts);
            goto fail;
        }
    }
    if (EVP_DigestFinal_ex(md, whole, NULL) != 1) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
        goto fail;
    }
    if (memcmp(whole, sha256, 32) != 0) {
        rc = mr_error_set(err, MR_E_TAMPERED,
                          "the payload's SHA-256 differs from the one given (changed while stored?)");
        goto fail;
    }
    {
        static const char head[] = "<CompleteMultipartUpload>";
        char line[320];
        struct s3_param q[] = { { "uploadId", upload_id } };
        struct req c = { .method = "POST", .key = key, .q = q, .nq = 1,
                         .content_type = "application/xml" };
        char root[64];

        if (buf_add(&body, head, strlen(head), SIZE_MAX) != 0)
            rc = -1;
        for (uint64_t i = 0; rc == 0 && i < nparts; i++) {
            char *e = s3_xml_escape(etags[i]);
            int n = snprintf(line, sizeof line, "<Part><PartNumber>%llu</PartNumber><ETag>%s</ETag></Part>",
                             (unsigned long long)(i + 1), e ? e : "");
            if (e == NULL || n < 0 || (size_t)n >= sizeof line ||
                buf_add(&body, line, (size_t)n, SIZE_MAX) != 0)
                rc = -1;
            free(e);
        }
        if (rc == 0 && buf_add(&body, "</CompleteMultipartUpload>", 26, SIZE_MAX) != 0)
            rc = -1;
        if (rc != 0) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            goto fail;
        }
        c.body = (const unsigned char *)body.p;
        c.body_len = body.n;
        rc = perform(s, &c, err);
        /* S3 may answer 200 and still report an error in the body. */
        if (rc == 0) {
            s3_xml_root(c.resp.p ? c.resp.p : "", c.resp.n, root, sizeof root);
            if (strcmp(root, "CompleteMultipartUploadResult") != 0)
                rc = http_error(&c, err);
        }
        req_free(&c);
        if (rc != 0) {
            mr_error_prefix(err, "complete multipart upload");
            goto fail;
        }
    }
    goto out;
fail:
    abort_multipart(s, key, upload_id);
out:
    if (etags != NULL)
        for (uint64_t i = 0; i < nparts; i++)
            free(etags[i]);
    free(etags);
    free(part);
    free(body.p);
    free(upload_id);
    req_free(&r);
    EVP_MD_CTX_free(md);
    return rc;
}

static int s3_put_retained(void *self, const char *key, const struct store_source *src,
                           const unsigned char sha256[32], time_t retain_until, mr_error *err)
{
    struct s3_store *s = self;

    if (src->size > s->threshold)
        return put_multipart(s, key, src, sha256, retain_until, err);
    return put_single(s, key, src, sha256, retain_until, err);
}

static int s3_put(void *self, const char *key, const struct store_source *src,
                  const unsigned char sha256[32], mr_error *err)
{
    return s3_put_retained(self, key, src, sha256, 0, err);
}

static int s3_get(void *self, const char *key, uint64_t offset, uint64_t length,
                  store_data_fn fn, void *arg, mr_error *err)
{
    struct req r = { .method = "GET", .key = key, .ranged = offset > 0 || length != STORE_TO_END,
                     .offset = offset, .length = length, .fn = fn, .arg = arg };
    int rc = perform(self, &r, err);

    req_free(&r);
    return rc;
}

static int s3_stat(void *self, const char *key, uint64_t *size, mr_error *err)
{
    struct req r = { .method = "HEAD", .key = key, .content_length = -1 };
    int rc = perform(self, &r, err);

    if (rc == 0 && r.content_length < 0)
        rc = mr_error_set(err, MR_E_PROTOCOL, "no Content-Length in the answer");
    if (rc == 0)
        *size = (uint64_t)r.content_length;
    if (rc == MR_E_NOTFOUND)
        mr_error_set(err, MR_E_NOTFOUND, "no such object");
    req_free(&r);
    return rc;
}

static int s3_list(void *self, const char *prefix, store_list_fn fn, void *arg, mr_error *err)
{
    char *marker = strdup("");
    int rc = 0;

    if (marker == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (;;) {
        struct s3_store *s = self;
        struct s3_param q[] = { { "max-keys", s->list_page }, { "prefix", prefix }, { "marker", marker } };
        struct req r = { .method = "GET", .q = q, .nq = *marker ? 3 : 2, .resp_max = 16u << 20 };
        char *trunc, *last = NULL;
        size_t pos = 0;

        if ((rc = perform(self, &r, err)) != 0) {
            req_free(&r);
            break;
        }
        /* Each <Contents>...</Contents> holds a <Key> and a <Size>. */
        while (rc == 0 && r.resp.p != NULL) {
            const char *start = memmem(r.resp.p + pos, r.resp.n - pos, "<Contents>", 10), *end;
            size_t p2 = 0, elen;
            char *k, *sz;
            if (start == NULL)
                break;
            end = memmem(start, r.resp.n - (size_t)(start - r.resp.p), "</Contents>", 11);
            if (end == NULL) {
                rc = mr_error_set(err, MR_E_PROTOCOL, "listing: unterminated <Contents>");
                break;
            }
            elen = (size_t)(end - start);
            k = s3_xml_text(start, elen, &p2, "Key");
            p2 = 0;
            sz = s3_xml_text(start, elen, &p2, "Size");
            pos = (size_t)(end - r.resp.p) + 11;
            if (k == NULL || sz == NULL || *k == '\0')
                rc = mr_error_set(err, MR_E_PROTOCOL, "listing entry without Key or Size");
            else
                rc = fn(arg, k, strtoull(sz, NULL, 10), err);
            free(last);
            last = k;
            free(sz);
        }
        pos = 0;
        trunc = r.resp.p ? s3_xml_text(r.resp.p, r.resp.n, &pos, "IsTruncated") : NULL;
        req_free(&r);
        if (rc == 0 && trunc != NULL && strcmp(trunc, "true") == 0 && last != NULL) {
            free(marker);
            marker = last;
            free(trunc);
            continue;
        }
        free(last);
        free(trunc);
        break;
    }
    free(marker);
    return rc;
}

static int s3_del(void *self, const char *key, mr_error *err)
{
    struct req r = { .method = "DELETE", .key = key };
    int rc = perform(self, &r, err);

    if (rc == MR_E_NOTFOUND)    /* S3 answers 204 either way; some stores 404 */
        rc = 0;
    req_free(&r);
    return rc;
}

static void s3_close(void *self)
{
    struct s3_store *s = self;

    if (s == NULL)
        return;
    if (s->curl != NULL)
        curl_easy_cleanup(s->curl);
    free(s->base);
    free(s->bucket);
    free(s->sigv4);
    free(s->ca_file);
    secret_free(s->access);
    secret_free(s->secret);
    free(s);
}

static const struct store_driver s3_driver = {
    .name = "s3",
    .put = s3_put,
    .get = s3_get,
    .stat = s3_stat,
    .list = s3_list,
    .del = s3_del,
    .close = s3_close,
    .put_retained = s3_put_retained,
};

/* Object Lock: GET ?object-lock.  Only an ObjectLockConfiguration saying Enabled means
 * retention can be set.  Swift answers that query with the bucket listing (it does not
 * know the sub-resource), other stores with 501 or 400 NotImplemented. */
static int probe_lock(struct s3_store *s, mr_error *err)
{
    struct s3_param q[] = { { "object-lock", "" } };
    struct req r = { .method = "GET", .q = q, .nq = 1 };
    char root[64];
    int rc = perform(s, &r, err);

    s->lock = STORE_LOCK_UNSUPPORTED;
    if (rc == 0) {
        s3_xml_root(r.resp.p ? r.resp.p : "", r.resp.n, root, sizeof root);
        if (strcmp(root, "ObjectLockConfiguration") == 0) {
            size_t pos = 0;
            char *en = s3_xml_text(r.resp.p, r.resp.n, &pos, "ObjectLockEnabled");
            s->lock = en != NULL && strcmp(en, "Enabled") == 0 ? STORE_LOCK_ON : STORE_LOCK_OFF;
            free(en);
        }
    } else if (r.status == 404 && r.resp.p != NULL &&
               strstr(r.resp.p, "ObjectLockConfigurationNotFound") != NULL) {
        s->lock = STORE_LOCK_OFF;
        rc = 0;
    } else if (r.status == 501 || (r.status == 400 && r.resp.p != NULL &&
                                   strstr(r.resp.p, "NotImplemented") != NULL)) {
        rc = 0;
    }
    req_free(&r);
    return rc;
}

enum store_lock_state store_object_lock(mr_store *st)
{
    struct s3_store *s = store_driver_state(st, &s3_driver);

    return s != NULL ? s->lock : STORE_LOCK_UNSUPPORTED;
}

/* "access_key_id = ..." and "secret_access_key = ..." lines; blanks and # lines skipped. */
static int read_credentials_file(const char *path, char **access, char **secret, mr_error *err)
{
    unsigned char *buf = malloc(SECRET_MAX + 1);
    size_t len = 0;
    char *line, *save = NULL;
    int rc;

    if (buf == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if ((rc = secret_file_read(path, buf, SECRET_MAX, &len, err)) != 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        rc = mr_error_set(err, MR_E_CONFIG, "%s: contains a NUL byte", path);
        goto out;
    }
    for (line = strtok_r((char *)buf, "\n", &save); line != NULL && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq, *name = line, *value, *end;
        while (*name == ' ' || *name == '\t')
            name++;
        if (*name == '\0' || *name == '#' || *name == '\r')
            continue;
        eq = strchr(name, '=');
        if (eq == NULL) {
            rc = mr_error_set(err, MR_E_CONFIG, "%s: a line without '='", path);
            break;
        }
        for (end = eq; end > name && (end[-1] == ' ' || end[-1] == '\t'); end--)
            ;
        *end = '\0';
        value = eq + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        end = value + strlen(value);
        while (end > value && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            end--;
        *end = '\0';
        if (strcmp(name, "access_key_id") == 0 && *access == NULL)
            *access = strdup(value);
        else if (strcmp(name, "secret_access_key") == 0 && *secret == NULL)
            *secret = strdup(value);
        else
            rc = mr_error_set(err, MR_E_CONFIG, "%s: unknown or repeated name '%.40s'", path, name);
    }
    if (rc == 0 && (*access == NULL || **access == '\0' || *secret == NULL || **secret == '\0'))
        rc = mr_error_set(err, MR_E_CONFIG, "%s: needs access_key_id and secret_access_key", path);
out:
    OPENSSL_cleanse(buf, SECRET_MAX + 1);
    free(buf);
    return rc;
}

static int check_endpoint(const char *e, mr_error *err)
{
    const char *host;

    if (e == NULL || *e == '\0')
        return mr_error_set(err, MR_E_CONFIG, "s3: no endpoint");
    if (strncmp(e, "https://", 8) == 0)
        host = e + 8;
    else if (strncmp(e, "http://", 7) == 0)
        host = e + 7;
    else
        return mr_error_set(err, MR_E_CONFIG, "s3: endpoint must start with https:// (or http://)");
    if (*host == '\0' || strpbrk(host, "/?#@ ") != NULL)
        return mr_error_set(err, MR_E_CONFIG,
                            "s3: endpoint must be scheme://host[:port], without path or user");
    return 0;
}

static int check_bucket(const char *b, mr_error *err)
{
    size_t n = b ? strlen(b) : 0;

    if (n < 3 || n > 63)
        return mr_error_set(err, MR_E_CONFIG, "s3: bucket name must have 3 to 63 characters");
    for (const char *p = b; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return mr_error_set(err, MR_E_CONFIG,
                                "s3: bucket name may only have a-z, 0-9, '-' and '.'");
    return 0;
}

int store_s3_open(const struct store_s3_options *o, mr_store **out, mr_error *err)
{
    struct s3_store *s;
    const char *scheme_end;
    size_t n;
    int rc;

    if (o == NULL || out == NULL)
        return mr_error_set(err, MR_E_INVALID, "store_s3_open: no options");
    *out = NULL;
    if ((rc = check_endpoint(o->endpoint, err)) != 0 || (rc = check_bucket(o->bucket, err)) != 0)
        return rc;
    if (o->region == NULL || *o->region == '\0' || strpbrk(o->region, ": /") != NULL)
        return mr_error_set(err, MR_E_CONFIG, "s3: region missing or not a plain name");
    if (o->part_size != 0 && (o->part_size < MIN_PART || o->part_size > MAX_SINGLE))
        return mr_error_set(err, MR_E_CONFIG, "s3: part_size outside S3's limits (5 MiB to 5 GiB)");
    if (o->multipart_threshold > MAX_SINGLE)
        return mr_error_set(err, MR_E_CONFIG,
                            "s3: multipart_threshold above S3's 5 GiB limit for one PUT");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return mr_error_set(err, MR_E_INTERNAL, "curl_global_init failed");
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    s->threshold = o->multipart_threshold ? o->multipart_threshold : 64ull << 20;
    s->part_size = o->part_size ? o->part_size : 16ull << 20;
    s->connect_timeout = o->connect_timeout_s > 0 ? o->connect_timeout_s : 10;
    s->request_timeout = o->request_timeout_s > 0 ? o->request_timeout_s : 900;
    s->low_speed_time = o->low_speed_time_s > 0 ? o->low_speed_time_s : 30;
    s->retries = o->retries > 0 ? o->retries : o->retries < 0 ? 0 : 4;
    s->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 8000;
    s->governance = o->lock_governance;
    snprintf(s->list_page, sizeof s->list_page, "%d",
             o->list_page > 0 && o->list_page <= 1000 ? o->list_page : 1000);
    if (s->threshold < s->part_size)
        s->threshold = s->part_size;

    n = strlen(o->endpoint) + strlen(o->bucket) + 3;
    s->base = malloc(n);
    s->bucket = strdup(o->bucket);
    s->sigv4 = malloc(strlen(o->region) + 16);
    if (s->base == NULL || s->bucket == NULL || s->sigv4 == NULL ||
        (o->ca_file != NULL && (s->ca_file = strdup(o->ca_file)) == NULL)) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto fail;
    }
    sprintf(s->sigv4, "aws:amz:%s:s3", o->region);
    if (o->path_style) {
        snprintf(s->base, n, "%s/%s", o->endpoint, o->bucket);
    } else {
        scheme_end = strstr(o->endpoint, "://") + 3;
        snprintf(s->base, n, "%.*s%s.%s", (int)(scheme_end - o->endpoint), o->endpoint,
                 o->bucket, scheme_end);
    }
    if (o->credentials_file != NULL) {
        rc = read_credentials_file(o->credentials_file, &s->access, &s->secret, err);
    } else {
        const char *ae = o->access_key_env ? o->access_key_env : "AWS_ACCESS_KEY_ID";
        const char *se = o->secret_key_env ? o->secret_key_env : "AWS_SECRET_ACCESS_KEY";
        if ((rc = secret_read_text(NULL, ae, &s->access, err)) == 0)
            rc = secret_read_text(NULL, se, &s->secret, err);
    }
    if (rc != 0) {
        mr_error_prefix(err, "s3 credentials");
        goto fail;
    }
    s->curl = curl_easy_init();
    if (s->curl == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "curl_easy_init failed");
        goto fail;
    }
    /* The probe is also the first request: wrong credentials, a wrong endpoint or a missing
     * bucket fail here, at open, with one line. */
    if ((rc = probe_lock(s, err)) != 0) {
        mr_error_prefix(err, "s3: bucket %s", s->bucket);
        goto fail;
    }
    if (o->require_object_lock && s->lock != STORE_LOCK_ON) {
        rc = mr_error_set(err, MR_E_UNSUPPORTED,
                          "s3: bucket %s: require_object_lock is set but Object Lock is %s",
                          s->bucket, store_lock_name(s->lock));
        goto fail;
    }
    if ((rc = store_new(&s3_driver, s, out, err)) != 0)
        goto fail;
    return 0;
fail:
    s3_close(s);
    return rc;
}

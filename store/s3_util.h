/*
 * s3_util.h — the parts of an S3 request that mailret computes itself rather than curl:
 * curl 7.88 signs (CURLOPT_AWS_SIGV4) the path and query exactly as given and hashes no
 * payload it streams, so the canonical URI, the sorted canonical query and the payload's
 * SHA-256 come from here.  Also the few S3 XML answers the driver reads.  Internal to
 * store/; declared here so that the unit tests can check them against AWS's examples.
 */
#ifndef MAILRET_STORE_S3_UTIL_H
#define MAILRET_STORE_S3_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* SigV4 URI encoding: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case hex);
 * '/' stays when keep_slash (a path), else %2F (a query name or value).  malloc'd. */
char *s3_uri_encode(const char *s, bool keep_slash);

struct s3_param {
    const char *name;
    const char *value;      /* NULL or "": "name=" */
};

/* The canonical query string: each name and value URI-encoded, "name=value" joined with
 * '&', sorted by encoded name, then value.  The same string is put into the URL, so that
 * what curl signs is what the server recomputes.  "" for n == 0; malloc'd. */
char *s3_canonical_query(const struct s3_param *p, size_t n);

/* Lower-case hex SHA-256 of len bytes. */
void s3_sha256_hex(const void *data, size_t len, char out[65]);
void s3_hex(const unsigned char *bin, size_t len, char *out);

/* The text of the first element <tag> at or after *pos in xml[0..len), entities decoded;
 * *pos moves past its end tag.  malloc'd, or NULL if there is none. */
char *s3_xml_text(const char *xml, size_t len, size_t *pos, const char *tag);
/* The name of the document's root element into out (at most outsz-1 bytes); "" if none. */
void s3_xml_root(const char *xml, size_t len, char *out, size_t outsz);
/* XML-escape s (for a CompleteMultipartUpload body).  malloc'd. */
char *s3_xml_escape(const char *s);

/* The Object Lock headers of a put (PUT or CreateMultipartUpload): none (returns 0, both
 * lines "") unless lock_on and retain_until lies after now; else 2, with
 *   mode:  "x-amz-object-lock-mode: COMPLIANCE" (or GOVERNANCE)
 *   until: "x-amz-object-lock-retain-until-date: 2031-12-07T06:33:06.000Z" (UTC)
 * The one place that decides whether a request carries retention, so that a store
 * without Object Lock (Swift) never sees a lock header. */
int s3_lock_headers(bool lock_on, bool governance, time_t retain_until, time_t now,
                    char mode[64], char until[96]);

/* "Content-MD5: <base64 of the MD5 of data>" (S3 wants it on puts that carry Object Lock
 * retention); false when the digest cannot be computed. */
bool s3_content_md5_header(const void *data, size_t len, char out[64]);

#endif

/*
 * fuzz_backup_manifest.c — libFuzzer target for the manifest reader
 * (archive_manifest_read, backup/archive.h).
 *
 * Each input (after its first byte, which picks the way) is written as manifest.json into
 * a private temporary batch directory (never the source tree) and read one of three ways:
 *   1. as it is, parsed only (archive_manifest_read_unverified);
 *   2. as it is, with a pinned signing key and the legacy manifest key (neither almost
 *      ever matches: the tag parsing and the comparisons are what is exercised);
 *   3. re-signed: the input is taken as the body of a legacy (format 1) manifest, and the
 *      trailing ,"hmac_sha256":"<hex>"}\n field is appended with the correct HMAC, so
 *      that the keyed path goes on to the JSON and field checks.
 * On success the manifest is written back signed (archive_manifest_write, format 2) and
 * read again against the pinned key, and the two must agree.  Errors must carry a negative code and a message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "backup/archive.h"
#include "backup/batchdir.h"

static char tmpdir[4096];
static char path[4200];
static const unsigned char key[ARCHIVE_KEY_LEN] = "mailret-fuzz-manifest-key-32byte";

static void cleanup(void)
{
    char p[4300];

    if (tmpdir[0] == '\0')
        return;
    unlink(path);
    snprintf(p, sizeof p, "%s/manifest.json.tmp", tmpdir);
    unlink(p);
    rmdir(tmpdir);
}

static void setup(void)
{
    const char *base = getenv("TMPDIR");

    if (tmpdir[0] != '\0')
        return;
    snprintf(tmpdir, sizeof tmpdir, "%s/fuzz-manifest.XXXXXX",
             base != NULL && *base != '\0' ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(path, sizeof path, "%s/%s", tmpdir, batchdir_name(BATCHDIR_MANIFEST));
    atexit(cleanup);
}

static void write_file(const void *a, size_t alen, const void *b, size_t blen)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL)
        abort();
    if ((alen > 0 && fwrite(a, 1, alen, f) != alen) || (blen > 0 && fwrite(b, 1, blen, f) != blen))
        abort();
    fclose(f);
}

static EVP_PKEY *signer;
static keys_keyring *pinned;

static void signer_setup(void)
{
    if (signer != NULL)
        return;
    signer = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    pinned = keys_keyring_new();
    if (signer == NULL || pinned == NULL || keys_keyring_add(pinned, signer, NULL) != 0)
        abort();
}

static void check_error(int rc, const mr_error *err)
{
    if (rc > 0 || (rc < 0 && err->msg[0] == '\0'))
        abort();
}

static void same_manifest(const struct archive_manifest *a, const struct archive_manifest *b)
{
    if (strcmp(a->batch_id, b->batch_id) != 0 || strcmp(a->mailbox, b->mailbox) != 0
        || a->expires != b->expires || a->created != b->created
        || a->message_count != b->message_count || a->n_volumes != b->n_volumes
        || a->hold != b->hold)
        abort();
    for (size_t i = 0; i < a->n_volumes; i++)
        if (strcmp(a->volumes[i].name, b->volumes[i].name) != 0
            || strcmp(a->volumes[i].sha256, b->volumes[i].sha256) != 0
            || a->volumes[i].size != b->volumes[i].size)
            abort();
}

/* Read the file now in place; on success write it back, read again, compare. */
static void read_and_roundtrip(bool keyed)
{
    struct archive_trust trust = { .keyring = pinned, .legacy_key = key };
    struct archive_manifest m, m2;
    mr_error err;
    int rc;

    mr_error_clear(&err);
    rc = keyed ? archive_manifest_read(tmpdir, &trust, &m, &err)
               : archive_manifest_read_unverified(tmpdir, &m, &err);
    check_error(rc, &err);
    if (rc != 0)
        return;
    /* A format-1 manifest names no certificates; any fingerprint will do here. */
    if (m.content_cert_fpr[0] == '\0')
        memset(m.content_cert_fpr, 'a', 64);
    if (m.reid_cert_fpr[0] == '\0')
        memset(m.reid_cert_fpr, 'b', 64);
    rc = archive_manifest_write(tmpdir, &m, signer, &err);
    check_error(rc, &err);
    if (rc == 0) {
        rc = archive_manifest_read(tmpdir, &trust, &m2, &err);
        if (rc != 0 || m2.auth != ARCHIVE_AUTH_SIGNED)
            abort();    /* our own manifest must read back */
        same_manifest(&m, &m2);
        archive_manifest_clear(&m2);
    }
    archive_manifest_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char tag[] = ",\"hmac_sha256\":\"";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char trailer[sizeof tag + 64 + 4];
    unsigned char *signed_body;
    unsigned mode;
    size_t t;

    /* The first byte picks one of the three ways (each read allocates the reader's 16 MiB
     * buffer, which ASan makes slow: one way per input keeps the rate up). */
    if (size == 0)
        return 0;
    mode = data[0] % 3;
    data++;
    size--;
    setup();
    signer_setup();

    if (mode == 0 || mode == 1) {
        /* 1 and 2: the bytes as given, parsed only or authenticated. */
        write_file(data, size, NULL, 0);
        read_and_roundtrip(mode == 1);
        return 0;
    }

    /* 3: the input as the body of a correctly signed manifest (HMAC over body + '}'). */
    signed_body = malloc(size + 1);
    if (signed_body == NULL)
        abort();
    if (size > 0)
        memcpy(signed_body, data, size);
    signed_body[size] = '}';
    HMAC(EVP_sha256(), key, ARCHIVE_KEY_LEN, signed_body, size + 1, mac, &mac_len);
    t = (size_t)snprintf(trailer, sizeof trailer, "%s", tag);
    for (unsigned i = 0; i < 32; i++)
        t += (size_t)snprintf(trailer + t, sizeof trailer - t, "%02x", mac[i]);
    t += (size_t)snprintf(trailer + t, sizeof trailer - t, "\"}\n");
    write_file(data, size, trailer, t);
    free(signed_body);
    read_and_roundtrip(true);
    return 0;
}

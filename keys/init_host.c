/* init_host.c — `keys init-host`: install IT's (and the re-identification holder's)
 * certificate, create the pseudonym key with a copy sealed to the re-identification holder
 * (so that a restore-by-person works without the host, while the content holder alone
 * cannot turn tokens back into CPR or phone numbers), and the Ed25519 batch-signing key
 * whose public half goes to the keyring that IT pins. */
#include "keys/keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>

#include "common/durable.h"

static int install_cert(const char *src, const char *dst, X509 **out, mr_error *err)
{
    BIO *mem;
    BUF_MEM *buf = NULL;
    int rc = keys_cert_load(src, out, err);

    if (rc != 0)
        return rc;
    /* Already in place (root often installs it into a directory the service user cannot
     * write): nothing to write.  A different certificate there is never overwritten. */
    {
        struct stat st;
        X509 *have = NULL;
        mr_error local;

        if (stat(dst, &st) == 0) {
            if (keys_cert_load(dst, &have, &local) != 0)
                return mr_error_set(err, MR_E_EXISTS,
                                    "%s exists and is not a readable certificate (%s); "
                                    "remove it or fix [keys]", dst, local.msg);
            rc = X509_cmp(have, *out) == 0 ? 0 : 1;
            X509_free(have);
            if (rc != 0)
                return mr_error_set(err, MR_E_EXISTS,
                                    "%s already holds a different certificate than %s; "
                                    "refusing to replace it", dst, src);
            return 0;
        }
    }
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL || !PEM_write_bio_X509(mem, *out)) {
        BIO_free(mem);
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot encode certificate %s", src);
    }
    BIO_get_mem_ptr(mem, &buf);
    rc = durable_write_file(dst, buf->data, buf->length, 0644, err);
    BIO_free(mem);
    return rc;
}

int keys_init_host(struct keys_host_options *opt, audit_log *audit, mr_error *err)
{
    X509 *it = NULL, *reid = NULL;
    char pid[17] = "", it_id[KEYS_ID_LEN + 1] = "", reid_id[KEYS_ID_LEN + 1] = "";
    size_t previous = 0;
    int rc;

    if (opt->it_cert_source == NULL || opt->it_cert == NULL || opt->reid_cert == NULL
        || opt->pseudonym_key_file == NULL || opt->vault_dir == NULL
        || opt->signing_key_file == NULL || opt->host_keyring == NULL)
        return mr_error_set(err, MR_E_CONFIG, "init-host: a key path is not configured");
    /* Check before changing anything, so that a refused re-run leaves the host as it was. */
    {
        struct stat st;
        if (stat(opt->pseudonym_key_file, &st) == 0 || stat(opt->signing_key_file, &st) == 0)
            return mr_error_set(err, MR_E_EXISTS,
                                "host keys already exist (%s); refusing to replace them",
                                opt->pseudonym_key_file);
    }
    rc = install_cert(opt->it_cert_source, opt->it_cert, &it, err);
    if (rc == 0)
        rc = install_cert(opt->reid_cert_source != NULL ? opt->reid_cert_source
                                                        : opt->it_cert_source,
                          opt->reid_cert, &reid, err);
    if (rc == 0)
        rc = keys_key_id(X509_get0_pubkey(it), it_id, err);
    if (rc == 0)
        rc = keys_key_id(X509_get0_pubkey(reid), reid_id, err);
    if (rc == 0 && !opt->recover)
        rc = keys_pseudonym_create(opt->pseudonym_key_file, opt->vault_dir, reid, pid, err);
    /* The earlier hosts' keys reach the keyring before this host's: from the start it
     * verifies every batch of the archive it continues. */
    if (rc == 0 && opt->previous_keyring != NULL)
        rc = keys_keyring_import(opt->host_keyring, opt->previous_keyring, audit, &previous,
                                 err);
    /* Audited by keys_signing_new itself (keys.signing.create). */
    if (rc == 0)
        rc = keys_signing_new(opt->signing_key_file, opt->host_keyring, false, audit,
                              opt->signing_id, opt->signing_fpr, err);
    if (rc == 0 && audit != NULL) {
        const struct audit_field f[] = {
            { "it_cert", it_id },
            { "reid_cert", reid_id },
            { "pseudonym_key", opt->recover ? "(recovery: imported later)" : pid },
            { "signing_key", opt->signing_id },
        };
        rc = audit_append(audit, "keys.host.init", f, sizeof f / sizeof f[0], err);
    }
    X509_free(it);
    X509_free(reid);
    return rc;
}

/* ledger.c — the erasure ledger (see ledger.h). */
#include "purge/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/restore.h"
#include "common/durable.h"

int ledger_entry(const pseudo_key *key, enum pseudo_kind kind, const char *identifier,
                 char *out, size_t size, mr_error *err)
{
    char token[PSEUDO_TOKEN_LEN + 1];
    int rc;

    if (identifier == NULL || *identifier == '\0')
        return mr_error_set(err, MR_E_INVALID, "empty identifier");
    rc = pseudo_token(key, kind, identifier, token, err);
    if (rc != 0)
        return rc;
    if ((size_t)snprintf(out, size, "%s:%s", pseudo_kind_name(kind), token) >= size)
        return mr_error_set(err, MR_E_INTERNAL, "ledger entry buffer too small");
    return 0;
}

int ledger_add(const char *path, const char *entry, audit_log *audit, bool *added,
               mr_error *err)
{
    char **tokens = NULL;
    size_t n = 0, len = 0, pos = 0;
    char *text = NULL;
    int rc;

    *added = false;
    if (strchr(entry, ':') == NULL || strpbrk(entry, " \t\r\n") != NULL)
        return mr_error_set(err, MR_E_INVALID, "ledger entry is not kind:token");
    rc = restore_ledger_load(path, true, &tokens, &n, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tokens[i], entry) == 0) {
            restore_ledger_free(tokens, n);
            return 0;
        }
        len += strlen(tokens[i]) + 1;
    }
    len += strlen(entry) + 1;
    text = malloc(len + 1);
    if (text == NULL) {
        restore_ledger_free(tokens, n);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        pos += (size_t)sprintf(text + pos, "%s\n", tokens[i]);
    pos += (size_t)sprintf(text + pos, "%s\n", entry);
    restore_ledger_free(tokens, n);
    /* Audit first: a record of the request exists even if the write then fails. */
    if (audit != NULL) {
        const struct audit_field f[] = { { "entry", entry } };
        rc = audit_append(audit, "erasure.record", f, 1, err);
    }
    if (rc == 0)
        rc = durable_write_file(path, text, pos, 0600, err);
    free(text);
    if (rc == 0)
        *added = true;
    return rc;
}

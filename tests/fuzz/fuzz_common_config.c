/*
 * fuzz_common_config.c — libFuzzer target for the configuration parser (common/config.h).
 *
 * Each input is written to a file in a private temporary directory (never the source
 * tree) and loaded with config_load; whatever the outcome, config_free must release
 * everything (LeakSanitizer checks) and an error must carry a non-empty message.
 * Relative paths in the input resolve against that temporary directory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

static char tmpdir[4096];
static char path[4200];

static void cleanup(void)
{
    if (path[0] != '\0')
        unlink(path);
    if (tmpdir[0] != '\0')
        rmdir(tmpdir);
}

static int setup(void)
{
    const char *base = getenv("TMPDIR");

    if (tmpdir[0] != '\0')
        return 0;
    snprintf(tmpdir, sizeof tmpdir, "%s/fuzz-config.XXXXXX",
             base != NULL && *base != '\0' ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(path, sizeof path, "%s/mailret.conf", tmpdir);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mr_config *cfg = NULL;
    mr_error err;
    FILE *f;
    int rc;

    setup();
    f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);

    mr_error_clear(&err);
    rc = config_load(path, &cfg, &err);
    if (rc == 0) {
        if (cfg == NULL)
            abort();    /* success must hand back a config */
        config_free(cfg);
    } else {
        if (rc > 0 || err.msg[0] == '\0')
            abort();    /* the error convention: negative code and a message */
    }

    /* The size parser on the same bytes as a string (one line, NUL-terminated). */
    if (size < 64) {
        char text[64];
        uint64_t v;
        memcpy(text, data, size);
        text[size] = '\0';
        (void)config_parse_size(text, &v, &err);
    }
    return 0;
}

/* cli_util.c — the small pieces every command shares: errors, usage, --help detection. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cli_fail(const char *command, const mr_error *err)
{
    char line[MR_ERROR_MSG_MAX];

    /* Scrub a copy: a message built from server or file content could, by a bug
     * elsewhere, carry an identifier, and stderr often ends up in the journal. */
    snprintf(line, sizeof line, "%s", err != NULL && err->msg[0] != '\0' ? err->msg
                                                                         : "failed");
    log_scrub(line);
    fprintf(stderr, "mailret %s: %s\n", command, line);
    return CLI_EXIT_FAILURE;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mailret %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; try 'mailret %s --help'\n", command);
    return CLI_EXIT_USAGE;
}

int cli_not_implemented(const char *command)
{
    fprintf(stderr, "mailret %s: not implemented yet\n", command);
    return CLI_EXIT_USAGE;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

bool cli_parse_seconds(const char *text, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 0 || v > 86400)
        return false;
    *out = (int)v;
    return true;
}

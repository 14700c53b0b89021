/* cli_util.c — the small pieces every command shares: errors, usage, --help detection. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/progress.h"

const char *cli_journal_prefix(void)
{
    static int journal = -1;

    if (journal < 0)
        journal = log_fd_is_journal(STDERR_FILENO);
    return journal ? "<3>" : "";
}

/* The last failure reported, for main's --json wrapper of commands without a JSON report
 * of their own. */
static int last_code;
static char last_message[MR_ERROR_MSG_MAX];

int cli_last_failure(char *message, size_t size)
{
    snprintf(message, size, "%s", last_message);
    return last_code;
}

int cli_fail(const char *command, const mr_error *err)
{
    char line[MR_ERROR_MSG_MAX];

    /* Scrub a copy: a message built from server or file content could, by a bug
     * elsewhere, carry an identifier, and stderr often ends up in the journal. */
    snprintf(line, sizeof line, "%s", err != NULL && err->msg[0] != '\0' ? err->msg
                                                                         : "failed");
    log_scrub(line);
    fprintf(stderr, "%smailret %s: %s\n", cli_journal_prefix(), command, line);
    last_code = err != NULL && err->code != 0 ? err->code : MR_E_INTERNAL;
    snprintf(last_message, sizeof last_message, "%s", line);
    return CLI_EXIT_FAILURE;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    log_scrub(last_message);
    last_code = MR_E_USAGE_CLI;
    fprintf(stderr, "%smailret %s: %s; try 'mailret %s --help'\n", cli_journal_prefix(),
            command, last_message, command);
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

/* The one-line message as shown: scrubbed like everything else mailret prints. */
static void shown_message(const mr_error *err, char line[MR_ERROR_MSG_MAX])
{
    snprintf(line, MR_ERROR_MSG_MAX, "%s",
             err != NULL && err->msg[0] != '\0' ? err->msg : "failed");
    log_scrub(line);
}

const char *cli_error_code(const mr_error *err)
{
    int code = err != NULL && err->code != 0 ? err->code : MR_E_INTERNAL;

    return mr_status_name(code);
}

static bool json_printed;

bool cli_json_printed(void)
{
    return json_printed;
}

int cli_json_result(FILE *out, const char *command, const char *report, const mr_error *err)
{
    json_t *o = NULL;
    char line[MR_ERROR_MSG_MAX];
    int rc = -1;

    if (report != NULL && report[0] != '\0') {
        o = json_loads(report, 0, NULL);
        if (o != NULL && !json_is_object(o)) {
            json_decref(o);
            o = NULL;
        }
    }
    json_printed = true;
    if (err == NULL) {
        if (o == NULL)
            return report != NULL && fputs(report, out) >= 0 ? 0 : -1;
        json_decref(o);
        return fputs(report, out) >= 0 ? 0 : -1;
    }
    if (o == NULL)
        o = json_object();
    if (o == NULL)
        return -1;
    shown_message(err, line);
    if (json_object_set_new(o, "command", json_string(command)) == 0
        && json_object_set_new(o, "error", json_string(cli_error_code(err))) == 0
        && json_object_set_new(o, "message", json_string(line)) == 0
        && json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0
        && fputc('\n', out) != EOF)
        rc = 0;
    json_decref(o);
    fflush(out);
    return rc;
}

int cli_fail_json(const char *command, bool json, const mr_error *err)
{
    if (json)
        (void)cli_json_result(stdout, command, NULL, err);
    return cli_fail(command, err);
}

struct mr_progress *cli_progress_open(enum cli_progress_mode mode)
{
    mr_progress *p = NULL;
    mr_error err;

    if (mode == CLI_PROGRESS_OFF || (mode == CLI_PROGRESS_AUTO && !progress_wanted()))
        return NULL;
    if (progress_open(&p, STDERR_FILENO, &err) != 0)
        return NULL;
    return p;
}

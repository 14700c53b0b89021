/*
 * main.c — `mailret [-c FILE] [-v|-q] <command> [options]`: global options, then dispatch
 * to cmd_<command>() (cli/cmd_*.c).  Nothing here knows what a command does.
 */
#include <errno.h>
#include <getopt.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/cli.h"

#define DEFAULT_CONFIG "/etc/mailret/mailret.conf"

struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(struct cli_ctx *ctx, int argc, char **argv);
};

#define CLI_ENTRY(name, summary) { #name, summary, cmd_##name },
static const struct cli_command commands[] = { CLI_COMMANDS(CLI_ENTRY) };
#undef CLI_ENTRY

/* Command names are C identifiers in CLI_COMMANDS; on the command line '_' is '-'. */
static bool is_command(const char *arg, const char *name)
{
    for (; *arg != '\0' && *name != '\0'; arg++, name++)
        if (*arg != (*name == '_' ? '-' : *name))
            return false;
    return *arg == '\0' && *name == '\0';
}

/* Commands whose --json report is their own; every other command gets main's wrapper. */
static const char *const native_json[] = { "ingest", "purge", "restore", "access_request",
                                           "status", "check", "expire", "unrouted" };

static bool has_native_json(const char *name)
{
    for (size_t i = 0; i < sizeof native_json / sizeof native_json[0]; i++)
        if (strcmp(name, native_json[i]) == 0)
            return true;
    return false;
}

/* Whether argv (a command's) asks for --json, before a "--". */
static bool wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            return true;
    return false;
}

/* The bytes written to fd (a memfd), from its start. */
static char *slurp(int fd, size_t *len)
{
    off_t end = lseek(fd, 0, SEEK_END);
    char *buf = malloc(end > 0 ? (size_t)end + 1 : 1);
    size_t got = 0;

    *len = 0;
    if (buf == NULL || lseek(fd, 0, SEEK_SET) != 0) {
        free(buf);
        return NULL;
    }
    while (end > 0 && got < (size_t)end) {
        ssize_t n = read(fd, buf + got, (size_t)end - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

/* --json for a command without a report of its own: its text output becomes "output" (one
 * string per line), and a failure carries "error" (the MR_E_* name, or "usage") and the
 * one-line "message", as the native reports do.  What it wrote to stderr is passed on. */
static int run_wrapped_json(const struct cli_command *c, struct cli_ctx *ctx, int argc,
                            char **argv)
{
    int out_fd = memfd_create("mailret-stdout", MFD_CLOEXEC);
    int err_fd = memfd_create("mailret-stderr", MFD_CLOEXEC);
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int n = 0, status;

    if (out_fd < 0 || err_fd < 0 || saved_out < 0 || saved_err < 0 || args == NULL) {
        fprintf(stderr, "mailret %s: --json: %s\n", c->name, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && !(i > 0 && strcmp(argv[i - 1], "--") == 0))
            continue;
        args[n++] = argv[i];
    }
    fflush(stdout);
    fflush(stderr);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    optind = 0;
    status = c->run(ctx, n, args);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    free(args);

    size_t olen = 0, elen = 0;
    char *out = slurp(out_fd, &olen), *errtext = slurp(err_fd, &elen);
    close(out_fd);
    close(err_fd);
    if (errtext != NULL && elen > 0)
        fwrite(errtext, 1, elen, stderr);
    json_t *o = json_object(), *lines = json_array();
    for (char *p = out, *nl; p != NULL && *p != '\0'; p = nl != NULL ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        json_array_append_new(lines, json_string(p));
    }
    json_object_set_new(o, "command", json_string(c->name));
    json_object_set_new(o, "status", json_string(status == 0 ? "ok" : "failed"));
    json_object_set_new(o, "exit", json_integer(status));
    json_object_set_new(o, "output", lines);
    if (status != 0) {
        char msg[MR_ERROR_MSG_MAX] = "";
        int code = cli_last_failure(msg, sizeof msg);
        if (code == 0 && errtext != NULL) {
            /* The last line it wrote on stderr, without "<3>mailret NAME: ". */
            char *last = NULL;
            for (char *p = strtok(errtext, "\n"); p != NULL; p = strtok(NULL, "\n"))
                last = p;
            if (last != NULL) {
                if (last[0] == '<' && last[1] != '\0' && last[2] == '>')
                    last += 3;
                if (strncmp(last, "mailret ", 8) == 0 && strchr(last, ':') != NULL)
                    last = strchr(last, ':') + 1 + (strchr(last, ':')[1] == ' ');
                snprintf(msg, sizeof msg, "%s", last);
                log_scrub(msg);
            }
        }
        json_object_set_new(o, "error", json_string(code == MR_E_USAGE_CLI || status == 2
                                                        ? "usage"
                                                        : mr_status_name(code != 0
                                                                         ? code
                                                                         : MR_E_INTERNAL)));
        json_object_set_new(o, "message", json_string(msg[0] ? msg : "failed"));
    }
    if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
        status = status != 0 ? status : CLI_EXIT_FAILURE;
    printf("\n");
    fflush(stdout);
    json_decref(o);
    free(out);
    free(errtext);
    return status;
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: mailret [-c FILE] [-v|-q] <command> [options]\n"
            "\n"
            "Mail retention for the shared mailboxes of a Danish unemployment fund: casework\n"
            "into the member system, a monthly purge behind a pseudonymised, encrypted backup\n"
            "kept five years, restorable only by IT.\n"
            "\n"
            "Global options:\n"
            "  -c, --config FILE  configuration file (default $MAILRET_CONFIG or %s)\n"
            "  -v, --verbose      more log output (repeat for debug)\n"
            "  -q, --quiet        errors only\n"
            "  -V, --version      print the version\n"
            "  -h, --help         this text; `mailret <command> --help` for a command\n"
            "\n"
            "Commands:\n",
            DEFAULT_CONFIG);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char shown[32];
        snprintf(shown, sizeof shown, "%s", commands[i].name);
        for (char *p = shown; *p != '\0'; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "  %-9s %s\n", shown, commands[i].summary);
    }
    fprintf(out, "\nSecrets are read from files or the environment, never from the command line.\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct cli_ctx ctx = { .log_level = LOG_LEVEL_INFO };
    const char *env_config = getenv("MAILRET_CONFIG");
    mr_error err;
    int opt, status;

    /* Restrictive by default: everything mailret creates (state, archives, keys) is
     * private unless a module asks for more. */
    umask(077);
    /* Private keys are in this process's memory (epoch keys during a purge, IT's key
     * during a restore, the signing key): a crash must not write them into a core file,
     * and no other process of the same user may read our memory through ptrace or /proc. */
    {
        const struct rlimit no_core = { 0, 0 };
        (void)setrlimit(RLIMIT_CORE, &no_core);
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    /* Buffers of a megabyte and more (archive volumes, their decrypted and compressed
     * forms) straight from mmap and back to the kernel on free.  glibc's default raises
     * this threshold to the largest block freed so far, after which multi-megabyte volume
     * buffers come from per-thread heaps that each keep their own peak: the backup's
     * resident size then drifts ~30 MB above what is live (measured in
     * docs/BENCHMARKS.md), for ~7 % less CPU in page faults.  Bounded memory wins. */
    (void)mallopt(M_MMAP_THRESHOLD, 1 << 20);

    ctx.config_path = DEFAULT_CONFIG;
    if (env_config != NULL && *env_config != '\0') {
        ctx.config_path = env_config;
        ctx.config_explicit = true;
    }
    /* '+' stops at the first non-option: everything after the command is the command's. */
    while ((opt = getopt_long(argc, argv, "+c:vqVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            ctx.config_path = optarg;
            ctx.config_explicit = true;
            break;
        case 'v':
            if (ctx.log_level < LOG_LEVEL_DEBUG)
                ctx.log_level++;
            break;
        case 'q':
            ctx.log_level = LOG_LEVEL_ERROR;
            break;
        case 'V':
            printf("mailret %s\n", MAILRET_VERSION);
            return CLI_EXIT_OK;
        case 'h':
            print_usage(stdout);
            return CLI_EXIT_OK;
        default:
            print_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (!is_command(argv[optind], commands[i].name))
            continue;
        mr_error_clear(&err);
        if (log_open(&ctx.log, ctx.log_level, NULL, &err) != 0)
            return cli_fail(commands[i].name, &err);
        {
            int first = optind;
            bool json = wants_json(argc - first, argv + first);
            /* Commands parse their own options with getopt from a fresh start;
             * glibc restarts its scan when optind is 0. */
            optind = 0;
            if (json && !has_native_json(commands[i].name) &&
                !cli_wants_help(argc - first, argv + first)) {
                status = run_wrapped_json(&commands[i], &ctx, argc - first, argv + first);
            } else {
                status = commands[i].run(&ctx, argc - first, argv + first);
                /* A usage mistake before the command got to its own JSON failure. */
                if (json && status == CLI_EXIT_USAGE && !cli_json_printed()) {
                    char msg[MR_ERROR_MSG_MAX];
                    if (cli_last_failure(msg, sizeof msg) == MR_E_USAGE_CLI) {
                        json_t *o = json_pack("{s:s, s:s, s:s}", "command", commands[i].name,
                                              "error", "usage", "message", msg);
                        if (o != NULL && json_dumpf(o, stdout, JSON_INDENT(2)) == 0)
                            printf("\n");
                        json_decref(o);
                    }
                }
            }
        }
        log_close(ctx.log);
        return status;
    }
    fprintf(stderr, "mailret: unknown command '%s'; try 'mailret --help'\n", argv[optind]);
    return CLI_EXIT_USAGE;
}

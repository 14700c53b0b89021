/*
 * main.c — `mailret [-c FILE] [-v|-q] <command> [options]`: global options, then dispatch
 * to cmd_<command>() (cli/cmd_*.c).  Nothing here knows what a command does.
 */
#include <getopt.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
            /* Commands parse their own options with getopt from a fresh start;
             * glibc restarts its scan when optind is 0. */
            optind = 0;
            status = commands[i].run(&ctx, argc - first, argv + first);
        }
        log_close(ctx.log);
        return status;
    }
    fprintf(stderr, "mailret: unknown command '%s'; try 'mailret --help'\n", argv[optind]);
    return CLI_EXIT_USAGE;
}

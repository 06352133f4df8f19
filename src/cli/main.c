/* main.c: the `trone` command: finds the subcommand in one dispatch table and runs it.
 * Exit status: 0 success, 1 operational failure, 2 usage error (cmd.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "core/log.h"

#define TRONE_VERSION "0.1.0"

struct cmd_entry {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct cmd_entry cmd_table[] = {
    {"init", cmd_init, "make a cluster: cluster file and keys for every replica and the admin"},
    {"keygen", cmd_keygen, "make a client identity (an Ed25519 key file)"},
    {"replica", cmd_replica, "run one replica of the cluster"},
    {"register", cmd_register, "register a client's public key with the cluster"},
    {"channel", cmd_channel, "create, alter, delete, list channels and their authorizations"},
    {"pub", cmd_pub, "publish events on a channel (arguments or one per stdin line)"},
    {"sub", cmd_sub, "subscribe to a channel and print its events"},
    {"status", cmd_status, "show every replica's view, health and control table digest"},
    {"bench", cmd_bench, "measure throughput and latency, print machine-readable results"},
    {"demo", cmd_demo, "run a local cluster with publishers and subscribers"},
};

#define CMD_TABLE_COUNT (sizeof(cmd_table) / sizeof(cmd_table[0]))

static void main_usage(FILE *out)
{
    fprintf(out, "usage: trone COMMAND [OPTIONS]\n"
                 "\n"
                 "TRONE: a Byzantine-fault-tolerant replicated event broker for monitoring.\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < CMD_TABLE_COUNT; i++) {
        fprintf(out, "  %-10s %s\n", cmd_table[i].name, cmd_table[i].summary);
    }
    fprintf(out,
            "\n"
            "options every command takes:\n"
            "  --cluster FILE  cluster file (default $TRONE_CLUSTER, then ./cluster/cluster.conf)\n"
            "  --key FILE      your identity (default $TRONE_KEY, then\n"
            "                  <directory of the cluster file>/keys/admin.key)\n"
            "  --json          machine-readable output\n"
            "  --help          help for the command\n"
            "\n"
            "trone help COMMAND shows a command's options. Logs go to stderr; set TRONE_LOG=\n"
            "debug|info|warn|error. Exit status: 0 ok, 1 failure, 2 usage error.\n");
}

static const struct cmd_entry *main_find(const char *name)
{
    for (size_t i = 0; i < CMD_TABLE_COUNT; i++) {
        if (strcmp(cmd_table[i].name, name) == 0) {
            return &cmd_table[i];
        }
    }
    return NULL;
}

/* `trone help [COMMAND]`: the command's own --help. */
static int main_help(int argc, char **argv)
{
    if (argc < 3) {
        main_usage(stdout);
        return CMD_OK;
    }
    if (argc > 3) {
        return cmd_error(CMD_USAGE, "help", "takes one command name (see trone --help)");
    }
    const struct cmd_entry *entry = main_find(argv[2]);
    if (entry == NULL) {
        return cmd_error(CMD_USAGE, "help", "unknown command '%s' (see trone --help)", argv[2]);
    }
    char help[] = "--help";
    char *sub_argv[] = {argv[2], help, NULL};
    return entry->run(2, sub_argv);
}

int main(int argc, char **argv)
{
    log_level_from_env();
    if (argc < 2) {
        return cmd_error(CMD_USAGE, NULL, "no command given (see trone --help)");
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        main_usage(stdout);
        return CMD_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("trone %s\n", TRONE_VERSION);
        return CMD_OK;
    }
    if (strcmp(name, "help") == 0) {
        return main_help(argc, argv);
    }
    const struct cmd_entry *entry = main_find(name);
    if (entry == NULL) {
        return cmd_error(CMD_USAGE, NULL, "unknown command '%s' (see trone --help)", name);
    }
    int rc = entry->run(argc - 1, argv + 1);
    fflush(stdout);
    return rc;
}

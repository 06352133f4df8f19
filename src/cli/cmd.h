/* cmd.h: the subcommands of `trone` and the options they share.
 * Exit status: 0 success, 1 operational failure, 2 usage error. Every subcommand answers
 * --help. Only the CLI prints to stdout; logs go to stderr. */
#ifndef TRONE_CMD_H
#define TRONE_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/cfg.h"
#include "core/key.h"

enum { CMD_OK = 0, CMD_FAIL = 1, CMD_USAGE = 2 };

/* Options every subcommand takes. */
struct cmd_common {
    const char *cluster_path; /* --cluster, else $TRONE_CLUSTER, else ./cluster/cluster.conf */
    const char *key_path;     /* --key, else $TRONE_KEY, else <cluster dir>/keys/admin.key */
    bool json;                /* --json */
};

/* If argv[*i] is --cluster, --key or --json (with its value), consumes it and returns 1;
 * returns 0 if it is not a common option, CMD_USAGE-negative (-2) on a missing value. */
int cmd_common_option(struct cmd_common *common, int argc, char **argv, int *i);
/* Resolves defaults, then loads the cluster file and the key. On failure prints a one-line
 * error to stderr and returns CMD_FAIL. key may be NULL when the command needs no key. */
int cmd_common_load(struct cmd_common *common, struct cfg_cluster *cluster,
                    struct key_identity *key);
/* The path of the cluster file after defaults (never NULL). */
const char *cmd_common_cluster_path(const struct cmd_common *common);

/* Prints "trone <cmd>: <message>" to stderr; returns code. */
int cmd_error(int code, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int cmd_init(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_replica(int argc, char **argv);
int cmd_register(int argc, char **argv);
int cmd_channel(int argc, char **argv);
int cmd_pub(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif

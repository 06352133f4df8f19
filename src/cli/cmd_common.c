/* cmd_common.c: the options every subcommand shares (--cluster, --key, --json), their
 * defaults, loading the cluster file and the caller's key, and one-line CLI errors. */
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "core/assert.h"

#define CMD_PATH_MAX 4096

/* The CLI is one short-lived process: a resolved default key path lives here. */
static char cmd_common_key_default[CMD_PATH_MAX];

int cmd_error(int code, const char *cmd, const char *fmt, ...)
{
    char message[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    /* One line without control characters, whatever the message quotes. */
    for (size_t i = 0; message[i] != '\0'; i++) {
        unsigned char c = (unsigned char)message[i];
        if (c < 0x20 || c == 0x7f) {
            message[i] = ' ';
        }
    }
    if (cmd != NULL && cmd[0] != '\0') {
        fprintf(stderr, "trone %s: %s\n", cmd, message);
    } else {
        fprintf(stderr, "trone: %s\n", message);
    }
    return code;
}

/* Matches "--name VALUE" and "--name=VALUE"; 1 matched, 0 not this option, -2 no value. */
static int cmd_common_value(const char *name, int argc, char **argv, int *i, const char **value)
{
    const char *arg = argv[*i];
    size_t length = strlen(name);
    if (strncmp(arg, name, length) != 0) {
        return 0;
    }
    if (arg[length] == '=') {
        if (arg[length + 1] == '\0') {
            cmd_error(CMD_USAGE, NULL, "%s needs a value", name);
            return -CMD_USAGE;
        }
        *value = arg + length + 1;
        return 1;
    }
    if (arg[length] != '\0') {
        return 0;
    }
    if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
        cmd_error(CMD_USAGE, NULL, "%s needs a value", name);
        return -CMD_USAGE;
    }
    *i += 1;
    *value = argv[*i];
    return 1;
}

int cmd_common_option(struct cmd_common *common, int argc, char **argv, int *i)
{
    TRONE_ASSERT(common != NULL);
    TRONE_ASSERT(i != NULL);
    TRONE_ASSERT(*i >= 0 && *i < argc);
    if (strcmp(argv[*i], "--json") == 0) {
        common->json = true;
        return 1;
    }
    int rc = cmd_common_value("--cluster", argc, argv, i, &common->cluster_path);
    if (rc != 0) {
        return rc;
    }
    return cmd_common_value("--key", argc, argv, i, &common->key_path);
}

const char *cmd_common_cluster_path(const struct cmd_common *common)
{
    TRONE_ASSERT(common != NULL);
    if (common->cluster_path != NULL && common->cluster_path[0] != '\0') {
        return common->cluster_path;
    }
    const char *env = getenv("TRONE_CLUSTER");
    if (env != NULL && env[0] != '\0') {
        return env;
    }
    return "./cluster/cluster.conf";
}

/* --key, else $TRONE_KEY, else <directory of the cluster file>/keys/admin.key. */
static const char *cmd_common_key_path(const struct cmd_common *common, const char *cluster)
{
    if (common->key_path != NULL && common->key_path[0] != '\0') {
        return common->key_path;
    }
    const char *env = getenv("TRONE_KEY");
    if (env != NULL && env[0] != '\0') {
        return env;
    }
    char copy[CMD_PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", cluster);
    /* dirname may modify its argument and returns a pointer into it or a static string. */
    const char *dir = dirname(copy);
    int length =
        snprintf(cmd_common_key_default, sizeof(cmd_common_key_default), "%s/keys/admin.key", dir);
    if (length < 0 || (size_t)length >= sizeof(cmd_common_key_default)) {
        return NULL;
    }
    return cmd_common_key_default;
}

int cmd_common_load(struct cmd_common *common, struct cfg_cluster *cluster,
                    struct key_identity *key)
{
    TRONE_ASSERT(common != NULL);
    TRONE_ASSERT(cluster != NULL);
    char reason[1024];
    const char *cluster_path = cmd_common_cluster_path(common);
    common->cluster_path = cluster_path;
    if (strlen(cluster_path) >= CMD_PATH_MAX) {
        return cmd_error(CMD_FAIL, NULL, "cluster file path too long");
    }
    int rc = cfg_cluster_load(cluster, cluster_path, reason, sizeof(reason));
    if (rc == TRONE_EIO) {
        return cmd_error(CMD_FAIL, NULL,
                         "%s (make one with `trone init DIR`, then pass "
                         "--cluster DIR/cluster.conf or set TRONE_CLUSTER)",
                         reason);
    }
    if (rc != 0) {
        return cmd_error(CMD_FAIL, NULL, "%s", reason);
    }
    if (key == NULL) {
        return CMD_OK;
    }
    const char *key_path = cmd_common_key_path(common, cluster_path);
    if (key_path == NULL) {
        return cmd_error(CMD_FAIL, NULL, "key file path too long");
    }
    common->key_path = key_path;
    rc = key_identity_load(key, key_path, reason, sizeof(reason));
    if (rc == TRONE_EIO) {
        return cmd_error(CMD_FAIL, NULL, "%s (pass --key FILE or set TRONE_KEY)", reason);
    }
    if (rc != 0) {
        return cmd_error(CMD_FAIL, NULL, "%s", reason);
    }
    return CMD_OK;
}

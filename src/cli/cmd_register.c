/* cmd_register.c: `trone register NAME KEY`: the admin registers a client's Ed25519 public key
 * under a name, through the replicas (a REGISTER control operation). KEY is a key file written
 * by `trone keygen` (only its public key is read) or 64 hex digits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "broker/brk_op.h"
#include "cli/cmd.h"
#include "core/key.h"
#include "rt/rt_client.h"
#include "rt/rt_ctl.h"

#define CMD_REGISTER_TIMEOUT_MS 20000u

static void cmd_register_usage(FILE *out)
{
    fprintf(out,
            "usage: trone register NAME KEY [--timeout SECONDS] [--json] [--cluster FILE]\n"
            "                      [--key FILE]\n"
            "\n"
            "Registers a client: NAME (letters, digits, '.', '_', '-') becomes the name of the\n"
            "public key KEY in the control table, so the client may connect, and channels can\n"
            "list it as a publisher or subscriber. KEY is a key file written by `trone keygen`\n"
            "(only its public key is read) or the public key as 64 hex digits. Only the admin\n"
            "may register clients.\n"
            "\n"
            "options:\n"
            "  --timeout SECONDS  how long to wait for the replicas to agree (default %u)\n"
            "  --json             print the result as JSON\n"
            "  --cluster FILE     cluster file (default $TRONE_CLUSTER)\n"
            "  --key FILE         the admin's identity (default $TRONE_KEY, then\n"
            "                     <cluster dir>/keys/admin.key)\n",
            CMD_REGISTER_TIMEOUT_MS / 1000u);
}

struct cmd_register_public {
    bool found;
    bool bad;
    uint8_t key[TRONE_KEY_LEN];
};

static int cmd_register_ini(void *user, const char *section, const char *name, const char *value)
{
    struct cmd_register_public *p = user;
    if (section[0] == '\0' && strcmp(name, "public") == 0) {
        if (p->found || key_hex_decode(p->key, TRONE_KEY_LEN, value) != 0) {
            p->bad = true;
        }
        p->found = true;
    }
    return 1;
}

/* KEY as 64 hex digits, a full key file, or a file with at least "public = <hex>". */
static int cmd_register_key(const char *text, uint8_t key[TRONE_KEY_LEN])
{
    if (strlen(text) == 2 * TRONE_KEY_LEN && key_hex_decode(key, TRONE_KEY_LEN, text) == 0) {
        return CMD_OK;
    }
    struct key_identity id;
    char reason[512];
    if (key_identity_load(&id, text, reason, sizeof(reason)) == 0) {
        memcpy(key, id.public_key, TRONE_KEY_LEN);
        key_identity_wipe(&id);
        return CMD_OK;
    }
    struct cmd_register_public p;
    memset(&p, 0, sizeof(p));
    int rc = ini_parse(text, cmd_register_ini, &p);
    if (rc == -1) {
        return cmd_error(CMD_USAGE, "register",
                         "KEY '%s' is neither 64 hex digits nor a "
                         "readable key file",
                         text);
    }
    if (rc != 0 || !p.found || p.bad) {
        return cmd_error(CMD_USAGE, "register",
                         "KEY '%s' is not a key file with a valid "
                         "public key: %s",
                         text, reason);
    }
    memcpy(key, p.key, TRONE_KEY_LEN);
    return CMD_OK;
}

struct cmd_register_args {
    struct cmd_common common;
    uint64_t timeout_ms;
    const char *positional[2];
    int positional_count;
};

/* Parses argv; CMD_OK, CMD_USAGE, or -1 when --help was printed. */
static int cmd_register_parse(struct cmd_register_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof(*a));
    a->timeout_ms = CMD_REGISTER_TIMEOUT_MS;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cmd_register_usage(stdout);
            return -1;
        }
        if (strcmp(argv[i], "--timeout") == 0) {
            if (i + 1 >= argc || rt_ctl_seconds_parse(argv[i + 1], &a->timeout_ms) != 0) {
                return cmd_error(CMD_USAGE, "register",
                                 "--timeout needs a number of seconds "
                                 "greater than 0");
            }
            i++;
            continue;
        }
        if (argv[i][0] != '-' || argv[i][1] == '\0') {
            if (a->positional_count >= 2) {
                return cmd_error(CMD_USAGE, "register",
                                 "too many arguments: '%s' (usage: "
                                 "trone register NAME KEY)",
                                 argv[i]);
            }
            a->positional[a->positional_count++] = argv[i];
            continue;
        }
        int rc = cmd_common_option(&a->common, argc, argv, &i);
        if (rc < 0) {
            return CMD_USAGE;
        }
        if (rc == 0) {
            return cmd_error(CMD_USAGE, "register",
                             "unknown option '%s' (see trone register "
                             "--help)",
                             argv[i]);
        }
    }
    if (a->positional_count != 2) {
        return cmd_error(CMD_USAGE, "register",
                         "needs NAME and KEY (usage: trone register "
                         "NAME KEY)");
    }
    return CMD_OK;
}

/* Sends op and prints the outcome; the CLI exit status. */
static int cmd_register_run(struct cmd_register_args *a, const struct brk_op *op)
{
    struct cfg_cluster *cluster = calloc(1, sizeof(*cluster));
    if (cluster == NULL) {
        return cmd_error(CMD_FAIL, "register", "out of memory");
    }
    struct key_identity key;
    memset(&key, 0, sizeof(key));
    int rc = cmd_common_load(&a->common, cluster, &key);
    struct rt_client *client = NULL;
    int lock = -1;
    if (rc == CMD_OK) {
        lock = rt_ctl_key_lock(a->common.key_path); /* best effort: see rt_ctl.h */
        client = rt_client_create(cluster, &key);
        rc = client != NULL ? CMD_OK : cmd_error(CMD_FAIL, "register", "cannot start the client");
    }
    if (rc == CMD_OK) {
        struct buf bytes;
        buf_init(&bytes, TRONE_RESULT_MAX);
        struct brk_result res;
        char errmsg[512];
        int err = rt_ctl_call(client, op, a->timeout_ms, &bytes, &res, errmsg, sizeof(errmsg));
        if (err != 0) {
            rc = cmd_error(CMD_FAIL, "register", "%s", errmsg);
        } else if (res.status != 0) {
            rc = cmd_error(CMD_FAIL, "register", "%s",
                           res.message[0] != '\0' ? res.message : trone_strerror(res.status));
        } else if (a->common.json) {
            char hex[2 * TRONE_KEY_LEN + 1];
            key_hex_encode(hex, op->key, TRONE_KEY_LEN);
            printf("{\"registered\": \"%s\", \"key\": \"%s\"}\n", op->name, hex);
        } else {
            printf("%s\n", res.message[0] != '\0' ? res.message : "registered");
        }
        buf_close(&bytes);
    }
    rt_client_destroy(client);
    rt_ctl_key_unlock(lock);
    key_identity_wipe(&key);
    free(cluster);
    return rc;
}

int cmd_register(int argc, char **argv)
{
    struct cmd_register_args a;
    int rc = cmd_register_parse(&a, argc, argv);
    if (rc != CMD_OK) {
        return rc < 0 ? CMD_OK : rc;
    }
    uint8_t public_key[TRONE_KEY_LEN];
    rc = cmd_register_key(a.positional[1], public_key);
    if (rc != CMD_OK) {
        return rc;
    }
    struct brk_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return cmd_error(CMD_FAIL, "register", "out of memory");
    }
    brk_op_init(op, BRK_OP_REGISTER);
    if (brk_op_set_register(op, a.positional[0], public_key) != 0) {
        rc = cmd_error(CMD_USAGE, "register",
                       "invalid NAME '%s': use 1 to %u letters, digits, "
                       "'.', '_' or '-'",
                       a.positional[0], (unsigned)TRONE_NAME_MAX);
    } else {
        rc = cmd_register_run(&a, op);
    }
    free(op);
    return rc;
}

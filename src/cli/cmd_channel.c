/* cmd_channel.c: `trone channel create|alter|delete|list|show|subscribe|unsubscribe`: builds the
 * control operation (brk_op.h), runs it through the replicas (rt_ctl.h) and prints the agreed
 * result. No network code and no table rules here: the replicas decide. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_op.h"
#include "cli/cmd.h"
#include "rt/rt_client.h"
#include "rt/rt_ctl.h"

#define CMD_CHANNEL_TIMEOUT_MS 20000u

/* Which options each subcommand takes. */
enum {
    CMD_CH_CLASS = 1u << 0,
    CMD_CH_MEMBERS = 1u << 1, /* --publishers, --subscribers */
    CMD_CH_ALTER = 1u << 2,   /* --add-*, --remove-* */
    CMD_CH_TAG = 1u << 3,     /* takes TAG */
};

struct cmd_channel_sub {
    const char *name;
    enum brk_op_kind kind;
    unsigned flags;
    const char *summary;
};

static const struct cmd_channel_sub cmd_channel_subs[] = {
    {"create", BRK_OP_CHANNEL_CREATE, CMD_CH_TAG | CMD_CH_CLASS | CMD_CH_MEMBERS,
     "create TAG [--class LIST] [--publishers a,b] [--subscribers c,*]"},
    {"alter", BRK_OP_CHANNEL_ALTER, CMD_CH_TAG | CMD_CH_CLASS | CMD_CH_ALTER,
     "alter TAG [--class LIST] [--add-publishers ..] [--remove-publishers ..]\n"
     "                      [--add-subscribers ..] [--remove-subscribers ..]"},
    {"delete", BRK_OP_CHANNEL_DELETE, CMD_CH_TAG, "delete TAG"},
    {"list", BRK_OP_CHANNEL_LIST, 0, "list [--json]"},
    {"show", BRK_OP_CHANNEL_SHOW, CMD_CH_TAG, "show TAG [--json]"},
    {"subscribe", BRK_OP_SUBSCRIBE, CMD_CH_TAG, "subscribe TAG      (your key)"},
    {"unsubscribe", BRK_OP_UNSUBSCRIBE, CMD_CH_TAG, "unsubscribe TAG    (your key)"},
};

#define CMD_CHANNEL_SUB_COUNT (sizeof(cmd_channel_subs) / sizeof(cmd_channel_subs[0]))

static void cmd_channel_usage(FILE *out)
{
    fprintf(out, "usage: trone channel SUBCOMMAND ...\n\n");
    for (size_t i = 0; i < CMD_CHANNEL_SUB_COUNT; i++) {
        fprintf(out, "  trone channel %s\n", cmd_channel_subs[i].summary);
    }
    fprintf(out,
            "\n"
            "Channels are created, altered and deleted by the admin; subscribe and unsubscribe\n"
            "act for the caller's key. Every change is ordered by the replicas.\n"
            "\n"
            "options:\n"
            "  --class LIST          fault model, order, method, urgency, persistence, e.g.\n"
            "                        bft,total,pks,urgency=7,durable\n"
            "                        (default cft,fifo,si,urgency=0); with durable, retention:\n"
            "                        retain=N(s|m|h|d) by age, retain-bytes=N[K|M|G] by\n"
            "                        size of the whole channel (default: no limit), e.g.\n"
            "                        cft,fifo,durable,retain=7d,retain-bytes=256M\n"
            "  --publishers a,b      registered client names allowed to publish ('*': everyone)\n"
            "  --subscribers c,*     registered client names allowed to subscribe\n"
            "  --add-publishers, --remove-publishers, --add-subscribers, --remove-subscribers\n"
            "                        change the lists of an existing channel\n"
            "  --timeout SECONDS     how long to wait for the replicas to agree (default %u)\n"
            "  --json                machine-readable output\n"
            "  --cluster FILE        cluster file (default $TRONE_CLUSTER)\n"
            "  --key FILE            your identity (default $TRONE_KEY, then the admin key)\n"
            "\n"
            "exit status: 0 done, 1 refused or no agreement in time, 2 usage error\n",
            CMD_CHANNEL_TIMEOUT_MS / 1000u);
}

struct cmd_channel_args {
    const struct cmd_channel_sub *sub;
    struct cmd_common common;
    uint64_t timeout_ms;
    const char *tag;
    struct brk_op *op;
};

/* The name list an option fills, or NULL if the option is not a list option of this sub. */
static struct brk_name_list *cmd_channel_list_of(struct cmd_channel_args *a, const char *opt)
{
    struct brk_op *op = a->op;
    unsigned flags = a->sub->flags;
    if ((flags & CMD_CH_MEMBERS) != 0) {
        if (strcmp(opt, "--publishers") == 0) {
            return &op->publishers;
        }
        if (strcmp(opt, "--subscribers") == 0) {
            return &op->subscribers;
        }
    }
    if ((flags & CMD_CH_ALTER) != 0) {
        if (strcmp(opt, "--add-publishers") == 0) {
            return &op->publishers;
        }
        if (strcmp(opt, "--remove-publishers") == 0) {
            return &op->publishers_removed;
        }
        if (strcmp(opt, "--add-subscribers") == 0) {
            return &op->subscribers;
        }
        if (strcmp(opt, "--remove-subscribers") == 0) {
            return &op->subscribers_removed;
        }
    }
    return NULL;
}

/* Handles an option that takes a value; 1 consumed, 0 unknown, -CMD_USAGE on error. */
static int cmd_channel_value_option(struct cmd_channel_args *a, int argc, char **argv, int *i)
{
    const char *opt = argv[*i];
    struct brk_name_list *list = cmd_channel_list_of(a, opt);
    bool is_class = (a->sub->flags & CMD_CH_CLASS) != 0 && strcmp(opt, "--class") == 0;
    bool is_timeout = strcmp(opt, "--timeout") == 0;
    if (list == NULL && !is_class && !is_timeout) {
        return 0;
    }
    if (*i + 1 >= argc) {
        cmd_error(CMD_USAGE, "channel", "%s needs a value", opt);
        return -CMD_USAGE;
    }
    const char *value = argv[++*i];
    char reason[256] = "";
    if (is_timeout) {
        if (rt_ctl_seconds_parse(value, &a->timeout_ms) != 0) {
            cmd_error(CMD_USAGE, "channel", "--timeout needs a number of seconds greater than 0");
            return -CMD_USAGE;
        }
    } else if (is_class) {
        if (brk_class_parse(&a->op->cls, value, reason, sizeof(reason)) != 0) {
            cmd_error(CMD_USAGE, "channel", "--class %s: %s", value, reason);
            return -CMD_USAGE;
        }
        a->op->has_class = true;
    } else if (brk_name_list_parse(list, value, reason, sizeof(reason)) != 0) {
        cmd_error(CMD_USAGE, "channel", "%s %s: %s", opt, value, reason);
        return -CMD_USAGE;
    }
    return 1;
}

static int cmd_channel_parse_one(struct cmd_channel_args *a, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    if (arg[0] != '-' || arg[1] == '\0') {
        if ((a->sub->flags & CMD_CH_TAG) == 0 || a->tag != NULL) {
            return cmd_error(CMD_USAGE, "channel",
                             "unexpected argument '%s' (see trone channel "
                             "--help)",
                             arg);
        }
        a->tag = arg;
        return CMD_OK;
    }
    int rc = cmd_channel_value_option(a, argc, argv, i);
    if (rc == 0) {
        rc = cmd_common_option(&a->common, argc, argv, i);
    }
    if (rc < 0) {
        return CMD_USAGE;
    }
    if (rc == 0) {
        return cmd_error(CMD_USAGE, "channel",
                         "'%s' is not an option of channel %s (see trone "
                         "channel --help)",
                         arg, a->sub->name);
    }
    return CMD_OK;
}

/* Parses argv after the subcommand; CMD_OK or CMD_USAGE. */
static int cmd_channel_parse(struct cmd_channel_args *a, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cmd_channel_usage(stdout);
            return -1;
        }
        int rc = cmd_channel_parse_one(a, argc, argv, &i);
        if (rc != CMD_OK) {
            return rc;
        }
    }
    if ((a->sub->flags & CMD_CH_TAG) != 0) {
        if (a->tag == NULL) {
            return cmd_error(CMD_USAGE, "channel", "channel %s needs a TAG", a->sub->name);
        }
        if (brk_op_set_tag(a->op, a->tag) != 0) {
            return cmd_error(CMD_USAGE, "channel",
                             "invalid TAG '%s': use 1 to %u letters, "
                             "digits, '.', '_' or '-'",
                             a->tag, (unsigned)TRONE_TAG_MAX);
        }
    }
    return CMD_OK;
}

static void cmd_channel_json_string(const char *s)
{
    putchar('"');
    for (size_t i = 0; s[i] != '\0' && i < 4096; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

/* ---- Running ------------------------------------------------------------------------------ */

struct cmd_channel_run {
    struct cmd_channel_args *args;
    struct rt_client *client;
    struct buf bytes;
    struct buf text;
    struct brk_channel_info *info;
};

/* Runs op; CMD_OK with res filled when the replicas executed it (res->status may refuse). */
static int cmd_channel_call(struct cmd_channel_run *run, const struct brk_op *op,
                            struct brk_result *res)
{
    char errmsg[512];
    int rc = rt_ctl_call(run->client, op, run->args->timeout_ms, &run->bytes, res, errmsg,
                         sizeof(errmsg));
    if (rc != 0) {
        return cmd_error(CMD_FAIL, "channel", "%s", errmsg);
    }
    if (res->status != 0) {
        return cmd_error(CMD_FAIL, "channel", "%s",
                         res->message[0] != '\0' ? res->message : trone_strerror(res->status));
    }
    return CMD_OK;
}

static void cmd_channel_names(struct buf *out, const struct brk_name_list *list)
{
    if (list->count == 0) {
        buf_put_bytes(out, "-", 1);
    }
    for (uint32_t i = 0; i < list->count && i < TRONE_CHANNEL_MEMBERS_MAX; i++) {
        if (i > 0) {
            buf_put_bytes(out, ",", 1);
        }
        buf_put_bytes(out, list->names[i], strlen(list->names[i]));
    }
}

/* One row of `channel list`: TAG CLASS PUBLISHERS SUBSCRIBERS SUBSCRIBED. */
static void cmd_channel_row(struct cmd_channel_run *run, const struct brk_channel_info *info)
{
    char cls[BRK_CLASS_TEXT_MAX];
    if (brk_class_format(&info->cls, cls, sizeof(cls)) < 0) {
        snprintf(cls, sizeof(cls), "?");
    }
    buf_reset(&run->text);
    cmd_channel_names(&run->text, &info->publishers);
    buf_put_bytes(&run->text, "  ", 2);
    cmd_channel_names(&run->text, &info->subscribers);
    buf_put_bytes(&run->text, "  ", 2);
    cmd_channel_names(&run->text, &info->subscribed);
    if (run->text.error != 0) {
        printf("%-24s %-30s (lists too long to show)\n", info->tag, cls);
        return;
    }
    printf("%-24s %-30s %.*s\n", info->tag, cls, (int)run->text.used, (const char *)run->text.data);
}

/* Prints the channels of one result body; sets *last to the last tag and *more. */
static int cmd_channel_print_body(struct cmd_channel_run *run, const struct brk_result *res,
                                  size_t *printed, char *last, size_t last_size, bool *more)
{
    struct brk_channel_iter it;
    int rc = brk_channel_iter_init(&it, res->body, res->body_size);
    for (uint32_t i = 0; rc == 0 && i <= TRONE_CHANNELS_MAX; i++) {
        rc = brk_channel_iter_next(&it, run->info);
        if (rc != 1) {
            break;
        }
        rc = 0;
        bool json = run->args->common.json;
        bool list = run->args->sub->kind == BRK_OP_CHANNEL_LIST;
        if (json) {
            buf_reset(&run->text);
            brk_channel_info_json(run->info, &run->text);
            const char *separator = !list ? "" : (*printed > 0 ? ",\n  " : "\n  ");
            printf("%s%.*s", separator, (int)run->text.used, (const char *)run->text.data);
        } else if (list) {
            cmd_channel_row(run, run->info);
        } else {
            buf_reset(&run->text);
            brk_channel_info_format(run->info, &run->text);
            fwrite(run->text.data, 1, run->text.used, stdout);
        }
        (*printed)++;
        snprintf(last, last_size, "%s", run->info->tag);
    }
    if (rc != 0) {
        return cmd_error(CMD_FAIL, "channel", "the replicas returned a malformed channel list");
    }
    *more = it.more;
    return CMD_OK;
}

/* `channel list`: asks page after page until the replicas say there is no more. */
static int cmd_channel_list(struct cmd_channel_run *run)
{
    struct brk_op *op = run->args->op;
    bool json = run->args->common.json;
    size_t printed = 0;
    char last[TRONE_TAG_MAX + 1] = "";
    int rc = CMD_OK;
    for (uint32_t page = 0; page <= TRONE_CHANNELS_MAX; page++) {
        snprintf(op->tag, sizeof(op->tag), "%s", last);
        struct brk_result res;
        rc = cmd_channel_call(run, op, &res);
        bool more = false;
        size_t before = printed;
        if (rc == CMD_OK && page == 0 && json) {
            printf("[");
        } else if (rc == CMD_OK && page == 0) {
            printf("%-24s %-30s %s\n", "TAG", "CLASS", "PUBLISHERS  SUBSCRIBERS  SUBSCRIBED");
        }
        if (rc == CMD_OK) {
            rc = cmd_channel_print_body(run, &res, &printed, last, sizeof(last), &more);
        }
        if (rc != CMD_OK || !more) {
            break;
        }
        if (printed == before) {
            rc = cmd_error(CMD_FAIL, "channel", "the replicas returned an empty page");
            break;
        }
    }
    if (json && (rc == CMD_OK || printed > 0)) {
        printf("%s]\n", printed > 0 ? "\n" : "");
    }
    return rc;
}

static int cmd_channel_execute(struct cmd_channel_run *run)
{
    const struct cmd_channel_sub *sub = run->args->sub;
    if (sub->kind == BRK_OP_CHANNEL_LIST) {
        return cmd_channel_list(run);
    }
    struct brk_result res;
    int rc = cmd_channel_call(run, run->args->op, &res);
    if (rc != CMD_OK) {
        return rc;
    }
    if (sub->kind == BRK_OP_CHANNEL_SHOW) {
        size_t printed = 0;
        char last[TRONE_TAG_MAX + 1];
        bool more = false;
        rc = cmd_channel_print_body(run, &res, &printed, last, sizeof(last), &more);
        if (rc == CMD_OK && run->args->common.json) {
            printf("\n");
        }
        return rc;
    }
    if (run->args->common.json) {
        printf("{\"ok\": true, \"message\": ");
        cmd_channel_json_string(res.message);
        printf("}\n");
    } else {
        printf("%s\n", res.message[0] != '\0' ? res.message : "done");
    }
    return CMD_OK;
}

static int cmd_channel_connect_and_run(struct cmd_channel_args *a)
{
    struct cfg_cluster *cluster = calloc(1, sizeof(*cluster));
    struct cmd_channel_run run;
    memset(&run, 0, sizeof(run));
    run.args = a;
    run.info = calloc(1, sizeof(*run.info));
    if (cluster == NULL || run.info == NULL) {
        free(cluster);
        free(run.info);
        return cmd_error(CMD_FAIL, "channel", "out of memory");
    }
    buf_init(&run.bytes, TRONE_RESULT_MAX);
    buf_init(&run.text, TRONE_RESULT_MAX);
    struct key_identity key;
    memset(&key, 0, sizeof(key));
    int rc = cmd_common_load(&a->common, cluster, &key);
    int lock = -1;
    if (rc == CMD_OK) {
        lock = rt_ctl_key_lock(a->common.key_path); /* best effort: see rt_ctl.h */
        run.client = rt_client_create(cluster, &key);
        rc = run.client != NULL ? CMD_OK : cmd_error(CMD_FAIL, "channel", "cannot start client");
    }
    if (rc == CMD_OK) {
        rc = cmd_channel_execute(&run);
    }
    rt_client_destroy(run.client);
    rt_ctl_key_unlock(lock);
    key_identity_wipe(&key);
    buf_close(&run.bytes);
    buf_close(&run.text);
    free(run.info);
    free(cluster);
    return rc;
}

int cmd_channel(int argc, char **argv)
{
    if (argc < 2) {
        cmd_channel_usage(stderr);
        return CMD_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cmd_channel_usage(stdout);
        return CMD_OK;
    }
    struct cmd_channel_args a;
    memset(&a, 0, sizeof(a));
    a.timeout_ms = CMD_CHANNEL_TIMEOUT_MS;
    for (size_t i = 0; i < CMD_CHANNEL_SUB_COUNT; i++) {
        if (strcmp(argv[1], cmd_channel_subs[i].name) == 0) {
            a.sub = &cmd_channel_subs[i];
        }
    }
    if (a.sub == NULL) {
        return cmd_error(CMD_USAGE, "channel",
                         "unknown subcommand '%s' (create, alter, delete, "
                         "list, show, subscribe, unsubscribe)",
                         argv[1]);
    }
    a.op = calloc(1, sizeof(*a.op));
    if (a.op == NULL) {
        return cmd_error(CMD_FAIL, "channel", "out of memory");
    }
    brk_op_init(a.op, a.sub->kind);
    int rc = cmd_channel_parse(&a, argc, argv);
    if (rc == CMD_OK) {
        rc = cmd_channel_connect_and_run(&a);
    }
    free(a.op);
    return rc < 0 ? CMD_OK : rc;
}

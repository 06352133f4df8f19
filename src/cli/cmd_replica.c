/* cmd_replica.c: `trone replica --id I`: parses the options, loads the cluster file and the
 * replica's key, creates the data directory and runs the replica until SIGINT/SIGTERM
 * (rt_replica.c). No network code here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libgen.h>

#include "cli/cmd.h"
#include "core/assert.h"
#include "core/limits.h"
#include "rt/rt_replica.h"
#include "rt/rt_store.h"

#define CMD_REPLICA_PATH_MAX 4096

struct cmd_replica_options {
    struct cmd_common common;
    long long id;
    const char *data_dir;
    bool rebuild;
    bool dump_events;
    uint32_t batch_max;
    uint32_t pipeline_max;
    uint64_t request_timeout_ms;
    uint32_t queue_events_max;
    uint32_t queue_bytes_max;
    enum brk_events_overflow overflow;
};

static void cmd_replica_usage(FILE *out)
{
    fprintf(out,
            "usage: trone replica --id I [--cluster FILE] [--key FILE] [--data DIR] [--rebuild]\n"
            "                     [--dump-events]\n"
            "                     [--batch-max N] [--pipeline N] [--request-timeout-ms N]\n"
            "                     [--queue-events N] [--queue-bytes N]\n"
            "                     [--slow-subscriber drop-oldest|disconnect]\n"
            "\n"
            "Runs replica I of the cluster until SIGINT or SIGTERM: listens on its address,\n"
            "connects to every other replica (Noise KK) and accepts clients (Noise IK) that are\n"
            "the admin or registered. Logs go to stderr (TRONE_LOG=debug|info|warn|error).\n"
            "\n"
            "options:\n"
            "  --id I                  this replica's id in the cluster file (required)\n"
            "  --cluster FILE          cluster file (default $TRONE_CLUSTER, then\n"
            "                          ./cluster/cluster.conf)\n"
            "  --key FILE              this replica's key\n"
            "                          (default <cluster dir>/keys/replica<I>.key)\n"
            "  --data DIR              data directory (LMDB), created if missing (default\n"
            "                          <cluster dir>/data/replica-<I>). The replica writes its\n"
            "                          votes, log and checkpoints there before sending, and a\n"
            "                          restarted replica resumes from it, then catches up from\n"
            "                          its peers. A directory of another replica or cluster, or\n"
            "                          a corrupt or truncated one, is refused at start\n"
            "  --rebuild               wipe the data directory's store and rebuild it from the\n"
            "                          peers (state transfer). Under CFT a replica rebuilt while\n"
            "                          others are down counts as one more failure\n"
            "  --dump-events           do not run: print every durable event of the data\n"
            "                          directory, one line each, in an order that is the same\n"
            "                          at every replica: tag, fifo|total, publisher key (hex;\n"
            "                          - for total order), epoch, position, BLAKE2b-256 of the\n"
            "                          stored event (hex); then 'events N'. The replica must be\n"
            "                          stopped. Two replicas hold the same durable events iff\n"
            "                          their dumps are equal\n"
            "  --batch-max N           requests per proposal, 1..%u (default 64)\n"
            "  --pipeline N            proposals in flight (default 4)\n"
            "  --request-timeout-ms N  a request pending this long starts a view change\n"
            "                          (default 2000)\n"
            "  --queue-events N        events queued per subscriber connection before the\n"
            "                          slow-subscriber policy applies (default 65536)\n"
            "  --queue-bytes N         bytes queued per subscriber connection (default\n"
            "                          8388608; at least %u)\n"
            "  --slow-subscriber P     when a subscriber's queue is full: drop-oldest (default:\n"
            "                          the oldest event of the least urgent channel is dropped\n"
            "                          and the subscriber is sent a GAP counting what it lost)\n"
            "                          or disconnect (the connection is closed; the subscriber\n"
            "                          reconnects and reports the missing sequence numbers)\n"
            "  --help                  this help\n",
            (unsigned)TRONE_BATCH_MAX, (unsigned)BRK_EVENTS_RECORD_MAX);
}

/* A decimal integer in [min, max], the whole text. */
static int cmd_replica_number(const char *option, const char *text, unsigned long long min,
                              unsigned long long max, unsigned long long *value)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] == '\0' || text[0] == '-' || end == text || *end != '\0' || errno != 0 || v < min ||
        v > max) {
        return cmd_error(CMD_USAGE, "replica", "%s needs a number from %llu to %llu, not '%s'",
                         option, min, max, text);
    }
    *value = v;
    return CMD_OK;
}

/* Matches "--name VALUE" (value in *value); 1 matched, 0 not it, CMD_USAGE negated if no value. */
static int cmd_replica_value(const char *name, int argc, char **argv, int *i, const char **value)
{
    if (strcmp(argv[*i], name) != 0) {
        return 0;
    }
    if (*i + 1 >= argc) {
        cmd_error(CMD_USAGE, "replica", "%s needs a value", name);
        return -CMD_USAGE;
    }
    *i += 1;
    *value = argv[*i];
    return 1;
}

/* Handles one replica-specific option; 1 consumed, 0 unknown, negative CMD_USAGE on error. */
static int cmd_replica_option(struct cmd_replica_options *o, int argc, char **argv, int *i)
{
    static const char *const names[] = {"--id",           "--data",         "--batch-max",
                                        "--pipeline",     "--request-timeout-ms",
                                        "--queue-events", "--queue-bytes",  "--slow-subscriber"};
    const char *value = NULL;
    size_t which = 0;
    int rc = 0;
    for (which = 0; which < sizeof(names) / sizeof(names[0]) && rc == 0; which++) {
        rc = cmd_replica_value(names[which], argc, argv, i, &value);
    }
    if (rc <= 0) {
        return rc;
    }
    which--;
    unsigned long long v = 0;
    if (which == 1) {
        o->data_dir = value;
        return 1;
    }
    if (which == 7) {
        if (strcmp(value, "drop-oldest") == 0) {
            o->overflow = BRK_EVENTS_DROP_OLDEST;
        } else if (strcmp(value, "disconnect") == 0) {
            o->overflow = BRK_EVENTS_DISCONNECT;
        } else {
            cmd_error(CMD_USAGE, "replica",
                      "--slow-subscriber is drop-oldest or disconnect, not '%s'", value);
            return -CMD_USAGE;
        }
        return 1;
    }
    static const unsigned long long maxima[] = {
        TRONE_REPLICAS_MAX - 1, 0, TRONE_BATCH_MAX, 1024, 3600u * 1000u, 1u << 24, 1u << 30};
    unsigned long long minimum = which == 0 ? 0 : which == 6 ? BRK_EVENTS_RECORD_MAX : 1;
    if (cmd_replica_number(names[which], value, minimum, maxima[which], &v) != 0) {
        return -CMD_USAGE;
    }
    if (which == 0) {
        o->id = (long long)v;
    } else if (which == 2) {
        o->batch_max = (uint32_t)v;
    } else if (which == 3) {
        o->pipeline_max = (uint32_t)v;
    } else if (which == 4) {
        o->request_timeout_ms = v;
    } else if (which == 5) {
        o->queue_events_max = (uint32_t)v;
    } else {
        o->queue_bytes_max = (uint32_t)v;
    }
    return 1;
}

/* Parses argv; CMD_OK, CMD_USAGE, or -1 when --help was printed. */
static int cmd_replica_parse(struct cmd_replica_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->id = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rebuild") == 0) {
            o->rebuild = true;
            continue;
        }
        if (strcmp(argv[i], "--dump-events") == 0) {
            o->dump_events = true;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cmd_replica_usage(stdout);
            return -1;
        }
        int rc = cmd_common_option(&o->common, argc, argv, &i);
        if (rc == 0) {
            rc = cmd_replica_option(o, argc, argv, &i);
        }
        if (rc < 0) {
            return CMD_USAGE;
        }
        if (rc == 0) {
            return cmd_error(CMD_USAGE, "replica",
                             "unknown argument '%s' (see trone replica "
                             "--help)",
                             argv[i]);
        }
    }
    if (o->id < 0) {
        return cmd_error(CMD_USAGE, "replica", "--id I is required (see trone replica --help)");
    }
    return CMD_OK;
}

/* mkdir -p: creates each missing component of path. */
static int cmd_replica_mkdir(const char *path)
{
    char copy[CMD_REPLICA_PATH_MAX];
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof(copy)) {
        return cmd_error(CMD_FAIL, "replica", "bad --data directory '%s'", path);
    }
    memcpy(copy, path, length + 1);
    for (size_t i = 1; i <= length; i++) {
        if (copy[i] != '/' && copy[i] != '\0') {
            continue;
        }
        char saved = copy[i];
        copy[i] = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
            return cmd_error(CMD_FAIL, "replica", "cannot create data directory %s: %s", copy,
                             strerror(errno));
        }
        copy[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return cmd_error(CMD_FAIL, "replica", "data directory %s is not a directory", path);
    }
    return CMD_OK;
}

/* Points data_dir at <cluster dir>/data/replica-<I> unless --data was given. */
static int cmd_replica_data_default(struct cmd_replica_options *o, char *path, size_t path_size)
{
    if (o->data_dir != NULL) {
        return CMD_OK;
    }
    char copy[CMD_REPLICA_PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", cmd_common_cluster_path(&o->common));
    int length = snprintf(path, path_size, "%s/data/replica-%lld", dirname(copy), o->id);
    if (length < 0 || (size_t)length >= path_size) {
        return cmd_error(CMD_FAIL, "replica", "data directory path too long");
    }
    o->data_dir = path;
    return CMD_OK;
}

/* Points the common options at <cluster dir>/keys/replica<I>.key unless --key was given. */
static int cmd_replica_key_default(struct cmd_replica_options *o, char *path, size_t path_size)
{
    if (o->common.key_path != NULL) {
        return CMD_OK;
    }
    char copy[CMD_REPLICA_PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", cmd_common_cluster_path(&o->common));
    int length = snprintf(path, path_size, "%s/keys/replica%lld.key", dirname(copy), o->id);
    if (length < 0 || (size_t)length >= path_size) {
        return cmd_error(CMD_FAIL, "replica", "key file path too long");
    }
    o->common.key_path = path;
    return CMD_OK;
}

int cmd_replica(int argc, char **argv)
{
    struct cmd_replica_options o;
    int rc = cmd_replica_parse(&o, argc, argv);
    if (rc != CMD_OK) {
        return rc < 0 ? CMD_OK : rc;
    }
    char key_path[CMD_REPLICA_PATH_MAX];
    char data_path[CMD_REPLICA_PATH_MAX];
    if (cmd_replica_key_default(&o, key_path, sizeof(key_path)) != CMD_OK ||
        cmd_replica_data_default(&o, data_path, sizeof(data_path)) != CMD_OK) {
        return CMD_FAIL;
    }
    struct rt_replica_config *config = calloc(1, sizeof(*config));
    if (config == NULL) {
        return cmd_error(CMD_FAIL, "replica", "out of memory");
    }
    /* The cluster first, so a bad --id is named before a missing key file. */
    rc = cmd_common_load(&o.common, &config->cluster, NULL);
    if (rc == CMD_OK && (uint64_t)o.id >= config->cluster.replica_count) {
        rc = cmd_error(CMD_USAGE, "replica",
                       "--id %lld is not in the cluster: it has replicas "
                       "0 to %u",
                       o.id, config->cluster.replica_count - 1);
    }
    if (rc == CMD_OK) {
        rc = cmd_common_load(&o.common, &config->cluster, &config->key);
    }
    if (rc == CMD_OK && o.dump_events) {
        char reason[512];
        struct stat st;
        if (stat(o.data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = cmd_error(CMD_FAIL, "replica", "no data directory %s", o.data_dir);
        } else if (rt_store_dump_events(o.data_dir, &config->cluster, (uint32_t)o.id, stdout,
                                        reason, sizeof(reason)) != 0) {
            rc = cmd_error(CMD_FAIL, "replica", "replica %lld: %s", o.id, reason);
        }
        key_identity_wipe(&config->key);
        free(config);
        return rc;
    }
    if (rc == CMD_OK && o.data_dir != NULL) {
        rc = cmd_replica_mkdir(o.data_dir);
    }
    if (rc == CMD_OK) {
        config->self = (uint32_t)o.id;
        config->batch_max = o.batch_max;
        config->pipeline_max = o.pipeline_max;
        config->request_timeout_ms = o.request_timeout_ms;
        config->data_dir = o.data_dir;
        config->rebuild = o.rebuild;
        config->queue_events_max = o.queue_events_max;
        config->queue_bytes_max = o.queue_bytes_max;
        config->overflow = o.overflow;
        char reason[512];
        int err = rt_replica_run(config, reason, sizeof(reason));
        if (err != 0) {
            rc = cmd_error(CMD_FAIL, "replica", "replica %lld: %s", o.id, reason);
        }
    }
    key_identity_wipe(&config->key);
    free(config);
    return rc;
}

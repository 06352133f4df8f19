/* cmd_demo.c: `trone demo`: a narrated run for a newcomer. Makes a 4-replica BFT cluster in a
 * temporary directory, starts the replicas as child processes, creates channels, kills the
 * leader, shows the view change, keeps working with one replica down, restarts it and checks
 * that it catches up to the same control table. Every step checks what it claims; the run is
 * bounded by one deadline and cleans up its processes on every path (cmd_spawn.h). */
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <limits.h>
#include <unistd.h>

#include "broker/brk_op.h"
#include "cli/cmd.h"
#include "cli/cmd_demo.h"
#include "cli/cmd_spawn.h"
#include "core/assert.h"
#include "core/key.h"
#include "rt/rt_client.h"
#include "rt/rt_ctl.h"

/* The whole run: every wait and call takes at most what is left of this. */
#define DEMO_BUDGET_MS 150000u
/* What the Byzantine replica of the event round does (see tests/integration/byz/byz.h). */
#define DEMO_BYZ_MODE_DEFAULT "ev-alter"

struct demo_channel {
    const char *tag;
    const char *cls;
    const char *publishers;
};

/* Created while every replica runs, then while replica 0 is down. */
static const struct demo_channel demo_first[] = {
    {"os.metrics", "cft,fifo,si,urgency=2", DEMO_CLIENT},
    {"diag.alerts", "bft,total,pks,urgency=7,durable", DEMO_CLIENT},
    {"net.paths", "cft,fifo,ha,urgency=5", DEMO_CLIENT},
};
static const struct demo_channel demo_later[] = {
    {"mh.events", "bft,fifo,pks,urgency=6", DEMO_CLIENT},
    {"gw.nagios", "cft,fifo,si,urgency=1,durable", "*"},
    {"console.audit", "bft,total,pke,urgency=3,durable", "*"},
};
#define DEMO_FIRST_COUNT (sizeof(demo_first) / sizeof(demo_first[0]))
#define DEMO_LATER_COUNT (sizeof(demo_later) / sizeof(demo_later[0]))

static void demo_usage(FILE *out)
{
    fprintf(out,
            "usage: trone demo [--byz PATH [--byz-mode MODE]] [--keep]\n"
            "\n"
            "A narrated tour: makes a 4-replica BFT cluster (f=1) in a temporary directory,\n"
            "starts the replicas (this binary's `trone replica`), shows their status, registers a\n"
            "client, creates channels with classes, kills the leader with SIGKILL, shows the\n"
            "view change, creates channels while that replica is down, restarts it, waits until\n"
            "it holds the same control table as the others and prints the agreed table.\n"
            "Then events: one publisher and two subscribers (`trone sub`) on a CFT and a BFT\n"
            "channel while a replica is killed half way, and, with it back, on the BFT channel\n"
            "while another replica runs the Byzantine build given by --byz; the subscribers'\n"
            "outputs are checked to be complete, in order and identical. Each step prints what\n"
            "it did and what it observed. Takes under a minute (at most %u s); every process is\n"
            "stopped at the end, also on Ctrl-C.\n"
            "\n"
            "  --byz PATH       the test-only Byzantine replica binary (trone-byz, built with\n"
            "                   the tests beside trone); without it the Byzantine round is skipped\n"
            "  --byz-mode MODE  its behaviour, the TRONE_BYZ value (default %s)\n"
            "  --keep           keep the directory (cluster file, keys, logs) and print its path\n"
            "\n"
            "exit status: 0 every step held, 1 a step failed (named on stderr), 2 usage error\n",
            DEMO_BUDGET_MS / 1000u, DEMO_BYZ_MODE_DEFAULT);
}

/* What is left of the run's budget, at most cap. */
uint64_t demo_left_ms(const struct demo *d, uint64_t cap)
{
    uint64_t now = spawn_now_ms();
    uint64_t left = d->deadline_ms > now ? d->deadline_ms - now : 1;
    return left < cap ? left : cap;
}

void demo_say(struct demo *d, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    printf("[%2u] ", ++d->step);
    vprintf(fmt, args);
    printf("\n");
    va_end(args);
    fflush(stdout);
}

static int demo_fail(struct demo *d)
{
    d->set.keep_dir = true;
    fflush(stdout);
    return cmd_error(CMD_FAIL, "demo", "step %u failed (%s): %s; logs kept in %s", d->step + 1,
                     d->doing, d->errmsg, d->set.dir);
}

/* Runs d->op through the replicas as the admin; 0 only if agreed and accepted. */
int demo_call(struct demo *d)
{
    struct brk_result res;
    int rc = rt_ctl_call(d->admin, &d->op, demo_left_ms(d, DEMO_CALL_MS), &d->bytes, &res,
                         d->errmsg, sizeof(d->errmsg));
    if (rc == 0 && res.status != 0) {
        snprintf(d->errmsg, sizeof(d->errmsg), "%s refused: %s", brk_op_kind_name(d->op.kind),
                 res.message);
        rc = res.status;
    }
    return rc;
}

static int demo_create(struct demo *d, const struct demo_channel *ch)
{
    char reason[256];
    brk_op_init(&d->op, BRK_OP_CHANNEL_CREATE);
    int rc = brk_op_set_tag(&d->op, ch->tag);
    rc = rc != 0 ? rc : brk_class_parse(&d->op.cls, ch->cls, reason, sizeof(reason));
    rc = rc != 0 ? rc : brk_name_list_parse(&d->op.publishers, ch->publishers, NULL, 0);
    rc = rc != 0 ? rc : brk_name_list_add(&d->op.subscribers, BRK_NAME_ANY);
    TRONE_ASSERT(rc == 0); /* the demo's own constants */
    return demo_call(d);
}

uint64_t demo_mask_all(void) { return (UINT64_C(1) << DEMO_REPLICAS) - 1u; }

/* Waits until the replicas in mask settle (spawn_cluster_wait) within the budget. */
int demo_wait(struct demo *d, uint64_t mask, bool same_state, uint64_t cap_ms)
{
    return spawn_cluster_wait(&d->cluster, d->admin, mask, same_state, demo_left_ms(d, cap_ms),
                              &d->report, d->errmsg, sizeof(d->errmsg));
}

void demo_print_status(const struct demo *d)
{
    printf("       %-3s %-6s %-6s %-9s %-16s %s\n", "ID", "VIEW", "LEADER", "EXECUTED", "DIGEST",
           "PEERS");
    for (uint32_t j = 0; j < d->report.replica_count; j++) {
        const struct rt_client_replica_status *r = &d->report.replicas[j];
        if (!r->answered) {
            printf("       %-3u unreachable: %s\n", j, r->error);
            continue;
        }
        char digest[17];
        key_hex_encode(digest, r->status.digest, 8);
        uint32_t peers = 0;
        for (uint32_t k = 0; k < DEMO_REPLICAS; k++) {
            peers += (uint32_t)((r->status.peers >> k) & 1u);
        }
        printf("       %-3u %-6llu %-6u %-9llu %-16s %u of %u\n", j,
               (unsigned long long)r->status.view, r->status.leader,
               (unsigned long long)r->status.executed, digest, peers, DEMO_REPLICAS - 1);
    }
    fflush(stdout);
}

/* The first answering replica in mask (all of them agree after demo_wait). */
const struct rt_status *demo_status_of(const struct demo *d, uint64_t mask)
{
    for (uint32_t j = 0; j < d->report.replica_count; j++) {
        if (((mask >> j) & 1u) != 0 && d->report.replicas[j].answered) {
            return &d->report.replicas[j].status;
        }
    }
    TRONE_ASSERT(0 && "demo_wait returned with every replica of mask answering");
    return NULL;
}

/* The expected class of tag among the first `later` later channels, or NULL if not expected. */
static const struct demo_channel *demo_expected(const char *tag, uint32_t later)
{
    for (uint32_t i = 0; i < DEMO_FIRST_COUNT; i++) {
        if (strcmp(demo_first[i].tag, tag) == 0) {
            return &demo_first[i];
        }
    }
    for (uint32_t i = 0; i < later && i < DEMO_LATER_COUNT; i++) {
        if (strcmp(demo_later[i].tag, tag) == 0) {
            return &demo_later[i];
        }
    }
    return NULL;
}

/* Lists the channels; checks that they are exactly the ones created, with their classes. */
static int demo_list(struct demo *d, uint32_t later, bool print)
{
    brk_op_init(&d->op, BRK_OP_CHANNEL_LIST);
    int rc = demo_call(d);
    struct brk_result res;
    struct brk_channel_iter it;
    rc = rc != 0 ? rc : brk_result_decode(d->bytes.data, d->bytes.used, &res);
    rc = rc != 0 ? rc : brk_channel_iter_init(&it, res.body, res.body_size);
    uint32_t count = 0;
    for (uint32_t i = 0; rc == 0 && i <= TRONE_CHANNELS_MAX; i++) {
        int next = brk_channel_iter_next(&it, &d->info);
        if (next <= 0) {
            rc = next;
            break;
        }
        const struct demo_channel *want = demo_expected(d->info.tag, later);
        struct brk_class cls;
        char text[BRK_CLASS_TEXT_MAX];
        (void)brk_class_format(&d->info.cls, text, sizeof(text));
        if (want == NULL || brk_class_parse(&cls, want->cls, NULL, 0) != 0 ||
            !brk_class_equal(&cls, &d->info.cls)) {
            snprintf(d->errmsg, sizeof(d->errmsg), "unexpected channel %s (%s)", d->info.tag, text);
            return TRONE_ECORRUPT;
        }
        count++;
        if (print) {
            printf("       %-14s %-32s publishers %-8s subscribers %s\n", d->info.tag, text,
                   d->info.publishers.count > 0 ? d->info.publishers.names[0] : "-",
                   d->info.subscribers.count > 0 ? d->info.subscribers.names[0] : "-");
        }
    }
    if (rc == 0 && (count != DEMO_FIRST_COUNT + later || it.more)) {
        snprintf(d->errmsg, sizeof(d->errmsg), "the table lists %u channels, expected %u", count,
                 (unsigned)(DEMO_FIRST_COUNT + later));
        rc = TRONE_ECORRUPT;
    }
    return rc;
}

/* ---- The steps ---------------------------------------------------------------------------- */

static int demo_start(struct demo *d)
{
    d->doing = "make the cluster";
    int rc = spawn_cluster_init(&d->cluster, &d->set, "cluster", DEMO_REPLICAS, true, d->errmsg,
                                sizeof(d->errmsg));
    if (rc != 0) {
        return rc;
    }
    const struct cfg_cluster *c = &d->cluster.config;
    demo_say(d,
             "trone init: a %u-replica BFT cluster tolerating f=%u Byzantine replica in %s, "
             "on 127.0.0.1 ports %u-%u",
             c->replica_count, c->fault_count, d->cluster.dir, (unsigned)c->replicas[0].port,
             (unsigned)c->replicas[c->replica_count - 1].port);
    d->doing = "start the replicas";
    uint64_t start = spawn_now_ms();
    for (uint32_t id = 0; id < DEMO_REPLICAS && rc == 0; id++) {
        rc = spawn_replica_start(&d->cluster, id, d->errmsg, sizeof(d->errmsg));
    }
    struct key_identity admin_key;
    if (rc == 0) {
        rc = key_identity_load(&admin_key, d->cluster.admin_key_path, d->errmsg, sizeof(d->errmsg));
    }
    if (rc == 0) {
        d->admin = rt_client_create(c, &admin_key);
        key_identity_wipe(&admin_key);
        rc = d->admin != NULL ? 0 : TRONE_ENOMEM;
    }
    rc = rc != 0 ? rc : demo_wait(d, demo_mask_all(), false, 15000u);
    if (rc == 0) {
        pid_t *p = d->cluster.pids;
        demo_say(d,
                 "trone replica --id 0..3: pids %d %d %d %d; all connected to each other "
                 "after %llu ms (logs: %s/replica<I>.log)",
                 (int)p[0], (int)p[1], (int)p[2], (int)p[3],
                 (unsigned long long)(spawn_now_ms() - start), d->cluster.dir);
    }
    return rc;
}

static int demo_status(struct demo *d)
{
    d->doing = "show status";
    const struct rt_status *s = demo_status_of(d, demo_mask_all());
    if (s->leader != 0 || s->view != 0) {
        snprintf(d->errmsg, sizeof(d->errmsg), "a fresh cluster is in view %llu, leader %u",
                 (unsigned long long)s->view, s->leader);
        return TRONE_EPROTO;
    }
    demo_say(d, "trone status: every replica in view %llu, leader %u, same table digest",
             (unsigned long long)s->view, s->leader);
    demo_print_status(d);
    return 0;
}

static int demo_register(struct demo *d)
{
    d->doing = "register a client";
    char path[SPAWN_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/keys/%s.key", d->cluster.dir, DEMO_CLIENT);
    struct key_identity key;
    int rc = key_identity_generate(&key, DEMO_CLIENT);
    TRONE_ASSERT(rc == 0);
    rc = key_identity_save(&key, path);
    if (rc != 0) {
        snprintf(d->errmsg, sizeof(d->errmsg), "cannot write %s: %s", path, trone_strerror(rc));
    } else {
        brk_op_init(&d->op, BRK_OP_REGISTER);
        rc = brk_op_set_register(&d->op, DEMO_CLIENT, key.public_key);
        TRONE_ASSERT(rc == 0);
        rc = demo_call(d);
    }
    key_identity_wipe(&key);
    if (rc == 0) {
        demo_say(d, "trone register %s %s: agreed by the replicas", DEMO_CLIENT, path);
    }
    return rc;
}

static int demo_channels(struct demo *d)
{
    d->doing = "create channels";
    int rc = 0;
    for (uint32_t i = 0; i < DEMO_FIRST_COUNT && rc == 0; i++) {
        rc = demo_create(d, &demo_first[i]);
    }
    if (rc != 0) {
        return rc;
    }
    demo_say(d, "trone channel create: %s (%s), %s (%s), %s (%s)", demo_first[0].tag,
             demo_first[0].cls, demo_first[1].tag, demo_first[1].cls, demo_first[2].tag,
             demo_first[2].cls);
    d->doing = "list channels";
    rc = demo_list(d, 0, false);
    if (rc == 0) {
        demo_say(d,
                 "trone channel list: %u channels with the classes asked for, f+1=%u "
                 "matching replies",
                 (unsigned)DEMO_FIRST_COUNT, d->cluster.config.fault_count + 1);
    }
    return rc;
}

static int demo_kill_leader(struct demo *d)
{
    d->doing = "kill the leader";
    uint32_t leader = demo_status_of(d, demo_mask_all())->leader;
    TRONE_ASSERT(leader == 0); /* checked by demo_status */
    int st = 0;
    pid_t pid = d->cluster.pids[leader];
    (void)spawn_replica_stop(&d->cluster, leader, SIGKILL, 2000u, &st);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
        char how[96];
        spawn_describe_status(st, how, sizeof(how));
        snprintf(d->errmsg, sizeof(d->errmsg), "replica %u %s, not by SIGKILL", leader, how);
        return TRONE_EPROTO;
    }
    demo_say(d, "kill -KILL %d: replica %u, the leader of view 0, is gone", (int)pid, leader);
    return 0;
}

static int demo_view_change(struct demo *d)
{
    d->doing = "create a channel without the leader";
    uint64_t start = spawn_now_ms();
    int rc = demo_create(d, &demo_later[0]);
    if (rc != 0) {
        return rc;
    }
    demo_say(d,
             "trone channel create %s: agreed after %.1f s: the backups' request timers "
             "expired, they changed view and the new leader ordered it",
             demo_later[0].tag, (double)(spawn_now_ms() - start) / 1000.0);
    d->doing = "show the view change";
    uint64_t alive = demo_mask_all() & ~UINT64_C(1);
    rc = demo_wait(d, alive, false, 15000u);
    if (rc != 0) {
        return rc;
    }
    const struct rt_status *s = demo_status_of(d, alive);
    if (s->view == 0 || s->leader == 0 || s->leader != s->view % DEMO_REPLICAS) {
        snprintf(d->errmsg, sizeof(d->errmsg), "replicas 1-3 are in view %llu with leader %u",
                 (unsigned long long)s->view, s->leader);
        return TRONE_EPROTO;
    }
    demo_say(d, "trone status: replicas 1-3 in view %llu with leader %u; replica 0 unreachable",
             (unsigned long long)s->view, s->leader);
    demo_print_status(d);
    return 0;
}

static int demo_degraded(struct demo *d)
{
    d->doing = "create channels while replica 0 is down";
    int rc = 0;
    for (uint32_t i = 1; i < DEMO_LATER_COUNT && rc == 0; i++) {
        rc = demo_create(d, &demo_later[i]);
    }
    rc = rc != 0 ? rc : demo_list(d, DEMO_LATER_COUNT, false);
    if (rc == 0) {
        demo_say(d,
                 "trone channel create %s, %s: agreed by replicas 1-3 (a quorum of 2f+1=3); "
                 "the table now holds %u channels",
                 demo_later[1].tag, demo_later[2].tag,
                 (unsigned)(DEMO_FIRST_COUNT + DEMO_LATER_COUNT));
    }
    return rc;
}

static int demo_restart(struct demo *d)
{
    d->doing = "restart replica 0";
    uint64_t start = spawn_now_ms();
    int rc = spawn_replica_start(&d->cluster, 0, d->errmsg, sizeof(d->errmsg));
    if (rc != 0) {
        return rc;
    }
    demo_say(d, "trone replica --id 0: restarted as pid %d with an empty table",
             (int)d->cluster.pids[0]);
    d->doing = "wait for replica 0 to catch up";
    rc = demo_wait(d, demo_mask_all(), true, 20000u);
    if (rc != 0) {
        return rc;
    }
    const struct rt_status *s = demo_status_of(d, demo_mask_all());
    char digest[17];
    key_hex_encode(digest, s->digest, 8);
    demo_say(d,
             "replica 0 caught up after %.1f s: all 4 in view %llu, executed %llu, "
             "table digest %s",
             (double)(spawn_now_ms() - start) / 1000.0, (unsigned long long)s->view,
             (unsigned long long)s->executed, digest);
    return 0;
}

static int demo_final(struct demo *d)
{
    d->doing = "print the final table";
    int rc = demo_list(d, DEMO_LATER_COUNT, false);
    if (rc != 0) {
        return rc;
    }
    demo_say(d, "trone channel list: the agreed control table");
    rc = demo_list(d, DEMO_LATER_COUNT, true);
    if (rc != 0) {
        return rc;
    }
    d->doing = "compare the digests";
    rc = demo_wait(d, demo_mask_all(), true, 5000u);
    if (rc == 0) {
        demo_say(d, "trone status: the same table digest on every replica");
        demo_print_status(d);
    }
    return rc;
}

static int demo_body(void *ctx)
{
    struct demo *d = ctx;
    d->deadline_ms = spawn_now_ms() + DEMO_BUDGET_MS;
    buf_init(&d->bytes, TRONE_RESULT_MAX);
    int (*const steps[])(struct demo *) = {demo_start,    demo_status,      demo_register,
                                           demo_channels, demo_kill_leader, demo_view_change,
                                           demo_degraded, demo_restart,     demo_final,
                                           demo_events};
    int rc = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && rc == 0; i++) {
        rc = steps[i](d);
        if (rc == 0) {
            rc = spawn_cluster_check_alive(&d->cluster, d->errmsg, sizeof(d->errmsg));
        }
    }
    rt_client_destroy(d->admin);
    d->admin = NULL;
    if (rc == 0) {
        d->doing = "stop the replicas";
        rc = spawn_cluster_stop(&d->cluster, d->errmsg, sizeof(d->errmsg));
    }
    buf_close(&d->bytes);
    if (rc != 0) {
        return demo_fail(d);
    }
    printf("demo ok: every step held; replicas stopped%s%s\n",
           d->set.keep_dir ? "; files kept in " : "", d->set.keep_dir ? d->set.dir : "");
    return CMD_OK;
}

int cmd_demo(int argc, char **argv)
{
    bool keep = false;
    const char *byz = "";
    const char *byz_mode = DEMO_BYZ_MODE_DEFAULT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            demo_usage(stdout);
            return CMD_OK;
        }
        if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else if ((strcmp(argv[i], "--byz") == 0 || strcmp(argv[i], "--byz-mode") == 0) &&
                   i + 1 < argc) {
            const char *value = argv[++i];
            if (strcmp(argv[i - 1], "--byz") == 0) {
                byz = value;
            } else {
                byz_mode = value;
            }
        } else {
            return cmd_error(CMD_USAGE, "demo", "unknown or incomplete argument '%s' (see trone "
                             "demo --help)", argv[i]);
        }
    }
    if (strlen(byz) >= SPAWN_PATH_MAX || strlen(byz_mode) >= 32u) {
        return cmd_error(CMD_USAGE, "demo", "--byz or --byz-mode is too long");
    }
    if (byz[0] != '\0' && access(byz, X_OK) != 0) {
        return cmd_error(CMD_USAGE, "demo", "--byz %s: not an executable file (build the tests: "
                         "scripts/demo.sh does)", byz);
    }
    if (sodium_init() < 0) {
        return cmd_error(CMD_FAIL, "demo", "libsodium failed to initialise");
    }
    struct demo *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return cmd_error(CMD_FAIL, "demo", "out of memory");
    }
    if (byz[0] != '\0' && realpath(byz, d->byz_exe) == NULL) {
        free(d);
        return cmd_error(CMD_USAGE, "demo", "--byz %s: cannot resolve the path", byz);
    }
    snprintf(d->byz_mode, sizeof(d->byz_mode), "%s", byz_mode);
    int rc = spawn_set_init(&d->set, "trone-demo", d->errmsg, sizeof(d->errmsg));
    if (rc != 0) {
        rc = cmd_error(CMD_FAIL, "demo", "%s", d->errmsg);
        free(d);
        return rc;
    }
    d->set.keep_dir = keep;
    rc = spawn_guard_run(&d->set, "demo", demo_body, d);
    free(d);
    return rc;
}

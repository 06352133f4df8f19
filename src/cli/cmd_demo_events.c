/* cmd_demo_events.c: the event half of `trone demo`. One publisher (this process, through the
 * client API of trone.h) and two subscribers (`trone sub` children) on a CFT and a BFT channel:
 * first while one of the 4 replicas is killed, then, with it back, on the BFT channel while
 * another replica runs the test-only Byzantine build (one fault at a time: f = 1). After each
 * round the subscribers' outputs are compared with what was published: every event, once, in
 * order, and the same on both subscribers. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cli/cmd_demo.h"
#include "core/assert.h"
#include "core/key.h"
#include "trone/trone.h"

#define DEMO_EV_SUBSCRIBERS 2u
#define DEMO_EV_EVENTS 400u /* per channel and round */
#define DEMO_EV_PAYLOAD_MAX 64u
#define DEMO_EV_READY_MS 15000u
#define DEMO_EV_SUB_TIMEOUT_S "60"
#define DEMO_EV_FLUSH_MS 20000u

struct demo_ev_channel {
    const char *tag;
    const char *cls;
};

static const struct demo_ev_channel demo_ev_channels[] = {
    {"demo.cft", "cft,fifo,si,urgency=2"},
    {"demo.bft", "bft,fifo,si,urgency=4"},
};
#define DEMO_EV_CHANNELS (sizeof(demo_ev_channels) / sizeof(demo_ev_channels[0]))

/* One round: which channels, which replica dies half way (or none). */
struct demo_ev_round {
    uint32_t number;
    uint32_t channel_mask; /* bit i: demo_ev_channels[i] */
    int kill_replica;      /* -1: none */
    bool byzantine;        /* a replica is Byzantine: subscribers should attach to all */
};

struct demo_ev {
    struct demo *d;
    struct trone_client *pub;
    pid_t subs[DEMO_EV_CHANNELS][DEMO_EV_SUBSCRIBERS];
    char sub_logs[DEMO_EV_CHANNELS][DEMO_EV_SUBSCRIBERS][SPAWN_PATH_MAX + 64];
};

static void demo_ev_key_path(const struct demo *d, const char *name, char *out, size_t out_size)
{
    snprintf(out, out_size, "%.*s/keys/%s.key", (int)(SPAWN_PATH_MAX - 64), d->cluster.dir, name);
}

static void demo_ev_payload(char *out, size_t out_size, uint32_t round, const char *tag,
                            uint32_t seq)
{
    snprintf(out, out_size, "r%u:%s:%04u", round, tag, seq);
}

/* Registers console1 and console2 and creates the two channels, published by probe1 and read
 * by the consoles only. */
static int demo_ev_setup(struct demo *d)
{
    d->doing = "register the subscribers";
    for (uint32_t k = 1; k <= DEMO_EV_SUBSCRIBERS; k++) {
        char name[32];
        char path[SPAWN_PATH_MAX + 64];
        snprintf(name, sizeof(name), "console%u", k);
        demo_ev_key_path(d, name, path, sizeof(path));
        struct key_identity key;
        int rc = key_identity_generate(&key, name);
        TRONE_ASSERT(rc == 0);
        rc = key_identity_save(&key, path);
        if (rc != 0) {
            snprintf(d->errmsg, sizeof(d->errmsg), "cannot write %s: %s", path,
                     trone_strerror(rc));
        } else {
            brk_op_init(&d->op, BRK_OP_REGISTER);
            rc = brk_op_set_register(&d->op, name, key.public_key);
            TRONE_ASSERT(rc == 0);
            rc = demo_call(d);
        }
        key_identity_wipe(&key);
        if (rc != 0) {
            return rc;
        }
    }
    d->doing = "create the event channels";
    for (uint32_t i = 0; i < DEMO_EV_CHANNELS; i++) {
        char reason[256];
        brk_op_init(&d->op, BRK_OP_CHANNEL_CREATE);
        int rc = brk_op_set_tag(&d->op, demo_ev_channels[i].tag);
        rc = rc != 0 ? rc : brk_class_parse(&d->op.cls, demo_ev_channels[i].cls, reason,
                                            sizeof(reason));
        rc = rc != 0 ? rc : brk_name_list_add(&d->op.publishers, DEMO_CLIENT);
        rc = rc != 0 ? rc : brk_name_list_add(&d->op.subscribers, "console1");
        rc = rc != 0 ? rc : brk_name_list_add(&d->op.subscribers, "console2");
        TRONE_ASSERT(rc == 0); /* the demo's own constants */
        rc = demo_call(d);
        if (rc != 0) {
            return rc;
        }
    }
    demo_say(d,
             "trone register console1, console2; trone channel create %s --class %s and %s "
             "--class %s (publisher %s, subscribers console1 and console2)",
             demo_ev_channels[0].tag, demo_ev_channels[0].cls, demo_ev_channels[1].tag,
             demo_ev_channels[1].cls, DEMO_CLIENT);
    return 0;
}

/* Whether the file at path contains needle (small files: the subscribers' logs). */
static bool demo_ev_file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    fclose(f);
    return found;
}

static void demo_ev_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    (void)nanosleep(&ts, NULL);
}

/* Starts `trone sub TAG --count N` for both consoles on every channel of the round and waits
 * until each logged that enough replicas stream the channel to it. */
static int demo_ev_start_subs(struct demo_ev *ev, const struct demo_ev_round *round)
{
    struct demo *d = ev->d;
    d->doing = "start the subscribers";
    char count[16];
    snprintf(count, sizeof(count), "%u", DEMO_EV_EVENTS);
    for (uint32_t i = 0; i < DEMO_EV_CHANNELS; i++) {
        if (((round->channel_mask >> i) & 1u) == 0) {
            continue;
        }
        for (uint32_t k = 0; k < DEMO_EV_SUBSCRIBERS; k++) {
            char name[32];
            char key_path[SPAWN_PATH_MAX + 64];
            snprintf(name, sizeof(name), "console%u", k + 1);
            demo_ev_key_path(d, name, key_path, sizeof(key_path));
            snprintf(ev->sub_logs[i][k], sizeof(ev->sub_logs[i][k]), "%.*s/sub-r%u-%s-%s.out",
                     (int)(SPAWN_PATH_MAX - 64), d->cluster.dir, round->number,
                     demo_ev_channels[i].tag, name);
            char *argv[] = {"sub",           (char *)demo_ev_channels[i].tag,
                            "--count",       count,
                            "--timeout",     DEMO_EV_SUB_TIMEOUT_S,
                            "--cluster",     d->cluster.cluster_path,
                            "--key",         key_path,
                            NULL};
            int rc = spawn_start(&d->set, argv, ev->sub_logs[i][k], &ev->subs[i][k], d->errmsg,
                                 sizeof(d->errmsg));
            if (rc != 0) {
                return rc;
            }
        }
    }
    uint64_t until = spawn_now_ms() + demo_left_ms(d, DEMO_EV_READY_MS);
    for (uint32_t i = 0; i < DEMO_EV_CHANNELS; i++) {
        for (uint32_t k = 0; k < DEMO_EV_SUBSCRIBERS && ((round->channel_mask >> i) & 1u); k++) {
            /* rt_events logs msg="attached" once n-f replicas accepted the subscription. */
            while (!demo_ev_file_has(ev->sub_logs[i][k], "msg=\"attached\"")) {
                int st = 0;
                if (spawn_exited(&d->set, ev->subs[i][k], &st)) {
                    char how[96];
                    spawn_describe_status(st, how, sizeof(how));
                    ev->subs[i][k] = 0;
                    snprintf(d->errmsg, sizeof(d->errmsg), "trone sub %s %s (see %s)",
                             demo_ev_channels[i].tag, how, ev->sub_logs[i][k]);
                    return TRONE_EIO;
                }
                if (spawn_now_ms() >= until) {
                    snprintf(d->errmsg, sizeof(d->errmsg),
                             "trone sub %s not streaming after %u ms (see %s)",
                             demo_ev_channels[i].tag, DEMO_EV_READY_MS, ev->sub_logs[i][k]);
                    return TRONE_ETIMEDOUT;
                }
                demo_ev_sleep_ms(20);
            }
        }
    }
    /* A Byzantine replica can only tamper with what it forwards: in that round, give the
     * subscribers time to attach to it too (a loaded machine delays the last attach). */
    until = spawn_now_ms() + demo_left_ms(d, DEMO_EV_READY_MS);
    for (uint32_t i = 0; i < DEMO_EV_CHANNELS && round->byzantine; i++) {
        for (uint32_t k = 0; k < DEMO_EV_SUBSCRIBERS && ((round->channel_mask >> i) & 1u); k++) {
            while (!demo_ev_file_has(ev->sub_logs[i][k], "msg=\"attached to every replica\"") &&
                   spawn_now_ms() < until) {
                demo_ev_sleep_ms(20);
            }
        }
    }
    return 0;
}

/* Publishes events first..last of every channel of the round and waits until the cluster
 * acknowledged all of them as each channel's fault model requires. */
static int demo_ev_publish(struct demo_ev *ev, const struct demo_ev_round *round, uint32_t first,
                           uint32_t last)
{
    struct demo *d = ev->d;
    d->doing = "publish";
    for (uint32_t seq = first; seq <= last; seq++) {
        for (uint32_t i = 0; i < DEMO_EV_CHANNELS; i++) {
            if (((round->channel_mask >> i) & 1u) == 0) {
                continue;
            }
            char payload[DEMO_EV_PAYLOAD_MAX];
            demo_ev_payload(payload, sizeof(payload), round->number, demo_ev_channels[i].tag,
                            seq);
            int rc = trone_publish(ev->pub, demo_ev_channels[i].tag, payload, strlen(payload));
            for (uint32_t tries = 0; rc == TRONE_EBUSY && tries < 100u; tries++) {
                int flushed = trone_flush(ev->pub, 100u); /* room for more, or the refusal */
                rc = flushed < 0 ? flushed
                                 : trone_publish(ev->pub, demo_ev_channels[i].tag, payload,
                                                 strlen(payload));
            }
            if (rc != 0) {
                snprintf(d->errmsg, sizeof(d->errmsg), "trone_publish on %s: %s (%s)",
                         demo_ev_channels[i].tag, trone_strerror(rc), trone_last_error(ev->pub));
                return rc;
            }
        }
    }
    int left = trone_flush(ev->pub, demo_left_ms(d, DEMO_EV_FLUSH_MS));
    if (left != 0) {
        snprintf(d->errmsg, sizeof(d->errmsg), "%s after trone_flush (%s)",
                 left > 0 ? "events not acknowledged" : trone_strerror(left),
                 trone_last_error(ev->pub));
        return left > 0 ? TRONE_ETIMEDOUT : left;
    }
    return 0;
}

/* Waits for every subscriber of the round to exit 0 (it got its --count events). */
static int demo_ev_wait_subs(struct demo_ev *ev, const struct demo_ev_round *round)
{
    struct demo *d = ev->d;
    d->doing = "wait for the subscribers";
    for (uint32_t i = 0; i < DEMO_EV_CHANNELS; i++) {
        for (uint32_t k = 0; k < DEMO_EV_SUBSCRIBERS && ((round->channel_mask >> i) & 1u); k++) {
            int st = 0;
            while (!spawn_exited(&d->set, ev->subs[i][k], &st)) {
                if (demo_left_ms(d, UINT64_MAX) <= 1u) {
                    snprintf(d->errmsg, sizeof(d->errmsg),
                             "trone sub %s still running at the end of the demo (see %s)",
                             demo_ev_channels[i].tag, ev->sub_logs[i][k]);
                    return TRONE_ETIMEDOUT;
                }
                demo_ev_sleep_ms(20);
            }
            ev->subs[i][k] = 0;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                char how[96];
                spawn_describe_status(st, how, sizeof(how));
                snprintf(d->errmsg, sizeof(d->errmsg), "trone sub %s %s (see %s)",
                         demo_ev_channels[i].tag, how, ev->sub_logs[i][k]);
                return TRONE_EIO;
            }
        }
    }
    return 0;
}

/* Checks one subscriber's output: exactly the round's events of the channel, each once, in
 * publish order; nothing else that looks like an event. Log lines (key=value) are skipped, and
 * so are gap reports: what counts is that every event is there. A Byzantine replica that sends
 * a seq below the stream's start makes a fresh BFT subscriber wait for it and report it as a
 * gap, by design (test_cln_sub: test_start_forged_low_and_lone_sender), with nothing lost. */
static int demo_ev_check_output(struct demo *d, const char *path, uint32_t round, const char *tag)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(d->errmsg, sizeof(d->errmsg), "cannot read %s", path);
        return TRONE_EIO;
    }
    char prefix[DEMO_EV_PAYLOAD_MAX];
    snprintf(prefix, sizeof(prefix), "r%u:", round);
    char line[1024];
    uint32_t next = 1;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            char want[DEMO_EV_PAYLOAD_MAX];
            demo_ev_payload(want, sizeof(want), round, tag, next);
            if (strcmp(line, want) != 0) {
                snprintf(d->errmsg, sizeof(d->errmsg), "%s: expected \"%s\", got \"%s\"", path,
                         want, line);
                rc = TRONE_EPROTO;
            }
            next++;
        }
    }
    fclose(f);
    if (rc == 0 && next != DEMO_EV_EVENTS + 1u) {
        snprintf(d->errmsg, sizeof(d->errmsg), "%s: %u of %u events", path, next - 1u,
                 DEMO_EV_EVENTS);
        rc = TRONE_EPROTO;
    }
    return rc;
}

static int demo_ev_check(struct demo_ev *ev, const struct demo_ev_round *round)
{
    struct demo *d = ev->d;
    d->doing = "compare the subscribers' outputs";
    for (uint32_t i = 0; i < DEMO_EV_CHANNELS; i++) {
        for (uint32_t k = 0; k < DEMO_EV_SUBSCRIBERS && ((round->channel_mask >> i) & 1u); k++) {
            int rc = demo_ev_check_output(d, ev->sub_logs[i][k], round->number,
                                          demo_ev_channels[i].tag);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* One round: subscribers up, half the events, the kill (if any), the other half, checks. */
static int demo_ev_round(struct demo_ev *ev, const struct demo_ev_round *round)
{
    struct demo *d = ev->d;
    int rc = demo_ev_start_subs(ev, round);
    rc = rc != 0 ? rc : demo_ev_publish(ev, round, 1, DEMO_EV_EVENTS / 2u);
    if (rc == 0 && round->kill_replica >= 0) {
        d->doing = "kill a replica";
        uint32_t id = (uint32_t)round->kill_replica;
        pid_t pid = d->cluster.pids[id];
        int st = 0;
        (void)spawn_replica_stop(&d->cluster, id, SIGKILL, 2000u, &st);
        demo_say(d, "kill -KILL %d: replica %u is gone after %u events per channel", (int)pid, id,
                 DEMO_EV_EVENTS / 2u);
    }
    rc = rc != 0 ? rc : demo_ev_publish(ev, round, DEMO_EV_EVENTS / 2u + 1u, DEMO_EV_EVENTS);
    rc = rc != 0 ? rc : demo_ev_wait_subs(ev, round);
    rc = rc != 0 ? rc : demo_ev_check(ev, round);
    return rc;
}

static int demo_ev_open_publisher(struct demo_ev *ev)
{
    struct demo *d = ev->d;
    d->doing = "open the publisher";
    char key_path[SPAWN_PATH_MAX + 64];
    demo_ev_key_path(d, DEMO_CLIENT, key_path, sizeof(key_path));
    int rc = trone_open(d->cluster.cluster_path, key_path, &ev->pub);
    if (rc != 0) {
        snprintf(d->errmsg, sizeof(d->errmsg), "trone_open: %s", trone_strerror(rc));
    }
    return rc;
}

/* Replaces replica id by the Byzantine build in mode (TRONE_BYZ) and waits for it to join. */
static int demo_ev_byzantine(struct demo *d, uint32_t id)
{
    d->doing = "start a Byzantine replica";
    int st = 0;
    (void)spawn_replica_stop(&d->cluster, id, SIGTERM, 3000u, &st);
    char env[64];
    snprintf(env, sizeof(env), "TRONE_BYZ=%s", d->byz_mode);
    int rc = spawn_replica_start_exe(&d->cluster, id, d->byz_exe, env, d->errmsg,
                                     sizeof(d->errmsg));
    /* Same state: it holds the channels (caught up), so it serves the subscribers. */
    rc = rc != 0 ? rc : demo_wait(d, demo_mask_all(), true, 20000u);
    if (rc == 0) {
        demo_say(d,
                 "replica %u restarted as the test-only Byzantine build (%s, TRONE_BYZ=%s): "
                 "pid %d, caught up with the others",
                 id, d->byz_exe, d->byz_mode, (int)d->cluster.pids[id]);
    }
    return rc;
}

/* The number of Byzantine actions replica id logged (the largest actions=N of its log). */
static uint64_t demo_ev_byz_actions(const struct demo *d, uint32_t id)
{
    char path[SPAWN_PATH_MAX];
    spawn_replica_log(&d->cluster, id, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    char line[1024];
    uint64_t most = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *at = strstr(line, "msg=\"byzantine event action\"");
        at = at != NULL ? strstr(at, " actions=") : NULL;
        if (at != NULL) {
            uint64_t n = strtoull(at + strlen(" actions="), NULL, 10);
            most = n > most ? n : most;
        }
    }
    fclose(f);
    return most;
}

int demo_events(struct demo *d)
{
    struct demo_ev *ev = calloc(1, sizeof(*ev));
    if (ev == NULL) {
        snprintf(d->errmsg, sizeof(d->errmsg), "out of memory");
        return TRONE_ENOMEM;
    }
    ev->d = d;
    int rc = demo_ev_setup(d);
    rc = rc != 0 ? rc : demo_ev_open_publisher(ev);

    const struct demo_ev_round crash = {.number = 1, .channel_mask = 3u, .kill_replica = 3};
    rc = rc != 0 ? rc : demo_ev_round(ev, &crash);
    if (rc == 0) {
        demo_say(d,
                 "trone pub (probe1) and trone sub (console1, console2) on %s and %s: %u events "
                 "per channel, every one delivered once and in order to both subscribers, "
                 "identical outputs, with replica 3 killed half way",
                 demo_ev_channels[0].tag, demo_ev_channels[1].tag, DEMO_EV_EVENTS);
        d->doing = "restart replica 3";
        rc = spawn_replica_start(&d->cluster, 3, d->errmsg, sizeof(d->errmsg));
        rc = rc != 0 ? rc : demo_wait(d, demo_mask_all(), true, 20000u);
    }
    if (rc == 0) {
        demo_say(d, "trone replica --id 3: back, same table digest as the others");
    }

    if (rc == 0 && d->byz_exe[0] == '\0') {
        demo_say(d, "no Byzantine round: run with --byz PATH (scripts/demo.sh passes the "
                    "test-only trone-byz built beside trone)");
    } else if (rc == 0) {
        rc = demo_ev_byzantine(d, 1);
        /* The publisher's sessions reconnect in the background while its loop runs; the
         * longest reconnect backoff is RT_BACKOFF_MAX_MS (2 s). Run it past that, so the
         * Byzantine replica gets the events too (else it has nothing to tamper with). */
        int ran = rc == 0 ? trone_run(ev->pub, 2500u) : 0;
        rc = ran < 0 ? ran : rc;
        const struct demo_ev_round byz = {
            .number = 2, .channel_mask = 2u, .kill_replica = -1, .byzantine = true};
        rc = rc != 0 ? rc : demo_ev_round(ev, &byz);
        uint64_t actions = rc == 0 ? demo_ev_byz_actions(d, 1) : 0;
        if (rc == 0 && actions == 0) {
            snprintf(d->errmsg, sizeof(d->errmsg),
                     "replica 1 logged no Byzantine action: the round proved nothing");
            rc = TRONE_EPROTO;
        }
        if (rc == 0) {
            demo_say(d,
                     "trone pub and trone sub on %s while replica 1 is Byzantine (at least "
                     "%llu tampered messages, see %s/replica1.log): %u events, every one "
                     "delivered once and in order to both subscribers, identical outputs "
                     "(each event needs f+1=2 matching copies)",
                     demo_ev_channels[1].tag, (unsigned long long)actions, d->cluster.dir,
                     DEMO_EV_EVENTS);
        }
    }
    trone_close(ev->pub);
    for (uint32_t i = 0; i < DEMO_EV_CHANNELS; i++) {
        for (uint32_t k = 0; k < DEMO_EV_SUBSCRIBERS; k++) {
            if (ev->subs[i][k] > 0) {
                int st = 0;
                (void)spawn_stop(&d->set, ev->subs[i][k], SIGTERM, 2000u, &st);
            }
        }
    }
    free(ev);
    return rc;
}

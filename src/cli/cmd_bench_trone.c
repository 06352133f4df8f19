/* cmd_bench_trone.c: the TRONE side of `trone bench events` (cmd_bench_events.h): a temporary
 * cluster per class, publishers and subscribers registered with their own identities, and one
 * thread with its own trone_client per publisher and subscriber, driven by the harness. Only
 * for the CLI. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_op.h"
#include "cli/cmd_bench_events.h"
#include "core/assert.h"
#include "core/key.h"
#include "rt/rt_ctl.h"
#include "trone/trone.h"

#define EVT_CALL_MS 20000u
#define EVT_READY_MS 20000u
#define EVT_WARM_MS 20000u

/* ---- TRONE clients ------------------------------------------------------------------------ */

struct evt_client {
    struct evb_run *run;
    uint32_t index;
    const char *cluster_path;
    const char *tag;
    char key_path[SPAWN_PATH_MAX];
    _Atomic int *refused; /* the class was refused at warm-up (not a failure of the bench) */
};

/* Waits at most 1 ms for the client's network, then runs it without blocking. */
static int evt_pump(struct trone_client *c)
{
    struct pollfd fd = {.fd = trone_fd(c), .events = POLLIN};
    uint64_t wait_ms = trone_wait_ms(c);
    (void)poll(&fd, 1, wait_ms > 1 ? 1 : (int)wait_ms);
    return trone_run(c, 0);
}

/* One warm-up event (seq 0): learns the class, opens the sessions, proves the path works. */
static void evt_pub_warm(struct evt_client *k, struct trone_client *c, uint8_t *payload)
{
    struct evb_run *r = k->run;
    evb_payload_fill(payload, k->index, 0, evb_now_ns());
    int rc = trone_publish(c, k->tag, payload, r->size);
    if (rc == 0) {
        rc = trone_flush(c, EVT_WARM_MS);
    }
    if (rc < 0 && rc != TRONE_ETIMEDOUT) {
        atomic_store(k->refused, rc);
    }
    if (rc != 0) {
        evb_fail(r, "publisher %u: warm-up event: %s", k->index, trone_last_error(c));
    }
}

static void evt_pub_loop(struct evt_client *k, struct trone_client *c, uint8_t *payload)
{
    struct evb_run *r = k->run;
    uint64_t start = evb_now_ns();
    for (uint64_t round = 0; round < UINT64_MAX && !evb_failed(r); round++) {
        uint64_t now = evb_now_ns();
        bool done = false;
        uint64_t allowed = evb_pub_allowed(r, k->index, start, now, &done);
        if (done || evb_stalled(r, now)) {
            break;
        }
        uint64_t seq = atomic_load(&r->published[k->index]);
        uint64_t sent = 0;
        int rc = 0;
        while (sent < allowed && sent < 1024u) {
            evb_payload_fill(payload, k->index, seq + sent + 1u, now);
            rc = trone_publish(c, k->tag, payload, r->size);
            if (rc != 0) {
                break;
            }
            sent++;
        }
        evb_pub_sent(r, k->index, sent);
        if (rc != 0 && rc != TRONE_EBUSY) {
            evb_fail(r, "publisher %u: %s", k->index, trone_last_error(c));
            break;
        }
        rc = sent < allowed || allowed == 0 ? evt_pump(c) : trone_run(c, 0);
        if (rc < 0) {
            evb_fail(r, "publisher %u: %s", k->index, trone_last_error(c));
        }
    }
    int left = evb_failed(r) ? 0 : trone_flush(c, EVB_STALL_MS);
    if (left != 0) {
        evb_fail(r, "publisher %u: %d events not acknowledged: %s", k->index, left,
                 trone_last_error(c));
    }
}

static void *evt_pub_main(void *arg)
{
    struct evt_client *k = arg;
    struct evb_run *r = k->run;
    struct trone_client *c = NULL;
    uint8_t *payload = calloc(1, r->size);
    int rc = payload != NULL ? trone_open(k->cluster_path, k->key_path, &c) : TRONE_ENOMEM;
    if (rc != 0) {
        evb_fail(r, "publisher %u: cannot open a client: %s", k->index, trone_strerror(rc));
    }
    pthread_barrier_wait(&r->ready);
    if (!evb_failed(r)) {
        evt_pub_warm(k, c, payload);
    }
    pthread_barrier_wait(&r->start);
    if (!evb_failed(r)) {
        evt_pub_loop(k, c, payload);
    }
    trone_close(c);
    free(payload);
    return NULL;
}

static void evt_sub_event(void *ctx, const struct trone_event *ev)
{
    struct evt_client *k = ctx;
    if (ev->kind != TRONE_EVENT_DATA) {
        evb_fail(k->run, "subscriber %u: a GAP of %llu events (lost)", k->index,
                 (unsigned long long)ev->lost);
        return;
    }
    (void)evb_sub_deliver(k->run, k->index, ev->payload, ev->payload_size, evb_now_ns());
}

static void *evt_sub_main(void *arg)
{
    struct evt_client *k = arg;
    struct evb_run *r = k->run;
    struct trone_client *c = NULL;
    int rc = trone_open(k->cluster_path, k->key_path, &c);
    if (rc == 0) {
        rc = trone_subscribe(c, k->tag, evt_sub_event, k);
    }
    if (rc != 0) {
        evb_fail(r, "subscriber %u: %s", k->index,
                 c != NULL ? trone_last_error(c) : trone_strerror(rc));
    }
    pthread_barrier_wait(&r->ready);
    uint64_t deadline = evb_now_ns() + (uint64_t)EVT_WARM_MS * 1000000u;
    while (!evb_failed(r) && !evb_sub_warm(r, k->index)) {
        int ran = trone_run(c, 5);
        if (ran < 0) {
            atomic_store(k->refused, ran); /* the replicas refused the subscription's class */
        }
        if (ran < 0 || evb_now_ns() > deadline) {
            evb_fail(r, "subscriber %u: warm-up events did not arrive: %s", k->index,
                     trone_last_error(c));
        }
    }
    pthread_barrier_wait(&r->start);
    while (!evb_failed(r) && !evb_sub_complete(r, k->index) && !evb_stalled(r, evb_now_ns())) {
        if (trone_run(c, 5) < 0) {
            evb_fail(r, "subscriber %u: %s", k->index, trone_last_error(c));
        }
    }
    trone_close(c);
    return NULL;
}

/* ---- A cluster per class ------------------------------------------------------------------ */

static int evt_admin_call(struct evt_cluster *x)
{
    struct buf bytes;
    buf_init(&bytes, TRONE_RESULT_MAX);
    struct brk_result res;
    int rc = rt_ctl_call(x->admin, &x->op, EVT_CALL_MS, &bytes, &res, x->errmsg,
                         sizeof(x->errmsg));
    if (rc == 0 && res.status != 0) {
        snprintf(x->errmsg, sizeof(x->errmsg), "%s refused: %s", brk_op_kind_name(x->op.kind),
                 res.message);
        rc = res.status;
    }
    buf_close(&bytes);
    return rc;
}

static void evt_client_name(char *out, size_t size, bool publisher, uint32_t index)
{
    snprintf(out, size, "%s%u", publisher ? "pub" : "sub", index);
}

static void evt_key_path(const struct evt_cluster *x, char *out, size_t size, bool publisher,
                         uint32_t index)
{
    char name[32];
    evt_client_name(name, sizeof(name), publisher, index);
    bool fit = evb_format(out, size, "%s/keys/%s.key", x->cluster.dir, name);
    TRONE_ASSERT(fit); /* the cluster directory is shorter than SPAWN_PATH_MAX minus a name */
}

/* Registers every publisher and subscriber identity; their key files go beside the admin's. */
static int evt_register(struct evt_cluster *x)
{
    int rc = 0;
    for (uint32_t k = 0; k < x->pub_count + x->sub_count && rc == 0; k++) {
        bool publisher = k < x->pub_count;
        uint32_t index = publisher ? k : k - x->pub_count;
        char name[32];
        char path[SPAWN_PATH_MAX];
        evt_client_name(name, sizeof(name), publisher, index);
        evt_key_path(x, path, sizeof(path), publisher, index);
        struct key_identity key;
        rc = key_identity_generate(&key, name);
        rc = rc != 0 ? rc : key_identity_save(&key, path);
        if (rc != 0) {
            evb_format(x->errmsg, sizeof(x->errmsg), "cannot write %s: %s", path,
                       trone_strerror(rc));
        } else {
            brk_op_init(&x->op, BRK_OP_REGISTER);
            rc = brk_op_set_register(&x->op, name, key.public_key);
            TRONE_ASSERT(rc == 0);
            rc = evt_admin_call(x);
        }
        key_identity_wipe(&key);
    }
    return rc;
}

/* Creates channel tag of class cls, published by every pub<i> and read by every sub<i>. */
int evt_channel_create(struct evt_cluster *x, const char *tag, const char *cls)
{
    brk_op_init(&x->op, BRK_OP_CHANNEL_CREATE);
    int rc = brk_op_set_tag(&x->op, tag);
    rc = rc != 0 ? rc : brk_class_parse(&x->op.cls, cls, NULL, 0);
    for (uint32_t k = 0; k < x->pub_count + x->sub_count && rc == 0; k++) {
        bool publisher = k < x->pub_count;
        char name[32];
        evt_client_name(name, sizeof(name), publisher, publisher ? k : k - x->pub_count);
        rc = brk_name_list_add(publisher ? &x->op.publishers : &x->op.subscribers, name);
    }
    TRONE_ASSERT(rc == 0); /* our own names and a class parsed at startup */
    return evt_admin_call(x);
}

int evt_cluster_start(struct evt_cluster *x, struct spawn_set *set, const char *name,
                      uint32_t replicas)
{
    int rc = spawn_cluster_init(&x->cluster, set, name, replicas, true, x->errmsg,
                                sizeof(x->errmsg));
    for (uint32_t id = 0; rc == 0 && id < replicas; id++) {
        rc = spawn_replica_start(&x->cluster, id, x->errmsg, sizeof(x->errmsg));
    }
    struct key_identity admin_key;
    if (rc == 0) {
        rc = key_identity_load(&admin_key, x->cluster.admin_key_path, x->errmsg,
                               sizeof(x->errmsg));
    }
    if (rc == 0) {
        x->admin = rt_client_create(&x->cluster.config, &admin_key);
        key_identity_wipe(&admin_key);
        rc = x->admin != NULL ? 0 : TRONE_ENOMEM;
    }
    struct rt_client_status_report *report = calloc(1, sizeof(*report));
    rc = rc != 0 ? rc : report != NULL ? 0 : TRONE_ENOMEM;
    uint64_t all = (UINT64_C(1) << replicas) - 1u;
    if (rc == 0) {
        rc = spawn_cluster_wait(&x->cluster, x->admin, all, false, EVT_READY_MS, report,
                                x->errmsg, sizeof(x->errmsg));
    }
    free(report);
    return rc != 0 ? rc : evt_register(x);
}

/* Stops the replicas; each must exit 0 by itself. */
int evt_cluster_stop(struct evt_cluster *x)
{
    rt_client_destroy(x->admin);
    x->admin = NULL;
    char why[384];
    int rc = spawn_cluster_stop(&x->cluster, why, sizeof(why));
    if (rc != 0) {
        snprintf(x->errmsg, sizeof(x->errmsg), "%s", why);
    }
    return rc;
}

/* One measurement on a running cluster: 0, 1 when the class was refused (why set), -1 on
 * failure (why set). */
int evt_trone_run(struct evt_cluster *x, const char *tag, struct evb_run *r,
                  struct evb_figures *fig, char *why, size_t why_size)
{
    struct evt_client *clients = calloc(r->pub_count + r->sub_count, sizeof(*clients));
    pthread_t threads[2 * EVB_CLIENTS_MAX];
    _Atomic int refused = 0;
    if (clients == NULL || evb_run_init(r) != 0) {
        free(clients);
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    uint32_t started = 0;
    for (uint32_t k = 0; k < r->pub_count + r->sub_count; k++) {
        bool publisher = k < r->pub_count;
        struct evt_client *c = &clients[k];
        *c = (struct evt_client){.run = r, .index = publisher ? k : k - r->pub_count,
                                 .cluster_path = x->cluster.cluster_path, .tag = tag,
                                 .refused = &refused};
        evt_key_path(x, c->key_path, sizeof(c->key_path), publisher, c->index);
        /* A thread that cannot start would leave the others at the barrier forever. */
        int rc = pthread_create(&threads[k], NULL, publisher ? evt_pub_main : evt_sub_main, c);
        TRONE_ASSERT(rc == 0);
        started++;
    }
    uint64_t pids_count = x->cluster.replica_count;
    int rc = evb_measure(r, threads, started, x->cluster.pids, (uint32_t)pids_count, fig);
    if (rc != 0) {
        snprintf(why, why_size, "%s", r->errmsg);
        rc = atomic_load(&refused) != 0 ? 1 : -1;
    }
    if (rc == 0 && spawn_cluster_check_alive(&x->cluster, why, why_size) != 0) {
        rc = -1;
    }
    evb_run_close(r);
    free(clients);
    return rc;
}

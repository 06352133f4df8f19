/* cmd_bench.c: `trone bench control`: makes a temporary local cluster, starts its replicas as
 * child processes, drives control operations from concurrent clients (one thread and one
 * registered identity each) and prints per configuration one machine-readable line: throughput,
 * latency percentiles and CPU per operation. `trone bench crypto` times the Ed25519 and BLAKE2b
 * primitives the protocol pays for. Measures, never asserts a speed. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker/brk_op.h"
#include "cli/cmd.h"
#include "cli/cmd_bench_events.h"
#include "cli/cmd_bench_proc.h"
#include "cli/cmd_spawn.h"
#include "core/assert.h"
#include "rt/rt_client.h"
#include "rt/rt_ctl.h"

#define BENCH_CLIENTS_MAX 256u
#define BENCH_CLIENT_COUNTS_MAX 8u
#define BENCH_OPS_MAX 10000000u
#define BENCH_OP_TIMEOUT_MS 20000u
#define BENCH_READY_MS 15000u
/* Every op cycle: subscribe, show (subscribed), unsubscribe, show (not subscribed). */
#define BENCH_CYCLE 4u

struct bench_args {
    uint32_t replica_count;
    uint32_t op_count;
    uint32_t client_counts[BENCH_CLIENT_COUNTS_MAX];
    uint32_t client_count_count;
    int batching; /* 1 on, 0 off, 2 both */
    bool bft;
    bool json;
};

/* One configuration's figures. */
struct bench_figures {
    bool batching;
    uint32_t client_count;
    uint32_t op_count;
    double seconds;
    double ops_per_s;
    double mean_ms, p50_ms, p90_ms, p99_ms, max_ms;
    double replica_cpu_us_per_op; /* user+system CPU of all replicas, per op */
    double client_cpu_us_per_op;  /* this process (every client thread), per op */
};

struct bench_shared {
    const struct cfg_cluster *cluster;
    pthread_barrier_t barrier;
};

struct bench_worker {
    struct bench_shared *shared;
    uint32_t index;
    struct key_identity key;
    char tag[32];
    uint32_t op_count;
    uint64_t *latency_ns; /* op_count entries */
    int error;
    char errmsg[384];
};

static void bench_usage(FILE *out)
{
    fprintf(out,
            "usage: trone bench control [--replicas N] [--ops N] [--clients C[,C...]]\n"
            "                           [--batching on|off|both] [--fault-model bft|cft] [--json]\n"
            "       trone bench crypto [--json]\n"
            "       trone bench events ... (see trone bench events --help)\n"
            "\n"
            "control: makes a temporary cluster on 127.0.0.1 (free ports), starts N replicas as\n"
            "child processes (batching off = trone replica --batch-max 1), registers C clients,\n"
            "each with its own key and channel, and lets them run ops concurrently in a loop of\n"
            "subscribe, show, unsubscribe, show, each result checked. Every op goes through\n"
            "agreement. Prints one line per configuration (batching x client counts):\n"
            "  bench=control replicas=4 fault_model=bft batching=on clients=8 ops=4000 seconds=..\n"
            "  ops_per_s=.. mean_ms=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..\n"
            "  replica_cpu_us_per_op=.. client_cpu_us_per_op=..\n"
            "Latency is per op on the monotonic clock, from submit to f+1 matching replies.\n"
            "After each run every replica must hold the same table digest.\n"
            "\n"
            "  --replicas N        replicas (default 4)\n"
            "  --ops N             operations per configuration, split over the clients\n"
            "                      (default 2000)\n"
            "  --clients C,...     concurrent clients, one configuration each (default 8)\n"
            "  --batching MODE     on (the replica default), off, or both (default on)\n"
            "  --fault-model M     bft (default) or cft\n"
            "  --json              one JSON object per configuration and line\n"
            "\n"
            "crypto: times Ed25519 sign and verify and keyed BLAKE2b on this machine.\n"
            "\n"
            "exit status: 0 every run completed and agreed, 1 failure, 2 usage error\n");
}

/* ---- Arguments ---------------------------------------------------------------------------- */

static int bench_u32(const char *text, uint32_t min, uint32_t max, uint32_t *value)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max) {
        return TRONE_EINVAL;
    }
    *value = (uint32_t)v;
    return 0;
}

static int bench_client_list(struct bench_args *a, const char *text)
{
    char copy[128];
    if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy)) {
        return TRONE_EINVAL;
    }
    a->client_count_count = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        if (a->client_count_count == BENCH_CLIENT_COUNTS_MAX ||
            bench_u32(item, 1, BENCH_CLIENTS_MAX, &a->client_counts[a->client_count_count]) != 0) {
            return TRONE_EINVAL;
        }
        a->client_count_count++;
    }
    return a->client_count_count > 0 ? 0 : TRONE_EINVAL;
}

static int bench_option(struct bench_args *a, const char *option, const char *value)
{
    if (strcmp(option, "--replicas") == 0) {
        if (bench_u32(value, 1, TRONE_REPLICAS_MAX, &a->replica_count) != 0) {
            return cmd_error(CMD_USAGE, "bench", "--replicas needs 1 to %u", TRONE_REPLICAS_MAX);
        }
    } else if (strcmp(option, "--ops") == 0) {
        if (bench_u32(value, 1, BENCH_OPS_MAX, &a->op_count) != 0) {
            return cmd_error(CMD_USAGE, "bench", "--ops needs 1 to %u", BENCH_OPS_MAX);
        }
    } else if (strcmp(option, "--clients") == 0) {
        if (bench_client_list(a, value) != 0) {
            return cmd_error(CMD_USAGE, "bench",
                             "--clients needs up to %u counts of 1 to %u, comma-separated",
                             BENCH_CLIENT_COUNTS_MAX, BENCH_CLIENTS_MAX);
        }
    } else if (strcmp(option, "--batching") == 0) {
        a->batching = strcmp(value, "on") == 0 ? 1 : strcmp(value, "off") == 0 ? 0 : 2;
        if (a->batching == 2 && strcmp(value, "both") != 0) {
            return cmd_error(CMD_USAGE, "bench", "--batching needs on, off or both");
        }
    } else if (strcmp(option, "--fault-model") == 0) {
        if (strcmp(value, "bft") != 0 && strcmp(value, "cft") != 0) {
            return cmd_error(CMD_USAGE, "bench", "--fault-model needs bft or cft");
        }
        a->bft = strcmp(value, "bft") == 0;
    } else {
        return cmd_error(CMD_USAGE, "bench", "unknown option '%s' (see trone bench --help)",
                         option);
    }
    return CMD_OK;
}

/* CMD_OK, CMD_USAGE, or -1 after --help. argv[1] is the benchmark name. */
static int bench_parse(struct bench_args *a, int argc, char **argv)
{
    *a = (struct bench_args){.replica_count = 4,
                             .op_count = 2000,
                             .client_counts = {8},
                             .client_count_count = 1,
                             .batching = 1,
                             .bft = true};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            bench_usage(stdout);
            return -1;
        }
    }
    if (argc < 2 || argv[1][0] == '-') {
        return cmd_error(CMD_USAGE, "bench",
                         "needs a benchmark: control, crypto or events "
                         "(see trone bench --help)");
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            a->json = true;
            continue;
        }
        if (i + 1 >= argc) {
            return cmd_error(CMD_USAGE, "bench", "%s needs a value (see trone bench --help)",
                             argv[i]);
        }
        if (bench_option(a, argv[i], argv[i + 1]) != CMD_OK) {
            return CMD_USAGE;
        }
        i++;
    }
    if (a->bft ? a->replica_count < 4 : a->replica_count < 3) {
        return cmd_error(CMD_USAGE, "bench", "--replicas must be at least %u for %s (f >= 1)",
                         a->bft ? 4u : 3u, a->bft ? "bft" : "cft");
    }
    return CMD_OK;
}

/* ---- One client thread -------------------------------------------------------------------- */

/* Encodes an op on one tag into out; asserts success (tags are ours and valid). */
static void bench_encode(enum brk_op_kind kind, const char *tag, struct buf *out)
{
    struct brk_op *op = calloc(1, sizeof(*op));
    TRONE_ASSERT(op != NULL);
    brk_op_init(op, kind);
    int rc = brk_op_set_tag(op, tag);
    TRONE_ASSERT(rc == 0);
    rc = brk_op_encode(op, out);
    TRONE_ASSERT(rc == 0);
    free(op);
}

/* Checks one agreed result: status 0 and, for a show, whether the caller is subscribed. */
static int bench_check(struct bench_worker *w, uint32_t step, const struct buf *bytes,
                       struct brk_channel_info *info)
{
    struct brk_result res;
    int rc = brk_result_decode(bytes->data, bytes->used, &res);
    if (rc != 0 || res.status != 0) {
        snprintf(w->errmsg, sizeof(w->errmsg), "client %u: op refused: %s", w->index,
                 rc != 0 ? "malformed result" : res.message);
        return TRONE_EPROTO;
    }
    if (step % 2 == 0) {
        return 0;
    }
    struct brk_channel_iter it;
    rc = brk_channel_iter_init(&it, res.body, res.body_size);
    if (rc == 0 && brk_channel_iter_next(&it, info) != 1) {
        rc = TRONE_EBADMSG;
    }
    bool expect = step == 1;
    if (rc != 0 || brk_name_list_contains(&info->subscribed, w->key.name) != expect) {
        snprintf(w->errmsg, sizeof(w->errmsg), "client %u: show of %s does not list it as %s",
                 w->index, w->tag, expect ? "subscribed" : "unsubscribed");
        return TRONE_EPROTO;
    }
    return 0;
}

static int bench_worker_ops(struct bench_worker *w, struct rt_client *client, struct buf ops[],
                            bool measured, uint32_t count)
{
    struct buf bytes;
    buf_init(&bytes, TRONE_RESULT_MAX);
    struct brk_channel_info *info = malloc(sizeof(*info));
    int rc = info != NULL ? 0 : TRONE_ENOMEM;
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        uint32_t step = measured ? i % BENCH_CYCLE : 3u; /* warm-up: show, not subscribed */
        buf_reset(&bytes);
        uint64_t start = spawn_now_ns();
        rc = rt_client_call(client, ops[step].data, ops[step].used, BENCH_OP_TIMEOUT_MS, &bytes,
                            w->errmsg, sizeof(w->errmsg));
        uint64_t end = spawn_now_ns();
        if (rc == 0) {
            rc = bench_check(w, step, &bytes, info);
        }
        if (measured) {
            w->latency_ns[i] = end - start;
        }
    }
    free(info);
    buf_close(&bytes);
    return rc;
}

static void *bench_worker_main(void *arg)
{
    struct bench_worker *w = arg;
    struct buf ops[BENCH_CYCLE];
    static const enum brk_op_kind kinds[BENCH_CYCLE] = {BRK_OP_SUBSCRIBE, BRK_OP_CHANNEL_SHOW,
                                                        BRK_OP_UNSUBSCRIBE, BRK_OP_CHANNEL_SHOW};
    for (uint32_t k = 0; k < BENCH_CYCLE; k++) {
        buf_init(&ops[k], TRONE_OP_MAX);
        bench_encode(kinds[k], w->tag, &ops[k]);
    }
    struct rt_client *client = rt_client_create(w->shared->cluster, &w->key);
    w->error = client != NULL ? 0 : TRONE_ENOMEM;
    if (client == NULL) {
        snprintf(w->errmsg, sizeof(w->errmsg), "client %u: cannot start", w->index);
    }
    /* One unmeasured op opens the sessions (Noise handshakes with every replica). */
    if (w->error == 0) {
        w->error = bench_worker_ops(w, client, ops, false, 1);
    }
    pthread_barrier_wait(&w->shared->barrier);
    if (w->error == 0) {
        w->error = bench_worker_ops(w, client, ops, true, w->op_count);
    }
    rt_client_destroy(client);
    for (uint32_t k = 0; k < BENCH_CYCLE; k++) {
        buf_close(&ops[k]);
    }
    return NULL;
}

/* ---- Setup through the admin -------------------------------------------------------------- */

static int bench_admin_call(struct rt_client *admin, const struct brk_op *op, char *errmsg,
                            size_t errmsg_size)
{
    struct buf bytes;
    buf_init(&bytes, TRONE_RESULT_MAX);
    struct brk_result res;
    int rc = rt_ctl_call(admin, op, BENCH_OP_TIMEOUT_MS, &bytes, &res, errmsg, errmsg_size);
    if (rc == 0 && res.status != 0) {
        snprintf(errmsg, errmsg_size, "%s refused: %s", brk_op_kind_name(op->kind), res.message);
        rc = res.status;
    }
    buf_close(&bytes);
    return rc;
}

/* Registers one identity per worker and creates its channel, subscribable by it alone. */
static int bench_setup(struct rt_client *admin, struct bench_worker *workers, uint32_t count,
                       char *errmsg, size_t errmsg_size)
{
    struct brk_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        snprintf(errmsg, errmsg_size, "out of memory");
        return TRONE_ENOMEM;
    }
    int rc = 0;
    for (uint32_t k = 0; k < count && rc == 0; k++) {
        struct bench_worker *w = &workers[k];
        char name[32];
        snprintf(name, sizeof(name), "bench%u", k);
        snprintf(w->tag, sizeof(w->tag), "bench.%u", k);
        rc = key_identity_generate(&w->key, name);
        TRONE_ASSERT(rc == 0);
        brk_op_init(op, BRK_OP_REGISTER);
        rc = brk_op_set_register(op, name, w->key.public_key);
        TRONE_ASSERT(rc == 0);
        rc = bench_admin_call(admin, op, errmsg, errmsg_size);
        if (rc != 0) {
            break;
        }
        brk_op_init(op, BRK_OP_CHANNEL_CREATE);
        rc = brk_op_set_tag(op, w->tag);
        TRONE_ASSERT(rc == 0);
        rc = brk_name_list_add(&op->subscribers, name);
        TRONE_ASSERT(rc == 0);
        rc = bench_admin_call(admin, op, errmsg, errmsg_size);
    }
    free(op);
    return rc;
}

/* ---- Figures ------------------------------------------------------------------------------ */


static uint64_t bench_replicas_cpu_us(const struct spawn_cluster *c)
{
    uint64_t total = 0;
    for (uint32_t id = 0; id < c->replica_count; id++) {
        total += c->pids[id] > 0 ? bench_process_cpu_us(c->pids[id]) : 0;
    }
    return total;
}




static void bench_latency_figures(uint64_t *latency_ns, uint32_t count, struct bench_figures *fig)
{
    qsort(latency_ns, count, sizeof(latency_ns[0]), bench_compare_u64);
    double sum = 0.0;
    for (uint32_t i = 0; i < count; i++) {
        sum += (double)latency_ns[i];
    }
    fig->mean_ms = sum / (double)count / 1e6;
    fig->p50_ms = bench_percentile_ms(latency_ns, count, 0.50);
    fig->p90_ms = bench_percentile_ms(latency_ns, count, 0.90);
    fig->p99_ms = bench_percentile_ms(latency_ns, count, 0.99);
    fig->max_ms = (double)latency_ns[count - 1] / 1e6;
}

static void bench_print(const struct bench_args *a, const struct bench_figures *f)
{
    const char *fault = a->bft ? "bft" : "cft";
    const char *batching = f->batching ? "on" : "off";
    if (a->json) {
        printf("{\"bench\":\"control\",\"replicas\":%u,\"fault_model\":\"%s\",\"batching\":\"%s\","
               "\"clients\":%u,\"ops\":%u,\"seconds\":%.3f,\"ops_per_s\":%.1f,\"mean_ms\":%.3f,"
               "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
               "\"replica_cpu_us_per_op\":%.1f,\"client_cpu_us_per_op\":%.1f}\n",
               a->replica_count, fault, batching, f->client_count, f->op_count, f->seconds,
               f->ops_per_s, f->mean_ms, f->p50_ms, f->p90_ms, f->p99_ms, f->max_ms,
               f->replica_cpu_us_per_op, f->client_cpu_us_per_op);
    } else {
        printf("bench=control replicas=%u fault_model=%s batching=%s clients=%u ops=%u "
               "seconds=%.3f ops_per_s=%.1f mean_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
               "max_ms=%.3f replica_cpu_us_per_op=%.1f client_cpu_us_per_op=%.1f\n",
               a->replica_count, fault, batching, f->client_count, f->op_count, f->seconds,
               f->ops_per_s, f->mean_ms, f->p50_ms, f->p90_ms, f->p99_ms, f->max_ms,
               f->replica_cpu_us_per_op, f->client_cpu_us_per_op);
    }
    fflush(stdout);
}

/* ---- One configuration -------------------------------------------------------------------- */

struct bench_run {
    const struct bench_args *args;
    struct spawn_set *set;
    struct spawn_cluster *cluster;
    struct rt_client *admin;
    struct bench_worker *workers;
    uint64_t *latency_ns;
    uint32_t client_count;
    char errmsg[512];
};

/* Runs every worker from one barrier and fills the throughput and CPU figures. */
static int bench_measure(struct bench_run *r, struct bench_figures *fig)
{
    struct bench_shared shared = {.cluster = &r->cluster->config};
    uint32_t count = r->client_count;
    int rc = pthread_barrier_init(&shared.barrier, NULL, count + 1);
    TRONE_ASSERT(rc == 0);
    pthread_t threads[BENCH_CLIENTS_MAX];
    uint64_t offset = 0;
    for (uint32_t k = 0; k < count; k++) {
        struct bench_worker *w = &r->workers[k];
        w->shared = &shared;
        w->index = k;
        w->op_count = fig->op_count / count + (k < fig->op_count % count ? 1u : 0u);
        w->latency_ns = r->latency_ns + offset;
        offset += w->op_count;
        /* Threads already started would wait at the barrier forever: this failure ends the
         * process through the command's exit, which the guard's cleanup precedes. */
        if (pthread_create(&threads[k], NULL, bench_worker_main, w) != 0) {
            snprintf(r->errmsg, sizeof(r->errmsg), "cannot start client thread %u", k);
            return TRONE_ENOMEM;
        }
    }
    pthread_barrier_wait(&shared.barrier);
    uint64_t start_ns = spawn_now_ns();
    uint64_t replica_cpu = bench_replicas_cpu_us(r->cluster);
    uint64_t self_cpu = bench_self_cpu_us();
    for (uint32_t k = 0; k < count; k++) {
        pthread_join(threads[k], NULL);
    }
    uint64_t end_ns = spawn_now_ns();
    replica_cpu = bench_replicas_cpu_us(r->cluster) - replica_cpu;
    self_cpu = bench_self_cpu_us() - self_cpu;
    pthread_barrier_destroy(&shared.barrier);
    for (uint32_t k = 0; k < count; k++) {
        if (r->workers[k].error != 0) {
            snprintf(r->errmsg, sizeof(r->errmsg), "%s", r->workers[k].errmsg);
            return r->workers[k].error;
        }
    }
    fig->seconds = (double)(end_ns - start_ns) / 1e9;
    fig->ops_per_s = (double)fig->op_count / fig->seconds;
    fig->replica_cpu_us_per_op = (double)replica_cpu / (double)fig->op_count;
    fig->client_cpu_us_per_op = (double)self_cpu / (double)fig->op_count;
    bench_latency_figures(r->latency_ns, fig->op_count, fig);
    return 0;
}

/* Makes and starts the cluster of one configuration, waits for it, sets up the clients. */
static int bench_prepare(struct bench_run *r, bool batching)
{
    const struct bench_args *a = r->args;
    char name[64];
    snprintf(name, sizeof(name), "control-%s-c%u", batching ? "on" : "off", r->client_count);
    int rc = spawn_cluster_init(r->cluster, r->set, name, a->replica_count, a->bft, r->errmsg,
                                sizeof(r->errmsg));
    r->cluster->batch_max = batching ? 0 : 1;
    for (uint32_t id = 0; rc == 0 && id < a->replica_count; id++) {
        rc = spawn_replica_start(r->cluster, id, r->errmsg, sizeof(r->errmsg));
    }
    struct key_identity admin_key;
    char reason[512];
    if (rc == 0) {
        rc = key_identity_load(&admin_key, r->cluster->admin_key_path, reason, sizeof(reason));
        if (rc != 0) {
            snprintf(r->errmsg, sizeof(r->errmsg), "%s", reason);
        }
    }
    if (rc == 0) {
        r->admin = rt_client_create(&r->cluster->config, &admin_key);
        key_identity_wipe(&admin_key);
        rc = r->admin != NULL ? 0 : TRONE_ENOMEM;
    }
    struct rt_client_status_report *report = calloc(1, sizeof(*report));
    rc = rc != 0 ? rc : report != NULL ? 0 : TRONE_ENOMEM;
    uint64_t all = (UINT64_C(1) << a->replica_count) - 1u;
    if (rc == 0) {
        rc = spawn_cluster_wait(r->cluster, r->admin, all, false, BENCH_READY_MS, report, r->errmsg,
                                sizeof(r->errmsg));
    }
    if (rc == 0) {
        rc = bench_setup(r->admin, r->workers, r->client_count, r->errmsg, sizeof(r->errmsg));
    }
    free(report);
    return rc;
}

/* After the run: every replica alive, in one view, with one table digest. */
static int bench_verify(struct bench_run *r)
{
    struct rt_client_status_report *report = calloc(1, sizeof(*report));
    if (report == NULL) {
        return TRONE_ENOMEM;
    }
    uint64_t all = (UINT64_C(1) << r->args->replica_count) - 1u;
    char why[384];
    int rc = spawn_cluster_wait(r->cluster, r->admin, all, true, BENCH_READY_MS, report, why,
                                sizeof(why));
    if (rc != 0) {
        snprintf(r->errmsg, sizeof(r->errmsg), "replicas disagree after the run: %s", why);
    }
    free(report);
    return rc;
}

static int bench_config(struct bench_run *r, bool batching, struct bench_figures *fig)
{
    memset(fig, 0, sizeof(*fig));
    fig->batching = batching;
    fig->client_count = r->client_count;
    fig->op_count = r->args->op_count < r->client_count ? r->client_count : r->args->op_count;
    r->cluster = calloc(1, sizeof(*r->cluster));
    r->workers = calloc(r->client_count, sizeof(*r->workers));
    r->latency_ns = calloc(fig->op_count, sizeof(*r->latency_ns));
    r->admin = NULL;
    int rc = r->cluster != NULL && r->workers != NULL && r->latency_ns != NULL ? 0 : TRONE_ENOMEM;
    if (rc != 0) {
        snprintf(r->errmsg, sizeof(r->errmsg), "out of memory");
    }
    rc = rc != 0 ? rc : bench_prepare(r, batching);
    rc = rc != 0 ? rc : bench_measure(r, fig);
    rc = rc != 0 ? rc : bench_verify(r);
    rt_client_destroy(r->admin);
    if (r->cluster != NULL) {
        char why[384];
        int stop = spawn_cluster_stop(r->cluster, why, sizeof(why));
        if (rc == 0 && stop != 0) {
            snprintf(r->errmsg, sizeof(r->errmsg), "%s", why);
            rc = stop;
        }
    }
    for (uint32_t k = 0; r->workers != NULL && k < r->client_count; k++) {
        key_identity_wipe(&r->workers[k].key);
    }
    free(r->latency_ns);
    free(r->workers);
    free(r->cluster);
    return rc;
}

struct bench_control {
    const struct bench_args *args;
    struct spawn_set set;
};

static int bench_control_body(void *ctx)
{
    struct bench_control *b = ctx;
    const struct bench_args *a = b->args;
    bool modes[2] = {a->batching != 0, false};
    uint32_t mode_count = a->batching == 2 ? 2 : 1;
    for (uint32_t m = 0; m < mode_count; m++) {
        for (uint32_t k = 0; k < a->client_count_count; k++) {
            struct bench_run *r = calloc(1, sizeof(*r));
            if (r == NULL) {
                return cmd_error(CMD_FAIL, "bench", "out of memory");
            }
            r->args = a;
            r->set = &b->set;
            r->client_count = a->client_counts[k];
            struct bench_figures fig;
            int rc = bench_config(r, modes[m], &fig);
            if (rc != 0) {
                cmd_error(CMD_FAIL, "bench", "batching=%s clients=%u: %s (logs kept in %s)",
                          modes[m] ? "on" : "off", r->client_count, r->errmsg, b->set.dir);
                b->set.keep_dir = true;
                free(r);
                return CMD_FAIL;
            }
            bench_print(a, &fig);
            free(r);
        }
    }
    return CMD_OK;
}

/* ---- Crypto ------------------------------------------------------------------------------- */

static int bench_crypto(const struct bench_args *a)
{
    if (sodium_init() < 0) {
        return cmd_error(CMD_FAIL, "bench", "libsodium failed to initialise");
    }
    enum { ROUNDS = 4000, HASH_ROUNDS = 200000, SIZE = 100 };
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t msg[SIZE], sig[crypto_sign_BYTES], key[32], mac[32];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof(msg));
    randombytes_buf(key, sizeof(key));
    uint64_t t0 = spawn_now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        msg[0] = (uint8_t)i;
        crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
    }
    uint64_t t1 = spawn_now_ns();
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        bad += crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0;
    }
    uint64_t t2 = spawn_now_ns();
    for (int i = 0; i < HASH_ROUNDS; i++) {
        msg[1] = (uint8_t)i;
        crypto_generichash(mac, sizeof(mac), msg, sizeof(msg), key, sizeof(key));
    }
    uint64_t t3 = spawn_now_ns();
    sodium_memzero(sk, sizeof(sk));
    if (bad != 0) {
        return cmd_error(CMD_FAIL, "bench", "a valid signature did not verify");
    }
    double sign_us = (double)(t1 - t0) / 1e3 / ROUNDS;
    double verify_us = (double)(t2 - t1) / 1e3 / ROUNDS;
    double hash_us = (double)(t3 - t2) / 1e3 / HASH_ROUNDS;
    printf(a->json ? "{\"bench\":\"crypto\",\"ed25519_sign_us\":%.2f,\"ed25519_verify_us\":%.2f,"
                     "\"blake2b_keyed_100b_us\":%.3f}\n"
                   : "bench=crypto ed25519_sign_us=%.2f ed25519_verify_us=%.2f "
                     "blake2b_keyed_100b_us=%.3f\n",
           sign_us, verify_us, hash_us);
    return CMD_OK;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "events") == 0) {
        return cmd_bench_events(argc, argv);
    }
    struct bench_args a;
    int rc = bench_parse(&a, argc, argv);
    if (rc != CMD_OK) {
        return rc < 0 ? CMD_OK : rc;
    }
    if (strcmp(argv[1], "crypto") == 0) {
        return bench_crypto(&a);
    }
    if (strcmp(argv[1], "control") != 0) {
        return cmd_error(CMD_USAGE, "bench", "unknown benchmark '%s' (control or crypto)", argv[1]);
    }
    if (sodium_init() < 0) {
        return cmd_error(CMD_FAIL, "bench", "libsodium failed to initialise");
    }
    struct bench_control *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return cmd_error(CMD_FAIL, "bench", "out of memory");
    }
    b->args = &a;
    char errmsg[512];
    if (spawn_set_init(&b->set, "trone-bench", errmsg, sizeof(errmsg)) != 0) {
        free(b);
        return cmd_error(CMD_FAIL, "bench", "%s", errmsg);
    }
    rc = spawn_guard_run(&b->set, "bench", bench_control_body, b);
    free(b);
    return rc;
}

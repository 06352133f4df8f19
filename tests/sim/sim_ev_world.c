/* sim_ev_world.c: one seed of the event world. The PRNG, seeded by the seed alone, picks the
 * clients, their channels and authorizations, the network delays, the faulty replica (at most
 * f = 1: crash-prone, flaky or Byzantine) and flow control; then a safety phase with faults
 * and publishing, and a liveness phase (crashed replica restarted, connections back, pauses
 * over, publishing stopped, Byzantine still Byzantine) after which every published event must
 * have reached every subscriber (sim_ev_check.c). The control table is built once and shared
 * read-only by the replicas: it stands for the table agreement gives every correct replica. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_op.h"
#include "core/assert.h"
#include "sim_ev.h"

/* The classes under test (FIFO). Total-order channels join here when they exist. */
static const char *const sim_ev_classes[SIM_EV_CHANNELS] = {
    "cft,fifo,si,urgency=2",
    "bft,fifo,si,urgency=5",
    "bft,fifo,pks,urgency=7",
    "cft,fifo,pks",
};
static const char *const sim_ev_tags[SIM_EV_CHANNELS] = {"ev.cft", "ev.bft", "ev.pks", "ev.cpks"};

void sim_ev_trace(struct sim_ev *s, const char *fmt, ...)
{
    char *line = s->trace[s->trace_count % SIM_EV_TRACE_LINES];
    int used = snprintf(line, SIM_EV_TRACE_LINE, "t=%llu ", (unsigned long long)s->now_ms);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + used, SIM_EV_TRACE_LINE - (size_t)used, fmt, ap);
    va_end(ap);
    s->trace_count++;
    if (s->verbose) {
        printf("%s\n", line);
    }
}

void sim_ev_fail(struct sim_ev *s, int code, const char *fmt, ...)
{
    if (s->failure != 0) {
        return;
    }
    s->failure = code;
    va_list ap;
    va_start(ap, fmt);
    int used = snprintf(s->failure_text, sizeof(s->failure_text), "t=%llu ",
                        (unsigned long long)s->now_ms);
    vsnprintf(s->failure_text + used, sizeof(s->failure_text) - (size_t)used, fmt, ap);
    va_end(ap);
}

int sim_ev_channel_by_tag(const struct sim_ev *s, const char *tag)
{
    for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
        if (strcmp(s->channels[ch].tag, tag) == 0) {
            return (int)ch;
        }
    }
    return -1;
}

int sim_ev_epoch_idx(const struct sim_ev *s, uint32_t p, uint64_t epoch)
{
    const struct sim_ev_client *cl = &s->clients[p];
    for (uint32_t e = 0; e < cl->epoch_count; e++) {
        if (cl->epochs[e] == epoch) {
            return (int)e;
        }
    }
    return -1;
}

int sim_ev_publisher_by_key(const struct sim_ev *s, const uint8_t key[TRONE_KEY_LEN])
{
    for (uint32_t p = 0; p < s->pub_count; p++) {
        if (memcmp(s->clients[p].public_key, key, TRONE_KEY_LEN) == 0) {
            return (int)p;
        }
    }
    return -1;
}

/* ---- Picking the world ---- */

static int sim_ev_pick(struct sim_ev *s, int forced, uint32_t permille)
{
    return forced >= 0 ? forced : sim_rng_chance(&s->rng, permille) ? 1 : 0;
}

static void sim_ev_pick_faults(struct sim_ev *s, int model)
{
    const struct sim_ev_force *f = &s->force;
    s->delay_ms_min = sim_rng_range(&s->rng, 1, 5);
    s->delay_ms_max = s->delay_ms_min + sim_rng_range(&s->rng, 0, 60);
    s->break_permille = (uint32_t)sim_rng_range(&s->rng, 10, 150);
    s->crash_permille = f->crash > 0 ? (uint32_t)sim_rng_range(&s->rng, 150, 300)
                                     : (uint32_t)sim_rng_range(&s->rng, 10, 80);
    s->byz_permille = (uint32_t)sim_rng_range(&s->rng, 100, 600);
    s->flow = sim_ev_pick(s, f->flow, 250) != 0;
    s->netbreaks = sim_ev_pick(s, f->netbreaks, 150) != 0;
    s->netbreak_permille = s->netbreaks ? (uint32_t)sim_rng_range(&s->rng, 2, 20) : 0;
    s->pause_permille = s->flow ? (uint32_t)sim_rng_range(&s->rng, 10, 100) : 0;
    s->queue_events_max = s->flow ? (uint32_t)sim_rng_range(&s->rng, 2, 24) : 65536u;
    s->lists = sim_ev_pick(s, f->lists, 500) != 0;
    s->restart_permille =
        sim_rng_chance(&s->rng, 300) ? (uint32_t)sim_rng_range(&s->rng, 5, 30) : 0;
    s->novote = f->novote;
    /* At most f = 1 faulty replica: Byzantine (bft model), or crash-prone, or only flaky. */
    uint32_t faulty = (uint32_t)sim_rng_below(&s->rng, SIM_EV_N);
    unsigned byz = 0;
    if (f->byz >= 0) {
        byz = (unsigned)f->byz;
        faulty = 1;
    } else if (model != SMR_CFT && sim_rng_chance(&s->rng, 600)) {
        for (uint32_t tries = 0; tries < 8 && byz == 0; tries++) {
            byz = (unsigned)sim_rng_below(&s->rng, SIM_EV_BYZ_ALL + 1u);
        }
    }
    bool crash = f->crash >= 0 ? f->crash != 0 : byz == 0 && sim_rng_chance(&s->rng, 500);
    if (f->crash > 0 && byz == 0) {
        faulty = 2;
    }
    s->replicas[faulty].byz = byz;
    s->replicas[faulty].crash_prone = crash && byz == 0;
    s->replicas[faulty].flaky = sim_ev_pick(s, f->flaky, 500) != 0;
    s->byz_run = byz != 0;
}

static void sim_ev_pick_clients(struct sim_ev *s)
{
    s->pub_count = (uint32_t)sim_rng_range(&s->rng, 2, SIM_EV_PUBS_MAX);
    s->sub_count = (uint32_t)sim_rng_range(&s->rng, 2, SIM_EV_SUBS_MAX);
    s->client_count = s->pub_count + s->sub_count;
    s->window = s->force.strict_window ? (uint32_t)sim_rng_range(&s->rng, 8, 32)
                                       : (uint32_t)sim_rng_range(&s->rng, 64, 512);
    /* Longer than any pause plus any delay: a copy that is only late never looks lost. */
    s->gap_wait_ms = sim_rng_range(&s->rng, 1200, 4000);
    s->safety_ms = sim_rng_range(&s->rng, 2000, 5000);
    s->liveness_ms = 30000;
    s->chaos_period_ms = sim_rng_range(&s->rng, 50, 200);
    for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
        struct sim_ev_channel *c = &s->channels[ch];
        snprintf(c->tag, sizeof(c->tag), "%s", sim_ev_tags[ch]);
        SIM_MUST(brk_class_parse(&c->cls, sim_ev_classes[ch], NULL, 0) == 0);
        c->fifo_only = c->cls.order == BRK_ORDER_FIFO;
        for (uint32_t p = 0; p < s->pub_count; p++) {
            c->publisher[p] = sim_rng_chance(&s->rng, 700);
        }
        c->publisher[sim_rng_below(&s->rng, s->pub_count)] = true;
        for (uint32_t k = 0; k < s->sub_count; k++) {
            c->subscriber[k] = sim_rng_chance(&s->rng, 750);
        }
        c->subscriber[sim_rng_below(&s->rng, s->sub_count)] = true;
    }
    /* Every client has a channel: a publisher or subscriber without one is given one. */
    for (uint32_t c = 0; c < s->client_count; c++) {
        bool pub = c < s->pub_count;
        uint32_t idx = pub ? c : c - s->pub_count;
        bool any = false;
        for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
            any = any || (pub ? s->channels[ch].publisher[idx] : s->channels[ch].subscriber[idx]);
        }
        uint32_t ch = (uint32_t)sim_rng_below(&s->rng, SIM_EV_CHANNELS);
        if (!any && pub) {
            s->channels[ch].publisher[idx] = true;
        } else if (!any) {
            s->channels[ch].subscriber[idx] = true;
        }
    }
    for (uint32_t c = 0; c < s->client_count; c++) {
        struct sim_ev_client *cl = &s->clients[c];
        cl->publisher = c < s->pub_count;
        cl->role_idx = cl->publisher ? c : c - s->pub_count;
        snprintf(cl->name, sizeof(cl->name), "%s%u", cl->publisher ? "p" : "s", cl->role_idx);
        for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
            cl->channel[ch] = cl->publisher ? s->channels[ch].publisher[cl->role_idx]
                                            : s->channels[ch].subscriber[cl->role_idx];
            /* A publisher sometimes tries a channel it may not publish on: refused. */
            if (cl->publisher && !cl->channel[ch] && sim_rng_chance(&s->rng, 200)) {
                cl->channel[ch] = true;
            }
        }
        for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
            for (uint32_t p = 0; p < SIM_EV_PUBS_MAX; p++) {
                for (uint32_t e = 0; e < SIM_EV_EPOCHS_MAX; e++) {
                    cl->seen[ch][p][e].next = 1;
                }
            }
        }
        cl->epoch = 1000000u * (c + 1u);
        cl->epochs[0] = cl->epoch;
        cl->epoch_count = 1;
        cl->gap_ms_max = sim_rng_range(&s->rng, 2, 40);
        cl->left = (uint32_t)sim_rng_range(&s->rng, 20, 150);
        cl->publish_at_ms = cl->publisher ? 300 + sim_rng_below(&s->rng, 50) : SIM_NEVER;
    }
}

static void sim_ev_keys(struct sim_ev *s)
{
    struct sim_rng keys;
    sim_rng_seed(&keys, s->seed ^ 0x6576656e746b6579ull);
    for (uint32_t i = 0; i < 1 + SIM_EV_N + s->client_count; i++) {
        uint8_t seed[crypto_sign_SEEDBYTES];
        for (size_t k = 0; k < sizeof(seed); k += 8) {
            buf_store_u64(seed + k, sim_rng_next(&keys));
        }
        if (i == 0) {
            crypto_sign_seed_keypair(s->admin_pk, s->admin_sk, seed);
        } else if (i <= SIM_EV_N) {
            crypto_sign_seed_keypair(s->replica_pk[i - 1], s->replica_sk[i - 1], seed);
        } else {
            struct sim_ev_client *cl = &s->clients[i - 1 - SIM_EV_N];
            crypto_sign_seed_keypair(cl->public_key, cl->secret_key, seed);
        }
    }
}

/* ---- The control table ---- */

static void sim_ev_table_op(struct sim_ev *s, const struct brk_op *op, uint64_t seq)
{
    struct buf result;
    buf_init(&result, TRONE_RESULT_MAX);
    buf_reset(&s->scratch);
    SIM_MUST(brk_op_encode(op, &s->scratch) == 0);
    brk_table_execute(&s->table, seq, s->admin_pk, s->scratch.data, s->scratch.used, &result);
    struct brk_result res;
    SIM_MUST(brk_result_decode(result.data, result.used, &res) == 0);
    SIM_MUST(res.status == 0);
    buf_close(&result);
}

static void sim_ev_table_build(struct sim_ev *s)
{
    SIM_MUST(brk_table_init(&s->table, s->admin_pk) == 0);
    struct brk_op *op = calloc(1, sizeof(*op));
    TRONE_ASSERT(op != NULL);
    uint64_t seq = 1;
    for (uint32_t c = 0; c < s->client_count; c++) {
        brk_op_init(op, BRK_OP_REGISTER);
        SIM_MUST(brk_op_set_register(op, s->clients[c].name, s->clients[c].public_key) == 0);
        sim_ev_table_op(s, op, seq++);
    }
    for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
        const struct sim_ev_channel *c = &s->channels[ch];
        brk_op_init(op, BRK_OP_CHANNEL_CREATE);
        SIM_MUST(brk_op_set_tag(op, c->tag) == 0);
        op->cls = c->cls;
        for (uint32_t k = 0; k < s->client_count; k++) {
            const struct sim_ev_client *cl = &s->clients[k];
            bool listed = cl->publisher ? c->publisher[cl->role_idx] : c->subscriber[cl->role_idx];
            if (listed) {
                SIM_MUST(brk_name_list_add(cl->publisher ? &op->publishers : &op->subscribers,
                                           cl->name) == 0);
            }
        }
        sim_ev_table_op(s, op, seq++);
    }
    free(op);
}

/* ---- Running ---- */

static void sim_ev_init(struct sim_ev *s, int model)
{
    TRONE_ASSERT(sodium_init() >= 0);
    sim_ev_pick_clients(s);
    sim_ev_pick_faults(s, model);
    sim_ev_keys(s);
    sim_queue_init(&s->queue);
    buf_init(&s->scratch, TRONE_MESSAGE_MAX);
    sim_ev_table_build(s);
    for (uint32_t r = 0; r < SIM_EV_N; r++) {
        sim_ev_replica_start(s, r);
    }
    for (uint32_t c = 0; c < s->client_count; c++) {
        sim_ev_client_start(s, c);
        for (uint32_t r = 0; r < SIM_EV_N; r++) {
            sim_ev_conn_open(s, c, r);
        }
    }
    struct sim_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ms = 300; /* faults start once every subscriber attached */
    ev.node = SIM_NODES_MAX;
    ev.kind = SIM_EV_CHAOS;
    SIM_MUST(sim_queue_push(&s->queue, &ev));
}

static void sim_ev_close(struct sim_ev *s)
{
    for (uint32_t c = 0; c < s->client_count; c++) {
        sim_ev_client_close(s, c);
    }
    for (uint32_t r = 0; r < SIM_EV_N; r++) {
        sim_ev_replica_close(s, r);
    }
    brk_table_close(&s->table);
    sim_queue_close(&s->queue);
    buf_close(&s->scratch);
}

/* The node whose tick is due first (replicas that are up, then clients), or false. */
static bool sim_ev_next_tick(const struct sim_ev *s, struct sim_event *tick)
{
    bool found = false;
    for (uint32_t i = 0; i < SIM_EV_N + s->client_count; i++) {
        uint64_t at = i < SIM_EV_N ? (s->replicas[i].up ? s->replicas[i].tick_ms : SIM_NEVER)
                                   : s->clients[i - SIM_EV_N].tick_ms;
        struct sim_event ev = {.time_ms = at, .node = i, .kind = SIM_EV_TICK};
        if (at != SIM_NEVER && (!found || sim_event_before(&ev, tick))) {
            *tick = ev;
            found = true;
        }
    }
    return found;
}

/* One step: the earliest tick or queued event, if it is due by end_ms. */
static bool sim_ev_step(struct sim_ev *s, uint64_t end_ms)
{
    struct sim_event tick;
    bool has_tick = sim_ev_next_tick(s, &tick);
    const struct sim_event *head = sim_queue_peek(&s->queue);
    if (has_tick && (head == NULL || sim_event_before(&tick, head))) {
        if (tick.time_ms > end_ms) {
            return false;
        }
        TRONE_ASSERT(tick.time_ms >= s->now_ms);
        s->now_ms = tick.time_ms;
        s->steps++;
        if (tick.node < SIM_EV_N) {
            sim_ev_replica_tick(s, tick.node);
        } else {
            sim_ev_client_tick(s, tick.node - SIM_EV_N);
        }
        return true;
    }
    if (head == NULL || head->time_ms > end_ms) {
        return false;
    }
    struct sim_event ev;
    SIM_MUST(sim_queue_pop(&s->queue, &ev));
    TRONE_ASSERT(ev.time_ms >= s->now_ms);
    s->now_ms = ev.time_ms;
    s->steps++;
    if (ev.kind == SIM_EV_CHAOS) {
        sim_ev_chaos(s);
    } else {
        sim_ev_arrive(s, &ev);
    }
    free(ev.data);
    return true;
}

/* Steps until pred holds or end_ms (virtual) or a failure; bounded by virtual time and by a
 * step budget (every step consumes an event or a due tick). */
static bool sim_ev_run_until(struct sim_ev *s, bool (*pred)(struct sim_ev *s), uint64_t end_ms)
{
    for (uint64_t n = 0; n < 50000000u; n++) {
        if (s->failure != 0) {
            return false;
        }
        if (pred != NULL && pred(s)) {
            return true;
        }
        if (!sim_ev_step(s, end_ms)) {
            s->now_ms = end_ms > s->now_ms ? end_ms : s->now_ms;
            return pred != NULL && s->failure == 0 && pred(s);
        }
    }
    sim_ev_fail(s, SIM_EXIT_LIVENESS, "step budget exhausted");
    return false;
}

static bool sim_ev_converged(struct sim_ev *s)
{
    return sim_ev_pending(s) == 0 && sim_ev_check_complete(s, false);
}

static int sim_ev_phases(struct sim_ev *s)
{
    (void)sim_ev_run_until(s, NULL, s->safety_ms);
    if (s->failure != 0) {
        return s->failure;
    }
    for (uint32_t p = 0; p < s->pub_count; p++) {
        s->clients[p].left = 0;
        s->clients[p].publish_at_ms = SIM_NEVER;
    }
    sim_ev_heal(s);
    uint64_t end = s->now_ms + s->liveness_ms;
    if (sim_ev_run_until(s, sim_ev_converged, end)) {
        /* A quiet period: late replays and forgeries still meet the checks. */
        (void)sim_ev_run_until(s, NULL, s->now_ms + 2 * s->gap_wait_ms);
        (void)sim_ev_check_complete(s, true);
        return s->failure;
    }
    if (s->failure != 0) {
        return s->failure;
    }
    uint64_t pending = sim_ev_pending(s);
    if (pending > 0) {
        sim_ev_fail(s, SIM_EXIT_LIVENESS, "%llu events never acknowledged by the quorum",
                    (unsigned long long)pending);
    } else {
        (void)sim_ev_check_complete(s, true);
    }
    return s->failure;
}

static void sim_ev_header(const struct sim_ev *s)
{
    printf("events seed=%llu pubs=%u subs=%u flow=%d netbreaks=%d lists=%d novote=%d window=%u "
           "delay=%llu-%llu faulty=",
           (unsigned long long)s->seed, s->pub_count, s->sub_count, s->flow, s->netbreaks, s->lists,
           s->novote, s->window, (unsigned long long)s->delay_ms_min,
           (unsigned long long)s->delay_ms_max);
    for (uint32_t r = 0; r < SIM_EV_N; r++) {
        const struct sim_ev_replica *rep = &s->replicas[r];
        if (rep->byz != 0) {
            printf("r%u:byz%02x%s,", r, rep->byz, rep->flaky ? "+flaky" : "");
        } else if (rep->crash_prone || rep->flaky) {
            printf("r%u:%s%s,", r, rep->crash_prone ? "crash" : "", rep->flaky ? "+flaky" : "");
        }
    }
    printf("\n");
}

static void sim_ev_report(const struct sim_ev *s, int rc)
{
    const struct sim_ev_counts *k = &s->counts;
    printf("events seed=%llu %s t=%llu published=%llu delivered=%llu skipped=%llu notices=%llu "
           "flow_dropped=%llu altered=%llu forged=%llu replayed=%llu reordered=%llu muted=%llu "
           "garbage=%llu breaks=%llu crashes=%llu restarts=%llu lost_in_flight=%llu\n",
           (unsigned long long)s->seed, rc == 0 ? "ok" : "FAIL", (unsigned long long)s->now_ms,
           (unsigned long long)k->published, (unsigned long long)k->delivered,
           (unsigned long long)k->skipped, (unsigned long long)k->notices,
           (unsigned long long)k->flow_dropped, (unsigned long long)k->altered,
           (unsigned long long)k->forged, (unsigned long long)k->replayed,
           (unsigned long long)k->reordered, (unsigned long long)k->muted,
           (unsigned long long)k->garbage, (unsigned long long)k->breaks,
           (unsigned long long)k->crashes, (unsigned long long)k->restarts,
           (unsigned long long)k->lost);
    if (rc == 0) {
        return;
    }
    printf("events seed=%llu exit=%d %s\nlast steps:\n", (unsigned long long)s->seed, rc,
           s->failure_text);
    uint64_t first = s->trace_count > SIM_EV_TRACE_LINES ? s->trace_count - SIM_EV_TRACE_LINES : 0;
    for (uint64_t i = first; !s->verbose && i < s->trace_count; i++) {
        printf("  %s\n", s->trace[i % SIM_EV_TRACE_LINES]);
    }
}

static void sim_ev_counts_add(struct sim_ev_counts *total, const struct sim_ev_counts *k)
{
    uint64_t *t = (uint64_t *)total;
    const uint64_t *a = (const uint64_t *)k;
    for (size_t i = 0; i < sizeof(*k) / sizeof(uint64_t); i++) {
        t[i] += a[i];
    }
}

int sim_ev_run_seed(uint64_t seed, const struct sim_ev_force *force, int model, bool verbose,
                    struct sim_ev_counts *total)
{
    struct sim_ev *s = calloc(1, sizeof(*s));
    TRONE_ASSERT(s != NULL);
    s->seed = seed;
    s->verbose = verbose;
    s->force = *force;
    sim_rng_seed(&s->rng, seed ^ 0x6576656e7473ull);
    sim_ev_init(s, model);
    sim_ev_header(s);
    int rc = sim_ev_phases(s);
    sim_ev_report(s, rc);
    fflush(stdout);
    sim_ev_counts_add(total, &s->counts);
    sim_ev_close(s);
    free(s);
    return rc;
}

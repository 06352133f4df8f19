/* sim_world.c: one seed's world. The PRNG, seeded by the seed alone, picks the cluster (n, f,
 * model), the core options, the fault rates and the faulty replicas; then the event loop runs
 * a safety phase with faults and a healed liveness phase that must converge. */
#include "sim.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

void sim_trace(struct sim *s, const char *fmt, ...)
{
    if (!s->verbose) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    printf("t=%llu ", (unsigned long long)s->now_ms);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

void sim_fail(struct sim *s, int code, const char *fmt, ...)
{
    if (s->failure != 0) {
        return; /* the first failure is the one to report */
    }
    s->failure = code;
    va_list ap;
    va_start(ap, fmt);
    int used = snprintf(s->failure_text, sizeof(s->failure_text), "t=%llu ",
                        (unsigned long long)s->now_ms);
    vsnprintf(s->failure_text + used, sizeof(s->failure_text) - (size_t)used, fmt, ap);
    va_end(ap);
    sim_trace(s, "FAILURE %s", s->failure_text);
}

static void keys_make(struct sim *s)
{
    struct sim_rng keys;
    sim_rng_seed(&keys, s->seed ^ 0x6b6579736b657973ull);
    for (uint32_t i = 0; i < s->p.n + s->p.client_count; i++) {
        uint8_t seed[crypto_sign_SEEDBYTES];
        for (size_t k = 0; k < sizeof(seed); k += 8) {
            buf_store_u64(seed + k, sim_rng_next(&keys));
        }
        if (i < s->p.n) {
            crypto_sign_seed_keypair(s->replica_pk[i], s->replica_sk[i], seed);
        } else {
            uint32_t ci = i - s->p.n;
            struct sim_client *c = &s->clients[ci];
            crypto_sign_seed_keypair(c->public_key, c->secret_key, seed);
            if (s->shared_keys && ci >= 2 && ci % 2 == 0) {
                memcpy(c->public_key, s->clients[ci - 1].public_key, TRONE_KEY_LEN);
                memcpy(c->secret_key, s->clients[ci - 1].secret_key, TRONE_SECRET_KEY_LEN);
            }
        }
    }
}

bool sim_world_init(struct sim *s, uint64_t seed, bool verbose)
{
    TRONE_ASSERT(sodium_init() >= 0);
    TRONE_ASSERT(s->p.n > 0 && s->p.n <= TRONE_REPLICAS_MAX);
    TRONE_ASSERT(s->p.client_count > 0 && s->p.client_count <= SIM_CLIENTS_MAX);
    s->seed = seed;
    s->verbose = verbose;
    sim_queue_init(&s->queue);
    sim_check_init(&s->check);
    buf_init(&s->scratch, 0);
    keys_make(s);
    sim_work_plan(s);
    for (uint32_t i = 0; i < s->p.n; i++) {
        s->replicas[i].tick_ms = SIM_NEVER;
        if (!sim_replica_start(s, i)) {
            return false;
        }
    }
    for (uint32_t i = 0; i < s->p.client_count; i++) {
        if (!sim_client_start(s, i)) {
            return false;
        }
    }
    struct sim_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ms = s->p.chaos_period_ms;
    ev.node = SIM_NODES_MAX;
    ev.kind = SIM_EV_CHAOS;
    SIM_MUST(sim_queue_push(&s->queue, &ev));
    return true;
}

void sim_world_close(struct sim *s)
{
    sim_nodes_close(s);
    sim_queue_close(&s->queue);
    sim_check_close(&s->check);
    buf_close(&s->scratch);
}

/* The earliest due tick as an event, so ties follow the queue's order (tick before net). */
static bool next_tick(const struct sim *s, struct sim_event *tick)
{
    bool found = false;
    for (uint32_t i = 0; i < s->p.n + s->p.client_count; i++) {
        uint64_t at = SIM_NEVER;
        if (i < s->p.n) {
            at = s->replicas[i].up ? s->replicas[i].tick_ms : SIM_NEVER;
        } else {
            at = s->clients[i - s->p.n].tick_ms;
        }
        if (at == SIM_NEVER) {
            continue;
        }
        struct sim_event ev = {.time_ms = at, .node = i, .kind = SIM_EV_TICK};
        if (!found || sim_event_before(&ev, tick)) {
            *tick = ev;
            found = true;
        }
    }
    return found;
}

static void deliver(struct sim *s, struct sim_event *ev)
{
    s->delivered++;
    if (sim_node_is_client(s, ev->node)) {
        sim_trace(s, "deliver from=%u to=%u msg=%s size=%zu", ev->from, ev->node,
                  sim_msg_name(ev->data, ev->size), ev->size);
        sim_client_deliver(s, ev->node - s->p.n, ev->from, ev->data, ev->size);
    } else if (s->replicas[ev->node].up) {
        sim_trace(s, "deliver from=%u to=%u msg=%s size=%zu", ev->from, ev->node,
                  sim_msg_name(ev->data, ev->size), ev->size);
        sim_replica_deliver(s, ev->node, ev->from, ev->data, ev->size);
    } else {
        sim_trace(s, "fault=down from=%u to=%u msg=%s", ev->from, ev->node,
                  sim_msg_name(ev->data, ev->size));
    }
    free(ev->data);
}

bool sim_step(struct sim *s)
{
    if (s->failure != 0) {
        return false;
    }
    struct sim_event tick;
    bool has_tick = next_tick(s, &tick);
    const struct sim_event *head = sim_queue_peek(&s->queue);
    if (!has_tick && head == NULL) {
        return false;
    }
    s->steps++;
    if (has_tick && (head == NULL || sim_event_before(&tick, head))) {
        TRONE_ASSERT(tick.time_ms >= s->now_ms);
        s->now_ms = tick.time_ms;
        if (sim_node_is_client(s, tick.node)) {
            sim_client_tick(s, tick.node - s->p.n);
        } else {
            sim_replica_tick(s, tick.node);
        }
        return s->failure == 0;
    }
    struct sim_event ev;
    SIM_MUST(sim_queue_pop(&s->queue, &ev));
    TRONE_ASSERT(ev.time_ms >= s->now_ms);
    s->now_ms = ev.time_ms;
    if (ev.kind == SIM_EV_CHAOS) {
        sim_net_chaos(s);
    } else {
        deliver(s, &ev);
    }
    return s->failure == 0;
}

bool sim_step_until(struct sim *s, bool (*pred)(struct sim *s, void *arg), void *arg,
                    uint64_t max_ms)
{
    uint64_t end_ms = s->now_ms + max_ms;
    for (;;) { /* bounded by virtual time: every step moves time or consumes an event */
        if (s->failure != 0) {
            return false;
        }
        if (pred != NULL && pred(s, arg)) {
            return true;
        }
        struct sim_event tick;
        const struct sim_event *head = sim_queue_peek(&s->queue);
        uint64_t next = head != NULL ? head->time_ms : SIM_NEVER;
        if (next_tick(s, &tick) && tick.time_ms < next) {
            next = tick.time_ms;
        }
        if (next == SIM_NEVER || next > end_ms) {
            s->now_ms = end_ms;
            return false;
        }
        if (!sim_step(s)) {
            return s->failure == 0 && pred != NULL && pred(s, arg);
        }
    }
}

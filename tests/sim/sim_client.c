/* sim_client.c: the simulated clients (the admin is client 0). Each submits its planned
 * operations, at most inflight_max at a time, through the real smr client core; every message
 * goes to every replica over the faulty network. */
#include "sim.h"

#include <string.h>

#include "core/assert.h"

/* A shared-key client's next first id: the clock (ms) in the high bits, the client in the
 * next ones, so that the clients of one key never pick one id and their ids interleave in
 * time; above the client's own last id. */
static uint64_t shared_first_id(const struct sim *s, uint32_t idx)
{
    uint64_t id = ((s->now_ms + 1u) << 16) | ((uint64_t)idx << 8);
    return id > s->clients[idx].last_id ? id : s->clients[idx].last_id + 1u;
}

/* A client core of client idx with its key and the run's parameters. */
static struct smr_client *client_core(const struct sim *s, uint32_t idx, uint64_t first_id,
                                      uint32_t inflight_max)
{
    const struct sim_client *c = &s->clients[idx];
    struct smr_client_config config;
    memset(&config, 0, sizeof(config));
    config.replica_count = s->p.n;
    config.fault_count = s->p.f;
    config.model = s->p.model;
    memcpy(config.public_key, c->public_key, TRONE_KEY_LEN);
    memcpy(config.secret_key, c->secret_key, TRONE_SECRET_KEY_LEN);
    config.first_request_id = first_id;
    config.retransmit_ms = s->p.retransmit_ms;
    config.inflight_max = inflight_max;
    return smr_client_create(&config);
}

bool sim_client_start(struct sim *s, uint32_t idx)
{
    struct sim_client *c = &s->clients[idx];
    c->inflight_max = 1 + (uint32_t)sim_rng_below(&s->rng, 3);
    if (s->shared_keys) {
        c->inflight_max = 1; /* the runtime's clients: one call at a time */
    }
    c->core = client_core(s, idx, s->shared_keys ? shared_first_id(s, idx) : 1, c->inflight_max);
    if (c->core == NULL) {
        return false;
    }
    c->tick_ms = s->now_ms;
    c->submit_at_ms = s->now_ms + sim_rng_below(&s->rng, 50);
    return true;
}

static void client_output(struct sim *s, uint32_t idx, const struct smr_client_output *out)
{
    struct sim_client *c = &s->clients[idx];
    uint32_t node = sim_client_node(s, idx);
    for (size_t m = 0; m < out->message_count; m++) {
        for (uint32_t r = 0; r < s->p.n; r++) {
            sim_net_send(s, node, r, out->messages[m].data, out->messages[m].used);
        }
    }
    for (size_t d = 0; d < out->done_count; d++) {
        sim_check_client_done(s, idx, &out->done[d]);
    }
    uint64_t deadline = out->deadline_ms;
    uint64_t tick = (deadline == 0 || deadline == UINT64_MAX) ? SIM_NEVER : deadline;
    if (tick != SIM_NEVER && tick <= s->now_ms) {
        tick = s->now_ms + 1;
    }
    c->tick_ms = tick < c->submit_at_ms ? tick : c->submit_at_ms;
    if (c->tick_ms <= s->now_ms) {
        c->tick_ms = s->now_ms + 1;
    }
}

static void client_submit(struct sim *s, uint32_t idx)
{
    struct sim_client *c = &s->clients[idx];
    c->submit_at_ms = SIM_NEVER;
    if (c->op_next >= c->op_count) {
        return;
    }
    struct sim_op *op = &c->ops[c->op_next];
    uint64_t id = 0;
    const struct smr_client_output *out = NULL;
    if (s->shared_keys && smr_client_inflight(c->core) == 0) {
        /* As rt_client_core_init: a fresh core per call, its ids from the clock. */
        smr_client_destroy(c->core);
        c->core = client_core(s, idx, shared_first_id(s, idx), 1);
        TRONE_ASSERT(c->core != NULL);
    }
    int rc = smr_client_submit(c->core, s->now_ms, op->bytes, op->size, &id, &out);
    if (rc == TRONE_EBUSY) {
        c->submit_at_ms = s->now_ms + 1 + sim_rng_below(&s->rng, c->think_ms_max);
        return;
    }
    if (rc != 0) {
        sim_fail(s, SIM_EXIT_INVARIANT, "client %u submit of op %u failed: %s", idx, c->op_next,
                 trone_err_name(rc));
        return;
    }
    TRONE_ASSERT(id > 0);
    c->ids[c->op_next] = id;
    c->last_id = id;
    sim_trace(s, "submit client=%u op=%u id=%llu what=%s", idx, c->op_next,
              (unsigned long long)id, op->what);
    c->op_next++;
    if (c->op_next < c->op_count) {
        c->submit_at_ms = s->now_ms + 1 + sim_rng_below(&s->rng, c->think_ms_max);
    }
    client_output(s, idx, out);
}

void sim_client_tick(struct sim *s, uint32_t idx)
{
    struct sim_client *c = &s->clients[idx];
    if (c->submit_at_ms <= s->now_ms) {
        client_submit(s, idx);
    }
    const struct smr_client_output *out = NULL;
    int rc = smr_client_tick(c->core, s->now_ms, &out);
    if (rc != 0) {
        sim_fail(s, SIM_EXIT_INVARIANT, "client %u tick failed: %s", idx, trone_err_name(rc));
        return;
    }
    client_output(s, idx, out);
}

void sim_client_deliver(struct sim *s, uint32_t idx, uint32_t from_node, const uint8_t *data,
                        size_t size)
{
    struct sim_client *c = &s->clients[idx];
    TRONE_ASSERT(from_node < s->p.n);
    const struct smr_client_output *out = NULL;
    int rc = smr_client_receive(c->core, s->now_ms, from_node, data, size, &out);
    if (rc != 0) {
        /* Malformed replies are rejected with 0; an error means the client core failed. */
        sim_fail(s, SIM_EXIT_INVARIANT, "client %u receive from replica %u failed: %s", idx,
                 from_node, trone_err_name(rc));
        return;
    }
    client_output(s, idx, out);
}

void sim_nodes_close(struct sim *s)
{
    for (uint32_t i = 0; i < s->p.n; i++) {
        struct sim_replica *r = &s->replicas[i];
        if (r->up) {
            smr_destroy(r->core);
            r->core = NULL;
            sim_table_destroy(s, i);
            r->up = false;
        }
        sim_byz_close(r);
        sim_disk_close(&r->disk);
    }
    for (uint32_t i = 0; i < s->p.client_count; i++) {
        smr_client_destroy(s->clients[i].core);
        s->clients[i].core = NULL;
    }
}

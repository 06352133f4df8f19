/* sim_ev_replica.c: a simulated replica's event path, driven as src/rt/rt_replica.c drives
 * it: every PUBLISH/ATTACH/DETACH goes to brk_events_message with the connection's
 * authenticated key, and queued events are flushed once per "loop turn" (a tick at the same
 * virtual time, after the messages of that instant), with the pause state of every subscriber
 * connection set first. A crash loses the whole event-path state; a restart begins empty.
 * Outputs of a Byzantine replica pass through its filter (sim_ev_byz.c). */
#include <string.h>

#include "core/assert.h"
#include "sim_ev.h"

void sim_ev_replica_start(struct sim_ev *s, uint32_t r)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    TRONE_ASSERT(!rep->up);
    struct brk_events_config c;
    brk_events_config_defaults(&c);
    c.conn_max = 64;
    c.attach_max = 256;
    c.stream_max = 64; /* more than publishers x channels: no stream is evicted */
    c.queue_events_max = s->queue_events_max;
    c.queue_bytes_max = 4u * BRK_EVENTS_RECORD_MAX;
    /* Under flow control a tiny GAP table makes the replica close slow subscribers too. */
    c.gap_max = s->flow ? (uint32_t)sim_rng_range(&s->rng, 1, 16) : 64u;
    c.deliver_bytes_max = (uint32_t)sim_rng_range(&s->rng, 200, 4096);
    c.flush_conn_bytes_max = (uint32_t)sim_rng_range(&s->rng, 512, 65536);
    c.flush_total_bytes_max = c.flush_conn_bytes_max * 2u;
    for (size_t i = 0; i < sizeof(c.hash_key); i += 8) {
        buf_store_u64(c.hash_key + i, sim_rng_next(&s->rng));
    }
    SIM_MUST(brk_events_init(&rep->core, &c) == 0);
    rep->up = true;
    rep->flush_due = false;
    rep->tick_ms = SIM_NEVER;
    rep->dropped_seen = 0;
}

void sim_ev_replica_close(struct sim_ev *s, uint32_t r)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    if (rep->up) {
        brk_events_close(&rep->core);
        rep->up = false;
    }
    sim_ev_byz_close(rep);
}

void sim_ev_replica_crash(struct sim_ev *s, uint32_t r)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    TRONE_ASSERT(rep->up);
    sim_ev_trace(s, "fault=crash replica=%u", r);
    brk_events_close(&rep->core);
    rep->up = false;
    rep->tick_ms = SIM_NEVER;
    rep->restarts++;
    s->counts.crashes++;
    sim_ev_byz_close(rep);
    for (uint32_t c = 0; c < s->client_count; c++) {
        sim_ev_conn_break(s, c, r, "replica crashed");
    }
}

/* Sends what one call into the core produced, to live connections of the right instance. */
static void sim_ev_replica_apply(struct sim_ev *s, uint32_t r, const struct brk_events_out *out)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    for (size_t i = 0; i < out->send_count; i++) {
        const struct brk_events_send *m = &out->sends[i];
        uint32_t client = (uint32_t)(m->conn_id & 0xffu);
        uint32_t gen = (uint32_t)(m->conn_id >> 8);
        TRONE_ASSERT(client < s->client_count);
        const struct sim_ev_conn *k = &s->conns[client][r];
        if (!k->up || k->gen != gen) {
            s->counts.lost++;
            continue;
        }
        if (rep->byz != 0) {
            sim_ev_byz_send(s, r, client, m->data, m->size);
        } else {
            sim_ev_send(s, client, r, 1, m->data, m->size);
        }
    }
    for (size_t i = 0; i < out->close_count; i++) {
        uint32_t client = (uint32_t)(out->closes[i] & 0xffu);
        if (s->conns[client][r].gen == (uint32_t)(out->closes[i] >> 8)) {
            sim_ev_conn_break(s, client, r, "gap table full");
        }
    }
    const struct brk_events_stats *st = brk_events_stats(&rep->core);
    if (sim_ev_correct(s, r)) {
        s->counts.flow_dropped += st->dropped - rep->dropped_seen;
    }
    rep->dropped_seen = st->dropped;
}

void sim_ev_replica_receive(struct sim_ev *s, uint32_t r, uint32_t client, const uint8_t *data,
                            size_t size)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    TRONE_ASSERT(rep->up);
    const struct sim_ev_conn *k = &s->conns[client][r];
    const struct brk_events_out *out = NULL;
    int rc =
        brk_events_message(&rep->core, &s->table, s->now_ms * 1000u, sim_ev_conn_id(client, k->gen),
                           s->clients[client].public_key, data, size, &out);
    if (rc != 0) {
        /* Clients are correct: a refusal of their bytes is a bug somewhere. */
        sim_ev_fail(s, SIM_EXIT_INVARIANT, "replica %u refused a message of correct client %s: %s",
                    r, s->clients[client].name, trone_err_name(rc));
        return;
    }
    if (out->status != 0 && !s->clients[client].publisher) {
        sim_ev_trace(s, "replica=%u refused attach client=%s err=%s", r, s->clients[client].name,
                     trone_err_name(out->status));
    }
    sim_ev_replica_apply(s, r, out);
    rep->flush_due = true;
    rep->tick_ms = s->now_ms;
}

/* Once per loop turn: pause states, then one flush (rt_replica_on_check). */
void sim_ev_replica_tick(struct sim_ev *s, uint32_t r)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    TRONE_ASSERT(rep->up);
    rep->tick_ms = SIM_NEVER;
    if (rep->byz != 0) {
        sim_ev_byz_release(s, r, false);
    }
    if (!rep->flush_due) {
        return;
    }
    rep->flush_due = false;
    if (!brk_events_pending(&rep->core)) {
        return;
    }
    for (uint32_t c = 0; c < s->client_count; c++) {
        const struct sim_ev_conn *k = &s->conns[c][r];
        if (k->up) {
            brk_events_conn_pause(&rep->core, sim_ev_conn_id(c, k->gen), k->paused);
        }
    }
    const struct brk_events_out *out = NULL;
    brk_events_flush(&rep->core, &s->table, s->now_ms * 1000u, &out);
    bool more = out->more;
    sim_ev_replica_apply(s, r, out);
    if (more && rep->up) {
        rep->flush_due = true;
        rep->tick_ms = s->now_ms + 1;
    }
}

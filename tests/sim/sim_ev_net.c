/* sim_ev_net.c: the event world's connections. Every client has one connection to every
 * replica, like the TCP/Noise sessions of rt_events: each direction delivers in order (an
 * arrival never precedes an earlier one) after a seeded delay. A broken connection loses what
 * is in flight, tells both ends and comes back later as a new instance (new conn id at the
 * replica, cln_pub_replica_up and re-ATTACH at the client). The chaos event breaks the
 * faulty replica's connections, crashes and restarts it, and pauses subscriber connections
 * (flow control) during the safety phase. */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "sim_ev.h"

void sim_ev_send(struct sim_ev *s, uint32_t client, uint32_t replica, int dir, const uint8_t *data,
                 size_t size)
{
    TRONE_ASSERT(client < s->client_count && replica < SIM_EV_N);
    TRONE_ASSERT(dir == 0 || dir == 1);
    struct sim_ev_conn *k = &s->conns[client][replica];
    if (!k->up) {
        s->counts.lost++;
        return;
    }
    uint64_t at = s->now_ms + sim_rng_range(&s->rng, s->delay_ms_min, s->delay_ms_max);
    if (at < k->arrive_ms[dir]) {
        at = k->arrive_ms[dir]; /* TCP: in order; equal times keep insertion order */
    }
    k->arrive_ms[dir] = at;
    struct sim_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ms = at;
    ev.node = dir == 0 ? replica : sim_ev_node(client);
    ev.from = dir == 0 ? sim_ev_node(client) : replica;
    ev.kind = SIM_EV_NET;
    ev.size = size + 4;
    ev.data = malloc(ev.size);
    TRONE_ASSERT(ev.data != NULL);
    buf_store_u32(ev.data, k->gen);
    if (size > 0) {
        memcpy(ev.data + 4, data, size);
    }
    if (!sim_queue_push(&s->queue, &ev)) {
        s->counts.lost++;
    }
}

static void sim_ev_reconnect_later(struct sim_ev *s, uint32_t client, uint32_t replica,
                                   uint64_t delay_ms)
{
    struct sim_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ms = s->now_ms + delay_ms;
    ev.node = sim_ev_node(client);
    ev.from = replica;
    ev.kind = SIM_EV_RECONNECT;
    SIM_MUST(sim_queue_push(&s->queue, &ev));
}

void sim_ev_conn_break(struct sim_ev *s, uint32_t client, uint32_t replica, const char *why)
{
    struct sim_ev_conn *k = &s->conns[client][replica];
    if (!k->up) {
        return;
    }
    sim_ev_trace(s, "conn_break client=%s replica=%u why=%s", s->clients[client].name, replica,
                 why);
    uint64_t id = sim_ev_conn_id(client, k->gen);
    k->up = false;
    k->paused = false;
    k->refused = false;
    k->gen++;
    memset(k->last_seq, 0, sizeof(k->last_seq));
    s->counts.breaks++;
    if (s->replicas[replica].up) {
        brk_events_conn_close(&s->replicas[replica].core, id);
    }
    sim_ev_client_down(s, client, replica);
    uint64_t delay = s->healed ? sim_rng_range(&s->rng, 1, 20) : sim_rng_range(&s->rng, 20, 800);
    sim_ev_reconnect_later(s, client, replica, delay);
}

void sim_ev_conn_open(struct sim_ev *s, uint32_t client, uint32_t replica)
{
    struct sim_ev_conn *k = &s->conns[client][replica];
    TRONE_ASSERT(!k->up);
    TRONE_ASSERT(s->replicas[replica].up);
    k->up = true;
    k->arrive_ms[0] = s->now_ms;
    k->arrive_ms[1] = s->now_ms;
    sim_ev_trace(s, "conn_open client=%s replica=%u gen=%u", s->clients[client].name, replica,
                 k->gen);
    sim_ev_client_up(s, client, replica);
}

/* A RECONNECT event: the client dials again; a replica that is down is tried again later. */
static void sim_ev_reconnect(struct sim_ev *s, uint32_t client, uint32_t replica)
{
    if (s->conns[client][replica].up) {
        return;
    }
    if (!s->replicas[replica].up) {
        sim_ev_reconnect_later(s, client, replica, s->healed ? 5 : 100);
        return;
    }
    sim_ev_conn_open(s, client, replica);
}

void sim_ev_arrive(struct sim_ev *s, struct sim_event *ev)
{
    if (ev->kind == SIM_EV_RECONNECT) {
        sim_ev_reconnect(s, ev->node - SIM_EV_N, ev->from);
        return;
    }
    TRONE_ASSERT(ev->size >= 4);
    bool to_replica = ev->node < SIM_EV_N;
    uint32_t client = to_replica ? ev->from - SIM_EV_N : ev->node - SIM_EV_N;
    uint32_t replica = to_replica ? ev->node : ev->from;
    const struct sim_ev_conn *k = &s->conns[client][replica];
    if (!k->up || k->gen != buf_load_u32(ev->data)) {
        s->counts.lost++; /* in flight on a connection that broke */
        return;
    }
    if (to_replica) {
        sim_ev_replica_receive(s, replica, client, ev->data + 4, ev->size - 4);
    } else {
        sim_ev_client_receive(s, client, replica, ev->data + 4, ev->size - 4);
    }
}

static void sim_ev_chaos_replica(struct sim_ev *s, uint32_t r)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    if (rep->crash_prone) {
        if (!rep->up && s->now_ms >= rep->down_until_ms) {
            sim_ev_trace(s, "fault=restart replica=%u", r);
            sim_ev_replica_start(s, r);
        } else if (rep->up && sim_rng_chance(&s->rng, s->crash_permille)) {
            sim_ev_replica_crash(s, r);
            rep->down_until_ms = s->now_ms + sim_rng_range(&s->rng, 50, 2000);
        }
    }
    if (rep->flaky && rep->up) {
        for (uint32_t c = 0; c < s->client_count; c++) {
            if (sim_rng_chance(&s->rng, s->break_permille)) {
                sim_ev_conn_break(s, c, r, "flaky");
            }
        }
    } else if (s->netbreaks && rep->up) {
        for (uint32_t c = 0; c < s->client_count; c++) {
            if (sim_rng_chance(&s->rng, s->netbreak_permille)) {
                sim_ev_conn_break(s, c, r, "network");
            }
        }
    }
}

/* Flow control: a subscriber's connection to any replica (correct ones too) backs up for a
 * while; the replica's bounded queue then drops and reports GAPs. Not a fault. */
static void sim_ev_chaos_pause(struct sim_ev *s)
{
    for (uint32_t c = s->pub_count; c < s->client_count; c++) {
        for (uint32_t r = 0; r < SIM_EV_N; r++) {
            struct sim_ev_conn *k = &s->conns[c][r];
            if (k->paused && s->now_ms >= k->pause_until_ms) {
                k->paused = false;
                s->replicas[r].flush_due = true;
                s->replicas[r].tick_ms = s->now_ms;
            } else if (k->up && !k->paused && sim_rng_chance(&s->rng, s->pause_permille)) {
                k->paused = true;
                k->pause_until_ms = s->now_ms + sim_rng_range(&s->rng, 20, 1000);
                sim_ev_trace(s, "pause client=%s replica=%u until=%llu", s->clients[c].name, r,
                             (unsigned long long)k->pause_until_ms);
            }
        }
    }
}

void sim_ev_chaos(struct sim_ev *s)
{
    if (s->healed) {
        return;
    }
    for (uint32_t r = 0; r < SIM_EV_N; r++) {
        sim_ev_chaos_replica(s, r);
    }
    if (s->flow) {
        sim_ev_chaos_pause(s);
    }
    for (uint32_t p = 0; p < s->pub_count; p++) {
        if (s->clients[p].epoch_count < SIM_EV_EPOCHS_MAX &&
            sim_rng_chance(&s->rng, s->restart_permille)) {
            sim_ev_pub_restart(s, p);
        }
    }
    struct sim_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ms = s->now_ms + s->chaos_period_ms;
    ev.node = SIM_NODES_MAX;
    ev.kind = SIM_EV_CHAOS;
    SIM_MUST(sim_queue_push(&s->queue, &ev));
}

/* Liveness phase: crashed replicas restart, pauses end; broken connections come back through
 * their pending RECONNECT events. Byzantine replicas stay Byzantine. */
void sim_ev_heal(struct sim_ev *s)
{
    s->healed = true;
    sim_ev_trace(s, "phase=liveness");
    for (uint32_t r = 0; r < SIM_EV_N; r++) {
        if (!s->replicas[r].up) {
            sim_ev_trace(s, "fault=restart replica=%u", r);
            sim_ev_replica_start(s, r);
        }
        s->replicas[r].flush_due = true;
        s->replicas[r].tick_ms = s->now_ms;
        for (uint32_t c = 0; c < s->client_count; c++) {
            s->conns[c][r].paused = false;
        }
    }
}

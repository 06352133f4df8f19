/* sim_ev_byz.c: Byzantine behaviours of a replica on the event path, as filters on what its
 * real brk_events core sends to clients (so it holds real events to alter, replay and reorder):
 * altered DELIVERs (payload, seq, publisher time, signature, publisher key) and lying ACKs;
 * forged events in an authorized publisher's name (seqs equal to or just ahead of the real
 * stream, the same or a newer epoch, a copied or random signature); validly signed events
 * under the replica's own key; replays of old DELIVERs; DELIVERs held back and released in
 * reverse order; no DELIVER at all while ACKing every PUBLISH; malformed messages, bogus GAPs
 * and ATTACHED refusals. Each action is drawn from the seeded PRNG. */
#include <stdlib.h>
#include <string.h>

#include "chan/chan_auth.h"
#include "chan/chan_msg.h"
#include "core/assert.h"
#include "sim_ev.h"

#define SIM_EV_BYZ_EVENTS_MAX 64u

/* A decoded DELIVER whose events may be changed before re-encoding. */
struct sim_ev_byz_msg {
    struct chan_msg m;
    uint32_t count;
    struct chan_event ev[SIM_EV_BYZ_EVENTS_MAX];
    uint8_t bytes[SIM_EV_BYZ_EVENTS_MAX][SIM_EV_PAYLOAD_MAX + CHAN_AUTH_MAX];
};

static bool sim_ev_byz_parse(const uint8_t *data, size_t size, struct sim_ev_byz_msg *x)
{
    struct buf_reader rd;
    if (chan_msg_check(data, size) != 0 || chan_msg_read_header(&rd, data, size, &x->m) != 0 ||
        x->m.type != CHAN_MSG_DELIVER || x->m.event_count > SIM_EV_BYZ_EVENTS_MAX) {
        return false;
    }
    x->count = x->m.event_count;
    for (uint32_t i = 0; i < x->count; i++) {
        chan_msg_read_event(&rd, &x->ev[i]);
        struct chan_event *e = &x->ev[i];
        if (e->payload_size > SIM_EV_PAYLOAD_MAX || e->auth_size > CHAN_AUTH_MAX) {
            return false;
        }
        /* Own copies, so that the filter can change them. */
        memcpy(x->bytes[i], e->auth, e->auth_size);
        memcpy(x->bytes[i] + CHAN_AUTH_MAX, e->payload, e->payload_size);
        e->auth = x->bytes[i];
        e->payload = x->bytes[i] + CHAN_AUTH_MAX;
    }
    return true;
}

static void sim_ev_byz_emit(struct sim_ev *s, uint32_t r, uint32_t client,
                            const struct sim_ev_byz_msg *x)
{
    buf_reset(&s->scratch);
    chan_msg_put_header(&s->scratch, &x->m);
    for (uint32_t i = 0; i < x->count; i++) {
        chan_msg_put_event(&s->scratch, &x->ev[i]);
    }
    chan_msg_events_end(&s->scratch, 0, x->count);
    SIM_MUST(s->scratch.error == 0);
    sim_ev_send(s, client, r, 1, s->scratch.data, s->scratch.used);
}

static void sim_ev_byz_random(struct sim_ev *s, uint8_t *p, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        p[i] = (uint8_t)sim_rng_next(&s->rng);
    }
}

/* Another authorized publisher of the channel than key, or key itself. */
static void sim_ev_byz_other_publisher(struct sim_ev *s, int ch, uint8_t key[TRONE_KEY_LEN])
{
    int self = sim_ev_publisher_by_key(s, key);
    for (uint32_t p = 0; ch >= 0 && p < s->pub_count; p++) {
        if ((int)p != self && s->channels[ch].publisher[p]) {
            memcpy(key, s->clients[p].public_key, TRONE_KEY_LEN);
            return;
        }
    }
}

static void sim_ev_byz_alter(struct sim_ev *s, uint32_t r, uint32_t client,
                             struct sim_ev_byz_msg *x)
{
    struct chan_event *e = &x->ev[sim_rng_below(&s->rng, x->count)];
    uint8_t *payload = (uint8_t *)(uintptr_t)e->payload;
    uint8_t *auth = (uint8_t *)(uintptr_t)e->auth;
    switch (sim_rng_below(&s->rng, 6)) {
    case 0:
        if (e->payload_size > 0) {
            payload[sim_rng_below(&s->rng, e->payload_size)] ^= 0x5a;
        } else {
            e->payload_size = 1;
            payload[0] = 0x5a;
        }
        break;
    case 1:
        e->seq += sim_rng_range(&s->rng, 1, 2);
        break;
    case 2:
        e->time_us ^= 1u;
        break;
    case 3:
        if (e->auth_size > 0) {
            auth[sim_rng_below(&s->rng, e->auth_size)] ^= 0x01;
        } else {
            e->payload_size = e->payload_size > 0 ? e->payload_size - 1 : 0;
        }
        break;
    case 4:
        sim_ev_byz_other_publisher(s, sim_ev_channel_by_tag(s, x->m.tag), x->m.publisher);
        break;
    default:
        e->epoch += 1; /* a "newer epoch" copy of a real event */
        break;
    }
    s->counts.altered++;
    sim_ev_trace(s, "byz r%u alters a DELIVER %s to %s (seq=%llu)", r, x->m.tag,
                 s->clients[client].name, (unsigned long long)e->seq);
    sim_ev_byz_emit(s, r, client, x);
}

/* Forged events in an authorized publisher's name, around the real stream's seqs. */
static void sim_ev_byz_forge(struct sim_ev *s, uint32_t r, uint32_t client,
                             struct sim_ev_byz_msg *x)
{
    const struct chan_event last = x->ev[x->count - 1];
    uint8_t sig[CHAN_AUTH_MAX];
    memcpy(sig, last.auth, last.auth_size);
    if (sim_rng_chance(&s->rng, 300)) {
        sim_ev_byz_other_publisher(s, sim_ev_channel_by_tag(s, x->m.tag), x->m.publisher);
    }
    uint32_t count = (uint32_t)sim_rng_range(&s->rng, 1, 3);
    uint64_t epoch = sim_rng_chance(&s->rng, 150) ? last.epoch + 1 : last.epoch;
    uint64_t seq = last.seq + sim_rng_below(&s->rng, 3); /* equal to the last real one, or ahead */
    for (uint32_t i = 0; i < count; i++) {
        struct chan_event *e = &x->ev[i];
        e->payload = x->bytes[i] + CHAN_AUTH_MAX;
        e->auth = NULL;
        e->auth_size = 0;
        e->epoch = epoch;
        e->seq = seq + i;
        e->time_us = last.time_us + sim_rng_below(&s->rng, 1000);
        e->payload_size = (uint32_t)sim_rng_range(&s->rng, 0, SIM_EV_PAYLOAD_MAX);
        sim_ev_byz_random(s, (uint8_t *)(uintptr_t)e->payload, e->payload_size);
        if (last.auth_size > 0 && sim_rng_chance(&s->rng, 500)) {
            memcpy(x->bytes[i], sig, last.auth_size); /* a real signature, of another event */
            e->auth = x->bytes[i];
            e->auth_size = last.auth_size;
        } else if (last.auth_size > 0) {
            e->auth_size = CHAN_AUTH_PKS_SIZE;
            sim_ev_byz_random(s, (uint8_t *)(uintptr_t)x->bytes[i], e->auth_size);
            e->auth = x->bytes[i];
        }
    }
    x->count = count;
    s->counts.forged += count;
    sim_ev_trace(s, "byz r%u forges %s epoch=%llu seq=%llu..%llu to %s", r, x->m.tag,
                 (unsigned long long)epoch, (unsigned long long)seq,
                 (unsigned long long)(seq + count - 1), s->clients[client].name);
    sim_ev_byz_emit(s, r, client, x);
}

/* Events signed by the replica itself, presented as their own publisher's. */
static void sim_ev_byz_forge_self(struct sim_ev *s, uint32_t r, uint32_t client,
                                  struct sim_ev_byz_msg *x)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    memcpy(x->m.publisher, s->replica_pk[r], TRONE_KEY_LEN);
    struct chan_event *e = &x->ev[0];
    x->count = 1;
    e->epoch = 1;
    e->seq = ++rep->forge_self_seq;
    e->time_us = s->now_ms * 1000u;
    e->payload = x->bytes[0] + CHAN_AUTH_MAX;
    e->payload_size = (uint32_t)sim_rng_range(&s->rng, 1, SIM_EV_PAYLOAD_MAX);
    sim_ev_byz_random(s, (uint8_t *)(uintptr_t)e->payload, e->payload_size);
    e->auth_size = CHAN_AUTH_PKS_SIZE;
    chan_auth_sign(x->bytes[0], s->replica_sk[r], x->m.tag, e);
    e->auth = x->bytes[0];
    s->counts.forged++;
    sim_ev_trace(s, "byz r%u forges %s under its own key seq=%llu to %s", r, x->m.tag,
                 (unsigned long long)e->seq, s->clients[client].name);
    sim_ev_byz_emit(s, r, client, x);
}

static void sim_ev_byz_store(struct sim_ev_replica *rep, uint64_t roll, const uint8_t *data,
                             size_t size)
{
    uint32_t slot = rep->replay_count < SIM_REPLAY_MAX ? rep->replay_count++
                                                       : (uint32_t)(roll % SIM_REPLAY_MAX);
    free(rep->replay[slot].data);
    rep->replay[slot].data = malloc(size);
    TRONE_ASSERT(rep->replay[slot].data != NULL);
    memcpy(rep->replay[slot].data, data, size);
    rep->replay[slot].size = size;
}

static void sim_ev_byz_garbage(struct sim_ev *s, uint32_t r, uint32_t client, const uint8_t *data,
                               size_t size)
{
    uint8_t junk[64];
    struct chan_msg m;
    memset(&m, 0, sizeof(m));
    s->counts.garbage++;
    switch (sim_rng_below(&s->rng, 4)) {
    case 0: /* truncated */
        sim_ev_send(s, client, r, 1, data, (size_t)sim_rng_below(&s->rng, size));
        return;
    case 1: /* random bytes behind an event-path type */
        sim_ev_byz_random(s, junk, sizeof(junk));
        junk[0] = (uint8_t)(CHAN_MSG_PUBLISH + sim_rng_below(&s->rng, 7));
        sim_ev_send(s, client, r, 1, junk, (size_t)sim_rng_range(&s->rng, 1, sizeof(junk)));
        return;
    case 2: /* a bogus GAP notice */
        m.type = CHAN_MSG_GAP;
        m.dropped = sim_rng_next(&s->rng);
        break;
    default: /* a bogus refusal */
        m.type = CHAN_MSG_ATTACHED;
        m.status = TRONE_EPERM;
        break;
    }
    struct buf_reader rd;
    struct chan_msg real;
    if (chan_msg_read_header(&rd, data, size, &real) == 0) {
        memcpy(m.tag, real.tag, sizeof(m.tag));
        memcpy(m.publisher, real.publisher, TRONE_KEY_LEN);
    }
    buf_reset(&s->scratch);
    chan_msg_put_header(&s->scratch, &m);
    SIM_MUST(s->scratch.error == 0);
    sim_ev_send(s, client, r, 1, s->scratch.data, s->scratch.used);
}

static void sim_ev_byz_hold(struct sim_ev *s, uint32_t r, uint32_t client, const uint8_t *data,
                            size_t size)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    if (rep->held_count == SIM_EV_HOLD_MAX) {
        sim_ev_byz_release(s, r, true);
    }
    struct sim_ev_held *h = &rep->held[rep->held_count++];
    h->client = client;
    h->size = size;
    h->data = malloc(size);
    TRONE_ASSERT(h->data != NULL);
    memcpy(h->data, data, size);
    s->counts.reordered++;
    uint64_t at = s->now_ms + sim_rng_range(&s->rng, 1, 40);
    rep->tick_ms = rep->tick_ms < at ? rep->tick_ms : at;
}

void sim_ev_byz_release(struct sim_ev *s, uint32_t r, bool all)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    if (rep->held_count == 0 || (!all && !sim_rng_chance(&s->rng, 500))) {
        if (rep->held_count > 0) {
            rep->tick_ms = s->now_ms + sim_rng_range(&s->rng, 1, 40);
        }
        return;
    }
    for (uint32_t i = rep->held_count; i > 0; i--) { /* newest first: out of order */
        struct sim_ev_held *h = &rep->held[i - 1];
        sim_ev_send(s, h->client, r, 1, h->data, h->size);
        free(h->data);
        h->data = NULL;
    }
    rep->held_count = 0;
}

static void sim_ev_byz_deliver(struct sim_ev *s, uint32_t r, uint32_t client, const uint8_t *data,
                               size_t size)
{
    struct sim_ev_replica *rep = &s->replicas[r];
    unsigned b = rep->byz;
    uint32_t rate = s->byz_permille;
    if ((b & SIM_EV_BYZ_REPLAY) != 0) {
        if (rep->replay_count > 0 && sim_rng_chance(&s->rng, rate)) {
            const struct sim_replay_entry *old =
                &rep->replay[sim_rng_below(&s->rng, rep->replay_count)];
            sim_ev_send(s, client, r, 1, old->data, old->size);
            s->counts.replayed++;
            sim_ev_trace(s, "byz r%u replays an old message to %s", r, s->clients[client].name);
        }
        sim_ev_byz_store(rep, sim_rng_next(&s->rng), data, size);
    }
    struct sim_ev_byz_msg *x = malloc(sizeof(*x));
    TRONE_ASSERT(x != NULL);
    bool parsed = sim_ev_byz_parse(data, size, x);
    if (parsed && (b & SIM_EV_BYZ_FORGE) != 0 && sim_rng_chance(&s->rng, rate)) {
        sim_ev_byz_forge(s, r, client, x);
        parsed = sim_ev_byz_parse(data, size, x);
    }
    if (parsed && (b & SIM_EV_BYZ_FORGE_SELF) != 0 && sim_rng_chance(&s->rng, rate)) {
        sim_ev_byz_forge_self(s, r, client, x);
        parsed = sim_ev_byz_parse(data, size, x);
    }
    if ((b & SIM_EV_BYZ_GARBAGE) != 0 && sim_rng_chance(&s->rng, rate / 4)) {
        sim_ev_byz_garbage(s, r, client, data, size);
    }
    if ((b & SIM_EV_BYZ_MUTE) != 0) {
        s->counts.muted++;
    } else if (parsed && (b & SIM_EV_BYZ_ALTER) != 0 && sim_rng_chance(&s->rng, rate)) {
        sim_ev_byz_alter(s, r, client, x);
    } else if ((b & SIM_EV_BYZ_REORDER) != 0 && sim_rng_chance(&s->rng, rate)) {
        sim_ev_byz_hold(s, r, client, data, size);
    } else {
        sim_ev_send(s, client, r, 1, data, size);
    }
    free(x);
}

void sim_ev_byz_send(struct sim_ev *s, uint32_t r, uint32_t client, const uint8_t *data,
                     size_t size)
{
    unsigned b = s->replicas[r].byz;
    uint8_t type = size > 0 ? data[0] : 0;
    if (type == CHAN_MSG_DELIVER) {
        sim_ev_byz_deliver(s, r, client, data, size);
        return;
    }
    if (type == CHAN_MSG_GAP && (b & SIM_EV_BYZ_MUTE) != 0) {
        s->counts.muted++;
        return;
    }
    struct buf_reader rd;
    struct chan_msg m;
    if (type == CHAN_MSG_ACK && (b & SIM_EV_BYZ_ALTER) != 0 &&
        sim_rng_chance(&s->rng, s->byz_permille / 4) &&
        chan_msg_read_header(&rd, data, size, &m) == 0 && m.status == 0) {
        m.seq += sim_rng_range(&s->rng, 1, 3); /* acks what it never got (maybe never sent) */
        buf_reset(&s->scratch);
        chan_msg_put_header(&s->scratch, &m);
        SIM_MUST(s->scratch.error == 0);
        s->counts.altered++;
        sim_ev_send(s, client, r, 1, s->scratch.data, s->scratch.used);
        return;
    }
    if ((b & SIM_EV_BYZ_GARBAGE) != 0 && sim_rng_chance(&s->rng, s->byz_permille / 4)) {
        sim_ev_byz_garbage(s, r, client, data, size);
        return;
    }
    sim_ev_send(s, client, r, 1, data, size);
}

void sim_ev_byz_close(struct sim_ev_replica *rep)
{
    for (uint32_t i = 0; i < rep->replay_count; i++) {
        free(rep->replay[i].data);
        rep->replay[i].data = NULL;
    }
    rep->replay_count = 0;
    for (uint32_t i = 0; i < rep->held_count; i++) {
        free(rep->held[i].data);
        rep->held[i].data = NULL;
    }
    rep->held_count = 0;
}

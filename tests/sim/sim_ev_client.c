/* sim_ev_client.c: simulated publishers (cln_pub) and subscribers (cln_sub), driven as
 * src/rt/rt_events.c drives them: a connection that opens gets cln_pub_replica_up and an
 * ATTACH per subscribed channel; one that closes gets cln_pub_replica_down; ACKs go to
 * cln_pub_receive, DELIVER/GAP to cln_sub_receive, ATTACHED refusals are retried after a
 * second, a message a core rejects drops the connection; PUBLISH messages are pumped after
 * every input; one timer per client at the cores' earliest deadline. Publishers record what
 * they publish (the ground truth of sim_ev_check.c). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "chan/chan_msg.h"
#include "core/assert.h"
#include "sim_ev.h"

#define SIM_EV_ATTACH_RETRY_MS 1000u

static uint64_t sim_ev_us_to_ms(uint64_t us)
{
    return us == UINT64_MAX ? SIM_NEVER : (us + 999u) / 1000u;
}

/* ---- Start and stop ---- */

static void sim_ev_pub_start(struct sim_ev *s, struct sim_ev_client *cl)
{
    struct cln_pub_config pc;
    memset(&pc, 0, sizeof(pc));
    pc.n = SIM_EV_N;
    pc.f = SIM_EV_F;
    memcpy(pc.public_key, cl->public_key, TRONE_KEY_LEN);
    memcpy(pc.secret_key, cl->secret_key, TRONE_SECRET_KEY_LEN);
    pc.epoch = cl->epoch;
    pc.channels_max = SIM_EV_CHANNELS;
    pc.unacked_events_max = (uint32_t)sim_rng_range(&s->rng, 16, 256);
    pc.unacked_bytes_max = 64u * 1024u;
    pc.message_bytes_max = (uint32_t)sim_rng_range(&s->rng, 256, 8192);
    pc.retransmit_us = 1000u * sim_rng_range(&s->rng, 100, 1000);
    SIM_MUST(cln_pub_init(&cl->pub, &pc) == 0);
    sodium_memzero(pc.secret_key, sizeof(pc.secret_key));
    for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
        cl->pub_idx[ch] = -1;
        if (cl->channel[ch]) {
            cl->pub_idx[ch] =
                cln_pub_channel_open(&cl->pub, s->channels[ch].tag, &s->channels[ch].cls);
            SIM_MUST(cl->pub_idx[ch] >= 0);
        }
    }
}

static void sim_ev_sub_start(struct sim_ev *s, struct sim_ev_client *cl)
{
    struct cln_sub_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.n = SIM_EV_N;
    sc.f = SIM_EV_F;
    sc.channels_max = SIM_EV_CHANNELS;
    sc.window = s->window;
    sc.gap_wait_us = s->gap_wait_ms * 1000u;
    SIM_MUST(cln_sub_init(&cl->sub, &sc) == 0);
    cl->sub_deadline_us = UINT64_MAX;
    cl->attach_retry_ms = SIM_NEVER;
    for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
        if (!cl->channel[ch]) {
            continue;
        }
        struct brk_class cls = s->channels[ch].cls;
        if (s->novote && cls.fault == BRK_FAULT_BFT) {
            cls.fault = BRK_FAULT_CFT; /* --no-vote: first copy decides (must fail the checks) */
        }
        uint8_t keys[SIM_EV_PUBS_MAX][TRONE_KEY_LEN];
        uint32_t count = 0;
        for (uint32_t p = 0; s->lists && p < s->pub_count; p++) {
            if (s->channels[ch].publisher[p]) {
                memcpy(keys[count++], s->clients[p].public_key, TRONE_KEY_LEN);
            }
        }
        SIM_MUST(cln_sub_channel_add(&cl->sub, s->channels[ch].tag, &cls,
                                     (const uint8_t(*)[TRONE_KEY_LEN])keys, count) >= 0);
    }
}

void sim_ev_client_start(struct sim_ev *s, uint32_t c)
{
    struct sim_ev_client *cl = &s->clients[c];
    cl->tick_ms = SIM_NEVER;
    if (cl->publisher) {
        sim_ev_pub_start(s, cl);
    } else {
        sim_ev_sub_start(s, cl);
    }
}

void sim_ev_client_close(struct sim_ev *s, uint32_t c)
{
    struct sim_ev_client *cl = &s->clients[c];
    (void)s;
    if (cl->publisher) {
        cln_pub_close(&cl->pub);
    } else {
        cln_sub_close(&cl->sub);
    }
}

/* ---- Publisher ---- */

static void sim_ev_pub_pump(struct sim_ev *s, uint32_t c)
{
    struct sim_ev_client *cl = &s->clients[c];
    for (uint32_t r = 0; r < SIM_EV_N; r++) {
        for (uint32_t i = 0; i < 1024 && s->conns[c][r].up; i++) {
            const uint8_t *data = NULL;
            size_t size = 0;
            int rc = cln_pub_next_message(&cl->pub, r, s->now_ms * 1000u, &data, &size);
            SIM_MUST(rc >= 0);
            if (rc == 0) {
                break;
            }
            sim_ev_send(s, c, r, 0, data, size);
        }
    }
}

/* Publishes one event on one of the publisher's channels (authorized ones, and sometimes the
 * one it is not authorized on: replicas refuse it and nobody may deliver it). */
static void sim_ev_pub_publish(struct sim_ev *s, uint32_t c)
{
    struct sim_ev_client *cl = &s->clients[c];
    uint32_t ch = (uint32_t)sim_rng_below(&s->rng, SIM_EV_CHANNELS);
    for (uint32_t k = 0; k < SIM_EV_CHANNELS && cl->pub_idx[ch] < 0; k++) {
        ch = (ch + 1) % SIM_EV_CHANNELS;
    }
    struct sim_ev_truth *t = &s->truth[cl->role_idx][ch][cl->epoch_count - 1];
    if (t->count >= SIM_EV_EVENTS_MAX) {
        cl->left = 0;
        return;
    }
    uint8_t payload[SIM_EV_PAYLOAD_MAX];
    uint32_t size = (uint32_t)sim_rng_range(&s->rng, 0, SIM_EV_PAYLOAD_MAX);
    for (uint32_t i = 0; i < size; i++) {
        payload[i] = (uint8_t)sim_rng_next(&s->rng);
    }
    uint64_t time_us = s->now_ms * 1000u + cl->role_idx;
    int64_t seq = cln_pub_publish(&cl->pub, (uint32_t)cl->pub_idx[ch], payload, size, time_us,
                                  s->now_ms * 1000u);
    if (seq == TRONE_EBUSY) {
        cl->publish_at_ms = s->now_ms + 10;
        return;
    }
    if (seq < 0 && !s->channels[ch].publisher[cl->role_idx]) {
        cl->left--; /* the refusal agreed by f+1 replicas is sticky: expected */
        cl->publish_at_ms = cl->left > 0 ? s->now_ms + 1 : SIM_NEVER;
        return;
    }
    if (seq <= 0 || (uint64_t)seq != t->count + 1) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT,
                    "publisher %s: publish on %s returned %lld, expected %llu", cl->name,
                    s->channels[ch].tag, (long long)seq, (unsigned long long)(t->count + 1));
        return;
    }
    sim_ev_trace(s, "publish %s %s seq=%lld size=%u", cl->name, s->channels[ch].tag, (long long)seq,
                 size);
    t->count++;
    t->time_us[seq] = time_us;
    t->size[seq] = size;
    crypto_generichash(t->hash[seq], TRONE_HASH_LEN, payload, size, NULL, 0);
    if (s->channels[ch].publisher[cl->role_idx]) {
        s->counts.published++;
    }
    cl->left--;
    cl->publish_at_ms =
        cl->left > 0 ? s->now_ms + sim_rng_range(&s->rng, 1, cl->gap_ms_max) : SIM_NEVER;
}

/* ---- Subscriber ---- */

static void sim_ev_sub_send_tag(struct sim_ev *s, uint32_t c, uint32_t r, enum chan_msg_type type,
                                const char *tag)
{
    struct chan_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    memcpy(m.tag, tag, strlen(tag) + 1);
    buf_reset(&s->scratch);
    chan_msg_put_header(&s->scratch, &m);
    SIM_MUST(s->scratch.error == 0);
    sim_ev_send(s, c, r, 0, s->scratch.data, s->scratch.used);
}

static void sim_ev_sub_attach(struct sim_ev *s, uint32_t c, uint32_t r)
{
    for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
        if (s->clients[c].channel[ch]) {
            sim_ev_sub_send_tag(s, c, r, CHAN_MSG_ATTACH, s->channels[ch].tag);
        }
    }
}

static void sim_ev_sub_attached(struct sim_ev *s, uint32_t c, uint32_t r, const uint8_t *data,
                                size_t size, int *rc)
{
    struct buf_reader rd;
    struct chan_msg m;
    *rc = chan_msg_read_header(&rd, data, size, &m);
    if (*rc != 0 || m.status == 0) {
        return;
    }
    if (sim_ev_correct(s, r)) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT, "correct replica %u refused ATTACH %s of %s: %s", r,
                    m.tag, s->clients[c].name, trone_err_name(m.status));
    }
    s->conns[c][r].refused = true;
    s->clients[c].attach_retry_ms = s->now_ms + SIM_EV_ATTACH_RETRY_MS;
}

static void sim_ev_sub_output(struct sim_ev *s, uint32_t c, const struct cln_sub_output *out)
{
    sim_ev_check_items(s, c, out);
    s->clients[c].sub_deadline_us = out->deadline_us;
}

/* One trace line per DELIVER or GAP reaching a subscriber: who sent what. */
static void sim_ev_trace_message(struct sim_ev *s, uint32_t c, uint32_t replica,
                                 const uint8_t *data, size_t size)
{
    struct buf_reader rd;
    struct chan_msg m;
    if (chan_msg_check(data, size) != 0 || chan_msg_read_header(&rd, data, size, &m) != 0) {
        sim_ev_trace(s, "recv sub=%s from=r%u malformed size=%zu", s->clients[c].name, replica,
                     size);
        return;
    }
    int p = sim_ev_publisher_by_key(s, m.publisher);
    char who[16];
    snprintf(who, sizeof(who), "%s", p >= 0 ? s->clients[p].name : "?");
    if (m.type == CHAN_MSG_GAP) {
        sim_ev_trace(s, "recv sub=%s from=r%u%s GAP %s/%s dropped=%llu", s->clients[c].name,
                     replica, sim_ev_correct(s, replica) ? "" : "(byz)", m.tag, who,
                     (unsigned long long)m.dropped);
        return;
    }
    struct chan_event first = {0};
    struct chan_event e = {0};
    for (uint32_t i = 0; i < m.event_count; i++) {
        chan_msg_read_event(&rd, &e);
        first = i == 0 ? e : first;
    }
    sim_ev_trace(s, "recv sub=%s from=r%u%s DELIVER %s/%s epoch=%llu seq=%llu..%llu",
                 s->clients[c].name, replica, sim_ev_correct(s, replica) ? "" : "(byz)", m.tag, who,
                 (unsigned long long)first.epoch, (unsigned long long)first.seq,
                 (unsigned long long)e.seq);
}

/* ---- Inputs ---- */

static void sim_ev_client_schedule(struct sim_ev *s, uint32_t c)
{
    struct sim_ev_client *cl = &s->clients[c];
    uint64_t at = SIM_NEVER;
    if (cl->publisher) {
        at = sim_ev_us_to_ms(cln_pub_deadline(&cl->pub));
        at = cl->publish_at_ms < at ? cl->publish_at_ms : at;
    } else {
        at = sim_ev_us_to_ms(cl->sub_deadline_us);
        at = cl->attach_retry_ms < at ? cl->attach_retry_ms : at;
    }
    cl->tick_ms = at == SIM_NEVER ? SIM_NEVER : at > s->now_ms ? at : s->now_ms + 1;
}

void sim_ev_client_up(struct sim_ev *s, uint32_t c, uint32_t replica)
{
    struct sim_ev_client *cl = &s->clients[c];
    if (cl->publisher) {
        cln_pub_replica_up(&cl->pub, replica, s->now_ms * 1000u);
        sim_ev_pub_pump(s, c);
    } else {
        sim_ev_sub_attach(s, c, replica);
    }
    sim_ev_client_schedule(s, c);
}

void sim_ev_client_down(struct sim_ev *s, uint32_t c, uint32_t replica)
{
    struct sim_ev_client *cl = &s->clients[c];
    if (cl->publisher) {
        cln_pub_replica_down(&cl->pub, replica);
    }
    sim_ev_client_schedule(s, c);
}

void sim_ev_client_receive(struct sim_ev *s, uint32_t c, uint32_t replica, const uint8_t *data,
                           size_t size)
{
    struct sim_ev_client *cl = &s->clients[c];
    uint64_t now_us = s->now_ms * 1000u;
    uint8_t type = size > 0 ? data[0] : 0;
    int rc = TRONE_EBADMSG;
    if (cl->publisher && type == CHAN_MSG_ACK) {
        rc = cln_pub_receive(&cl->pub, replica, data, size, now_us);
    } else if (!cl->publisher && type == CHAN_MSG_ATTACHED) {
        sim_ev_sub_attached(s, c, replica, data, size, &rc);
    } else if (!cl->publisher && (type == CHAN_MSG_DELIVER || type == CHAN_MSG_GAP)) {
        sim_ev_trace_message(s, c, replica, data, size);
        if (sim_ev_correct(s, replica)) {
            sim_ev_check_copy(s, c, replica, data, size);
        }
        struct cln_sub_output out;
        rc = cln_sub_receive(&cl->sub, replica, data, size, now_us, &out);
        if (rc == 0) {
            sim_ev_sub_output(s, c, &out);
        }
    }
    if (rc != 0) {
        if (sim_ev_correct(s, replica)) {
            sim_ev_fail(s, SIM_EXIT_INVARIANT, "%s rejected a message of correct replica %u: %s",
                        cl->name, replica, trone_err_name(rc));
            return;
        }
        s->counts.garbage++;
        sim_ev_conn_break(s, c, replica, "bad message from replica");
    }
    if (cl->publisher) {
        sim_ev_pub_pump(s, c);
    }
    sim_ev_client_schedule(s, c);
}

void sim_ev_client_tick(struct sim_ev *s, uint32_t c)
{
    struct sim_ev_client *cl = &s->clients[c];
    uint64_t now_us = s->now_ms * 1000u;
    if (cl->publisher) {
        if (cln_pub_deadline(&cl->pub) <= now_us) {
            cln_pub_tick(&cl->pub, now_us);
        }
        if (!s->healed && cl->publish_at_ms <= s->now_ms) {
            sim_ev_pub_publish(s, c);
        }
        sim_ev_pub_pump(s, c);
    } else {
        if (cl->sub_deadline_us <= now_us) {
            struct cln_sub_output out;
            SIM_MUST(cln_sub_tick(&cl->sub, now_us, &out) == 0);
            sim_ev_sub_output(s, c, &out);
        }
        if (cl->attach_retry_ms <= s->now_ms) {
            cl->attach_retry_ms = SIM_NEVER;
            for (uint32_t r = 0; r < SIM_EV_N; r++) {
                if (s->conns[c][r].up && s->conns[c][r].refused) {
                    s->conns[c][r].refused = false;
                    sim_ev_sub_attach(s, c, r);
                }
            }
        }
    }
    sim_ev_client_schedule(s, c);
}

void sim_ev_pub_restart(struct sim_ev *s, uint32_t c)
{
    struct sim_ev_client *cl = &s->clients[c];
    TRONE_ASSERT(cl->publisher);
    TRONE_ASSERT(cl->epoch_count < SIM_EV_EPOCHS_MAX);
    for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
        if (cl->pub_idx[ch] >= 0) {
            struct cln_pub_counts counts;
            cln_pub_channel_counts(&cl->pub, (uint32_t)cl->pub_idx[ch], &counts);
            s->truth[cl->role_idx][ch][cl->epoch_count - 1].promised = counts.acknowledged;
        }
    }
    sim_ev_trace(s, "fault=publisher_restart %s epoch=%llu", cl->name,
                 (unsigned long long)cl->epoch);
    for (uint32_t r = 0; r < SIM_EV_N; r++) {
        sim_ev_conn_break(s, c, r, "publisher restarted");
    }
    cln_pub_close(&cl->pub);
    cl->epoch = cl->epoch + s->now_ms * 1000u + 1u; /* larger, as a later start time is */
    cl->epochs[cl->epoch_count++] = cl->epoch;
    s->counts.restarts++;
    sim_ev_pub_start(s, cl);
}

/* Events still to publish or not yet acked by the quorum, on authorized channels. */
uint64_t sim_ev_pending(struct sim_ev *s)
{
    uint64_t pending = 0;
    for (uint32_t p = 0; p < s->pub_count; p++) {
        struct sim_ev_client *cl = &s->clients[p];
        pending += cl->left;
        for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
            if (cl->pub_idx[ch] >= 0 && s->channels[ch].publisher[p]) {
                struct cln_pub_counts counts;
                cln_pub_channel_counts(&cl->pub, (uint32_t)cl->pub_idx[ch], &counts);
                pending += counts.pending;
            }
        }
    }
    return pending;
}

/* sim_ev_check.c: the event path's promises (DESIGN.md 2, issue 3 point 3), checked against
 * the publishers' ground truth at every delivery and at the end of a run.
 *
 * Integrity (channels that are BFT or PKS, and every channel in runs without a Byzantine
 * replica): a correct subscriber delivers only events that an authorized publisher published
 * (its key, its epoch, a published seq), unmodified (payload, size, publisher time), at most
 * once, and each publisher's events in seq order.
 *
 * Skips. A subscriber may skip events: with a GAP item, or silently when a stream starts past
 * seq 1. A skip is legitimate only if the event could not be decided: fewer than k of the
 * replicas that are never faulty in the run (not the crash-prone or flaky one either: a
 * replica restarted after a crash forwards what publishers resend it, arbitrarily late)
 * ever got a copy of it to the subscriber (k = 1 on CFT channels and on PKS channels
 * whose publishers the subscriber knows, f+1 otherwise). A correct replica loses copies only
 * to flow control (its bounded queue for a paused connection dropped them: the GAP messages),
 * so without flow control no skip is legitimate. (In runs with network faults, where
 * connections to correct replicas break too, copies are also lost in flight and with the
 * attachment: such runs judge missing events by the same k-copies rule as flow control.)
 * The count is checked when the skip happens and again at the end (copies that arrive after
 * a skip show it was premature). Under flow
 * control, a GAP_WINDOW skip (the subscriber's own window overflowed) is legitimate too, and
 * a copy that reached the subscriber while its seq was a window or more ahead of the stream
 * does not count: cln_sub drops its bytes (a documented bound; it keeps its vote since this
 * simulator showed events lost when the vote went too, see --scenario events-window-votes).
 *
 * Validity (BFT channels, and every channel in runs without a Byzantine replica): at the end,
 * every event a publisher published on a channel it is authorized on was delivered or
 * legitimately skipped by every subscriber of that channel. Under flow control an event may
 * also be missing without a report if it was undecidable (the k-copies rule above) and no
 * later event of its stream revealed the hole.
 *
 * Correct replicas are checked too: every DELIVER they send carries genuine events, in seq
 * order per connection. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "chan/chan_msg.h"
#include "core/assert.h"
#include "sim_ev.h"

bool sim_ev_integrity_checked(const struct sim_ev *s, uint32_t ch)
{
    const struct brk_class *cls = &s->channels[ch].cls;
    if (!s->byz_run || cls->fault == BRK_FAULT_BFT) {
        return true;
    }
    /* CFT with PKS: a single verified copy decides, which proves an authorized publisher only
     * if the subscriber knows the publishers. Without the list (as rt_events runs today) a
     * Byzantine replica's self-signed events get through: a known limitation, shown by the
     * expected-failure scenario events-pks-nolist (which forces lists off and the check on). */
    return cls->method == BRK_METHOD_PKS && (s->lists || s->force.lists == 0);
}

bool sim_ev_validity_checked(const struct sim_ev *s, uint32_t ch)
{
    return !s->byz_run || s->channels[ch].cls.fault == BRK_FAULT_BFT;
}

/* Copies from correct replicas that decide an event for this subscriber's core. */
static uint32_t sim_ev_copies_needed(const struct sim_ev *s, uint32_t ch)
{
    const struct brk_class *cls = &s->channels[ch].cls;
    bool bft = cls->fault == BRK_FAULT_BFT && !s->novote;
    if (!bft || (cls->method == BRK_METHOD_PKS && s->lists)) {
        return 1;
    }
    return SIM_EV_F + 1;
}

static uint32_t sim_ev_popcount(uint8_t v)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < 8; i++) {
        n += (v >> i) & 1u;
    }
    return n;
}

/* Does wire event e match what publisher p published as e->seq in e->epoch on ch? Sets *ei
 * to the epoch's index. */
static bool sim_ev_genuine(const struct sim_ev *s, uint32_t p, uint32_t ch,
                           const struct chan_event *e, int *ei, const char **what)
{
    *ei = sim_ev_epoch_idx(s, p, e->epoch);
    *what = NULL;
    if (*ei < 0) {
        *what = "epoch never used by the publisher";
        return false;
    }
    const struct sim_ev_truth *t = &s->truth[p][ch][*ei];
    uint8_t hash[TRONE_HASH_LEN];
    if (e->seq == 0 || e->seq > t->count) {
        *what = "seq never published";
    } else if (e->time_us != t->time_us[e->seq]) {
        *what = "publisher time altered";
    } else if (e->payload_size != t->size[e->seq]) {
        *what = "payload size altered";
    } else {
        crypto_generichash(hash, sizeof(hash), e->payload, e->payload_size, NULL, 0);
        if (memcmp(hash, t->hash[e->seq], TRONE_HASH_LEN) != 0) {
            *what = "payload altered";
        }
    }
    return *what == NULL;
}

/* A DELIVER or GAP from a correct replica to subscriber c: genuine events in order, and the
 * copies it brings (for judging skips). */
void sim_ev_check_copy(struct sim_ev *s, uint32_t c, uint32_t replica, const uint8_t *data,
                       size_t size)
{
    struct buf_reader rd;
    struct chan_msg m;
    if (chan_msg_check(data, size) != 0 || chan_msg_read_header(&rd, data, size, &m) != 0) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT, "correct replica %u sent a malformed message", replica);
        return;
    }
    if (m.type == CHAN_MSG_GAP && !s->flow) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT,
                    "correct replica %u told %s it dropped %llu events of %s without flow control",
                    replica, s->clients[c].name, (unsigned long long)m.dropped, m.tag);
        return;
    }
    if (m.type != CHAN_MSG_DELIVER) {
        return;
    }
    int ch = sim_ev_channel_by_tag(s, m.tag);
    int p = sim_ev_publisher_by_key(s, m.publisher);
    if (ch < 0 || p < 0 || !s->channels[ch].publisher[p] || !s->clients[c].channel[ch]) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT,
                    "correct replica %u forwarded to %s an event of tag %s by %s", replica,
                    s->clients[c].name, m.tag, p < 0 ? "an unknown key" : s->clients[p].name);
        return;
    }
    struct sim_ev_conn *k = &s->conns[c][replica];
    for (uint32_t i = 0; i < m.event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(&rd, &e);
        const char *what = NULL;
        int ei = -1;
        if (!sim_ev_genuine(s, (uint32_t)p, (uint32_t)ch, &e, &ei, &what)) {
            sim_ev_fail(s, SIM_EXIT_INVARIANT, "correct replica %u forwarded %s/%s seq %llu: %s",
                        replica, m.tag, s->clients[p].name, (unsigned long long)e.seq, what);
            return;
        }
        if (e.seq <= k->last_seq[ch][p][ei]) {
            sim_ev_fail(s, SIM_EXIT_INVARIANT,
                        "correct replica %u sent %s/%s seq %llu after seq %llu on one connection",
                        replica, m.tag, s->clients[p].name, (unsigned long long)e.seq,
                        (unsigned long long)k->last_seq[ch][p][ei]);
            return;
        }
        k->last_seq[ch][p][ei] = e.seq;
        struct sim_ev_seen *seen = &s->clients[c].seen[ch][p][ei];
        const struct sim_ev_replica *rep = &s->replicas[replica];
        if (rep->crash_prone || rep->flaky) {
            continue; /* the faulty replica: its copies may come arbitrarily late */
        }
        if (e.seq >= seen->next + s->window && !s->force.strict_window) {
            seen->beyond[e.seq] |= (uint8_t)(1u << replica); /* its window drops it */
        } else {
            seen->copies[e.seq] |= (uint8_t)(1u << replica);
        }
    }
}

/* Marks seq skipped for subscriber c, failing if it could have been decided. */
static void sim_ev_skip(struct sim_ev *s, uint32_t c, uint32_t ch, uint32_t p, uint32_t ei,
                        uint64_t seq, const char *how)
{
    struct sim_ev_seen *seen = &s->clients[c].seen[ch][p][ei];
    uint32_t copies = sim_ev_popcount(seen->copies[seq]);
    if (sim_ev_validity_checked(s, ch) && copies >= sim_ev_copies_needed(s, ch)) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT,
                    "%s skipped %s/%s seq %llu (%s) though %u correct replicas delivered it",
                    s->clients[c].name, s->channels[ch].tag, s->clients[p].name,
                    (unsigned long long)seq, how, copies);
    }
    seen->state[seq] = 2;
    s->counts.skipped++;
}

static void sim_ev_check_event(struct sim_ev *s, uint32_t c, uint32_t ch,
                               const struct cln_sub_item *it)
{
    int p = sim_ev_publisher_by_key(s, it->publisher);
    const char *name = s->clients[c].name;
    const char *tag = s->channels[ch].tag;
    if (p < 0 || !s->channels[ch].publisher[p]) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT, "integrity: %s delivered on %s an event of %s", name,
                    tag,
                    p < 0 ? "a key that is no publisher (forged)" : "an unauthorized publisher");
        return;
    }
    struct chan_event e = {.epoch = it->epoch,
                           .seq = it->seq,
                           .time_us = it->time_us,
                           .payload = it->payload,
                           .payload_size = it->payload_size};
    const char *what = NULL;
    int ei = -1;
    if (!sim_ev_genuine(s, (uint32_t)p, ch, &e, &ei, &what)) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT, "integrity: %s delivered %s/%s epoch %llu seq %llu: %s",
                    name, tag, s->clients[p].name, (unsigned long long)it->epoch,
                    (unsigned long long)it->seq, what);
        return;
    }
    struct sim_ev_seen *seen = &s->clients[c].seen[ch][p][ei];
    if (it->seq < seen->next) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT, "integrity: %s delivered %s/%s seq %llu %s", name, tag,
                    s->clients[p].name, (unsigned long long)it->seq,
                    seen->state[it->seq] == 1 ? "twice" : "after skipping it (FIFO)");
        return;
    }
    if (it->seq > seen->next && seen->next > 1) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT,
                    "FIFO: %s delivered %s/%s seq %llu while seq %llu was neither delivered nor "
                    "reported missing",
                    name, tag, s->clients[p].name, (unsigned long long)it->seq,
                    (unsigned long long)seen->next);
        return;
    }
    for (uint64_t x = seen->next; x < it->seq; x++) {
        sim_ev_skip(s, c, ch, (uint32_t)p, (uint32_t)ei, x, "stream started later");
    }
    seen->state[it->seq] = 1;
    seen->next = it->seq + 1;
}

static void sim_ev_check_gap(struct sim_ev *s, uint32_t c, uint32_t ch,
                             const struct cln_sub_item *it)
{
    int p = sim_ev_publisher_by_key(s, it->publisher);
    int ei = p >= 0 ? sim_ev_epoch_idx(s, (uint32_t)p, it->epoch) : -1;
    if (ei < 0) {
        return; /* a gap in a forged stream: nothing real was skipped */
    }
    struct sim_ev_seen *seen = &s->clients[c].seen[ch][p][ei];
    const struct sim_ev_truth *t = &s->truth[p][ch][ei];
    if (!sim_ev_validity_checked(s, ch)) {
        /* No validity promise (CFT under a Byzantine replica): one replica may make the
         * subscriber skip, but what follows must still be in order. */
        if (it->seq >= seen->next) {
            seen->next = it->seq + it->count;
        }
        return;
    }
    if (it->seq < seen->next || it->seq + it->count - 1 > t->count) {
        sim_ev_fail(s, SIM_EXIT_INVARIANT,
                    "%s reported a gap %s/%s seq %llu count %llu outside [%llu, %llu]",
                    s->clients[c].name, s->channels[ch].tag, s->clients[p].name,
                    (unsigned long long)it->seq, (unsigned long long)it->count,
                    (unsigned long long)seen->next, (unsigned long long)t->count);
        return;
    }
    bool window = it->reason == CLN_SUB_GAP_WINDOW && s->flow;
    for (uint64_t x = seen->next; x < it->seq + it->count; x++) {
        if (x < it->seq && seen->next == 1) {
            sim_ev_skip(s, c, ch, (uint32_t)p, (uint32_t)ei, x, "stream started later");
            continue;
        }
        if (x < it->seq) {
            sim_ev_fail(s, SIM_EXIT_INVARIANT, "FIFO: %s skipped %s seq %llu without a report",
                        s->clients[c].name, s->channels[ch].tag, (unsigned long long)x);
            return;
        }
        if (window) {
            seen->state[x] = 3; /* the subscriber's own bound: legitimate */
            s->counts.skipped++;
        } else {
            sim_ev_skip(s, c, ch, (uint32_t)p, (uint32_t)ei, x, "gap");
        }
    }
    seen->next = it->seq + it->count;
}

void sim_ev_check_items(struct sim_ev *s, uint32_t c, const struct cln_sub_output *out)
{
    struct sim_ev_client *cl = &s->clients[c];
    for (uint32_t i = 0; i < out->item_count && s->failure == 0; i++) {
        const struct cln_sub_item *it = &out->items[i];
        int ch = sim_ev_channel_by_tag(s, it->tag);
        TRONE_ASSERT(ch >= 0);
        if (it->kind == CLN_SUB_NOTICE) {
            cl->notices++;
            s->counts.notices++;
            continue;
        }
        if (it->kind == CLN_SUB_EVENT) {
            cl->delivered++;
            s->counts.delivered++;
            int p = sim_ev_publisher_by_key(s, it->publisher);
            sim_ev_trace(s, "deliver sub=%s %s/%s epoch=%llu seq=%llu", cl->name, it->tag,
                         p >= 0 ? s->clients[p].name : "?", (unsigned long long)it->epoch,
                         (unsigned long long)it->seq);
            if (sim_ev_integrity_checked(s, (uint32_t)ch)) {
                sim_ev_check_event(s, c, (uint32_t)ch, it);
            }
            continue;
        }
        cl->gaps++;
        int p = sim_ev_publisher_by_key(s, it->publisher);
        sim_ev_trace(s, "gap sub=%s %s/%s seq=%llu count=%llu reason=%d", cl->name, it->tag,
                     p >= 0 ? s->clients[p].name : "?", (unsigned long long)it->seq,
                     (unsigned long long)it->count, it->reason);
        if (sim_ev_integrity_checked(s, (uint32_t)ch)) {
            sim_ev_check_gap(s, c, (uint32_t)ch, it);
        }
    }
}

/* One subscriber's (channel, publisher, epoch): every promised event delivered or skipped
 * (all of the current epoch; what the quorum acked of an epoch the publisher left); with
 * report, also that no skip was premature. */
static bool sim_ev_complete_one(struct sim_ev *s, uint32_t c, uint32_t ch, uint32_t p, uint32_t ei,
                                bool report)
{
    const struct sim_ev_seen *seen = &s->clients[c].seen[ch][p][ei];
    const struct sim_ev_truth *t = &s->truth[p][ch][ei];
    uint64_t promised = ei + 1 < s->clients[p].epoch_count ? t->promised : t->count;
    for (uint64_t x = 1; x <= t->count; x++) {
        uint32_t copies = sim_ev_popcount(seen->copies[x]);
        bool undecidable = (s->flow || s->netbreaks) && copies < sim_ev_copies_needed(s, ch);
        if (seen->state[x] == 0 && (undecidable || x > promised)) {
            continue; /* flow control dropped it at enough correct replicas, with no later
                         event of the stream to reveal the hole (legitimately lost); or it
                         was never acked and its publisher crashed */
        }
        if (seen->state[x] == 0) {
            if (report) {
                sim_ev_fail(s, SIM_EXIT_INVARIANT,
                            "validity: %s never delivered %s/%s epoch %u seq %llu (of %llu "
                            "published, %llu promised; correct copies received 0x%x)",
                            s->clients[c].name, s->channels[ch].tag, s->clients[p].name, ei,
                            (unsigned long long)x, (unsigned long long)t->count,
                            (unsigned long long)promised, seen->copies[x]);
            }
            return false;
        }
        if (report && seen->state[x] == 2 && copies >= sim_ev_copies_needed(s, ch)) {
            sim_ev_fail(s, SIM_EXIT_INVARIANT,
                        "validity: %s skipped %s/%s epoch %u seq %llu, yet %u correct replicas "
                        "delivered it (premature skip)",
                        s->clients[c].name, s->channels[ch].tag, s->clients[p].name, ei,
                        (unsigned long long)x, copies);
            return false;
        }
    }
    return true;
}

bool sim_ev_check_complete(struct sim_ev *s, bool report)
{
    for (uint32_t c = s->pub_count; c < s->client_count; c++) {
        for (uint32_t ch = 0; ch < SIM_EV_CHANNELS; ch++) {
            if (!s->clients[c].channel[ch] || !sim_ev_validity_checked(s, ch)) {
                continue;
            }
            for (uint32_t p = 0; p < s->pub_count; p++) {
                for (uint32_t e = 0; s->channels[ch].publisher[p] && e < s->clients[p].epoch_count;
                     e++) {
                    if (!sim_ev_complete_one(s, c, ch, p, e, report)) {
                        return false;
                    }
                }
            }
        }
    }
    return true;
}

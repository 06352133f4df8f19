/* cln_sub_stream.c: one subscriber stream (channel, publisher, epoch): holding copies in a
 * bounded window, deciding them (first copy, f+1 matching votes or a verified PKS signature),
 * delivering in seq order, waiting for gaps and skipping them; and the replay floors.
 * No I/O, no clock, no randomness (cln_sub.h states the rules). */
#include <stdlib.h>
#include <string.h>

#include "chan/chan_auth.h"
#include "chan/chan_durable.h"
#include "client/cln_sub_internal.h"
#include "core/assert.h"

/* Methods whose every event carries the publisher's end-to-end signature: PKS, and PKE
 * (PKS over the ciphertext, docs/QOP.md). */
static bool cln_sub_signed(const struct brk_class *cls)
{
    return cls->method == BRK_METHOD_PKS || cls->method == BRK_METHOD_PKE;
}

/* ---- Floors ---- */

struct cln_sub_floor *cln_sub__floor_find(struct cln_sub *s, uint32_t channel_idx,
                                          const uint8_t publisher[TRONE_KEY_LEN])
{
    for (uint32_t i = 0; i < s->cfg.publishers_max; i++) {
        struct cln_sub_floor *fl = &s->floors[i];
        if (fl->used && fl->channel_idx == channel_idx &&
            memcmp(fl->publisher, publisher, TRONE_KEY_LEN) == 0) {
            fl->last_use = ++s->clock;
            return fl;
        }
    }
    return NULL;
}

/* The floor of st's publisher through the stream's cached index, or NULL. */
static struct cln_sub_floor *cln_sub_floor_of(struct cln_sub *s, struct cln_sub_stream *st)
{
    struct cln_sub_floor *fl = &s->floors[st->floor_idx];
    if (fl->used && fl->channel_idx == st->channel_idx &&
        memcmp(fl->publisher, st->publisher, TRONE_KEY_LEN) == 0) {
        fl->last_use = ++s->clock;
        return fl;
    }
    fl = cln_sub__floor_find(s, st->channel_idx, st->publisher);
    if (fl != NULL) {
        st->floor_idx = (uint32_t)(fl - s->floors);
    }
    return fl;
}

/* Finds or makes the floor of st's publisher, forgetting the least recently used one when
 * the table is full (its publisher's old epochs could then be replayed: a documented bound). */
static struct cln_sub_floor *cln_sub_floor_get(struct cln_sub *s, struct cln_sub_stream *st)
{
    struct cln_sub_floor *fl = cln_sub_floor_of(s, st);
    if (fl != NULL) {
        return fl;
    }
    struct cln_sub_floor *victim = &s->floors[0];
    for (uint32_t i = 0; i < s->cfg.publishers_max && victim->used; i++) {
        if (!s->floors[i].used || s->floors[i].last_use < victim->last_use) {
            victim = &s->floors[i];
        }
    }
    memset(victim, 0, sizeof(*victim));
    victim->used = true;
    victim->channel_idx = st->channel_idx;
    memcpy(victim->publisher, st->publisher, TRONE_KEY_LEN);
    victim->last_use = ++s->clock;
    st->floor_idx = (uint32_t)(victim - s->floors);
    return victim;
}

/* The index of epoch among the floor's remembered ones, or CLN_SUB_EPOCHS. */
static uint32_t cln_sub_floor_slot(const struct cln_sub_floor *fl, uint64_t epoch)
{
    uint32_t k = 0;
    while (k < CLN_SUB_EPOCHS && (epoch == 0 || fl->epochs[k] != epoch)) {
        k++;
    }
    return k;
}

uint64_t cln_sub__floor_next(const struct cln_sub_floor *fl, uint64_t epoch)
{
    uint32_t k = cln_sub_floor_slot(fl, epoch);
    return k < CLN_SUB_EPOCHS ? fl->next_seqs[k] : 0;
}

bool cln_sub__floor_older(const struct cln_sub_floor *fl, uint64_t epoch)
{
    if (fl->left != 0) {
        return true;
    }
    for (uint32_t k = 0; k < CLN_SUB_EPOCHS; k++) {
        if (fl->epochs[k] != 0 && fl->epochs[k] < epoch) {
            return true;
        }
    }
    return false;
}

/* Remembers next_seq for epoch (raising it only). A new epoch that does not fit makes the
 * oldest remembered one left; returns that epoch (0: none left). An epoch at or below left is
 * not remembered. */
static uint64_t cln_sub_floor_learn(struct cln_sub_floor *fl, uint64_t epoch, uint64_t next_seq)
{
    if (epoch <= fl->left) {
        return 0;
    }
    uint32_t known = cln_sub_floor_slot(fl, epoch);
    if (known < CLN_SUB_EPOCHS) {
        fl->next_seqs[known] = next_seq > fl->next_seqs[known] ? next_seq : fl->next_seqs[known];
        return 0;
    }
    uint32_t slot = CLN_SUB_EPOCHS;
    uint32_t oldest = 0;
    for (uint32_t k = 0; k < CLN_SUB_EPOCHS; k++) {
        if (fl->epochs[k] == 0 && slot == CLN_SUB_EPOCHS) {
            slot = k;
        }
        if (fl->epochs[k] < fl->epochs[oldest]) {
            oldest = k;
        }
    }
    uint64_t left = 0;
    if (slot == CLN_SUB_EPOCHS) {
        if (epoch < fl->epochs[oldest]) {
            fl->left = epoch; /* older than all it remembers: left at once */
            return epoch;
        }
        left = fl->epochs[oldest];
        fl->left = left;
        slot = oldest;
    }
    fl->epochs[slot] = epoch;
    fl->next_seqs[slot] = next_seq;
    return left;
}

/* Closes (after what they hold) the publisher's open streams of epochs it left. */
static void cln_sub_close_left(struct cln_sub *s, uint32_t channel_idx,
                               const uint8_t publisher[TRONE_KEY_LEN], uint64_t left,
                               uint64_t now_us)
{
    for (uint32_t i = 0; i < s->cfg.streams_max; i++) {
        struct cln_sub_stream *old = &s->streams[i];
        if (old->used && old->epoch <= left && old->channel_idx == channel_idx &&
            old->closing_since_us == UINT64_MAX &&
            memcmp(old->publisher, publisher, TRONE_KEY_LEN) == 0) {
            old->closing_since_us = now_us;
        }
    }
}

/* ---- Slots ---- */

static void cln_sub_slot_free(struct cln_sub *s, struct cln_sub_stream *st,
                              struct cln_sub_slot *slot)
{
    TRONE_ASSERT(slot->seq != 0);
    TRONE_ASSERT(st->held_count > 0);
    for (uint32_t i = 0; i < slot->copy_count; i++) {
        struct cln_sub_copy *c = &slot->copies[i];
        uint64_t size = (uint64_t)c->auth_size + c->payload_size;
        TRONE_ASSERT(s->held_bytes >= size);
        s->held_bytes -= size;
        free(c->bytes);
        memset(c, 0, sizeof(*c));
    }
    if (slot->decided >= 0) {
        TRONE_ASSERT(st->decided_held > 0);
        st->decided_held--;
    }
    st->held_count--;
    slot->seq = 0;
    slot->voted = 0;
    slot->decided = -1;
    slot->copy_count = 0;
}

static struct cln_sub_slot *cln_sub_slot_of(const struct cln_sub *s,
                                            const struct cln_sub_stream *st, uint64_t seq)
{
    return &st->slots[seq % s->cfg.window];
}

/* The slot for seq, claimed if empty. A started stream maps its window one to one. A stream
 * not started yet keeps the lower seq on a collision (the stream starts at its lowest). */
static struct cln_sub_slot *cln_sub_slot_claim(struct cln_sub *s, struct cln_sub_stream *st,
                                               uint64_t seq)
{
    struct cln_sub_slot *slot = cln_sub_slot_of(s, st, seq);
    if (slot->seq != 0 && slot->seq != seq) {
        TRONE_ASSERT(st->next_seq == 0);
        if (slot->seq < seq) {
            return NULL;
        }
        cln_sub_slot_free(s, st, slot);
    }
    if (slot->seq == 0) {
        slot->seq = seq;
        st->held_count++;
    }
    return slot;
}

/* ---- Delivery in order ---- */

static void cln_sub_floor_update(struct cln_sub *s, struct cln_sub_stream *st)
{
    struct cln_sub_floor *fl = cln_sub_floor_of(s, st);
    uint32_t k = fl != NULL ? cln_sub_floor_slot(fl, st->epoch) : CLN_SUB_EPOCHS;
    if (k < CLN_SUB_EPOCHS && st->next_seq > fl->next_seqs[k]) {
        fl->next_seqs[k] = st->next_seq;
    }
}

static void cln_sub_emit_slot(struct cln_sub *s, struct cln_sub_stream *st,
                              struct cln_sub_slot *slot)
{
    TRONE_ASSERT(slot->decided >= 0);
    const struct cln_sub_copy *c = &slot->copies[slot->decided];
    if (s->channels[st->channel_idx].cls.order == BRK_ORDER_TOTAL) {
        cln_sub__emit_total(s, st, slot->seq, c->time_us, c->bytes, c->auth_size,
                            c->bytes + c->auth_size, c->payload_size);
    } else {
        cln_sub__emit_event(s, st, slot->seq, c->time_us, c->bytes, c->auth_size,
                            c->bytes + c->auth_size, c->payload_size);
    }
    cln_sub_slot_free(s, st, slot);
}

/* Delivers the decided seqs that follow next_seq without a hole. */
static void cln_sub_drain(struct cln_sub *s, struct cln_sub_stream *st)
{
    TRONE_ASSERT(st->next_seq != 0);
    for (uint32_t i = 0; i < s->cfg.window; i++) {
        struct cln_sub_slot *slot = cln_sub_slot_of(s, st, st->next_seq);
        if (slot->seq != st->next_seq || slot->decided < 0) {
            break;
        }
        cln_sub_emit_slot(s, st, slot);
        st->next_seq++;
    }
    cln_sub_floor_update(s, st);
}

/* Delivers in order every decided seq below end, reports holes as gaps (the one before end
 * too if report_tail), frees the rest, and moves next_seq to end. */
static void cln_sub_flush_until(struct cln_sub *s, struct cln_sub_stream *st, uint64_t end,
                                enum cln_sub_gap_reason reason, bool report_tail)
{
    TRONE_ASSERT(st->next_seq != 0);
    TRONE_ASSERT(end >= st->next_seq);
    uint64_t hole = st->next_seq; /* first seq of the current hole */
    for (uint32_t k = 0; k < s->cfg.window && st->next_seq + k < end; k++) {
        uint64_t seq = st->next_seq + k;
        struct cln_sub_slot *slot = cln_sub_slot_of(s, st, seq);
        if (slot->seq != seq) {
            continue;
        }
        if (slot->decided < 0) {
            cln_sub_slot_free(s, st, slot);
            continue;
        }
        if (seq > hole) {
            cln_sub__emit_gap(s, st, hole, seq - hole, reason);
        }
        cln_sub_emit_slot(s, st, slot);
        hole = seq + 1;
    }
    if (report_tail && end > hole) {
        cln_sub__emit_gap(s, st, hole, end - hole, reason);
    }
    st->next_seq = report_tail ? end : hole;
    cln_sub_floor_update(s, st);
}

/* The gap timer of the missing next_seq runs from the oldest decision behind it: a missing
 * seq is waited for gap_wait_us once a later seq is decided (cln_sub.h), so holes that
 * waited together are skipped together. Timing each hole from when it became the head made
 * k holes cost k waits, and a subscriber under steady flow-control losses fell behind for
 * good (found by trone-sim --events). Scans the window only when the head moves while
 * holding decided seqs. */
static void cln_sub_wait_update(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us)
{
    if (st->decided_held == 0) {
        st->wait_since_us = UINT64_MAX;
        return;
    }
    if (st->wait_since_us != UINT64_MAX && st->wait_seq == st->next_seq) {
        return;
    }
    uint64_t oldest = now_us;
    for (uint32_t k = 1; k < s->cfg.window; k++) {
        const struct cln_sub_slot *slot = cln_sub_slot_of(s, st, st->next_seq + k);
        if (slot->seq == st->next_seq + k && slot->decided >= 0 && slot->decided_us < oldest) {
            oldest = slot->decided_us;
        }
    }
    st->wait_since_us = oldest;
    st->wait_seq = st->next_seq;
}

static uint32_t cln_sub_popcount(uint64_t v)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < 64 && v != 0; i++) {
        count += (uint32_t)(v & 1u);
        v >>= 1;
    }
    return count;
}

/* ---- Starting a stream ---- */

/* Where a stream that decided something starts: at the lowest seq held (decided or not) that
 * keeps every decided seq inside the window. Not at the first decided seq: a Byzantine replica
 * that reorders (or alters seq 1 and passes seq 2) gets seq 2 decided while seq 1 waits for its
 * second vote, and starting at 2 would drop seq 1 for good. A copy held below the first decided
 * seq is waited for (gap_wait_us) like any hole, and skipped with a gap report if it never gets
 * decided, so a forged low seq costs a wait, never an event. */
static uint64_t cln_sub_start_point(struct cln_sub *s, const struct cln_sub_stream *st)
{
    TRONE_ASSERT(st->next_seq == 0);
    TRONE_ASSERT(st->decided_held > 0);
    uint64_t decided_high = 0;
    for (uint32_t i = 0; i < s->cfg.window; i++) {
        const struct cln_sub_slot *slot = &st->slots[i];
        if (slot->seq != 0 && slot->decided >= 0 && slot->seq > decided_high) {
            decided_high = slot->seq;
        }
    }
    uint64_t start = decided_high;
    for (uint32_t i = 0; i < s->cfg.window; i++) {
        const struct cln_sub_slot *slot = &st->slots[i];
        if (slot->seq != 0 && slot->seq < start && decided_high - slot->seq < s->cfg.window) {
            start = slot->seq;
        }
    }
    TRONE_ASSERT(start != 0);
    /* A newer epoch of a publisher this subscriber followed began at seq 1 (the publisher
     * restarted): wait for its first seqs, and report what does not come, rather than start
     * wherever the first copy happened to be (a replica that reconnected to us late forwards
     * from the middle). */
    const struct cln_sub_floor *fl = cln_sub__floor_find(s, st->channel_idx, st->publisher);
    if (fl != NULL && cln_sub__floor_older(fl, st->epoch)) {
        uint64_t from = decided_high > s->cfg.window ? decided_high - s->cfg.window + 1 : 1;
        start = from < start ? from : start;
    }
    return start;
}

/* Is st a PKS or PKE stream whose publisher nothing vouches for yet? Without the channel's publisher
 * list a signature only proves that someone holds the key it names, and a replica that lies
 * could name a key of its own. Such a publisher is taken as authorized once f+1 replicas sent
 * its events (correct replicas forward only authorized publishers'); until then the stream
 * delivers nothing, whatever the fault model. */
static bool cln_sub_unvouched(const struct cln_sub *s, const struct cln_sub_stream *st)
{
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    return cln_sub_signed(&ch->cls) && !cln_sub__listed(ch, st->publisher) && st->next_seq == 0 &&
           cln_sub_popcount(st->senders) < s->cfg.f + 1u;
}

/* The stream starts at seq: anything held outside the window is dropped. */
static void cln_sub_start(struct cln_sub *s, struct cln_sub_stream *st, uint64_t seq)
{
    TRONE_ASSERT(st->next_seq == 0);
    TRONE_ASSERT(seq != 0);
    for (uint32_t i = 0; i < s->cfg.window && st->held_count > 0; i++) {
        struct cln_sub_slot *slot = &st->slots[i];
        if (slot->seq != 0 && (slot->seq < seq || slot->seq - seq >= s->cfg.window)) {
            cln_sub_slot_free(s, st, slot);
        }
    }
    st->next_seq = seq;
}

/* ---- Streams ---- */

struct cln_sub_stream *cln_sub__stream_find(struct cln_sub *s, uint32_t channel_idx,
                                            const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch)
{
    for (uint32_t i = 0; i < s->cfg.streams_max; i++) {
        struct cln_sub_stream *st = &s->streams[i];
        if (st->used && st->epoch == epoch && st->channel_idx == channel_idx &&
            memcmp(st->publisher, publisher, TRONE_KEY_LEN) == 0) {
            return st;
        }
    }
    return NULL;
}

static void cln_sub_start(struct cln_sub *s, struct cln_sub_stream *st, uint64_t seq);

void cln_sub__stream_close(struct cln_sub *s, struct cln_sub_stream *st)
{
    TRONE_ASSERT(st->used);
    if (st->next_seq == 0 && st->decided_held > 0 && !cln_sub_unvouched(s, st)) {
        cln_sub_start(s, st, cln_sub_start_point(s, st)); /* what it decided is delivered */
        /* and the floor learns this epoch, as cln_sub_epoch_advance does for a stream that
         * starts while open: reopened later, the stream resumes after what it delivered
         * instead of starting over (fuzz_cln_sub found seq 1 delivered after 34). */
        struct cln_sub_floor *fl = cln_sub_floor_get(s, st);
        (void)cln_sub_floor_learn(fl, st->epoch, st->next_seq); /* an epoch it left stays so */
    }
    if (st->next_seq != 0 && st->held_count > 0) {
        cln_sub_flush_until(s, st, st->next_seq + s->cfg.window, CLN_SUB_GAP_CLOSED, false);
    }
    for (uint32_t i = 0; i < s->cfg.window && st->held_count > 0; i++) {
        if (st->slots[i].seq != 0) {
            cln_sub_slot_free(s, st, &st->slots[i]);
        }
    }
    TRONE_ASSERT(st->held_count == 0);
    free(st->slots);
    free(st->copies);
    free(st->votes);
    memset(st, 0, sizeof(*st));
}

/* The stream to give up when the table is full: the least recently used one that never
 * decided anything (forged epochs land there), else the least recently used. */
static struct cln_sub_stream *cln_sub_stream_victim(struct cln_sub *s)
{
    struct cln_sub_stream *best = NULL;
    for (uint32_t i = 0; i < s->cfg.streams_max; i++) {
        struct cln_sub_stream *st = &s->streams[i];
        if (!st->used) {
            return st;
        }
        if (best == NULL || (!st->ever_decided && best->ever_decided) ||
            (st->ever_decided == best->ever_decided && st->last_use < best->last_use)) {
            best = st;
        }
    }
    TRONE_ASSERT(best != NULL);
    cln_sub__stream_close(s, best);
    return best;
}

/* Has the publisher left epoch (its copies are replays)? */
static bool cln_sub_epoch_left(struct cln_sub *s, uint32_t channel_idx,
                               const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch)
{
    const struct cln_sub_floor *fl = cln_sub__floor_find(s, channel_idx, publisher);
    return fl != NULL && epoch <= fl->left;
}

struct cln_sub_stream *cln_sub__stream_open(struct cln_sub *s, uint32_t channel_idx,
                                            const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch)
{
    if (cln_sub_epoch_left(s, channel_idx, publisher, epoch)) {
        return NULL;
    }
    const struct cln_sub_channel *ch = &s->channels[channel_idx];
    /* CFT without a signature decides on the first copy: no other copy is ever needed. */
    uint32_t copies_max =
        ch->cls.fault == BRK_FAULT_CFT && !cln_sub_signed(&ch->cls) ? 1u : s->cfg.n;
    struct cln_sub_slot *slots = calloc(s->cfg.window, sizeof(*slots));
    struct cln_sub_copy *copies = calloc((size_t)s->cfg.window * copies_max, sizeof(*copies));
    struct cln_sub_vote *votes =
        copies_max > 1 ? calloc((size_t)s->cfg.n * CLN_SUB_VOTES_KEPT, sizeof(*votes)) : NULL;
    if (slots == NULL || copies == NULL || (copies_max > 1 && votes == NULL)) {
        free(slots);
        free(copies);
        free(votes);
        return NULL;
    }
    struct cln_sub_stream *st = cln_sub_stream_victim(s);
    /* Closing the victim may have taught the floor a newer epoch of this very publisher: the
     * epoch asked for is then one it left, and opening it would replay it from its start
     * (fuzz_cln_sub: seq 16 of an epoch delivered after its seq 17). */
    if (cln_sub_epoch_left(s, channel_idx, publisher, epoch)) {
        free(slots);
        free(copies);
        free(votes);
        return NULL;
    }
    st->used = true;
    st->channel_idx = channel_idx;
    memcpy(st->publisher, publisher, TRONE_KEY_LEN);
    st->epoch = epoch;
    st->wait_since_us = UINT64_MAX;
    st->closing_since_us = UINT64_MAX;
    st->last_use = ++s->clock;
    st->copies_max = copies_max;
    st->slots = slots;
    st->copies = copies;
    st->votes = votes;
    for (uint32_t i = 0; i < s->cfg.window; i++) {
        slots[i].decided = -1;
        slots[i].copies = &copies[(size_t)i * copies_max];
    }
    if (ch->cls.durable) {
        struct chan_durable_stream d;
        memset(&d, 0, sizeof(d));
        d.total = ch->cls.order == BRK_ORDER_TOTAL;
        memcpy(d.publisher, publisher, TRONE_KEY_LEN);
        d.epoch = epoch;
        memcpy(d.tag, ch->tag, sizeof(d.tag));
        st->durable_id = chan_durable_stream_id(&d);
    }
    const struct cln_sub_floor *fl = cln_sub__floor_find(s, channel_idx, publisher);
    if (fl != NULL) {
        st->floor_idx = (uint32_t)(fl - s->floors);
    }
    uint64_t resume = fl != NULL ? cln_sub__floor_next(fl, epoch) : 0;
    if (resume != 0) {
        st->next_seq = resume; /* resumes after an eviction: no replays */
        st->ever_decided = true;
    }
    return st;
}

/* ---- Deciding ---- */

/* A decision in an epoch the floor does not remember yet: remembered, and if that made the
 * publisher's oldest remembered epoch left, that epoch's streams close (after what they
 * hold). Up to CLN_SUB_EPOCHS epochs of one publisher run side by side (processes sharing a
 * key; before, a newer epoch closed every older one and a still-running process of the same
 * key lost its later events). */
static void cln_sub_epoch_advance(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us)
{
    struct cln_sub_floor *fl = cln_sub_floor_get(s, st);
    if (cln_sub__floor_next(fl, st->epoch) != 0) {
        return;
    }
    uint64_t left = cln_sub_floor_learn(fl, st->epoch, st->next_seq);
    if (left != 0) {
        cln_sub_close_left(s, st->channel_idx, st->publisher, left, now_us);
    }
}

/* Starts a stream that decided something once its start point can be trusted (or force, when
 * gap_wait_us passed since its first decision): its lowest held seq is 1 (nothing comes before
 * it), or replicas that cannot all be faulty sent copies (f+1 on BFT and on PKS channels, so
 * at least one correct replica's first copies are held: a PKS copy is decided alone, and on a
 * CFT channel it may come from a replica that lies; one on CFT/SI channels, whose first copy
 * decides anyway). Until then decided seqs wait, as behind a hole. */
static bool cln_sub_replay_try_start(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us);

static void cln_sub_try_start(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us,
                              bool force)
{
    TRONE_ASSERT(st->next_seq == 0);
    if (cln_sub_replay_try_start(s, st, now_us)) {
        return;
    }
    if (st->decided_held == 0) {
        return;
    }
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    bool pks = cln_sub_signed(&ch->cls); /* PKS or PKE */
    uint32_t need = ch->cls.fault == BRK_FAULT_BFT || pks ? s->cfg.f + 1u : 1u;
    bool enough = cln_sub_popcount(st->senders) >= need;
    if (cln_sub_unvouched(s, st)) {
        /* Never on time alone; re-armed so the timer does not spin. */
        st->wait_since_us = now_us;
        st->wait_seq = 0;
        return;
    }
    uint64_t start = cln_sub_start_point(s, st);
    if (!force && start != 1 && !enough) {
        cln_sub_wait_update(s, st, now_us); /* the timer that forces the start */
        return;
    }
    st->ever_decided = true;
    cln_sub_start(s, st, start);
    cln_sub_epoch_advance(s, st, now_us);
    cln_sub_drain(s, st);
    cln_sub_wait_update(s, st, now_us);
}

static void cln_sub_decide(struct cln_sub *s, struct cln_sub_stream *st, struct cln_sub_slot *slot,
                           uint32_t copy_idx, uint64_t now_us)
{
    TRONE_ASSERT(slot->decided < 0);
    TRONE_ASSERT(copy_idx < slot->copy_count);
    slot->decided = (int32_t)copy_idx;
    slot->decided_us = now_us;
    st->decided_held++;
    if (st->next_seq == 0) {
        cln_sub_try_start(s, st, now_us, false);
        return;
    }
    st->ever_decided = true;
    cln_sub_epoch_advance(s, st, now_us);
    cln_sub_drain(s, st);
    cln_sub_wait_update(s, st, now_us);
}

/* A total-order copy names its event's publisher, epoch and seq before the event's own
 * authenticator (cln_sub_deliver_total): the publisher's signature is checked on that event. */
static bool cln_sub_total_copy_verifies(const struct cln_sub_channel *ch,
                                        const struct chan_event *copy)
{
    if (copy->auth_size < CLN_SUB_TOTAL_HEADER) {
        return false;
    }
    struct chan_event e = {.epoch = buf_load_u64(copy->auth + TRONE_KEY_LEN),
                           .seq = buf_load_u64(copy->auth + TRONE_KEY_LEN + 8),
                           .time_us = copy->time_us,
                           .auth = copy->auth + CLN_SUB_TOTAL_HEADER,
                           .auth_size = (uint16_t)(copy->auth_size - CLN_SUB_TOTAL_HEADER),
                           .payload = copy->payload,
                           .payload_size = copy->payload_size};
    return chan_auth_verify(ch->tag, copy->auth, &e) == 0;
}

/* Does copy c (just voted for) decide its seq? CFT without PKS: the first copy. PKS: its
 * signature, checked once per distinct copy, when the publisher is known to be authorized
 * (listed, or CFT where replicas do not lie); check says whether the runtime already verified
 * e (cln_sub_receive_checked), and only then is the core's own verification skipped. BFT: f+1
 * replicas sent this very copy, whatever its signature. Total order: BFT needs the f+1 votes
 * (a signature does not cover the position); CFT decides on the first copy, but under PKS or
 * PKE only on one that f+1 replicas sent and whose publisher signature verifies: a lying
 * replica alone could otherwise deliver events it altered, signed with a key it made up, or
 * moved to other positions (which would break the publisher's FIFO order), even for a
 * publisher the subscriber knows from the channel's list. */
static bool cln_sub_decides(const struct cln_sub *s, const struct cln_sub_stream *st,
                            struct cln_sub_copy *c, const struct chan_event *e, uint8_t check)
{
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    bool bft = ch->cls.fault == BRK_FAULT_BFT;
    if (ch->cls.order == BRK_ORDER_TOTAL) {
        bool vouched = cln_sub_popcount(c->voters) >= s->cfg.f + 1u;
        if (bft) {
            return vouched;
        }
        if (!cln_sub_signed(&ch->cls) || c->verify_tried) {
            return !cln_sub_signed(&ch->cls);
        }
        if (!vouched) {
            return false; /* the signature does not cover the position: f+1 replicas must */
        }
        c->verify_tried = true;
        return check == CLN_SUB_CHECK_NONE ? cln_sub_total_copy_verifies(ch, e)
                                           : check == CLN_SUB_CHECK_VALID;
    }
    if (!bft && !cln_sub_signed(&ch->cls)) {
        return true;
    }
    if (cln_sub_signed(&ch->cls) && !c->verify_tried &&
        (!bft || cln_sub__listed(ch, st->publisher))) {
        c->verify_tried = true;
        bool valid = check == CLN_SUB_CHECK_NONE ? chan_auth_verify(ch->tag, st->publisher, e) == 0
                                                 : check == CLN_SUB_CHECK_VALID;
        if (valid) {
            return true;
        }
    }
    return bft && cln_sub_popcount(c->voters) >= s->cfg.f + 1u;
}

/* ---- Replay of a durable channel (cln_sub.h) ---- */

/* Replicas that may lie: a replay rule waits for all replaying replicas but these. */
static uint32_t cln_sub_replay_tolerance(const struct cln_sub *s, const struct cln_sub_stream *st)
{
    return s->channels[st->channel_idx].cls.fault == BRK_FAULT_BFT ? s->cfg.f : 0u;
}

static bool cln_sub_announced_any(const struct cln_sub *s, const struct cln_sub_stream *st)
{
    for (uint32_t r = 0; r < s->cfg.n; r++) {
        if (st->announced[r] != 0) {
            return true;
        }
    }
    return false;
}

/* Replaying replicas that may still send a copy of st at a seq <= seq: they have not reached
 * st yet, or they replay it from at most seq and have not sent seq yet. */
static uint32_t cln_sub_replay_pending(const struct cln_sub *s, const struct cln_sub_stream *st,
                                       uint64_t seq)
{
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    uint32_t count = 0;
    for (uint32_t r = 0; r < s->cfg.n; r++) {
        if ((ch->replaying & ((uint64_t)1 << r)) == 0) {
            continue;
        }
        if (ch->cursor[r] < st->durable_id) {
            count++;
        } else if (ch->cursor[r] == st->durable_id && st->announced[r] != 0 &&
                   st->announced[r] <= seq && st->seen[r] < seq) {
            count++;
        }
    }
    return count;
}

/* May the hole(s) of st up to seq be declared? Not while more replaying replicas than may lie
 * could still fill them: a replica that replays faster than another (or holds a hole the
 * other does not) must not make the subscriber skip what the slower one will send. */
static bool cln_sub_replay_blocks(const struct cln_sub *s, const struct cln_sub_stream *st,
                                  uint64_t seq)
{
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    return ch->replaying != 0 && st->durable_id != 0 &&
           cln_sub_replay_pending(s, st, seq) > cln_sub_replay_tolerance(s, st);
}

/* Where a replayed stream starts: the lowest first position announced (BFT: the f+1st lowest,
 * so f replicas claiming a lower one that they never send cannot hold it back, and one
 * correct replica at least holds from there), never below the requested start. 0 if nobody
 * announced it. */
static uint64_t cln_sub_replay_start_point(const struct cln_sub *s, const struct cln_sub_stream *st)
{
    uint64_t sorted[TRONE_REPLICAS_MAX];
    uint32_t count = 0;
    for (uint32_t r = 0; r < s->cfg.n; r++) {
        uint64_t v = st->announced[r];
        if (v == 0) {
            continue;
        }
        uint32_t j = count++;
        for (; j > 0 && sorted[j - 1] > v; j--) {
            sorted[j] = sorted[j - 1];
        }
        sorted[j] = v;
    }
    if (count == 0) {
        return 0;
    }
    uint32_t idx = cln_sub_replay_tolerance(s, st);
    uint64_t start = sorted[idx < count ? idx : count - 1];
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    if (ch->replay_mode == CHAN_START_FROM && ch->replay_start < UINT64_MAX &&
        start < ch->replay_start + 1) {
        start = ch->replay_start + 1;
    }
    return start;
}

/* The start rule of a stream of a replaying channel. Returns false when it does not apply
 * (no replay, or no replica announced the stream once every replay passed it: a live stream),
 * true when it started the stream or the stream must wait for replicas that have not
 * reached it in their replay yet. */
static bool cln_sub_replay_try_start(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us)
{
    TRONE_ASSERT(st->next_seq == 0);
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    if (ch->replay_mode == CHAN_START_LIVE || st->durable_id == 0 ||
        (ch->replaying == 0 && !cln_sub_announced_any(s, st))) {
        return false;
    }
    uint32_t undetermined = 0;
    for (uint32_t r = 0; r < s->cfg.n; r++) {
        bool asked = (ch->replaying & ((uint64_t)1 << r)) != 0;
        undetermined += asked && ch->cursor[r] < st->durable_id ? 1u : 0u;
    }
    if (undetermined > cln_sub_replay_tolerance(s, st)) {
        st->wait_since_us = now_us; /* re-checked on each REPLAY, END, copy and timer */
        st->wait_seq = 0;
        return true;
    }
    uint64_t start = cln_sub_replay_start_point(s, st);
    if (start == 0) {
        return false;
    }
    st->ever_decided = true;
    cln_sub_start(s, st, start);
    if (ch->replay_mode == CHAN_START_FROM && start > ch->replay_start + 1) {
        /* Nothing before start is kept by the replicas any more (retention), or was ever. */
        cln_sub__emit_gap(s, st, ch->replay_start + 1, start - ch->replay_start - 1,
                          CLN_SUB_GAP_RETENTION);
    }
    cln_sub_epoch_advance(s, st, now_us);
    cln_sub_drain(s, st);
    st->wait_since_us = UINT64_MAX;
    cln_sub_wait_update(s, st, now_us);
    return true;
}

void cln_sub__stream_announce(struct cln_sub *s, struct cln_sub_stream *st, uint32_t replica,
                              uint64_t first, uint64_t now_us)
{
    TRONE_ASSERT(replica < s->cfg.n);
    TRONE_ASSERT(first != 0);
    struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    if ((ch->replaying & ((uint64_t)1 << replica)) == 0 || st->durable_id < ch->cursor[replica]) {
        s->dropped++; /* not asked, or not in stream id order: ignored */
        return;
    }
    ch->cursor[replica] = st->durable_id;
    st->announced[replica] = first;
    st->seen[replica] = first - 1;
    (void)now_us;
}

void cln_sub__stream_replay_moved(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us)
{
    if (st->next_seq == 0 && !cln_sub_replay_try_start(s, st, now_us) && st->decided_held > 0) {
        cln_sub_try_start(s, st, now_us, false);
    }
}

/* ---- Copies ---- */

/* The slot's copy matching e (its vote is added by the caller), stored if new. -1 when it
 * cannot be held (copies or bytes bound reached, no memory): the copy is dropped. */
static int cln_sub_copy_add(struct cln_sub *s, const struct cln_sub_stream *st,
                            struct cln_sub_slot *slot, const struct chan_event *e)
{
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    uint8_t digest[TRONE_HASH_LEN];
    chan_auth_digest(digest, ch->tag, st->publisher, e);
    for (uint32_t i = 0; i < slot->copy_count; i++) {
        if (memcmp(slot->copies[i].digest, digest, TRONE_HASH_LEN) == 0) {
            return (int)i;
        }
    }
    uint64_t size = (uint64_t)e->auth_size + e->payload_size;
    if (slot->copy_count >= st->copies_max || s->held_bytes + size > s->cfg.held_bytes_max) {
        return -1;
    }
    uint8_t *bytes = size > 0 ? malloc((size_t)size) : NULL;
    if (size > 0 && bytes == NULL) {
        return -1;
    }
    if (e->auth_size > 0) {
        memcpy(bytes, e->auth, e->auth_size);
    }
    if (e->payload_size > 0) {
        memcpy(bytes + e->auth_size, e->payload, e->payload_size);
    }
    struct cln_sub_copy *c = &slot->copies[slot->copy_count++];
    memcpy(c->digest, digest, TRONE_HASH_LEN);
    c->voters = 0;
    c->time_us = e->time_us;
    c->bytes = bytes;
    c->auth_size = e->auth_size;
    c->payload_size = e->payload_size;
    c->verify_tried = false;
    s->held_bytes += size;
    return (int)(slot->copy_count - 1);
}

/* A copy beyond the window of a started stream. The window moves forward (skipping the
 * oldest seqs with a gap report) only once replicas that cannot all be faulty went there:
 * one replica on CFT channels, f+1 on BFT ones. Returns true if seq now fits the window. */
static bool cln_sub_slide(struct cln_sub *s, struct cln_sub_stream *st, uint32_t replica,
                          uint64_t seq)
{
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    uint32_t need = ch->cls.fault == BRK_FAULT_BFT ? s->cfg.f + 1u : 1u;
    uint64_t sorted[TRONE_REPLICAS_MAX];
    st->ahead[replica] = st->ahead[replica] > seq ? st->ahead[replica] : seq;
    for (uint32_t i = 0; i < s->cfg.n; i++) {
        uint64_t v = st->ahead[i];
        uint32_t j = i;
        for (; j > 0 && sorted[j - 1] < v; j--) {
            sorted[j] = sorted[j - 1];
        }
        sorted[j] = v;
    }
    uint64_t target = sorted[need - 1];
    if (target < st->next_seq || target - st->next_seq < s->cfg.window) {
        return false;
    }
    if (cln_sub_replay_blocks(s, st, target - s->cfg.window)) {
        return false; /* a replica still replaying may send what the slide would skip */
    }
    cln_sub_flush_until(s, st, target - s->cfg.window + 1, CLN_SUB_GAP_WINDOW, true);
    cln_sub_drain(s, st);
    return seq >= st->next_seq && seq - st->next_seq < s->cfg.window;
}

/* Keeps the vote of a copy from replica that is dropped for being beyond the window. */
static void cln_sub_vote_keep(struct cln_sub *s, struct cln_sub_stream *st, uint32_t replica,
                              const struct chan_event *e)
{
    if (st->votes == NULL) {
        return;
    }
    uint32_t i = st->vote_next[replica]++ % CLN_SUB_VOTES_KEPT;
    struct cln_sub_vote *v = &st->votes[(size_t)replica * CLN_SUB_VOTES_KEPT + i];
    v->seq = e->seq;
    chan_auth_digest(v->digest, s->channels[st->channel_idx].tag, st->publisher, e);
}

/* Adds to copy c of slot the kept votes of replicas that sent it beyond the window. */
static void cln_sub_vote_recall(struct cln_sub *s, struct cln_sub_stream *st,
                                struct cln_sub_slot *slot, struct cln_sub_copy *c)
{
    for (uint32_t r = 0; st->votes != NULL && r < s->cfg.n; r++) {
        uint64_t bit = (uint64_t)1 << r;
        for (uint32_t i = 0; i < CLN_SUB_VOTES_KEPT && (slot->voted & bit) == 0; i++) {
            struct cln_sub_vote *v = &st->votes[(size_t)r * CLN_SUB_VOTES_KEPT + i];
            if (v->seq == slot->seq && memcmp(v->digest, c->digest, TRONE_HASH_LEN) == 0) {
                slot->voted |= bit;
                c->voters |= bit;
                v->seq = 0;
            }
        }
    }
}

/* CFT without PKS, the next seq in order and nothing held for it: deliver straight away. */
static bool cln_sub_fast_path(struct cln_sub *s, struct cln_sub_stream *st,
                              const struct chan_event *e, uint64_t now_us)
{
    const struct cln_sub_channel *ch = &s->channels[st->channel_idx];
    if (st->copies_max != 1 || cln_sub_signed(&ch->cls) || ch->cls.order == BRK_ORDER_TOTAL ||
        st->next_seq == 0 || e->seq != st->next_seq || cln_sub_slot_of(s, st, e->seq)->seq != 0) {
        return false;
    }
    cln_sub__emit_event(s, st, e->seq, e->time_us, e->auth, e->auth_size, e->payload,
                        e->payload_size);
    st->next_seq++;
    cln_sub_drain(s, st);
    cln_sub_wait_update(s, st, now_us);
    return true;
}

bool cln_sub__stream_wants_verify(const struct cln_sub *s, const struct cln_sub_stream *st,
                                  const struct chan_event *e)
{
    TRONE_ASSERT(st->used);
    if (st->next_seq != 0 && (e->seq < st->next_seq || e->seq - st->next_seq >= s->cfg.window)) {
        return false; /* a duplicate, a replay, or beyond the window (cln_sub__stream_copy) */
    }
    const struct cln_sub_slot *slot = cln_sub_slot_of(s, st, e->seq);
    return slot->seq != e->seq || slot->decided < 0;
}

void cln_sub__stream_copy(struct cln_sub *s, struct cln_sub_stream *st, uint32_t replica,
                          const struct chan_event *e, uint8_t check, uint64_t now_us)
{
    TRONE_ASSERT(replica < s->cfg.n);
    TRONE_ASSERT(e->seq != 0);
    TRONE_ASSERT(check <= CLN_SUB_CHECK_INVALID);
    st->last_use = ++s->clock;
    if (st->seen[replica] < e->seq) {
        st->seen[replica] = e->seq;
    }
    if (st->next_seq != 0 && e->seq < st->next_seq) {
        s->dropped++; /* a duplicate or a replay */
        return;
    }
    if (cln_sub_fast_path(s, st, e, now_us)) {
        return;
    }
    if (st->next_seq != 0 && e->seq - st->next_seq >= s->cfg.window &&
        !cln_sub_slide(s, st, replica, e->seq)) {
        s->dropped++;
        cln_sub_vote_keep(s, st, replica, e);
        return;
    }
    struct cln_sub_slot *slot = cln_sub_slot_claim(s, st, e->seq);
    uint64_t bit = (uint64_t)1 << replica;
    if (st->next_seq == 0) {
        st->senders |= bit;
    }
    if (slot == NULL || (slot->voted & bit) != 0 || slot->decided >= 0) {
        s->dropped++; /* one vote per replica and seq; decided seqs wait for their turn */
        if (slot != NULL) {
            slot->voted |= bit;
        }
        if (st->next_seq == 0) {
            cln_sub_try_start(s, st, now_us, false); /* one more sender may be enough */
        }
        return;
    }
    slot->voted |= bit;
    int idx = cln_sub_copy_add(s, st, slot, e);
    if (idx < 0) {
        s->dropped++;
        if (slot->copy_count == 0) {
            cln_sub_slot_free(s, st, slot);
        }
        return;
    }
    struct cln_sub_copy *c = &slot->copies[idx];
    c->voters |= bit;
    cln_sub_vote_recall(s, st, slot, c);
    if (cln_sub_decides(s, st, c, e, check)) {
        cln_sub_decide(s, st, slot, (uint32_t)idx, now_us);
    } else if (st->next_seq == 0) {
        cln_sub_try_start(s, st, now_us, false); /* one more sender may be what it waited for */
    }
}

/* ---- Time ---- */

/* Has wait_us passed since since_us? A clock that went backwards counts as no time. */
static bool cln_sub_elapsed(uint64_t now_us, uint64_t since_us, uint64_t wait_us)
{
    return now_us >= since_us && now_us - since_us >= wait_us;
}

/* Skips every missing seq that waited gap_wait since a later seq was decided: up to the
 * highest seq decided that long ago, reporting the holes as gaps and delivering the rest. */
static void cln_sub_skip_gap(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us)
{
    uint64_t end = 0;
    for (uint32_t k = 1; k < s->cfg.window; k++) {
        const struct cln_sub_slot *slot = cln_sub_slot_of(s, st, st->next_seq + k);
        if (slot->seq == st->next_seq + k && slot->decided >= 0 &&
            cln_sub_elapsed(now_us, slot->decided_us, s->cfg.gap_wait_us)) {
            end = slot->seq;
        }
    }
    if (end != 0 && cln_sub_replay_blocks(s, st, end - 1)) {
        st->wait_since_us = now_us; /* asked again after another wait */
        st->wait_seq = st->next_seq;
        return;
    }
    if (end != 0) {
        cln_sub_flush_until(s, st, end, CLN_SUB_GAP_TIMEOUT, true);
        cln_sub_drain(s, st);
    }
}

void cln_sub__stream_tick(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us)
{
    TRONE_ASSERT(st->used);
    if (st->closing_since_us != UINT64_MAX &&
        (st->held_count == 0 ||
         cln_sub_elapsed(now_us, st->closing_since_us, s->cfg.gap_wait_us))) {
        cln_sub__stream_close(s, st);
        return;
    }
    if (st->wait_since_us != UINT64_MAX &&
        cln_sub_elapsed(now_us, st->wait_since_us, s->cfg.gap_wait_us)) {
        if (st->next_seq == 0) {
            cln_sub_try_start(s, st, now_us, true);
            return;
        }
        cln_sub_skip_gap(s, st, now_us);
        cln_sub_wait_update(s, st, now_us);
    }
}

uint64_t cln_sub__stream_deadline(const struct cln_sub *s, const struct cln_sub_stream *st)
{
    uint64_t deadline = UINT64_MAX;
    if (st->closing_since_us != UINT64_MAX) {
        deadline =
            st->held_count == 0 ? st->closing_since_us : st->closing_since_us + s->cfg.gap_wait_us;
    }
    if (st->wait_since_us != UINT64_MAX && st->wait_since_us + s->cfg.gap_wait_us < deadline) {
        deadline = st->wait_since_us + s->cfg.gap_wait_us;
    }
    return deadline;
}

/* brk_events_total.c: total-order channels on the replica (brk_events.h, DESIGN.md 7 "order
 * digests, not payloads"). Accepted events of a total-order channel wait in a bounded pending
 * pool keyed by (tag, publisher, epoch, seq); the replication protocol orders the publishers'
 * ORDER(tag, epoch, first_seq, count, digest) operations, and the control table assigns
 * positions when it executes one (brk_table_exec.c). Each executed ORDER comes here, and its
 * events are released to the attached subscribers strictly in position order, once the pool
 * holds every one of them and their hashes match the agreed digest. The pool is a FIFO: when
 * it is full the oldest events go first (released ones are reclaimed, unordered ones evicted).
 * An ORDER whose events are missing asks the peers for its whole range (FETCH); a FETCHED
 * answer is taken only if it hashes to the agreed digest, so a Byzantine peer cannot inject
 * anything. Released events stay in the pool (until the FIFO reclaims them) to answer peers.
 * An ORDER still blocked after total_wait_us is skipped: this replica's subscribers then get
 * those positions from the other replicas.
 * No I/O, no clock (time comes in the inputs), no randomness. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_events_internal.h"
#include "core/assert.h"

_Static_assert(CHAN_EVENTS_PER_MSG_MAX <= BRK_ORDER_COUNT_MAX, "a FETCHED fits the scratch");

/* ---- Allocation ---------------------------------------------------------------------------- */

static uint32_t brk_events_total_pow2(uint32_t n)
{
    uint32_t p = 1;
    for (uint32_t i = 0; i < 32 && p < n; i++) {
        p <<= 1;
    }
    return p;
}

int brk_events__total_init(struct brk_events *e)
{
    const struct brk_events_config *c = &e->config;
    uint32_t buckets = brk_events_total_pow2(c->pool_events_max * 2);
    e->pool = calloc(c->pool_events_max, sizeof(*e->pool));
    e->pool_buckets = malloc(sizeof(*e->pool_buckets) * buckets);
    /* Twice the byte bound: records are contiguous, and the padding at the ring's end never
     * takes more than what the bound leaves (the same scheme as cln_pub's ring). */
    e->pool_ring = malloc(2u * (size_t)c->pool_bytes_max);
    e->totals = calloc(c->total_channels_max, sizeof(*e->totals));
    e->order_slots = calloc(BRK_ORDER_COUNT_MAX, sizeof(*e->order_slots));
    e->order_hashes = calloc(BRK_ORDER_COUNT_MAX, sizeof(*e->order_hashes));
    size_t peer_sends_max = (size_t)c->total_channels_max + 1u + BRK_EVENTS_SYNC_SENDS_MAX;
    e->peer_sends = calloc(peer_sends_max, sizeof(*e->peer_sends));
    e->peer_offsets = calloc(peer_sends_max, sizeof(*e->peer_offsets));
    if (e->pool == NULL || e->pool_buckets == NULL || e->pool_ring == NULL || e->totals == NULL ||
        e->order_slots == NULL || e->order_hashes == NULL || e->peer_sends == NULL ||
        e->peer_offsets == NULL || brk_events__sync_init(e) != 0) {
        return TRONE_ENOMEM;
    }
    /* A FETCHED carries one ORDER's range: it must fit one message. */
    buf_init(&e->peer_out, TRONE_MESSAGE_MAX);
    for (uint32_t i = 0; i < buckets; i++) {
        e->pool_buckets[i] = BRK_EVENTS_NONE;
    }
    e->pool_bucket_mask = buckets - 1;
    return 0;
}

void brk_events__total_close(struct brk_events *e)
{
    for (uint32_t i = 0; e->totals != NULL && i < e->config.total_channels_max; i++) {
        free(e->totals[i].orders);
    }
    free(e->pool);
    free(e->pool_buckets);
    free(e->pool_ring);
    free(e->totals);
    free(e->order_slots);
    free(e->order_hashes);
    brk_events__sync_close(e);
    free(e->peer_sends);
    free(e->peer_offsets);
    buf_close(&e->peer_out);
}

/* ---- The pending pool ---------------------------------------------------------------------- */

static uint64_t brk_events_pool_size(const struct brk_events *e)
{
    return 2u * (uint64_t)e->config.pool_bytes_max;
}

static uint32_t brk_events_pool_slot(const struct brk_events *e, uint64_t counter)
{
    return (uint32_t)(counter % e->config.pool_events_max);
}

static uint64_t brk_events_pool_hash(const struct brk_events *e, const char *tag,
                                     const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch,
                                     uint64_t seq)
{
    uint8_t key[TRONE_KEY_LEN + 16 + TRONE_TAG_MAX];
    size_t tag_size = strlen(tag);
    TRONE_ASSERT(tag_size <= TRONE_TAG_MAX);
    memcpy(key, publisher, TRONE_KEY_LEN);
    buf_store_u64(key + TRONE_KEY_LEN, epoch);
    buf_store_u64(key + TRONE_KEY_LEN + 8, seq);
    memcpy(key + TRONE_KEY_LEN + 16, tag, tag_size);
    return brk_events__hash(e, key, TRONE_KEY_LEN + 16 + tag_size);
}

static const uint8_t *brk_events_pool_bytes(const struct brk_events *e,
                                            const struct brk_events_pooled *p)
{
    return e->pool_ring + p->offset % brk_events_pool_size(e);
}

/* The wire event of a pooled entry. */
static const uint8_t *brk_events_pool_event(const struct brk_events *e,
                                            const struct brk_events_pooled *p, size_t *size)
{
    const uint8_t *b = brk_events_pool_bytes(e, p);
    size_t head = 1u + b[0] + TRONE_KEY_LEN;
    TRONE_ASSERT(p->size > head + 16u);
    *size = p->size - head;
    return b + head;
}

static bool brk_events_pool_matches(const struct brk_events *e, const struct brk_events_pooled *p,
                                    const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                                    uint64_t epoch, uint64_t seq)
{
    const uint8_t *b = brk_events_pool_bytes(e, p);
    size_t tag_size = strlen(tag);
    const uint8_t *event = b + 1 + b[0] + TRONE_KEY_LEN;
    return b[0] == tag_size && memcmp(b + 1, tag, tag_size) == 0 &&
           memcmp(b + 1 + tag_size, publisher, TRONE_KEY_LEN) == 0 &&
           buf_load_u64(event) == epoch && buf_load_u64(event + 8) == seq;
}

static void brk_events_pool_unlink(struct brk_events *e, uint32_t slot)
{
    struct brk_events_pooled *p = &e->pool[slot];
    TRONE_ASSERT(p->alive);
    uint32_t *link = &e->pool_buckets[p->hash & e->pool_bucket_mask];
    for (uint32_t n = 0; n <= e->config.pool_events_max && *link != BRK_EVENTS_NONE; n++) {
        if (*link == slot) {
            *link = p->bucket_next;
            p->alive = false;
            TRONE_ASSERT(e->pool_live > 0);
            e->pool_live--;
            if (!p->released) {
                TRONE_ASSERT(e->pool_unreleased > 0);
                e->pool_unreleased--;
            }
            return;
        }
        link = &e->pool[*link].bucket_next;
    }
    TRONE_ASSERT(0 && "pooled event missing from its bucket");
}

/* Reclaims the oldest entry: a released one frees its room, a live one is evicted. */
static void brk_events_pool_pop(struct brk_events *e)
{
    TRONE_ASSERT(e->pool_head < e->pool_tail);
    uint32_t slot = brk_events_pool_slot(e, e->pool_head);
    struct brk_events_pooled *p = &e->pool[slot];
    if (p->alive) {
        e->stats.pool_evicted += p->released ? 0 : 1;
        brk_events_pool_unlink(e, slot);
    }
    e->pool_ring_tail += (uint64_t)p->pad + p->size;
    TRONE_ASSERT(e->pool_ring_tail <= e->pool_ring_head);
    e->pool_head++;
}

static uint64_t brk_events_pool_pad(const struct brk_events *e, uint64_t need)
{
    uint64_t left = brk_events_pool_size(e) - e->pool_ring_head % brk_events_pool_size(e);
    return left < need ? left : 0;
}

/* Room for one more entry of need bytes: the entry bound and the byte bound (pool_bytes_max,
 * padding included; the ring is twice as large, so the bound is what limits). An empty pool
 * restarts at the ring's start, so one record always fits it. */
static bool brk_events_pool_room(struct brk_events *e, uint64_t need)
{
    if (e->pool_head == e->pool_tail) {
        TRONE_ASSERT(e->pool_ring_head == e->pool_ring_tail);
        uint64_t size = brk_events_pool_size(e);
        e->pool_ring_head = (e->pool_ring_head + size - 1u) / size * size;
        e->pool_ring_tail = e->pool_ring_head;
    }
    uint64_t used = e->pool_ring_head - e->pool_ring_tail;
    return e->pool_tail - e->pool_head < e->config.pool_events_max &&
           used + brk_events_pool_pad(e, need) + need <= e->config.pool_bytes_max;
}

/* The newest entry of (tag, publisher, epoch, seq) in the hash, or BRK_EVENTS_NONE. */
static uint32_t brk_events_pool_find(const struct brk_events *e, const char *tag,
                                     const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch,
                                     uint64_t seq)
{
    uint64_t hash = brk_events_pool_hash(e, tag, publisher, epoch, seq);
    uint32_t i = e->pool_buckets[hash & e->pool_bucket_mask];
    for (uint32_t n = 0; n <= e->config.pool_events_max && i != BRK_EVENTS_NONE; n++) {
        const struct brk_events_pooled *p = &e->pool[i];
        if (p->hash == hash && brk_events_pool_matches(e, p, tag, publisher, epoch, seq)) {
            return i;
        }
        i = p->bucket_next;
    }
    return BRK_EVENTS_NONE;
}

void brk_events__pool_add(struct brk_events *e, const char *tag,
                          const uint8_t publisher[TRONE_KEY_LEN], const uint8_t *event,
                          size_t event_size)
{
    size_t tag_size = strlen(tag);
    uint64_t need = 1u + tag_size + TRONE_KEY_LEN + event_size;
    TRONE_ASSERT(event_size > 16u && need <= BRK_EVENTS_RECORD_MAX);
    for (uint32_t n = 0; n <= e->config.pool_events_max && !brk_events_pool_room(e, need); n++) {
        brk_events_pool_pop(e);
    }
    TRONE_ASSERT(brk_events_pool_room(e, need));
    uint64_t epoch = buf_load_u64(event);
    uint64_t seq = buf_load_u64(event + 8);
    uint64_t pad = brk_events_pool_pad(e, need);
    uint32_t slot = brk_events_pool_slot(e, e->pool_tail);
    struct brk_events_pooled *p = &e->pool[slot];
    memset(p, 0, sizeof(*p));
    p->alive = true;
    p->hash = brk_events_pool_hash(e, tag, publisher, epoch, seq);
    p->offset = e->pool_ring_head + pad;
    p->pad = (uint32_t)pad;
    p->size = (uint32_t)need;
    uint8_t *b = e->pool_ring + p->offset % brk_events_pool_size(e);
    b[0] = (uint8_t)tag_size;
    memcpy(b + 1, tag, tag_size);
    memcpy(b + 1 + tag_size, publisher, TRONE_KEY_LEN);
    memcpy(b + 1 + tag_size + TRONE_KEY_LEN, event, event_size);
    uint32_t bucket = (uint32_t)(p->hash & e->pool_bucket_mask);
    p->bucket_next = e->pool_buckets[bucket];
    e->pool_buckets[bucket] = slot;
    e->pool_ring_head += pad + need;
    e->pool_tail++;
    e->pool_live++;
    e->pool_unreleased++;
    e->stats.pooled++;
}

/* ---- Channels and their ORDERs ------------------------------------------------------------- */

static struct brk_events_total *brk_events_total_find(struct brk_events *e, const char *tag)
{
    for (uint32_t i = 0; i < e->total_count; i++) {
        if (e->totals[i].used && strcmp(e->totals[i].tag, tag) == 0) {
            return &e->totals[i];
        }
    }
    return NULL;
}

/* The state of tag, created if needed; a full table reuses an idle channel's entry, or NULL
 * when every entry has ORDERs waiting. */
static struct brk_events_total *brk_events_total_get(struct brk_events *e, const char *tag)
{
    struct brk_events_total *t = brk_events_total_find(e, tag);
    if (t != NULL) {
        return t;
    }
    if (e->total_count < e->config.total_channels_max) {
        t = &e->totals[e->total_count++];
    } else {
        for (uint32_t i = 0; i < e->total_count && t == NULL; i++) {
            t = e->totals[i].order_count == 0 ? &e->totals[i] : NULL;
        }
        if (t == NULL) {
            return NULL;
        }
    }
    if (t->orders == NULL) {
        t->orders = calloc(e->config.orders_max, sizeof(*t->orders));
        if (t->orders == NULL) {
            return NULL;
        }
    }
    t->used = true;
    t->order_head = 0;
    t->order_count = 0;
    snprintf(t->tag, sizeof(t->tag), "%s", tag);
    return t;
}

static struct brk_events_order *brk_events_total_head(const struct brk_events *e,
                                                      struct brk_events_total *t)
{
    TRONE_ASSERT(t->order_count > 0);
    return &t->orders[t->order_head % e->config.orders_max];
}

static void brk_events_total_pop(struct brk_events *e, struct brk_events_total *t, uint64_t now_us)
{
    TRONE_ASSERT(t->order_count > 0);
    t->order_head = (t->order_head + 1) % e->config.orders_max;
    t->order_count--;
    if (t->order_count > 0) {
        struct brk_events_order *o = brk_events_total_head(e, t);
        o->since_us = now_us; /* its wait starts now */
        o->fetch_at_us = now_us + e->config.fetch_delay_us;
    }
}

/* Looks up every event of o in the pool (slots in e->order_slots). */
static bool brk_events_order_complete(struct brk_events *e, const struct brk_events_total *t,
                                      const struct brk_events_order *o)
{
    TRONE_ASSERT(o->count >= 1 && o->count <= BRK_ORDER_COUNT_MAX);
    for (uint32_t i = 0; i < o->count; i++) {
        e->order_slots[i] =
            brk_events_pool_find(e, t->tag, o->publisher, o->epoch, o->first_seq + i);
        if (e->order_slots[i] == BRK_EVENTS_NONE) {
            return false;
        }
    }
    return true;
}

/* Do the pooled events of o (found by brk_events_order_complete) hash to its digest? */
static bool brk_events_order_matches(struct brk_events *e, const struct brk_events_order *o)
{
    for (uint32_t i = 0; i < o->count; i++) {
        size_t size;
        const uint8_t *event = brk_events_pool_event(e, &e->pool[e->order_slots[i]], &size);
        brk_order_event_hash(e->order_hashes[i], event, size);
    }
    uint8_t digest[TRONE_HASH_LEN];
    brk_order_digest(digest, (const uint8_t(*)[TRONE_HASH_LEN])e->order_hashes, o->count);
    return memcmp(digest, o->digest, TRONE_HASH_LEN) == 0;
}

/* Durable: stores the events of o (found by brk_events_order_complete) at their agreed
 * positions before any of them can leave (the turn's commit precedes the sends), then deletes
 * their pending copies in the same batch. false if the store refused one: then nothing of o
 * is released live, because a subscriber must not get from this replica a position that the
 * replica could lose; o stays blocked and is tried again until the wait skips it. */
static bool brk_events_order_store(struct brk_events *e, const struct brk_channel *ch,
                                   const struct brk_events_order *o, uint64_t stream)
{
    for (uint32_t i = 0; i < o->count; i++) {
        size_t size;
        const uint8_t *event = brk_events_pool_event(e, &e->pool[e->order_slots[i]], &size);
        if (brk_events__durable_put(e, ch, o->publisher, stream, false, o->first_position + i,
                                    event, size) != 0) {
            e->stats.release_refused++;
            return false;
        }
    }
    if (e->config.durable.drop != NULL) {
        /* Every seq up to the range's last was ordered (a publisher's ranges follow each
         * other): earlier pending leftovers (skipped ranges) go too, a bounded few at once. */
        uint64_t pending = brk_events__pending_stream(ch->tag, o->publisher, o->epoch);
        int n = e->config.durable.drop(e->config.durable.ctx, pending,
                                       o->first_seq + o->count - 1u,
                                       o->count + BRK_EVENTS_PENDING_DROP_SLACK);
        e->stats.pending_dropped += n > 0 ? (uint64_t)n : 0;
    }
    return true;
}

/* Queues the events of o, at their positions, for every connection attached to the channel.
 * false (nothing released) if a durable channel's store refused them. */
static bool brk_events_order_release(struct brk_events *e, const struct brk_table *table,
                                     const struct brk_channel *ch, const struct brk_events_order *o)
{
    static const uint8_t zero[TRONE_KEY_LEN];
    uint64_t stream = ch->cls.durable && e->config.durable.put != NULL
                          ? brk_events__durable_stream(ch->tag, zero, 0, true)
                          : 0;
    if (stream != 0 && !brk_events_order_store(e, ch, o, stream)) {
        return false;
    }
    uint32_t target_count = brk_events__targets(e, table, ch, stream);
    for (uint32_t i = 0; i < o->count; i++) {
        uint32_t slot = e->order_slots[i];
        size_t size;
        const uint8_t *event = brk_events_pool_event(e, &e->pool[slot], &size);
        for (uint32_t k = 0; k < target_count; k++) {
            brk_events__enqueue(e, e->targets[k], ch->cls.urgency, ch->tag, o->publisher,
                                o->first_position + i, event, size);
        }
        if (!e->pool[slot].released) {
            e->pool[slot].released = true; /* kept for the peers' FETCHes */
            TRONE_ASSERT(e->pool_unreleased > 0);
            e->pool_unreleased--;
        }
    }
    e->stats.released += o->count;
    return true;
}

/* What the publisher sent us is not what it ordered (a Byzantine publisher): drops our copies;
 * the range is skipped after the wait. */
static void brk_events_order_drop_copies(struct brk_events *e, const struct brk_events_order *o)
{
    e->stats.mismatched++;
    for (uint32_t i = 0; i < o->count; i++) {
        if (e->pool[e->order_slots[i]].alive) {
            brk_events_pool_unlink(e, e->order_slots[i]);
        }
    }
}

/* Releases t's ORDERs in order while their events are all here; skips one that waited too
 * long. */
static void brk_events_total_release(struct brk_events *e, const struct brk_table *table,
                                     struct brk_events_total *t, uint64_t now_us)
{
    for (uint32_t n = 0; n <= e->config.orders_max && t->order_count > 0; n++) {
        struct brk_events_order *o = brk_events_total_head(e, t);
        const struct brk_channel *ch = brk_table_find_channel(table, t->tag);
        bool waited = now_us >= o->since_us && now_us - o->since_us >= e->config.total_wait_us;
        if (ch == NULL || ch->cls.order != BRK_ORDER_TOTAL) {
            e->stats.skipped += o->count; /* the channel went away or changed order */
            brk_events_total_pop(e, t, now_us);
            continue;
        }
        if (brk_events_order_complete(e, t, o)) {
            if (!brk_events_order_matches(e, o)) {
                brk_events_order_drop_copies(e, o);
            } else if (brk_events_order_release(e, table, ch, o)) {
                brk_events_total_pop(e, t, now_us);
                continue;
            }
        } else if (!o->store_checked && ch->cls.durable && e->config.durable.read != NULL) {
            /* Executed again after a restart, its range stored before the crash and its
             * pending copies deleted: released from the store instead of waiting. Looked up
             * once per ORDER, so a range that simply is not here yet costs one read. */
            o->store_checked = true;
            if (brk_events__order_stored(e, table, ch, o)) {
                brk_events_total_pop(e, t, now_us);
                continue;
            }
        }
        if (!waited) {
            return;
        }
        e->stats.skipped += o->count;
        brk_events_total_pop(e, t, now_us);
    }
}

void brk_events__total_publish(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                               const struct brk_channel *ch, const uint8_t publisher[TRONE_KEY_LEN],
                               const uint8_t *event, size_t event_size)
{
    TRONE_ASSERT(ch->cls.order == BRK_ORDER_TOTAL);
    brk_events__pool_add(e, ch->tag, publisher, event, event_size);
    struct brk_events_total *t = brk_events_total_find(e, ch->tag);
    if (t != NULL && t->order_count > 0) {
        brk_events_total_release(e, table, t, now_us);
    }
}

void brk_events__total_release_all(struct brk_events *e, const struct brk_table *table,
                                   uint64_t now_us)
{
    for (uint32_t i = 0; i < e->total_count; i++) {
        if (e->totals[i].used && e->totals[i].order_count > 0) {
            brk_events_total_release(e, table, &e->totals[i], now_us);
        }
    }
}

void brk_events_order(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                      const struct brk_order_exec *order)
{
    TRONE_ASSERT(e->totals != NULL);
    TRONE_ASSERT(order->count >= 1 && order->count <= BRK_ORDER_COUNT_MAX);
    e->stats.orders++;
    struct brk_events_total *t = brk_events_total_get(e, order->tag);
    if (t == NULL) {
        e->stats.skipped += order->count;
        return;
    }
    if (t->order_count == e->config.orders_max) {
        e->stats.skipped += brk_events_total_head(e, t)->count; /* bounded: the oldest goes */
        brk_events_total_pop(e, t, now_us);
    }
    struct brk_events_order *o =
        &t->orders[(t->order_head + t->order_count) % e->config.orders_max];
    memset(o, 0, sizeof(*o));
    memcpy(o->publisher, order->publisher, TRONE_KEY_LEN);
    memcpy(o->digest, order->digest, TRONE_HASH_LEN);
    o->epoch = order->epoch;
    o->first_seq = order->first_seq;
    o->first_position = order->first_position;
    o->count = order->count;
    o->since_us = now_us;
    o->fetch_at_us = now_us + e->config.fetch_delay_us;
    t->order_count++;
    brk_events_total_release(e, table, t, now_us);
}

/* Records the peer message written at peer_out[start, used). */
void brk_events__peer_add(struct brk_events *e, uint32_t replica, size_t start)
{
    TRONE_ASSERT(e->peer_send_count <
                 (size_t)e->config.total_channels_max + 1u + BRK_EVENTS_SYNC_SENDS_MAX);
    if (e->peer_out.error != 0) {
        e->peer_out.error = 0; /* too big or no memory: the message is not sent */
        e->peer_out.used = start;
        return;
    }
    e->peer_sends[e->peer_send_count].replica = replica;
    e->peer_sends[e->peer_send_count].size = e->peer_out.used - start;
    e->peer_offsets[e->peer_send_count] = start;
    e->peer_send_count++;
}

/* Asks a peer for the range of t's blocked head ORDER: the next one in turn after self (a
 * peer that lacks the range, is down or is Byzantine costs one retry), or every peer when the
 * config does not name the replicas. */
static void brk_events_fetch(struct brk_events *e, struct brk_events_total *t, uint64_t now_us)
{
    struct brk_events_order *o = brk_events_total_head(e, t);
    o->fetch_at_us = now_us + e->config.fetch_retry_us;
    uint32_t n = e->config.replicas;
    uint32_t peer = BRK_EVENTS_ALL_PEERS;
    if (n > 1) {
        peer = (e->config.self + 1u + o->fetches % (n - 1u)) % n;
        TRONE_ASSERT(peer != e->config.self);
    }
    o->fetches++;
    struct chan_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CHAN_MSG_FETCH;
    snprintf(m.tag, sizeof(m.tag), "%s", t->tag);
    memcpy(m.publisher, o->publisher, TRONE_KEY_LEN);
    m.epoch = o->epoch;
    m.seq = o->first_seq;
    m.range_count = o->count;
    size_t start = e->peer_out.used;
    chan_msg_put_header(&e->peer_out, &m);
    brk_events__peer_add(e, peer, start);
    e->stats.fetches++;
}

void brk_events_tick(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                     const struct brk_events_out **out)
{
    brk_events__out_reset(e);
    *out = &e->out;
    for (uint32_t i = 0; i < e->total_count; i++) {
        struct brk_events_total *t = &e->totals[i];
        if (!t->used || t->order_count == 0) {
            continue;
        }
        brk_events_total_release(e, table, t, now_us);
        if (t->order_count > 0 && now_us >= brk_events_total_head(e, t)->fetch_at_us) {
            brk_events_fetch(e, t, now_us);
        }
    }
    brk_events__sync_tick(e, table, now_us);
    brk_events__out_finish(e);
}

/* FETCH: answers with the whole range if every event of it is here (released or not), at
 * most fetch_answers_max times per peer and second. */
static void brk_events_fetch_answer(struct brk_events *e, uint64_t now_us, uint32_t replica,
                                    const struct chan_msg *m)
{
    if (m->range_count > BRK_ORDER_COUNT_MAX || replica >= TRONE_REPLICAS_MAX) {
        return;
    }
    if (now_us < e->fetch_window_us[replica] || now_us - e->fetch_window_us[replica] >= 1000000u) {
        e->fetch_window_us[replica] = now_us;
        e->fetch_answers[replica] = 0;
    }
    if (e->fetch_answers[replica] >= e->config.fetch_answers_max) {
        e->stats.fetch_throttled++;
        return;
    }
    for (uint32_t i = 0; i < m->range_count; i++) {
        e->order_slots[i] = brk_events_pool_find(e, m->tag, m->publisher, m->epoch, m->seq + i);
        if (e->order_slots[i] == BRK_EVENTS_NONE) {
            return;
        }
    }
    struct chan_msg a;
    memset(&a, 0, sizeof(a));
    a.type = CHAN_MSG_FETCHED;
    snprintf(a.tag, sizeof(a.tag), "%s", m->tag);
    memcpy(a.publisher, m->publisher, TRONE_KEY_LEN);
    size_t start = e->peer_out.used;
    chan_msg_put_header(&e->peer_out, &a);
    for (uint32_t i = 0; i < m->range_count; i++) {
        size_t size;
        const uint8_t *event = brk_events_pool_event(e, &e->pool[e->order_slots[i]], &size);
        buf_put_bytes(&e->peer_out, event, size);
    }
    chan_msg_events_end(&e->peer_out, start, m->range_count);
    brk_events__peer_add(e, replica, start);
    e->stats.fetch_served++;
    e->fetch_answers[replica]++;
}

/* FETCHED: the events must be exactly the range of an ORDER waiting here, and hash to its
 * digest; then the missing ones join the pool and the channel is released. */
static void brk_events_fetched(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                               struct buf_reader *r, const uint8_t *data, const struct chan_msg *m)
{
    struct brk_events_total *t = brk_events_total_find(e, m->tag);
    const struct brk_events_order *o = NULL;
    struct chan_event first = {0};
    if (m->event_count > 0) {
        struct buf_reader peek = *r;
        chan_msg_read_event(&peek, &first);
    }
    for (uint32_t k = 0; t != NULL && k < t->order_count && o == NULL; k++) {
        const struct brk_events_order *c = &t->orders[(t->order_head + k) % e->config.orders_max];
        if (memcmp(c->publisher, m->publisher, TRONE_KEY_LEN) == 0 && c->count == m->event_count &&
            c->epoch == first.epoch && c->first_seq == first.seq) {
            o = c;
        }
    }
    if (o == NULL || m->event_count == 0) {
        e->stats.fetch_refused++;
        return;
    }
    size_t starts[BRK_ORDER_COUNT_MAX];
    size_t sizes[BRK_ORDER_COUNT_MAX];
    for (uint32_t i = 0; i < m->event_count; i++) {
        struct chan_event ev;
        size_t at = r->used;
        chan_msg_read_event(r, &ev);
        TRONE_ASSERT(r->error == 0); /* the whole message was checked first */
        if (ev.epoch != o->epoch || ev.seq != o->first_seq + i) {
            e->stats.fetch_refused++;
            return;
        }
        starts[i] = at;
        sizes[i] = r->used - at;
        brk_order_event_hash(e->order_hashes[i], data + at, sizes[i]);
    }
    uint8_t digest[TRONE_HASH_LEN];
    brk_order_digest(digest, (const uint8_t(*)[TRONE_HASH_LEN])e->order_hashes, m->event_count);
    if (memcmp(digest, o->digest, TRONE_HASH_LEN) != 0) {
        e->stats.fetch_refused++;
        return;
    }
    e->stats.fetched++;
    for (uint32_t i = 0; i < m->event_count; i++) {
        uint32_t slot = brk_events_pool_find(e, m->tag, m->publisher, o->epoch, o->first_seq + i);
        if (slot != BRK_EVENTS_NONE) {
            brk_events_pool_unlink(e, slot); /* ours may be a different (lying) copy */
        }
        brk_events__pool_add(e, m->tag, m->publisher, data + starts[i], sizes[i]);
    }
    brk_events_total_release(e, table, t, now_us);
}

int brk_events_peer_message(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                            uint32_t replica, const uint8_t *data, size_t size,
                            const struct brk_events_out **out)
{
    TRONE_ASSERT(e->totals != NULL);
    brk_events__out_reset(e);
    *out = &e->out;
    if (chan_sync_is_type(data, size)) {
        int rc = brk_events__sync_message(e, table, now_us, replica, data, size);
        e->out.type = data[0];
        brk_events__out_finish(e);
        return rc;
    }
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_check(data, size) != 0 || chan_msg_read_header(&r, data, size, &m) != 0 ||
        (m.type != CHAN_MSG_FETCH && m.type != CHAN_MSG_FETCHED)) {
        brk_events__out_finish(e);
        return TRONE_EBADMSG;
    }
    e->out.type = (uint8_t)m.type;
    snprintf(e->out.tag, sizeof(e->out.tag), "%s", m.tag);
    if (m.type == CHAN_MSG_FETCH) {
        brk_events_fetch_answer(e, now_us, replica, &m);
    } else {
        brk_events_fetched(e, table, now_us, &r, data, &m);
    }
    brk_events__out_finish(e);
    return 0;
}

uint64_t brk_events_deadline(const struct brk_events *e)
{
    uint64_t deadline = brk_events__sync_deadline(e);
    for (uint32_t i = 0; i < e->total_count; i++) {
        const struct brk_events_total *t = &e->totals[i];
        if (t->used && t->order_count > 0) {
            const struct brk_events_order *o = &t->orders[t->order_head % e->config.orders_max];
            uint64_t at = o->since_us + e->config.total_wait_us;
            at = o->fetch_at_us < at ? o->fetch_at_us : at;
            deadline = at < deadline ? at : deadline;
        }
    }
    return deadline;
}

bool brk_events__total_pending(const struct brk_events *e)
{
    return brk_events_deadline(e) != UINT64_MAX;
}

void brk_events_pool_stats(const struct brk_events *e, struct brk_events_pool_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->events = e->pool_unreleased;
    st->bytes = e->pool_ring_head - e->pool_ring_tail;
    for (uint32_t i = 0; i < e->total_count; i++) {
        st->orders += e->totals[i].used ? e->totals[i].order_count : 0;
    }
}

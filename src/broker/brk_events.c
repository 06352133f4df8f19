/* brk_events.c: the event path's entry points (brk_events.h): config, init and close, the
 * publisher stream table (FIFO per (publisher, tag, epoch), LRU-evicted) and the handling of
 * PUBLISH, ATTACH and DETACH. Queues and flush live in brk_events_queue.c and
 * brk_events_flush.c. No I/O, no clock, no randomness. */
#include "broker/brk_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "broker/brk_events_internal.h"
#include "core/assert.h"

#define BRK_EVENTS_TABLE_MAX (1u << 24)

_Static_assert(crypto_shorthash_KEYBYTES == 16, "SipHash key is 16 bytes");
_Static_assert(CHAN_EVENTS_PER_MSG_MAX <= UINT32_MAX, "event counts fit 32 bits");

void brk_events_config_defaults(struct brk_events_config *c)
{
    memset(c, 0, sizeof(*c));
    c->conn_max = 4096;
    c->attach_max = 4096;
    c->attach_per_conn_max = 64;
    c->stream_max = 16384;
    c->queue_events_max = 65536;
    c->queue_bytes_max = 8u * 1024 * 1024;
    c->gap_max = 1024;
    c->deliver_bytes_max = 256u * 1024;
    c->flush_conn_bytes_max = 1024u * 1024;
    c->flush_total_bytes_max = 4u * 1024 * 1024;
    c->pool_events_max = 65536;
    c->pool_bytes_max = 32u * 1024 * 1024;
    c->total_channels_max = 256;
    c->orders_max = 4096;
    c->total_wait_us = 3000000u;
    c->fetch_delay_us = 200000u;
    c->fetch_retry_us = 500000u;
    c->fetch_answers_max = 64;
    c->replay_chunk = 256;
    brk_events__sync_defaults(&c->sync);
}

int brk_events_config_check(const struct brk_events_config *c)
{
    const uint32_t counts[] = {c->conn_max, c->attach_max, c->attach_per_conn_max,
                               c->stream_max, c->queue_events_max, c->gap_max,
                               c->pool_events_max, c->total_channels_max, c->orders_max};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        if (counts[i] == 0 || counts[i] > BRK_EVENTS_TABLE_MAX) {
            return TRONE_EINVAL;
        }
    }
    if (c->queue_bytes_max < BRK_EVENTS_RECORD_MAX || c->deliver_bytes_max == 0 ||
        c->flush_conn_bytes_max == 0 || c->flush_total_bytes_max < c->flush_conn_bytes_max ||
        c->flush_total_bytes_max > TRONE_MESSAGE_MAX || c->pool_bytes_max < BRK_EVENTS_RECORD_MAX ||
        c->pool_bytes_max > (UINT32_MAX >> 1) || c->total_wait_us == 0 ||
        c->fetch_retry_us == 0 || c->fetch_answers_max == 0 || c->replay_chunk == 0 ||
        (c->durable.put != NULL && (c->durable.stream_next == NULL || c->durable.read == NULL)) || c->replicas > TRONE_REPLICAS_MAX ||
        (c->durable.insert != NULL &&
         (c->durable.put == NULL || c->durable.info == NULL || c->durable.hole == NULL)) ||
        (c->replicas > 0 && c->self >= c->replicas) ||
        (c->overflow != BRK_EVENTS_DROP_OLDEST && c->overflow != BRK_EVENTS_DISCONNECT)) {
        return TRONE_EINVAL;
    }
    return 0;
}

uint64_t brk_events__hash(const struct brk_events *e, const void *data, size_t size)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, data, size, e->config.hash_key);
    return buf_load_u64(h);
}

static uint32_t brk_events_pow2(uint32_t n)
{
    uint32_t p = 1;
    for (uint32_t i = 0; i < 32 && p < n; i++) {
        p <<= 1;
    }
    return p;
}

static uint32_t *brk_events_buckets(uint32_t count)
{
    uint32_t *b = malloc(sizeof(*b) * count);
    for (uint32_t i = 0; b != NULL && i < count; i++) {
        b[i] = BRK_EVENTS_NONE;
    }
    return b;
}

int brk_events_init(struct brk_events *e, const struct brk_events_config *c)
{
    memset(e, 0, sizeof(*e));
    if (brk_events_config_check(c) != 0) {
        return TRONE_EINVAL;
    }
    e->config = *c;
    uint32_t stream_buckets = brk_events_pow2(c->stream_max * 2);
    uint32_t attach_buckets = brk_events_pow2(c->attach_max * 2);
    uint32_t conn_buckets = brk_events_pow2(c->conn_max * 2);
    e->streams = calloc(c->stream_max, sizeof(*e->streams));
    e->stream_buckets = brk_events_buckets(stream_buckets);
    e->attaches = calloc(c->attach_max, sizeof(*e->attaches));
    e->attach_buckets = brk_events_buckets(attach_buckets);
    e->conns = calloc(c->conn_max, sizeof(*e->conns));
    e->conn_buckets = brk_events_buckets(conn_buckets);
    e->targets = calloc(c->attach_max, sizeof(*e->targets));
    e->closes = calloc(c->conn_max, sizeof(*e->closes));
    if (e->streams == NULL || e->stream_buckets == NULL || e->attaches == NULL ||
        e->attach_buckets == NULL || e->conns == NULL || e->conn_buckets == NULL ||
        e->targets == NULL || e->closes == NULL) {
        brk_events_close(e);
        return TRONE_ENOMEM;
    }
    if (brk_events__total_init(e) != 0) {
        brk_events_close(e);
        return TRONE_ENOMEM;
    }
    e->stream_bucket_mask = stream_buckets - 1;
    e->attach_bucket_mask = attach_buckets - 1;
    e->conn_bucket_mask = conn_buckets - 1;
    e->lru_head = BRK_EVENTS_NONE;
    e->lru_tail = BRK_EVENTS_NONE;
    for (uint32_t i = 0; i < c->attach_max; i++) {
        e->attaches[i].conn_next = i + 1 < c->attach_max ? i + 1 : BRK_EVENTS_NONE;
    }
    e->attach_free = 0;
    /* A flush stops starting connections at flush_total_bytes_max; the last one may add its
     * GAPs and one more DELIVER. A message's answers are at most one ACK per event. */
    size_t answers = (size_t)CHAN_EVENTS_PER_MSG_MAX * BRK_EVENTS_SMALL_MSG_MAX;
    size_t gaps = (size_t)c->gap_max * BRK_EVENTS_SMALL_MSG_MAX;
    buf_init(&e->out_data, (size_t)c->flush_total_bytes_max + gaps + answers +
                               (size_t)c->deliver_bytes_max + 2u * BRK_EVENTS_RECORD_MAX);
    return 0;
}

void brk_events_close(struct brk_events *e)
{
    for (uint32_t i = 0; e->conns != NULL && i < e->conn_high; i++) {
        if (e->conns[i].used) {
            brk_events_conn_close(e, e->conns[i].id);
        }
    }
    brk_events__total_close(e);
    free(e->streams);
    free(e->stream_buckets);
    free(e->attaches);
    free(e->attach_buckets);
    free(e->conns);
    free(e->conn_buckets);
    free(e->targets);
    free(e->closes);
    free(e->sends);
    free(e->send_offsets);
    buf_close(&e->out_data);
    memset(e, 0, sizeof(*e));
}

const struct brk_events_stats *brk_events_stats(const struct brk_events *e) { return &e->stats; }

/* ---- Output ------------------------------------------------------------------------------- */

void brk_events__out_reset(struct brk_events *e)
{
    buf_reset(&e->out_data);
    buf_reset(&e->peer_out);
    e->peer_send_count = 0;
    e->send_count = 0;
    e->close_count = 0;
    memset(&e->out, 0, sizeof(e->out));
}

/* Records the message written at out_data[start, used) for conn_id; on a buffer or memory
 * failure the message is cut off (the publisher retransmits, the flush retries). */
void brk_events__out_add(struct brk_events *e, uint64_t conn_id, size_t start)
{
    if (e->out_data.error != 0) {
        return;
    }
    if (e->send_count == e->send_capacity) {
        size_t capacity = e->send_capacity == 0 ? 64 : e->send_capacity * 2;
        struct brk_events_send *sends = realloc(e->sends, capacity * sizeof(*sends));
        if (sends != NULL) {
            e->sends = sends;
        }
        size_t *offsets = realloc(e->send_offsets, capacity * sizeof(*offsets));
        if (offsets != NULL) {
            e->send_offsets = offsets;
        }
        if (sends == NULL || offsets == NULL) {
            e->out_data.used = start;
            return;
        }
        e->send_capacity = capacity;
    }
    TRONE_ASSERT(start < e->out_data.used);
    e->sends[e->send_count].conn_id = conn_id;
    e->sends[e->send_count].size = e->out_data.used - start;
    e->send_offsets[e->send_count] = start;
    e->send_count++;
}

void brk_events__out_finish(struct brk_events *e)
{
    for (size_t i = 0; i < e->send_count; i++) {
        e->sends[i].data = e->out_data.data + e->send_offsets[i];
        TRONE_ASSERT(e->send_offsets[i] + e->sends[i].size <= e->out_data.used);
    }
    e->out.send_count = e->send_count;
    e->out.sends = e->sends;
    e->out.close_count = e->close_count;
    e->out.closes = e->closes;
    for (size_t i = 0; i < e->peer_send_count; i++) {
        e->peer_sends[i].data = e->peer_out.data + e->peer_offsets[i];
        TRONE_ASSERT(e->peer_offsets[i] + e->peer_sends[i].size <= e->peer_out.used);
    }
    e->out.peer_send_count = e->peer_send_count;
    e->out.peer_sends = e->peer_sends;
}

/* ---- Publisher streams -------------------------------------------------------------------- */

static uint64_t brk_events_stream_hash(const struct brk_events *e, const uint8_t *publisher,
                                       const char *tag, uint64_t epoch)
{
    uint8_t key[TRONE_KEY_LEN + 8 + TRONE_TAG_MAX];
    size_t tag_size = strlen(tag);
    TRONE_ASSERT(tag_size <= TRONE_TAG_MAX);
    memcpy(key, publisher, TRONE_KEY_LEN);
    buf_store_u64(key + TRONE_KEY_LEN, epoch);
    memcpy(key + TRONE_KEY_LEN + 8, tag, tag_size);
    return brk_events__hash(e, key, TRONE_KEY_LEN + 8 + tag_size);
}

static void brk_events_lru_unlink(struct brk_events *e, uint32_t i)
{
    struct brk_events_stream *s = &e->streams[i];
    if (s->lru_prev != BRK_EVENTS_NONE) {
        e->streams[s->lru_prev].lru_next = s->lru_next;
    } else {
        e->lru_head = s->lru_next;
    }
    if (s->lru_next != BRK_EVENTS_NONE) {
        e->streams[s->lru_next].lru_prev = s->lru_prev;
    } else {
        e->lru_tail = s->lru_prev;
    }
    s->lru_prev = BRK_EVENTS_NONE;
    s->lru_next = BRK_EVENTS_NONE;
}

static void brk_events_lru_push(struct brk_events *e, uint32_t i)
{
    struct brk_events_stream *s = &e->streams[i];
    s->lru_prev = BRK_EVENTS_NONE;
    s->lru_next = e->lru_head;
    if (e->lru_head != BRK_EVENTS_NONE) {
        e->streams[e->lru_head].lru_prev = i;
    } else {
        e->lru_tail = i;
    }
    e->lru_head = i;
}

/* Removes the least recently used stream from its bucket and the LRU list; returns its slot. */
static uint32_t brk_events_stream_evict(struct brk_events *e)
{
    uint32_t victim = e->lru_tail;
    TRONE_ASSERT(victim != BRK_EVENTS_NONE);
    struct brk_events_stream *s = &e->streams[victim];
    uint32_t *link = &e->stream_buckets[brk_events_stream_hash(e, s->publisher, s->tag, s->epoch) &
                                        e->stream_bucket_mask];
    for (uint32_t n = 0; n <= e->config.stream_max && *link != BRK_EVENTS_NONE; n++) {
        if (*link == victim) {
            *link = s->bucket_next;
            break;
        }
        link = &e->streams[*link].bucket_next;
    }
    brk_events_lru_unlink(e, victim);
    e->stats.evicted++;
    return victim;
}

/* The stream of (publisher, tag, epoch), most recently used now; *fresh tells whether it was
 * just created (accepted then holds 0). */
static uint32_t brk_events_stream_get(struct brk_events *e, const uint8_t *publisher,
                                      const char *tag, uint64_t epoch, bool *fresh)
{
    uint32_t bucket = (uint32_t)(brk_events_stream_hash(e, publisher, tag, epoch) &
                                 e->stream_bucket_mask);
    uint32_t i = e->stream_buckets[bucket];
    for (uint32_t n = 0; n <= e->config.stream_max && i != BRK_EVENTS_NONE; n++) {
        struct brk_events_stream *s = &e->streams[i];
        if (s->epoch == epoch && memcmp(s->publisher, publisher, TRONE_KEY_LEN) == 0 &&
            strcmp(s->tag, tag) == 0) {
            brk_events_lru_unlink(e, i);
            brk_events_lru_push(e, i);
            *fresh = false;
            return i;
        }
        i = s->bucket_next;
    }
    uint32_t slot = e->stream_count < e->config.stream_max ? e->stream_count++
                                                           : brk_events_stream_evict(e);
    struct brk_events_stream *s = &e->streams[slot];
    memset(s, 0, sizeof(*s));
    memcpy(s->publisher, publisher, TRONE_KEY_LEN);
    snprintf(s->tag, sizeof(s->tag), "%s", tag);
    s->epoch = epoch;
    s->bucket_next = e->stream_buckets[bucket];
    e->stream_buckets[bucket] = slot;
    brk_events_lru_push(e, slot);
    *fresh = true;
    return slot;
}

/* ---- Messages ----------------------------------------------------------------------------- */

static void brk_events_ack(struct brk_events *e, uint64_t conn_id, const char *tag,
                           uint64_t epoch, uint64_t seq, int32_t status)
{
    struct chan_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CHAN_MSG_ACK;
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    m.epoch = epoch;
    m.seq = seq;
    m.status = status;
    size_t start = e->out_data.used;
    chan_msg_put_header(&e->out_data, &m);
    brk_events__out_add(e, conn_id, start);
}

/* May key publish on tag now? 0 or the ACK status refusing it; *ch receives the channel. */
static int32_t brk_events_publish_check(const struct brk_table *table, const char *tag,
                                        const uint8_t key[TRONE_KEY_LEN],
                                        const struct brk_channel **ch)
{
    *ch = brk_table_find_channel(table, tag);
    if (*ch == NULL) {
        return TRONE_ENOENT;
    }
    if (!brk_table_channel_may_publish(table, *ch, key)) {
        return TRONE_EPERM;
    }
    return 0;
}

/* Applies one event to its stream and forwards it if it is the next one (issue 3: seq <=
 * accepted is a duplicate, seq > accepted + 1 is dropped until the publisher resends). On a
 * total-order channel the accepted event goes to the pending pool instead, to wait for its
 * ORDER (DESIGN.md 7). On a durable channel it is stored first (durable != 0: its stream id,
 * the pending stream on a total-order channel); an event that cannot be stored is not
 * accepted: returns the refusal for the ACK (the publisher resends it, or reports it), else
 * 0. */
static int32_t brk_events_publish_one(struct brk_events *e, const struct brk_table *table,
                                      uint64_t now_us, const struct brk_channel *ch,
                                      const uint8_t key[TRONE_KEY_LEN], uint32_t stream,
                                      uint64_t seq, const uint8_t *event, size_t event_size,
                                      uint32_t target_count, uint64_t durable)
{
    struct brk_events_stream *s = &e->streams[stream];
    if (seq <= s->accepted) {
        e->stats.duplicates++;
        return 0;
    }
    if (seq != s->accepted + 1) {
        e->stats.out_of_order++;
        return 0;
    }
    if (durable != 0) {
        /* A total-order event goes to its pending stream (position = seq): acknowledged only
         * once on disk, it survives a crash of the whole cluster before its ORDER released
         * it at its agreed position (docs/PROTOCOL.md 11.1). */
        bool pending = ch->cls.order == BRK_ORDER_TOTAL;
        int32_t rc = brk_events__durable_put(e, ch, key, durable, pending, seq, event, event_size);
        if (rc != 0) {
            return rc;
        }
    }
    s->accepted = seq;
    e->stats.accepted++;
    if (ch->cls.order == BRK_ORDER_TOTAL) {
        brk_events__total_publish(e, table, now_us, ch, key, event, event_size);
        return 0;
    }
    for (uint32_t t = 0; t < target_count; t++) {
        brk_events__enqueue(e, e->targets[t], ch->cls.urgency, ch->tag, key, 0, event,
                            event_size);
    }
    return 0;
}

static int brk_events_publish(struct brk_events *e, const struct brk_table *table,
                              uint64_t now_us, uint64_t conn_id, const uint8_t key[TRONE_KEY_LEN],
                              const uint8_t *data, size_t size)
{
    /* Validate all of it first, so a malformed message changes nothing. */
    if (chan_msg_check(data, size) != 0) {
        return TRONE_EBADMSG;
    }
    struct buf_reader r;
    struct chan_msg m;
    int rc = chan_msg_read_header(&r, data, size, &m);
    TRONE_ASSERT(rc == 0);
    snprintf(e->out.tag, sizeof(e->out.tag), "%s", m.tag);
    const struct brk_channel *ch = NULL;
    int32_t status = brk_events_publish_check(table, m.tag, key, &ch);
    if (status != 0 || m.event_count == 0) {
        struct chan_event ev = {0};
        if (m.event_count > 0) {
            chan_msg_read_event(&r, &ev);
        }
        e->stats.rejected += status != 0 ? 1 : 0;
        e->out.status = status;
        brk_events_ack(e, conn_id, m.tag, ev.epoch, 0, status);
        return 0;
    }
    bool fifo = ch->cls.order != BRK_ORDER_TOTAL;
    bool durable = ch->cls.durable && e->config.durable.put != NULL;
    uint32_t target_count = fifo && !durable ? brk_events__targets(e, table, ch, 0) : 0;
    uint32_t stream = BRK_EVENTS_NONE;
    uint64_t durable_stream = 0;
    int32_t refused = 0;
    uint64_t last_seq = 0;
    for (uint32_t i = 0; i < m.event_count; i++) {
        size_t at = r.used;
        struct chan_event ev;
        chan_msg_read_event(&r, &ev);
        TRONE_ASSERT(r.error == 0);
        if (stream != BRK_EVENTS_NONE && e->streams[stream].epoch != ev.epoch) {
            brk_events_ack(e, conn_id, m.tag, e->streams[stream].epoch,
                           e->streams[stream].accepted, refused);
            stream = BRK_EVENTS_NONE;
            refused = 0;
        }
        if (stream == BRK_EVENTS_NONE) {
            bool fresh = false;
            stream = brk_events_stream_get(e, key, m.tag, ev.epoch, &fresh);
            if (fresh) {
                e->streams[stream].accepted = ev.seq - 1; /* a new stream starts anywhere */
            }
            if (durable && fifo) {
                /* Targets depend on the stream: replays that have not passed it skip it. */
                durable_stream = brk_events__durable_stream(m.tag, key, ev.epoch, false);
                target_count = brk_events__targets(e, table, ch, durable_stream);
            } else if (durable) {
                durable_stream = brk_events__pending_stream(m.tag, key, ev.epoch);
            }
        }
        last_seq = ev.seq;
        if (refused == 0) {
            refused = brk_events_publish_one(e, table, now_us, ch, key, stream, ev.seq,
                                             data + at, r.used - at, target_count,
                                             durable_stream);
        }
    }
    TRONE_ASSERT(stream != BRK_EVENTS_NONE);
    brk_events_ack(e, conn_id, m.tag, e->streams[stream].epoch, e->streams[stream].accepted, 0);
    if (refused == 0 && durable && e->store_status != 0 && last_seq > e->streams[stream].accepted) {
        /* Events left waiting behind a refused one: while the store refuses, every ACK that
         * does not cover the message says so (a bare ACK would read as "resend later"). */
        refused = e->store_status;
    }
    if (refused != 0) {
        /* What came before the refusal counts (the ACK above); the refusal follows it. */
        e->out.status = refused;
        brk_events_ack(e, conn_id, m.tag, e->streams[stream].epoch,
                       e->streams[stream].accepted, refused);
    }
    return 0;
}

static int32_t brk_events_attach(struct brk_events *e, const struct brk_table *table,
                                 uint64_t conn_id, const uint8_t key[TRONE_KEY_LEN],
                                 const struct chan_msg *m)
{
    const struct brk_channel *ch = brk_table_find_channel(table, m->tag);
    if (ch == NULL) {
        return TRONE_ENOENT;
    }
    if (!brk_table_channel_may_subscribe(table, ch, key)) {
        return TRONE_EPERM;
    }
    if (m->start_mode != CHAN_START_LIVE && !ch->cls.durable) {
        return TRONE_EINVAL; /* only durable channels keep events to replay */
    }
    uint32_t idx = brk_events__conn_get(e, conn_id, key);
    if (idx == BRK_EVENTS_NONE) {
        return TRONE_EFULL;
    }
    int rc = brk_events__attach_add(e, idx, m->tag);
    if (rc == 0 && m->start_mode != CHAN_START_LIVE) {
        brk_events__replay_start(e, brk_events__attach_find(e, idx, m->tag), m->start_mode,
                                 m->start);
    }
    return rc;
}

static int brk_events_attach_message(struct brk_events *e, const struct brk_table *table,
                                     uint64_t conn_id, const uint8_t key[TRONE_KEY_LEN],
                                     const uint8_t *data, size_t size)
{
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_read_header(&r, data, size, &m) != 0) {
        return TRONE_EBADMSG;
    }
    snprintf(e->out.tag, sizeof(e->out.tag), "%s", m.tag);
    if (m.type == CHAN_MSG_DETACH) {
        uint32_t idx = brk_events__conn_find(e, conn_id);
        if (idx != BRK_EVENTS_NONE) {
            brk_events__attach_remove(e, idx, m.tag);
        }
        return 0;
    }
    int32_t status = brk_events_attach(e, table, conn_id, key, &m);
    e->stats.rejected += status == TRONE_ENOENT || status == TRONE_EPERM ? 1 : 0;
    e->out.status = status;
    struct chan_msg answer;
    memset(&answer, 0, sizeof(answer));
    answer.type = CHAN_MSG_ATTACHED;
    snprintf(answer.tag, sizeof(answer.tag), "%s", m.tag);
    answer.status = status;
    size_t start = e->out_data.used;
    chan_msg_put_header(&e->out_data, &answer);
    brk_events__out_add(e, conn_id, start);
    return 0;
}

int brk_events_message(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                       uint64_t conn_id, const uint8_t key[TRONE_KEY_LEN], const uint8_t *data,
                       size_t size, const struct brk_events_out **out)
{
    TRONE_ASSERT(e->conns != NULL);
    TRONE_ASSERT(data != NULL || size == 0);
    brk_events__out_reset(e);
    *out = &e->out;
    int rc = TRONE_EBADMSG;
    uint8_t type = size > 0 ? data[0] : 0;
    e->out.type = type;
    switch (type) {
    case CHAN_MSG_PUBLISH:
        rc = brk_events_publish(e, table, now_us, conn_id, key, data, size);
        break;
    case CHAN_MSG_ATTACH:
    case CHAN_MSG_DETACH:
        rc = brk_events_attach_message(e, table, conn_id, key, data, size);
        break;
    case CHAN_MSG_ACK:
    case CHAN_MSG_ATTACHED:
    case CHAN_MSG_DELIVER:
    case CHAN_MSG_GAP:
    case CHAN_MSG_DELIVER_TOTAL:
    case CHAN_MSG_FETCH:
    case CHAN_MSG_FETCHED:
    case CHAN_MSG_REPLAY:
        rc = TRONE_EPROTO; /* replica-to-client and replica-to-replica messages */
        break;
    default:
        break;
    }
    if (rc != 0) {
        brk_events__out_reset(e);
        e->out.type = type;
        return rc;
    }
    brk_events__out_finish(e);
    return 0;
}

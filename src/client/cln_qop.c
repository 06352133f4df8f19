/* cln_qop.c: the subscriber's HA/PKE checks after the subscriber core (cln_qop.h): learning
 * channel keys from signed blocks, MAC checks, decryption, holding events whose key is not
 * known yet. No I/O, no clock, no randomness. */
#include "client/cln_qop.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

#define CLN_QOP_ITEMS_BYTES_MAX ((size_t)1 << 31)

/* A key learnt (or known not to be ours) for one (channel, publisher, epoch, key id). */
struct cln_qop_key {
    bool used;
    bool usable; /* false: the block had no entry for us; its events are skipped at once */
    uint32_t channel_idx;
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t epoch;
    uint8_t key_id[CHAN_QOP_KEY_ID_SIZE];
    uint8_t key[CHAN_QOP_KEY_SIZE];
    uint64_t last_use;
};

/* An event held until its key is known. */
struct cln_qop_held {
    bool used; /* false: a tombstone left by a flush */
    uint32_t channel_idx;
    const char *tag; /* the subscriber core's, valid while the channel exists */
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t epoch;
    uint64_t seq;
    uint64_t time_us;
    uint64_t since_us;
    uint8_t *bytes; /* owned: auth then payload */
    uint16_t auth_size;
    uint32_t payload_size;
};

/* One decided event as this core sees it. */
struct cln_qop_event {
    uint32_t channel_idx;
    const char *tag;
    const uint8_t *publisher;
    uint64_t epoch;
    uint64_t seq;
    uint64_t time_us;
    const uint8_t *auth;
    uint16_t auth_size;
    const uint8_t *payload;
    uint32_t payload_size;
};

enum cln_qop_result { CLN_QOP_DONE = 0, CLN_QOP_NEED_KEY = 1 };

/* ---- Init and close ---- */

static int cln_qop_config_fill(struct cln_qop_config *c)
{
    c->channels_max = c->channels_max ? c->channels_max : CLN_QOP_CHANNELS_DEFAULT;
    c->keys_max = c->keys_max ? c->keys_max : CLN_QOP_KEYS_DEFAULT;
    c->held_max = c->held_max ? c->held_max : CLN_QOP_HELD_DEFAULT;
    c->held_bytes_max = c->held_bytes_max ? c->held_bytes_max : CLN_QOP_HELD_BYTES_DEFAULT;
    c->hold_us = c->hold_us ? c->hold_us : CLN_QOP_HOLD_US_DEFAULT;
    if (c->channels_max > TRONE_CHANNELS_MAX || c->keys_max > 65536u || c->held_max > 1048576u ||
        c->held_bytes_max > ((uint64_t)1 << 32)) {
        return TRONE_ECONFIG;
    }
    uint8_t x_secret[32];
    int rc = crypto_sign_ed25519_sk_to_curve25519(x_secret, c->secret_key);
    sodium_memzero(x_secret, sizeof(x_secret));
    return rc == 0 ? 0 : TRONE_ECONFIG;
}

int cln_qop_init(struct cln_qop *q, const struct cln_qop_config *cfg)
{
    memset(q, 0, sizeof(*q));
    q->cfg = *cfg;
    int err = cln_qop_config_fill(&q->cfg);
    if (err == 0) {
        q->methods = calloc(q->cfg.channels_max, sizeof(*q->methods));
        q->keys = calloc(q->cfg.keys_max, sizeof(*q->keys));
        q->held = calloc(q->cfg.held_max, sizeof(*q->held));
        err = q->methods == NULL || q->keys == NULL || q->held == NULL ? TRONE_ENOMEM : 0;
    }
    if (err != 0) {
        cln_qop_close(q);
        return err;
    }
    buf_init(&q->items, CLN_QOP_ITEMS_BYTES_MAX);
    buf_init(&q->arena, CLN_QOP_ITEMS_BYTES_MAX);
    return 0;
}

void cln_qop_close(struct cln_qop *q)
{
    if (q->held != NULL) {
        for (uint32_t i = 0; i < q->cfg.held_max; i++) {
            free(q->held[i].bytes);
        }
    }
    if (q->keys != NULL) {
        sodium_memzero(q->keys, (size_t)q->cfg.keys_max * sizeof(*q->keys));
    }
    free(q->methods);
    free(q->keys);
    free(q->held);
    buf_close(&q->items);
    if (q->arena.data != NULL) {
        sodium_memzero(q->arena.data, q->arena.used); /* decrypted payloads */
    }
    buf_close(&q->arena);
    sodium_memzero(q, sizeof(*q));
}

int cln_qop_channel_set(struct cln_qop *q, uint32_t channel_idx, enum brk_method method)
{
    if (channel_idx >= q->cfg.channels_max || (unsigned)method > (unsigned)BRK_METHOD_PKE) {
        return TRONE_EINVAL;
    }
    q->methods[channel_idx] = method;
    return 0;
}

static bool cln_qop_channel_checked(const struct cln_qop *q, uint32_t channel_idx)
{
    return channel_idx < q->cfg.channels_max &&
           (q->methods[channel_idx] == BRK_METHOD_HA || q->methods[channel_idx] == BRK_METHOD_PKE);
}

/* ---- Keys ---- */

static bool cln_qop_key_is(const struct cln_qop_key *k, const struct cln_qop_event *e,
                           const uint8_t key_id[CHAN_QOP_KEY_ID_SIZE])
{
    return k->used && k->epoch == e->epoch && k->channel_idx == e->channel_idx &&
           memcmp(k->key_id, key_id, CHAN_QOP_KEY_ID_SIZE) == 0 &&
           memcmp(k->publisher, e->publisher, TRONE_KEY_LEN) == 0;
}

/* The key of (channel, publisher, epoch, key id), or NULL. The last hit is tried first: a
 * stream keeps one key for thousands of events, so the scan is rare. */
static struct cln_qop_key *cln_qop_key_find(struct cln_qop *q, const struct cln_qop_event *e,
                                            const uint8_t key_id[CHAN_QOP_KEY_ID_SIZE])
{
    struct cln_qop_key *k = &q->keys[q->key_last % q->cfg.keys_max];
    if (!cln_qop_key_is(k, e, key_id)) {
        k = NULL;
        for (uint32_t i = 0; i < q->cfg.keys_max && k == NULL; i++) {
            if (cln_qop_key_is(&q->keys[i], e, key_id)) {
                k = &q->keys[i];
                q->key_last = i;
            }
        }
    }
    if (k != NULL) {
        k->last_use = ++q->clock;
    }
    return k;
}

/* Stores a key (usable) or the fact that a key id is not ours (key NULL), evicting the least
 * recently used entry when the table is full. */
static void cln_qop_key_store(struct cln_qop *q, const struct cln_qop_event *e,
                              const uint8_t key_id[CHAN_QOP_KEY_ID_SIZE], const uint8_t *key)
{
    struct cln_qop_key *victim = &q->keys[0];
    for (uint32_t i = 0; i < q->cfg.keys_max && victim->used; i++) {
        if (!q->keys[i].used || q->keys[i].last_use < victim->last_use) {
            victim = &q->keys[i];
        }
    }
    sodium_memzero(victim, sizeof(*victim));
    victim->used = true;
    victim->usable = key != NULL;
    victim->channel_idx = e->channel_idx;
    memcpy(victim->publisher, e->publisher, TRONE_KEY_LEN);
    victim->epoch = e->epoch;
    memcpy(victim->key_id, key_id, CHAN_QOP_KEY_ID_SIZE);
    if (key != NULL) {
        memcpy(victim->key, key, CHAN_QOP_KEY_SIZE);
    }
    victim->last_use = ++q->clock;
}

/* ---- Output ---- */

static struct cln_sub_item *cln_qop_item_add(struct cln_qop *q, const struct cln_qop_event *e,
                                             enum cln_sub_item_kind kind)
{
    struct cln_sub_item *item = (struct cln_sub_item *)buf_append(&q->items, sizeof(*item));
    if (item == NULL) {
        return NULL;
    }
    memset(item, 0, sizeof(*item));
    item->kind = kind;
    item->channel_idx = e->channel_idx;
    item->tag = e->tag;
    memcpy(item->publisher, e->publisher, TRONE_KEY_LEN);
    item->epoch = e->epoch;
    item->seq = e->seq;
    q->item_count++;
    return item;
}

/* Marks an event item whose payload is an offset into this core's arena (turned into a
 * pointer at the end of the call); pass-through items hold pointers already. The reason field
 * is otherwise unused for events. */
#define CLN_QOP_OWN_PAYLOAD ((enum cln_sub_gap_reason)0x51)

/* Emits an event whose body_size bytes are at offset in the arena. */
static void cln_qop_emit_event(struct cln_qop *q, const struct cln_qop_event *e, size_t offset,
                               size_t body_size)
{
    struct cln_sub_item *item = cln_qop_item_add(q, e, CLN_SUB_EVENT);
    if (item == NULL) {
        return;
    }
    item->time_us = e->time_us;
    item->payload = (const uint8_t *)(uintptr_t)offset;
    item->payload_size = (uint32_t)body_size;
    item->reason = CLN_QOP_OWN_PAYLOAD;
    q->counts.delivered++;
}

/* A skipped event: merged into the previous gap item of the same stream when adjacent. */
static void cln_qop_emit_gap(struct cln_qop *q, const struct cln_qop_event *e)
{
    if (q->item_count > 0) {
        struct cln_sub_item *last = (struct cln_sub_item *)q->items.data + (q->item_count - 1);
        if (last->kind == CLN_SUB_GAP && last->reason == CLN_SUB_GAP_QOP &&
            last->channel_idx == e->channel_idx && last->epoch == e->epoch &&
            last->seq + last->count == e->seq &&
            memcmp(last->publisher, e->publisher, TRONE_KEY_LEN) == 0) {
            last->count++;
            return;
        }
    }
    struct cln_sub_item *item = cln_qop_item_add(q, e, CLN_SUB_GAP);
    if (item != NULL) {
        item->count = 1;
        item->reason = CLN_SUB_GAP_QOP;
    }
}

static void cln_qop_reject(struct cln_qop *q, const struct cln_qop_event *e)
{
    q->counts.rejected++;
    cln_qop_emit_gap(q, e);
}

/* ---- Checking one event ---- */

/* Learns the key of an event that carries a block: its publisher signature first (a block
 * only the publisher can have made), then the unwrap. Returns false if the event must be
 * rejected. */
static bool cln_qop_learn(struct cln_qop *q, const struct cln_qop_event *e,
                          const struct chan_qop_envelope *env)
{
    struct chan_event ce = {.epoch = e->epoch,
                            .seq = e->seq,
                            .time_us = e->time_us,
                            .auth = e->auth,
                            .auth_size = e->auth_size,
                            .payload = e->payload,
                            .payload_size = e->payload_size};
    if (chan_auth_verify(e->tag, e->publisher, &ce) != 0) {
        return false;
    }
    if (cln_qop_key_find(q, e, env->key_id) != NULL) {
        return true;
    }
    uint8_t key[CHAN_QOP_KEY_SIZE];
    int rc = chan_qop_unwrap(key, env->block, env->block_size, q->cfg.secret_key, env->key_id);
    if (rc == 0) {
        cln_qop_key_store(q, e, env->key_id, key);
        q->counts.keys_learned++;
    } else if (rc == TRONE_ENOENT) {
        cln_qop_key_store(q, e, env->key_id, NULL);
        q->counts.not_recipient++;
    }
    sodium_memzero(key, sizeof(key));
    return rc == 0 || rc == TRONE_ENOENT;
}

/* PKE: decrypts the body into the arena and emits it, or rejects the event. */
static void cln_qop_decrypt(struct cln_qop *q, const struct cln_qop_event *e,
                            const struct chan_qop_envelope *env, const uint8_t *key)
{
    if (env->body_size < CHAN_QOP_TAG_SIZE) {
        cln_qop_reject(q, e);
        return;
    }
    size_t plain_size = env->body_size - CHAN_QOP_TAG_SIZE;
    size_t offset = q->arena.used;
    uint8_t one;
    uint8_t *out = plain_size > 0 ? buf_append(&q->arena, plain_size) : &one;
    if (out == NULL) {
        return; /* out of memory: the arena's sticky error is reported at the end */
    }
    if (chan_qop_open(out, env, key, e->tag, e->publisher, e->epoch, e->seq, e->time_us,
                      e->payload) != 0) {
        q->arena.used = offset;
        cln_qop_reject(q, e);
        return;
    }
    cln_qop_emit_event(q, e, offset, plain_size);
}

/* Checks and emits one event (or a gap); CLN_QOP_NEED_KEY if its key is not known yet
 * (nothing emitted). A block it carries is learnt first. */
static enum cln_qop_result cln_qop_check(struct cln_qop *q, const struct cln_qop_event *e)
{
    struct chan_qop_envelope env;
    if (chan_qop_envelope_read(e->payload, e->payload_size, &env) != 0) {
        cln_qop_reject(q, e);
        return CLN_QOP_DONE;
    }
    if (env.block != NULL && !cln_qop_learn(q, e, &env)) {
        cln_qop_reject(q, e);
        return CLN_QOP_DONE;
    }
    const struct cln_qop_key *k = cln_qop_key_find(q, e, env.key_id);
    if (k == NULL) {
        return CLN_QOP_NEED_KEY;
    }
    if (!k->usable) {
        q->counts.expired++; /* a key wrapped for others only: never readable here */
        cln_qop_emit_gap(q, e);
        return CLN_QOP_DONE;
    }
    if (q->methods[e->channel_idx] == BRK_METHOD_PKE) {
        cln_qop_decrypt(q, e, &env, k->key);
        return CLN_QOP_DONE;
    }
    /* HA: an event with a block is signed (checked by cln_qop_learn); others carry the MAC. */
    struct chan_event ce = {.epoch = e->epoch,
                            .seq = e->seq,
                            .time_us = e->time_us,
                            .auth = e->auth,
                            .auth_size = e->auth_size,
                            .payload = e->payload,
                            .payload_size = e->payload_size};
    if (env.block == NULL && chan_qop_mac_verify(k->key, e->tag, e->publisher, &ce) != 0) {
        cln_qop_reject(q, e);
        return CLN_QOP_DONE;
    }
    size_t offset = q->arena.used;
    if (env.body_size > 0) {
        buf_put_bytes(&q->arena, env.body, env.body_size);
    }
    if (q->arena.error == 0) {
        cln_qop_emit_event(q, e, offset, env.body_size);
    }
    return CLN_QOP_DONE;
}

/* ---- Held events ---- */

static struct cln_qop_held *cln_qop_held_at(struct cln_qop *q, uint32_t k)
{
    return &q->held[(q->held_head + k) % q->cfg.held_max];
}

static void cln_qop_held_event(const struct cln_qop_held *h, struct cln_qop_event *e)
{
    memset(e, 0, sizeof(*e));
    e->channel_idx = h->channel_idx;
    e->tag = h->tag;
    e->publisher = h->publisher;
    e->epoch = h->epoch;
    e->seq = h->seq;
    e->time_us = h->time_us;
    e->auth = h->bytes;
    e->auth_size = h->auth_size;
    e->payload = h->bytes != NULL ? h->bytes + h->auth_size : NULL;
    e->payload_size = h->payload_size;
}

static void cln_qop_held_free(struct cln_qop *q, struct cln_qop_held *h)
{
    TRONE_ASSERT(h->used);
    TRONE_ASSERT(q->held_count > 0);
    uint64_t size = (uint64_t)h->auth_size + h->payload_size;
    TRONE_ASSERT(q->held_bytes >= size);
    q->held_bytes -= size;
    q->held_count--;
    free(h->bytes);
    memset(h, 0, sizeof(*h));
}

/* Drops tombstones at the head of the ring. */
static void cln_qop_held_trim(struct cln_qop *q)
{
    for (uint32_t i = 0; i < q->cfg.held_max && q->held_span > 0; i++) {
        if (q->held[q->held_head].used) {
            break;
        }
        q->held_head = (q->held_head + 1) % q->cfg.held_max;
        q->held_span--;
    }
    if (q->held_count == 0) {
        q->held_span = 0;
    }
}

/* Skips the oldest held event (a gap of its stream). */
static void cln_qop_held_expire_oldest(struct cln_qop *q)
{
    cln_qop_held_trim(q);
    if (q->held_count == 0) {
        return;
    }
    struct cln_qop_held *h = &q->held[q->held_head];
    struct cln_qop_event e;
    cln_qop_held_event(h, &e);
    q->counts.expired++;
    cln_qop_emit_gap(q, &e);
    cln_qop_held_free(q, h);
    cln_qop_held_trim(q);
}

/* Holds e (copied) until its key comes; over the bounds the oldest held events are skipped,
 * and an event that cannot be held at all is skipped itself. */
static void cln_qop_hold(struct cln_qop *q, const struct cln_qop_event *e, uint64_t now_us)
{
    uint64_t size = (uint64_t)e->auth_size + e->payload_size;
    if (size > q->cfg.held_bytes_max) {
        q->counts.expired++;
        cln_qop_emit_gap(q, e);
        return;
    }
    for (uint32_t i = 0;
         i <= q->cfg.held_max && q->held_count > 0 &&
         (q->held_span >= q->cfg.held_max || q->held_bytes + size > q->cfg.held_bytes_max);
         i++) {
        cln_qop_held_expire_oldest(q);
    }
    uint8_t *bytes = size > 0 ? malloc((size_t)size) : NULL;
    if ((size > 0 && bytes == NULL) || q->held_span >= q->cfg.held_max) {
        free(bytes);
        q->counts.expired++;
        cln_qop_emit_gap(q, e);
        return;
    }
    if (e->auth_size > 0) {
        memcpy(bytes, e->auth, e->auth_size);
    }
    if (e->payload_size > 0) {
        memcpy(bytes + e->auth_size, e->payload, e->payload_size);
    }
    struct cln_qop_held *h = cln_qop_held_at(q, q->held_span);
    TRONE_ASSERT(!h->used);
    h->used = true;
    h->channel_idx = e->channel_idx;
    h->tag = e->tag;
    memcpy(h->publisher, e->publisher, TRONE_KEY_LEN);
    h->epoch = e->epoch;
    h->seq = e->seq;
    h->time_us = e->time_us;
    h->since_us = now_us;
    h->bytes = bytes;
    h->auth_size = e->auth_size;
    h->payload_size = e->payload_size;
    q->held_span++;
    q->held_count++;
    q->held_bytes += size;
}

static bool cln_qop_same_stream(const struct cln_qop_held *h, const struct cln_qop_event *e)
{
    return h->used && h->channel_idx == e->channel_idx && h->epoch == e->epoch &&
           memcmp(h->publisher, e->publisher, TRONE_KEY_LEN) == 0;
}

static bool cln_qop_stream_holds(struct cln_qop *q, const struct cln_qop_event *e)
{
    for (uint32_t k = 0; k < q->held_span && q->held_count > 0; k++) {
        if (cln_qop_same_stream(cln_qop_held_at(q, k), e)) {
            return true;
        }
    }
    return false;
}

/* A later event of e's stream became readable: its held events go first, in order; those
 * whose key is still unknown will never get it (the publisher moved on) and become gaps. */
static void cln_qop_stream_flush(struct cln_qop *q, const struct cln_qop_event *e)
{
    for (uint32_t k = 0; k < q->held_span && q->held_count > 0; k++) {
        struct cln_qop_held *h = cln_qop_held_at(q, k);
        if (!cln_qop_same_stream(h, e)) {
            continue;
        }
        struct cln_qop_event held;
        cln_qop_held_event(h, &held);
        if (cln_qop_check(q, &held) == CLN_QOP_NEED_KEY) {
            q->counts.expired++;
            cln_qop_emit_gap(q, &held);
        }
        cln_qop_held_free(q, h);
    }
    cln_qop_held_trim(q);
}

/* One decided event of an HA/PKE channel. */
static void cln_qop_event(struct cln_qop *q, const struct cln_qop_event *e, uint64_t now_us)
{
    bool holding = q->held_count > 0 && cln_qop_stream_holds(q, e);
    struct chan_qop_envelope env;
    bool readable = false;
    if (chan_qop_envelope_read(e->payload, e->payload_size, &env) == 0) {
        /* Learning happens once, in cln_qop_check; here only look whether the key is known
         * or comes with this very event. */
        readable = env.block != NULL || cln_qop_key_find(q, e, env.key_id) != NULL;
    } else {
        readable = true; /* malformed: rejected in order by cln_qop_check */
    }
    if (holding && !readable) {
        cln_qop_hold(q, e, now_us);
        return;
    }
    if (holding && env.block != NULL) {
        /* Learn first so that held events of this key become readable. */
        if (!cln_qop_learn(q, e, &env)) {
            cln_qop_stream_flush(q, e);
            cln_qop_reject(q, e);
            return;
        }
    }
    if (holding) {
        cln_qop_stream_flush(q, e);
    }
    if (cln_qop_check(q, e) == CLN_QOP_NEED_KEY) {
        cln_qop_hold(q, e, now_us);
    }
}

/* ---- Calls ---- */

static void cln_qop_begin(struct cln_qop *q)
{
    buf_reset(&q->items);
    if (q->arena.data != NULL) {
        sodium_memzero(q->arena.data, q->arena.used); /* the previous call's plaintexts */
    }
    buf_reset(&q->arena);
    q->item_count = 0;
}

static int cln_qop_end(struct cln_qop *q, uint64_t deadline_us, uint64_t dropped,
                       struct cln_sub_output *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t own = cln_qop_deadline(q);
    out->deadline_us = own < deadline_us ? own : deadline_us;
    out->dropped = dropped;
    if (q->items.error != 0 || q->arena.error != 0) {
        q->item_count = 0;
        return TRONE_ENOMEM;
    }
    struct cln_sub_item *items = (struct cln_sub_item *)q->items.data;
    for (uint32_t i = 0; i < q->item_count; i++) {
        if (items[i].kind == CLN_SUB_EVENT && items[i].reason == CLN_QOP_OWN_PAYLOAD) {
            uintptr_t offset = (uintptr_t)items[i].payload;
            items[i].payload = items[i].payload_size > 0 ? q->arena.data + offset : NULL;
            items[i].reason = 0;
        }
    }
    out->item_count = q->item_count;
    out->items = items;
    return 0;
}

int cln_qop_filter(struct cln_qop *q, const struct cln_sub_output *in, uint64_t now_us,
                   struct cln_sub_output *out)
{
    cln_qop_begin(q);
    for (uint32_t i = 0; i < in->item_count; i++) {
        const struct cln_sub_item *item = &in->items[i];
        if (item->kind != CLN_SUB_EVENT || !cln_qop_channel_checked(q, item->channel_idx)) {
            struct cln_sub_item *copy = (struct cln_sub_item *)buf_append(&q->items, sizeof(*copy));
            if (copy != NULL) {
                *copy = *item;
                q->item_count++;
            }
            continue;
        }
        struct cln_qop_event e = {.channel_idx = item->channel_idx,
                                  .tag = item->tag,
                                  .publisher = item->publisher,
                                  .epoch = item->epoch,
                                  .seq = item->seq,
                                  .time_us = item->time_us,
                                  .auth = item->auth,
                                  .auth_size = item->auth_size,
                                  .payload = item->payload,
                                  .payload_size = item->payload_size};
        cln_qop_event(q, &e, now_us);
    }
    return cln_qop_end(q, in->deadline_us, in->dropped, out);
}

int cln_qop_tick(struct cln_qop *q, uint64_t now_us, struct cln_sub_output *out)
{
    cln_qop_begin(q);
    for (uint32_t i = 0; i < q->cfg.held_max && q->held_count > 0; i++) {
        cln_qop_held_trim(q);
        const struct cln_qop_held *h = &q->held[q->held_head];
        if (now_us >= h->since_us && now_us - h->since_us < q->cfg.hold_us) {
            break;
        }
        cln_qop_held_expire_oldest(q);
    }
    return cln_qop_end(q, UINT64_MAX, 0, out);
}

uint64_t cln_qop_deadline(const struct cln_qop *q)
{
    for (uint32_t k = 0; k < q->held_span && q->held_count > 0; k++) {
        const struct cln_qop_held *h = &q->held[(q->held_head + k) % q->cfg.held_max];
        if (h->used) {
            return h->since_us + q->cfg.hold_us;
        }
    }
    return UINT64_MAX;
}

/* cln_pub.c: the publisher core of the event path (cln_pub.h). Sans-I/O: no I/O, no clock,
 * no randomness; every allocation happens at init or channel open. */
#include "client/cln_pub.h"
#include "client/cln_pub_qop.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "chan/chan_auth.h"
#include "chan/chan_msg.h"
#include "core/assert.h"

/* Bytes an event takes in a PUBLISH message besides its auth and payload. */
#define CLN_PUB_EVENT_OVERHEAD (3u * 8u + 2u + 4u)

/* ---- Config and channels ---- */

static int cln_pub_config_fill(struct cln_pub_config *c)
{
    if (c->n == 0 || c->n > TRONE_REPLICAS_MAX || c->n < 2u * c->f + 1u || c->epoch == 0) {
        return TRONE_ECONFIG;
    }
    c->channels_max = c->channels_max ? c->channels_max : CLN_PUB_CHANNELS_DEFAULT;
    c->unacked_events_max =
        c->unacked_events_max ? c->unacked_events_max : CLN_PUB_UNACKED_EVENTS_DEFAULT;
    c->unacked_bytes_max =
        c->unacked_bytes_max ? c->unacked_bytes_max : CLN_PUB_UNACKED_BYTES_DEFAULT;
    c->message_bytes_max =
        c->message_bytes_max ? c->message_bytes_max : CLN_PUB_MESSAGE_BYTES_DEFAULT;
    c->retransmit_us = c->retransmit_us ? c->retransmit_us : CLN_PUB_RETRANSMIT_US_DEFAULT;
    if (c->channels_max > CLN_PUB_CHANNELS_MAX || c->message_bytes_max > TRONE_MESSAGE_MAX ||
        c->unacked_bytes_max > ((uint64_t)1 << 40)) {
        return TRONE_ECONFIG;
    }
    uint8_t derived[TRONE_KEY_LEN];
    if (crypto_sign_ed25519_sk_to_pk(derived, c->secret_key) != 0 ||
        sodium_memcmp(derived, c->public_key, TRONE_KEY_LEN) != 0) {
        return TRONE_ECONFIG;
    }
    return 0;
}

int cln_pub_init(struct cln_pub *p, const struct cln_pub_config *cfg)
{
    memset(p, 0, sizeof(*p));
    p->cfg = *cfg;
    int err = cln_pub_config_fill(&p->cfg);
    if (err == 0) {
        p->channels = calloc(p->cfg.channels_max, sizeof(*p->channels));
        p->order_op = calloc(1, sizeof(*p->order_op));
        err = p->channels == NULL || p->order_op == NULL ? TRONE_ENOMEM : 0;
    }
    if (err != 0) {
        cln_pub_close(p);
        return err;
    }
    buf_init(&p->out, TRONE_MESSAGE_MAX);
    buf_init(&p->order_out, TRONE_OP_MAX);
    return 0;
}

void cln_pub_close(struct cln_pub *p)
{
    if (p->channels != NULL) {
        for (uint32_t i = 0; i < p->channel_count; i++) {
            free(p->channels[i].slots);
            free(p->channels[i].ring);
            free(p->channels[i].hashes);
            if (p->channels[i].qop != NULL) {
                sodium_memzero(p->channels[i].qop, sizeof(*p->channels[i].qop));
                free(p->channels[i].qop);
            }
        }
        free(p->channels);
    }
    free(p->order_op);
    buf_close(&p->out);
    buf_close(&p->order_out);
    sodium_memzero(p, sizeof(*p));
}

static bool cln_pub_tag_valid(const char *tag)
{
    size_t size = strnlen(tag, TRONE_TAG_MAX + 1);
    if (size == 0 || size > TRONE_TAG_MAX) {
        return false;
    }
    for (size_t i = 0; i < size; i++) {
        char c = tag[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

int cln_pub_channel_find(const struct cln_pub *p, const char *tag)
{
    for (uint32_t i = 0; i < p->channel_count; i++) {
        if (strcmp(p->channels[i].tag, tag) == 0) {
            return (int)i;
        }
    }
    return TRONE_ENOENT;
}

int cln_pub_channel_open(struct cln_pub *p, const char *tag, const struct brk_class *cls)
{
    if (tag == NULL || !cln_pub_tag_valid(tag) || cls == NULL || !brk_class_valid(cls)) {
        return TRONE_EINVAL;
    }
    uint32_t quorum = cls->fault == BRK_FAULT_BFT ? 2u * p->cfg.f + 1u : p->cfg.f + 1u;
    if (quorum > p->cfg.n || (cls->fault == BRK_FAULT_BFT && p->cfg.n < 3u * p->cfg.f + 1u)) {
        return TRONE_ECONFIG;
    }
    if (cln_pub_channel_find(p, tag) >= 0) {
        return TRONE_EEXIST;
    }
    if (p->channel_count >= p->cfg.channels_max) {
        return TRONE_EFULL;
    }
    struct cln_pub_channel *ch = &p->channels[p->channel_count];
    memset(ch, 0, sizeof(*ch));
    ch->slots = calloc(p->cfg.unacked_events_max, sizeof(*ch->slots));
    /* Twice the byte limit: events are contiguous, and with at most unacked_bytes_max
     * pending, the padding at the ring's end never makes a publish fail. */
    ch->ring = malloc((size_t)(2 * p->cfg.unacked_bytes_max));
    if (cls->order == BRK_ORDER_TOTAL) {
        ch->hashes = calloc(p->cfg.unacked_events_max, TRONE_HASH_LEN);
    }
    bool qop = cls->method == BRK_METHOD_HA || cls->method == BRK_METHOD_PKE;
    ch->qop = qop ? calloc(1, sizeof(*ch->qop)) : NULL;
    if (ch->slots == NULL || ch->ring == NULL ||
        (cls->order == BRK_ORDER_TOTAL && ch->hashes == NULL) || (qop && ch->qop == NULL)) {
        free(ch->slots);
        free(ch->ring);
        free(ch->hashes);
        free(ch->qop);
        memset(ch, 0, sizeof(*ch));
        return TRONE_ENOMEM;
    }
    memcpy(ch->tag, tag, strlen(tag) + 1);
    ch->cls = *cls;
    ch->quorum = quorum;
    ch->next_seq = 1;
    ch->base_seq = 1;
    p->channel_count++;
    return (int)(p->channel_count - 1);
}

/* ---- The queue: slots indexed by seq, bytes in a ring ---- */

/* Highest seq that counts as acknowledged: acked by the quorum and, on a total-order channel,
 * ORDERed too. Events up to it may leave the queue. */
static uint64_t cln_pub_done_seq(const struct cln_pub_channel *ch)
{
    if (ch->hashes == NULL) {
        return ch->quorum_seq;
    }
    return ch->quorum_seq < ch->ordered_seq ? ch->quorum_seq : ch->ordered_seq;
}

static struct cln_pub_slot *cln_pub_slot(const struct cln_pub *p, struct cln_pub_channel *ch,
                                         uint64_t seq)
{
    TRONE_ASSERT(seq >= ch->base_seq);
    TRONE_ASSERT(seq < ch->next_seq);
    return &ch->slots[seq % p->cfg.unacked_events_max];
}

/* Padding needed before need bytes so that they are contiguous in the ring. */
static uint64_t cln_pub_ring_pad(const struct cln_pub *p, const struct cln_pub_channel *ch,
                                 uint64_t need)
{
    uint64_t size = 2 * p->cfg.unacked_bytes_max;
    uint64_t left = size - ch->ring_head % size;
    return left < need ? left : 0;
}

static bool cln_pub_room(const struct cln_pub *p, const struct cln_pub_channel *ch,
                         uint64_t need)
{
    uint64_t queued = ch->next_seq - ch->base_seq;
    uint64_t used = ch->ring_head - ch->ring_tail;
    return queued < p->cfg.unacked_events_max &&
           used + cln_pub_ring_pad(p, ch, need) + need <= 2 * p->cfg.unacked_bytes_max;
}

/* Drops events the quorum acked (kept so far for slower replicas) until need bytes and one
 * slot are free. Returns false if unacked events are in the way. */
static bool cln_pub_make_room(struct cln_pub *p, struct cln_pub_channel *ch, uint64_t need)
{
    for (uint64_t i = 0; i <= p->cfg.unacked_events_max; i++) {
        if (cln_pub_room(p, ch, need)) {
            return true;
        }
        if (ch->base_seq > cln_pub_done_seq(ch)) {
            return false;
        }
        struct cln_pub_slot *slot = cln_pub_slot(p, ch, ch->base_seq);
        ch->ring_tail += slot->stored_size;
        ch->base_seq++;
    }
    return cln_pub_room(p, ch, need);
}

/* brk_order_event_hash of the event's wire encoding, hashed piece by piece (no copy). */
static void cln_pub_event_hash(uint8_t out[TRONE_HASH_LEN], uint64_t epoch, uint64_t seq,
                               uint64_t time_us, const uint8_t *auth, uint16_t auth_size,
                               const uint8_t *payload, uint32_t payload_size)
{
    uint8_t head[3 * 8 + 2];
    uint8_t size[4];
    buf_store_u64(head, epoch);
    buf_store_u64(head + 8, seq);
    buf_store_u64(head + 16, time_us);
    head[24] = (uint8_t)(auth_size & 0xffu);
    head[25] = (uint8_t)(auth_size >> 8);
    buf_store_u32(size, payload_size);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, TRONE_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)BRK_ORDER_EVENT_LABEL,
                              sizeof(BRK_ORDER_EVENT_LABEL) - 1);
    crypto_generichash_update(&st, head, sizeof(head));
    crypto_generichash_update(&st, auth, auth_size);
    crypto_generichash_update(&st, size, sizeof(size));
    crypto_generichash_update(&st, payload, payload_size);
    crypto_generichash_final(&st, out, TRONE_HASH_LEN);
}

int64_t cln_pub_publish(struct cln_pub *p, uint32_t channel_idx, const uint8_t *payload,
                        uint32_t payload_size, uint64_t time_us, uint64_t now_us)
{
    TRONE_ASSERT(channel_idx < p->channel_count);
    TRONE_ASSERT(payload != NULL || payload_size == 0);
    struct cln_pub_channel *ch = &p->channels[channel_idx];
    if (ch->error != 0) {
        return ch->error;
    }
    uint16_t auth_size = ch->cls.method == BRK_METHOD_PKS ? CHAN_AUTH_PKS_SIZE : 0;
    uint32_t wire_size = payload_size;
    struct cln_pub_qop_plan plan = {0};
    if (payload_size > CHAN_QOP_BODY_MAX) {
        return TRONE_ETOOBIG; /* the API's limit for every method (trone.h) */
    }
    if (ch->qop != NULL) {
        int rc = cln_pub__qop_plan(ch, payload_size, now_us, &plan);
        if (rc != 0) {
            return rc;
        }
        auth_size = plan.auth_size;
        wire_size = plan.wire_size;
    }
    uint64_t need = (uint64_t)auth_size + wire_size;
    if (wire_size > CHAN_PAYLOAD_MAX || need > p->cfg.unacked_bytes_max ||
        need + CLN_PUB_EVENT_OVERHEAD + 256u + TRONE_TAG_MAX > TRONE_MESSAGE_MAX) {
        return TRONE_ETOOBIG;
    }
    if (ch->next_seq - 1 - cln_pub_done_seq(ch) >= p->cfg.unacked_events_max ||
        ch->bytes_pending + need > p->cfg.unacked_bytes_max || !cln_pub_make_room(p, ch, need)) {
        return TRONE_EBUSY;
    }
    uint64_t pad = cln_pub_ring_pad(p, ch, need);
    uint64_t seq = ch->next_seq++;
    struct cln_pub_slot *slot = cln_pub_slot(p, ch, seq);
    slot->time_us = time_us;
    slot->offset = ch->ring_head + pad;
    slot->payload_size = wire_size;
    slot->auth_size = auth_size;
    slot->stored_size = (uint32_t)(pad + need);
    ch->ring_head += pad + need;
    ch->bytes_pending += need;
    uint8_t *bytes = ch->ring + slot->offset % (2 * p->cfg.unacked_bytes_max);
    if (ch->qop != NULL) {
        cln_pub__qop_write(p, ch, &plan, bytes, payload, payload_size, (uint64_t)seq, time_us,
                           now_us);
    } else if (payload_size > 0) {
        memcpy(bytes + auth_size, payload, payload_size);
    }
    if (ch->qop == NULL && auth_size > 0) {
        struct chan_event e = {.epoch = p->cfg.epoch, .seq = seq, .time_us = time_us,
                               .payload = bytes + auth_size, .payload_size = payload_size};
        chan_auth_sign(bytes, p->cfg.secret_key, ch->tag, &e);
    }
    if (ch->hashes != NULL) {
        cln_pub_event_hash(ch->hashes[seq % p->cfg.unacked_events_max], p->cfg.epoch, seq, time_us,
                           bytes, auth_size, bytes + auth_size, wire_size);
    }
    (void)now_us;
    TRONE_ASSERT(ch->ring_head - ch->ring_tail <= 2 * p->cfg.unacked_bytes_max);
    TRONE_ASSERT(ch->bytes_pending <= p->cfg.unacked_bytes_max);
    return (int64_t)seq;
}

/* ---- Acknowledgements ---- */

/* The highest seq acked by at least quorum replicas: the quorum-th largest acked_seq. */
static uint64_t cln_pub_quorum_seq(const struct cln_pub *p, const struct cln_pub_channel *ch)
{
    uint64_t sorted[TRONE_REPLICAS_MAX];
    uint32_t n = p->cfg.n;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = ch->peers[i].acked_seq;
        uint32_t j = i;
        for (; j > 0 && sorted[j - 1] < v; j--) {
            sorted[j] = sorted[j - 1];
        }
        sorted[j] = v;
    }
    TRONE_ASSERT(ch->quorum >= 1 && ch->quorum <= n);
    return sorted[ch->quorum - 1];
}

static void cln_pub_quorum_advance(struct cln_pub *p, struct cln_pub_channel *ch)
{
    uint64_t quorum_seq = cln_pub_quorum_seq(p, ch);
    for (uint64_t seq = ch->quorum_seq + 1; seq <= quorum_seq; seq++) {
        const struct cln_pub_slot *slot = cln_pub_slot(p, ch, seq);
        uint64_t size = (uint64_t)slot->auth_size + slot->payload_size;
        TRONE_ASSERT(ch->bytes_pending >= size);
        ch->bytes_pending -= size;
    }
    if (quorum_seq > ch->quorum_seq) {
        ch->quorum_seq = quorum_seq;
    }
}

/* A refusal fails the channel once it cannot be outvoted: f+1 replicas refused (at least one
 * correct replica among them), or too few replicas remain to form the ack quorum. */
static void cln_pub_refusal(struct cln_pub *p, struct cln_pub_channel *ch, uint32_t replica,
                            int32_t status)
{
    bool known = status < 0 && strcmp(trone_err_name(status), "TRONE_EUNKNOWN") != 0;
    ch->peers[replica].refusal = known ? status : TRONE_EPROTO;
    uint32_t refusers = 0;
    for (uint32_t i = 0; i < p->cfg.n; i++) {
        refusers += ch->peers[i].refusal != 0 ? 1u : 0u;
    }
    if (ch->error == 0 && (refusers >= p->cfg.f + 1u || p->cfg.n - refusers < ch->quorum)) {
        ch->error = ch->peers[replica].refusal;
    }
}

int cln_pub_receive(struct cln_pub *p, uint32_t replica, const uint8_t *data, size_t size,
                    uint64_t now_us)
{
    TRONE_ASSERT(replica < p->cfg.n);
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_read_header(&r, data, size, &m) != 0 || m.type != CHAN_MSG_ACK) {
        return TRONE_EBADMSG;
    }
    int idx = cln_pub_channel_find(p, m.tag);
    if (idx < 0 || m.epoch != p->cfg.epoch) {
        return 0;
    }
    struct cln_pub_channel *ch = &p->channels[idx];
    struct cln_pub_peer *peer = &ch->peers[replica];
    if (m.status != 0) {
        cln_pub_refusal(p, ch, replica, m.status);
        return 0;
    }
    if (m.seq >= ch->next_seq) {
        return TRONE_EBADMSG; /* acks an event never published */
    }
    peer->refusal = 0;
    if (m.seq > peer->acked_seq) {
        peer->acked_seq = m.seq;
        peer->progress_us = now_us;
        peer->sent_seq = peer->sent_seq > m.seq ? peer->sent_seq : m.seq;
        cln_pub_quorum_advance(p, ch);
    }
    return 0;
}

/* ---- Connections and retransmission ---- */

/* What replica has of channel ch, counting events no longer queued as had. */
static uint64_t cln_pub_peer_has(const struct cln_pub_channel *ch, const struct cln_pub_peer *pr)
{
    return pr->acked_seq > ch->base_seq - 1 ? pr->acked_seq : ch->base_seq - 1;
}

void cln_pub_replica_up(struct cln_pub *p, uint32_t replica, uint64_t now_us)
{
    TRONE_ASSERT(replica < p->cfg.n);
    p->up[replica] = true;
    for (uint32_t i = 0; i < p->channel_count; i++) {
        struct cln_pub_peer *peer = &p->channels[i].peers[replica];
        peer->sent_seq = peer->acked_seq;
        peer->progress_us = now_us;
    }
}

void cln_pub_replica_down(struct cln_pub *p, uint32_t replica)
{
    TRONE_ASSERT(replica < p->cfg.n);
    p->up[replica] = false;
}

/* Is replica waiting to ack something it was sent on ch? */
static bool cln_pub_outstanding(const struct cln_pub *p, const struct cln_pub_channel *ch,
                                uint32_t replica)
{
    const struct cln_pub_peer *peer = &ch->peers[replica];
    return p->up[replica] && ch->error == 0 && cln_pub_peer_has(ch, peer) < peer->sent_seq;
}

void cln_pub_tick(struct cln_pub *p, uint64_t now_us)
{
    for (uint32_t i = 0; i < p->channel_count; i++) {
        struct cln_pub_channel *ch = &p->channels[i];
        for (uint32_t r = 0; r < p->cfg.n; r++) {
            struct cln_pub_peer *peer = &ch->peers[r];
            if (cln_pub_outstanding(p, ch, r) &&
                now_us - peer->progress_us >= p->cfg.retransmit_us) {
                peer->sent_seq = peer->acked_seq;
                peer->progress_us = now_us;
            }
        }
    }
}

uint64_t cln_pub_deadline(const struct cln_pub *p)
{
    uint64_t deadline = UINT64_MAX;
    for (uint32_t i = 0; i < p->channel_count; i++) {
        const struct cln_pub_channel *ch = &p->channels[i];
        for (uint32_t r = 0; r < p->cfg.n; r++) {
            uint64_t at = ch->peers[r].progress_us + p->cfg.retransmit_us;
            if (cln_pub_outstanding(p, ch, r) && at < deadline) {
                deadline = at;
            }
        }
    }
    return deadline;
}

/* ---- Output ---- */

static bool cln_pub_has_unsent(const struct cln_pub_channel *ch, uint32_t replica)
{
    const struct cln_pub_peer *peer = &ch->peers[replica];
    uint64_t from = peer->sent_seq > ch->base_seq - 1 ? peer->sent_seq : ch->base_seq - 1;
    return ch->error == 0 && from + 1 < ch->next_seq;
}

/* The most urgent channel with events replica was not sent; round robin among equals. */
static int cln_pub_pick(struct cln_pub *p, uint32_t replica)
{
    uint32_t count = p->channel_count;
    for (int u = (int)BRK_URGENCY_MAX; u >= 0; u--) {
        for (uint32_t k = 0; k < count; k++) {
            uint32_t idx = (p->cursor[u] + k) % count;
            const struct cln_pub_channel *ch = &p->channels[idx];
            if (ch->cls.urgency == (uint8_t)u && cln_pub_has_unsent(ch, replica)) {
                p->cursor[u] = (idx + 1) % count;
                return (int)idx;
            }
        }
    }
    return -1;
}

static void cln_pub_put_events(struct cln_pub *p, struct cln_pub_channel *ch,
                               struct cln_pub_peer *peer, uint32_t *count)
{
    uint64_t from = peer->sent_seq > ch->base_seq - 1 ? peer->sent_seq : ch->base_seq - 1;
    uint64_t seq = from + 1;
    for (; seq < ch->next_seq && *count < CHAN_EVENTS_PER_MSG_MAX; seq++) {
        const struct cln_pub_slot *slot = cln_pub_slot(p, ch, seq);
        size_t size = CLN_PUB_EVENT_OVERHEAD + slot->auth_size + slot->payload_size;
        if (*count > 0 && p->out.used + size > p->cfg.message_bytes_max) {
            break;
        }
        const uint8_t *bytes = ch->ring + slot->offset % (2 * p->cfg.unacked_bytes_max);
        struct chan_event e = {.epoch = p->cfg.epoch, .seq = seq, .time_us = slot->time_us,
                               .auth = bytes, .auth_size = slot->auth_size,
                               .payload = bytes + slot->auth_size,
                               .payload_size = slot->payload_size};
        chan_msg_put_event(&p->out, &e);
        (*count)++;
    }
    peer->sent_seq = seq - 1;
}

int cln_pub_next_message(struct cln_pub *p, uint32_t replica, uint64_t now_us,
                         const uint8_t **data, size_t *size)
{
    TRONE_ASSERT(replica < p->cfg.n);
    *data = NULL;
    *size = 0;
    buf_reset(&p->out);
    int idx = p->up[replica] ? cln_pub_pick(p, replica) : -1;
    if (idx < 0) {
        return 0;
    }
    struct cln_pub_channel *ch = &p->channels[idx];
    struct cln_pub_peer *peer = &ch->peers[replica];
    if (!cln_pub_outstanding(p, ch, replica)) {
        peer->progress_us = now_us; /* the retransmission timer starts with the first send */
    }
    struct chan_msg m = {.type = CHAN_MSG_PUBLISH};
    memcpy(m.tag, ch->tag, sizeof(m.tag));
    uint64_t sent_before = peer->sent_seq;
    uint32_t count = 0;
    chan_msg_put_header(&p->out, &m);
    cln_pub_put_events(p, ch, peer, &count);
    chan_msg_events_end(&p->out, 0, count);
    if (p->out.error != 0) {
        peer->sent_seq = sent_before;
        return p->out.error;
    }
    TRONE_ASSERT(count > 0);
    *data = p->out.data;
    *size = p->out.used;
    return 1;
}

/* ---- Total order: ORDER ops ---- */

/* Builds the ORDER of ch's events ordered_seq+1 .. end into p->order_out. */
static int cln_pub_order_build(struct cln_pub *p, struct cln_pub_channel *ch, uint64_t end)
{
    uint64_t first = ch->ordered_seq + 1;
    TRONE_ASSERT(end >= first && end - first < BRK_ORDER_COUNT_MAX);
    TRONE_ASSERT(first >= ch->base_seq && end < ch->next_seq); /* still queued */
    uint32_t count = (uint32_t)(end - first + 1);
    uint8_t(*hashes)[TRONE_HASH_LEN] = ch->hashes;
    /* The hashes of the range are contiguous unless the ring of slots wraps inside it. */
    uint8_t(*range)[TRONE_HASH_LEN] = calloc(count, TRONE_HASH_LEN);
    if (range == NULL) {
        return TRONE_ENOMEM;
    }
    for (uint32_t i = 0; i < count; i++) {
        memcpy(range[i], hashes[(first + i) % p->cfg.unacked_events_max], TRONE_HASH_LEN);
    }
    uint8_t digest[TRONE_HASH_LEN];
    brk_order_digest(digest, (const uint8_t(*)[TRONE_HASH_LEN])range, count);
    free(range);
    brk_op_init(p->order_op, BRK_OP_ORDER);
    int rc = brk_op_set_order(p->order_op, ch->tag, p->cfg.epoch, first, count, digest);
    if (rc == 0) {
        buf_reset(&p->order_out);
        rc = brk_op_encode(p->order_op, &p->order_out);
    }
    return rc;
}

int cln_pub_order_next(struct cln_pub *p, const uint8_t **op, size_t *size)
{
    *op = NULL;
    *size = 0;
    if (p->order_inflight) {
        return 0;
    }
    for (uint32_t k = 0; k < p->channel_count; k++) {
        uint32_t idx = (p->order_cursor + k) % p->channel_count;
        struct cln_pub_channel *ch = &p->channels[idx];
        if (ch->hashes == NULL || ch->error != 0 || ch->ordered_seq + 1 >= ch->next_seq) {
            continue;
        }
        /* A retry rebuilds exactly the range sent before (it may have been applied). */
        uint64_t end = ch->order_sent_seq > ch->ordered_seq ? ch->order_sent_seq
                                                            : ch->next_seq - 1;
        if (end - ch->ordered_seq > BRK_ORDER_COUNT_MAX) {
            end = ch->ordered_seq + BRK_ORDER_COUNT_MAX;
        }
        int rc = cln_pub_order_build(p, ch, end);
        if (rc != 0) {
            return 0; /* out of memory: tried again at the next call */
        }
        ch->order_sent_seq = end;
        p->order_inflight = true;
        p->order_channel = idx;
        p->order_cursor = (idx + 1) % p->channel_count;
        *op = p->order_out.data;
        *size = p->order_out.used;
        return 1;
    }
    return 0;
}

void cln_pub_order_done(struct cln_pub *p, int status, const uint8_t *result, size_t size)
{
    if (!p->order_inflight) {
        return;
    }
    p->order_inflight = false;
    struct cln_pub_channel *ch = &p->channels[p->order_channel];
    if (status != 0) {
        return; /* not agreed (stale request id): the same range goes again */
    }
    struct brk_result res;
    if (brk_result_decode(result, size, &res) != 0) {
        ch->error = ch->error != 0 ? ch->error : TRONE_EPROTO;
        return;
    }
    if (res.status == 0 || res.status == TRONE_EEXIST) {
        ch->ordered_seq = ch->order_sent_seq;
        return;
    }
    ch->error = ch->error != 0 ? ch->error : res.status;
}

bool cln_pub_order_inflight(const struct cln_pub *p) { return p->order_inflight; }

/* ---- Counts ---- */

void cln_pub_channel_counts(const struct cln_pub *p, uint32_t channel_idx,
                            struct cln_pub_counts *c)
{
    TRONE_ASSERT(channel_idx < p->channel_count);
    const struct cln_pub_channel *ch = &p->channels[channel_idx];
    c->published = ch->next_seq - 1;
    c->acknowledged = cln_pub_done_seq(ch);
    c->pending = c->published - c->acknowledged;
    c->error = ch->error;
}

void cln_pub_counts(const struct cln_pub *p, struct cln_pub_counts *c)
{
    memset(c, 0, sizeof(*c));
    for (uint32_t i = 0; i < p->channel_count; i++) {
        struct cln_pub_counts one;
        cln_pub_channel_counts(p, i, &one);
        c->published += one.published;
        c->acknowledged += one.acknowledged;
        c->pending += one.pending;
        c->error = c->error != 0 ? c->error : one.error;
    }
}

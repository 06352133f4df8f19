/* byz_events.c: the event path of the TEST-ONLY trone-byz (byz.h lists the modes). For this
 * binary only, src/broker/brk_events.c is compiled with brk_events_message renamed to
 * brk_events_message_honest and brk_events_flush.c with brk_events_flush renamed to
 * brk_events_flush_honest; the functions below take their names, run the honest core and
 * rewrite its output as TRONE_BYZ=ev-alter|ev-forge|ev-replay|ev-reorder|ev-drop|ev-ack-lie
 * asks. The production trone never contains this file and no file of src/ knows about it.
 *
 * Connection ids are the runtime's rt_conn addresses: a message is only ever sent to an id the
 * honest core named in the very output being rewritten (so the connection is alive); stored
 * messages are never sent to an id remembered from earlier. One core per process, so the
 * filter's state is one static, as in byz_step.c. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_events.h"
#include "byz.h"
#include "chan/chan_auth.h"
#include "chan/chan_msg.h"
#include "core/assert.h"
#include "core/log.h"

#define BYZ_EV_COMP "byz"
#define BYZ_EV_OUT_MAX (256u * 1024 * 1024)
#define BYZ_EV_REPLAY_MAX 64u
#define BYZ_EV_HOLD_MAX 64u
#define BYZ_EV_FORGE_AHEAD_MAX 3u /* forged seqs just beyond the real stream */
#define BYZ_EV_KINDS_MAX 16u      /* distinct action names counted for the log */
#define BYZ_EV_LOG_KIND 5u        /* the first actions of each kind are logged */
#define BYZ_EV_CHUNK_MAX 32u      /* events per DELIVER once cut (forge, replay, reorder) */

TRONE_MUST_CHECK int brk_events_message_honest(struct brk_events *e, const struct brk_table *table,
                                               uint64_t now_us, uint64_t conn_id,
                                               const uint8_t key[TRONE_KEY_LEN],
                                               const uint8_t *data, size_t size,
                                               const struct brk_events_out **out);
void brk_events_flush_honest(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                             const struct brk_events_out **out);

static const char *const byz_ev_mode_names[] = {"honest",     "ev-alter", "ev-forge",  "ev-replay",
                                                "ev-reorder", "ev-drop",  "ev-ack-lie"};
_Static_assert(sizeof(byz_ev_mode_names) / sizeof(byz_ev_mode_names[0]) == BYZ_EV_MODES,
               "one name per event-path mode");

/* A stored message: a DELIVER to replay, or one held back to be sent after a later one. */
struct byz_ev_stored {
    uint64_t conn_id; /* the connection it was meant for (only compared, never used alone) */
    uint8_t *data;    /* malloc'd copy, NULL if the entry is empty */
    size_t size;
};

struct byz_ev {
    bool started;
    enum byz_ev_mode mode;
    uint64_t rng;
    uint64_t actions;                    /* Byzantine actions taken, for the log */
    const char *kinds[BYZ_EV_KINDS_MAX]; /* action names seen, and how often */
    uint64_t kind_counts[BYZ_EV_KINDS_MAX];
    uint64_t calls;
    struct buf data; /* bytes of the rewritten output */
    struct brk_events_send *sends;
    size_t *offsets;
    size_t send_count;
    size_t send_capacity;
    struct brk_events_out out;
    struct buf scratch;
    struct chan_event events[CHAN_EVENTS_PER_MSG_MAX];
    struct byz_ev_stored replay[BYZ_EV_REPLAY_MAX];
    uint32_t replay_count;
    struct byz_ev_stored held[BYZ_EV_HOLD_MAX];
    uint8_t own_pk[TRONE_KEY_LEN]; /* ev-forge: a key of its own, for well-signed forgeries */
    uint8_t own_sk[TRONE_SECRET_KEY_LEN];
    uint64_t own_seq;
    uint64_t now_us;   /* of the flush being rewritten */
    uint64_t turn;     /* cycles through the variants of a mode, so each shows up early */
    struct buf chunks; /* a DELIVER cut into smaller ones (byz_ev_split) */
    size_t chunk_offsets[CHAN_EVENTS_PER_MSG_MAX + 1];
};

static struct byz_ev byz_ev_state;

/* ---- Helpers ------------------------------------------------------------------------------ */

static uint64_t byz_ev_rand(struct byz_ev *b)
{
    uint64_t z = (b->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint32_t byz_ev_below(struct byz_ev *b, uint32_t bound)
{
    TRONE_ASSERT(bound > 0);
    return (uint32_t)(byz_ev_rand(b) % bound);
}

/* Logs one action: the first BYZ_EV_LOG_KIND of each kind (what), then every 1000th action
 * (the counts are in every line). what is a string literal. */
static void byz_ev_log(struct byz_ev *b, const char *what, const char *tag, uint64_t seq)
{
    b->actions++;
    uint64_t *kind_count = NULL;
    for (uint32_t i = 0; i < BYZ_EV_KINDS_MAX && kind_count == NULL; i++) {
        if (b->kinds[i] == NULL) {
            b->kinds[i] = what;
        }
        if (strcmp(b->kinds[i], what) == 0) {
            kind_count = &b->kind_counts[i];
        }
    }
    uint64_t count = kind_count != NULL ? ++*kind_count : 0;
    if (count > BYZ_EV_LOG_KIND && b->actions % 1000 != 0) {
        return;
    }
    log_info(BYZ_EV_COMP,
             "msg=\"byzantine event action\" mode=%s action=%s tag=%s seq=%llu count=%llu "
             "actions=%llu",
             byz_ev_mode_names[b->mode], what, tag, (unsigned long long)seq,
             (unsigned long long)count, (unsigned long long)b->actions);
}

static enum byz_ev_mode byz_ev_mode_parse(const char *text)
{
    for (size_t i = 1; text != NULL && i < BYZ_EV_MODES; i++) {
        if (strcmp(text, byz_ev_mode_names[i]) == 0) {
            return (enum byz_ev_mode)i;
        }
    }
    if (text != NULL && strncmp(text, BYZ_EV_PREFIX, strlen(BYZ_EV_PREFIX)) == 0) {
        log_write(LOG_FATAL, BYZ_EV_COMP,
                  "msg=\"unknown TRONE_BYZ mode\" value=%s "
                  "want=ev-alter|ev-forge|ev-replay|ev-reorder|ev-drop|ev-ack-lie",
                  text);
        exit(2);
    }
    return BYZ_EV_HONEST; /* unset, or one of the agreement modes (byz_step.c checks them) */
}

static void byz_ev_start(struct byz_ev *b)
{
    b->mode = byz_ev_mode_parse(getenv("TRONE_BYZ"));
    const char *seed = getenv("TRONE_BYZ_SEED");
    if (seed != NULL && seed[0] != '\0') {
        b->rng = strtoull(seed, NULL, 10) ^ UINT64_C(0x5eed);
    } else {
        randombytes_buf(&b->rng, sizeof(b->rng));
    }
    crypto_sign_keypair(b->own_pk, b->own_sk);
    buf_init(&b->data, BYZ_EV_OUT_MAX);
    buf_init(&b->scratch, BYZ_EV_OUT_MAX);
    buf_init(&b->chunks, BYZ_EV_OUT_MAX);
    b->started = true;
    if (b->mode != BYZ_EV_HONEST) {
        log_info(BYZ_EV_COMP, "msg=\"TEST-ONLY byzantine event path\" mode=%s seed=%llu",
                 byz_ev_mode_names[b->mode], (unsigned long long)b->rng);
    }
}

/* Starts a rewritten output. */
static void byz_ev_out_begin(struct byz_ev *b, const struct brk_events_out *honest)
{
    buf_reset(&b->data);
    b->send_count = 0;
    b->out = *honest;
    b->calls++;
}

/* Appends one message to the rewritten output (dropped if memory runs out: the replica is
 * Byzantine anyway). */
static void byz_ev_emit(struct byz_ev *b, uint64_t conn_id, const uint8_t *data, size_t size)
{
    if (size == 0) {
        return;
    }
    if (b->send_count == b->send_capacity) {
        size_t capacity = b->send_capacity == 0 ? 256 : b->send_capacity * 2;
        struct brk_events_send *sends = realloc(b->sends, capacity * sizeof(*sends));
        if (sends == NULL) {
            return;
        }
        b->sends = sends;
        size_t *offsets = realloc(b->offsets, capacity * sizeof(*offsets));
        if (offsets == NULL) {
            return;
        }
        b->offsets = offsets;
        b->send_capacity = capacity;
    }
    size_t start = b->data.used;
    buf_put_bytes(&b->data, data, size);
    if (b->data.error != 0) {
        b->data.used = start;
        b->data.error = 0;
        return;
    }
    b->sends[b->send_count].conn_id = conn_id;
    b->sends[b->send_count].size = size;
    b->offsets[b->send_count] = start;
    b->send_count++;
}

static const struct brk_events_out *byz_ev_out_end(struct byz_ev *b)
{
    for (size_t i = 0; i < b->send_count; i++) {
        b->sends[i].data = b->data.data + b->offsets[i];
    }
    b->out.send_count = b->send_count;
    b->out.sends = b->sends;
    return &b->out;
}

static bool byz_ev_is(const struct brk_events_send *s, enum chan_msg_type type)
{
    return s->size > 0 && s->data[0] == (uint8_t)type;
}

/* Decodes a DELIVER (or a total-order channel's DELIVER_TOTAL, whose events sit at consecutive
 * positions: swapping two moves them) into m and b->events; false if it is neither. */
static bool byz_ev_decode(struct byz_ev *b, const uint8_t *data, size_t size, struct chan_msg *m)
{
    struct buf_reader r;
    if (chan_msg_read_header(&r, data, size, m) != 0 ||
        (m->type != CHAN_MSG_DELIVER && m->type != CHAN_MSG_DELIVER_TOTAL) ||
        m->event_count == 0 || m->event_count > CHAN_EVENTS_PER_MSG_MAX) {
        return false;
    }
    for (uint32_t i = 0; i < m->event_count; i++) {
        chan_msg_read_event(&r, &b->events[i]);
    }
    return r.error == 0;
}

/* Encodes a DELIVER of m's header and events[0, count) into b->scratch (reset first). */
static void byz_ev_encode(struct byz_ev *b, const struct chan_msg *m,
                          const struct chan_event *events, uint32_t count)
{
    buf_reset(&b->scratch);
    chan_msg_put_header(&b->scratch, m);
    for (uint32_t i = 0; i < count; i++) {
        chan_msg_put_event(&b->scratch, &events[i]);
    }
    chan_msg_events_end(&b->scratch, 0, count);
}

static void byz_ev_emit_scratch(struct byz_ev *b, uint64_t conn_id)
{
    if (b->scratch.error == 0) {
        byz_ev_emit(b, conn_id, b->scratch.data, b->scratch.used);
    }
}

/* Frees and fills one stored entry with a copy of s. */
static void byz_ev_store(struct byz_ev_stored *slot, const struct brk_events_send *s)
{
    uint8_t *copy = malloc(s->size);
    if (copy == NULL) {
        return;
    }
    memcpy(copy, s->data, s->size);
    free(slot->data);
    slot->data = copy;
    slot->size = s->size;
    slot->conn_id = s->conn_id;
}

/* ---- ev-alter: bytes flipped in payloads, seq or time changed in some events -------------- */

static void byz_ev_alter(struct byz_ev *b, const struct brk_events_send *s)
{
    struct chan_msg m;
    if (!byz_ev_decode(b, s->data, s->size, &m)) {
        byz_ev_emit(b, s->conn_id, s->data, s->size);
        return;
    }
    buf_reset(&b->scratch);
    chan_msg_put_header(&b->scratch, &m);
    for (uint32_t i = 0; i < m.event_count; i++) {
        struct chan_event ev = b->events[i];
        uint32_t how = byz_ev_below(b, 12);
        if (how == 1 && ev.seq > 1) {
            /* Another seq's slot, this content. */
            ev.seq = byz_ev_below(b, 2) == 0 ? ev.seq + 1 : ev.seq - 1;
            byz_ev_log(b, "alter-seq", m.tag, ev.seq);
        } else if (how == 2) {
            ev.time_us ^= UINT64_C(1) << byz_ev_below(b, 40);
            byz_ev_log(b, "alter-time", m.tag, ev.seq);
        } else if (how == 3 && ev.auth_size > 0) {
            byz_ev_log(b, "alter-auth", m.tag, ev.seq);
        }
        size_t before = b->scratch.used;
        chan_msg_put_event(&b->scratch, &ev);
        if (b->scratch.error != 0) {
            break;
        }
        bool flip_payload = how >= 4 && how < 8 && ev.payload_size > 0;
        if (flip_payload) {
            /* The payload is the last bytes of the event just written. */
            size_t at = b->scratch.used - 1 - byz_ev_below(b, ev.payload_size);
            uint8_t bit = (uint8_t)(1u << byz_ev_below(b, 7)); /* stays ASCII for text */
            b->scratch.data[at] ^= bit == 0x20 ? 0x01 : bit;   /* not only letter case */
            byz_ev_log(b, "alter-payload", m.tag, ev.seq);
        } else if (how == 3 && ev.auth_size > 0) {
            size_t auth_at = before + 8u * 3 + 2u; /* epoch, seq, time, u16 auth length */
            b->scratch.data[auth_at + byz_ev_below(b, ev.auth_size)] ^= 0x10;
        }
    }
    chan_msg_events_end(&b->scratch, 0, m.event_count);
    byz_ev_emit_scratch(b, s->conn_id);
}

/* ---- ev-forge: events nobody published, in a real publisher's name ----------------------- */

/* Events signed with a key of the replica's own, in a DELIVER that names that key as the
 * publisher: the signature verifies, but the key is no authorized publisher's. Only a
 * subscriber that knows the channel's publishers, or waits for f+1 replicas, refuses them. */
static void byz_ev_forge_own_key(struct byz_ev *b, const struct brk_events_send *s,
                                 const struct chan_msg *real)
{
    struct chan_msg m = *real;
    memcpy(m.publisher, b->own_pk, TRONE_KEY_LEN);
    char payload[48];
    uint8_t sig[CHAN_AUTH_PKS_SIZE];
    struct chan_event f;
    memset(&f, 0, sizeof(f));
    f.epoch = b->events[0].epoch;
    f.seq = ++b->own_seq;
    f.time_us = b->events[0].time_us;
    snprintf(payload, sizeof(payload), "FORGED-OWNKEY-%llu", (unsigned long long)f.seq);
    f.payload = (const uint8_t *)payload;
    f.payload_size = (uint32_t)strlen(payload);
    chan_auth_sign(sig, b->own_sk, m.tag, &f);
    f.auth = sig;
    f.auth_size = b->events[0].auth_size > 0 ? CHAN_AUTH_PKS_SIZE : 0;
    byz_ev_log(b, "forge-own-key", m.tag, f.seq);
    byz_ev_encode(b, &m, &f, 1);
    byz_ev_emit_scratch(b, s->conn_id);
    byz_ev_emit(b, s->conn_id, s->data, s->size);
}

static void byz_ev_forge(struct byz_ev *b, const struct brk_events_send *s)
{
    struct chan_msg m;
    if (!byz_ev_decode(b, s->data, s->size, &m)) {
        byz_ev_emit(b, s->conn_id, s->data, s->size);
        return;
    }
    const struct chan_event *last = &b->events[m.event_count - 1];
    uint8_t auth[CHAN_AUTH_MAX];
    char payloads[BYZ_EV_FORGE_AHEAD_MAX + 1][48];
    struct chan_event forged[BYZ_EV_FORGE_AHEAD_MAX + 1];
    uint32_t count = 1 + byz_ev_below(b, BYZ_EV_FORGE_AHEAD_MAX);
    uint32_t kind = (uint32_t)(b->turn++ % 5);
    if (kind == 4) {
        byz_ev_forge_own_key(b, s, &m);
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct chan_event *f = &forged[i];
        memset(f, 0, sizeof(*f));
        f->epoch = last->epoch;
        f->seq = last->seq + 1 + i; /* just ahead of the real stream */
        if (kind == 1) {
            f->seq = b->events[byz_ev_below(b, m.event_count)].seq; /* a real seq, new content */
        } else if (kind == 2) {
            f->epoch = last->epoch + 1 + byz_ev_below(b, 1000); /* a "restarted" publisher */
            f->seq = 1 + i;
        }
        f->time_us = last->time_us + 1 + i;
        snprintf(payloads[i], sizeof(payloads[i]), "FORGED-%llu",
                 (unsigned long long)(byz_ev_rand(b) % 1000000u));
        f->payload = (const uint8_t *)payloads[i];
        f->payload_size = (uint32_t)strlen(payloads[i]);
        /* Garbage where a PKS signature goes (or none, as SI events carry). */
        f->auth_size = last->auth_size > 0 || kind == 3 ? CHAN_AUTH_PKS_SIZE : 0;
        f->auth = auth;
        byz_ev_log(b,
                   kind == 1   ? "forge-same-seq"
                   : kind == 2 ? "forge-new-epoch"
                               : "forge-ahead",
                   m.tag, f->seq);
    }
    randombytes_buf(auth, sizeof(auth));
    byz_ev_encode(b, &m, forged, count);
    /* The forgery goes first, so it reaches the subscriber before the real copies. */
    byz_ev_emit_scratch(b, s->conn_id);
    byz_ev_emit(b, s->conn_id, s->data, s->size);
}

/* ---- ev-replay: old DELIVERs sent again later, as they were or under a new replica time --- */

/* Keeps every DELIVER until the store is full, then one in four in a random slot. */
static void byz_ev_replay_observe(struct byz_ev *b, const struct brk_events_send *s)
{
    if (b->replay_count == BYZ_EV_REPLAY_MAX && byz_ev_below(b, 4) != 0) {
        return;
    }
    uint32_t slot = b->replay_count < BYZ_EV_REPLAY_MAX ? b->replay_count++
                                                        : byz_ev_below(b, BYZ_EV_REPLAY_MAX);
    byz_ev_store(&b->replay[slot], s);
}

/* Sends one to three stored DELIVERs to connection conn_id (named by the current output). */
static void byz_ev_replay_extra(struct byz_ev *b, uint64_t conn_id, uint64_t now_us)
{
    uint32_t burst = 1 + byz_ev_below(b, 3);
    for (uint32_t i = 0; i < burst && b->replay_count > 0; i++) {
        const struct byz_ev_stored *r = &b->replay[byz_ev_below(b, b->replay_count)];
        struct chan_msg m;
        if (r->data == NULL || !byz_ev_decode(b, r->data, r->size, &m)) {
            continue;
        }
        if (b->turn++ % 2 == 0) {
            byz_ev_log(b, "replay", m.tag, b->events[0].seq);
            byz_ev_emit(b, conn_id, r->data, r->size);
            continue;
        }
        m.replica_time_us = now_us; /* old events under a new replica time */
        byz_ev_encode(b, &m, b->events, m.event_count);
        byz_ev_log(b, "replay-restamped", m.tag, b->events[0].seq);
        byz_ev_emit_scratch(b, conn_id);
    }
}

/* ---- ev-reorder: events swapped inside a DELIVER, DELIVERs held back past later ones ------ */

static void byz_ev_reorder_inside(struct byz_ev *b, const struct brk_events_send *s)
{
    struct chan_msg m;
    if (!byz_ev_decode(b, s->data, s->size, &m) || m.event_count < 2) {
        byz_ev_emit(b, s->conn_id, s->data, s->size);
        return;
    }
    if (b->turn++ % 2 == 0) {
        for (uint32_t i = 0; i < m.event_count / 2; i++) { /* reversed */
            struct chan_event t = b->events[i];
            b->events[i] = b->events[m.event_count - 1 - i];
            b->events[m.event_count - 1 - i] = t;
        }
        byz_ev_log(b, "reverse", m.tag, b->events[0].seq);
    } else {
        for (uint32_t i = 0; i < m.event_count; i++) { /* shuffled */
            uint32_t j = i + byz_ev_below(b, m.event_count - i);
            struct chan_event t = b->events[i];
            b->events[i] = b->events[j];
            b->events[j] = t;
        }
        byz_ev_log(b, "shuffle", m.tag, b->events[0].seq);
    }
    byz_ev_encode(b, &m, b->events, m.event_count);
    byz_ev_emit_scratch(b, s->conn_id);
}

static void byz_ev_reorder(struct byz_ev *b, const struct brk_events_send *s)
{
    struct byz_ev_stored *slot = NULL;
    for (uint32_t i = 0; i < BYZ_EV_HOLD_MAX; i++) {
        if (b->held[i].data != NULL && b->held[i].conn_id == s->conn_id) {
            slot = &b->held[i];
            break;
        }
    }
    if (slot != NULL) {
        /* A DELIVER held back earlier goes after this later one. */
        byz_ev_reorder_inside(b, s);
        byz_ev_log(b, "release-held", "-", 0);
        byz_ev_emit(b, slot->conn_id, slot->data, slot->size);
        free(slot->data);
        memset(slot, 0, sizeof(*slot));
        return;
    }
    if (byz_ev_below(b, 2) == 0) {
        struct byz_ev_stored *free_slot = &b->held[byz_ev_below(b, BYZ_EV_HOLD_MAX)];
        byz_ev_store(free_slot, s); /* overwrites (drops) whatever was held there */
        byz_ev_log(b, "hold", "-", 0);
        return;
    }
    byz_ev_reorder_inside(b, s);
}

/* ---- Flush and message ---------------------------------------------------------------------- */

/* The filter of one message. */
static void byz_ev_filter(struct byz_ev *b, const struct brk_events_send *s)
{
    bool deliver = byz_ev_is(s, CHAN_MSG_DELIVER) || byz_ev_is(s, CHAN_MSG_DELIVER_TOTAL);
    switch (b->mode) {
    case BYZ_EV_ALTER:
        deliver ? byz_ev_alter(b, s) : byz_ev_emit(b, s->conn_id, s->data, s->size);
        return;
    case BYZ_EV_FORGE:
        deliver ? byz_ev_forge(b, s) : byz_ev_emit(b, s->conn_id, s->data, s->size);
        return;
    case BYZ_EV_REPLAY:
        byz_ev_emit(b, s->conn_id, s->data, s->size);
        if (deliver) {
            byz_ev_replay_observe(b, s);
            if (byz_ev_below(b, 2) == 0) {
                byz_ev_replay_extra(b, s->conn_id, b->now_us); /* alive: just named */
            }
        }
        return;
    case BYZ_EV_REORDER:
        deliver ? byz_ev_reorder(b, s) : byz_ev_emit(b, s->conn_id, s->data, s->size);
        return;
    case BYZ_EV_DROP:
    case BYZ_EV_ACK_LIE:
        if (deliver || byz_ev_is(s, CHAN_MSG_GAP)) {
            byz_ev_log(b, "drop", "-", 0);
            return;
        }
        byz_ev_emit(b, s->conn_id, s->data, s->size);
        return;
    case BYZ_EV_HONEST:
    default:
        byz_ev_emit(b, s->conn_id, s->data, s->size);
        return;
    }
}

/* One message of the honest output. A large DELIVER (a burst of events becomes one per
 * subscriber) is first cut into DELIVERs of 1..BYZ_EV_CHUNK_MAX events, which an honest replica
 * could send as well, so that forge, replay and reorder act many times per burst, not once. */
static void byz_ev_flush_one(struct byz_ev *b, const struct brk_events_send *s)
{
    struct chan_msg m;
    bool cut = b->mode == BYZ_EV_FORGE || b->mode == BYZ_EV_REPLAY || b->mode == BYZ_EV_REORDER;
    if (!cut || !byz_ev_decode(b, s->data, s->size, &m) ||
        m.event_count <= BYZ_EV_CHUNK_MAX) {
        byz_ev_filter(b, s);
        return;
    }
    buf_reset(&b->chunks);
    uint32_t chunk_count = 0;
    for (uint32_t first = 0; first < m.event_count;) {
        uint32_t count = 1 + byz_ev_below(b, BYZ_EV_CHUNK_MAX);
        count = count < m.event_count - first ? count : m.event_count - first;
        b->chunk_offsets[chunk_count++] = b->chunks.used;
        size_t start = b->chunks.used;
        struct chan_msg head = m;
        head.position = m.type == CHAN_MSG_DELIVER_TOTAL ? m.position + first : 0;
        chan_msg_put_header(&b->chunks, &head);
        for (uint32_t i = 0; i < count; i++) {
            chan_msg_put_event(&b->chunks, &b->events[first + i]);
        }
        chan_msg_events_end(&b->chunks, start, count);
        first += count;
    }
    if (b->chunks.error != 0) {
        byz_ev_filter(b, s);
        return;
    }
    b->chunk_offsets[chunk_count] = b->chunks.used;
    for (uint32_t k = 0; k < chunk_count; k++) {
        struct brk_events_send chunk = {
            .conn_id = s->conn_id,
            .data = b->chunks.data + b->chunk_offsets[k],
            .size = b->chunk_offsets[k + 1] - b->chunk_offsets[k],
        };
        byz_ev_filter(b, &chunk);
    }
}

void brk_events_flush(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                      const struct brk_events_out **out)
{
    struct byz_ev *b = &byz_ev_state;
    if (!b->started) {
        byz_ev_start(b);
    }
    const struct brk_events_out *honest = NULL;
    brk_events_flush_honest(e, table, now_us, &honest);
    if (b->mode == BYZ_EV_HONEST) {
        *out = honest;
        return;
    }
    byz_ev_out_begin(b, honest);
    b->now_us = now_us;
    for (size_t i = 0; i < honest->send_count; i++) {
        byz_ev_flush_one(b, &honest->sends[i]);
    }
    *out = byz_ev_out_end(b);
}

/* ev-ack-lie: about one PUBLISH in four is swallowed (never given to the core, so never
 * forwarded) and answered with an ACK of its last event, as if it had been accepted. The
 * publisher then has no reason to resend it to this replica. */
static bool byz_ev_ack_lie(struct byz_ev *b, uint64_t conn_id, const uint8_t *data, size_t size)
{
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_check(data, size) != 0 || chan_msg_read_header(&r, data, size, &m) != 0 ||
        m.type != CHAN_MSG_PUBLISH || m.event_count == 0 || byz_ev_below(b, 4) != 0) {
        return false;
    }
    struct chan_event ev;
    for (uint32_t i = 0; i < m.event_count; i++) {
        chan_msg_read_event(&r, &ev);
    }
    if (r.error != 0) {
        return false;
    }
    struct chan_msg ack;
    memset(&ack, 0, sizeof(ack));
    ack.type = CHAN_MSG_ACK;
    memcpy(ack.tag, m.tag, sizeof(ack.tag));
    ack.epoch = ev.epoch;
    ack.seq = ev.seq;
    buf_reset(&b->scratch);
    chan_msg_put_header(&b->scratch, &ack);
    struct brk_events_out empty;
    memset(&empty, 0, sizeof(empty));
    empty.type = CHAN_MSG_PUBLISH;
    memcpy(empty.tag, m.tag, sizeof(empty.tag));
    byz_ev_out_begin(b, &empty);
    byz_ev_emit_scratch(b, conn_id);
    byz_ev_log(b, "ack-unforwarded", m.tag, ev.seq);
    return true;
}

int brk_events_message(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                       uint64_t conn_id, const uint8_t key[TRONE_KEY_LEN], const uint8_t *data,
                       size_t size, const struct brk_events_out **out)
{
    struct byz_ev *b = &byz_ev_state;
    if (!b->started) {
        byz_ev_start(b);
    }
    if (b->mode == BYZ_EV_ACK_LIE && byz_ev_ack_lie(b, conn_id, data, size)) {
        *out = byz_ev_out_end(b);
        return 0;
    }
    return brk_events_message_honest(e, table, now_us, conn_id, key, data, size, out);
}

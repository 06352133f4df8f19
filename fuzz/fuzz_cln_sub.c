/* fuzz_cln_sub.c: arbitrary DELIVER, GAP and REPLAY messages from arbitrary replicas, and
 * ticks, into a subscriber core with small bounds. Records: u8 op | u8 replica | u16 length |
 * bytes. op 0: raw message bytes; op 1: a well-formed DELIVER built from the bytes (so voting,
 * PKS, windows and epochs are reached; DELIVER_TOTAL on the total-order channel); op 2: tick;
 * op 3: a well-formed REPLAY (a stream's first position, or END) on the replayed channels
 * (alpha from 0, beta from 3, omega from 0); op 4: the replica goes away, or is asked again.
 * Built DELIVERs go through cln_sub_receive_checked with the checks a runtime would make
 * (cln_sub_verify_wanted, then a truthful chan_auth_verify of each wanted event); raw bytes
 * must be refused by cln_sub_verify_wanted exactly when cln_sub_receive refuses them.
 * Checks that no stream delivers a seq (the total-order channel: a position) twice or out of
 * order, and that every held byte is released at close. */
#include "../src/client/cln_sub.c"
#include "../src/client/cln_sub_stream.c"

#include <sodium.h>
#include <stdlib.h>

#include "chan/chan_auth.h"

#define FUZZ_SEEN_MAX 64u

#define FUZZ_CHANNELS 5u
#define FUZZ_TOTAL 4u /* the total-order channel */
static const char *const fuzz_tags[FUZZ_CHANNELS] = {"alpha", "beta", "gamma", "delta", "omega"};
static const char *const fuzz_classes[FUZZ_CHANNELS] = {
    "cft,durable", "bft,durable", "bft,pks", "cft,pks,urgency=7", "bft,total,durable"};

struct fuzz_seen {
    uint32_t channel_idx;
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t epoch;
    uint64_t seq;
};

struct fuzz_state {
    struct cln_sub sub;
    uint8_t pk[2][TRONE_KEY_LEN];
    uint8_t sk[2][TRONE_SECRET_KEY_LEN];
    struct fuzz_seen seen[FUZZ_SEEN_MAX];
    uint32_t seen_count;
    uint64_t last_position; /* the total-order channel: positions strictly increase */
    uint64_t now;
};

static void fuzz_check(struct fuzz_state *fz, const struct cln_sub_output *out)
{
    for (uint32_t i = 0; i < out->item_count; i++) {
        const struct cln_sub_item *it = &out->items[i];
        if (it->kind != CLN_SUB_EVENT && it->kind != CLN_SUB_GAP) {
            continue;
        }
        if (it->channel_idx == FUZZ_TOTAL) {
            uint64_t first = it->kind == CLN_SUB_EVENT ? it->position : it->seq;
            if (first <= fz->last_position || (it->kind == CLN_SUB_EVENT && first == 0)) {
                abort(); /* a position delivered twice or out of order */
            }
            fz->last_position = it->kind == CLN_SUB_EVENT ? first : first + it->count - 1;
            continue;
        }
        uint64_t last = it->kind == CLN_SUB_EVENT ? it->seq : it->seq + it->count - 1;
        volatile uint8_t sink = it->payload_size > 0 ? it->payload[it->payload_size - 1] : 0;
        (void)sink;
        struct fuzz_seen *s = NULL;
        for (uint32_t k = 0; k < fz->seen_count; k++) {
            struct fuzz_seen *c = &fz->seen[k];
            if (c->channel_idx == it->channel_idx && c->epoch == it->epoch &&
                memcmp(c->publisher, it->publisher, TRONE_KEY_LEN) == 0) {
                s = c;
            }
        }
        if (s != NULL && it->seq <= s->seq) {
            abort(); /* delivered twice or out of order */
        }
        if (s == NULL && fz->seen_count < FUZZ_SEEN_MAX) {
            s = &fz->seen[fz->seen_count++];
            s->channel_idx = it->channel_idx;
            memcpy(s->publisher, it->publisher, TRONE_KEY_LEN);
            s->epoch = it->epoch;
        }
        if (s != NULL) {
            s->seq = last;
        }
    }
}

/* bytes: u8 tag | u8 publisher | u8 signer | u8 epoch | u8 seq | u8 count | payload... */
static void fuzz_build(struct fuzz_state *fz, struct buf *b, const uint8_t *p, size_t size)
{
    if (size < 6) {
        return;
    }
    uint32_t ch = p[0] % FUZZ_CHANNELS;
    struct chan_msg m = {.type = ch == FUZZ_TOTAL ? CHAN_MSG_DELIVER_TOTAL : CHAN_MSG_DELIVER,
                         .event_count = 1u + p[5] % 4u,
                         .position = 1u + p[4] % 40u};
    strcpy(m.tag, fuzz_tags[ch]);
    memcpy(m.publisher, fz->pk[p[1] % 2], TRONE_KEY_LEN);
    chan_msg_put_header(b, &m);
    for (uint32_t i = 0; i < m.event_count; i++) {
        uint8_t sig[CHAN_AUTH_PKS_SIZE];
        struct chan_event e = {.epoch = (1u + p[3] % 3u) * 1000000u, .seq = 1u + (p[4] + i) % 40u,
                               .time_us = 7, .payload = p + 6,
                               .payload_size = (uint32_t)(size - 6)};
        if (p[2] % 3 != 2) {
            chan_auth_sign(sig, fz->sk[p[2] % 3], m.tag, &e);
            e.auth = sig;
            e.auth_size = sizeof(sig);
        }
        chan_msg_put_event(b, &e);
    }
}

/* What the runtime would do (rt_events, rt_verify): checks[i] for each wanted event. */
static void fuzz_checks(const struct fuzz_state *fz, const struct buf *b,
                        const uint8_t wanted[CHAN_EVENTS_PER_MSG_MAX],
                        uint8_t checks[CHAN_EVENTS_PER_MSG_MAX], uint32_t count)
{
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_read_header(&r, b->data, b->used, &m) != 0 || m.event_count != count) {
        abort(); /* cln_sub_verify_wanted accepted it */
    }
    for (uint32_t i = 0; i < count; i++) {
        struct chan_event e;
        chan_msg_read_event(&r, &e);
        checks[i] = wanted[i] == 0                                  ? CLN_SUB_CHECK_NONE
                    : chan_auth_verify(m.tag, m.publisher, &e) == 0 ? CLN_SUB_CHECK_VALID
                                                                    : CLN_SUB_CHECK_INVALID;
    }
    (void)fz;
}

/* bytes: u8 tag | u8 publisher | u8 epoch | u8 first (0: END) */
static void fuzz_build_replay(struct fuzz_state *fz, struct buf *b, const uint8_t *p,
                              size_t size)
{
    if (size < 4) {
        return;
    }
    static const uint32_t replayed[3] = {0, 1, FUZZ_TOTAL};
    uint32_t ch = replayed[p[0] % 3];
    struct chan_msg m = {.type = CHAN_MSG_REPLAY};
    strcpy(m.tag, fuzz_tags[ch]);
    if (p[3] % 41 == 0) {
        m.flags = CHAN_REPLAY_END;
    } else {
        if (ch != FUZZ_TOTAL) {
            memcpy(m.publisher, fz->pk[p[1] % 2], TRONE_KEY_LEN);
            m.epoch = (1u + p[2] % 3u) * 1000000u;
        }
        m.first = p[3] % 41;
    }
    chan_msg_put_header(b, &m);
}

static void fuzz_setup(struct fuzz_state *fz)
{
    memset(fz, 0, sizeof(*fz));
    for (uint8_t i = 0; i < 2; i++) {
        uint8_t seed[32];
        memset(seed, i + 1, sizeof(seed));
        (void)crypto_sign_seed_keypair(fz->pk[i], fz->sk[i], seed);
    }
    /* publishers_max above the 5 x 2 (channel, publisher) pairs the input can name: a floor
     * forgotten when the table is full may let an old seq be replayed, a documented bound
     * (cln_sub.h) that the order check below would report. */
    struct cln_sub_config cfg = {.n = 4, .f = 1, .streams_max = 4, .publishers_max = 16,
                                 .window = 8, .held_bytes_max = 4096, .gap_wait_us = 100};
    if (cln_sub_init(&fz->sub, &cfg) != 0) {
        abort();
    }
    for (uint32_t i = 0; i < FUZZ_CHANNELS; i++) {
        struct brk_class cls;
        if (brk_class_parse(&cls, fuzz_classes[i], NULL, 0) != 0 ||
            cln_sub_channel_add(&fz->sub, fuzz_tags[i], &cls,
                                i == 2 ? (const uint8_t(*)[TRONE_KEY_LEN])fz->pk[0] : NULL,
                                i == 2 ? 1 : 0) != (int)i) {
            abort();
        }
    }
    if (cln_sub_replay(&fz->sub, 0, CHAN_START_FROM, 0) != 0 ||
        cln_sub_replay(&fz->sub, 1, CHAN_START_FROM, 3) != 0 ||
        cln_sub_replay(&fz->sub, FUZZ_TOTAL, CHAN_START_FROM, 0) != 0) {
        abort();
    }
    for (uint32_t r = 0; r < 4; r++) {
        cln_sub_replay_expect(&fz->sub, 0, r);
        cln_sub_replay_expect(&fz->sub, 1, r);
        cln_sub_replay_expect(&fz->sub, FUZZ_TOTAL, r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_state fz;
    if (sodium_init() < 0) {
        abort();
    }
    fuzz_setup(&fz);
    struct buf b = {0};
    struct cln_sub_output out;
    for (size_t at = 0; size - at >= 4;) {
        uint8_t op = data[at] % 5;
        uint32_t replica = data[at + 1] % 4u;
        size_t length = (size_t)data[at + 2] | (size_t)data[at + 3] << 8;
        at += 4;
        length = length < size - at ? length : size - at;
        fz.now += data[at - 3] % 64u;
        buf_reset(&b);
        int rc = 0;
        if (op == 4) {
            if (length > 0 && data[at] % 2 == 0) {
                cln_sub_replay_expect(&fz.sub, data[at] % 2 == 0 ? 0 : 1, replica);
                rc = TRONE_EBADMSG; /* no output to check */
            } else {
                rc = cln_sub_replica_down(&fz.sub, replica, UINT32_MAX, fz.now, &out);
            }
        } else if (op == 3) {
            fuzz_build_replay(&fz, &b, data + at, length);
            rc = b.used > 0 ? cln_sub_receive(&fz.sub, replica, b.data, b.used, fz.now, &out)
                            : TRONE_EBADMSG;
        } else if (op == 2) {
            rc = cln_sub_tick(&fz.sub, fz.now, &out);
        } else if (op == 1) {
            static uint8_t wanted[CHAN_EVENTS_PER_MSG_MAX], checks[CHAN_EVENTS_PER_MSG_MAX];
            fuzz_build(&fz, &b, data + at, length);
            int count = b.used > 0 ? cln_sub_verify_wanted(&fz.sub, b.data, b.used, wanted)
                                   : TRONE_EBADMSG;
            if (count > 0) {
                fuzz_checks(&fz, &b, wanted, checks, (uint32_t)count);
            }
            rc = count >= 0 ? cln_sub_receive_checked(&fz.sub, replica, b.data, b.used, checks,
                                                      (uint32_t)count, fz.now, &out)
                            : TRONE_EBADMSG;
        } else {
            static uint8_t wanted[CHAN_EVENTS_PER_MSG_MAX];
            int count = cln_sub_verify_wanted(&fz.sub, data + at, length, wanted);
            rc = cln_sub_receive(&fz.sub, replica, data + at, length, fz.now, &out);
            if ((count < 0) != (rc == TRONE_EBADMSG)) {
                abort(); /* the two must agree on what is malformed */
            }
        }
        at += length;
        if (rc == 0) {
            fuzz_check(&fz, &out);
        }
    }
    buf_close(&b);
    cln_sub_close(&fz.sub);
    return 0;
}

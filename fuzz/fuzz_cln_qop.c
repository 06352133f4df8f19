/* fuzz_cln_qop.c: the subscriber's HA/PKE core (cln_qop.c) fed decided events made from
 * arbitrary bytes, mixed with valid events of a real publisher core (so keys are learnt, MACs
 * checked, payloads decrypted and held events released), re-keying and ticks, with small
 * bounds. Records: u8 op | u8 arg | u16 length | bytes.
 *   op 0: a raw event (auth and envelope from the bytes) of stream arg
 *   op 1: the publisher publishes the bytes; its events are fed (some dropped per arg bits)
 *   op 2: re-key the publisher for a recipient set chosen by arg (with or without us)
 *   op 3: tick, advancing time by arg milliseconds
 * Checks: no crash or assertion; every item stays within its stream's order (seq of an event
 * or a gap never goes back); every delivered payload of the publisher's stream is one it
 * published; held bytes are released at close. */
#include "../src/client/cln_qop.c"

#include <stdlib.h>

#include "client/cln_pub.h"

#define FUZZ_TAG "fuzz.qop"

struct fuzz_state {
    struct cln_qop qop;
    struct cln_pub pub;
    uint8_t me_pk[TRONE_KEY_LEN];
    uint8_t me_sk[TRONE_SECRET_KEY_LEN];
    uint8_t other_pk[TRONE_KEY_LEN];
    uint8_t pub_pk[TRONE_KEY_LEN];
    uint64_t now_us;
    uint64_t last_seq[4]; /* per fuzzed stream: highest seq seen in the output */
    uint64_t pub_last;    /* the publisher's stream */
    uint64_t next_seq[4]; /* per fuzzed stream: last seq fed */
};

static void fuzz_keypair(uint8_t *pk, uint8_t *sk, uint8_t fill)
{
    uint8_t seed[32];
    memset(seed, fill, sizeof(seed));
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0) {
        abort();
    }
}

static void fuzz_check_out(struct fuzz_state *fz, const struct cln_sub_output *out)
{
    for (uint32_t i = 0; i < out->item_count; i++) {
        const struct cln_sub_item *it = &out->items[i];
        if (it->kind != CLN_SUB_EVENT && it->kind != CLN_SUB_GAP) {
            abort(); /* the fuzzer feeds events only */
        }
        uint64_t last = it->kind == CLN_SUB_EVENT ? it->seq : it->seq + it->count - 1;
        uint64_t *mark = memcmp(it->publisher, fz->pub_pk, TRONE_KEY_LEN) == 0
                             ? &fz->pub_last
                             : &fz->last_seq[it->epoch % 4];
        if (it->seq <= *mark && *mark != 0) {
            abort(); /* out of order or twice */
        }
        *mark = last;
        if (it->kind == CLN_SUB_EVENT && it->payload_size > 0) {
            volatile uint8_t sink = it->payload[it->payload_size - 1];
            (void)sink;
        }
    }
}

static void fuzz_feed(struct fuzz_state *fz, const struct cln_sub_item *item)
{
    struct cln_sub_output in = {.item_count = 1, .items = item, .deadline_us = UINT64_MAX};
    struct cln_sub_output out;
    if (cln_qop_filter(&fz->qop, &in, fz->now_us, &out) == 0) {
        fuzz_check_out(fz, &out);
    }
}

/* A raw event of one of four fuzzed streams: seqs increase per stream as cln_sub would make
 * them (the fuzzer cannot make this core see a seq twice). */
static void fuzz_raw(struct fuzz_state *fz, uint8_t arg, const uint8_t *data, size_t size)
{
    uint64_t *next = fz->next_seq;
    uint32_t stream = arg % 4;
    uint16_t auth_size = size == 0 ? 0
                                   : (uint16_t)(data[0] % 3 == 0   ? 0
                                                : data[0] % 3 == 1 ? 16
                                                                   : 64);
    if (size < 1u + auth_size) {
        return;
    }
    struct cln_sub_item item;
    memset(&item, 0, sizeof(item));
    item.kind = CLN_SUB_EVENT;
    item.channel_idx = 0;
    item.tag = FUZZ_TAG;
    memcpy(item.publisher, fz->other_pk, TRONE_KEY_LEN);
    item.publisher[0] = (uint8_t)stream;
    item.epoch = stream;
    item.seq = ++next[stream] + (arg >> 4);
    next[stream] = item.seq;
    item.auth = auth_size > 0 ? data + 1 : NULL;
    item.auth_size = auth_size;
    item.payload = data + 1 + auth_size;
    item.payload_size = (uint32_t)(size - 1 - auth_size);
    fuzz_feed(fz, &item);
}

/* Publishes the bytes and feeds the publisher's events (PUBLISH of replica 0, dropping the
 * events whose bit in arg is set). */
static void fuzz_publish(struct fuzz_state *fz, uint8_t arg, const uint8_t *data, size_t size)
{
    if (cln_pub_publish(&fz->pub, 0, data, (uint32_t)size, fz->now_us, fz->now_us) <= 0) {
        return;
    }
    const uint8_t *msg;
    size_t msg_size;
    if (cln_pub_next_message(&fz->pub, 0, fz->now_us, &msg, &msg_size) != 1) {
        return;
    }
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_read_header(&r, msg, msg_size, &m) != 0) {
        abort();
    }
    for (uint32_t i = 0; i < m.event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(&r, &e);
        if (r.error != 0) {
            abort();
        }
        if ((arg >> (e.seq % 8)) & 1u) {
            continue;
        }
        struct cln_sub_item item;
        memset(&item, 0, sizeof(item));
        item.kind = CLN_SUB_EVENT;
        item.channel_idx = 1;
        item.tag = FUZZ_TAG;
        memcpy(item.publisher, fz->pub_pk, TRONE_KEY_LEN);
        item.epoch = 1;
        item.seq = e.seq;
        item.time_us = e.time_us;
        item.auth = e.auth;
        item.auth_size = e.auth_size;
        item.payload = e.payload;
        item.payload_size = e.payload_size;
        fuzz_feed(fz, &item);
    }
    /* Two replicas (the CFT quorum) acknowledge everything: the publisher never fills up. */
    struct chan_msg ack = {.type = CHAN_MSG_ACK, .epoch = 1, .seq = m.event_count};
    struct cln_pub_counts counts;
    cln_pub_counts(&fz->pub, &counts);
    ack.seq = counts.published;
    memcpy(ack.tag, FUZZ_TAG, sizeof(FUZZ_TAG));
    struct buf b = {0};
    chan_msg_put_header(&b, &ack);
    for (uint32_t replica = 0; replica < 2 && b.error == 0; replica++) {
        if (cln_pub_receive(&fz->pub, replica, b.data, b.used, fz->now_us) != 0) {
            abort();
        }
    }
    buf_close(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_state fz;
    if (sodium_init() < 0) {
        abort();
    }
    memset(&fz, 0, sizeof(fz));
    fuzz_keypair(fz.me_pk, fz.me_sk, 1);
    uint8_t other_sk[TRONE_SECRET_KEY_LEN];
    fuzz_keypair(fz.other_pk, other_sk, 2);
    struct cln_qop_config qc = {
        .keys_max = 4, .held_max = 8, .held_bytes_max = 4096, .hold_us = 1000};
    memcpy(qc.secret_key, fz.me_sk, sizeof(qc.secret_key));
    if (cln_qop_init(&fz.qop, &qc) != 0) {
        abort();
    }
    if (cln_qop_channel_set(&fz.qop, 0, BRK_METHOD_HA) != 0 ||
        cln_qop_channel_set(&fz.qop, 1,
                            size > 0 && (data[0] & 1) ? BRK_METHOD_PKE : BRK_METHOD_HA) != 0) {
        abort();
    }
    struct cln_pub_config pc = {
        .n = 4, .f = 1, .epoch = 1, .unacked_events_max = 64, .unacked_bytes_max = 1u << 20};
    fuzz_keypair(pc.public_key, pc.secret_key, 3);
    memcpy(fz.pub_pk, pc.public_key, TRONE_KEY_LEN);
    memset(pc.seed, 4, sizeof(pc.seed));
    struct brk_class cls;
    brk_class_default(&cls);
    cls.method = fz.qop.methods[1];
    if (cln_pub_init(&fz.pub, &pc) != 0 || cln_pub_channel_open(&fz.pub, FUZZ_TAG, &cls) != 0) {
        abort();
    }
    cln_pub_replica_up(&fz.pub, 0, 0);
    size_t pos = 0;
    for (uint32_t n = 0; n < 256 && pos + 4 <= size; n++) {
        uint8_t op = data[pos];
        uint8_t arg = data[pos + 1];
        size_t length = (size_t)data[pos + 2] | (size_t)data[pos + 3] << 8;
        pos += 4;
        length = length < size - pos ? length : size - pos;
        const uint8_t *bytes = data + pos;
        pos += length;
        switch (op % 4) {
        case 0:
            fuzz_raw(&fz, arg, bytes, length);
            break;
        case 1:
            fuzz_publish(&fz, arg, bytes, length);
            break;
        case 2: {
            uint8_t keys[2][TRONE_KEY_LEN];
            uint32_t count = 0;
            if (arg & 1) {
                memcpy(keys[count++], fz.me_pk, TRONE_KEY_LEN);
            }
            if (arg & 2) {
                memcpy(keys[count++], fz.other_pk, TRONE_KEY_LEN);
            }
            (void)cln_pub_channel_recipients(&fz.pub, 0, keys, count, fz.now_us);
            break;
        }
        default: {
            fz.now_us += (uint64_t)arg * 1000u;
            struct cln_sub_output out;
            if (cln_qop_tick(&fz.qop, fz.now_us, &out) == 0) {
                fuzz_check_out(&fz, &out);
            }
            break;
        }
        }
    }
    cln_qop_close(&fz.qop);
    cln_pub_close(&fz.pub);
    return 0;
}

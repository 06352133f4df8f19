/* sim_equivocate.c: the equivocating leader. When a Byzantine leader proposes a batch, the
 * replicas are split in two groups: one gets the real PRE_PREPARE, the other a different batch
 * for the same (view, seq) (requests dropped, reordered, emptied, or a forged request added),
 * re-signed with the leader's own key so that it verifies. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_msg.h"
#include "smr/smr_sig.h"

#define SIM_BATCH_ITEMS_MAX TRONE_BATCH_MAX

struct batch_items {
    uint32_t count;
    size_t start[SIM_BATCH_ITEMS_MAX];
    size_t size[SIM_BATCH_ITEMS_MAX];
};

static bool batch_split(const uint8_t *batch, size_t size, struct batch_items *items)
{
    struct buf_reader r;
    buf_reader_init(&r, batch, size);
    uint32_t count = buf_get_u32(&r);
    if (r.error != 0 || count > SIM_BATCH_ITEMS_MAX) {
        return false;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct smr_request m;
        size_t start = r.used;
        smr_msg_read_request(&r, &m);
        items->start[i] = start;
        items->size[i] = r.used - start;
    }
    items->count = count;
    return buf_reader_finish(&r) == 0;
}

/* A different batch built from the same requests (and perhaps a forged one). */
static void batch_alter(struct sim *s, uint32_t idx, const uint8_t *batch,
                        const struct batch_items *items, struct buf *out)
{
    uint64_t how = sim_rng_below(&s->rng, 4);
    if (how == 0 || items->count == 0) {
        buf_put_u32(out, 0); /* empty */
        return;
    }
    if (how == 1 && items->count > 1) { /* reversed */
        buf_put_u32(out, items->count);
        for (uint32_t i = items->count; i > 0; i--) {
            buf_put_bytes(out, batch + items->start[i - 1], items->size[i - 1]);
        }
        return;
    }
    if (how == 2) { /* one request dropped */
        uint32_t skip = (uint32_t)sim_rng_below(&s->rng, items->count);
        buf_put_u32(out, items->count - 1);
        for (uint32_t i = 0; i < items->count; i++) {
            if (i != skip) {
                buf_put_bytes(out, batch + items->start[i], items->size[i]);
            }
        }
        return;
    }
    /* A forged request (not signed by its client) appended. */
    buf_put_u32(out, items->count + 1);
    for (uint32_t i = 0; i < items->count; i++) {
        buf_put_bytes(out, batch + items->start[i], items->size[i]);
    }
    struct smr_request m;
    memset(&m, 0, sizeof(m));
    const struct sim_client *victim = &s->clients[sim_rng_below(&s->rng, s->p.client_count)];
    memcpy(m.client, victim->public_key, TRONE_KEY_LEN);
    m.request_id = victim->op_count + 7;
    m.op = s->clients[0].ops[0].bytes;
    m.op_size = (uint32_t)s->clients[0].ops[0].size;
    smr_sign_request(&m, s->replica_sk[idx]);
    struct buf one;
    buf_init(&one, 0);
    smr_msg_encode_request(&one, &m);
    if (one.error == 0) {
        buf_put_bytes(out, one.data + 1, one.used - 1);
    }
    buf_close(&one);
}

bool sim_byz_equivocate(struct sim *s, uint32_t idx, const uint8_t *data, size_t size)
{
    if (!(s->replicas[idx].byz & SIM_BYZ_EQUIVOCATE)
        || smr_msg_type(data, size) != SMR_MSG_PRE_PREPARE) {
        return false;
    }
    struct smr_pre_prepare pp;
    struct batch_items *items = malloc(sizeof(*items));
    TRONE_ASSERT(items != NULL);
    if (smr_msg_decode_pre_prepare(data, size, &pp) != 0
        || !batch_split(pp.batch, pp.batch_size, items)) {
        free(items);
        return false;
    }
    struct buf batch;
    struct buf msg;
    buf_init(&batch, 0);
    buf_init(&msg, 0);
    batch_alter(s, idx, pp.batch, items, &batch);
    free(items);
    struct smr_pre_prepare alt = pp;
    alt.batch = batch.data;
    alt.batch_size = (uint32_t)batch.used;
    smr_batch_digest(batch.data, batch.used, alt.digest);
    smr_sign_pre_prepare(&alt, s->replica_sk[idx]);
    smr_msg_encode_pre_prepare(&msg, &alt);
    TRONE_ASSERT(batch.error == 0 && msg.error == 0);
    uint64_t group = sim_rng_next(&s->rng);
    for (uint32_t j = 0; j < s->p.n; j++) {
        if (j == idx) {
            continue;
        }
        bool altered = (group >> j) & 1u;
        sim_trace(s, "byz=equivocate replica=%u to=%u seq=%llu version=%s", idx, j,
                  (unsigned long long)pp.seq, altered ? "altered" : "original");
        if (altered) {
            sim_byz_send(s, idx, j, msg.data, msg.used);
        } else {
            sim_byz_send(s, idx, j, data, size);
        }
    }
    buf_close(&batch);
    buf_close(&msg);
    return true;
}

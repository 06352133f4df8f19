/* sim_byz.c: Byzantine behaviours, as filters on one replica's outputs (STYLE.md rule 18).
 * The replica runs the real core; what it sends is muted, corrupted, replayed, forged (other
 * replica ids, bad signatures, requests signed by a key that is not the client's, fake DECIDED
 * batches), made to lie to clients, or, for a leader, equivocated: different PRE_PREPAREs,
 * re-signed with its own key, to different replicas. The network still authenticates the true
 * sender: a Byzantine replica lies only inside message bodies. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_msg.h"
#include "smr/smr_sig.h"

void sim_byz_close(struct sim_replica *r)
{
    for (uint32_t i = 0; i < r->replay_count; i++) {
        free(r->replay[i].data);
    }
    memset(r->replay, 0, sizeof(r->replay));
    r->replay_count = 0;
}

static void replay_store(struct sim *s, struct sim_replica *r, const uint8_t *data, size_t size)
{
    uint32_t slot = r->replay_count < SIM_REPLAY_MAX
                        ? r->replay_count++
                        : (uint32_t)sim_rng_below(&s->rng, SIM_REPLAY_MAX);
    free(r->replay[slot].data);
    r->replay[slot].data = malloc(size == 0 ? 1 : size);
    TRONE_ASSERT(r->replay[slot].data != NULL);
    memcpy(r->replay[slot].data, data, size);
    r->replay[slot].size = size;
}

/* A REQUEST for a real client's key with a plausible op, signed by this replica's key. */
static void forge_request(struct sim *s, uint32_t idx, struct buf *out, bool inside_batch)
{
    const struct sim_client *victim = &s->clients[sim_rng_below(&s->rng, s->p.client_count)];
    const struct sim_client *admin = &s->clients[0];
    struct smr_request m;
    memset(&m, 0, sizeof(m));
    memcpy(m.client, victim->public_key, TRONE_KEY_LEN);
    m.request_id = victim->op_count + 1 + sim_rng_below(&s->rng, 4);
    m.op = admin->ops[0].bytes; /* a REGISTER: harmful if executed */
    m.op_size = (uint32_t)admin->ops[0].size;
    smr_sign_request(&m, s->replica_sk[idx]);
    size_t start = out->used;
    smr_msg_encode_request(out, &m);
    if (inside_batch && out->error == 0) {
        memmove(out->data + start, out->data + start + 1, out->used - start - 1);
        out->used--;
    }
}

/* Re-encodes a vote or checkpoint claiming another replica id, or with a broken signature. */
static bool forge_from(struct sim *s, uint32_t idx, const uint8_t *data, size_t size,
                       struct buf *out)
{
    int type = smr_msg_type(data, size);
    uint32_t other = (idx + 1 + (uint32_t)sim_rng_below(&s->rng, s->p.n - 1)) % s->p.n;
    bool bad_sig = sim_rng_chance(&s->rng, 500);
    if (type == SMR_MSG_PREPARE || type == SMR_MSG_COMMIT) {
        struct smr_vote v;
        if (smr_msg_decode_vote(data, size, &v) != 0) {
            return false;
        }
        if (bad_sig) {
            v.sig[sim_rng_below(&s->rng, TRONE_SIG_LEN)] ^= 0x20;
        } else {
            v.replica = other;
        }
        smr_msg_encode_vote(out, (enum smr_msg_type)type, &v);
        return true;
    }
    if (type == SMR_MSG_CHECKPOINT) {
        struct smr_checkpoint c;
        if (smr_msg_decode_checkpoint(data, size, &c) != 0) {
            return false;
        }
        c.replica = other;
        if (bad_sig) {
            c.digest[0] ^= 1; /* a digest the signature does not cover */
        }
        smr_msg_encode_checkpoint(out, &c);
        return true;
    }
    if (type == SMR_MSG_STATUS) {
        struct smr_status st;
        if (smr_msg_decode_status(data, size, &st) != 0) {
            return false;
        }
        st.replica = other;
        st.executed += sim_rng_below(&s->rng, 50);
        st.stable += sim_rng_below(&s->rng, 2) * s->p.checkpoint_interval;
        smr_msg_encode_status(out, &st);
        return true;
    }
    return false;
}

/* A DECIDED claim, under another replica's id, for a batch holding a forged request. */
static void forge_decided(struct sim *s, uint32_t idx, struct buf *out)
{
    struct buf batch;
    buf_init(&batch, 0);
    buf_put_u32(&batch, 1);
    forge_request(s, idx, &batch, true);
    struct smr_decided d;
    memset(&d, 0, sizeof(d));
    d.replica = sim_rng_chance(&s->rng, 500) ? idx : (idx + 1) % s->p.n;
    d.seq = smr_executed_seq(s->replicas[idx].core) + 1 + sim_rng_below(&s->rng, 3);
    d.batch = batch.data;
    d.batch_size = (uint32_t)batch.used;
    if (batch.error == 0) {
        smr_msg_encode_decided(out, &d);
    }
    buf_close(&batch);
}

static void byz_forge(struct sim *s, uint32_t idx, uint32_t to, const uint8_t *data,
                      size_t size)
{
    struct buf *out = &s->scratch;
    buf_reset(out);
    uint64_t roll = sim_rng_below(&s->rng, 3);
    const char *what = "forge_from";
    if (roll == 0 && forge_from(s, idx, data, size, out)) {
        what = "forge_from";
    } else if (roll == 1 && s->replicas[idx].up) {
        forge_decided(s, idx, out);
        what = "forge_decided";
    } else {
        buf_reset(out);
        forge_request(s, idx, out, false);
        what = "forge_request";
    }
    if (out->error == 0 && out->used > 0) {
        sim_trace(s, "byz=%s replica=%u to=%u", what, idx, to);
        sim_net_send(s, idx, to, out->data, out->used);
    }
}

/* A REPLY whose result differs from the executed one. */
static bool byz_lie(struct sim *s, const uint8_t *data, size_t size, struct buf *out)
{
    struct smr_reply m;
    if (smr_msg_decode_reply(data, size, &m) != 0) {
        return false;
    }
    uint8_t fake[8] = {0};
    buf_store_u64(fake, sim_rng_next(&s->rng));
    m.result = fake;
    m.result_size = sizeof(fake);
    smr_msg_encode_reply(out, &m);
    return out->error == 0;
}

static void byz_corrupt(struct sim *s, uint32_t idx, uint32_t to, const uint8_t *data,
                        size_t size)
{
    struct buf *out = &s->scratch;
    buf_reset(out);
    buf_put_bytes(out, data, size);
    if (out->error != 0 || size == 0) {
        return;
    }
    if (sim_rng_chance(&s->rng, 300)) {
        out->used = sim_rng_below(&s->rng, size);
    } else {
        uint32_t flips = (uint32_t)sim_rng_range(&s->rng, 1, 4);
        for (uint32_t i = 0; i < flips; i++) {
            out->data[sim_rng_below(&s->rng, size)] ^= (uint8_t)(1u << sim_rng_below(&s->rng, 8));
        }
    }
    sim_trace(s, "byz=corrupt replica=%u to=%u msg=%s", idx, to, sim_msg_name(data, size));
    sim_net_send(s, idx, to, out->data, out->used);
}

void sim_byz_send(struct sim *s, uint32_t idx, uint32_t to, const uint8_t *data, size_t size)
{
    struct sim_replica *r = &s->replicas[idx];
    const struct sim_faults *f = &s->faults;
    TRONE_ASSERT(r->byz != 0);
    if (r->byz & SIM_BYZ_MUTE) {
        return;
    }
    if ((r->byz & SIM_BYZ_FORGE) && sim_rng_chance(&s->rng, f->forge_permille)) {
        byz_forge(s, idx, to, data, size);
    }
    if (r->byz & SIM_BYZ_REPLAY) {
        if (r->replay_count > 0 && sim_rng_chance(&s->rng, f->replay_permille)) {
            const struct sim_replay_entry *e = &r->replay[sim_rng_below(&s->rng, r->replay_count)];
            sim_trace(s, "byz=replay replica=%u to=%u msg=%s", idx, to,
                      sim_msg_name(e->data, e->size));
            sim_net_send(s, idx, to, e->data, e->size);
        }
        if (sim_rng_chance(&s->rng, 200)) {
            replay_store(s, r, data, size);
        }
    }
    if ((r->byz & SIM_BYZ_LIE) && smr_msg_type(data, size) == SMR_MSG_REPLY) {
        buf_reset(&s->scratch);
        if (byz_lie(s, data, size, &s->scratch)) {
            sim_trace(s, "byz=lie replica=%u to=%u", idx, to);
            sim_net_send(s, idx, to, s->scratch.data, s->scratch.used);
            return;
        }
    }
    if ((r->byz & SIM_BYZ_CORRUPT) && sim_rng_chance(&s->rng, f->corrupt_permille)) {
        byz_corrupt(s, idx, to, data, size);
        return;
    }
    sim_net_send(s, idx, to, data, size);
}

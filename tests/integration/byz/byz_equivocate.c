/* byz_equivocate.c: TRONE_BYZ=equivocate (TEST-ONLY). As leader, the replica sends its
 * PRE_PREPARE unchanged to the lower half of the others (counting from self) and, to the upper
 * half, a different batch for the same (view, seq), re-signed with its own key so it verifies;
 * the last replica gets both versions, and it backs each version with a COMMIT. As a backup it
 * signs PREPAREs (and sends COMMITs) for digests it never saw to the upper half. */
#include <string.h>

#include "byz.h"
#include "smr/smr_msg.h"
#include "smr/smr_sig.h"

/* Position of replica j among the others, 1..n-1, counting up from self. */
static uint32_t byz_rank(const struct byz *b, uint32_t j)
{
    return (j + b->replica_count - b->self) % b->replica_count;
}

static bool byz_gets_original(const struct byz *b, uint32_t j)
{
    return byz_rank(b, j) <= (b->replica_count - 1) / 2;
}

static bool byz_gets_both(const struct byz *b, uint32_t j)
{
    return byz_rank(b, j) == b->replica_count - 1 && !byz_gets_original(b, j);
}

/* Writes into out another batch than the leader's: empty for odd seqs or single requests,
 * otherwise without its first request. false if the batch is empty or not well formed. */
static bool byz_batch_alter(const struct smr_pre_prepare *pp, struct buf *out)
{
    struct buf_reader r;
    buf_reader_init(&r, pp->batch, pp->batch_size);
    uint32_t count = buf_get_u32(&r);
    if (r.error != 0 || count == 0 || count > TRONE_BATCH_MAX) {
        return false;
    }
    if (count == 1 || pp->seq % 2 == 1) {
        buf_put_u32(out, 0);
        return out->error == 0;
    }
    struct smr_request first;
    smr_msg_read_request(&r, &first);
    if (r.error != 0) {
        return false;
    }
    buf_put_u32(out, count - 1);
    buf_put_bytes(out, pp->batch + r.used, pp->batch_size - r.used);
    return out->error == 0;
}

/* A vote by this replica for (view, seq, digest); PREPAREs re-signed with its key. */
static void byz_vote(struct byz *b, enum smr_msg_type type, uint64_t view, uint64_t seq,
                     const uint8_t digest[TRONE_HASH_LEN], uint32_t to)
{
    struct smr_vote v = {.view = view, .seq = seq, .replica = b->self};
    memcpy(v.digest, digest, TRONE_HASH_LEN);
    if (type == SMR_MSG_PREPARE) {
        smr_sign_prepare(&v, byz__secret_key(b));
    }
    size_t start = byz__begin(b);
    smr_msg_encode_vote(&b->data, type, &v);
    byz__done(b, start, SMR_DEST_REPLICA, to, NULL);
}

static void byz_pre_prepare_to(struct byz *b, uint32_t j, const struct smr_envelope *e,
                               const struct smr_pre_prepare *alt, const struct buf *alt_bytes)
{
    const uint8_t *alt_data = alt_bytes->data;
    if (byz_gets_original(b, j)) {
        byz__emit(b, SMR_DEST_REPLICA, j, NULL, e->data, e->size);
        return;
    }
    byz__log(b, "equivocate", j, alt_data, alt_bytes->used);
    byz__emit(b, SMR_DEST_REPLICA, j, NULL, alt_data, alt_bytes->used);
    byz_vote(b, SMR_MSG_PREPARE, alt->view, alt->seq, alt->digest, j);
    byz_vote(b, SMR_MSG_COMMIT, alt->view, alt->seq, alt->digest, j);
    if (byz_gets_both(b, j)) {
        byz__log(b, "equivocate-both", j, e->data, e->size);
        byz__emit(b, SMR_DEST_REPLICA, j, NULL, e->data, e->size);
    }
}

static void byz_pre_prepare(struct byz *b, const struct smr_envelope *e)
{
    struct smr_pre_prepare pp;
    struct buf *alt_batch = &b->scratch;
    buf_reset(alt_batch);
    if (smr_msg_decode_pre_prepare(e->data, e->size, &pp) != 0 ||
        !byz_batch_alter(&pp, alt_batch)) {
        byz__pass(b, e);
        return;
    }
    struct smr_pre_prepare alt = pp;
    alt.batch = alt_batch->data;
    alt.batch_size = (uint32_t)alt_batch->used;
    smr_batch_digest(alt.batch, alt.batch_size, alt.digest);
    smr_sign_pre_prepare(&alt, byz__secret_key(b));
    struct buf alt_bytes;
    buf_init(&alt_bytes, 0);
    smr_msg_encode_pre_prepare(&alt_bytes, &alt);
    if (alt_bytes.error != 0) {
        buf_close(&alt_bytes);
        byz__pass(b, e);
        return;
    }
    for (uint32_t j = 0; j < b->replica_count; j++) {
        bool wanted = e->dest == SMR_DEST_ALL || (e->dest == SMR_DEST_REPLICA && e->replica == j);
        if (j != b->self && wanted) {
            byz_pre_prepare_to(b, j, e, &alt, &alt_bytes);
        }
    }
    buf_close(&alt_bytes);
}

/* Backup votes: the lower half gets the real vote, the upper half one for a random digest. */
static void byz_votes(struct byz *b, const struct smr_envelope *e, enum smr_msg_type type)
{
    struct smr_vote v;
    if (smr_msg_decode_vote(e->data, e->size, &v) != 0 || v.replica != b->self) {
        byz__pass(b, e);
        return;
    }
    uint8_t digest[TRONE_HASH_LEN];
    for (size_t i = 0; i < TRONE_HASH_LEN; i += 8) {
        buf_store_u64(digest + i, byz__rand(b));
    }
    for (uint32_t j = 0; j < b->replica_count; j++) {
        bool wanted = e->dest == SMR_DEST_ALL || (e->dest == SMR_DEST_REPLICA && e->replica == j);
        if (j == b->self || !wanted) {
            continue;
        }
        if (byz_gets_original(b, j)) {
            byz__emit(b, SMR_DEST_REPLICA, j, NULL, e->data, e->size);
            continue;
        }
        byz__log(b, "vote-unseen-digest", j, e->data, e->size);
        byz_vote(b, type, v.view, v.seq, digest, j);
    }
}

void byz__equivocate(struct byz *b, const struct smr_envelope *e)
{
    int type = smr_msg_type(e->data, e->size);
    if (e->dest == SMR_DEST_CLIENT) {
        byz__pass(b, e);
    } else if (type == SMR_MSG_PRE_PREPARE) {
        byz_pre_prepare(b, e);
    } else if (type == SMR_MSG_PREPARE || type == SMR_MSG_COMMIT) {
        byz_votes(b, e, (enum smr_msg_type)type);
    } else {
        byz__pass(b, e);
    }
}

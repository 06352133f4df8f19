/* byz_corrupt.c: TRONE_BYZ=corrupt (TEST-ONLY). Every message, per recipient, is sent intact or
 * (about one in three) damaged: random bit flips, truncation, a forged field naming another
 * replica, a signature that does not verify, or a STATUS that lies about its progress.
 * Replies to clients get bit flips too. The session still names the true sender. */
#include <string.h>

#include "byz.h"
#include "smr/smr_msg.h"
#include "smr/smr_sig.h"

#define BYZ_CORRUPT_PERCENT 33u

static void byz_flip(struct byz *b, struct buf *m)
{
    uint32_t flips = 1 + byz__below(b, 4);
    for (uint32_t i = 0; i < flips && m->used > 0; i++) {
        m->data[byz__below(b, (uint32_t)m->used)] ^= (uint8_t)(1u << byz__below(b, 8));
    }
}

static bool byz_forge_vote(struct byz *b, const uint8_t *data, size_t size, struct buf *out)
{
    struct smr_vote v;
    int type = smr_msg_type(data, size);
    if (smr_msg_decode_vote(data, size, &v) != 0) {
        return false;
    }
    if (type == SMR_MSG_PREPARE && byz__below(b, 2) == 0) {
        v.sig[byz__below(b, TRONE_SIG_LEN)] ^= 0x20; /* a signature that does not verify */
    } else {
        v.replica = byz__other(b); /* a vote in another replica's name */
    }
    smr_msg_encode_vote(out, (enum smr_msg_type)type, &v);
    return true;
}

static bool byz_forge_checkpoint(struct byz *b, const uint8_t *data, size_t size, struct buf *out)
{
    struct smr_checkpoint c;
    if (smr_msg_decode_checkpoint(data, size, &c) != 0) {
        return false;
    }
    if (byz__below(b, 2) == 0) {
        c.digest[0] ^= 1; /* a digest the signature does not cover */
    } else {
        c.replica = byz__other(b);
    }
    smr_msg_encode_checkpoint(out, &c);
    return true;
}

static bool byz_forge_status(struct byz *b, const uint8_t *data, size_t size, struct buf *out)
{
    struct smr_status st;
    if (smr_msg_decode_status(data, size, &st) != 0) {
        return false;
    }
    if (byz__below(b, 2) == 0) {
        st.replica = byz__other(b);
    } else {
        st.executed += byz__below(b, 50); /* claims progress it does not have */
        st.stable += 64u * byz__below(b, 2);
    }
    smr_msg_encode_status(out, &st);
    return true;
}

static bool byz_forge_pre_prepare(struct byz *b, const uint8_t *data, size_t size, struct buf *out)
{
    struct smr_pre_prepare pp;
    if (smr_msg_decode_pre_prepare(data, size, &pp) != 0) {
        return false;
    }
    pp.sig[byz__below(b, TRONE_SIG_LEN)] ^= 0x01;
    smr_msg_encode_pre_prepare(out, &pp);
    return true;
}

/* Re-encodes a message with a forged field; false if this type has no field to forge. */
static bool byz_forge(struct byz *b, const uint8_t *data, size_t size, struct buf *out)
{
    switch (smr_msg_type(data, size)) {
    case SMR_MSG_PREPARE:
    case SMR_MSG_COMMIT:
        return byz_forge_vote(b, data, size, out);
    case SMR_MSG_CHECKPOINT:
        return byz_forge_checkpoint(b, data, size, out);
    case SMR_MSG_STATUS:
        return byz_forge_status(b, data, size, out);
    case SMR_MSG_PRE_PREPARE:
        return byz_forge_pre_prepare(b, data, size, out);
    default:
        return false;
    }
}

/* One copy of e for one recipient (replica j, or e's client). */
static void byz_corrupt_one(struct byz *b, const struct smr_envelope *e, enum smr_dest dest,
                            uint32_t j)
{
    const uint8_t *client = dest == SMR_DEST_CLIENT ? e->client : NULL;
    if (byz__below(b, 100) >= BYZ_CORRUPT_PERCENT || e->size == 0) {
        byz__emit(b, dest, j, client, e->data, e->size);
        return;
    }
    struct buf *m = &b->scratch;
    buf_reset(m);
    uint32_t how = dest == SMR_DEST_CLIENT ? 0 : byz__below(b, 4);
    const char *what = "flip";
    if (how == 2 && byz_forge(b, e->data, e->size, m) && m->error == 0) {
        what = "forge";
    } else {
        buf_reset(m);
        buf_put_bytes(m, e->data, e->size);
        if (how == 3) {
            m->used = byz__below(b, (uint32_t)e->size);
            what = "truncate";
        } else {
            byz_flip(b, m);
        }
    }
    if (m->error != 0) {
        return;
    }
    byz__log(b, what, dest == SMR_DEST_CLIENT ? UINT32_MAX : j, e->data, e->size);
    byz__emit(b, dest, j, client, m->data, m->used);
}

void byz__corrupt(struct byz *b, const struct smr_envelope *e)
{
    if (e->dest != SMR_DEST_ALL) {
        byz_corrupt_one(b, e, e->dest, e->replica);
        return;
    }
    for (uint32_t j = 0; j < b->replica_count; j++) {
        if (j != b->self) {
            byz_corrupt_one(b, e, SMR_DEST_REPLICA, j);
        }
    }
}

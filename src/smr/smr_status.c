/* smr_status.c: periodic STATUS gossip and what it drives: catch-up of a replica that
 * missed decisions (DECIDED; f+1 matching claims prove a decision since one of them is
 * correct), forwarding of the NEW_VIEW to a replica stuck in an older view, and state
 * transfer when the peers' log no longer reaches back far enough. No I/O. */
#include <sodium.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_internal.h"

void smr__status_tick(struct smr *s)
{
    struct smr_status status = {
        .replica = s->config.self,
        .view = s->view,
        .view_changing = s->view_changing ? 1 : 0,
        .executed = s->executed,
        .stable = s->stable.seq,
    };
    smr_msg_encode_status(smr__send_begin(s), &status);
    smr__send_done(s, SMR_DEST_ALL, 0, NULL);
}

static void send_decided(struct smr *s, uint32_t to, uint64_t seq)
{
    struct smr_slot *slot = &s->slots[seq % s->config.window];
    if (slot->seq != seq || !slot->decided) {
        return;
    }
    struct smr_decided m = {
        .replica = s->config.self,
        .seq = seq,
        .batch = slot->decided_batch.data,
        .batch_size = (uint32_t)slot->decided_batch.used,
    };
    smr_msg_encode_decided(smr__send_begin(s), &m);
    smr__send_done(s, SMR_DEST_REPLICA, to, NULL);
}

void smr__on_status(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_status peer;
    if (smr_msg_decode_status(data, size, &peer) != 0 || peer.replica != from) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EBADMSG, from, s->view, 0);
        return;
    }
    /* The peer missed decisions we still hold: send them (bounded per round). */
    if (peer.executed < s->executed && peer.executed >= s->stable.seq) {
        uint64_t last = s->executed;
        if (last > peer.executed + SMR_CATCHUP_MAX) {
            last = peer.executed + SMR_CATCHUP_MAX;
        }
        for (uint64_t seq = peer.executed + 1; seq <= last; seq++) {
            send_decided(s, from, seq);
        }
    }
    /* The peer is in an older view: the NEW_VIEW that started ours brings it along. */
    bool behind = peer.view < s->view || (peer.view == s->view && peer.view_changing);
    if (behind && !s->view_changing && s->new_view.used > 0) {
        buf_put_bytes(smr__send_begin(s), s->new_view.data, s->new_view.used);
        smr__send_done(s, SMR_DEST_REPLICA, from, NULL);
    }
    /* Our next decision is below the peer's log: only its checkpoint can help us. Or our
     * own checkpoints stopped becoming stable (their votes were lost) and our window no
     * longer reaches the peers' decisions: its checkpoint proof moves our window. */
    if (peer.stable > s->executed ||
        peer.stable > s->stable.seq + s->config.checkpoint_interval) {
        smr__want_state(s, from, peer.stable);
    }
}

/* A claim that seq was decided with this batch. f+1 matching claims (1 under CFT) from
 * distinct replicas decide the slot here too. */
void smr__on_decided(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_decided m;
    if (smr_msg_decode_decided(data, size, &m) != 0 || m.replica != from ||
        smr_batch_count(m.batch, m.batch_size) < 0) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EBADMSG, from, s->view, 0);
        return;
    }
    if (m.seq <= s->executed || !smr__in_window(s, m.seq)) {
        return;
    }
    uint8_t digest[TRONE_HASH_LEN];
    smr_batch_digest(m.batch, m.batch_size, digest);
    struct smr_slot *slot = smr__slot(s, m.seq);
    slot->claim_mask |= 1ull << from;
    memcpy(slot->claim_digest[from], digest, TRONE_HASH_LEN);
    uint32_t matching = 0;
    for (uint32_t r = 0; r < SMR_R; r++) {
        if ((slot->claim_mask >> r & 1) != 0 &&
            memcmp(slot->claim_digest[r], digest, TRONE_HASH_LEN) == 0) {
            matching++;
        }
    }
    if (matching >= s->claim_quorum) {
        smr__slot_decide(s, slot, m.batch, m.batch_size, digest);
        smr__execute_ready(s);
    }
}

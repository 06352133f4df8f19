/* smr_agree.c: the normal case of agreement (PBFT section 4.2: pre-prepare, prepare, commit)
 * and in-order execution. PREPAREs are signed so that prepared certificates are transferable
 * proof in a view change; COMMITs rely on the authenticated session only (DESIGN.md 7).
 * No I/O. */
#include <sodium.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_internal.h"
#include "smr/smr_sig.h"

/* Moves a slot's vote state to the current view, forgetting votes of older views. */
static void slot_enter_view(struct smr_slot *slot, uint64_t view)
{
    if (slot->vote_view == view) {
        return;
    }
    slot->vote_view = view;
    slot->has_pp = false;
    slot->prepare_mask = 0;
    slot->commit_mask = 0;
    slot->sent_commit = false;
}

static uint32_t count_matching(uint64_t mask, const uint8_t digests[][TRONE_HASH_LEN],
                               const uint8_t digest[TRONE_HASH_LEN])
{
    uint32_t count = 0;
    for (uint32_t r = 0; r < SMR_R; r++) {
        if ((mask >> r & 1) != 0 && memcmp(digests[r], digest, TRONE_HASH_LEN) == 0) {
            count++;
        }
    }
    return count;
}

/* Keeps the slot's prepared certificate (pre-prepare and Q-1 matching signed PREPAREs). */
static void cert_record(struct smr *s, struct smr_slot *slot)
{
    struct smr_cert *cert = &slot->cert;
    buf_reset(&cert->batch);
    buf_put_bytes(&cert->batch, slot->batch.data, slot->batch.used);
    if (cert->batch.error != 0) {
        cert->valid = false;
        return;
    }
    cert->valid = true;
    cert->view = slot->vote_view;
    memcpy(cert->digest, slot->digest, TRONE_HASH_LEN);
    memcpy(cert->pp_sig, slot->pp_sig, TRONE_SIG_LEN);
    cert->mask = 0;
    for (uint32_t r = 0; r < SMR_R; r++) {
        if ((slot->prepare_mask >> r & 1) != 0 &&
            memcmp(slot->prepare_digest[r], slot->digest, TRONE_HASH_LEN) == 0) {
            cert->mask |= 1ull << r;
            memcpy(cert->sigs[r], slot->prepare_sig[r], TRONE_SIG_LEN);
        }
    }
    (void)s;
}

static bool slot_prepared(const struct smr *s, const struct smr_slot *slot)
{
    return slot->has_pp && count_matching(slot->prepare_mask, slot->prepare_digest,
                                          slot->digest) >= s->quorum - 1;
}

static void send_commit(struct smr *s, struct smr_slot *slot)
{
    struct smr_vote vote = {.view = slot->vote_view, .seq = slot->seq, .replica = s->config.self};
    memcpy(vote.digest, slot->digest, TRONE_HASH_LEN);
    smr_msg_encode_vote(smr__send_begin(s), SMR_MSG_COMMIT, &vote);
    smr__send_done(s, SMR_DEST_ALL, 0, NULL);
}

/* Advances a slot through prepared and committed as votes arrive. */
static void slot_progress(struct smr *s, struct smr_slot *slot)
{
    if (!slot->sent_commit && slot_prepared(s, slot)) {
        cert_record(s, slot);
        slot->sent_commit = true;
        smr__slot_dirty_sync(slot); /* the certificate, before the COMMIT leaves */
        slot->commit_mask |= 1ull << s->config.self;
        memcpy(slot->commit_digest[s->config.self], slot->digest, TRONE_HASH_LEN);
        send_commit(s, slot);
        slot->touched_ms = s->now_ms;
    }
    if (slot->sent_commit && !slot->decided &&
        count_matching(slot->commit_mask, slot->commit_digest, slot->digest) >= s->quorum) {
        smr__slot_decide(s, slot, slot->batch.data, slot->batch.used, slot->digest);
        smr__execute_ready(s);
    }
}

void smr__accept_pre_prepare(struct smr *s, const struct smr_pre_prepare *pp, bool send_prepare)
{
    if (!smr__may_vote(s, pp->view, pp->seq)) {
        return; /* a vote lost in a crash may have gone out here */
    }
    struct smr_slot *slot = smr__slot(s, pp->seq);
    slot_enter_view(slot, pp->view);
    buf_reset(&slot->batch);
    buf_put_bytes(&slot->batch, pp->batch, pp->batch_size);
    if (slot->batch.error != 0) {
        return;
    }
    slot->has_pp = true;
    smr__slot_dirty(slot);
    smr__horizon_cover(s, pp->view, pp->seq); /* synced before the PREPARE (or PRE_PREPARE) */
    memcpy(slot->digest, pp->digest, TRONE_HASH_LEN);
    memcpy(slot->pp_sig, pp->sig, TRONE_SIG_LEN);
    slot->touched_ms = s->now_ms;
    if (send_prepare) {
        struct smr_vote vote = {.view = pp->view, .seq = pp->seq, .replica = s->config.self};
        memcpy(vote.digest, pp->digest, TRONE_HASH_LEN);
        smr_sign_prepare(&vote, s->config.secret_key);
        slot->prepare_mask |= 1ull << s->config.self;
        memcpy(slot->prepare_digest[s->config.self], vote.digest, TRONE_HASH_LEN);
        memcpy(slot->prepare_sig[s->config.self], vote.sig, TRONE_SIG_LEN);
        smr_msg_encode_vote(smr__send_begin(s), SMR_MSG_PREPARE, &vote);
        smr__send_done(s, SMR_DEST_ALL, 0, NULL);
    }
    slot_progress(s, slot);
}

static void reject(struct smr *s, int err, uint32_t from, uint64_t seq)
{
    smr__trace(s, SMR_TRACE_REJECTED, err, from, s->view, seq);
}

/* PBFT 4.2: a backup accepts a pre-prepare in its view, from the view's leader, inside the
 * window, correctly signed, with a digest matching a valid batch, and only one per (view,
 * seq). It never prepares a value that conflicts with what it already decided. */
void smr__on_pre_prepare(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_pre_prepare pp;
    if (smr_msg_decode_pre_prepare(data, size, &pp) != 0) {
        reject(s, TRONE_EBADMSG, from, 0);
        return;
    }
    if (s->view_changing || pp.view != s->view || from != smr__leader_of(s, pp.view) ||
        !smr__in_window(s, pp.seq)) {
        return; /* not for now: the protocol retransmits what still matters */
    }
    uint8_t digest[TRONE_HASH_LEN];
    smr_batch_digest(pp.batch, pp.batch_size, digest);
    if (sodium_memcmp(digest, pp.digest, TRONE_HASH_LEN) != 0 ||
        !smr_verify_pre_prepare(&pp, s->config.replica_keys[from])) {
        reject(s, TRONE_EAUTH, from, pp.seq);
        return;
    }
    struct smr_slot *slot = smr__slot(s, pp.seq);
    if (slot->vote_view == pp.view && slot->has_pp) {
        if (memcmp(slot->digest, pp.digest, TRONE_HASH_LEN) != 0) {
            reject(s, TRONE_EPROTO, from, pp.seq); /* equivocation */
        }
        return;
    }
    if (slot->decided && memcmp(slot->decided_digest, pp.digest, TRONE_HASH_LEN) != 0) {
        reject(s, TRONE_EPROTO, from, pp.seq);
        return;
    }
    if (!smr__may_vote(s, pp.view, pp.seq)) {
        return; /* mute after a restart (smr_persist.c) */
    }
    int rc = smr__batch_check(s, pp.batch, pp.batch_size);
    if (rc != 0) {
        reject(s, rc, from, pp.seq);
        return;
    }
    smr__accept_pre_prepare(s, &pp, true);
}

/* Votes are taken only for the current view, from the replica that sent them. */
static bool vote_admissible(struct smr *s, uint32_t from, const struct smr_vote *vote)
{
    if (vote->replica != from) {
        reject(s, TRONE_EPROTO, from, vote->seq);
        return false;
    }
    return !s->view_changing && vote->view == s->view && smr__in_window(s, vote->seq);
}

void smr__on_prepare(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_vote vote;
    if (smr_msg_decode_vote(data, size, &vote) != 0 || data[0] != SMR_MSG_PREPARE) {
        reject(s, TRONE_EBADMSG, from, 0);
        return;
    }
    if (!vote_admissible(s, from, &vote) || from == smr__leader_of(s, vote.view)) {
        return; /* the leader's pre-prepare stands for its prepare */
    }
    if (!smr_verify_prepare(&vote, s->config.replica_keys[from])) {
        reject(s, TRONE_EAUTH, from, vote.seq);
        return;
    }
    struct smr_slot *slot = smr__slot(s, vote.seq);
    slot_enter_view(slot, vote.view);
    slot->prepare_mask |= 1ull << from;
    memcpy(slot->prepare_digest[from], vote.digest, TRONE_HASH_LEN);
    memcpy(slot->prepare_sig[from], vote.sig, TRONE_SIG_LEN);
    slot_progress(s, slot);
}

void smr__on_commit(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_vote vote;
    if (smr_msg_decode_vote(data, size, &vote) != 0 || data[0] != SMR_MSG_COMMIT) {
        reject(s, TRONE_EBADMSG, from, 0);
        return;
    }
    if (!vote_admissible(s, from, &vote)) {
        return;
    }
    struct smr_slot *slot = smr__slot(s, vote.seq);
    slot_enter_view(slot, vote.view);
    slot->commit_mask |= 1ull << from;
    memcpy(slot->commit_digest[from], vote.digest, TRONE_HASH_LEN);
    slot_progress(s, slot);
}

void smr__slot_decide(struct smr *s, struct smr_slot *slot, const uint8_t *batch, size_t size,
                      const uint8_t digest[TRONE_HASH_LEN])
{
    if (slot->decided) {
        return;
    }
    buf_reset(&slot->decided_batch);
    buf_put_bytes(&slot->decided_batch, batch, size);
    if (slot->decided_batch.error != 0) {
        return;
    }
    slot->decided = true;
    smr__slot_dirty(slot); /* a fact a quorum holds: may be persisted after the replies */
    memcpy(slot->decided_digest, digest, TRONE_HASH_LEN);
    (void)s;
}

/* Executes one request: at most once per (client, id), thanks to the reply table. */
static void execute_request(struct smr *s, uint64_t seq, const struct smr_request *m)
{
    struct smr_client_entry *entry = smr__client_get(s, m->client);
    if (entry == NULL ||
        smr__client_seen(entry, m->request_id, m->op, m->op_size, NULL) != SMR_SEEN_NEW) {
        return; /* a duplicate in the log, or the reply table is full */
    }
    struct buf *result = smr__client_record(s, entry, m->request_id, m->op, m->op_size);
    s->app.execute(s->app.ctx, seq, m->client, m->op, m->op_size, result);
    if (result->error != 0) {
        buf_reset(result);
    }
    if (s->output.executed_count < SMR_EXECUTED_MAX) {
        struct smr_executed *e = &s->executed_log[s->output.executed_count++];
        e->seq = seq;
        memcpy(e->client, m->client, TRONE_KEY_LEN);
        e->request_id = m->request_id;
        crypto_generichash(e->result_digest, TRONE_HASH_LEN, result->data, result->used, NULL,
                           0);
    }
    smr__send_reply(s, m->client, m->request_id, 0, result->data, result->used);
    smr__client_trim(entry, m->request_id);
}

static void execute_batch(struct smr *s, uint64_t seq, const uint8_t *batch, size_t size)
{
    struct buf_reader r;
    buf_reader_init(&r, batch, size);
    uint32_t count = buf_get_u32(&r);
    for (uint32_t i = 0; i < count && r.error == 0; i++) {
        struct smr_request m;
        smr_msg_read_request(&r, &m);
        if (r.error == 0) {
            execute_request(s, seq, &m);
        }
    }
}

/* Executes decided slots in sequence order and checkpoints every interval (PBFT 4.3). */
void smr__execute_ready(struct smr *s)
{
    for (uint32_t i = 0; i < s->config.window; i++) {
        uint64_t seq = s->executed + 1;
        if (!smr__in_window(s, seq)) {
            break;
        }
        struct smr_slot *slot = smr__slot(s, seq);
        if (!slot->decided) {
            break;
        }
        execute_batch(s, seq, slot->decided_batch.data, slot->decided_batch.used);
        s->executed = seq;
        if (seq % s->config.checkpoint_interval == 0) {
            smr__take_checkpoint(s);
        }
    }
    smr__pending_forget_executed(s);
}

/* Resends this replica's part of every undecided slot of the current view that made no
 * progress for a status interval: messages lost on the way are recovered without waiting
 * for a view change. Bounded by the window. */
void smr__retransmit(struct smr *s)
{
    if (s->view_changing) {
        return;
    }
    bool leader = smr__leader_of(s, s->view) == s->config.self;
    for (uint64_t seq = s->executed + 1; smr__in_window(s, seq); seq++) {
        struct smr_slot *slot = &s->slots[seq % s->config.window];
        if (slot->seq != seq || slot->vote_view != s->view || !slot->has_pp || slot->decided ||
            s->now_ms < slot->touched_ms + s->config.status_interval_ms) {
            continue;
        }
        if (leader) {
            struct smr_pre_prepare pp = {.view = s->view, .seq = seq};
            memcpy(pp.digest, slot->digest, TRONE_HASH_LEN);
            memcpy(pp.sig, slot->pp_sig, TRONE_SIG_LEN);
            pp.batch = slot->batch.data;
            pp.batch_size = (uint32_t)slot->batch.used;
            smr_msg_encode_pre_prepare(smr__send_begin(s), &pp);
            smr__send_done(s, SMR_DEST_ALL, 0, NULL);
        } else if ((slot->prepare_mask >> s->config.self & 1) != 0) {
            struct smr_vote vote = {.view = s->view, .seq = seq, .replica = s->config.self};
            memcpy(vote.digest, slot->prepare_digest[s->config.self], TRONE_HASH_LEN);
            memcpy(vote.sig, slot->prepare_sig[s->config.self], TRONE_SIG_LEN);
            smr_msg_encode_vote(smr__send_begin(s), SMR_MSG_PREPARE, &vote);
            smr__send_done(s, SMR_DEST_ALL, 0, NULL);
        }
        if (slot->sent_commit) {
            send_commit(s, slot);
        }
        slot->touched_ms = s->now_ms;
    }
}

/* smr_persist.c: what a replica must remember across a crash (docs/PROTOCOL.md section 11),
 * as records the runtime persists before sending, and the restore that reads them back.
 * Safety needs the view (never vote in a view it left), and per seq of the window what this
 * replica proposed or accepted, prepared (its certificate) and decided, so that it never
 * contradicts a vote it sent before the crash and its VIEW_CHANGE still reports its
 * certificates. Fast rejoin needs the stable checkpoint with its snapshot and the decided
 * batches after it, which may reach the disk after the replies (records without sync: a
 * quorum holds those facts, so losing them in a crash only slows the rejoin). A pre-prepare
 * (the leader's proposal or a backup's PREPARE) is not synced either: the vote horizon is,
 * once per HORIZON_AHEAD seqs, and a restarted replica stays mute below it (smr__may_vote).
 * No I/O: records leave in the output and come back through smr_restore. */
#include <sodium.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_internal.h"
#include "smr/smr_view_msg.h"

#define PERSIST_VERSION 1u

/* How far beyond a vote the horizon moves: one synced record per this many seqs, and at most
 * this many seqs of mute zone after a restart. */
#define HORIZON_AHEAD(s) ((uint64_t)(s)->config.checkpoint_interval)

bool smr__may_vote(const struct smr *s, uint64_t view, uint64_t seq)
{
    return view != s->mute_view || seq > s->mute_seq;
}

void smr__horizon_cover(struct smr *s, uint64_t view, uint64_t seq)
{
    TRONE_ASSERT(smr__may_vote(s, view, seq));
    if (view != s->horizon_view || seq > s->horizon_seq) {
        s->horizon_view = view;
        s->horizon_seq = seq + HORIZON_AHEAD(s);
        s->horizon_dirty = true;
    }
}

enum slot_flags {
    SLOT_HAS_PP = 1u << 0,
    SLOT_OWN_PREPARE = 1u << 1,
    SLOT_SENT_COMMIT = 1u << 2,
    SLOT_CERT = 1u << 3,
    SLOT_DECIDED = 1u << 4,
    SLOT_CERT_BATCH_SAME = 1u << 5,    /* the certificate's batch is the slot's batch */
    SLOT_DECIDED_BATCH_SAME = 1u << 6, /* the decided batch is the slot's batch */
    SLOT_FLAGS_ALL = (1u << 7) - 1,
};

/* ---- Records out ------------------------------------------------------------------------ */

static void record_add(struct smr *s, uint8_t kind, uint64_t seq, bool drop, bool sync,
                       size_t start)
{
    size_t i = s->output.record_count;
    TRONE_ASSERT(i < (size_t)s->config.window + SMR_RECORDS_EXTRA);
    s->records[i].kind = kind;
    s->records[i].seq = seq;
    s->records[i].drop = drop;
    s->records[i].sync = sync;
    s->records[i].size = s->persist_data.used - start;
    s->record_offsets[i] = start;
    s->output.record_count++;
}

static void sigs_put(struct buf *b, uint64_t mask, const uint8_t sigs[][TRONE_SIG_LEN])
{
    buf_put_u64(b, mask);
    for (uint32_t r = 0; r < SMR_R; r++) {
        if ((mask >> r & 1) != 0) {
            buf_put_bytes(b, sigs[r], TRONE_SIG_LEN);
        }
    }
}

static bool own_prepare(const struct smr *s, const struct smr_slot *slot)
{
    uint32_t self = s->config.self;
    return slot->has_pp && (slot->prepare_mask >> self & 1) != 0 &&
           memcmp(slot->prepare_digest[self], slot->digest, TRONE_HASH_LEN) == 0;
}

static unsigned slot_flags(const struct smr *s, const struct smr_slot *slot)
{
    unsigned flags = 0;
    flags |= slot->has_pp ? SLOT_HAS_PP : 0;
    flags |= own_prepare(s, slot) ? SLOT_OWN_PREPARE : 0;
    flags |= slot->has_pp && slot->sent_commit ? SLOT_SENT_COMMIT : 0;
    flags |= slot->cert.valid ? SLOT_CERT : 0;
    flags |= slot->decided ? SLOT_DECIDED : 0;
    if (slot->cert.valid && slot->has_pp &&
        memcmp(slot->cert.digest, slot->digest, TRONE_HASH_LEN) == 0) {
        flags |= SLOT_CERT_BATCH_SAME;
    }
    if (slot->decided && slot->has_pp &&
        memcmp(slot->decided_digest, slot->digest, TRONE_HASH_LEN) == 0) {
        flags |= SLOT_DECIDED_BATCH_SAME;
    }
    return flags;
}

/* SLOT: version | flags | vote view | [digest, pp sig, batch] | [own prepare sig]
 *       | [cert view, digest, pp sig, sigs, (batch)] | [decided digest, (batch)]. */
static void slot_encode(struct smr *s, const struct smr_slot *slot, struct buf *b)
{
    unsigned flags = slot_flags(s, slot);
    buf_put_u8(b, PERSIST_VERSION);
    buf_put_u8(b, (uint8_t)flags);
    buf_put_u64(b, slot->vote_view);
    if (flags & SLOT_HAS_PP) {
        buf_put_bytes(b, slot->digest, TRONE_HASH_LEN);
        buf_put_bytes(b, slot->pp_sig, TRONE_SIG_LEN);
        buf_put_blob(b, slot->batch.data, slot->batch.used);
    }
    if (flags & SLOT_OWN_PREPARE) {
        buf_put_bytes(b, slot->prepare_sig[s->config.self], TRONE_SIG_LEN);
    }
    if (flags & SLOT_CERT) {
        const struct smr_cert *c = &slot->cert;
        buf_put_u64(b, c->view);
        buf_put_bytes(b, c->digest, TRONE_HASH_LEN);
        buf_put_bytes(b, c->pp_sig, TRONE_SIG_LEN);
        sigs_put(b, c->mask, (const uint8_t(*)[TRONE_SIG_LEN])c->sigs);
        if (!(flags & SLOT_CERT_BATCH_SAME)) {
            buf_put_blob(b, c->batch.data, c->batch.used);
        }
    }
    if (flags & SLOT_DECIDED) {
        buf_put_bytes(b, slot->decided_digest, TRONE_HASH_LEN);
        if (!(flags & SLOT_DECIDED_BATCH_SAME)) {
            buf_put_blob(b, slot->decided_batch.data, slot->decided_batch.used);
        }
    }
}

/* STABLE: version | seq | digest | sigs | snapshot (empty when only the proof is held). */
static void stable_encode(const struct smr *s, struct buf *b)
{
    buf_put_u8(b, PERSIST_VERSION);
    buf_put_u64(b, s->stable.seq);
    buf_put_bytes(b, s->stable.digest, TRONE_HASH_LEN);
    sigs_put(b, s->stable.mask, (const uint8_t(*)[TRONE_SIG_LEN])s->stable.sigs);
    buf_put_blob(b, s->stable.snapshot.data, s->stable.snapshot.used);
}

/* Turns this step's changes into records: the checkpoint first (with the drop of the slots
 * it covers), then the view, then each changed slot of the window in seq order. An encoding
 * that fails (out of memory) is a fatal error: sending without persisting would be unsafe. */
void smr__persist_collect(struct smr *s)
{
    struct buf *b = &s->persist_data;
    if (s->stable_dirty) {
        size_t start = b->used;
        stable_encode(s, b);
        record_add(s, SMR_RECORD_STABLE, 0, false, false, start);
        record_add(s, SMR_RECORD_SLOT, s->stable.seq, true, false, b->used);
        s->stable_dirty = false;
    }
    if (s->view_dirty) {
        size_t start = b->used;
        buf_put_u8(b, PERSIST_VERSION);
        buf_put_u64(b, s->view);
        buf_put_u8(b, s->view_changing ? 1 : 0);
        record_add(s, SMR_RECORD_VIEW, 0, false, true, start);
        s->view_dirty = false;
    }
    if (s->horizon_dirty) {
        size_t start = b->used;
        buf_put_u8(b, PERSIST_VERSION);
        buf_put_u64(b, s->horizon_view);
        buf_put_u64(b, s->horizon_seq);
        record_add(s, SMR_RECORD_HORIZON, 0, false, true, start);
        s->horizon_dirty = false;
    }
    for (uint64_t seq = s->stable.seq + 1; smr__in_window(s, seq); seq++) {
        struct smr_slot *slot = &s->slots[seq % s->config.window];
        if (slot->seq != seq || !slot->dirty) {
            continue;
        }
        size_t start = b->used;
        slot_encode(s, slot, b);
        record_add(s, SMR_RECORD_SLOT, seq, false, slot->dirty_sync, start);
        slot->dirty = false;
        slot->dirty_sync = false;
    }
    TRONE_ASSERT(b->error == 0);
    for (size_t i = 0; i < s->output.record_count; i++) {
        s->records[i].data = b->data + s->record_offsets[i];
    }
    s->output.records = s->records;
}

/* ---- Records in ------------------------------------------------------------------------- */

static uint64_t sigs_get(struct buf_reader *r, uint32_t n, uint8_t sigs[][TRONE_SIG_LEN])
{
    uint64_t mask = buf_get_u64(r);
    if (n < 64 && mask >> n != 0) {
        r->error = TRONE_ECORRUPT;
        return 0;
    }
    for (uint32_t i = 0; i < SMR_R; i++) {
        if ((mask >> i & 1) != 0) {
            buf_get_bytes(r, sigs[i], TRONE_SIG_LEN);
        }
    }
    return mask;
}

static int copy_blob(struct buf_reader *r, struct buf *out)
{
    size_t size = 0;
    const uint8_t *p = buf_get_blob(r, TRONE_MESSAGE_MAX, &size);
    buf_reset(out);
    if (p == NULL) {
        return TRONE_ECORRUPT;
    }
    buf_put_bytes(out, p, size);
    return out->error;
}

static int restore_stable(struct smr *s, const uint8_t *data, size_t size)
{
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    if (buf_get_u8(&r) != PERSIST_VERSION) {
        return TRONE_ECORRUPT;
    }
    s->stable.seq = buf_get_u64(&r);
    buf_get_bytes(&r, s->stable.digest, TRONE_HASH_LEN);
    s->stable.mask = sigs_get(&r, s->config.replica_count, s->stable.sigs);
    int rc = copy_blob(&r, &s->stable.snapshot);
    if (rc != 0 || buf_reader_finish(&r) != 0 ||
        s->stable.seq % s->config.checkpoint_interval != 0) {
        return rc == TRONE_ENOMEM ? rc : TRONE_ECORRUPT;
    }
    if (s->stable.snapshot.used == 0) {
        return 0; /* only the proof: a state transfer brings the state */
    }
    uint8_t digest[TRONE_HASH_LEN];
    crypto_generichash(digest, sizeof(digest), s->stable.snapshot.data, s->stable.snapshot.used,
                       NULL, 0);
    if (sodium_memcmp(digest, s->stable.digest, TRONE_HASH_LEN) != 0) {
        return TRONE_ECORRUPT;
    }
    rc = smr__state_install(s, s->stable.snapshot.data, s->stable.snapshot.used);
    if (rc != 0) {
        return rc == TRONE_ENOMEM ? rc : TRONE_ECORRUPT;
    }
    s->executed = s->stable.seq;
    return 0;
}

static int restore_view(struct smr *s, const uint8_t *data, size_t size)
{
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    if (buf_get_u8(&r) != PERSIST_VERSION) {
        return TRONE_ECORRUPT;
    }
    s->view = buf_get_u64(&r);
    uint8_t changing = buf_get_u8(&r);
    if (buf_reader_finish(&r) != 0 || changing > 1) {
        return TRONE_ECORRUPT;
    }
    s->view_changing = changing == 1;
    return 0;
}

/* The restored horizon bounds the votes that may have left unrecorded: mute below it. */
static int restore_horizon(struct smr *s, const uint8_t *data, size_t size)
{
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    if (buf_get_u8(&r) != PERSIST_VERSION) {
        return TRONE_ECORRUPT;
    }
    s->horizon_view = buf_get_u64(&r);
    s->horizon_seq = buf_get_u64(&r);
    if (buf_reader_finish(&r) != 0 || s->horizon_view > s->view) {
        return TRONE_ECORRUPT; /* votes happen in the replica's view, which only grows */
    }
    s->mute_view = s->horizon_view;
    s->mute_seq = s->horizon_seq;
    return 0;
}

static void slot_read_cert(struct buf_reader *r, struct smr_slot *slot, unsigned flags, uint32_t n)
{
    struct smr_cert *c = &slot->cert;
    c->valid = true;
    c->view = buf_get_u64(r);
    buf_get_bytes(r, c->digest, TRONE_HASH_LEN);
    buf_get_bytes(r, c->pp_sig, TRONE_SIG_LEN);
    c->mask = sigs_get(r, n, c->sigs);
    if (flags & SLOT_CERT_BATCH_SAME) {
        buf_reset(&c->batch);
        buf_put_bytes(&c->batch, slot->batch.data, slot->batch.used);
        r->error = r->error != 0 ? r->error : c->batch.error;
    } else if (r->error == 0) {
        r->error = copy_blob(r, &c->batch);
    }
}

static void slot_read_decided(struct buf_reader *r, struct smr_slot *slot, unsigned flags)
{
    slot->decided = true;
    buf_get_bytes(r, slot->decided_digest, TRONE_HASH_LEN);
    if (flags & SLOT_DECIDED_BATCH_SAME) {
        buf_reset(&slot->decided_batch);
        buf_put_bytes(&slot->decided_batch, slot->batch.data, slot->batch.used);
        r->error = r->error != 0 ? r->error : slot->decided_batch.error;
    } else if (r->error == 0) {
        r->error = copy_blob(r, &slot->decided_batch);
    }
}

/* Fills the slot from its record. The own votes come back as sent, so retransmission
 * resends exactly them and a conflicting pre-prepare is refused. */
static int restore_slot(struct smr *s, uint64_t seq, const uint8_t *data, size_t size)
{
    if (!smr__in_window(s, seq)) {
        return TRONE_ECORRUPT; /* the drop at each checkpoint keeps records in the window */
    }
    struct smr_slot *slot = smr__slot(s, seq);
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    unsigned version = buf_get_u8(&r);
    unsigned flags = buf_get_u8(&r);
    slot->vote_view = buf_get_u64(&r);
    uint32_t self = s->config.self;
    if (version != PERSIST_VERSION || (flags & ~(unsigned)SLOT_FLAGS_ALL) != 0 ||
        ((flags & (SLOT_OWN_PREPARE | SLOT_SENT_COMMIT | SLOT_CERT_BATCH_SAME |
                   SLOT_DECIDED_BATCH_SAME)) != 0 &&
         !(flags & SLOT_HAS_PP))) {
        return TRONE_ECORRUPT;
    }
    if (flags & SLOT_HAS_PP) {
        slot->has_pp = true;
        buf_get_bytes(&r, slot->digest, TRONE_HASH_LEN);
        buf_get_bytes(&r, slot->pp_sig, TRONE_SIG_LEN);
        r.error = r.error != 0 ? r.error : copy_blob(&r, &slot->batch);
    }
    if (flags & SLOT_OWN_PREPARE) {
        slot->prepare_mask |= 1ull << self;
        memcpy(slot->prepare_digest[self], slot->digest, TRONE_HASH_LEN);
        buf_get_bytes(&r, slot->prepare_sig[self], TRONE_SIG_LEN);
    }
    if (flags & SLOT_SENT_COMMIT) {
        slot->sent_commit = true;
        slot->commit_mask |= 1ull << self;
        memcpy(slot->commit_digest[self], slot->digest, TRONE_HASH_LEN);
    }
    if (flags & SLOT_CERT) {
        slot_read_cert(&r, slot, flags, s->config.replica_count);
    }
    if (flags & SLOT_DECIDED) {
        slot_read_decided(&r, slot, flags);
    }
    if (r.error == TRONE_ENOMEM) {
        return TRONE_ENOMEM;
    }
    return buf_reader_finish(&r) != 0 ? TRONE_ECORRUPT : 0;
}

int smr_restore(struct smr *s, uint8_t kind, uint64_t seq, const uint8_t *data, size_t size)
{
    if (s->stepped || !s->restoring) {
        return TRONE_EINVAL;
    }
    if (kind < s->restore_kind ||
        (kind == s->restore_kind && seq <= s->restore_seq && s->restore_seq != 0)) {
        return TRONE_EINVAL;
    }
    s->restore_kind = kind;
    s->restore_seq = seq;
    switch (kind) {
    case SMR_RECORD_STABLE:
        return seq == 0 ? restore_stable(s, data, size) : TRONE_ECORRUPT;
    case SMR_RECORD_VIEW:
        return seq == 0 ? restore_view(s, data, size) : TRONE_ECORRUPT;
    case SMR_RECORD_SLOT:
        return restore_slot(s, seq, data, size);
    case SMR_RECORD_HORIZON:
        return seq == 0 ? restore_horizon(s, data, size) : TRONE_ECORRUPT;
    default:
        return TRONE_ECORRUPT;
    }
}

/* The leader of the restored view continues after the last seq it proposed in it, so it
 * never proposes a second batch for a (view, seq). */
static void restore_next_seq(struct smr *s)
{
    s->next_seq = s->executed + 1;
    for (uint64_t seq = s->stable.seq + 1; smr__in_window(s, seq); seq++) {
        const struct smr_slot *slot = &s->slots[seq % s->config.window];
        if (slot->seq == seq && (slot->has_pp || slot->decided) && seq >= s->next_seq) {
            s->next_seq = seq + 1;
        }
    }
}

int smr__restore_finish(struct smr *s)
{
    if (s->stepped || !s->restoring) {
        return TRONE_EINVAL;
    }
    s->restoring = false;
    if (s->stable.seq > 0 && s->stable.snapshot.used == 0) {
        s->executed = 0; /* the state arrives by state transfer; the decisions wait for it */
    }
    restore_next_seq(s);
    if (s->view_changing) {
        struct buf *own = &s->vc_bytes[s->config.self];
        buf_reset(own);
        smr_vc_encode_own(s, s->view, own);
        if (own->error != 0) {
            buf_reset(own);
            return TRONE_ENOMEM;
        }
        s->vc_view[s->config.self] = s->view;
    }
    for (uint32_t i = 0; i < s->config.window; i++) {
        s->slots[i].dirty = false; /* restored from disk: nothing new to write */
        s->slots[i].dirty_sync = false;
    }
    s->view_dirty = false;
    s->stable_dirty = false;
    s->horizon_dirty = false;
    smr__execute_ready(s);
    return 0;
}

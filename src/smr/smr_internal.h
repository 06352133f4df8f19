/* smr_internal.h: the replica core's state, shared by the smr_*.c files of this module.
 * Not a public interface: only src/smr includes it. No I/O, no clock. */
#ifndef TRONE_SMR_INTERNAL_H
#define TRONE_SMR_INTERNAL_H

#include "smr/smr.h"
#include "smr/smr_msg.h"

#define SMR_R TRONE_REPLICAS_MAX
#define SMR_PENDING_MAX 1024u
#define SMR_ENVELOPES_MAX 4096u
#define SMR_EXECUTED_MAX 4096u
#define SMR_CATCHUP_MAX 16u /* DECIDED messages sent to one laggard per STATUS */

/* A verified client request waiting to be executed (DESIGN.md 2: requests are signed). */
struct smr_pending {
    bool used;
    uint8_t client[TRONE_KEY_LEN];
    uint64_t request_id;
    uint8_t hash[TRONE_HASH_LEN]; /* of the encoded request: skips re-verifying in a batch */
    struct buf bytes;             /* the encoded request, as it appears in a batch */
    uint64_t since_ms;            /* arrival, or start of the current view if later */
    uint64_t proposed_seq;        /* leader only: seq it was proposed at in this view, or 0 */
};

/* Pending requests kept per client key (several processes may share a key). */
#define SMR_PENDING_PER_CLIENT 8u
/* Executed requests remembered per client key, with their results. */
#define SMR_CLIENT_RECENT 16u

/* One executed request of a client and its result. */
struct smr_client_done {
    uint64_t id;                     /* 0: unused */
    uint8_t op_hash[TRONE_HASH_LEN]; /* of its op: two processes that chose one id never get
                                        each other's result */
    bool kept;                       /* its result is kept (see smr__client_trim) */
    struct buf result;
};

/* The reply table entry of one client key: part of the replicated state, so a retransmitted
 * request gets the same reply and is never executed twice. Several processes may use one key,
 * each with its own increasing ids, so requests of one key are executed in any id order: a
 * request is new unless its id is among the SMR_CLIENT_RECENT executed ones (`done`, sorted
 * by id) or at most `low` (every id <= low was executed or is refused as stale). */
struct smr_client_entry {
    uint8_t key[TRONE_KEY_LEN];
    uint64_t low;
    struct smr_client_done done[SMR_CLIENT_RECENT];
};

/* What the reply table says of a request (smr__client_seen). */
enum smr_seen {
    SMR_SEEN_NEW,   /* execute it */
    SMR_SEEN_DONE,  /* executed: resend its kept result */
    SMR_SEEN_STALE, /* executed or too old, with no result to resend: TRONE_ESTALE */
};

/* The latest prepared certificate of a slot: the pre-prepare and Q-1 signed PREPAREs. */
struct smr_cert {
    bool valid;
    uint64_t view;
    uint8_t digest[TRONE_HASH_LEN];
    struct buf batch;
    uint8_t pp_sig[TRONE_SIG_LEN];
    uint64_t mask; /* replicas whose PREPARE signature is in sigs */
    uint8_t sigs[SMR_R][TRONE_SIG_LEN];
};

/* One sequence number of the log window (low, low + window]. */
struct smr_slot {
    uint64_t seq; /* the seq this slot holds; 0 when empty */
    /* Agreement in view vote_view. */
    uint64_t vote_view;
    bool has_pp;
    uint8_t digest[TRONE_HASH_LEN];
    struct buf batch;
    uint8_t pp_sig[TRONE_SIG_LEN];
    uint64_t prepare_mask;
    uint8_t prepare_digest[SMR_R][TRONE_HASH_LEN];
    uint8_t prepare_sig[SMR_R][TRONE_SIG_LEN];
    uint64_t commit_mask;
    uint8_t commit_digest[SMR_R][TRONE_HASH_LEN];
    bool sent_commit;
    uint64_t touched_ms; /* last progress, for retransmission */
    struct smr_cert cert;
    /* Decided: committed here, or learnt from f+1 matching DECIDED claims. */
    bool decided;
    uint8_t decided_digest[TRONE_HASH_LEN];
    struct buf decided_batch;
    uint64_t claim_mask;
    uint8_t claim_digest[SMR_R][TRONE_HASH_LEN];
    bool dirty;      /* changed what must be persisted since the last output */
    bool dirty_sync; /* ... including this replica's votes: persist before sending */
};

/* A checkpoint this replica took (with its state snapshot) or is collecting votes for. */
struct smr_ckpt {
    uint64_t seq; /* 0 when unused */
    bool own;
    uint8_t digest[TRONE_HASH_LEN];
    struct buf snapshot; /* the state at seq, when own */
    uint64_t vote_mask;
    uint8_t vote_digest[SMR_R][TRONE_HASH_LEN];
    uint8_t vote_sig[SMR_R][TRONE_SIG_LEN];
};

/* The stable checkpoint and its proof: Q signed CHECKPOINT votes (DESIGN: transferable). */
struct smr_stable {
    uint64_t seq;
    uint8_t digest[TRONE_HASH_LEN];
    uint64_t mask;
    uint8_t sigs[SMR_R][TRONE_SIG_LEN];
    struct buf snapshot; /* state at seq, when this replica has it */
};

struct smr {
    struct smr_config config;
    struct smr_app app;
    uint32_t quorum;       /* Q */
    uint32_t claim_quorum; /* f+1 under BFT, 1 under CFT */

    uint64_t view;
    bool view_changing;
    uint64_t view_started_ms;   /* entering the view or starting the view change */
    uint64_t view_timeout_ms;   /* doubles on each unsuccessful view change */
    uint64_t executed;          /* last executed seq */
    uint64_t next_seq;          /* leader: next seq to propose */
    uint64_t now_ms;
    uint64_t status_due_ms;

    struct smr_stable stable;   /* low watermark = stable.seq */
    struct smr_slot *slots;     /* window entries, indexed by seq % window */
    struct smr_ckpt *ckpts;     /* window / checkpoint_interval + 1 entries */
    uint32_t ckpt_count;

    struct smr_pending pending[SMR_PENDING_MAX];
    struct smr_client_entry *clients; /* sorted by key */
    uint32_t client_count;
    uint32_t client_capacity;

    /* View change: the latest valid VIEW_CHANGE from each replica, and the NEW_VIEW that
     * started the current view (resent to replicas that missed it). */
    struct buf vc_bytes[SMR_R];
    uint64_t vc_view[SMR_R];
    struct buf new_view;

    /* State transfer in progress. */
    uint64_t state_wanted_seq;
    uint64_t state_asked_ms;
    uint32_t state_asked_replica;

    /* Persistence: what changed in this step (smr_persist.c). */
    bool view_dirty;
    bool stable_dirty;
    bool horizon_dirty;
    /* The vote horizon (docs/PROTOCOL.md section 11): every pre-prepare this replica proposed
     * or accepted (its PREPARE) is in view horizon_view at a seq <= horizon_seq, and that
     * promise is on disk before the vote leaves, so the vote itself need not be. After a
     * restart the restored horizon is a mute zone: no new vote in mute_view at a seq <=
     * mute_seq, where a vote lost with the crash may have gone out. */
    uint64_t horizon_view;
    uint64_t horizon_seq;
    uint64_t mute_view;
    uint64_t mute_seq;
    bool restoring;      /* between smr_create and smr_restore_finish */
    bool stepped;        /* a step ran: restoring is over */
    uint8_t restore_kind; /* last record restored, for the order check */
    uint64_t restore_seq;
    struct buf persist_data;
    struct smr_record *records; /* window + SMR_RECORDS_EXTRA entries */
    size_t *record_offsets;

    /* Output of the current step. */
    struct buf out_data;
    struct smr_envelope envelopes[SMR_ENVELOPES_MAX];
    size_t envelope_offsets[SMR_ENVELOPES_MAX];
    struct smr_executed executed_log[SMR_EXECUTED_MAX];
    struct smr_output output;
    struct buf scratch;         /* temporary encodings (snapshots, results) */
    struct buf result;          /* the current execution's result */
};

/* smr.c: outputs and helpers. */
uint32_t smr__leader_of(const struct smr *s, uint64_t view);
bool smr__in_window(const struct smr *s, uint64_t seq);
struct smr_slot *smr__slot(struct smr *s, uint64_t seq);
/* Starts an outgoing message; the caller encodes into the returned buf, then calls
 * smr__send_done. */
struct buf *smr__send_begin(struct smr *s);
void smr__send_done(struct smr *s, enum smr_dest dest, uint32_t replica,
                    const uint8_t *client);
void smr__trace(struct smr *s, enum smr_trace_kind kind, int err, uint32_t from, uint64_t view,
                uint64_t seq);
uint32_t smr__popcount(uint64_t mask);

/* smr_request.c: client requests, pending set, replies, batching. */
void smr__on_request(struct smr *s, const uint8_t *client, const uint8_t *data, size_t size);
void smr__propose(struct smr *s);
void smr__send_reply(struct smr *s, const uint8_t *client, uint64_t id, int status,
                     const uint8_t *result, size_t size);
/* Verifies every request of a batch (skipping those already verified as pending). */
int smr__batch_check(struct smr *s, const uint8_t *batch, size_t size);
void smr__pending_forget_executed(struct smr *s);
void smr__pending_restart_timers(struct smr *s);
bool smr__pending_expired(const struct smr *s);
struct smr_client_entry *smr__client_find(struct smr *s, const uint8_t key[TRONE_KEY_LEN]);
struct smr_client_entry *smr__client_get(struct smr *s, const uint8_t key[TRONE_KEY_LEN]);
/* What the table says of request id with op (NULL: whatever its op, as for a pending
 * request already executed); *done, if not NULL, gets the matching entry. The op is hashed
 * only when its id is in the table. */
enum smr_seen smr__client_seen(const struct smr_client_entry *entry, uint64_t id,
                               const uint8_t *op, size_t op_size,
                               const struct smr_client_done **done);
struct buf *smr__client_record(struct smr *s, struct smr_client_entry *entry, uint64_t id,
                               const uint8_t *op, size_t op_size);
void smr__client_trim(struct smr_client_entry *entry, uint64_t keep_id);
void smr__client_entry_close(struct smr_client_entry *entry);

/* smr_agree.c: normal-case agreement and execution. */
void smr__on_pre_prepare(struct smr *s, uint32_t from, const uint8_t *data, size_t size);
void smr__on_prepare(struct smr *s, uint32_t from, const uint8_t *data, size_t size);
void smr__on_commit(struct smr *s, uint32_t from, const uint8_t *data, size_t size);
/* Adopts a pre-prepare (own proposal, new-view entry or a backup's accepted one). */
void smr__accept_pre_prepare(struct smr *s, const struct smr_pre_prepare *pp, bool send_prepare);
void smr__execute_ready(struct smr *s);
void smr__slot_decide(struct smr *s, struct smr_slot *slot, const uint8_t *batch, size_t size,
                      const uint8_t digest[TRONE_HASH_LEN]);
void smr__retransmit(struct smr *s);

/* smr_checkpoint.c: checkpoints, state snapshots, state transfer. */
void smr__take_checkpoint(struct smr *s);
void smr__on_checkpoint(struct smr *s, uint32_t from, const uint8_t *data, size_t size);
void smr__on_state_request(struct smr *s, uint32_t from, const uint8_t *data, size_t size);
void smr__on_state(struct smr *s, uint32_t from, const uint8_t *data, size_t size);
void smr__want_state(struct smr *s, uint32_t from, uint64_t seq);
/* Verifies a checkpoint proof (Q distinct valid signatures over seq and digest). */
bool smr__stable_proof_valid(const struct smr *s, uint64_t seq, const uint8_t *digest,
                             uint64_t mask, const uint8_t sigs[][TRONE_SIG_LEN]);
/* Moves the low watermark to seq with its proof, keeping a copy of the snapshot (or none
 * when snapshot_size is 0). */
void smr__stable_advance(struct smr *s, uint64_t seq, const uint8_t *digest, uint64_t mask,
                         const uint8_t sigs[][TRONE_SIG_LEN], const uint8_t *snapshot,
                         size_t snapshot_size);

/* Installs a snapshot (application state and reply table); on error nothing changes. */
int smr__state_install(struct smr *s, const uint8_t *snapshot, size_t size);

/* smr_persist.c: persistence records and restore. */
#define SMR_RECORDS_EXTRA 4u /* per step, beside one per slot: STABLE, its drop, VIEW, HORIZON */
void smr__persist_collect(struct smr *s);
/* False when a vote in (view, seq) may contradict one lost in a crash (the mute zone). */
bool smr__may_vote(const struct smr *s, uint64_t view, uint64_t seq);
/* Moves the horizon over (view, seq) if needed; the record is synced before the vote leaves. */
void smr__horizon_cover(struct smr *s, uint64_t view, uint64_t seq);
int smr__restore_finish(struct smr *s);
static inline void smr__slot_dirty(struct smr_slot *slot) { slot->dirty = true; }
static inline void smr__slot_dirty_sync(struct smr_slot *slot)
{
    slot->dirty = true;
    slot->dirty_sync = true;
}

/* smr_view.c and smr_new_view.c: view changes (PBFT section 4.4). */
void smr__view_change_start(struct smr *s, uint64_t view);
void smr__on_view_change(struct smr *s, uint32_t from, const uint8_t *data, size_t size);
void smr__on_new_view(struct smr *s, uint32_t from, const uint8_t *data, size_t size);
void smr__view_tick(struct smr *s);
void smr__new_view_try(struct smr *s);

/* smr_status.c: STATUS gossip, catch-up by DECIDED, NEW_VIEW forwarding. */
void smr__status_tick(struct smr *s);
void smr__on_status(struct smr *s, uint32_t from, const uint8_t *data, size_t size);
void smr__on_decided(struct smr *s, uint32_t from, const uint8_t *data, size_t size);

#endif

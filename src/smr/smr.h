/* smr.h: the replication protocol core, a PBFT-family Byzantine (or crash) fault-tolerant state
 * machine replication. No I/O, no clock, no randomness: time arrives in every input, messages
 * leave in the output, and the replicated application is reached through struct smr_app.
 * The protocol is described in docs/PROTOCOL.md; this header is its programming interface. */
#ifndef TRONE_SMR_H
#define TRONE_SMR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"
#include "trone/error.h"

enum smr_fault_model { SMR_CFT = 0, SMR_BFT = 1 };

struct smr_config {
    uint32_t replica_count;       /* n */
    uint32_t fault_count;         /* f: n >= 3f+1 (BFT) or n >= 2f+1 (CFT) */
    enum smr_fault_model model;
    uint32_t self;                /* this replica's id, < n */
    uint8_t replica_keys[TRONE_REPLICAS_MAX][TRONE_KEY_LEN]; /* Ed25519 public keys */
    uint8_t secret_key[TRONE_SECRET_KEY_LEN];                /* this replica's Ed25519 secret */
    uint32_t batch_max;           /* requests per proposal; 1 turns batching off */
    uint32_t pipeline_max;        /* proposals in flight beyond the last executed */
    uint32_t checkpoint_interval; /* a checkpoint every this many sequence numbers */
    uint32_t window;              /* log length: a multiple of checkpoint_interval, >= 2x */
    uint64_t request_timeout_ms;  /* a pending request older than this starts a view change */
    uint64_t status_interval_ms;  /* period of STATUS gossip, retransmission and catch-up */
};

/* Fills a config with defaults (batch 64, pipeline 4, checkpoint 64, window 256,
 * request timeout 2000 ms, status 200 ms); the caller sets n, f, model, self and keys. */
void smr_config_defaults(struct smr_config *c);
/* 0 if the config is consistent (quorum rules, window), TRONE_ECONFIG otherwise. */
TRONE_MUST_CHECK int smr_config_check(const struct smr_config *c);

/* The replicated application. Calls are deterministic functions of the state and arguments:
 * every correct replica makes the same calls in the same order. */
struct smr_app {
    void *ctx;
    /* Executes one operation by client at seq; appends the result to result (empty allowed).
     * Must not fail: an operation that is refused produces a result that says so. */
    void (*execute)(void *ctx, uint64_t seq, const uint8_t client[TRONE_KEY_LEN],
                    const uint8_t *op, size_t op_size, struct buf *result);
    /* Appends the whole application state to out. */
    int (*snapshot)(void *ctx, struct buf *out);
    /* Replaces the state with a snapshot; on error the state is unchanged. */
    int (*restore)(void *ctx, const uint8_t *data, size_t size);
};

enum smr_input_kind {
    SMR_IN_TICK = 0,     /* time passed; no message */
    SMR_IN_REPLICA = 1,  /* a message from replica `from`, authenticated by its session */
    SMR_IN_CLIENT = 2,   /* a message from the client whose key is `client` (authenticated) */
};

struct smr_input {
    uint64_t now_ms;
    enum smr_input_kind kind;
    uint32_t from;
    const uint8_t *client; /* TRONE_KEY_LEN bytes, for SMR_IN_CLIENT */
    const uint8_t *data;   /* borrowed for the call */
    size_t size;
};

enum smr_dest { SMR_DEST_REPLICA = 0, SMR_DEST_ALL = 1, SMR_DEST_CLIENT = 2 };

/* A message to send. data points into core-owned memory valid until the next smr_step. */
struct smr_envelope {
    enum smr_dest dest;
    uint32_t replica;                /* SMR_DEST_REPLICA */
    uint8_t client[TRONE_KEY_LEN];   /* SMR_DEST_CLIENT */
    const uint8_t *data;
    size_t size;
};

/* One executed request, reported for tracing and for the simulator's checks. */
struct smr_executed {
    uint64_t seq;
    uint8_t client[TRONE_KEY_LEN];
    uint64_t request_id;
    uint8_t result_digest[TRONE_HASH_LEN];
};

enum smr_trace_kind {
    SMR_TRACE_REJECTED = 1,      /* a message was dropped: err, from */
    SMR_TRACE_VIEW_CHANGE = 2,   /* started a view change to view */
    SMR_TRACE_NEW_VIEW = 3,      /* entered view in normal operation */
    SMR_TRACE_CHECKPOINT = 4,    /* seq became a stable checkpoint */
    SMR_TRACE_STATE_INSTALLED = 5, /* installed a checkpoint of seq fetched from a peer */
};

struct smr_trace {
    enum smr_trace_kind kind;
    int err;
    uint32_t from;
    uint64_t view;
    uint64_t seq;
};

#define SMR_TRACE_MAX 16

/* Persistence (docs/PROTOCOL.md section 11). What a replica must remember across a crash is
 * reported as records keyed (kind, seq): the runtime makes every record of an output durable
 * (one transaction) BEFORE it sends any envelope of that output, and hands the records back
 * through smr_restore at the next start. Payloads are opaque to the runtime. */
enum smr_record_kind {
    SMR_RECORD_STABLE = 1, /* seq 0: the stable checkpoint, its proof and snapshot */
    SMR_RECORD_VIEW = 2,   /* seq 0: the view and whether a view change is under way */
    SMR_RECORD_SLOT = 3,   /* seq: this replica's votes, certificate and decision for seq */
    SMR_RECORD_HORIZON = 4, /* seq 0: the (view, seq) below which this replica may have voted */
};

struct smr_record {
    uint8_t kind;       /* enum smr_record_kind */
    uint64_t seq;
    bool drop;          /* delete every record of kind with a seq <= seq; no data */
    /* Must be durable before this output's envelopes leave. A record without it (decisions,
     * checkpoints: facts a quorum already holds) may be committed later, with the next
     * record that has it or after a short delay, and lost in a crash without harm; records
     * must still be made durable in output order. */
    bool sync;
    const uint8_t *data; /* core-owned, valid until the next call into the core */
    size_t size;
};

struct smr_output {
    size_t record_count; /* persist these first, in order, in one transaction */
    const struct smr_record *records;
    size_t envelope_count;
    const struct smr_envelope *envelopes;
    size_t executed_count;
    const struct smr_executed *executed;
    size_t trace_count; /* at most SMR_TRACE_MAX; extra records are dropped */
    struct smr_trace trace[SMR_TRACE_MAX];
    uint64_t deadline_ms; /* the core wants a TICK by this time */
};

struct smr;

/* Creates a replica core with empty state. The app is borrowed and must outlive the core.
 * Returns NULL on invalid config or out of memory. */
struct smr *smr_create(const struct smr_config *config, const struct smr_app *app);
/* Frees the core and everything it owns. */
void smr_destroy(struct smr *s);

/* Restores one persisted record into a core just created (before any smr_step). Records
 * must come in (kind, seq) order, as the store returns them. TRONE_ECORRUPT for a record that
 * does not decode or contradicts the others, TRONE_EINVAL out of order or after a step,
 * TRONE_ENOMEM; the core must then be destroyed. */
TRONE_MUST_CHECK int smr_restore(struct smr *s, uint8_t kind, uint64_t seq, const uint8_t *data,
                                 size_t size);
/* Ends the restore: installs the checkpoint's state, re-executes the decided batches after it
 * and returns what that produced (records, replies, checkpoint votes) like smr_step does.
 * TRONE_ECORRUPT if the snapshot does not match its digest or the application refuses it. */
TRONE_MUST_CHECK int smr_restore_finish(struct smr *s, uint64_t now_ms,
                                        const struct smr_output **out);

/* Feeds one input and returns what to do. Hostile or malformed messages are rejected with
 * a trace record, never an assertion; the return value is 0 unless memory ran out
 * (TRONE_ENOMEM), in which case the core's state is unchanged. The output stays valid
 * until the next call. */
TRONE_MUST_CHECK int smr_step(struct smr *s, const struct smr_input *in,
                              const struct smr_output **out);

/* Read-only views for status reporting. */
uint64_t smr_view(const struct smr *s);
uint32_t smr_leader(const struct smr *s);
bool smr_view_changing(const struct smr *s);
uint64_t smr_executed_seq(const struct smr *s);
uint64_t smr_stable_seq(const struct smr *s);

/* Quorum sizes for a config: agreement quorum Q and reply quorum (f+1 BFT, 1 CFT). */
uint32_t smr_quorum(uint32_t n, uint32_t f, enum smr_fault_model model);
uint32_t smr_reply_quorum(uint32_t f, enum smr_fault_model model);

#endif

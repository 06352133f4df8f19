/* sim.h: the deterministic simulator's world (DESIGN.md 3.3, STYLE.md rules 18-19). Replicas
 * (the real smr core over the real control table) and clients (the real smr client core) run
 * in one process against a virtual clock and a seeded, faulty network. Test code only. */
#ifndef TRONE_SIM_H
#define TRONE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"
#include "smr/smr.h"
#include "smr/smr_client.h"
#include "core/assert.h"

/* A call whose side effect is wanted and which must succeed in the simulator (keys, codecs of
 * well-formed input, queue operations). Failing is a simulator bug: it aborts like an
 * assertion, and unlike an assertion it reads as a call, not a check. */
#define SIM_MUST(expr)                                         \
    do {                                                       \
        if (!(expr)) {                                         \
            trone_assert_fail(#expr, __FILE__, __LINE__);      \
        }                                                      \
    } while (0)

/* Exit codes (STYLE.md rule 19). An assertion is SIGABRT. */
#define SIM_EXIT_OK 0
#define SIM_EXIT_INVARIANT 2
#define SIM_EXIT_LIVENESS 3

#define SIM_CLIENTS_MAX 4u
#define SIM_NODES_MAX (TRONE_REPLICAS_MAX + SIM_CLIENTS_MAX)
#define SIM_OPS_MAX 48u
#define SIM_EVENTS_MAX (1u << 18)
#define SIM_REPLAY_MAX 64u
#define SIM_NEVER UINT64_MAX

/* ---- PRNG: xoshiro256**, seeded by splitmix64 from the seed only (sim_rng.c). ---- */
struct sim_rng {
    uint64_t s[4];
};

void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, bound); bound > 0. */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t bound);
/* Uniform in [low, high]. */
uint64_t sim_rng_range(struct sim_rng *r, uint64_t low, uint64_t high);
/* True with probability permille / 1000. */
bool sim_rng_chance(struct sim_rng *r, uint32_t permille);

/* ---- Event queue: a binary heap ordered by (time, node, kind, insertion) (sim_queue.c). ---- */
enum sim_event_kind { SIM_EV_TICK = 0, SIM_EV_NET = 1, SIM_EV_CHAOS = 2 };

struct sim_event {
    uint64_t time_ms;
    uint32_t node;  /* destination node index */
    uint32_t kind;  /* enum sim_event_kind */
    uint64_t order; /* insertion counter: a total order for equal keys */
    uint32_t from;  /* true sender node index (NET) */
    uint8_t *data;  /* owned (NET) */
    size_t size;
};

struct sim_queue {
    struct sim_event *heap;
    size_t count;
    size_t capacity;
    uint64_t order_next;
};

void sim_queue_init(struct sim_queue *q);
void sim_queue_close(struct sim_queue *q);
/* Takes ownership of ev->data. Returns false (and frees data) if the queue is full. */
bool sim_queue_push(struct sim_queue *q, struct sim_event *ev);
/* Pops the earliest event into *ev; false if empty. The caller owns ev->data. */
bool sim_queue_pop(struct sim_queue *q, struct sim_event *ev);
const struct sim_event *sim_queue_peek(const struct sim_queue *q);
/* Strict ordering used by the heap and by tick selection: true if a comes before b. */
bool sim_event_before(const struct sim_event *a, const struct sim_event *b);

/* ---- Byzantine behaviours: filters on a replica's outputs (sim_byz.c). ---- */
enum sim_byz_kind {
    SIM_BYZ_MUTE = 1u << 0,
    SIM_BYZ_EQUIVOCATE = 1u << 1,
    SIM_BYZ_CORRUPT = 1u << 2,
    SIM_BYZ_FORGE = 1u << 3,
    SIM_BYZ_REPLAY = 1u << 4,
    SIM_BYZ_LIE = 1u << 5, /* replies to clients with a wrong result */
};

struct sim_replay_entry {
    uint8_t *data;
    size_t size;
};

/* A replica's disk: the persisted records, sorted by (kind, seq) (sim_disk.c). */
struct sim_disk_rec {
    uint8_t kind;
    uint64_t seq;
    uint8_t *data;
    size_t size;
};

struct sim_disk_pending {
    uint8_t kind;
    uint64_t seq;
    bool drop;
    uint8_t *data;
    size_t size;
};

/* Records without sync wait at most this long before they are committed (as in rt_store). */
#define SIM_DISK_LAZY_MS 50u

struct sim_disk {
    struct sim_disk_rec *recs; /* committed */
    size_t count;
    size_t capacity;
    struct sim_disk_pending *pending; /* not yet committed: lost in a crash */
    size_t pending_count;
    size_t pending_capacity;
    uint64_t pending_since_ms;
};

void sim_disk_apply(struct sim_disk *d, const struct smr_output *out, uint64_t now_ms);
/* A crash: records not yet committed are lost. */
void sim_disk_crash(struct sim_disk *d);
/* Feeds every record to a fresh core; the smr_restore error, or 0. */
int sim_disk_restore(const struct sim_disk *d, struct smr *core);
void sim_disk_close(struct sim_disk *d);

struct sim_replica {
    struct smr *core;
    struct sim_disk disk;   /* what survives a crash when the run persists */
    void *table; /* struct brk_table */
    struct smr_app app;
    struct smr_config config;
    bool up;
    bool crash_prone;
    unsigned byz;           /* enum sim_byz_kind mask; 0 = correct */
    uint64_t tick_ms;       /* next TICK, or SIM_NEVER */
    uint64_t down_until_ms; /* restart time while crashed */
    uint64_t last_exec_seq; /* last seq seen in its executed records since (re)start */
    uint64_t exec_count;    /* records since (re)start */
    uint64_t restarts;
    struct sim_replay_entry replay[SIM_REPLAY_MAX];
    uint32_t replay_count;
};

/* One planned operation of a client, built by sim_work.c. */
struct sim_op {
    uint8_t bytes[512];
    size_t size;
    const char *what;
};

struct sim_client {
    struct smr_client *core;
    uint8_t public_key[TRONE_KEY_LEN];
    uint8_t secret_key[TRONE_SECRET_KEY_LEN];
    uint64_t tick_ms;
    uint64_t submit_at_ms; /* next submission, or SIM_NEVER */
    uint64_t think_ms_max;
    uint32_t inflight_max;
    struct sim_op ops[SIM_OPS_MAX];
    uint32_t op_count;
    uint32_t op_next;
    uint64_t ids[SIM_OPS_MAX]; /* request id of each submitted op */
    bool done[SIM_OPS_MAX];
    uint32_t done_count;
    uint64_t last_id; /* shared keys: the last id submitted */
};

/* Per-seed fault configuration, chosen by the PRNG (sim_world.c). */
struct sim_faults {
    uint32_t drop_permille;
    uint32_t dup_permille;
    uint32_t reorder_permille;
    uint64_t delay_ms_min;
    uint64_t delay_ms_max;
    uint64_t reorder_ms_max;
    uint32_t partition_permille; /* chance per chaos period to start a partition */
    uint32_t crash_permille;     /* chance per chaos period to crash a crash-prone replica */
    uint32_t corrupt_permille;   /* Byzantine corrupt: per message */
    uint32_t forge_permille;     /* Byzantine forge: per message */
    uint32_t replay_permille;    /* Byzantine replay: per message */
    uint32_t slow_node;          /* a node whose outgoing messages are slow, or UINT32_MAX */
    uint64_t slow_ms_max;        /* its extra delay */
};

/* ---- Checker state (sim_check.c). ---- */
struct sim_exec_rec {
    uint8_t client[TRONE_KEY_LEN];
    uint64_t request_id;
    uint8_t result_digest[TRONE_HASH_LEN];
};

struct sim_seq_rec {
    bool seen;
    bool closed;
    uint32_t count;
    uint32_t first_replica;
    struct sim_exec_rec *recs;
    uint32_t capacity;
    bool has_digest;
    uint8_t table_digest[TRONE_HASH_LEN];
};

struct sim_req_rec {
    uint8_t client[TRONE_KEY_LEN];
    uint64_t request_id;
    uint64_t seq;
    uint8_t result_digest[TRONE_HASH_LEN];
};

/* One vote a correct replica sent: (replica, kind, view, seq) -> digest (sim_check_votes.c). */
struct sim_vote_rec {
    bool used;
    uint8_t kind; /* SMR_MSG_PREPARE for a pre-prepare or a PREPARE, SMR_MSG_COMMIT */
    uint32_t replica;
    uint64_t view;
    uint64_t seq;
    uint8_t digest[TRONE_HASH_LEN];
};

struct sim_check {
    struct sim_vote_rec *votes; /* open addressing, vote_capacity a power of two */
    size_t vote_count;
    size_t vote_capacity;
    struct sim_seq_rec *seqs; /* indexed by seq */
    size_t seq_capacity;
    struct sim_req_rec *reqs; /* every executed (client, id), unsorted */
    size_t req_count;
    size_t req_capacity;
    uint64_t checks;
};

struct sim_params {
    uint32_t n;
    uint32_t f;
    enum smr_fault_model model;
    uint32_t client_count; /* including the admin, client 0 */
    uint32_t client_ops_max; /* operations per non-admin client */
    uint32_t batch_max;
    uint32_t pipeline_max;
    uint32_t checkpoint_interval;
    uint32_t window_factor;
    uint64_t request_timeout_ms;
    uint64_t status_interval_ms;
    uint64_t retransmit_ms;
    uint64_t safety_ms;   /* phase 1 length */
    uint64_t liveness_ms; /* phase 2 budget */
    uint64_t chaos_period_ms;
};

struct sim {
    uint64_t seed;
    bool verbose;
    struct sim_rng rng;
    struct sim_params p;
    struct sim_faults faults;
    bool healed; /* phase 2: no drops, no partitions, no crashes */
    bool persist; /* replicas restart from their disk; false: with empty memory (amnesia) */
    /* Clients 2k-1 and 2k share one key, as processes of one operator do; each such client
     * has one request in flight and takes ids from the clock at each submission, as the
     * runtime does (rt_client_core_init), so the two clients' ids interleave. */
    bool shared_keys;
    uint64_t now_ms;
    struct sim_queue queue;
    struct sim_replica replicas[TRONE_REPLICAS_MAX];
    struct sim_client clients[SIM_CLIENTS_MAX];
    uint8_t replica_pk[TRONE_REPLICAS_MAX][TRONE_KEY_LEN];
    uint8_t replica_sk[TRONE_REPLICAS_MAX][TRONE_SECRET_KEY_LEN];
    uint64_t partition_mask;  /* replicas on side B while partitioned */
    uint64_t partition_until_ms;
    struct sim_check check;
    int failure;              /* SIM_EXIT_* once decided */
    char failure_text[512];
    uint64_t steps;
    uint64_t delivered;
    uint64_t dropped;
    uint64_t view_max;
    uint64_t state_installs;
    uint64_t restores; /* restarts that read persisted records back */
    uint64_t stale;
    struct buf scratch;
};

/* Node indexes: replicas first, then clients. */
static inline uint32_t sim_client_node(const struct sim *s, uint32_t client_idx)
{
    return s->p.n + client_idx;
}
static inline bool sim_node_is_client(const struct sim *s, uint32_t node)
{
    return node >= s->p.n;
}
static inline bool sim_replica_correct(const struct sim *s, uint32_t replica)
{
    return s->replicas[replica].byz == 0;
}

/* Totals over a seed range, printed in the summary to show what the seeds exercised. */
struct sim_stats {
    uint64_t seeds;
    uint64_t view_changes; /* seeds that reached a view above 0 */
    uint64_t state_installs;
    uint64_t restores;
    uint64_t stale;
    uint64_t crashes;
    uint64_t byzantine; /* seeds with a Byzantine replica */
    uint64_t requests;
    uint64_t delivered;
};

/* sim_world.c: building a world from a seed, running the phases. */
/* Picks this seed's cluster, options, faults and faulty replicas (model: -1 for mixed). */
void sim_params_pick(struct sim *s, int model);
/* Creates every node. Returns false on out of memory. */
bool sim_world_init(struct sim *s, uint64_t seed, bool verbose);
void sim_world_close(struct sim *s);
/* Runs one whole seed (both phases); returns SIM_EXIT_*. */
int sim_run_seed(uint64_t seed, int model, bool verbose, struct sim_stats *stats);
/* Runs one CFT seed in which EVERY replica may crash and restart (more than f over the run,
 * at most what the seed's timing allows at once), restarting from its disk if persist. */
int sim_run_seed_crash_all(uint64_t seed, bool persist, bool verbose, struct sim_stats *stats);
/* Processes the next event. False if nothing is left to do or a failure was recorded. */
bool sim_step(struct sim *s);
/* Steps until pred holds (true) or max_ms of virtual time passed or a failure (false). */
bool sim_step_until(struct sim *s, bool (*pred)(struct sim *s, void *arg), void *arg,
                    uint64_t max_ms);
void sim_fail(struct sim *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sim_trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool sim_all_clients_done(struct sim *s, void *arg);
bool sim_converged(struct sim *s, void *arg);
void sim_liveness_report(struct sim *s, char *out, size_t size);

/* sim_node.c: replicas and clients. */
bool sim_replica_start(struct sim *s, uint32_t idx);
void sim_replica_crash(struct sim *s, uint32_t idx);
void sim_replica_tick(struct sim *s, uint32_t idx);
void sim_replica_deliver(struct sim *s, uint32_t idx, uint32_t from_node, const uint8_t *data,
                         size_t size);
bool sim_client_start(struct sim *s, uint32_t idx);
void sim_client_tick(struct sim *s, uint32_t idx);
void sim_client_deliver(struct sim *s, uint32_t idx, uint32_t from_node, const uint8_t *data,
                        size_t size);
void sim_nodes_close(struct sim *s);
/* Emits what one replica's core output asks for, through its Byzantine filter. */
void sim_replica_emit(struct sim *s, uint32_t idx, const struct smr_output *out);

/* sim_net.c: the faulty network. */
/* Sends bytes from one node to another with this seed's faults (copied). */
void sim_net_send(struct sim *s, uint32_t from, uint32_t to, const uint8_t *data, size_t size);
bool sim_net_partitioned(const struct sim *s, uint32_t from, uint32_t to);
void sim_net_chaos(struct sim *s);
const char *sim_msg_name(const uint8_t *data, size_t size);

/* sim_byz.c: a Byzantine replica's view of one outgoing message to one replica or client. */
void sim_byz_send(struct sim *s, uint32_t idx, uint32_t to, const uint8_t *data, size_t size);
/* Called once per outgoing PRE_PREPARE to all: equivocation builds per-destination versions. */
bool sim_byz_equivocate(struct sim *s, uint32_t idx, const uint8_t *data, size_t size);
void sim_byz_close(struct sim_replica *r);

/* sim_check.c: invariants after every step. */
void sim_check_init(struct sim_check *c);
void sim_check_close(struct sim_check *c);
void sim_check_executed(struct sim *s, uint32_t idx, const struct smr_output *out);
void sim_check_replica_restarted(struct sim *s, uint32_t idx);
void sim_check_client_done(struct sim *s, uint32_t idx, const struct smr_client_done *d);
void sim_check_table(struct sim *s, uint32_t idx);
/* sim_check_votes.c: a correct replica never contradicts a vote it sent, across restarts. */
void sim_check_votes(struct sim *s, uint32_t idx, const struct smr_output *out);
void sim_check_votes_close(struct sim_check *c);

/* sim_work.c: operations of the admin and the clients. */
void sim_work_plan(struct sim *s);
void sim_table_digest(struct sim *s, uint32_t idx, uint8_t out[TRONE_HASH_LEN]);
/* Creates a control table and its smr_app for replica idx; false on out of memory. */
bool sim_table_create(struct sim *s, uint32_t idx);
void sim_table_destroy(struct sim *s, uint32_t idx);

/* sim_scenario.c */
int sim_scenario_run(const char *name, bool verbose);

#endif

/* sim_ev.h: the simulator's EVENT-PATH world (issue 3 point 3, DESIGN.md 2 and 3.3). Four
 * replicas (n = 4, f = 1) run the real brk_events core over one agreed control table;
 * publishers run the real cln_pub core and subscribers the real cln_sub core, each with one
 * connection to every replica. Connections are TCP/Noise sessions: in order per direction,
 * seeded delays, and they can break (both ends told; messages in flight are lost) and come
 * back (the publisher resends what is unacked, the subscriber re-ATTACHes), mirroring
 * src/rt/rt_replica.c and src/rt/rt_events.c. At most f replicas are faulty in a run: crashed
 * (restarting with empty event-path state), flaky (their connections break) or Byzantine
 * (filters on their outputs, sim_ev_byz.c). Invariants are checked at every delivery against
 * the publishers' ground-truth logs (sim_ev_check.c). Test code only. */
#ifndef TRONE_SIM_EV_H
#define TRONE_SIM_EV_H

#include "broker/brk_events.h"
#include "broker/brk_table.h"
#include "client/cln_pub.h"
#include "client/cln_sub.h"
#include "sim.h"

#define SIM_EV_N 4u
#define SIM_EV_F 1u
#define SIM_EV_PUBS_MAX 3u
#define SIM_EV_SUBS_MAX 3u
#define SIM_EV_CLIENTS_MAX (SIM_EV_PUBS_MAX + SIM_EV_SUBS_MAX)
/* Channels: one per class under test. Adding total-order channels later means adding a row
 * to sim_ev_channel_classes (sim_ev_world.c) and a position check in sim_ev_check.c. */
#define SIM_EV_CHANNELS 4u
/* Events one publisher publishes on one channel in a run (ground truth is indexed by seq). */
#define SIM_EV_EVENTS_MAX 400u
/* Epochs of one publisher in a run (it restarts at most twice). */
#define SIM_EV_EPOCHS_MAX 3u
#define SIM_EV_PAYLOAD_MAX 96u
#define SIM_EV_HOLD_MAX 8u
#define SIM_EV_TRACE_LINES 48u
#define SIM_EV_TRACE_LINE 200u

/* Queue event kinds beyond sim.h's TICK, NET, CHAOS. */
#define SIM_EV_RECONNECT 3u

/* Byzantine behaviours of a replica on the event path (filters on its outputs). */
enum sim_ev_byz {
    SIM_EV_BYZ_ALTER = 1u << 0,      /* payload, seq, time or auth changed in DELIVERs; ACKs */
    SIM_EV_BYZ_FORGE = 1u << 1,      /* events in an authorized publisher's name */
    SIM_EV_BYZ_REPLAY = 1u << 2,     /* old DELIVERs sent again */
    SIM_EV_BYZ_REORDER = 1u << 3,    /* DELIVERs held back and sent out of order */
    SIM_EV_BYZ_MUTE = 1u << 4,       /* no DELIVER at all, while ACKing every PUBLISH */
    SIM_EV_BYZ_GARBAGE = 1u << 5,    /* malformed messages, bogus GAP and ATTACHED */
    SIM_EV_BYZ_FORGE_SELF = 1u << 6, /* validly signed events under the replica's own key */
    SIM_EV_BYZ_ALL = (1u << 7) - 1u,
};

/* Forced settings of a scenario; -1 (or false) leaves the choice to the seed. */
struct sim_ev_force {
    int byz;            /* Byzantine mask of replica 1, 0 for none */
    int crash;          /* 1: replica 2 crash-prone */
    int flaky;          /* 1: the faulty replica's connections break */
    int flow;           /* 1: small replica queues and paused subscriber connections */
    int lists;          /* 1: subscribers know each channel's publishers; 0: they do not */
    bool novote;        /* subscribers decide BFT channels on the first copy (must fail) */
    bool strict_window; /* count copies that came beyond a subscriber's window (see check) */
    int netbreaks;      /* 1: connections to correct replicas break too (network faults) */
};

struct sim_ev_channel {
    char tag[16];
    struct brk_class cls;
    bool publisher[SIM_EV_PUBS_MAX];  /* authorized publishers (by publisher index) */
    bool subscriber[SIM_EV_SUBS_MAX]; /* authorized subscribers */
    bool fifo_only;                   /* FIFO channel (total order is another branch's work) */
};

/* One direction of a connection keeps FIFO order: arrivals never go back in time. */
struct sim_ev_conn {
    bool up;
    bool paused;           /* flow control: the replica's socket to a subscriber is backed up */
    bool refused;          /* the last ATTACHED from this replica refused (retry later) */
    uint32_t gen;          /* connection instance; messages of an older instance are lost */
    uint64_t arrive_ms[2]; /* latest arrival scheduled: [0] to the replica, [1] to the client */
    uint64_t pause_until_ms;
    /* Highest seq a correct replica sent on this connection, per channel, publisher, epoch. */
    uint64_t last_seq[SIM_EV_CHANNELS][SIM_EV_PUBS_MAX][SIM_EV_EPOCHS_MAX];
};

struct sim_ev_held {
    uint32_t client;
    uint8_t *data;
    size_t size;
};

struct sim_ev_replica {
    struct brk_events core;
    bool up;
    bool crash_prone;
    bool flaky;
    unsigned byz; /* enum sim_ev_byz mask; 0 = correct */
    bool flush_due;
    uint64_t tick_ms;
    uint64_t down_until_ms;
    uint64_t restarts;
    uint64_t dropped_seen; /* flow-control drops of its core already counted */
    uint64_t forge_self_seq;
    struct sim_replay_entry replay[SIM_REPLAY_MAX];
    uint32_t replay_count;
    struct sim_ev_held held[SIM_EV_HOLD_MAX];
    uint32_t held_count;
};

/* What publisher p really published on channel c in one epoch: the truth every delivery is
 * compared to. promised: the events its ack quorum acknowledged before it crashed (validity
 * covers those of an epoch it left; the rest may be lost with the publisher). */
struct sim_ev_truth {
    uint64_t count;
    uint64_t promised;
    uint64_t time_us[SIM_EV_EVENTS_MAX + 1];
    uint32_t size[SIM_EV_EVENTS_MAX + 1];
    uint8_t hash[SIM_EV_EVENTS_MAX + 1][TRONE_HASH_LEN];
};

/* A subscriber's view of one (channel, publisher): what it delivered or skipped, and which
 * correct replicas' copies reached it (bit r), for judging its gaps. */
struct sim_ev_seen {
    uint64_t next; /* lowest seq neither delivered nor skipped, FIFO from 1 */
    uint8_t state[SIM_EV_EVENTS_MAX + 1]; /* 0 not yet, 1 delivered, 2 skipped by a GAP */
    uint8_t copies[SIM_EV_EVENTS_MAX + 1];
    uint8_t beyond[SIM_EV_EVENTS_MAX + 1]; /* copies that came beyond the subscriber's window */
};

struct sim_ev_client {
    bool publisher;
    uint32_t role_idx; /* publisher or subscriber index */
    char name[16];
    uint8_t public_key[TRONE_KEY_LEN];
    uint8_t secret_key[TRONE_SECRET_KEY_LEN];
    bool channel[SIM_EV_CHANNELS]; /* publishes or subscribes on it */
    uint64_t tick_ms;
    /* Publisher. */
    struct cln_pub pub;
    int pub_idx[SIM_EV_CHANNELS];
    uint64_t epoch;                     /* the current one, epochs[epoch_count - 1] */
    uint64_t epochs[SIM_EV_EPOCHS_MAX]; /* each restart takes a larger one */
    uint32_t epoch_count;
    uint64_t publish_at_ms; /* next publish, SIM_NEVER when done */
    uint64_t gap_ms_max;
    uint32_t left; /* events still to publish */
    /* Subscriber. */
    struct cln_sub sub;
    uint64_t sub_deadline_us;
    uint64_t attach_retry_ms;
    struct sim_ev_seen seen[SIM_EV_CHANNELS][SIM_EV_PUBS_MAX][SIM_EV_EPOCHS_MAX];
    uint64_t delivered;
    uint64_t gaps;
    uint64_t notices;
};

struct sim_ev_counts {
    uint64_t published;
    uint64_t delivered;
    uint64_t skipped;
    uint64_t notices;
    uint64_t altered;
    uint64_t forged;
    uint64_t replayed;
    uint64_t reordered;
    uint64_t muted;
    uint64_t garbage;
    uint64_t breaks;
    uint64_t crashes;
    uint64_t restarts;     /* publisher restarts */
    uint64_t flow_dropped; /* events dropped by correct replicas' flow control */
    uint64_t lost;         /* messages lost with a broken connection */
};

struct sim_ev {
    uint64_t seed;
    bool verbose;
    struct sim_rng rng;
    struct sim_ev_force force;
    /* Parameters picked by the seed. */
    uint32_t pub_count;
    uint32_t sub_count;
    uint32_t client_count;
    bool byz_run;   /* a Byzantine replica in this run */
    bool flow;      /* flow control drops may happen */
    bool netbreaks; /* connections of correct replicas break too (copies may be lost) */
    uint32_t netbreak_permille;
    bool lists; /* subscribers know the publisher lists */
    bool novote;
    uint64_t delay_ms_min;
    uint64_t delay_ms_max;
    uint32_t break_permille;
    uint32_t crash_permille;
    uint32_t pause_permille;
    uint32_t restart_permille; /* a publisher restarts (new epoch, unacked events lost) */
    uint32_t byz_permille;
    uint32_t queue_events_max;
    uint32_t window;
    uint64_t gap_wait_ms;
    uint64_t safety_ms;
    uint64_t liveness_ms;
    uint64_t chaos_period_ms;
    /* State. */
    bool healed;
    uint64_t now_ms;
    uint64_t steps;
    struct sim_queue queue;
    struct brk_table table;
    uint8_t admin_pk[TRONE_KEY_LEN];
    uint8_t admin_sk[TRONE_SECRET_KEY_LEN];
    uint8_t replica_pk[SIM_EV_N][TRONE_KEY_LEN];
    uint8_t replica_sk[SIM_EV_N][TRONE_SECRET_KEY_LEN];
    struct sim_ev_channel channels[SIM_EV_CHANNELS];
    struct sim_ev_replica replicas[SIM_EV_N];
    struct sim_ev_client clients[SIM_EV_CLIENTS_MAX]; /* publishers first, then subscribers */
    struct sim_ev_conn conns[SIM_EV_CLIENTS_MAX][SIM_EV_N];
    struct sim_ev_truth truth[SIM_EV_PUBS_MAX][SIM_EV_CHANNELS][SIM_EV_EPOCHS_MAX];
    struct sim_ev_counts counts;
    int failure;
    char failure_text[512];
    char trace[SIM_EV_TRACE_LINES][SIM_EV_TRACE_LINE];
    uint64_t trace_count;
    struct buf scratch;
};

/* Node indexes: replicas 0..n-1, then clients. */
static inline uint32_t sim_ev_node(uint32_t client) { return SIM_EV_N + client; }
static inline bool sim_ev_correct(const struct sim_ev *s, uint32_t r)
{
    return s->replicas[r].byz == 0;
}
static inline uint64_t sim_ev_conn_id(uint32_t client, uint32_t gen)
{
    return ((uint64_t)gen << 8) | client;
}

/* sim_ev_world.c */
/* Runs one seed (model: SMR_BFT allows a Byzantine replica, SMR_CFT only crashes, -1 mixed);
 * returns SIM_EXIT_*. Adds the run's counts to total. */
int sim_ev_run_seed(uint64_t seed, const struct sim_ev_force *force, int model, bool verbose,
                    struct sim_ev_counts *total);
void sim_ev_fail(struct sim_ev *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sim_ev_trace(struct sim_ev *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sim_ev_channel_by_tag(const struct sim_ev *s, const char *tag);
int sim_ev_publisher_by_key(const struct sim_ev *s, const uint8_t key[TRONE_KEY_LEN]);
/* The index of epoch among publisher p's epochs, or -1. */
int sim_ev_epoch_idx(const struct sim_ev *s, uint32_t p, uint64_t epoch);

/* sim_ev_net.c: connections. */
/* Sends on the connection between client and replica (dir 0: to the replica). */
void sim_ev_send(struct sim_ev *s, uint32_t client, uint32_t replica, int dir, const uint8_t *data,
                 size_t size);
void sim_ev_conn_break(struct sim_ev *s, uint32_t client, uint32_t replica, const char *why);
void sim_ev_conn_open(struct sim_ev *s, uint32_t client, uint32_t replica);
void sim_ev_arrive(struct sim_ev *s, struct sim_event *ev);
void sim_ev_chaos(struct sim_ev *s);
void sim_ev_heal(struct sim_ev *s);

/* sim_ev_replica.c */
void sim_ev_replica_start(struct sim_ev *s, uint32_t r);
void sim_ev_replica_crash(struct sim_ev *s, uint32_t r);
void sim_ev_replica_receive(struct sim_ev *s, uint32_t r, uint32_t client, const uint8_t *data,
                            size_t size);
void sim_ev_replica_tick(struct sim_ev *s, uint32_t r);
void sim_ev_replica_close(struct sim_ev *s, uint32_t r);

/* sim_ev_client.c */
void sim_ev_client_start(struct sim_ev *s, uint32_t c);
void sim_ev_client_close(struct sim_ev *s, uint32_t c);
void sim_ev_client_up(struct sim_ev *s, uint32_t c, uint32_t replica);
void sim_ev_client_down(struct sim_ev *s, uint32_t c, uint32_t replica);
void sim_ev_client_receive(struct sim_ev *s, uint32_t c, uint32_t replica, const uint8_t *data,
                           size_t size);
void sim_ev_client_tick(struct sim_ev *s, uint32_t c);
/* The publisher crashes and restarts at once with a larger epoch: its connections break, its
 * unacked events are gone, what its quorum acked stays promised. */
void sim_ev_pub_restart(struct sim_ev *s, uint32_t c);
uint64_t sim_ev_pending(struct sim_ev *s);

/* sim_ev_byz.c: a Byzantine replica's view of one outgoing message to a client. */
void sim_ev_byz_send(struct sim_ev *s, uint32_t r, uint32_t client, const uint8_t *data,
                     size_t size);
/* Releases held-back messages (at the replica's flush). */
void sim_ev_byz_release(struct sim_ev *s, uint32_t r, bool all);
void sim_ev_byz_close(struct sim_ev_replica *rep);

/* sim_ev_check.c: invariants. */
void sim_ev_check_copy(struct sim_ev *s, uint32_t c, uint32_t replica, const uint8_t *data,
                       size_t size);
void sim_ev_check_items(struct sim_ev *s, uint32_t c, const struct cln_sub_output *out);
bool sim_ev_check_complete(struct sim_ev *s, bool report);
bool sim_ev_integrity_checked(const struct sim_ev *s, uint32_t ch);
bool sim_ev_validity_checked(const struct sim_ev *s, uint32_t ch);

/* sim_ev_scenario.c */
/* Runs scenario name over seeds first..last (0, 0: its default seeds); "events-list" lists. */
int sim_ev_scenario_run(const char *name, uint64_t first, uint64_t last, bool verbose);
/* Runs seeds first..last and prints a summary; replay names the options that replay a seed.
 * Returns the worst SIM_EXIT_*. */
int sim_ev_run_range(uint64_t first, uint64_t last, const struct sim_ev_force *force, int model,
                     const char *replay, bool verbose);
void sim_ev_force_none(struct sim_ev_force *f);

#endif

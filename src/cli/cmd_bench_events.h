/* cmd_bench_events.h: `trone bench events`, shared between the TRONE runs
 * (cmd_bench_events.c) and the unreplicated baselines (cmd_bench_base.c: Mosquitto and NATS).
 * One harness for every system: publishers stamp each payload with their send time, a
 * publisher index and a sequence number; subscribers check every event arrives exactly once in
 * order and record its delay; publishers keep at most a window of events ahead of the slowest
 * subscriber, so that no system is measured while it drops. Only for the CLI. */
#ifndef TRONE_CMD_BENCH_EVENTS_H
#define TRONE_CMD_BENCH_EVENTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/brk_op.h"
#include "cli/cmd_spawn.h"
#include "rt/rt_client.h"

#define EVB_CLIENTS_MAX 64u
/* Payload header: u64 send time (monotonic ns) | u32 publisher index | u32 zero | u64 seq. */
#define EVB_HEADER_SIZE 24u
/* Without progress of any subscriber for this long, a run fails. */
#define EVB_STALL_MS 20000u

/* One measured configuration of one system, shared by its client threads. */
struct evb_run {
    uint32_t pub_count;
    uint32_t sub_count;
    uint32_t size;             /* payload bytes, >= EVB_HEADER_SIZE */
    uint64_t events_per_pub;   /* 0: publish for seconds_ns instead */
    uint64_t seconds_ns;
    double rate_per_pub;       /* offered events/s per publisher; 0: as fast as allowed */
    uint64_t window;           /* events a publisher may be ahead of its slowest subscriber */
    pthread_barrier_t ready;   /* every client connected (and warmed up): main + clients */
    pthread_barrier_t start;   /* the measured phase begins */
    _Atomic uint64_t start_ns;
    _Atomic uint64_t published[EVB_CLIENTS_MAX];       /* per publisher */
    _Atomic uint64_t final[EVB_CLIENTS_MAX];           /* per publisher, UINT64_MAX until done */
    _Atomic uint64_t received[EVB_CLIENTS_MAX][EVB_CLIENTS_MAX]; /* [sub][pub] */
    _Atomic uint64_t progress_ns;                      /* last delivery anywhere */
    _Atomic int failed;
    pthread_mutex_t lock;      /* errmsg */
    char errmsg[512];
    /* Per subscriber: delays of delivered events (ns) and the time of its last delivery. */
    uint64_t *latency_ns[EVB_CLIENTS_MAX];
    uint64_t latency_count[EVB_CLIENTS_MAX];
    uint64_t latency_capacity[EVB_CLIENTS_MAX];
    uint64_t last_ns[EVB_CLIENTS_MAX];
    uint64_t warm[EVB_CLIENTS_MAX]; /* per subscriber: bit p set once publisher p's warm-up came */
};

/* Figures of one configuration. */
struct evb_figures {
    uint64_t events;           /* per subscriber (every publisher's events) */
    double seconds;            /* measured phase: start to the last subscriber's last event */
    double events_per_s;       /* events delivered to each subscriber / seconds */
    double p50_ms, p99_ms, p999_ms, max_ms;
    double server_cpu_us_per_event; /* broker processes (all replicas), per published event */
    double client_cpu_us_per_event; /* this process (every client thread), per published event */
    uint64_t server_peak_kib[TRONE_REPLICAS_MAX]; /* VmHWM per broker process */
    uint32_t server_count;
};

/* Prepares r for a run (counters, barriers for main + every client, latency arrays). Returns
 * 0 or TRONE_ENOMEM. evb_run_close frees it. */
TRONE_MUST_CHECK int evb_run_init(struct evb_run *r);
void evb_run_close(struct evb_run *r);
/* Records the first failure (later ones are dropped) and makes every client stop. */
void evb_fail(struct evb_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool evb_failed(struct evb_run *r);

/* Publisher side. How many more events publisher pub may send now (rate from start_ns, its own
 * start of the measured phase; window; total): 0 when it must wait; *done set once it sent its
 * last one (then final[pub] is set). */
uint64_t evb_pub_allowed(struct evb_run *r, uint32_t pub, uint64_t start_ns, uint64_t now_ns,
                         bool *done);
/* Writes the header of event seq of publisher pub into payload (r->size bytes, rest zero). */
void evb_payload_fill(uint8_t *payload, uint32_t pub, uint64_t seq, uint64_t now_ns);
/* Counts one sent event of publisher pub. */
void evb_pub_sent(struct evb_run *r, uint32_t pub, uint64_t count);

/* Subscriber side. Checks one delivered payload of subscriber sub (seq 0 is a warm-up event,
 * not counted): the right size, a known publisher, the next seq of that publisher. Records
 * the delay. Returns 0, or fails the run and returns -1. */
int evb_sub_deliver(struct evb_run *r, uint32_t sub, const uint8_t *payload, size_t size,
                    uint64_t now_ns);
/* True once subscriber sub received every publisher's final count. */
bool evb_sub_complete(struct evb_run *r, uint32_t sub);
/* True once sub got the warm-up event (seq 0) of every publisher. */
bool evb_sub_warm(struct evb_run *r, uint32_t sub);
/* True when nothing moved for EVB_STALL_MS in the measured phase (the run is then failed). */
bool evb_stalled(struct evb_run *r, uint64_t now_ns);

/* Main thread: waits on both barriers, measures the phase and computes the figures. pids are
 * the broker processes (CPU and VmHWM from /proc). Returns 0 or -1 (r->errmsg says why). */
int evb_measure(struct evb_run *r, pthread_t *threads, uint32_t thread_count, const pid_t *pids,
                uint32_t pid_count, struct evb_figures *fig);

/* A free TCP port on 127.0.0.1 (bound and released; 0 on failure). */
uint16_t evb_free_port(void);
/* Connects a blocking TCP socket to 127.0.0.1:port, retrying for at most wait_ms. -1 on
 * failure. */
int evb_connect(uint16_t port, uint64_t wait_ms);
/* snprintf that tells whether the text fit (truncated otherwise). */
bool evb_format(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The absolute path of program if an executable is found in PATH, /usr/sbin or /usr/bin. */
bool evb_find_program(const char *name, char *out, size_t out_size);

/* `trone bench events ...` (argv[1] is "events"): exit status as cmd.h says. */
int cmd_bench_events(int argc, char **argv);

/* Baselines (cmd_bench_base.c). Each runs one configuration on a broker it started on a free
 * port (and stops): 0 with fig filled, 1 when the broker or its client library is missing
 * (why says so; the comparison is skipped), -1 on failure (why). */
int evb_mosquitto_run(struct spawn_set *set, struct evb_run *r, struct evb_figures *fig,
                      char *why, size_t why_size);
int evb_nats_run(struct spawn_set *set, struct evb_run *r, struct evb_figures *fig, char *why,
                 size_t why_size);

/* TRONE (cmd_bench_trone.c): one temporary cluster per class. */
struct evt_cluster {
    struct spawn_cluster cluster;
    struct rt_client *admin;
    struct brk_op op;
    uint32_t pub_count, sub_count;
    char errmsg[512];
};

/* Makes and starts a cluster of replicas in set (name: its directory), waits until it is
 * ready and registers x->pub_count publishers and x->sub_count subscribers (keys beside the
 * admin's). Returns 0 or a TRONE_E* code with x->errmsg. */
int evt_cluster_start(struct evt_cluster *x, struct spawn_set *set, const char *name,
                      uint32_t replicas);
/* Stops the replicas; each must exit 0 by itself (else TRONE_EIO, x->errmsg). */
int evt_cluster_stop(struct evt_cluster *x);
/* Creates channel tag of class cls, published by every publisher, read by every subscriber. */
int evt_channel_create(struct evt_cluster *x, const char *tag, const char *cls);
/* One measurement on a running cluster: 0 with fig, 1 when the class was refused (why), -1 on
 * failure (why). */
int evt_trone_run(struct evt_cluster *x, const char *tag, struct evb_run *r,
                  struct evb_figures *fig, char *why, size_t why_size);
/* Monotonic clock in ns. */
uint64_t evb_now_ns(void);

#endif

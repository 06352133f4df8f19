/* sim_run.c: picking one seed's parameters and running its two phases: safety (faults on,
 * bounded virtual time) then liveness (network healed, crashed replicas restarted, Byzantine
 * ones still Byzantine) which must converge within a bounded virtual time. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

static void pick_cluster(struct sim *s, int model)
{
    struct sim_params *p = &s->p;
    if (model < 0) {
        model = sim_rng_chance(&s->rng, 500) ? SMR_BFT : SMR_CFT;
    }
    p->model = (enum smr_fault_model)model;
    uint64_t roll = sim_rng_below(&s->rng, 100);
    if (p->model == SMR_BFT) {
        p->n = roll < 70 ? 4 : roll < 85 ? 5 : 7;
        p->f = p->n == 7 ? 2 : 1;
    } else {
        p->n = roll < 60 ? 3 : 5;
        p->f = p->n == 5 ? 2 : 1;
    }
    p->client_count = (uint32_t)sim_rng_range(&s->rng, 3, SIM_CLIENTS_MAX);
    /* Mostly short runs; some long ones reach many checkpoints and log truncations. */
    p->client_ops_max = sim_rng_chance(&s->rng, 150) ? 14 : 7;
    p->batch_max = sim_rng_chance(&s->rng, 400) ? 1 : (uint32_t)sim_rng_range(&s->rng, 2, 16);
    p->pipeline_max = (uint32_t)sim_rng_range(&s->rng, 1, 4);
    p->checkpoint_interval = (uint32_t)sim_rng_range(&s->rng, 4, 16);
    p->window_factor = (uint32_t)sim_rng_range(&s->rng, 2, 4);
    p->request_timeout_ms = sim_rng_range(&s->rng, 200, 1000);
    p->status_interval_ms = sim_rng_range(&s->rng, 20, 100);
    p->retransmit_ms = sim_rng_range(&s->rng, 100, 400);
    p->safety_ms = sim_rng_range(&s->rng, 2000, 6000);
    p->liveness_ms = 60000;
    p->chaos_period_ms = sim_rng_range(&s->rng, 50, 200);
}

static void pick_faults(struct sim *s)
{
    struct sim_faults *f = &s->faults;
    bool calm = sim_rng_chance(&s->rng, 150);
    f->drop_permille = calm ? 0 : (uint32_t)sim_rng_below(&s->rng, 150);
    f->dup_permille = (uint32_t)sim_rng_below(&s->rng, 100);
    f->reorder_permille = (uint32_t)sim_rng_below(&s->rng, 200);
    f->delay_ms_min = sim_rng_range(&s->rng, 1, 3);
    f->delay_ms_max = f->delay_ms_min + sim_rng_range(&s->rng, 0, 40);
    f->reorder_ms_max = sim_rng_range(&s->rng, 10, 200);
    f->partition_permille = calm ? 0 : (uint32_t)sim_rng_below(&s->rng, 40);
    f->crash_permille = (uint32_t)sim_rng_range(&s->rng, 5, 40);
    f->corrupt_permille = (uint32_t)sim_rng_range(&s->rng, 20, 300);
    f->forge_permille = (uint32_t)sim_rng_range(&s->rng, 20, 300);
    f->replay_permille = (uint32_t)sim_rng_range(&s->rng, 20, 300);
    f->slow_node = UINT32_MAX;
    if (sim_rng_chance(&s->rng, 200)) {
        f->slow_node = (uint32_t)sim_rng_below(&s->rng, s->p.n + s->p.client_count);
        f->slow_ms_max = sim_rng_range(&s->rng, 20, 500);
    }
}

/* At most f replicas are faulty over the whole run: Byzantine (BFT only) or crash-prone. */
static void pick_faulty(struct sim *s)
{
    uint32_t faulty = (uint32_t)sim_rng_range(&s->rng, 0, s->p.f);
    uint64_t taken = 0;
    for (uint32_t k = 0; k < faulty; k++) {
        /* Replica 0 leads view 0: make it faulty often, so a Byzantine leader is exercised. */
        uint32_t idx = sim_rng_chance(&s->rng, 400) ? 0 : (uint32_t)sim_rng_below(&s->rng, s->p.n);
        for (uint32_t tries = 0; tries < s->p.n && ((taken >> idx) & 1u); tries++) {
            idx = (idx + 1) % s->p.n;
        }
        taken |= 1ull << idx;
        struct sim_replica *r = &s->replicas[idx];
        if (s->p.model == SMR_BFT && sim_rng_chance(&s->rng, 600)) {
            if (sim_rng_chance(&s->rng, 150)) {
                r->byz = SIM_BYZ_MUTE;
            } else {
                unsigned mask = 0;
                for (uint32_t tries = 0; tries < 8 && mask == 0; tries++) {
                    mask = (unsigned)sim_rng_below(&s->rng, 32) << 1;
                }
                r->byz = mask == 0 ? SIM_BYZ_EQUIVOCATE : mask;
            }
        } else {
            r->crash_prone = true;
        }
    }
}

void sim_params_pick(struct sim *s, int model)
{
    pick_cluster(s, model);
    pick_faults(s);
    pick_faulty(s);
}

static void print_header(const struct sim *s)
{
    const struct sim_params *p = &s->p;
    printf("seed=%llu model=%s n=%u f=%u clients=%u batch=%u pipeline=%u ckpt=%u window=%u "
           "drop=%u dup=%u persist=%d shared_keys=%d faulty=", (unsigned long long)s->seed,
           p->model == SMR_BFT ? "bft" : "cft", p->n, p->f, p->client_count, p->batch_max,
           p->pipeline_max, p->checkpoint_interval, p->checkpoint_interval * p->window_factor,
           s->faults.drop_permille, s->faults.dup_permille, s->persist ? 1 : 0,
           s->shared_keys ? 1 : 0);
    for (uint32_t i = 0; i < p->n; i++) {
        const struct sim_replica *r = &s->replicas[i];
        if (r->byz != 0) {
            printf("r%u:byz%02x,", i, r->byz);
        } else if (r->crash_prone) {
            printf("r%u:crash,", i);
        }
    }
    printf("\n");
    fflush(stdout);
}

static void heal(struct sim *s)
{
    s->healed = true;
    s->partition_mask = 0;
    sim_trace(s, "phase=liveness");
    for (uint32_t i = 0; i < s->p.n; i++) {
        if (!s->replicas[i].up) {
            sim_trace(s, "fault=restart replica=%u", i);
            SIM_MUST(sim_replica_start(s, i));
        }
    }
}

static int run_phases(struct sim *s)
{
    (void)sim_step_until(s, NULL, NULL, s->p.safety_ms);
    if (s->failure != 0) {
        return s->failure;
    }
    heal(s);
    if (sim_step_until(s, sim_converged, NULL, s->p.liveness_ms)) {
        return SIM_EXIT_OK;
    }
    if (s->failure != 0) {
        return s->failure;
    }
    char report[400];
    sim_liveness_report(s, report, sizeof(report));
    sim_fail(s, SIM_EXIT_LIVENESS, "no liveness after %llu ms of healed network: %s",
             (unsigned long long)s->p.liveness_ms, report);
    return s->failure;
}

static void stats_add(const struct sim *s, struct sim_stats *stats)
{
    stats->seeds++;
    stats->view_changes += s->view_max > 0 ? 1 : 0;
    stats->state_installs += s->state_installs;
    stats->restores += s->restores;
    stats->stale += s->stale;
    stats->delivered += s->delivered;
    bool byzantine = false;
    for (uint32_t i = 0; i < s->p.n; i++) {
        stats->crashes += s->replicas[i].restarts;
        byzantine = byzantine || s->replicas[i].byz != 0;
    }
    stats->byzantine += byzantine ? 1 : 0;
    for (uint32_t i = 0; i < s->p.client_count; i++) {
        stats->requests += s->clients[i].done_count;
    }
}

/* crash_all: every replica is crash-prone (crash-recovery of all, CFT) and persist says
 * whether they restart from their disk; otherwise the seed decides. */
static int run_seed(uint64_t seed, int model, bool verbose, struct sim_stats *stats,
                    bool crash_all, bool persist)
{
    struct sim *s = calloc(1, sizeof(*s));
    TRONE_ASSERT(s != NULL);
    s->seed = seed;
    sim_rng_seed(&s->rng, seed);
    sim_params_pick(s, model);
    s->seed = seed;
    /* Even seeds restart crashed replicas from their disk, odd ones with empty memory; by
     * parity rather than the PRNG, so every seed's faults stay what they were. */
    s->persist = (seed & 1) == 0;
    /* One seed in three lets pairs of clients share a key (docs/PROTOCOL.md 4), by residue
     * for the same reason. */
    s->shared_keys = seed % 3 == 0;
    if (crash_all) {
        s->persist = persist;
        s->faults.crash_permille = 100 + s->faults.crash_permille * 5; /* 125..300 */
        for (uint32_t i = 0; i < s->p.n; i++) {
            s->replicas[i].byz = 0;
            s->replicas[i].crash_prone = true;
        }
    }
    print_header(s);
    SIM_MUST(sim_world_init(s, seed, verbose));
    int rc = run_phases(s);
    if (rc != SIM_EXIT_OK) {
        const char *name = model < 0 ? "mixed" : model == SMR_BFT ? "bft" : "cft";
        printf("seed=%llu FAIL exit=%d %s\nreplay: trone-sim --seed %llu --model %s -v\n",
               (unsigned long long)seed, rc, s->failure_text, (unsigned long long)seed, name);
    } else if (verbose) {
        printf("seed=%llu ok t=%llu steps=%llu delivered=%llu dropped=%llu view_max=%llu\n",
               (unsigned long long)seed, (unsigned long long)s->now_ms,
               (unsigned long long)s->steps, (unsigned long long)s->delivered,
               (unsigned long long)s->dropped, (unsigned long long)s->view_max);
    }
    fflush(stdout);
    stats_add(s, stats);
    sim_world_close(s);
    free(s);
    return rc;
}

int sim_run_seed(uint64_t seed, int model, bool verbose, struct sim_stats *stats)
{
    return run_seed(seed, model, verbose, stats, false, false);
}

int sim_run_seed_crash_all(uint64_t seed, bool persist, bool verbose, struct sim_stats *stats)
{
    return run_seed(seed, SMR_CFT, verbose, stats, true, persist);
}

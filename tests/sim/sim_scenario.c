/* sim_scenario.c: scripted scenarios on a fault-free network (delays only), each checking one
 * recovery path of the protocol with sim_step_until. The invariant checks of every step
 * still run. Scenarios: leader-crash, equivocating-leader, restart-state-transfer,
 * cft-amnesia, bft-amnesia (restarts without persistence), cft-restart-persisted and
 * bft-restart-persisted (the same restarts from the replica's disk). */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

#define SCENARIO_SEED 7u

static struct sim *scenario_world(uint32_t n, uint32_t f, bool verbose)
{
    struct sim *s = calloc(1, sizeof(*s));
    TRONE_ASSERT(s != NULL);
    sim_rng_seed(&s->rng, SCENARIO_SEED);
    struct sim_params *p = &s->p;
    p->n = n;
    p->f = f;
    p->model = SMR_BFT;
    p->client_count = 3;
    p->client_ops_max = 7;
    p->batch_max = 4;
    p->pipeline_max = 2;
    p->checkpoint_interval = 4;
    p->window_factor = 2;
    p->request_timeout_ms = 300;
    p->status_interval_ms = 50;
    p->retransmit_ms = 200;
    p->chaos_period_ms = 100;
    s->faults.delay_ms_min = 1;
    s->faults.delay_ms_max = 5;
    s->faults.reorder_ms_max = 1;
    s->faults.slow_node = UINT32_MAX;
    s->healed = true; /* no drops, partitions or random crashes */
    return s;
}

static int scenario_end(struct sim *s, const char *name, bool ok, const char *why)
{
    int rc = SIM_EXIT_OK;
    if (s->failure != 0) {
        rc = s->failure;
        printf("scenario=%s FAIL exit=%d %s\n", name, rc, s->failure_text);
    } else if (!ok) {
        rc = SIM_EXIT_LIVENESS;
        char report[400];
        sim_liveness_report(s, report, sizeof(report));
        printf("scenario=%s FAIL exit=%d %s: %s\n", name, rc, why, report);
    } else {
        printf("scenario=%s ok t=%llu view_max=%llu state_installs=%llu restores=%llu\n", name,
               (unsigned long long)s->now_ms, (unsigned long long)s->view_max,
               (unsigned long long)s->state_installs, (unsigned long long)s->restores);
    }
    sim_world_close(s);
    free(s);
    return rc;
}

/* The leader of view 0 crashes before any request: a view change must elect another leader
 * and every request must then complete. */
static int scenario_leader_crash(bool verbose)
{
    struct sim *s = scenario_world(4, 1, verbose);
    SIM_MUST(sim_world_init(s, SCENARIO_SEED, verbose));
    sim_replica_crash(s, 0);
    bool ok = sim_step_until(s, sim_all_clients_done, NULL, 30000);
    if (ok && s->view_max < 1) {
        return scenario_end(s, "leader-crash", false, "requests completed without a new view");
    }
    return scenario_end(s, "leader-crash", ok, "requests did not complete");
}

static bool leader_not_zero(struct sim *s, void *arg)
{
    (void)arg;
    for (uint32_t i = 1; i < s->p.n; i++) {
        if (smr_leader(s->replicas[i].core) == 0 || smr_view_changing(s->replicas[i].core)) {
            return false;
        }
    }
    return sim_converged(s, NULL);
}

/* The leader of view 0 sends different batches to different replicas: no conflicting batch
 * may execute, the equivocating leader must be replaced and every request complete. */
static int scenario_equivocating_leader(bool verbose)
{
    struct sim *s = scenario_world(4, 1, verbose);
    s->replicas[0].byz = SIM_BYZ_EQUIVOCATE;
    SIM_MUST(sim_world_init(s, SCENARIO_SEED, verbose));
    bool ok = sim_step_until(s, leader_not_zero, NULL, 60000);
    return scenario_end(s, "equivocating-leader", ok,
                        "the equivocating leader was not replaced or requests did not complete");
}

static bool executed_past(struct sim *s, void *arg)
{
    uint64_t seq = *(const uint64_t *)arg;
    for (uint32_t i = 0; i < 3; i++) {
        if (smr_stable_seq(s->replicas[i].core) < seq) {
            return false;
        }
    }
    return true;
}

/* A replica is down while the others run past several checkpoints (and truncate their logs);
 * restarted with empty state, it must catch up by state transfer to the same table. */
static int scenario_restart_state_transfer(bool verbose)
{
    struct sim *s = scenario_world(4, 1, verbose);
    SIM_MUST(sim_world_init(s, SCENARIO_SEED, verbose));
    sim_replica_crash(s, 3);
    bool ok = sim_step_until(s, sim_all_clients_done, NULL, 30000);
    uint64_t stable = 2 * s->p.checkpoint_interval * s->p.window_factor;
    if (ok) {
        /* Null requests do not advance execution: wait only for what the workload produced. */
        uint64_t reached = smr_stable_seq(s->replicas[0].core);
        stable = reached < stable ? reached : stable;
        ok = stable > 0 && sim_step_until(s, executed_past, &stable, 10000);
    }
    if (!ok) {
        return scenario_end(s, "restart-state-transfer", false, "no stable checkpoint");
    }
    SIM_MUST(sim_replica_start(s, 3));
    ok = sim_step_until(s, sim_converged, NULL, 30000);
    if (ok && s->state_installs == 0) {
        return scenario_end(s, "restart-state-transfer", false, "no state was installed");
    }
    return scenario_end(s, "restart-state-transfer", ok, "the restarted replica did not catch up");
}

static bool replica_executed(struct sim *s, void *arg)
{
    const uint64_t *want = arg; /* {replica, seq} */
    const struct sim_replica *r = &s->replicas[want[0]];
    return r->up && smr_executed_seq(r->core) >= want[1];
}

/* Replicas 0 and 2 (and 3 under BFT) decide requests while replica 1 is cut off; replica 2
 * then restarts (with empty memory in the amnesia scenarios, from its disk in the persisted
 * ones) and replica 0 is cut off. Under CFT (n=3) replicas 1 and 2
 * form a quorum that knows nothing of those decisions; under BFT (n=4) replica 3 still
 * remembers them. Either way the core must not decide other requests at the same seqs: a
 * restarted replica has to recover before it votes. */
static int scenario_amnesia(bool verbose, enum smr_fault_model model, const char *name,
                            bool persist)
{
    struct sim *s = scenario_world(model == SMR_CFT ? 3 : 4, 1, verbose);
    s->p.model = model;
    s->persist = persist;
    s->p.batch_max = 1;
    s->p.pipeline_max = 1;
    s->p.checkpoint_interval = 16;
    s->healed = false; /* partitions apply; every fault rate is zero */
    s->partition_until_ms = SIM_NEVER;
    SIM_MUST(sim_world_init(s, SCENARIO_SEED, verbose));
    uint64_t want[2] = {0, 2};
    bool ok = sim_step_until(s, replica_executed, want, 10000);
    s->partition_mask = 1u << 1;
    want[1] = smr_executed_seq(s->replicas[0].core) + 3;
    ok = ok && sim_step_until(s, replica_executed, want, 10000);
    if (!ok) {
        return scenario_end(s, name, false, "no progress without replica 1");
    }
    uint64_t decided = smr_executed_seq(s->replicas[0].core);
    sim_replica_crash(s, 2);
    SIM_MUST(sim_replica_start(s, 2));
    s->partition_mask = 1u << 0;
    want[0] = 1;
    want[1] = decided;
    (void)sim_step_until(s, replica_executed, want, 20000);
    s->partition_mask = 0;
    ok = sim_step_until(s, sim_converged, NULL, 30000);
    return scenario_end(s, name, ok, "no convergence after the partition healed");
}

/* Crash-recovery of every replica of CFT clusters over a range of seeds: with persistence
 * every run must stay safe and converge (docs/PROTOCOL.md section 11); without it (the
 * -amnesia variant, not in ctest) some seed is expected to break agreement. */
static int scenario_crash_recovery(bool verbose, const char *name, bool persist)
{
    struct sim_stats stats;
    memset(&stats, 0, sizeof(stats));
    uint64_t failed = 0;
    int worst = SIM_EXIT_OK;
    for (uint64_t seed = 1; seed <= 100; seed++) {
        int rc = sim_run_seed_crash_all(seed, persist, verbose, &stats);
        if (rc != SIM_EXIT_OK) {
            failed++;
            worst = rc > worst ? rc : worst;
        }
    }
    printf("scenario=%s %s seeds=1:100 failed=%llu crashes=%llu restores=%llu requests=%llu\n",
           name, failed == 0 ? "ok" : "FAIL", (unsigned long long)failed,
           (unsigned long long)stats.crashes, (unsigned long long)stats.restores,
           (unsigned long long)stats.requests);
    return worst;
}

int sim_scenario_run(const char *name, bool verbose)
{
    if (strcmp(name, "cft-crash-recovery") == 0) {
        return scenario_crash_recovery(verbose, name, true);
    }
    if (strcmp(name, "cft-crash-recovery-amnesia") == 0) {
        return scenario_crash_recovery(verbose, name, false);
    }
    if (strcmp(name, "cft-amnesia") == 0) {
        return scenario_amnesia(verbose, SMR_CFT, name, false);
    }
    if (strcmp(name, "bft-amnesia") == 0) {
        return scenario_amnesia(verbose, SMR_BFT, name, false);
    }
    if (strcmp(name, "cft-restart-persisted") == 0) {
        return scenario_amnesia(verbose, SMR_CFT, name, true);
    }
    if (strcmp(name, "bft-restart-persisted") == 0) {
        return scenario_amnesia(verbose, SMR_BFT, name, true);
    }
    if (strcmp(name, "leader-crash") == 0) {
        return scenario_leader_crash(verbose);
    }
    if (strcmp(name, "equivocating-leader") == 0) {
        return scenario_equivocating_leader(verbose);
    }
    if (strcmp(name, "restart-state-transfer") == 0) {
        return scenario_restart_state_transfer(verbose);
    }
    printf("scenarios: leader-crash equivocating-leader restart-state-transfer cft-amnesia "
           "bft-amnesia cft-restart-persisted bft-restart-persisted cft-crash-recovery "
           "cft-crash-recovery-amnesia\n");
    return strcmp(name, "list") == 0 ? SIM_EXIT_OK : 64;
}

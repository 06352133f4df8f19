/* sim_ev_scenario.c: seed ranges and named scenarios of the event world. A scenario forces
 * one fault setting (a Byzantine behaviour of replica 1, a crash-prone replica 2, flow
 * control, the subscribers' knowledge of publisher lists) and runs a few seeds of it. Two
 * scenarios are expected to FAIL and are registered with ctest as WILL_FAIL: they show that
 * the checks catch what they must (events-byz-forge-novote: subscribers that do not vote on
 * BFT channels deliver forgeries) and events-pks-nolist (a CFT channel with method PKS whose
 * subscribers do not know the authorized publishers, facing a Byzantine replica that signs
 * events with its own key: cln_sub waits for f+1 replicas to vouch for such a publisher). events-window-votes (not in ctest) runs tiny
 * subscriber windows under flow control and counts the copies that came beyond a window,
 * which the normal checks do not: it found cln_sub dropping such a copy's vote with its bytes
 * (fixed); what it still reports are copies whose bytes the window bound dropped (every copy
 * of an event came beyond the window, or collided in a stream not started yet). */
#include <stdio.h>
#include <string.h>

#include "sim_ev.h"

#define SIM_EV_SCENARIO_SEEDS 6u

struct sim_ev_scenario {
    const char *name;
    int byz;
    int crash;
    int flaky;
    int flow;
    int lists;
    bool novote;
    bool strict_window;
    int netbreaks;
    uint64_t first; /* default seeds; 0: 1..SIM_EV_SCENARIO_SEEDS */
    uint64_t last;
};

static const struct sim_ev_scenario sim_ev_scenarios[] = {
    {"events-byz-forge", SIM_EV_BYZ_FORGE | SIM_EV_BYZ_FORGE_SELF, 0, 0, 0, 1, false, false, -1, 0,
     0},
    {"events-byz-alter", SIM_EV_BYZ_ALTER, 0, -1, 0, -1, false, false, -1, 0, 0},
    {"events-byz-replay", SIM_EV_BYZ_REPLAY, 0, -1, 0, -1, false, false, -1, 0, 0},
    {"events-byz-reorder", SIM_EV_BYZ_REORDER, 0, -1, 0, -1, false, false, -1, 0, 0},
    {"events-byz-mute", SIM_EV_BYZ_MUTE, 0, -1, 0, -1, false, false, -1, 0, 0},
    {"events-byz-garbage", SIM_EV_BYZ_GARBAGE, 0, -1, 0, -1, false, false, -1, 0, 0},
    {"events-byz-all", SIM_EV_BYZ_ALL, 0, 1, -1, 1, false, false, -1, 0, 0},
    {"events-crash", 0, 1, 1, 0, -1, false, false, -1, 0, 0},
    {"events-flow", SIM_EV_BYZ_ALL, 0, -1, 1, -1, false, false, -1, 0, 0},
    {"events-netbreaks", SIM_EV_BYZ_ALL, 0, -1, -1, -1, false, false, 1, 0, 0},
    {"events-byz-forge-novote", SIM_EV_BYZ_FORGE, 0, 0, 0, 1, true, false, -1, 0, 0},
    {"events-pks-nolist", SIM_EV_BYZ_FORGE_SELF, 0, 0, 0, 0, false, false, -1, 0, 0},
    {"events-window-votes", SIM_EV_BYZ_ALL, 0, -1, 1, -1, false, true, -1, 1, 12},
};

void sim_ev_force_none(struct sim_ev_force *f)
{
    memset(f, 0, sizeof(*f));
    f->byz = -1;
    f->crash = -1;
    f->flaky = -1;
    f->flow = -1;
    f->lists = -1;
    f->netbreaks = -1;
    f->novote = false;
}

int sim_ev_run_range(uint64_t first, uint64_t last, const struct sim_ev_force *force, int model,
                     const char *replay, bool verbose)
{
    int worst = SIM_EXIT_OK;
    uint64_t failed = 0;
    uint64_t seeds = 0;
    struct sim_ev_counts total;
    memset(&total, 0, sizeof(total));
    for (uint64_t seed = first; seed <= last; seed++) {
        int rc = sim_ev_run_seed(seed, force, model, verbose, &total);
        seeds++;
        if (rc != SIM_EXIT_OK) {
            failed++;
            worst = worst == SIM_EXIT_INVARIANT ? worst : rc;
            printf("replay: trone-sim %s --seed %llu -v\n", replay, (unsigned long long)seed);
        }
        if (seed == UINT64_MAX) {
            break;
        }
    }
    printf("summary events seeds=%llu:%llu runs=%llu failed=%llu published=%llu delivered=%llu "
           "skipped=%llu flow_dropped=%llu altered=%llu forged=%llu replayed=%llu reordered=%llu "
           "muted=%llu garbage=%llu breaks=%llu crashes=%llu publisher_restarts=%llu\n",
           (unsigned long long)first, (unsigned long long)last, (unsigned long long)seeds,
           (unsigned long long)failed, (unsigned long long)total.published,
           (unsigned long long)total.delivered, (unsigned long long)total.skipped,
           (unsigned long long)total.flow_dropped, (unsigned long long)total.altered,
           (unsigned long long)total.forged, (unsigned long long)total.replayed,
           (unsigned long long)total.reordered, (unsigned long long)total.muted,
           (unsigned long long)total.garbage, (unsigned long long)total.breaks,
           (unsigned long long)total.crashes, (unsigned long long)total.restarts);
    return worst;
}

int sim_ev_scenario_run(const char *name, uint64_t first, uint64_t last, bool verbose)
{
    size_t count = sizeof(sim_ev_scenarios) / sizeof(sim_ev_scenarios[0]);
    for (size_t i = 0; i < count; i++) {
        const struct sim_ev_scenario *sc = &sim_ev_scenarios[i];
        if (strcmp(name, sc->name) != 0) {
            continue;
        }
        struct sim_ev_force f;
        sim_ev_force_none(&f);
        f.byz = sc->byz;
        f.crash = sc->crash;
        f.flaky = sc->flaky;
        f.flow = sc->flow;
        f.lists = sc->lists;
        f.novote = sc->novote;
        f.strict_window = sc->strict_window;
        f.netbreaks = sc->netbreaks;
        char replay[96];
        snprintf(replay, sizeof(replay), "--scenario %s", sc->name);
        printf("scenario %s\n", sc->name);
        if (first == 0) {
            first = sc->first != 0 ? sc->first : 1;
            last = sc->first != 0 ? sc->last : SIM_EV_SCENARIO_SEEDS;
        }
        return sim_ev_run_range(first, last, &f, SMR_BFT, replay, verbose);
    }
    if (strcmp(name, "events-list") == 0) {
        for (size_t i = 0; i < count; i++) {
            printf("%s\n", sim_ev_scenarios[i].name);
        }
        return SIM_EXIT_OK;
    }
    fprintf(stderr, "unknown scenario %s\n", name);
    return 64;
}

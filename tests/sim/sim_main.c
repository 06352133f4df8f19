/* sim_main.c: trone-sim, the deterministic simulator's command line (DESIGN.md 3.3).
 *
 * Usage:
 *   trone-sim --seed N [--model bft|cft|mixed] [-v]   replay one seed exactly; -v prints one
 *                                                      line per delivered message and fault
 *   trone-sim --seeds A:B [--model bft|cft|mixed]     run seeds A..B inclusive
 *   trone-sim --scenario NAME [-v]                    run one scripted scenario (see
 *                                                      sim_scenario.c; "list" names them)
 *   trone-sim --events (--seed N | --seeds A:B) [--model bft|cft|mixed] [--no-vote] [-v]
 *                                                      the event path's world (sim_ev*.c):
 *                                                      bft allows a Byzantine replica, cft
 *                                                      only crashes; --no-vote makes
 *                                                      subscribers decide BFT channels on the
 *                                                      first copy, which the checks must catch
 *   trone-sim --scenario events-NAME [--seed N] [-v]  an event-path scenario (its default
 *                                                      seeds, or one; events-list names them)
 * Each seed prints its number and parameters first. Exit codes: 0 all good, 2 an invariant
 * was violated, 3 no liveness (the worst over a range); a failed assertion is SIGABRT.
 * The model defaults to bft. A failing seed is replayed with the same --model and --seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sim.h"
#include "sim_ev.h"

static int usage(void)
{
    fprintf(stderr, "usage: trone-sim (--seed N | --seeds A:B) [--model bft|cft|mixed] [-v]\n"
                    "       trone-sim --scenario NAME|list|events-list [-v]\n"
                    "       trone-sim --events (--seed N | --seeds A:B) [--model M] [--no-vote] "
                    "[-v]\n");
    return 64;
}

static bool parse_u64(const char *text, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end != 0) {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_range(const char *text, uint64_t *first, uint64_t *last)
{
    char copy[64];
    if (strlen(text) >= sizeof(copy)) {
        return false;
    }
    strcpy(copy, text);
    char *colon = strchr(copy, ':');
    if (colon == NULL) {
        return false;
    }
    *colon = 0;
    return parse_u64(copy, first) && parse_u64(colon + 1, last) && *first <= *last;
}

static int parse_model(const char *text)
{
    if (strcmp(text, "bft") == 0) {
        return SMR_BFT;
    }
    if (strcmp(text, "cft") == 0) {
        return SMR_CFT;
    }
    if (strcmp(text, "mixed") == 0) {
        return -1;
    }
    return -2;
}

static int run_range(uint64_t first, uint64_t last, int model, bool verbose)
{
    int worst = SIM_EXIT_OK;
    uint64_t failed = 0;
    struct sim_stats stats = {0};
    for (uint64_t seed = first; seed <= last; seed++) {
        int rc = sim_run_seed(seed, model, verbose, &stats);
        if (rc != SIM_EXIT_OK) {
            failed++;
            if (worst != SIM_EXIT_INVARIANT) {
                worst = rc;
            }
        }
        if (seed == UINT64_MAX) {
            break;
        }
    }
    printf("summary seeds=%llu:%llu failed=%llu requests=%llu stale=%llu "
           "seeds_with_view_change=%llu state_installs=%llu crashes=%llu restores=%llu "
           "seeds_with_byzantine=%llu delivered=%llu\n",
           (unsigned long long)first, (unsigned long long)last, (unsigned long long)failed,
           (unsigned long long)stats.requests, (unsigned long long)stats.stale,
           (unsigned long long)stats.view_changes, (unsigned long long)stats.state_installs,
           (unsigned long long)stats.crashes, (unsigned long long)stats.restores, (unsigned long long)stats.byzantine,
           (unsigned long long)stats.delivered);
    return worst;
}

int main(int argc, char **argv)
{
    uint64_t first = 0;
    uint64_t last = 0;
    bool have_seeds = false;
    bool verbose = false;
    bool events = false;
    bool novote = false;
    int model = SMR_BFT;
    const char *scenario = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "-v") == 0) {
            verbose = true;
        } else if (strcmp(arg, "--events") == 0) {
            events = true;
        } else if (strcmp(arg, "--no-vote") == 0) {
            novote = true;
        } else if (strcmp(arg, "--seed") == 0 && value != NULL && parse_u64(value, &first)) {
            last = first;
            have_seeds = true;
            i++;
        } else if (strcmp(arg, "--seeds") == 0 && value != NULL
                   && parse_range(value, &first, &last)) {
            have_seeds = true;
            i++;
        } else if (strcmp(arg, "--model") == 0 && value != NULL && parse_model(value) >= -1) {
            model = parse_model(value);
            i++;
        } else if (strcmp(arg, "--scenario") == 0 && value != NULL) {
            scenario = value;
            i++;
        } else {
            return usage();
        }
    }
    log_level_set(LOG_WARN);
    if (scenario != NULL && strncmp(scenario, "events-", 7) == 0) {
        return sim_ev_scenario_run(scenario, have_seeds ? first : 0, have_seeds ? last : 0,
                                   verbose);
    }
    if (scenario != NULL) {
        return sim_scenario_run(scenario, verbose);
    }
    if (!have_seeds) {
        return usage();
    }
    if (events) {
        struct sim_ev_force force;
        sim_ev_force_none(&force);
        force.novote = novote;
        char replay[64];
        snprintf(replay, sizeof(replay), "--events --model %s%s",
                 model < 0 ? "mixed" : model == SMR_BFT ? "bft" : "cft",
                 novote ? " --no-vote" : "");
        return sim_ev_run_range(first, last, &force, model, replay, verbose);
    }
    return run_range(first, last, model, verbose);
}

/* cmd_demo.h: what the steps of `trone demo` share (cmd_demo.c: the cluster and its control
 * table; cmd_demo_events.c: publishers and subscribers through faults). CLI-internal. */
#ifndef TRONE_CMD_DEMO_H
#define TRONE_CMD_DEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/brk_op.h"
#include "cli/cmd_spawn.h"
#include "rt/rt_client.h"

#define DEMO_REPLICAS 4u
#define DEMO_CALL_MS 15000u
#define DEMO_CLIENT "probe1"

struct demo {
    struct spawn_set set;
    struct spawn_cluster cluster;
    struct rt_client *admin;
    struct rt_client_status_report report;
    struct brk_op op;
    struct brk_channel_info info;
    struct buf bytes;
    uint64_t deadline_ms;
    uint32_t step;
    const char *doing;
    char byz_exe[SPAWN_PATH_MAX]; /* "" : no Byzantine round */
    char byz_mode[32];            /* TRONE_BYZ of the Byzantine replica */
    char errmsg[2048];
};

/* What is left of the run's budget, at most cap. */
uint64_t demo_left_ms(const struct demo *d, uint64_t cap);
/* Prints one numbered step line. */
void demo_say(struct demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs d->op through the replicas as the admin; 0 only if agreed and accepted. */
int demo_call(struct demo *d);
uint64_t demo_mask_all(void);
/* Waits until the replicas in mask settle (spawn_cluster_wait) within the budget. */
int demo_wait(struct demo *d, uint64_t mask, bool same_state, uint64_t cap_ms);
void demo_print_status(const struct demo *d);
/* The first answering replica in mask (all of them agree after demo_wait). */
const struct rt_status *demo_status_of(const struct demo *d, uint64_t mask);

/* The event steps (cmd_demo_events.c), run after the control-table steps with every replica
 * up: each returns 0 or a TRONE_E* code with the reason in d->errmsg. */
int demo_events(struct demo *d);

#endif

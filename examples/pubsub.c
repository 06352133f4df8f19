/* pubsub.c: the TRONE client API in one page. Subscribes to a channel with a callback,
 * publishes a few events on it, waits until the cluster acknowledged them, and runs the client
 * until every event came back. Build: part of the tree (examples/CMakeLists.txt).
 *
 *   trone init cluster --replicas 4; start the replicas (see README.md)
 *   trone channel create demo.events --class bft,fifo
 *   TRONE_CLUSTER=$PWD/cluster/cluster.conf ./pubsub demo.events 5
 *
 * On a durable channel (class "...,durable") a third argument resumes: the replicas first
 * replay every event they keep after that position (0: from the oldest), then the live ones:
 *   trone channel create demo.durable --class cft,fifo,durable
 *   ./pubsub demo.durable 5 0      (a second run prints the first run's events too) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trone/trone.h"

struct seen {
    int count;
};

/* Called by trone_run for each delivered event; ev is valid only during the call. */
static void on_event(void *ctx, const struct trone_event *ev)
{
    struct seen *seen = ctx;
    if (ev->kind == TRONE_EVENT_GAP) {
        fprintf(stderr, "gap on %s: %" PRIu64 " events lost\n", ev->channel, ev->lost);
        return;
    }
    printf("%s seq=%" PRIu64 " position=%" PRIu64 " latency=%" PRIu64 "us: %.*s\n",
           ev->channel, ev->seq, ev->position, ev->received_us - ev->time_us,
           (int)ev->payload_size, (const char *)ev->payload);
    seen->count++;
}

int main(int argc, char **argv)
{
    const char *tag = argc > 1 ? argv[1] : "demo.events";
    int total = argc > 2 ? atoi(argv[2]) : 5;
    long long from = argc > 3 ? atoll(argv[3]) : -1; /* -1: live only */
    if (total <= 0 || total > 100000 || from < -1) {
        fprintf(stderr, "usage: pubsub [TAG [COUNT [FROM_POSITION]]]\n");
        return 2;
    }
    /* NULL paths: $TRONE_CLUSTER (or ./cluster/cluster.conf) and $TRONE_KEY (or the admin). */
    struct trone_client *c = NULL;
    int rc = trone_open(NULL, NULL, &c);
    if (rc != 0) {
        fprintf(stderr, "trone_open: %s\n", trone_strerror(rc));
        return 1;
    }
    struct seen seen = {0};
    if (from >= 0) {
        rc = trone_subscribe_from(c, tag, TRONE_START_FROM, (uint64_t)from, on_event, &seen);
    } else {
        rc = trone_subscribe(c, tag, on_event, &seen);
    }
    for (int i = 1; rc == 0 && i <= total; i++) {
        char text[64];
        int size = snprintf(text, sizeof(text), "hello %d", i);
        rc = trone_publish(c, tag, text, (size_t)size);
        if (rc == TRONE_EBUSY) { /* too many unacknowledged: let acknowledgements arrive */
            rc = trone_flush(c, 10000) < 0 ? TRONE_EIO : 0;
            i--;
        }
    }
    if (rc == 0) {
        /* 0: every event acknowledged by f+1 (CFT) or 2f+1 (BFT) replicas. */
        rc = trone_flush(c, 10000);
    }
    for (int round = 0; rc == 0 && seen.count < total && round < 100; round++) {
        rc = trone_run(c, 100) < 0 ? TRONE_EIO : 0;
    }
    if (rc != 0 || seen.count < total) {
        fprintf(stderr, "pubsub: %s\n", trone_last_error(c));
        trone_close(c);
        return 1;
    }
    trone_close(c);
    return 0;
}

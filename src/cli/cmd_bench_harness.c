/* cmd_bench_harness.c: the system-independent part of `trone bench events`
 * (cmd_bench_events.h): pacing and windowing of publishers, the exactly-once FIFO check and
 * delay record of subscribers, the measured phase and its figures, and small /proc and socket
 * helpers. The same code measures TRONE, Mosquitto and NATS. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd_bench_events.h"
#include "cli/cmd_bench_proc.h"
#include "core/assert.h"

#define EVB_LATENCY_INITIAL 65536u

static uint64_t evb_load_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static void evb_store_u64(uint8_t *p, uint64_t v)
{
    for (uint32_t i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

int evb_run_init(struct evb_run *r)
{
    TRONE_ASSERT(r->pub_count >= 1 && r->pub_count <= EVB_CLIENTS_MAX);
    TRONE_ASSERT(r->sub_count >= 1 && r->sub_count <= EVB_CLIENTS_MAX);
    TRONE_ASSERT(r->size >= EVB_HEADER_SIZE);
    unsigned clients = 1u + r->pub_count + r->sub_count;
    if (pthread_barrier_init(&r->ready, NULL, clients) != 0) {
        return TRONE_ENOMEM;
    }
    if (pthread_barrier_init(&r->start, NULL, clients) != 0) {
        pthread_barrier_destroy(&r->ready);
        return TRONE_ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    atomic_store(&r->start_ns, 0);
    atomic_store(&r->progress_ns, 0);
    atomic_store(&r->failed, 0);
    r->errmsg[0] = '\0';
    for (uint32_t p = 0; p < EVB_CLIENTS_MAX; p++) {
        atomic_store(&r->published[p], 0);
        atomic_store(&r->final[p], UINT64_MAX);
        for (uint32_t s = 0; s < EVB_CLIENTS_MAX; s++) {
            atomic_store(&r->received[s][p], 0);
        }
    }
    uint64_t expected = r->events_per_pub * r->pub_count;
    uint64_t capacity = expected > 0 ? expected : EVB_LATENCY_INITIAL;
    int rc = 0;
    for (uint32_t s = 0; s < EVB_CLIENTS_MAX; s++) {
        r->latency_ns[s] = NULL;
        r->latency_count[s] = 0;
        r->latency_capacity[s] = 0;
        r->last_ns[s] = 0;
        r->warm[s] = 0;
        if (s < r->sub_count) {
            r->latency_ns[s] = malloc(capacity * sizeof(uint64_t));
            r->latency_capacity[s] = capacity;
            rc = r->latency_ns[s] != NULL ? rc : TRONE_ENOMEM;
        }
    }
    if (rc != 0) {
        evb_run_close(r);
    }
    return rc;
}

void evb_run_close(struct evb_run *r)
{
    for (uint32_t s = 0; s < EVB_CLIENTS_MAX; s++) {
        free(r->latency_ns[s]);
        r->latency_ns[s] = NULL;
    }
    pthread_barrier_destroy(&r->ready);
    pthread_barrier_destroy(&r->start);
    pthread_mutex_destroy(&r->lock);
}

void evb_fail(struct evb_run *r, const char *fmt, ...)
{
    pthread_mutex_lock(&r->lock);
    if (atomic_load(&r->failed) == 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, args);
        va_end(args);
        atomic_store(&r->failed, 1);
    }
    pthread_mutex_unlock(&r->lock);
}

bool evb_failed(struct evb_run *r) { return atomic_load(&r->failed) != 0; }

/* ---- Publishers --------------------------------------------------------------------------- */

uint64_t evb_pub_allowed(struct evb_run *r, uint32_t pub, uint64_t start_ns, uint64_t now_ns,
                         bool *done)
{
    uint64_t sent = atomic_load(&r->published[pub]);
    *done = atomic_load(&r->final[pub]) != UINT64_MAX;
    if (*done) {
        return 0;
    }
    uint64_t elapsed_ns = now_ns > start_ns ? now_ns - start_ns : 0;
    bool finished = r->events_per_pub > 0 ? sent >= r->events_per_pub
                                          : elapsed_ns >= r->seconds_ns;
    if (finished) {
        atomic_store(&r->final[pub], sent);
        *done = true;
        return 0;
    }
    uint64_t limit = r->events_per_pub > 0 ? r->events_per_pub : UINT64_MAX;
    if (r->rate_per_pub > 0.0) {
        uint64_t due = (uint64_t)((double)elapsed_ns / 1e9 * r->rate_per_pub) + 1u;
        limit = due < limit ? due : limit;
    }
    uint64_t slowest = UINT64_MAX;
    for (uint32_t s = 0; s < r->sub_count; s++) {
        uint64_t got = atomic_load(&r->received[s][pub]);
        slowest = got < slowest ? got : slowest;
    }
    limit = slowest + r->window < limit ? slowest + r->window : limit;
    return limit > sent ? limit - sent : 0;
}

void evb_payload_fill(uint8_t *payload, uint32_t pub, uint64_t seq, uint64_t now_ns)
{
    evb_store_u64(payload, now_ns);
    evb_store_u64(payload + 8, pub);
    evb_store_u64(payload + 16, seq);
}

void evb_pub_sent(struct evb_run *r, uint32_t pub, uint64_t count)
{
    atomic_fetch_add(&r->published[pub], count);
}

/* ---- Subscribers -------------------------------------------------------------------------- */

static int evb_latency_push(struct evb_run *r, uint32_t sub, uint64_t delay_ns)
{
    if (r->latency_count[sub] == r->latency_capacity[sub]) {
        uint64_t capacity = r->latency_capacity[sub] * 2u;
        uint64_t *grown = realloc(r->latency_ns[sub], capacity * sizeof(uint64_t));
        if (grown == NULL) {
            evb_fail(r, "subscriber %u: out of memory for delays", sub);
            return -1;
        }
        r->latency_ns[sub] = grown;
        r->latency_capacity[sub] = capacity;
    }
    r->latency_ns[sub][r->latency_count[sub]++] = delay_ns;
    return 0;
}

int evb_sub_deliver(struct evb_run *r, uint32_t sub, const uint8_t *payload, size_t size,
                    uint64_t now_ns)
{
    if (size != r->size) {
        evb_fail(r, "subscriber %u: an event of %zu bytes, expected %u", sub, size, r->size);
        return -1;
    }
    uint64_t sent_ns = evb_load_u64(payload);
    uint64_t pub = evb_load_u64(payload + 8);
    uint64_t seq = evb_load_u64(payload + 16);
    if (pub >= r->pub_count) {
        evb_fail(r, "subscriber %u: an event of unknown publisher %llu", sub,
                 (unsigned long long)pub);
        return -1;
    }
    uint64_t bit = UINT64_C(1) << pub;
    if (seq == 0) {
        if ((r->warm[sub] & bit) != 0 || atomic_load(&r->received[sub][pub]) != 0) {
            evb_fail(r, "subscriber %u: warm-up event of publisher %llu delivered twice or late",
                     sub, (unsigned long long)pub);
            return -1;
        }
        r->warm[sub] |= bit;
        return 0;
    }
    uint64_t got = atomic_load(&r->received[sub][pub]);
    if (seq != got + 1u || (r->warm[sub] & bit) == 0) {
        evb_fail(r,
                 "subscriber %u: publisher %llu event %llu delivered after event %llu "
                 "(lost, duplicated or out of order)",
                 sub, (unsigned long long)pub, (unsigned long long)seq, (unsigned long long)got);
        return -1;
    }
    if (evb_latency_push(r, sub, now_ns > sent_ns ? now_ns - sent_ns : 0) != 0) {
        return -1;
    }
    r->last_ns[sub] = now_ns;
    atomic_store(&r->progress_ns, now_ns);
    atomic_store(&r->received[sub][pub], seq);
    return 0;
}

bool evb_sub_complete(struct evb_run *r, uint32_t sub)
{
    for (uint32_t p = 0; p < r->pub_count; p++) {
        uint64_t final = atomic_load(&r->final[p]);
        if (final == UINT64_MAX || atomic_load(&r->received[sub][p]) < final) {
            return false;
        }
    }
    return true;
}

bool evb_sub_warm(struct evb_run *r, uint32_t sub)
{
    uint64_t all = r->pub_count == 64 ? UINT64_MAX : (UINT64_C(1) << r->pub_count) - 1u;
    return r->warm[sub] == all;
}

bool evb_stalled(struct evb_run *r, uint64_t now_ns)
{
    uint64_t start = atomic_load(&r->start_ns);
    uint64_t progress = atomic_load(&r->progress_ns);
    uint64_t last = progress > start ? progress : start;
    if (start == 0 || now_ns < last || now_ns - last < (uint64_t)EVB_STALL_MS * 1000000u) {
        return false;
    }
    evb_fail(r, "no event delivered for %u s", EVB_STALL_MS / 1000u);
    return true;
}

/* ---- The measured phase ------------------------------------------------------------------- */






/* Every subscriber's delays in one sorted array. */
static int evb_latency_figures(struct evb_run *r, struct evb_figures *fig)
{
    uint64_t total = 0;
    for (uint32_t s = 0; s < r->sub_count; s++) {
        total += r->latency_count[s];
    }
    if (total == 0) {
        return 0;
    }
    uint64_t *all = malloc(total * sizeof(uint64_t));
    if (all == NULL) {
        snprintf(r->errmsg, sizeof(r->errmsg), "out of memory for the delays");
        return -1;
    }
    uint64_t at = 0;
    for (uint32_t s = 0; s < r->sub_count; s++) {
        memcpy(all + at, r->latency_ns[s], r->latency_count[s] * sizeof(uint64_t));
        at += r->latency_count[s];
    }
    qsort(all, total, sizeof(all[0]), bench_compare_u64);
    fig->p50_ms = bench_percentile_ms(all, total, 0.50);
    fig->p99_ms = bench_percentile_ms(all, total, 0.99);
    fig->p999_ms = bench_percentile_ms(all, total, 0.999);
    fig->max_ms = (double)all[total - 1] / 1e6;
    free(all);
    return 0;
}

uint64_t evb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t evb_servers_cpu_us(const pid_t *pids, uint32_t count)
{
    uint64_t total = 0;
    for (uint32_t k = 0; k < count; k++) {
        total += bench_process_cpu_us(pids[k]);
    }
    return total;
}

int evb_measure(struct evb_run *r, pthread_t *threads, uint32_t thread_count, const pid_t *pids,
                uint32_t pid_count, struct evb_figures *fig)
{
    memset(fig, 0, sizeof(*fig));
    pthread_barrier_wait(&r->ready);
    pthread_barrier_wait(&r->start);
    uint64_t start_ns = evb_now_ns();
    atomic_store(&r->start_ns, start_ns);
    uint64_t server_cpu = evb_servers_cpu_us(pids, pid_count);
    uint64_t self_cpu = bench_self_cpu_us();
    for (uint32_t k = 0; k < thread_count; k++) {
        pthread_join(threads[k], NULL);
    }
    server_cpu = evb_servers_cpu_us(pids, pid_count) - server_cpu;
    self_cpu = bench_self_cpu_us() - self_cpu;
    if (evb_failed(r)) {
        return -1;
    }
    uint64_t end_ns = start_ns;
    uint64_t published = 0;
    for (uint32_t s = 0; s < r->sub_count; s++) {
        end_ns = r->last_ns[s] > end_ns ? r->last_ns[s] : end_ns;
    }
    for (uint32_t p = 0; p < r->pub_count; p++) {
        published += atomic_load(&r->final[p]);
    }
    if (published == 0 || end_ns == start_ns) {
        snprintf(r->errmsg, sizeof(r->errmsg), "no event was published and delivered");
        return -1;
    }
    fig->events = published;
    fig->seconds = (double)(end_ns - start_ns) / 1e9;
    fig->events_per_s = (double)published / fig->seconds;
    fig->server_cpu_us_per_event = (double)server_cpu / (double)published;
    fig->client_cpu_us_per_event = (double)self_cpu / (double)published;
    fig->server_count = pid_count < TRONE_REPLICAS_MAX ? pid_count : TRONE_REPLICAS_MAX;
    for (uint32_t k = 0; k < fig->server_count; k++) {
        fig->server_peak_kib[k] = bench_process_peak_kib(pids[k]);
    }
    return evb_latency_figures(r, fig);
}

/* ---- Sockets and programs ----------------------------------------------------------------- */

uint16_t evb_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &length) == 0) {
        port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
}

int evb_connect(uint16_t port, uint64_t wait_ms)
{
    uint64_t deadline = evb_now_ns() + wait_ms * 1000000u;
    for (uint32_t attempt = 0; attempt < 10000; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return -1;
        }
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        close(fd);
        if (evb_now_ns() >= deadline) {
            break;
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000000};
        nanosleep(&pause, NULL);
    }
    return -1;
}

bool evb_format(char *out, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int length = vsnprintf(out, size, fmt, args);
    va_end(args);
    return length >= 0 && (size_t)length < size;
}

bool evb_find_program(const char *name, char *out, size_t out_size)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin",
             path != NULL ? path : "");
    char *save = NULL;
    for (char *dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        if (dir[0] != '/') {
            continue;
        }
        if (evb_format(out, out_size, "%s/%s", dir, name) && access(out, X_OK) == 0) {
            return true;
        }
    }
    return false;
}

/* cmd_bench_base.c: the unreplicated baselines of `trone bench events`: a Mosquitto broker
 * (QoS 0) and a NATS server, each started on a free loopback port with a temporary config and
 * stopped after the measurement, driven by minimal clients written here: MQTT 3.1.1 (CONNECT,
 * SUBSCRIBE, PUBLISH QoS 0) and the NATS text protocol (CONNECT, SUB, PUB, MSG, PING/PONG).
 * Both clients batch their writes and read whatever is available per syscall, as the TRONE
 * client does, so every system is driven with the same I/O pattern and the figures compare
 * brokers, not client libraries (libmosquitto is not used for that reason: its loop makes the
 * I/O decisions itself). Only for the benchmark: nothing here is a general-purpose client. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd_bench_events.h"
#include "core/assert.h"

#define BASE_OUT_FLUSH (64u * 1024u)
#define BASE_IN_SIZE (1024u * 1024u)
#define BASE_CONNECT_MS 10000u
#define BASE_HANDSHAKE_MS 10000u
#define BASE_TOPIC "bench"

enum base_kind { BASE_MQTT, BASE_NATS };

/* One client connection with buffered input and output. */
struct base_conn {
    int fd;
    uint8_t *in;
    size_t in_used;
    uint8_t *out;
    size_t out_used;
    size_t out_cap;
};

struct base_client {
    struct evb_run *run;
    enum base_kind kind;
    uint16_t port;
    uint32_t index;
    bool publisher;
    struct base_conn conn;
    bool handshake_done; /* MQTT CONNACK/SUBACK or NATS PONG seen */
    uint32_t pongs;
};

static uint64_t base_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Buffered connection ------------------------------------------------------------------ */

static int base_conn_open(struct base_conn *c, uint16_t port, size_t out_cap)
{
    c->in = malloc(BASE_IN_SIZE);
    c->out = malloc(out_cap);
    c->out_cap = out_cap;
    c->in_used = 0;
    c->out_used = 0;
    c->fd = c->in != NULL && c->out != NULL ? evb_connect(port, BASE_CONNECT_MS) : -1;
    return c->fd >= 0 ? 0 : -1;
}

static void base_conn_close(struct base_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    free(c->in);
    free(c->out);
    c->in = NULL;
    c->out = NULL;
}

/* Writes everything buffered (blocking). */
static int base_conn_flush(struct base_conn *c)
{
    size_t at = 0;
    for (uint32_t i = 0; at < c->out_used && i < 1000000u; i++) {
        ssize_t n = send(c->fd, c->out + at, c->out_used - at, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        at += (size_t)n;
    }
    c->out_used = 0;
    return 0;
}

/* Room for size more bytes, flushing first if needed. */
static uint8_t *base_conn_reserve(struct base_conn *c, size_t size)
{
    if (c->out_used + size > c->out_cap && base_conn_flush(c) != 0) {
        return NULL;
    }
    TRONE_ASSERT(size <= c->out_cap);
    uint8_t *at = c->out + c->out_used;
    c->out_used += size;
    return at;
}

static int base_conn_put(struct base_conn *c, const void *data, size_t size)
{
    uint8_t *at = base_conn_reserve(c, size);
    if (at == NULL) {
        return -1;
    }
    memcpy(at, data, size);
    return 0;
}

/* Waits at most timeout_ms for input and reads what is there. -1 on EOF or error. */
static int base_conn_read(struct base_conn *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int ready = poll(&p, 1, timeout_ms);
    if (ready <= 0) {
        return ready < 0 && errno != EINTR ? -1 : 0;
    }
    if (c->in_used == BASE_IN_SIZE) {
        return -1; /* a message larger than the buffer: never for the payloads we send */
    }
    ssize_t n = recv(c->fd, c->in + c->in_used, BASE_IN_SIZE - c->in_used, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        return -1;
    }
    c->in_used += n > 0 ? (size_t)n : 0;
    return 0;
}

static void base_conn_consume(struct base_conn *c, size_t size)
{
    memmove(c->in, c->in + size, c->in_used - size);
    c->in_used -= size;
}

/* ---- MQTT 3.1.1 --------------------------------------------------------------------------- */

static size_t base_mqtt_varint(uint8_t *out, size_t value)
{
    size_t n = 0;
    do {
        uint8_t byte = (uint8_t)(value % 128u);
        value /= 128u;
        out[n++] = (uint8_t)(byte | (value > 0 ? 0x80u : 0u));
    } while (value > 0 && n < 4);
    return n;
}

static int base_mqtt_packet(struct base_conn *c, uint8_t type, const uint8_t *body, size_t size,
                            const uint8_t *payload, size_t payload_size)
{
    uint8_t head[5];
    head[0] = type;
    size_t n = 1 + base_mqtt_varint(head + 1, size + payload_size);
    uint8_t *at = base_conn_reserve(c, n + size + payload_size);
    if (at == NULL) {
        return -1;
    }
    memcpy(at, head, n);
    memcpy(at + n, body, size);
    if (payload_size > 0) {
        memcpy(at + n + size, payload, payload_size);
    }
    return 0;
}

static int base_mqtt_hello(struct base_client *k)
{
    char id[32];
    int id_size = snprintf(id, sizeof(id), "%s%u", k->publisher ? "pub" : "sub", k->index);
    uint8_t body[64] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0, 0, (uint8_t)id_size};
    memcpy(body + 12, id, (size_t)id_size);
    int rc = base_mqtt_packet(&k->conn, 0x10, body, 12u + (size_t)id_size, NULL, 0);
    if (rc == 0 && !k->publisher) {
        static const uint8_t sub[] = {0, 1, 0, 5, 'b', 'e', 'n', 'c', 'h', 0};
        rc = base_mqtt_packet(&k->conn, 0x82, sub, sizeof(sub), NULL, 0);
    }
    return rc;
}

static int base_mqtt_publish(struct base_client *k, const uint8_t *payload, size_t size)
{
    static const uint8_t topic[] = {0, 5, 'b', 'e', 'n', 'c', 'h'};
    return base_mqtt_packet(&k->conn, 0x30, topic, sizeof(topic), payload, size);
}

/* Handles every complete packet in the input. */
static int base_mqtt_input(struct base_client *k)
{
    struct base_conn *c = &k->conn;
    size_t at = 0;
    for (uint32_t i = 0; i < BASE_IN_SIZE; i++) {
        size_t length = 0;
        size_t n = 1;
        bool complete = false;
        for (uint32_t shift = 0; shift < 28 && at + n < c->in_used; shift += 7) {
            uint8_t byte = c->in[at + n++];
            length |= (size_t)(byte & 0x7fu) << shift;
            if ((byte & 0x80u) == 0) {
                complete = true;
                break;
            }
        }
        if (!complete && n >= 5) {
            evb_fail(k->run, "mqtt client %u: malformed packet length", k->index);
            return -1;
        }
        if (!complete || at + n + length > c->in_used) {
            break; /* incomplete */
        }
        const uint8_t *body = c->in + at + n;
        uint8_t type = c->in[at] & 0xf0u;
        if (type == 0x30 && length >= 2) {
            size_t topic = ((size_t)body[0] << 8) | body[1];
            if (2 + topic > length || (c->in[at] & 0x06u) != 0) {
                evb_fail(k->run, "mqtt subscriber %u: malformed PUBLISH", k->index);
                return -1;
            }
            if (evb_sub_deliver(k->run, k->index, body + 2 + topic, length - 2 - topic,
                                base_now_ns()) != 0) {
                return -1;
            }
        } else if (type == 0x20 && length == 2 && body[1] != 0) {
            evb_fail(k->run, "mqtt client %u: CONNACK refused (%u)", k->index, body[1]);
            return -1;
        } else if (type == 0x90 && length == 3 && body[2] == 0x80) {
            evb_fail(k->run, "mqtt subscriber %u: SUBACK refused", k->index);
            return -1;
        }
        k->handshake_done = k->handshake_done || type == (k->publisher ? 0x20 : 0x90);
        at += n + length;
    }
    base_conn_consume(c, at);
    return 0;
}

/* ---- NATS --------------------------------------------------------------------------------- */

static int base_nats_hello(struct base_client *k)
{
    static const char hello[] = "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\n";
    int rc = base_conn_put(&k->conn, hello, sizeof(hello) - 1);
    if (rc == 0 && !k->publisher) {
        rc = base_conn_put(&k->conn, "SUB " BASE_TOPIC " 1\r\n", 4 + 5 + 4);
    }
    return rc == 0 ? base_conn_put(&k->conn, "PING\r\n", 6) : rc;
}

static int base_nats_publish(struct base_client *k, const uint8_t *payload, size_t size)
{
    char head[48];
    int n = snprintf(head, sizeof(head), "PUB " BASE_TOPIC " %zu\r\n", size);
    uint8_t *at = base_conn_reserve(&k->conn, (size_t)n + size + 2);
    if (at == NULL) {
        return -1;
    }
    memcpy(at, head, (size_t)n);
    memcpy(at + n, payload, size);
    memcpy(at + (size_t)n + size, "\r\n", 2);
    return 0;
}

/* One MSG: "MSG <subject> <sid> [reply] <bytes>" was in line; delivers its payload. Returns
 * the bytes of payload and CRLF consumed, 0 if incomplete, -1 on failure. */
static long base_nats_msg(struct base_client *k, const char *line, const uint8_t *rest,
                          size_t rest_size)
{
    const char *last = strrchr(line, ' ');
    char *end = NULL;
    unsigned long size = last != NULL ? strtoul(last + 1, &end, 10) : 0;
    if (last == NULL || end == NULL || *end != '\0' || size > BASE_IN_SIZE / 2) {
        evb_fail(k->run, "nats subscriber %u: malformed MSG line", k->index);
        return -1;
    }
    if (rest_size < size + 2) {
        return 0;
    }
    if (evb_sub_deliver(k->run, k->index, rest, size, base_now_ns()) != 0) {
        return -1;
    }
    return (long)size + 2;
}

static int base_nats_input(struct base_client *k)
{
    struct base_conn *c = &k->conn;
    size_t at = 0;
    for (uint32_t i = 0; i < BASE_IN_SIZE; i++) {
        uint8_t *eol = memmem(c->in + at, c->in_used - at, "\r\n", 2);
        if (eol == NULL || eol - (c->in + at) > 1000) {
            break;
        }
        *eol = '\0';
        const char *line = (const char *)c->in + at;
        size_t line_size = (size_t)(eol - (c->in + at)) + 2;
        if (strncmp(line, "MSG ", 4) == 0) {
            long used = base_nats_msg(k, line, eol + 2, c->in_used - at - line_size);
            if (used <= 0) {
                *eol = '\r';
                if (used < 0) {
                    return -1;
                }
                break;
            }
            at += line_size + (size_t)used;
            continue;
        }
        if (strncmp(line, "PING", 4) == 0 && base_conn_put(c, "PONG\r\n", 6) != 0) {
            return -1;
        }
        if (strncmp(line, "-ERR", 4) == 0) {
            evb_fail(k->run, "nats client %u: %s", k->index, line);
            return -1;
        }
        k->pongs += strncmp(line, "PONG", 4) == 0 ? 1u : 0u;
        k->handshake_done = k->handshake_done || k->pongs > 0;
        at += line_size;
    }
    base_conn_consume(c, at);
    return 0;
}

/* ---- Client threads ----------------------------------------------------------------------- */

static int base_input(struct base_client *k, int timeout_ms)
{
    if (base_conn_read(&k->conn, timeout_ms) != 0) {
        evb_fail(k->run, "%s client %u: connection lost", k->kind == BASE_MQTT ? "mqtt" : "nats",
                 k->index);
        return -1;
    }
    int rc = k->kind == BASE_MQTT ? base_mqtt_input(k) : base_nats_input(k);
    return rc == 0 ? base_conn_flush(&k->conn) : rc;
}

static int base_publish(struct base_client *k, const uint8_t *payload, size_t size)
{
    return k->kind == BASE_MQTT ? base_mqtt_publish(k, payload, size)
                                : base_nats_publish(k, payload, size);
}

/* Connects and waits for CONNACK/SUBACK or PONG (bounded). */
static void base_hello(struct base_client *k)
{
    size_t out_cap = BASE_OUT_FLUSH + k->run->size + 64u;
    if (base_conn_open(&k->conn, k->port, out_cap) != 0) {
        evb_fail(k->run, "client %u: cannot connect to port %u", k->index, k->port);
        return;
    }
    int rc = k->kind == BASE_MQTT ? base_mqtt_hello(k) : base_nats_hello(k);
    rc = rc == 0 ? base_conn_flush(&k->conn) : rc;
    uint64_t deadline = base_now_ns() + (uint64_t)BASE_HANDSHAKE_MS * 1000000u;
    while (rc == 0 && !k->handshake_done && !evb_failed(k->run)) {
        rc = base_input(k, 10);
        if (base_now_ns() > deadline) {
            evb_fail(k->run, "client %u: no handshake answer", k->index);
        }
    }
    if (rc != 0) {
        evb_fail(k->run, "client %u: handshake failed", k->index);
    }
}

static void base_pub_loop(struct base_client *k, uint8_t *payload)
{
    struct evb_run *r = k->run;
    uint64_t start = base_now_ns();
    for (uint64_t round = 0; round < UINT64_MAX && !evb_failed(r); round++) {
        uint64_t now = base_now_ns();
        bool done = false;
        uint64_t allowed = evb_pub_allowed(r, k->index, start, now, &done);
        if (done || evb_stalled(r, now)) {
            break;
        }
        uint64_t seq = atomic_load(&r->published[k->index]);
        uint64_t sent = 0;
        int rc = 0;
        while (rc == 0 && sent < allowed && sent < 1024u) {
            evb_payload_fill(payload, k->index, seq + sent + 1u, now);
            rc = base_publish(k, payload, r->size);
            sent += rc == 0 ? 1u : 0u;
        }
        rc = rc == 0 ? base_conn_flush(&k->conn) : rc;
        evb_pub_sent(r, k->index, sent);
        rc = rc == 0 ? base_input(k, allowed == 0 ? 1 : 0) : rc;
        if (rc != 0) {
            evb_fail(r, "publisher %u: connection lost", k->index);
        }
    }
}

static void *base_client_main(void *arg)
{
    struct base_client *k = arg;
    struct evb_run *r = k->run;
    uint8_t *payload = calloc(1, r->size);
    if (payload == NULL) {
        evb_fail(r, "out of memory");
    } else {
        base_hello(k);
    }
    pthread_barrier_wait(&r->ready);
    uint64_t deadline = base_now_ns() + (uint64_t)BASE_HANDSHAKE_MS * 1000000u;
    if (k->publisher && !evb_failed(r)) {
        evb_payload_fill(payload, k->index, 0, base_now_ns());
        if (base_publish(k, payload, r->size) != 0 || base_conn_flush(&k->conn) != 0) {
            evb_fail(r, "publisher %u: warm-up event not sent", k->index);
        }
    }
    while (!k->publisher && !evb_failed(r) && !evb_sub_warm(r, k->index)) {
        if (base_input(k, 5) != 0 || base_now_ns() > deadline) {
            evb_fail(r, "subscriber %u: warm-up events did not arrive", k->index);
        }
    }
    pthread_barrier_wait(&r->start);
    if (k->publisher && !evb_failed(r)) {
        base_pub_loop(k, payload);
    }
    while (!k->publisher && !evb_failed(r) && !evb_sub_complete(r, k->index) &&
           !evb_stalled(r, base_now_ns())) {
        (void)base_input(k, 5);
    }
    base_conn_close(&k->conn);
    free(payload);
    return NULL;
}

/* ---- Brokers ------------------------------------------------------------------------------ */

/* Starts program argv on a free port (argv built by build), waiting until it accepts. */
static int base_broker_start(struct spawn_set *set, const char *program, char *const argv[],
                             const char *log_path, uint16_t port, pid_t *pid, char *why,
                             size_t why_size)
{
    if (spawn_start_program(set, program, argv, log_path, pid, why, why_size) != 0) {
        return -1;
    }
    int fd = evb_connect(port, BASE_CONNECT_MS);
    if (fd < 0) {
        snprintf(why, why_size, "%s did not accept on port %u (see %s)", program, port,
                 log_path);
        return -1;
    }
    close(fd);
    return 0;
}

static int base_broker_stop(struct spawn_set *set, pid_t pid, char *why, size_t why_size)
{
    int status = 0;
    int rc = spawn_stop(set, pid, SIGTERM, 5000, &status);
    if (rc != 0) {
        snprintf(why, why_size, "the broker did not stop on SIGTERM");
        return -1;
    }
    return 0;
}

static int base_measure(struct evb_run *r, enum base_kind kind, uint16_t port, pid_t pid,
                        struct evb_figures *fig, char *why, size_t why_size)
{
    uint32_t count = r->pub_count + r->sub_count;
    struct base_client *clients = calloc(count, sizeof(*clients));
    pthread_t threads[2 * EVB_CLIENTS_MAX];
    if (clients == NULL || evb_run_init(r) != 0) {
        free(clients);
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    for (uint32_t k = 0; k < count; k++) {
        bool publisher = k < r->pub_count;
        clients[k] = (struct base_client){.run = r, .kind = kind, .port = port,
                                          .index = publisher ? k : k - r->pub_count,
                                          .publisher = publisher, .conn = {.fd = -1}};
        int rc = pthread_create(&threads[k], NULL, base_client_main, &clients[k]);
        TRONE_ASSERT(rc == 0);
    }
    int rc = evb_measure(r, threads, count, &pid, 1, fig);
    if (rc != 0) {
        snprintf(why, why_size, "%s", r->errmsg);
    }
    evb_run_close(r);
    free(clients);
    return rc;
}

int evb_mosquitto_run(struct spawn_set *set, struct evb_run *r, struct evb_figures *fig,
                      char *why, size_t why_size)
{
    char program[SPAWN_PATH_MAX];
    if (!evb_find_program("mosquitto", program, sizeof(program))) {
        snprintf(why, why_size, "mosquitto is not installed (scripts/setup.sh installs it): "
                                "no Mosquitto comparison");
        return 1;
    }
    uint16_t port = evb_free_port();
    char conf[SPAWN_PATH_MAX];
    char log_path[SPAWN_PATH_MAX];
    bool fit = evb_format(conf, sizeof(conf), "%s/mosquitto-%u.conf", set->dir, port) &&
               evb_format(log_path, sizeof(log_path), "%s/mosquitto-%u.log", set->dir, port);
    FILE *f = fit ? fopen(conf, "w") : NULL;
    if (port == 0 || f == NULL) {
        snprintf(why, why_size, "cannot write %s or find a free port", conf);
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    /* No persistence, loopback only; QoS 0 messages to connected subscribers are never dropped
     * (max_queued_messages 0: the harness's window bounds what is in flight instead). */
    fprintf(f, "listener %u 127.0.0.1\nallow_anonymous true\npersistence false\n"
               "max_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            port);
    fclose(f);
    char *argv[] = {"-c", conf, NULL};
    pid_t pid = 0;
    if (base_broker_start(set, program, argv, log_path, port, &pid, why, why_size) != 0) {
        return -1;
    }
    int rc = base_measure(r, BASE_MQTT, port, pid, fig, why, why_size);
    char stop_why[128];
    if (base_broker_stop(set, pid, stop_why, sizeof(stop_why)) != 0 && rc == 0) {
        snprintf(why, why_size, "mosquitto: %s", stop_why);
        rc = -1;
    }
    return rc;
}

int evb_nats_run(struct spawn_set *set, struct evb_run *r, struct evb_figures *fig, char *why,
                 size_t why_size)
{
    char program[SPAWN_PATH_MAX];
    if (!evb_find_program("nats-server", program, sizeof(program))) {
        snprintf(why, why_size, "nats-server is not installed (scripts/setup.sh installs it): "
                                "no NATS comparison");
        return 1;
    }
    uint16_t port = evb_free_port();
    char port_text[16];
    char log_path[SPAWN_PATH_MAX];
    snprintf(port_text, sizeof(port_text), "%u", port);
    if (port == 0 || !evb_format(log_path, sizeof(log_path), "%s/nats-%u.log", set->dir, port)) {
        snprintf(why, why_size, "cannot find a free port");
        return -1;
    }
    char *argv[] = {"-a", "127.0.0.1", "-p", port_text, NULL};
    pid_t pid = 0;
    if (base_broker_start(set, program, argv, log_path, port, &pid, why, why_size) != 0) {
        return -1;
    }
    int rc = base_measure(r, BASE_NATS, port, pid, fig, why, why_size);
    char stop_why[128];
    if (base_broker_stop(set, pid, stop_why, sizeof(stop_why)) != 0 && rc == 0) {
        snprintf(why, why_size, "nats-server: %s", stop_why);
        rc = -1;
    }
    return rc;
}

/* rt_conn.h: TCP connections that carry one Noise session each (core/session.h): the network
 * context that owns them, the listener that accepts them (responders) and the dialer that keeps
 * one outgoing connection up with exponential backoff and jitter (initiators). Writes are
 * batched: sending only encrypts into the session; rt_net_flush writes every dirty connection
 * once. Only src/rt may include <uv.h>. */
#ifndef TRONE_RT_CONN_H
#define TRONE_RT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/cfg.h"
#include "core/limits.h"
#include "core/session.h"
#include "trone/error.h"

/* Reconnect backoff: the first retry after about RT_BACKOFF_MIN_MS, doubling to
 * RT_BACKOFF_MAX_MS; each delay is drawn uniformly from [backoff/2, backoff]. */
#define RT_BACKOFF_MIN_MS 50u
#define RT_BACKOFF_MAX_MS 2000u
/* A connection whose session is not open this long after it started is closed. */
#define RT_HANDSHAKE_TIMEOUT_MS 5000u
#define RT_SWEEP_INTERVAL_MS 1000u
/* Connections one process keeps at once (clients plus both directions to every replica). */
#define RT_CONNS_MAX (TRONE_CLIENTS_MAX + 2u * TRONE_REPLICAS_MAX)
/* Bytes one socket read may deliver. */
#define RT_READ_SIZE (64u * 1024u)

/* At most burst events per window; the rest are counted and reported with the next one. */
struct rt_ratelimit {
    uint64_t window_start_ms;
    uint32_t count;
    uint32_t suppressed;
};

/* True if an event at now_ms may be logged; *suppressed_out (may be NULL) receives how many
 * events were dropped since the last allowed one. */
bool rt_ratelimit_allow(struct rt_ratelimit *r, uint64_t now_ms, uint32_t burst, uint64_t window_ms,
                        uint32_t *suppressed_out);

/* A libuv error code as a TRONE_E* code (the caller logs uv_err_name of the original). */
int rt_err_from_uv(int uv_error);

struct rt_net;
struct rt_dialer;

/* One TCP connection and its session. Allocated by rt_net, freed after it closes. */
struct rt_conn {
    uv_tcp_t tcp;
    struct rt_net *net;
    struct sess sess;
    struct rt_dialer *dialer; /* the dialer that made it, NULL for an accepted connection */
    uv_connect_t connect_req;
    uint64_t started_ms;
    size_t output_bytes; /* handed to uv_write and not yet written */
    int uv_error;        /* the libuv error that closed it, if any */
    bool connected;      /* TCP is up (always for accepted connections) */
    bool opened;         /* the session reached OPEN */
    bool closing;
    bool dirty; /* on the net's dirty list */
    struct rt_conn *dirty_next;
    struct rt_conn *prev;
    struct rt_conn *next;
    char address[CFG_HOST_MAX + 8]; /* "host:port" of the peer, for logs */
};

/* What the owner of a net is told. Calls never come after rt_net_close. */
struct rt_net_handler {
    void *ctx;
    /* The session of c is open: for an accepted one, c->sess.role, peer_replica and peer_key
     * say who the peer is; for a dialled one, c->dialer does. */
    void (*opened)(void *ctx, struct rt_conn *c);
    /* One application message, borrowed for the call. The handler may send and may close c. */
    void (*message)(void *ctx, struct rt_conn *c, const uint8_t *msg, size_t size);
    /* c is closing (err says why: TRONE_ECLOSED for a clean end). It is off every list and
     * must not be used after the call returns; memory is freed later by the loop. */
    void (*closed)(void *ctx, struct rt_conn *c, int err);
    /* Optional: called first by every rt_net_flush, before any byte is written, so the owner
     * can make durable what the data about to leave depends on (write-ahead). */
    void (*before_flush)(void *ctx);
    /* Optional: every byte handed to the socket of c was written (its write queue drained),
     * so a sender that stopped at a backlog bound can go on without polling. */
    void (*drained)(void *ctx, struct rt_conn *c);
};

struct rt_net_config {
    enum sess_role role; /* what this process is when it dials */
    uint32_t self_id;    /* replica id (replicas only) */
    uint8_t ed_public[TRONE_KEY_LEN];
    uint8_t ed_secret[TRONE_SECRET_KEY_LEN];
    struct sess_peer_lookup lookup; /* for accepted connections (replicas only) */
    const char *comp;               /* log component, e.g. "replica" */
};

struct rt_net {
    uv_loop_t *loop;
    struct rt_net_config config;
    struct rt_net_handler handler;
    uv_tcp_t listener;
    uv_timer_t sweep;
    bool listening;
    bool closing;
    struct rt_conn *conns; /* every live connection, open or not */
    size_t conn_count;
    struct rt_conn *dirty;
    struct rt_ratelimit hostile_limit;
    uint8_t read_buffer[RT_READ_SIZE];
};

/* Initialises net on loop and starts its handshake sweep timer. config and handler are
 * copied. Returns 0 or a TRONE_E* code (nothing to close then). */
TRONE_MUST_CHECK int rt_net_init(struct rt_net *n, uv_loop_t *loop,
                                 const struct rt_net_config *config,
                                 const struct rt_net_handler *handler);
/* Closes the listener, the timer and every connection without calling the handler, and wipes
 * the secret. Dialers must be stopped first. The loop must then run until its handles are
 * closed before n's memory is released. */
void rt_net_close(struct rt_net *n);
/* Listens on host:port (numeric or resolvable). Returns 0, or a TRONE_E* code and a one-line
 * reason in errmsg. */
TRONE_MUST_CHECK int rt_net_listen(struct rt_net *n, const char *host, uint16_t port, char *errmsg,
                                   size_t errmsg_size);

/* Encrypts msg into c's session output and marks c dirty. On failure closes c and returns the
 * error. Nothing is written to the socket until rt_net_flush. */
int rt_conn_send(struct rt_conn *c, const uint8_t *msg, size_t size);
/* Closes c (if not already closing), calling the handler's closed. */
void rt_conn_close(struct rt_conn *c, int err);
/* Writes every dirty connection's pending bytes, one write per connection; a connection whose
 * unwritten output exceeds TRONE_CONN_OUTPUT_HARD is closed. */
void rt_net_flush(struct rt_net *n);
/* "replica 2", "client 1a2b3c4d" or the address, for logs. out_size >= 64. */
const char *rt_conn_name(const struct rt_conn *c, char *out, size_t out_size);

/* Keeps one outgoing connection to a replica up. Embedded by its owner. */
struct rt_dialer {
    struct rt_net *net;
    uint32_t peer_id;
    uint8_t peer_key[TRONE_KEY_LEN];
    char host[CFG_HOST_MAX + 1];
    uint16_t port;
    uv_timer_t timer;
    struct rt_conn *conn; /* the current attempt or open connection, or NULL */
    uint64_t backoff_ms;
    uint32_t failures; /* attempts that failed since the session was last open */
    int last_error;    /* TRONE_E* of the last failure */
    int last_uv_error; /* libuv code of the last failure, 0 if none */
    bool started;
    bool stopping;
};

/* Starts dialling replica peer_id at host:port now. Returns 0 or a TRONE_E* code. */
TRONE_MUST_CHECK int rt_dialer_start(struct rt_dialer *d, struct rt_net *n, uint32_t peer_id,
                                     const uint8_t peer_key[TRONE_KEY_LEN], const char *host,
                                     uint16_t port);
/* Stops retrying and closes the connection (without calling the handler). The loop must run
 * before d's memory is released. */
void rt_dialer_stop(struct rt_dialer *d);
/* The connection if its session is open, else NULL. */
struct rt_conn *rt_dialer_open_conn(const struct rt_dialer *d);
/* A one-line description of the last failure ("connection refused"), never NULL. */
const char *rt_dialer_error(const struct rt_dialer *d);

#endif

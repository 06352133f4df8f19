/* rt_conn.c: TCP connections with a Noise session each, the listener and the dialer with
 * backoff. Turns libuv events into session input and session output into batched writes; the
 * protocol meaning of messages is the owner's (rt_replica.c, rt_client.c). */
#include "rt/rt_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/assert.h"
#include "core/key.h"
#include "core/log.h"

/* Hostile-input warnings: at most this many lines per window. */
#define RT_HOSTILE_BURST 10u
#define RT_HOSTILE_WINDOW_MS 10000u

struct rt_write {
    uv_write_t req;
    struct rt_conn *conn;
    size_t size;
    uint8_t data[];
};

bool rt_ratelimit_allow(struct rt_ratelimit *r, uint64_t now_ms, uint32_t burst, uint64_t window_ms,
                        uint32_t *suppressed_out)
{
    TRONE_ASSERT(burst > 0);
    if (now_ms >= r->window_start_ms + window_ms || now_ms < r->window_start_ms) {
        r->window_start_ms = now_ms;
        r->count = 0;
    }
    if (r->count >= burst) {
        r->suppressed++;
        return false;
    }
    r->count++;
    if (suppressed_out != NULL) {
        *suppressed_out = r->suppressed;
    }
    r->suppressed = 0;
    return true;
}

int rt_err_from_uv(int uv_error)
{
    switch (uv_error) {
    case 0:
        return 0;
    case UV_ENOMEM:
    case UV_ENOBUFS:
        return TRONE_ENOMEM;
    case UV_EOF:
    case UV_ECONNREFUSED:
    case UV_ECONNRESET:
    case UV_ECONNABORTED:
    case UV_EPIPE:
    case UV_ECANCELED:
        return TRONE_ECLOSED;
    case UV_ETIMEDOUT:
        return TRONE_ETIMEDOUT;
    case UV_EADDRINUSE:
        return TRONE_EBUSY;
    case UV_EINVAL:
    case UV_EADDRNOTAVAIL:
        return TRONE_EINVAL;
    default:
        return TRONE_EIO;
    }
}

/* ---- Connection lifecycle ----------------------------------------------------------------- */

static void rt_conn_on_closed(uv_handle_t *handle)
{
    struct rt_conn *c = handle->data;
    TRONE_ASSERT(c->closing);
    sess_close(&c->sess);
    free(c);
}

static void rt_dialer_schedule(struct rt_dialer *d);

static void rt_net_dirty_remove(struct rt_net *n, struct rt_conn *c)
{
    struct rt_conn **link = &n->dirty;
    for (size_t i = 0; i <= RT_CONNS_MAX && *link != NULL; i++) {
        if (*link == c) {
            *link = c->dirty_next;
            break;
        }
        link = &(*link)->dirty_next;
    }
    c->dirty = false;
    c->dirty_next = NULL;
}

static void rt_net_unlink(struct rt_net *n, struct rt_conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        TRONE_ASSERT(n->conns == c);
        n->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = NULL;
    c->next = NULL;
    TRONE_ASSERT(n->conn_count > 0);
    n->conn_count--;
}

/* Closes c; notify says whether the owner hears about it. */
static void rt_conn_close_internal(struct rt_conn *c, int err, bool notify)
{
    if (c->closing) {
        return;
    }
    struct rt_net *n = c->net;
    c->closing = true;
    if (c->dirty) {
        rt_net_dirty_remove(n, c);
    }
    rt_net_unlink(n, c);
    struct rt_dialer *d = c->dialer;
    if (d != NULL && d->conn == c) {
        d->conn = NULL;
        if (!c->opened) {
            d->failures++;
            d->last_error = err;
            d->last_uv_error = c->uv_error;
        }
        if (!d->stopping && !n->closing) {
            rt_dialer_schedule(d);
        }
    }
    if (notify && !n->closing && n->handler.closed != NULL) {
        n->handler.closed(n->handler.ctx, c, err);
    }
    uv_close((uv_handle_t *)&c->tcp, rt_conn_on_closed);
}

void rt_conn_close(struct rt_conn *c, int err) { rt_conn_close_internal(c, err, true); }

/* Allocates a connection with its TCP handle, linked into n. NULL on failure. */
static struct rt_conn *rt_conn_new(struct rt_net *n)
{
    if (n->conn_count >= RT_CONNS_MAX) {
        return NULL;
    }
    struct rt_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    if (uv_tcp_init(n->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    c->tcp.data = c;
    c->net = n;
    c->started_ms = uv_now(n->loop);
    snprintf(c->address, sizeof(c->address), "?");
    c->next = n->conns;
    if (n->conns != NULL) {
        n->conns->prev = c;
    }
    n->conns = c;
    n->conn_count++;
    return c;
}

const char *rt_conn_name(const struct rt_conn *c, char *out, size_t out_size)
{
    TRONE_ASSERT(out_size >= 64);
    if (c->dialer != NULL) {
        snprintf(out, out_size, "replica%u", c->dialer->peer_id);
    } else if (c->opened && c->sess.role == SESS_ROLE_REPLICA) {
        snprintf(out, out_size, "replica%u", c->sess.peer_replica);
    } else if (c->opened && c->sess.role == SESS_ROLE_CLIENT) {
        char hex[2 * 8 + 1];
        key_hex_encode(hex, c->sess.peer_key, 8);
        snprintf(out, out_size, "client:%s", hex);
    } else {
        snprintf(out, out_size, "%.60s", c->address);
    }
    return out;
}

/* ---- Reading ------------------------------------------------------------------------------ */

static void rt_conn_hostile(struct rt_conn *c, int err, const uint8_t *data, size_t size)
{
    struct rt_net *n = c->net;
    uint32_t suppressed = 0;
    if (rt_ratelimit_allow(&n->hostile_limit, uv_now(n->loop), RT_HOSTILE_BURST,
                           RT_HOSTILE_WINDOW_MS, &suppressed)) {
        char name[64];
        char sample[129];
        log_warn(n->config.comp,
                 "msg=\"session error, closing connection\" peer=%s address=%s err=%s "
                 "sample=%s suppressed=%u",
                 rt_conn_name(c, name, sizeof(name)), c->address, trone_err_name(err),
                 log_hex_sample(sample, data, size), suppressed);
    }
    rt_conn_close(c, err);
}

static void rt_conn_check_open(struct rt_conn *c)
{
    if (c->opened || !sess_is_open(&c->sess)) {
        return;
    }
    c->opened = true;
    if (c->dialer != NULL) {
        c->dialer->backoff_ms = RT_BACKOFF_MIN_MS;
        c->dialer->failures = 0;
    }
    struct rt_net *n = c->net;
    if (n->handler.opened != NULL) {
        n->handler.opened(n->handler.ctx, c);
    }
}

/* Runs the session over everything buffered, handing each message to the owner. */
static void rt_conn_drain(struct rt_conn *c, const uint8_t *data, size_t size)
{
    struct rt_net *n = c->net;
    /* Every message consumes at least one byte of input, so this bound is never reached by a
     * correct session; reaching it is treated as a protocol error, not an assertion. */
    size_t bound = c->sess.in.used + 2;
    for (size_t i = 0; i < bound; i++) {
        const uint8_t *msg = NULL;
        size_t msg_size = 0;
        int rc = sess_next(&c->sess, &msg, &msg_size);
        if (rc < 0) {
            rt_conn_hostile(c, rc, data, size);
            return;
        }
        rt_conn_check_open(c);
        if (c->closing) {
            return;
        }
        if (rc == 0) {
            if (c->sess.out.used > 0 && !c->dirty) {
                c->dirty = true;
                c->dirty_next = n->dirty;
                n->dirty = c;
            }
            return;
        }
        n->handler.message(n->handler.ctx, c, msg, msg_size);
        if (c->closing) {
            return;
        }
    }
    rt_conn_hostile(c, TRONE_EPROTO, data, size);
}

static void rt_conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *out)
{
    struct rt_conn *c = handle->data;
    *out = uv_buf_init((char *)c->net->read_buffer, sizeof(c->net->read_buffer));
}

static void rt_conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    struct rt_conn *c = stream->data;
    struct rt_net *n = c->net;
    if (c->closing || nread == 0) {
        return;
    }
    if (nread < 0) {
        c->uv_error = (int)nread;
        if (nread != UV_EOF) {
            char name[64];
            log_debug(n->config.comp, "msg=\"read failed\" peer=%s uv=%s",
                      rt_conn_name(c, name, sizeof(name)), uv_err_name((int)nread));
        }
        rt_conn_close(c, rt_err_from_uv((int)nread));
        return;
    }
    const uint8_t *data = (const uint8_t *)b->base;
    int rc = sess_feed(&c->sess, data, (size_t)nread);
    if (rc != 0) {
        rt_conn_hostile(c, rc, data, (size_t)nread);
    } else {
        rt_conn_drain(c, data, (size_t)nread);
    }
    /* One flush per read: every reply this read caused leaves in one write per peer. */
    rt_net_flush(n);
}

/* ---- Writing ------------------------------------------------------------------------------ */

int rt_conn_send(struct rt_conn *c, const uint8_t *msg, size_t size)
{
    TRONE_ASSERT(msg != NULL);
    if (c->closing) {
        return TRONE_ECLOSED;
    }
    int rc = sess_send(&c->sess, msg, size);
    if (rc != 0) {
        char name[64];
        log_warn(c->net->config.comp, "msg=\"send failed, closing\" peer=%s err=%s size=%zu",
                 rt_conn_name(c, name, sizeof(name)), trone_err_name(rc), size);
        rt_conn_close(c, rc);
        return rc;
    }
    if (!c->dirty) {
        c->dirty = true;
        c->dirty_next = c->net->dirty;
        c->net->dirty = c;
    }
    return 0;
}

static void rt_conn_on_write(uv_write_t *req, int status)
{
    struct rt_write *w = req->data;
    struct rt_conn *c = w->conn;
    TRONE_ASSERT(c->output_bytes >= w->size);
    c->output_bytes -= w->size;
    free(w);
    if (status < 0 && !c->closing) {
        c->uv_error = status;
        rt_conn_close(c, rt_err_from_uv(status));
        return;
    }
    if (c->output_bytes == 0 && !c->closing && c->opened && c->net->handler.drained != NULL) {
        c->net->handler.drained(c->net->handler.ctx, c);
    }
}

/* Writes what the session holds: synchronously as far as the socket takes it, the rest
 * through one queued write that owns a copy. */
static void rt_conn_write(struct rt_conn *c)
{
    struct buf *out = &c->sess.out;
    if (out->used == 0 || !c->connected) {
        return;
    }
    size_t done = 0;
    uv_buf_t b = uv_buf_init((char *)out->data, (unsigned int)out->used);
    int rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (rc > 0) {
        done = (size_t)rc;
    } else if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
        c->uv_error = rc;
        rt_conn_close(c, rt_err_from_uv(rc));
        return;
    }
    size_t rest = out->used - done;
    if (rest > 0) {
        if (c->output_bytes + rest > TRONE_CONN_OUTPUT_HARD) {
            char name[64];
            log_warn(c->net->config.comp, "msg=\"peer too slow, closing\" peer=%s queued=%zu",
                     rt_conn_name(c, name, sizeof(name)), c->output_bytes + rest);
            rt_conn_close(c, TRONE_EFULL);
            return;
        }
        struct rt_write *w = malloc(sizeof(*w) + rest);
        if (w == NULL) {
            rt_conn_close(c, TRONE_ENOMEM);
            return;
        }
        memcpy(w->data, out->data + done, rest);
        w->conn = c;
        w->size = rest;
        w->req.data = w;
        b = uv_buf_init((char *)w->data, (unsigned int)rest);
        c->output_bytes += rest;
        rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, rt_conn_on_write);
        if (rc != 0) {
            c->output_bytes -= rest;
            free(w);
            c->uv_error = rc;
            rt_conn_close(c, rt_err_from_uv(rc));
            return;
        }
    }
    buf_reset(out);
}

void rt_net_flush(struct rt_net *n)
{
    if (n->handler.before_flush != NULL) {
        n->handler.before_flush(n->handler.ctx);
    }
    /* Each connection is on the list at most once, so the list is at most RT_CONNS_MAX long;
     * writing may close a connection, which only removes it from the list. */
    for (size_t i = 0; i <= RT_CONNS_MAX && n->dirty != NULL; i++) {
        struct rt_conn *c = n->dirty;
        n->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        rt_conn_write(c);
    }
}

/* ---- Accepting ---------------------------------------------------------------------------- */

static void rt_conn_set_address(struct rt_conn *c)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&ss;
        uv_ip4_name(in4, ip, sizeof(ip));
        port = ntohs(in4->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(in6, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    snprintf(c->address, sizeof(c->address), "%s:%d", ip, port);
}

static int rt_conn_start_reading(struct rt_conn *c)
{
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 10);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, rt_conn_on_alloc, rt_conn_on_read);
    if (rc != 0) {
        c->uv_error = rc;
        return rt_err_from_uv(rc);
    }
    return 0;
}

static void rt_net_on_dropped(uv_handle_t *handle) { free(handle); }

static void rt_net_on_connection(uv_stream_t *server, int status)
{
    struct rt_net *n = server->data;
    if (status < 0 || n->closing) {
        log_warn(n->config.comp, "msg=\"accept failed\" uv=%s", uv_err_name(status));
        return;
    }
    struct rt_conn *c = rt_conn_new(n);
    if (c == NULL) {
        /* Take the connection off the backlog and drop it, so the listener stays usable. */
        uv_tcp_t *drop = malloc(sizeof(*drop));
        if (drop != NULL && uv_tcp_init(n->loop, drop) == 0) {
            (void)uv_accept(server, (uv_stream_t *)drop);
            uv_close((uv_handle_t *)drop, rt_net_on_dropped);
        } else {
            free(drop);
        }
        log_warn(n->config.comp, "msg=\"connection refused: too many connections\" max=%u",
                 (unsigned)RT_CONNS_MAX);
        return;
    }
    c->connected = true;
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        c->uv_error = rc;
        rt_conn_close_internal(c, rt_err_from_uv(rc), false);
        return;
    }
    rt_conn_set_address(c);
    uint8_t seed[32];
    randombytes_buf(seed, sizeof(seed));
    rc = sess_init_responder(&c->sess, n->config.ed_public, n->config.ed_secret, &n->config.lookup,
                             seed);
    sodium_memzero(seed, sizeof(seed));
    if (rc == 0) {
        rc = rt_conn_start_reading(c);
    }
    if (rc != 0) {
        rt_conn_close_internal(c, rc, false);
    }
}

/* Resolves host:port into ss: a numeric address directly, a name with a blocking lookup. */
static int rt_resolve(uv_loop_t *loop, const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) {
        return 0;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) {
        return 0;
    }
    uv_getaddrinfo_t req;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    int rc = uv_getaddrinfo(loop, &req, NULL, host, service, &hints);
    if (rc != 0) {
        return rc;
    }
    if (req.addrinfo == NULL || req.addrinfo->ai_addrlen > sizeof(*ss)) {
        uv_freeaddrinfo(req.addrinfo);
        return UV_EAI_NONAME;
    }
    memcpy(ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    return 0;
}

int rt_net_listen(struct rt_net *n, const char *host, uint16_t port, char *errmsg,
                  size_t errmsg_size)
{
    TRONE_ASSERT(!n->listening);
    struct sockaddr_storage ss;
    int rc = rt_resolve(n->loop, host, port, &ss);
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "cannot resolve %s: %s", host, uv_strerror(rc));
        return TRONE_EINVAL;
    }
    rc = uv_tcp_init(n->loop, &n->listener);
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "cannot create a socket: %s", uv_strerror(rc));
        return rt_err_from_uv(rc);
    }
    n->listener.data = n;
    n->listening = true;
    rc = uv_tcp_bind(&n->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&n->listener, 128, rt_net_on_connection);
    }
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "cannot listen on %s:%u: %s", host, (unsigned)port,
                 uv_strerror(rc));
        return rt_err_from_uv(rc);
    }
    return 0;
}

/* ---- The net ------------------------------------------------------------------------------ */

/* Closes connections whose handshake has not finished in time. */
static void rt_net_on_sweep(uv_timer_t *timer)
{
    struct rt_net *n = timer->data;
    uint64_t now = uv_now(n->loop);
    struct rt_conn *c = n->conns;
    for (size_t i = 0; i <= RT_CONNS_MAX && c != NULL; i++) {
        struct rt_conn *next = c->next;
        if (!c->opened && now - c->started_ms >= RT_HANDSHAKE_TIMEOUT_MS) {
            char name[64];
            log_debug(n->config.comp, "msg=\"handshake timed out\" peer=%s",
                      rt_conn_name(c, name, sizeof(name)));
            rt_conn_close(c, TRONE_ETIMEDOUT);
        }
        c = next;
    }
    rt_net_flush(n);
}

int rt_net_init(struct rt_net *n, uv_loop_t *loop, const struct rt_net_config *config,
                const struct rt_net_handler *handler)
{
    TRONE_ASSERT(handler->message != NULL);
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->config = *config;
    n->handler = *handler;
    int rc = uv_timer_init(loop, &n->sweep);
    if (rc != 0) {
        sodium_memzero(n->config.ed_secret, sizeof(n->config.ed_secret));
        n->loop = NULL; /* nothing to close */
        return rt_err_from_uv(rc);
    }
    n->sweep.data = n;
    rc = uv_timer_start(&n->sweep, rt_net_on_sweep, RT_SWEEP_INTERVAL_MS, RT_SWEEP_INTERVAL_MS);
    TRONE_ASSERT(rc == 0);
    return 0;
}

void rt_net_close(struct rt_net *n)
{
    if (n->closing) {
        return;
    }
    n->closing = true;
    if (n->listening) {
        uv_close((uv_handle_t *)&n->listener, NULL);
    }
    uv_close((uv_handle_t *)&n->sweep, NULL);
    for (size_t i = 0; i <= RT_CONNS_MAX && n->conns != NULL; i++) {
        rt_conn_close_internal(n->conns, TRONE_ECLOSED, false);
    }
    TRONE_ASSERT(n->conns == NULL);
    sodium_memzero(n->config.ed_secret, sizeof(n->config.ed_secret));
}

/* ---- Dialing ------------------------------------------------------------------------------ */

static void rt_dialer_on_connect(uv_connect_t *req, int status)
{
    struct rt_conn *c = req->data;
    if (c->closing) {
        return;
    }
    if (status < 0) {
        c->uv_error = status;
        rt_conn_close(c, rt_err_from_uv(status));
        return;
    }
    c->connected = true;
    rt_conn_set_address(c);
    int rc = rt_conn_start_reading(c);
    if (rc != 0) {
        rt_conn_close(c, rc);
        return;
    }
    /* The hello and first handshake message wait in the session output. */
    rt_conn_write(c);
}

static int rt_dialer_attempt(struct rt_dialer *d)
{
    struct rt_net *n = d->net;
    TRONE_ASSERT(d->conn == NULL);
    struct sockaddr_storage ss;
    int rc = rt_resolve(n->loop, d->host, d->port, &ss);
    if (rc != 0) {
        d->last_uv_error = rc;
        return TRONE_EINVAL;
    }
    struct rt_conn *c = rt_conn_new(n);
    if (c == NULL) {
        return TRONE_ENOMEM;
    }
    c->dialer = d;
    d->conn = c;
    snprintf(c->address, sizeof(c->address), "%s:%u", d->host, (unsigned)d->port);
    uint8_t seed[32];
    randombytes_buf(seed, sizeof(seed));
    rc = sess_init_initiator(&c->sess, n->config.role, n->config.self_id, n->config.ed_public,
                             n->config.ed_secret, d->peer_id, d->peer_key, seed);
    sodium_memzero(seed, sizeof(seed));
    if (rc == 0) {
        c->connect_req.data = c;
        int uv_rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&ss,
                                   rt_dialer_on_connect);
        if (uv_rc != 0) {
            c->uv_error = uv_rc;
            rc = rt_err_from_uv(uv_rc);
        }
    }
    if (rc != 0) {
        rt_conn_close(c, rc); /* schedules the next attempt */
    }
    return 0;
}

static void rt_dialer_on_timer(uv_timer_t *timer)
{
    struct rt_dialer *d = timer->data;
    if (d->stopping || d->net->closing || d->conn != NULL) {
        return;
    }
    int rc = rt_dialer_attempt(d);
    if (rc != 0) {
        d->failures++;
        d->last_error = rc;
        rt_dialer_schedule(d);
    }
}

static void rt_dialer_schedule(struct rt_dialer *d)
{
    uint64_t half = d->backoff_ms / 2;
    uint64_t delay = half + randombytes_uniform((uint32_t)(d->backoff_ms - half + 1));
    d->backoff_ms = d->backoff_ms * 2 > RT_BACKOFF_MAX_MS ? RT_BACKOFF_MAX_MS : d->backoff_ms * 2;
    int rc = uv_timer_start(&d->timer, rt_dialer_on_timer, delay, 0);
    TRONE_ASSERT(rc == 0);
}

int rt_dialer_start(struct rt_dialer *d, struct rt_net *n, uint32_t peer_id,
                    const uint8_t peer_key[TRONE_KEY_LEN], const char *host, uint16_t port)
{
    TRONE_ASSERT(strlen(host) <= CFG_HOST_MAX);
    memset(d, 0, sizeof(*d));
    d->net = n;
    d->peer_id = peer_id;
    memcpy(d->peer_key, peer_key, TRONE_KEY_LEN);
    snprintf(d->host, sizeof(d->host), "%s", host);
    d->port = port;
    d->backoff_ms = RT_BACKOFF_MIN_MS;
    int rc = uv_timer_init(n->loop, &d->timer);
    if (rc != 0) {
        return rt_err_from_uv(rc);
    }
    d->timer.data = d;
    d->started = true;
    /* The first attempt runs from the loop, like every retry, so callers see no callback. */
    rc = uv_timer_start(&d->timer, rt_dialer_on_timer, 0, 0);
    TRONE_ASSERT(rc == 0);
    return 0;
}

void rt_dialer_stop(struct rt_dialer *d)
{
    if (!d->started || d->stopping) {
        return;
    }
    d->stopping = true;
    if (d->conn != NULL) {
        rt_conn_close_internal(d->conn, TRONE_ECLOSED, false);
    }
    uv_close((uv_handle_t *)&d->timer, NULL);
}

struct rt_conn *rt_dialer_open_conn(const struct rt_dialer *d)
{
    if (d->conn == NULL || !d->conn->opened || d->conn->closing) {
        return NULL;
    }
    return d->conn;
}

const char *rt_dialer_error(const struct rt_dialer *d)
{
    if (d->last_uv_error == UV_EOF || d->last_uv_error == UV_ECONNRESET) {
        /* TCP was up, then the peer hung up before the session opened. */
        return d->net->config.role == SESS_ROLE_CLIENT
                   ? "closed during the handshake (is this key registered?)"
                   : "closed during the handshake";
    }
    if (d->last_uv_error != 0) {
        return uv_strerror(d->last_uv_error);
    }
    if (d->last_error != 0) {
        return trone_strerror(d->last_error);
    }
    return d->conn != NULL ? "connecting" : "not connected";
}

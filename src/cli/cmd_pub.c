/* cmd_pub.c: `trone pub TAG [MESSAGE...] [--timeout S]`: a thin user of the client API
 * (include/trone/trone.h). Publishes each MESSAGE, or one event per stdin line as lines arrive
 * (it does not wait for end of input), then waits until the cluster acknowledged every event as
 * the channel's fault model requires. No network code here. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/brk_op.h"
#include "cli/cmd.h"
#include "rt/rt_ctl.h"
#include "trone/trone.h"

#define CMD_PUB_TIMEOUT_MS 30000u
/* Input buffer: one longest line (an event's payload), its newline and one read. */
#define CMD_PUB_READ_SIZE (64u * 1024u)
#define CMD_PUB_LINE_BUFFER (TRONE_EVENT_PAYLOAD_MAX + 1u + CMD_PUB_READ_SIZE)

struct cmd_pub {
    struct cmd_common common;
    const char *tag;
    int message_first; /* argv index of the first MESSAGE, 0 if none */
    int message_count;
    uint64_t timeout_ms;
    struct trone_client *client;
    uint64_t published; /* events queued with the client */
    uint64_t read;      /* events read (arguments or lines) */
    uint64_t last_progress_ms;
    char *line_buffer;
    size_t line_used;
    bool eof;
};

static void cmd_pub_usage(FILE *out)
{
    fprintf(out,
            "usage: trone pub TAG [MESSAGE...] [--timeout SECONDS]\n"
            "\n"
            "Publishes each MESSAGE as one event on channel TAG, or without MESSAGE one event\n"
            "per line of standard input, sent as lines arrive. Every event goes to every\n"
            "replica; trone pub exits 0 once the cluster acknowledged all of them as the\n"
            "channel's fault model requires (f+1 replicas for cft, 2f+1 for bft).\n"
            "\n"
            "options:\n"
            "  --timeout SECONDS  how long to wait for acknowledgements without progress\n"
            "                     (default %u)\n"
            "  --cluster FILE     cluster file (default $TRONE_CLUSTER)\n"
            "  --key FILE         your identity (default $TRONE_KEY, then the admin key)\n"
            "\n"
            "exit status: 0 every event acknowledged, 1 refused or some events not\n"
            "acknowledged (\"N of M events not acknowledged\"), 2 usage error\n",
            CMD_PUB_TIMEOUT_MS / 1000u);
}

static uint64_t cmd_pub_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Parses argv; CMD_OK, CMD_USAGE, or -1 after printing --help. */
static int cmd_pub_parse(struct cmd_pub *p, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cmd_pub_usage(stdout);
            return -1;
        }
        if (strcmp(arg, "--timeout") == 0) {
            if (i + 1 >= argc || rt_ctl_seconds_parse(argv[i + 1], &p->timeout_ms) != 0) {
                return cmd_error(CMD_USAGE, "pub", "--timeout needs a number of seconds above 0");
            }
            i++;
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            int rc = cmd_common_option(&p->common, argc, argv, &i);
            if (rc < 0) {
                return CMD_USAGE;
            }
            if (rc == 0) {
                return cmd_error(CMD_USAGE, "pub", "unknown option '%s' (see trone pub --help)",
                                 arg);
            }
            continue;
        }
        if (p->tag == NULL) {
            p->tag = arg;
        } else if (p->message_count > 0 && p->message_first + p->message_count != i) {
            return cmd_error(CMD_USAGE, "pub", "put every MESSAGE together after TAG");
        } else {
            p->message_first = p->message_count == 0 ? i : p->message_first;
            p->message_count++;
        }
    }
    if (p->tag == NULL) {
        return cmd_error(CMD_USAGE, "pub", "needs a channel TAG (see trone pub --help)");
    }
    if (!brk_tag_valid(p->tag)) {
        return cmd_error(CMD_USAGE, "pub",
                         "invalid TAG '%s': use 1 to %u letters, digits, '.', '_' or '-'", p->tag,
                         (unsigned)TRONE_TAG_MAX);
    }
    return CMD_OK;
}

/* Publishes one event, waiting while the client's window is full (at most --timeout without
 * any acknowledgement arriving). Returns CMD_OK or CMD_FAIL after printing why. */
static int cmd_pub_one(struct cmd_pub *p, const void *data, size_t size)
{
    p->read++;
    if (size > TRONE_EVENT_PAYLOAD_MAX) {
        return cmd_error(CMD_FAIL, "pub", "event %" PRIu64 " has %zu bytes, more than %u",
                         p->read, size, TRONE_EVENT_PAYLOAD_MAX);
    }
    uint64_t unacked = trone_unacked(p->client);
    for (;;) {
        int rc = trone_publish(p->client, p->tag, data, size);
        if (rc == 0) {
            p->published++;
            return CMD_OK;
        }
        if (rc != TRONE_EBUSY) {
            return cmd_error(CMD_FAIL, "pub", "%s (%" PRIu64 " of %" PRIu64
                             " events read not acknowledged)", trone_last_error(p->client),
                             trone_unacked(p->client) + (p->read - p->published), p->read);
        }
        uint64_t now = cmd_pub_now_ms();
        if (trone_unacked(p->client) < unacked) {
            p->last_progress_ms = now;
        }
        unacked = trone_unacked(p->client);
        if (now - p->last_progress_ms >= p->timeout_ms) {
            return cmd_error(CMD_FAIL, "pub", "no acknowledgement for %.3g s: %s",
                             (double)p->timeout_ms / 1000.0, trone_last_error(p->client));
        }
        /* Wait for the network only (not for more input) until the window has room. */
        struct pollfd fd = {.fd = trone_fd(p->client), .events = POLLIN};
        uint64_t wait_ms = trone_wait_ms(p->client);
        (void)poll(&fd, 1, wait_ms > 100 ? 100 : (int)wait_ms);
        rc = trone_run(p->client, 0);
        if (rc < 0) {
            return cmd_error(CMD_FAIL, "pub", "%s", trone_last_error(p->client));
        }
    }
}

/* Publishes every complete line in the buffer and keeps the rest; at end of input the last
 * unterminated line too. */
static int cmd_pub_lines(struct cmd_pub *p)
{
    size_t start = 0;
    for (size_t i = 0; i < p->line_used; i++) {
        if (p->line_buffer[i] != '\n') {
            continue;
        }
        size_t end = i > start && p->line_buffer[i - 1] == '\r' ? i - 1 : i;
        int rc = cmd_pub_one(p, p->line_buffer + start, end - start);
        if (rc != CMD_OK) {
            return rc;
        }
        start = i + 1;
    }
    memmove(p->line_buffer, p->line_buffer + start, p->line_used - start);
    p->line_used -= start;
    if (p->eof && p->line_used > 0) {
        int rc = cmd_pub_one(p, p->line_buffer, p->line_used);
        p->line_used = 0;
        return rc;
    }
    if (p->line_used > TRONE_EVENT_PAYLOAD_MAX) {
        return cmd_error(CMD_FAIL, "pub", "line %" PRIu64 " is longer than %u bytes",
                         p->read + 1, TRONE_EVENT_PAYLOAD_MAX);
    }
    return CMD_OK;
}

/* Reads standard input as it arrives, publishing each line, while the client keeps running. */
static int cmd_pub_stdin(struct cmd_pub *p)
{
    p->line_buffer = malloc(CMD_PUB_LINE_BUFFER);
    if (p->line_buffer == NULL) {
        return cmd_error(CMD_FAIL, "pub", "out of memory");
    }
    while (!p->eof) {
        struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                {.fd = trone_fd(p->client), .events = POLLIN}};
        uint64_t wait_ms = trone_wait_ms(p->client);
        int ready = poll(fds, 2, wait_ms > 1000 ? 1000 : (int)wait_ms);
        if (ready > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            ssize_t got = read(STDIN_FILENO, p->line_buffer + p->line_used,
                               CMD_PUB_LINE_BUFFER - p->line_used);
            if (got < 0 && errno != EINTR && errno != EAGAIN) {
                return cmd_error(CMD_FAIL, "pub", "cannot read standard input: %s",
                                 strerror(errno));
            }
            p->eof = got == 0;
            p->line_used += got > 0 ? (size_t)got : 0;
            int rc = cmd_pub_lines(p);
            if (rc != CMD_OK) {
                return rc;
            }
        }
        if (trone_run(p->client, 0) < 0) {
            return cmd_error(CMD_FAIL, "pub", "%s", trone_last_error(p->client));
        }
    }
    return CMD_OK;
}

/* Waits for the acknowledgements: --timeout without progress ends the wait. */
static int cmd_pub_finish(struct cmd_pub *p)
{
    uint64_t unacked = trone_unacked(p->client);
    int rc = 0;
    for (uint32_t round = 0; round < UINT32_MAX; round++) {
        rc = trone_flush(p->client, p->timeout_ms);
        if (rc <= 0 || trone_unacked(p->client) >= unacked) {
            break;
        }
        unacked = trone_unacked(p->client); /* progress: give the rest another --timeout */
    }
    if (rc < 0) {
        return cmd_error(CMD_FAIL, "pub", "%s", trone_last_error(p->client));
    }
    uint64_t missing = (uint64_t)rc + (p->read - p->published);
    if (missing > 0) {
        return cmd_error(CMD_FAIL, "pub", "%" PRIu64 " of %" PRIu64 " events not acknowledged (%s)",
                         missing, p->read, trone_last_error(p->client));
    }
    return CMD_OK;
}

static int cmd_pub_open(struct cmd_pub *p)
{
    struct cfg_cluster *cluster = calloc(1, sizeof(*cluster));
    if (cluster == NULL) {
        return cmd_error(CMD_FAIL, "pub", "out of memory");
    }
    struct key_identity key;
    int rc = cmd_common_load(&p->common, cluster, &key);
    key_identity_wipe(&key);
    free(cluster);
    if (rc != CMD_OK) {
        return rc;
    }
    rc = trone_open(p->common.cluster_path, p->common.key_path, &p->client);
    if (rc != 0) {
        return cmd_error(CMD_FAIL, "pub", "cannot open the client: %s", trone_strerror(rc));
    }
    return CMD_OK;
}

int cmd_pub(int argc, char **argv)
{
    struct cmd_pub p;
    memset(&p, 0, sizeof(p));
    p.timeout_ms = CMD_PUB_TIMEOUT_MS;
    int rc = cmd_pub_parse(&p, argc, argv);
    if (rc != CMD_OK) {
        return rc < 0 ? CMD_OK : rc;
    }
    rc = cmd_pub_open(&p);
    if (rc != CMD_OK) {
        return rc;
    }
    p.last_progress_ms = cmd_pub_now_ms();
    for (int i = 0; i < p.message_count && rc == CMD_OK; i++) {
        const char *message = argv[p.message_first + i];
        rc = cmd_pub_one(&p, message, strlen(message));
    }
    if (rc == CMD_OK && p.message_count == 0) {
        rc = cmd_pub_stdin(&p);
    }
    if (rc == CMD_OK) {
        rc = cmd_pub_finish(&p);
    }
    trone_close(p.client);
    free(p.line_buffer);
    return rc;
}

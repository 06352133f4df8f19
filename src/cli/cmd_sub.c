/* cmd_sub.c: `trone sub TAG [--count N] [--timeout S] [--json]`: a thin user of the client API
 * (include/trone/trone.h). Prints one line per delivered event (the payload as text, or a JSON
 * object with --json) and gap reports to stderr. No network code here. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/brk_op.h"
#include "cli/cmd.h"
#include "core/key.h"
#include "rt/rt_ctl.h"
#include "trone/trone.h"

#define CMD_SUB_COUNT_MAX UINT64_C(1000000000000)
#define CMD_SUB_TAGS_MAX 64u /* the channels one client may subscribe to (rt_events.h) */

struct cmd_sub_args {
    struct cmd_common common;
    const char *tags[CMD_SUB_TAGS_MAX];
    uint32_t tag_count;
    uint64_t count;      /* 0: no limit */
    uint64_t timeout_ms; /* 0: none */
    enum trone_start start_kind;
    uint64_t start; /* FROM: position; SINCE: µs since 1970 */
};

static void cmd_sub_usage(FILE *out)
{
    fprintf(out,
            "usage: trone sub TAG [TAG...] [--from POSITION | --since TIME] [--count N]\n"
            "                 [--timeout SECONDS] [--json]\n"
            "\n"
            "Subscribes to channel TAG (or to each TAG) on every replica and prints one line per\n"
            "event, in each publisher's order and exactly once, while up to f replicas are down\n"
            "or lying. On a total-order channel every subscriber prints the same sequence.\n"
            "With several TAGs each plain line starts with the event's tag and a space, and when\n"
            "events of several channels wait, those of the most urgent channel (its class's\n"
            "urgency) print first; --from and --since apply to each TAG. Reports of lost events\n"
            "(gaps) go to stderr, summed per channel and publisher over a second.\n"
            "\n"
            "options:\n"
            "  --from POSITION    durable channels: first every kept event after POSITION\n"
            "                     (0: from the oldest kept), then the live ones, with no gap\n"
            "                     and no duplicate; a position is the agreed one on a total-\n"
            "                     order channel, the publisher's seq on a FIFO channel\n"
            "  --since TIME       durable channels: first every kept event published at or\n"
            "                     after TIME (RFC 3339, e.g. 2026-11-28T15:00:00Z, or unix\n"
            "                     seconds, e.g. 1795878000.5), then the live ones\n"
            "  --count N          exit 0 after N events (of all TAGs)\n"
            "  --timeout SECONDS  give up after this long (exit 1 if --count was not reached)\n"
            "  --json             one JSON object per line: channel, publisher, epoch, seq,\n"
            "                     time_us, received_us, payload, and position (what --from\n"
            "                     resumes after) on durable and total-order channels\n"
            "  --cluster FILE     cluster file (default $TRONE_CLUSTER)\n"
            "  --key FILE         your identity (default $TRONE_KEY, then the admin key)\n"
            "\n"
            "exit status: 0 done, 1 refused, failed or timed out, 2 usage error\n");
}

static int cmd_sub_parse_count(const char *text, uint64_t *count)
{
    char *end = NULL;
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return CMD_USAGE;
    }
    unsigned long long value = strtoull(text, &end, 10);
    if (*end != '\0' || value == 0 || value > CMD_SUB_COUNT_MAX) {
        return CMD_USAGE;
    }
    *count = value;
    return CMD_OK;
}

/* --from: a whole number (0 allowed). */
static int cmd_sub_parse_position(const char *text, uint64_t *position)
{
    char *end = NULL;
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return CMD_USAGE;
    }
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (*end != '\0' || errno != 0) {
        return CMD_USAGE;
    }
    *position = value;
    return CMD_OK;
}

/* --since: unix seconds (with an optional fraction) or RFC 3339
 * (YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)); sets µs since 1970. */
static int cmd_sub_parse_time(const char *text, uint64_t *us)
{
    if (text == NULL || text[0] == '\0') {
        return CMD_USAGE;
    }
    char *end = NULL;
    if (strchr(text, '-') == NULL || text[0] == '-') {
        if (text[0] < '0' || text[0] > '9') {
            return CMD_USAGE;
        }
        errno = 0;
        double seconds = strtod(text, &end);
        if (*end != '\0' || errno != 0 || seconds < 0 || seconds > 1e11) {
            return CMD_USAGE;
        }
        *us = (uint64_t)(seconds * 1e6);
        return CMD_OK;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL) {
        p = strptime(text, "%Y-%m-%d %H:%M:%S", &tm);
    }
    if (p == NULL) {
        return CMD_USAGE;
    }
    uint64_t frac_us = 0;
    if (*p == '.') {
        uint64_t scale = 100000;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            frac_us += (uint64_t)(*p - '0') * scale;
            scale /= 10;
        }
    }
    long offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int hours = (p[1] - '0') * 10 + (p[2] - '0');
        int minutes = (p[4] - '0') * 10 + (p[5] - '0');
        if (hours > 23 || minutes > 59) {
            return CMD_USAGE;
        }
        offset_s = (long)(hours * 3600 + minutes * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return CMD_USAGE; /* RFC 3339 needs the offset */
    }
    if (*p != '\0') {
        return CMD_USAGE;
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || (long long)t - offset_s < 0) {
        return CMD_USAGE;
    }
    *us = (uint64_t)((long long)t - offset_s) * 1000000u + frac_us;
    return CMD_OK;
}

/* Parses argv; CMD_OK, CMD_USAGE, or -1 after printing --help. */
static int cmd_sub_parse(struct cmd_sub_args *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cmd_sub_usage(stdout);
            return -1;
        }
        bool is_from = strcmp(arg, "--from") == 0;
        if (is_from || strcmp(arg, "--since") == 0) {
            if (i + 1 >= argc) {
                return cmd_error(CMD_USAGE, "sub", "%s needs a value", arg);
            }
            if (a->start_kind != TRONE_START_LIVE) {
                return cmd_error(CMD_USAGE, "sub", "give --from or --since, once");
            }
            const char *value = argv[++i];
            if (is_from && cmd_sub_parse_position(value, &a->start) != CMD_OK) {
                return cmd_error(CMD_USAGE, "sub", "--from needs a position (0, 1, 2, ...)");
            }
            if (!is_from && cmd_sub_parse_time(value, &a->start) != CMD_OK) {
                return cmd_error(CMD_USAGE, "sub",
                                 "--since needs unix seconds or an RFC 3339 time such as "
                                 "2026-11-28T15:00:00Z");
            }
            a->start_kind = is_from ? TRONE_START_FROM : TRONE_START_SINCE;
            continue;
        }
        bool is_count = strcmp(arg, "--count") == 0;
        if (is_count || strcmp(arg, "--timeout") == 0) {
            if (i + 1 >= argc) {
                return cmd_error(CMD_USAGE, "sub", "%s needs a value", arg);
            }
            const char *value = argv[++i];
            if (is_count && cmd_sub_parse_count(value, &a->count) != CMD_OK) {
                return cmd_error(CMD_USAGE, "sub", "--count needs a whole number above 0");
            }
            if (!is_count && rt_ctl_seconds_parse(value, &a->timeout_ms) != 0) {
                return cmd_error(CMD_USAGE, "sub", "--timeout needs a number of seconds above 0");
            }
            continue;
        }
        if (arg[0] != '-') {
            if (a->tag_count == CMD_SUB_TAGS_MAX) {
                return cmd_error(CMD_USAGE, "sub", "at most %u TAGs", (unsigned)CMD_SUB_TAGS_MAX);
            }
            a->tags[a->tag_count++] = arg;
            continue;
        }
        int rc = arg[0] == '-' ? cmd_common_option(&a->common, argc, argv, &i) : 0;
        if (rc < 0) {
            return CMD_USAGE;
        }
        if (rc == 0) {
            return cmd_error(CMD_USAGE, "sub", "unexpected argument '%s' (see trone sub --help)",
                             arg);
        }
    }
    if (a->tag_count == 0) {
        return cmd_error(CMD_USAGE, "sub", "needs a channel TAG (see trone sub --help)");
    }
    for (uint32_t t = 0; t < a->tag_count; t++) {
        if (!brk_tag_valid(a->tags[t])) {
            return cmd_error(CMD_USAGE, "sub",
                             "invalid TAG '%s': use 1 to %u letters, digits, '.', '_' or '-'",
                             a->tags[t], (unsigned)TRONE_TAG_MAX);
        }
        for (uint32_t u = 0; u < t; u++) {
            if (strcmp(a->tags[u], a->tags[t]) == 0) {
                return cmd_error(CMD_USAGE, "sub", "TAG '%s' given twice", a->tags[t]);
            }
        }
    }
    return CMD_OK;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not one. */
static size_t cmd_sub_utf8_length(const uint8_t *p, size_t left)
{
    size_t length = p[0] < 0x80                    ? 1
                    : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
                    : p[0] >= 0xe0 && p[0] <= 0xef ? 3
                    : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                                   : 0;
    if (length == 0 || length > left) {
        return 0;
    }
    for (size_t i = 1; i < length; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    /* Overlong three-byte forms, surrogates and code points above U+10FFFF. */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)) {
        return 0;
    }
    return length;
}

/* A JSON string: escapes quotes, backslashes and control characters; invalid UTF-8 bytes
 * become U+FFFD so the line stays valid JSON. */
static void cmd_sub_json_string(const uint8_t *data, size_t size)
{
    putchar('"');
    for (size_t i = 0; i < size;) {
        uint8_t ch = data[i];
        size_t length = cmd_sub_utf8_length(data + i, size - i);
        if (length == 0) {
            fputs("\\ufffd", stdout);
            i++;
        } else if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
            i++;
        } else if (ch < 0x20 || ch == 0x7f) {
            printf("\\u%04x", ch);
            i++;
        } else {
            fwrite(data + i, 1, length, stdout);
            i += length;
        }
    }
    putchar('"');
}

static void cmd_sub_print(const struct cmd_sub_args *a, const struct trone_event *ev)
{
    if (!a->common.json) {
        if (a->tag_count > 1) {
            printf("%s ", ev->channel);
        }
        /* One line per event: line breaks inside a payload are shown as "\n". */
        for (size_t i = 0; i < ev->payload_size; i++) {
            uint8_t ch = ev->payload[i];
            if (ch == '\n') {
                fputs("\\n", stdout);
            } else if (ch == '\r') {
                fputs("\\r", stdout);
            } else {
                putchar(ch);
            }
        }
        putchar('\n');
        return;
    }
    char publisher[2 * TRONE_PUBLIC_KEY_SIZE + 1];
    key_hex_encode(publisher, ev->publisher, TRONE_PUBLIC_KEY_SIZE);
    printf("{\"channel\":");
    cmd_sub_json_string((const uint8_t *)ev->channel, strlen(ev->channel));
    printf(",\"publisher\":\"%s\",\"epoch\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"time_us\":%" PRIu64
           ",\"received_us\":%" PRIu64 ",\"payload\":",
           publisher, ev->epoch, ev->seq, ev->time_us, ev->received_us);
    cmd_sub_json_string(ev->payload, ev->payload_size);
    if (ev->position != 0) {
        printf(",\"position\":%" PRIu64, ev->position);
    }
    printf("}\n");
}

/* Gaps of one (channel, publisher) reported within CMD_SUB_GAP_MS print as one line: a slow
 * subscriber whose replicas dropped events (each replica drops its own oldest, so the holes
 * that no replica filled are many and small) gets a few lines a second, not one per hole. */
#define CMD_SUB_GAP_MS 1000u
#define CMD_SUB_GAPS_MAX 16u

struct cmd_sub_gap_sum {
    bool used;
    char channel[TRONE_TAG_MAX + 1];
    uint8_t publisher[TRONE_PUBLIC_KEY_SIZE];
    uint64_t since_ms; /* the first hole of this summary */
    uint64_t holes;
    uint64_t lost; /* events counted lost (0 for holes of unknown size) */
    bool fell_behind; /* dropped by this client's queue: no publisher, no seq */
    uint64_t first_seq;
    uint64_t last_seq;
};

static struct cmd_sub_gap_sum cmd_sub_gaps[CMD_SUB_GAPS_MAX];

static void cmd_sub_gap_print(const struct cmd_sub_gap_sum *g)
{
    fflush(stdout); /* whole event lines first: stdout and stderr may share one file */
    char publisher[2 * TRONE_PUBLIC_KEY_SIZE + 1];
    key_hex_encode(publisher, g->publisher, TRONE_PUBLIC_KEY_SIZE);
    if (g->fell_behind) {
        cmd_error(0, "sub",
                  "gap: %" PRIu64 " events lost on %s: this subscriber fell behind (its queue "
                  "was full, the oldest events went first)",
                  g->lost, g->channel);
    } else if (g->holes > 1) {
        cmd_error(0, "sub",
                  "gap: %" PRIu64 " events of publisher %.16s lost on %s in %" PRIu64
                  " holes from seq %" PRIu64 " to %" PRIu64,
                  g->lost, publisher, g->channel, g->holes, g->first_seq, g->last_seq);
    } else if (g->lost > 0) {
        cmd_error(0, "sub",
                  "gap: %" PRIu64 " events of publisher %.16s lost on %s from seq %" PRIu64,
                  g->lost, publisher, g->channel, g->first_seq);
    } else {
        cmd_error(0, "sub", "gap: events of publisher %.16s lost on %s", publisher, g->channel);
    }
}

/* Prints the summaries older than CMD_SUB_GAP_MS (all of them with force). */
static void cmd_sub_gaps_flush(uint64_t now_ms, bool force)
{
    for (uint32_t i = 0; i < CMD_SUB_GAPS_MAX; i++) {
        struct cmd_sub_gap_sum *g = &cmd_sub_gaps[i];
        if (g->used && (force || now_ms - g->since_ms >= CMD_SUB_GAP_MS)) {
            cmd_sub_gap_print(g);
            g->used = false;
        }
    }
}

/* Before the last word: the gap summaries still waiting, and every event line printed. */
static void cmd_sub_out_finish(void)
{
    cmd_sub_gaps_flush(0, true);
    fflush(stdout);
}

static void cmd_sub_gap(const struct trone_event *ev, uint64_t now_ms)
{
    if (ev->not_kept) {
        fflush(stdout);
        char publisher[2 * TRONE_PUBLIC_KEY_SIZE + 1];
        key_hex_encode(publisher, ev->publisher, TRONE_PUBLIC_KEY_SIZE);
        cmd_error(0, "sub",
                  "gap: %" PRIu64 " events of publisher %.16s on %s from position %" PRIu64
                  " are no longer kept by the replicas (retention); replay starts after "
                  "them",
                  ev->lost, publisher, ev->channel, ev->seq);
        return;
    }
    struct cmd_sub_gap_sum *g = NULL;
    struct cmd_sub_gap_sum *spare = NULL; /* a free entry, else the oldest */
    for (uint32_t i = 0; i < CMD_SUB_GAPS_MAX && g == NULL; i++) {
        struct cmd_sub_gap_sum *c = &cmd_sub_gaps[i];
        if (c->used && strcmp(c->channel, ev->channel) == 0 &&
            c->fell_behind == (ev->fell_behind != 0) &&
            memcmp(c->publisher, ev->publisher, TRONE_PUBLIC_KEY_SIZE) == 0) {
            g = c;
        } else if (spare == NULL || (spare->used && (!c->used || c->since_ms < spare->since_ms))) {
            spare = c;
        }
    }
    if (g == NULL) {
        if (spare->used) {
            cmd_sub_gap_print(spare); /* the table is full: the oldest goes out now */
        }
        g = spare;
        memset(g, 0, sizeof(*g));
        g->used = true;
        snprintf(g->channel, sizeof(g->channel), "%s", ev->channel);
        memcpy(g->publisher, ev->publisher, TRONE_PUBLIC_KEY_SIZE);
        g->fell_behind = ev->fell_behind != 0;
        g->since_ms = now_ms;
        g->first_seq = ev->seq;
    }
    g->holes++;
    g->lost += ev->lost;
    g->last_seq = ev->lost > 0 ? ev->seq + ev->lost - 1 : ev->seq;
}

static uint64_t cmd_sub_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Resolves and checks the cluster and key files with the CLI's messages, then opens the
 * client on them. */
static int cmd_sub_open(struct cmd_common *common, struct trone_client **c)
{
    struct cfg_cluster *cluster = calloc(1, sizeof(*cluster));
    if (cluster == NULL) {
        return cmd_error(CMD_FAIL, "sub", "out of memory");
    }
    struct key_identity key;
    int rc = cmd_common_load(common, cluster, &key);
    key_identity_wipe(&key);
    free(cluster);
    if (rc != CMD_OK) {
        return rc;
    }
    rc = trone_open(common->cluster_path, common->key_path, c);
    if (rc != 0) {
        return cmd_error(CMD_FAIL, "sub", "cannot open the client: %s", trone_strerror(rc));
    }
    return CMD_OK;
}

/* Milliseconds until the oldest gap summary is due (UINT64_MAX: none waits). */
static uint64_t cmd_sub_gaps_due_in(uint64_t now_ms)
{
    uint64_t due = UINT64_MAX;
    for (uint32_t i = 0; i < CMD_SUB_GAPS_MAX; i++) {
        const struct cmd_sub_gap_sum *g = &cmd_sub_gaps[i];
        if (g->used) {
            uint64_t at = g->since_ms + CMD_SUB_GAP_MS;
            uint64_t in = at > now_ms ? at - now_ms : 0;
            due = in < due ? in : due;
        }
    }
    return due;
}

/* Receives until --count events or --timeout. */
static int cmd_sub_loop(const struct cmd_sub_args *a, struct trone_client *c, uint64_t start_ms,
                        uint64_t (*now_ms)(void))
{
    uint64_t received = 0;
    for (;;) {
        uint64_t wait_ms = UINT64_C(3600000);
        if (a->timeout_ms > 0) {
            uint64_t elapsed = now_ms() - start_ms;
            wait_ms = elapsed >= a->timeout_ms ? 0 : a->timeout_ms - elapsed;
        }
        cmd_sub_gaps_flush(now_ms(), false);
        uint64_t gaps_due = cmd_sub_gaps_due_in(now_ms());
        struct trone_event ev;
        int rc = trone_receive(c, &ev, 0);
        if (rc == TRONE_ETIMEDOUT && wait_ms > 0) {
            fflush(stdout); /* nothing ready: show what was printed before blocking */
            rc = trone_receive(c, &ev, gaps_due < wait_ms ? gaps_due : wait_ms);
        }
        if (rc == TRONE_ETIMEDOUT && a->timeout_ms > 0 && now_ms() - start_ms >= a->timeout_ms) {
            cmd_sub_out_finish();
            if (a->count == 0) {
                return CMD_OK;
            }
            return cmd_error(CMD_FAIL, "sub",
                             "timed out after %.3g s with %" PRIu64 " of %" PRIu64 " events",
                             (double)a->timeout_ms / 1000.0, received, a->count);
        }
        if (rc == TRONE_ETIMEDOUT) {
            continue;
        }
        if (rc != 0) {
            cmd_sub_out_finish();
            return cmd_error(CMD_FAIL, "sub", "%s", trone_last_error(c));
        }
        if (ev.kind == TRONE_EVENT_GAP) {
            cmd_sub_gap(&ev, now_ms());
            continue;
        }
        cmd_sub_print(a, &ev);
        received++;
        if (a->count > 0 && received >= a->count) {
            cmd_sub_out_finish();
            return CMD_OK;
        }
    }
}

int cmd_sub(int argc, char **argv)
{
    struct cmd_sub_args a;
    memset(&a, 0, sizeof(a));
    int rc = cmd_sub_parse(&a, argc, argv);
    if (rc != CMD_OK) {
        return rc < 0 ? CMD_OK : rc;
    }
    uint64_t start_ms = cmd_sub_now_ms();
    struct trone_client *c = NULL;
    rc = cmd_sub_open(&a.common, &c);
    if (rc != CMD_OK) {
        return rc;
    }
    for (uint32_t t = 0; t < a.tag_count && rc == CMD_OK; t++) {
        if (trone_subscribe_from(c, a.tags[t], a.start_kind, a.start, NULL, NULL) != 0) {
            rc = cmd_error(CMD_FAIL, "sub", "%s", trone_last_error(c));
        }
    }
    if (rc == CMD_OK) {
        rc = cmd_sub_loop(&a, c, start_ms, cmd_sub_now_ms);
    }
    trone_close(c);
    return rc;
}

/* cmd_bench_events.c: `trone bench events`: events/s and end-to-end latency of event channels
 * through a temporary local cluster, for every configuration of class x payload size x
 * publishers x subscribers x offered rate, with Mosquitto (QoS 0) and NATS measured in the same
 * run as unreplicated baselines, and the ratios the issue sets as targets. Every client is a
 * thread with its own trone_client and registered identity; the harness (cmd_bench_harness.c)
 * checks that each subscriber got every event exactly once in FIFO order, or the run fails.
 * Measures, never asserts a speed. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/brk_op.h"
#include "cli/cmd.h"
#include "cli/cmd_bench_events.h"
#include "core/assert.h"
#include "core/key.h"
#include "rt/rt_ctl.h"
#include "trone/trone.h"

#define EVT_LIST_MAX 8u
#define EVT_CLASSES_MAX 32u
#define EVT_RESULTS_MAX 64u

/* One entry of --rate: events/s offered by all publishers together; 0 as fast as the window
 * allows; half: half the events/s measured at rate 0 in the same configuration. */
struct evt_rate {
    double per_s;
    bool half;
};

struct evt_args {
    uint32_t replica_count;
    uint32_t sizes[EVT_LIST_MAX], size_count;
    uint32_t pubs[EVT_LIST_MAX], pub_count;
    uint32_t subs[EVT_LIST_MAX], sub_count;
    struct evt_rate rates[EVT_LIST_MAX];
    uint32_t rate_count;
    char classes[EVT_CLASSES_MAX][BRK_CLASS_TEXT_MAX];
    uint32_t class_count;
    uint64_t events;     /* per configuration, split over publishers; 0 with --seconds */
    double seconds;
    uint64_t window;
    bool baselines;
    bool json;
};

/* One printed measurement, kept for the ratios of its (size, publishers, subscribers). */
struct evt_result {
    char system[16];
    char cls[BRK_CLASS_TEXT_MAX];
    bool half;
    double verify_us; /* Ed25519 verify time measured just before this class ran */
    double sign_us;   /* Ed25519 sign time, measured with it */
    struct evb_figures fig;
};

struct evt_bench {
    const struct evt_args *args;
    struct spawn_set set;
    double verify_us;
    double sign_us;
    uint32_t cores;
    struct evt_result results[EVT_RESULTS_MAX];
    uint32_t result_count;
    char missing[2][512]; /* mosquitto, nats: why the baseline was skipped ("" if it ran) */
};

static void evt_usage(FILE *out)
{
    fprintf(out,
            "usage: trone bench events [--replicas N] [--size B,...] [--publishers P,...]\n"
            "                          [--subscribers S,...] [--events N | --seconds S]\n"
            "                          [--classes C/C/...] [--rate R,...] [--window W]\n"
            "                          [--no-baselines] [--json]\n"
            "\n"
            "For every payload size x publisher count x subscriber count: starts Mosquitto\n"
            "(QoS 0) and NATS on free loopback ports and measures them, then for every class\n"
            "makes a temporary cluster of N replicas (BFT cluster, f=1 for N=4), registers P\n"
            "publishers and S subscribers (one identity and one trone_client thread each),\n"
            "creates a channel of that class and measures it at every rate. Publishers put\n"
            "their monotonic send time in the payload; subscribers check that they got every\n"
            "event exactly once in FIFO order (else exit 1) and record the delay. One line per\n"
            "measurement:\n"
            "  bench=events system=trone class=cft,fifo,si replicas=4 size=100 publishers=1\n"
            "  subscribers=1 offered_per_s=0 events=.. seconds=.. events_per_s=.. p50_ms=..\n"
            "  p99_ms=.. p999_ms=.. max_ms=.. server_cpu_us_per_event=..\n"
            "  client_cpu_us_per_event=.. peak_kib=A,B,C,D load1=..\n"
            "then bench=events-ratio lines (targets of issue 3).\n"
            "\n"
            "  --replicas N        replicas (default 4)\n"
            "  --size B,...        payload bytes, at least %u (default 100,1024)\n"
            "  --publishers P,...  publisher counts (default 1)\n"
            "  --subscribers S,... subscriber counts (default 1)\n"
            "  --events N          events per measurement, split over publishers\n"
            "  --seconds S         publish for S seconds (default 3) instead of a count\n"
            "  --classes LIST      channel classes separated by '/' (default\n"
            "                      cft,fifo,si/bft,fifo,si/cft,fifo,pks/bft,fifo,pks/bft,total,si);\n"
            "                      a class the cluster refuses is reported and skipped\n"
            "  --rate R,...        offered events/s of all publishers together; 0 as fast as\n"
            "                      the window allows; half: half the rate measured at 0\n"
            "                      (default 0,half)\n"
            "  --window W          events in flight to a subscriber, split over the\n"
            "                      publishers: each may run W/P events ahead of its slowest\n"
            "                      subscriber (default 4096; a replica queues at most 65536\n"
            "                      events or 8 MiB per subscriber connection, then drops)\n"
            "  --no-baselines      skip Mosquitto and NATS\n"
            "  --json              one JSON object per line\n"
            "\n"
            "exit status: 0 every measurement delivered every event, 1 failure, 2 usage error\n",
            EVB_HEADER_SIZE);
}

/* ---- Arguments ---------------------------------------------------------------------------- */

static int evt_u64(const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max) {
        return TRONE_EINVAL;
    }
    *value = v;
    return 0;
}

static int evt_u32_list(const char *text, uint32_t min, uint32_t max, uint32_t *out,
                        uint32_t *count)
{
    char copy[256];
    if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy)) {
        return TRONE_EINVAL;
    }
    *count = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        uint64_t v = 0;
        if (*count == EVT_LIST_MAX || evt_u64(item, min, max, &v) != 0) {
            return TRONE_EINVAL;
        }
        out[(*count)++] = (uint32_t)v;
    }
    return *count > 0 ? 0 : TRONE_EINVAL;
}

static int evt_rate_list(struct evt_args *a, const char *text)
{
    char copy[256];
    if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy)) {
        return TRONE_EINVAL;
    }
    a->rate_count = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        if (a->rate_count == EVT_LIST_MAX) {
            return TRONE_EINVAL;
        }
        struct evt_rate *r = &a->rates[a->rate_count++];
        uint64_t v = 0;
        if (strcmp(item, "half") == 0) {
            *r = (struct evt_rate){.half = true};
        } else if (evt_u64(item, 0, 100000000u, &v) == 0) {
            *r = (struct evt_rate){.per_s = (double)v};
        } else {
            return TRONE_EINVAL;
        }
    }
    return a->rate_count > 0 ? 0 : TRONE_EINVAL;
}

/* Classes separated by '/' or ';', each checked by brk_class_parse and kept canonical; why
 * says what is wrong. */
static int evt_class_list(struct evt_args *a, const char *text, char *why, size_t why_size)
{
    char copy[2048];
    if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy)) {
        snprintf(why, why_size, "longer than %zu bytes", sizeof(copy) - 1);
        return TRONE_EINVAL;
    }
    a->class_count = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, "/;", &save); item != NULL;
         item = strtok_r(NULL, "/;", &save)) {
        struct brk_class cls;
        char reason[128];
        if (a->class_count == EVT_CLASSES_MAX) {
            snprintf(why, why_size, "more than %u classes", (unsigned)EVT_CLASSES_MAX);
            return TRONE_EINVAL;
        }
        if (brk_class_parse(&cls, item, reason, sizeof(reason)) != 0 ||
            brk_class_format(&cls, a->classes[a->class_count], BRK_CLASS_TEXT_MAX) < 0) {
            snprintf(why, why_size, "class '%s': %s", item, reason);
            return TRONE_EINVAL;
        }
        a->class_count++;
    }
    if (a->class_count == 0) {
        snprintf(why, why_size, "no class");
        return TRONE_EINVAL;
    }
    return 0;
}

static int evt_option(struct evt_args *a, const char *option, const char *value)
{
    uint64_t v = 0;
    int rc = 0;
    if (strcmp(option, "--replicas") == 0) {
        rc = evt_u64(value, 4, TRONE_REPLICAS_MAX, &v);
        a->replica_count = (uint32_t)v;
    } else if (strcmp(option, "--size") == 0) {
        rc = evt_u32_list(value, EVB_HEADER_SIZE, TRONE_EVENT_PAYLOAD_MAX, a->sizes,
                          &a->size_count);
    } else if (strcmp(option, "--publishers") == 0) {
        rc = evt_u32_list(value, 1, EVB_CLIENTS_MAX, a->pubs, &a->pub_count);
    } else if (strcmp(option, "--subscribers") == 0) {
        rc = evt_u32_list(value, 1, EVB_CLIENTS_MAX, a->subs, &a->sub_count);
    } else if (strcmp(option, "--events") == 0) {
        rc = evt_u64(value, 1, 100000000u, &a->events);
        a->seconds = 0;
    } else if (strcmp(option, "--seconds") == 0) {
        rc = evt_u64(value, 1, 3600, &v);
        a->seconds = (double)v;
        a->events = 0;
    } else if (strcmp(option, "--classes") == 0 || strcmp(option, "--class") == 0) {
        char why[256];
        if (evt_class_list(a, value, why, sizeof(why)) != 0) {
            return cmd_error(CMD_USAGE, "bench", "bad --classes: %s (see trone bench events "
                             "--help)", why);
        }
    } else if (strcmp(option, "--rate") == 0) {
        rc = evt_rate_list(a, value);
    } else if (strcmp(option, "--window") == 0) {
        rc = evt_u64(value, 1, 10000000u, &a->window);
    } else {
        return cmd_error(CMD_USAGE, "bench", "unknown option '%s' (see trone bench events --help)",
                         option);
    }
    if (rc != 0) {
        return cmd_error(CMD_USAGE, "bench", "bad value '%s' for %s (see trone bench events "
                         "--help)", value, option);
    }
    return CMD_OK;
}

/* CMD_OK, CMD_USAGE, or -1 after --help. argv[1] is "events". */
static int evt_parse(struct evt_args *a, int argc, char **argv)
{
    *a = (struct evt_args){.replica_count = 4, .sizes = {100, 1024}, .size_count = 2,
                           .pubs = {1}, .pub_count = 1, .subs = {1}, .sub_count = 1,
                           .rates = {{.per_s = 0}, {.half = true}}, .rate_count = 2,
                           .seconds = 3, .window = 4096, .baselines = true};
    char why[64];
    int rc = evt_class_list(a, "cft,fifo,si/bft,fifo,si/cft,fifo,pks/bft,fifo,pks/bft,total,si",
                            why, sizeof(why));
    TRONE_ASSERT(rc == 0);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            evt_usage(stdout);
            return -1;
        }
        if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "--no-baselines") == 0) {
            a->json = a->json || strcmp(argv[i], "--json") == 0;
            a->baselines = a->baselines && strcmp(argv[i], "--no-baselines") != 0;
            continue;
        }
        if (i + 1 >= argc) {
            return cmd_error(CMD_USAGE, "bench", "%s needs a value (see trone bench events "
                             "--help)", argv[i]);
        }
        if (evt_option(a, argv[i], argv[i + 1]) != CMD_OK) {
            return CMD_USAGE;
        }
        i++;
    }
    return CMD_OK;
}

/* ---- Output ------------------------------------------------------------------------------- */

static double evt_load1(void)
{
    double load = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &load) != 1) {
            load = -1.0;
        }
        fclose(f);
    }
    return load;
}

static void evt_print(const struct evt_bench *b, const char *system, const char *cls,
                      uint32_t servers, const struct evb_run *r, double offered,
                      const struct evb_figures *f)
{
    char peaks[16 * TRONE_REPLICAS_MAX] = "";
    size_t at = 0;
    for (uint32_t k = 0; k < f->server_count && at < sizeof(peaks); k++) {
        at += (size_t)snprintf(peaks + at, sizeof(peaks) - at, "%s%llu", k > 0 ? "," : "",
                               (unsigned long long)f->server_peak_kib[k]);
    }
    const char *fmt =
        b->args->json
            ? "{\"bench\":\"events\",\"system\":\"%s\",\"class\":\"%s\",\"replicas\":%u,"
              "\"size\":%u,\"publishers\":%u,\"subscribers\":%u,\"offered_per_s\":%.0f,"
              "\"events\":%llu,\"seconds\":%.3f,\"events_per_s\":%.1f,\"p50_ms\":%.3f,"
              "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
              "\"server_cpu_us_per_event\":%.2f,\"client_cpu_us_per_event\":%.2f,"
              "\"peak_kib\":[%s],\"load1\":%.2f}\n"
            : "bench=events system=%s class=%s replicas=%u size=%u publishers=%u subscribers=%u "
              "offered_per_s=%.0f events=%llu seconds=%.3f events_per_s=%.1f p50_ms=%.3f "
              "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f server_cpu_us_per_event=%.2f "
              "client_cpu_us_per_event=%.2f peak_kib=%s load1=%.2f\n";
    printf(fmt, system, cls, servers, r->size, r->pub_count, r->sub_count, offered,
           (unsigned long long)f->events, f->seconds, f->events_per_s, f->p50_ms, f->p99_ms,
           f->p999_ms, f->max_ms, f->server_cpu_us_per_event, f->client_cpu_us_per_event, peaks,
           evt_load1());
    fflush(stdout);
}

/* A reason safe inside a double-quoted value (JSON or key="value"). */
static void evt_quote_safe(char *out, size_t size, const char *text)
{
    size_t n = 0;
    for (size_t i = 0; text[i] != '\0' && n + 1 < size; i++) {
        char ch = text[i];
        out[n++] = ch == '"' || ch == '\\' ? '\'' : (unsigned char)ch < 0x20 ? ' ' : ch;
    }
    out[n] = '\0';
}

static void evt_print_skip(const struct evt_bench *b, const char *system, const char *cls,
                           const struct evb_run *r, const char *reason)
{
    char why[512];
    evt_quote_safe(why, sizeof(why), reason);
    printf(b->args->json ? "{\"bench\":\"events\",\"system\":\"%s\",\"class\":\"%s\","
                           "\"size\":%u,\"publishers\":%u,\"subscribers\":%u,"
                           "\"skipped\":\"%s\"}\n"
                         : "bench=events system=%s class=%s size=%u publishers=%u "
                           "subscribers=%u skipped=\"%s\"\n",
           system, cls, r->size, r->pub_count, r->sub_count, why);
    fflush(stdout);
}

static void evt_keep(struct evt_bench *b, const char *system, const char *cls, bool half,
                     const struct evb_figures *fig)
{
    if (b->result_count == EVT_RESULTS_MAX) {
        return;
    }
    struct evt_result *res = &b->results[b->result_count++];
    snprintf(res->system, sizeof(res->system), "%s", system);
    snprintf(res->cls, sizeof(res->cls), "%s", cls);
    res->half = half;
    res->verify_us = b->verify_us;
    res->sign_us = b->sign_us;
    res->fig = *fig;
}

/* Does every event of class text cls carry the publisher's signature (PKS, or PKE)? */
static bool evt_signed(const char *cls)
{
    return strstr(cls, ",pks,") != NULL || strstr(cls, ",pke,") != NULL;
}

static const struct evt_result *evt_find(const struct evt_bench *b, const char *system,
                                         const char *cls_prefix, bool half)
{
    for (uint32_t k = 0; k < b->result_count; k++) {
        const struct evt_result *res = &b->results[k];
        if (strcmp(res->system, system) == 0 && res->half == half &&
            strncmp(res->cls, cls_prefix, strlen(cls_prefix)) == 0) {
            return res;
        }
    }
    return NULL;
}

/* One ratio line; a missing side prints value=missing with the reason. */
static void evt_ratio(const struct evt_bench *b, const struct evb_run *r, const char *name,
                      double value, bool have, const char *reason, const char *target,
                      bool met)
{
    char missing[512];
    evt_quote_safe(missing, sizeof(missing), reason);
    if (b->args->json) {
        printf("{\"bench\":\"events-ratio\",\"size\":%u,\"publishers\":%u,\"subscribers\":%u,"
               "\"name\":\"%s\",", r->size, r->pub_count, r->sub_count, name);
        if (have) {
            printf("\"value\":%.3f,\"target\":\"%s\",\"met\":%s}\n", value, target,
                   target[0] == '\0' ? "null" : met ? "true" : "false");
        } else {
            printf("\"value\":null,\"missing\":\"%s\"}\n", missing);
        }
    } else if (have) {
        printf("bench=events-ratio size=%u publishers=%u subscribers=%u name=%s value=%.3f%s%s%s\n",
               r->size, r->pub_count, r->sub_count, name, value,
               target[0] != '\0' ? " target=" : "", target,
               target[0] == '\0' ? "" : met ? " met=yes" : " met=no");
    } else {
        printf("bench=events-ratio size=%u publishers=%u subscribers=%u name=%s value=missing "
               "reason=\"%s\"\n", r->size, r->pub_count, r->sub_count, name, missing);
    }
}

/* The ratios of issue 3 for one (size, publishers, subscribers). */
static void evt_ratios(const struct evt_bench *b, const struct evb_run *r)
{
    const struct evt_result *cft = evt_find(b, "trone", "cft,fifo,si,", false);
    const struct evt_result *mosq = evt_find(b, "mosquitto", "", false);
    const struct evt_result *nats = evt_find(b, "nats", "", false);
    const struct evt_result *total = evt_find(b, "trone", "bft,total,", false);
    const struct evt_result *total_half = evt_find(b, "trone", "bft,total,", true);
    const char *no_cft = "cft,fifo,si not measured";
    const char *no_total = "bft,total not measured (refused by the cluster or not listed)";
    const char *no_mosq = b->missing[0][0] != '\0' ? b->missing[0] : "mosquitto not measured";
    const char *no_nats = b->missing[1][0] != '\0' ? b->missing[1] : "nats not measured";
    double v = cft && mosq ? cft->fig.events_per_s / mosq->fig.events_per_s : 0;
    evt_ratio(b, r, "cft_fifo_si_over_mosquitto", v, cft && mosq, cft ? no_mosq : no_cft, ">=2",
              v >= 2.0);
    v = cft && nats ? cft->fig.events_per_s / nats->fig.events_per_s : 0;
    evt_ratio(b, r, "cft_fifo_si_over_nats", v, cft && nats, cft ? no_nats : no_cft, "", false);
    v = total && mosq ? total->fig.events_per_s / mosq->fig.events_per_s : 0;
    evt_ratio(b, r, "bft_total_over_mosquitto", v, total && mosq, total ? no_mosq : no_total,
              ">=0.5", v >= 0.5);
    v = total_half ? total_half->fig.p50_ms : 0;
    evt_ratio(b, r, "bft_total_p50_ms_at_half_peak", v, total_half != NULL,
              "bft,total not measured at rate half", "<5", v < 5.0);
    /* Who verifies PKS/PKE: each subscriber once per event (cln_sub, on the first copy whose
     * signature verifies, on as many threads as the subscriber has verification threads);
     * replicas do not verify; each event's publisher signs it once. Two bounds: the machine's
     * verifications per second over the subscriber count (the target), and the one
     * that also pays the publishers' signatures on the same cores, cores / (sign + S x
     * verify), since this benchmark runs publishers and subscribers on this machine. */
    for (uint32_t k = 0; k < b->result_count; k++) {
        const struct evt_result *res = &b->results[k];
        if (strcmp(res->system, "trone") != 0 || res->half || !evt_signed(res->cls)) {
            continue;
        }
        double bound = (double)b->cores * 1e6 / res->verify_us / (double)r->sub_count;
        double both = (double)b->cores * 1e6 /
                      (res->sign_us + res->verify_us * (double)r->sub_count);
        char name[96], name_both[128];
        const char *urgency = strstr(res->cls, ",urgency");
        int length = urgency != NULL ? (int)(urgency - res->cls) : (int)strlen(res->cls);
        snprintf(name, sizeof(name), "%.*s_over_ed25519_bound", length, res->cls);
        for (char *p = name; *p != '\0'; p++) {
            *p = *p == ',' ? '_' : *p;
        }
        snprintf(name_both, sizeof(name_both), "%.*s_over_ed25519_sign_verify_bound",
                 (int)(strlen(name) - strlen("_over_ed25519_bound")), name);
        v = res->fig.events_per_s / bound;
        evt_ratio(b, r, name, v, true, "", ">=0.7", v >= 0.7);
        v = res->fig.events_per_s / both;
        evt_ratio(b, r, name_both, v, true, "", "", false);
        printf(b->args->json ? "{\"bench\":\"events-bound\",\"class\":\"%s\",\"cores\":%u,"
                               "\"ed25519_verify_us\":%.2f,\"verifications_per_event\":%u,"
                               "\"bound_per_s\":%.1f,\"ed25519_sign_us\":%.2f,"
                               "\"sign_verify_bound_per_s\":%.1f}\n"
                             : "bench=events-bound class=%s cores=%u ed25519_verify_us=%.2f "
                               "verifications_per_event=%u bound_per_s=%.1f "
                               "ed25519_sign_us=%.2f sign_verify_bound_per_s=%.1f\n",
               res->cls, b->cores, res->verify_us, r->sub_count, bound, res->sign_us, both);
    }
    fflush(stdout);
}

/* ---- The run ------------------------------------------------------------------------------ */

static double evt_ed25519_us(double *sign_us);

static void evt_run_config(const struct evt_args *a, struct evb_run *r, uint32_t size,
                           uint32_t pubs, uint32_t subs, double offered)
{
    memset(r, 0, sizeof(*r));
    r->pub_count = pubs;
    r->sub_count = subs;
    r->size = size;
    r->events_per_pub = a->events > 0 ? (a->events + pubs - 1u) / pubs : 0;
    r->seconds_ns = (uint64_t)(a->seconds * 1e9);
    r->rate_per_pub = offered / (double)pubs;
    r->window = a->window / pubs > 0 ? a->window / pubs : 1u;
}

/* The offered rate of rate entry k: its number, or half the peak found for system/class. */
static double evt_offered(const struct evt_bench *b, uint32_t k, const char *system,
                          const char *cls)
{
    const struct evt_rate *rate = &b->args->rates[k];
    if (!rate->half) {
        return rate->per_s;
    }
    const struct evt_result *peak = evt_find(b, system, cls, false);
    return peak != NULL ? peak->fig.events_per_s / 2.0 : -1.0;
}

static int evt_baselines(struct evt_bench *b, uint32_t size, uint32_t pubs, uint32_t subs)
{
    static const char *names[2] = {"mosquitto", "nats"};
    static const char *classes[2] = {"qos0", "core"};
    for (uint32_t sys = 0; sys < 2; sys++) {
        for (uint32_t k = 0; k < b->args->rate_count; k++) {
            double offered = evt_offered(b, k, names[sys], "");
            struct evb_run *r = calloc(1, sizeof(*r));
            struct evb_figures fig;
            char why[512];
            if (r == NULL) {
                return cmd_error(CMD_FAIL, "bench", "out of memory");
            }
            evt_run_config(b->args, r, size, pubs, subs, offered < 0 ? 0 : offered);
            int rc = offered < 0 ? 1 : 0;
            snprintf(why, sizeof(why), "no peak measured");
            if (rc == 0) {
                rc = sys == 0 ? evb_mosquitto_run(&b->set, r, &fig, why, sizeof(why))
                              : evb_nats_run(&b->set, r, &fig, why, sizeof(why));
            }
            if (rc < 0) {
                free(r);
                b->set.keep_dir = true;
                return cmd_error(CMD_FAIL, "bench", "%s size=%u publishers=%u subscribers=%u: "
                                 "%s (logs kept in %s)", names[sys], size, pubs, subs, why,
                                 b->set.dir);
            }
            if (rc == 0) {
                evt_print(b, names[sys], classes[sys], 1, r, offered, &fig);
                evt_keep(b, names[sys], classes[sys], b->args->rates[k].half, &fig);
            } else {
                evb_format(b->missing[sys], sizeof(b->missing[sys]), "%s", why);
                evt_print_skip(b, names[sys], classes[sys], r, why);
                free(r);
                break;
            }
            free(r);
        }
    }
    return CMD_OK;
}

/* Every rate of one class on one fresh cluster. */
static int evt_class(struct evt_bench *b, const char *cls, uint32_t size, uint32_t pubs,
                     uint32_t subs, uint32_t serial)
{
    struct evt_cluster *x = calloc(1, sizeof(*x));
    struct evb_run *r = calloc(1, sizeof(*r));
    if (x == NULL || r == NULL) {
        free(x);
        free(r);
        return cmd_error(CMD_FAIL, "bench", "out of memory");
    }
    x->pub_count = pubs;
    x->sub_count = subs;
    if (evt_signed(cls)) {
        /* the bound of this class, as close to it as we can */
        b->verify_us = evt_ed25519_us(&b->sign_us);
    }
    char name[64];
    snprintf(name, sizeof(name), "events-%u", serial);
    char why[512] = "";
    int rc = evt_cluster_start(x, &b->set, name, b->args->replica_count);
    if (rc != 0) {
        snprintf(why, sizeof(why), "%s", x->errmsg);
        rc = -1;
    }
    for (uint32_t k = 0; rc == 0 && k < b->args->rate_count; k++) {
        double offered = evt_offered(b, k, "trone", cls);
        char tag[32];
        snprintf(tag, sizeof(tag), "bench.r%u", k);
        evt_run_config(b->args, r, size, pubs, subs, offered < 0 ? 0 : offered);
        if (offered < 0) {
            evt_print_skip(b, "trone", cls, r, "no peak measured for rate half");
            continue;
        }
        if (evt_channel_create(x, tag, cls) != 0) {
            snprintf(why, sizeof(why), "%s", x->errmsg);
            rc = -1;
            break;
        }
        struct evb_figures fig;
        rc = evt_trone_run(x, tag, r, &fig, why, sizeof(why));
        if (rc == 0) {
            evt_print(b, "trone", cls, b->args->replica_count, r, offered, &fig);
            evt_keep(b, "trone", cls, b->args->rates[k].half, &fig);
        } else if (rc > 0) {
            evt_print_skip(b, "trone", cls, r, why);
        }
    }
    int stop = evt_cluster_stop(x);
    if (rc >= 0 && stop != 0) {
        snprintf(why, sizeof(why), "%s", x->errmsg);
        rc = -1;
    }
    free(x);
    free(r);
    if (rc < 0) {
        b->set.keep_dir = true;
        return cmd_error(CMD_FAIL, "bench", "class %s size=%u publishers=%u subscribers=%u: %s "
                         "(logs kept in %s)", cls, size, pubs, subs, why, b->set.dir);
    }
    return CMD_OK;
}

/* Ed25519 verifications of 100-byte messages on one core, now, on this machine: the time of
 * one, in µs; *sign_us gets the time of one signature of the same message. */
static double evt_ed25519_us(double *sign_us)
{
    enum { ROUNDS = 2000 };
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t msg[100], sig[crypto_sign_BYTES];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof(msg));
    uint64_t s0 = evb_now_ns();
    for (int i = 0; i < ROUNDS / 2; i++) {
        msg[0] = (uint8_t)i;
        crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
    }
    uint64_t s1 = evb_now_ns();
    *sign_us = (double)(s1 - s0) / 1e3 / (ROUNDS / 2);
    sodium_memzero(sk, sizeof(sk));
    uint64_t t0 = evb_now_ns();
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        bad += crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0;
    }
    uint64_t t1 = evb_now_ns();
    TRONE_ASSERT(bad == 0);
    return (double)(t1 - t0) / 1e3 / ROUNDS;
}

static int evt_body(void *ctx)
{
    struct evt_bench *b = ctx;
    const struct evt_args *a = b->args;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    b->cores = cores > 0 ? (uint32_t)cores : 1u;
    b->verify_us = evt_ed25519_us(&b->sign_us);
    printf(a->json ? "{\"bench\":\"events-machine\",\"cores\":%u,\"ed25519_verify_us\":%.2f,"
                     "\"load1\":%.2f,\"ed25519_sign_us\":%.2f}\n"
                   : "bench=events-machine cores=%u ed25519_verify_us=%.2f load1=%.2f "
                     "ed25519_sign_us=%.2f\n",
           b->cores, b->verify_us, evt_load1(), b->sign_us);
    uint32_t serial = 0;
    for (uint32_t si = 0; si < a->size_count; si++) {
        for (uint32_t pi = 0; pi < a->pub_count; pi++) {
            for (uint32_t ci = 0; ci < a->sub_count; ci++) {
                b->result_count = 0;
                memset(b->missing, 0, sizeof(b->missing));
                if (!a->baselines) {
                    snprintf(b->missing[0], sizeof(b->missing[0]), "--no-baselines");
                    snprintf(b->missing[1], sizeof(b->missing[1]), "--no-baselines");
                } else if (evt_baselines(b, a->sizes[si], a->pubs[pi], a->subs[ci]) != CMD_OK) {
                    return CMD_FAIL;
                }
                for (uint32_t k = 0; k < a->class_count; k++) {
                    if (evt_class(b, a->classes[k], a->sizes[si], a->pubs[pi], a->subs[ci],
                                  serial++) != CMD_OK) {
                        return CMD_FAIL;
                    }
                }
                struct evb_run r;
                evt_run_config(a, &r, a->sizes[si], a->pubs[pi], a->subs[ci], 0);
                evt_ratios(b, &r);
            }
        }
    }
    return CMD_OK;
}

int cmd_bench_events(int argc, char **argv)
{
    struct evt_args a;
    int rc = evt_parse(&a, argc, argv);
    if (rc != CMD_OK) {
        return rc < 0 ? CMD_OK : rc;
    }
    if (sodium_init() < 0) {
        return cmd_error(CMD_FAIL, "bench", "libsodium failed to initialise");
    }
    struct evt_bench *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return cmd_error(CMD_FAIL, "bench", "out of memory");
    }
    b->args = &a;
    char errmsg[512];
    if (spawn_set_init(&b->set, "trone-bench", errmsg, sizeof(errmsg)) != 0) {
        free(b);
        return cmd_error(CMD_FAIL, "bench", "%s", errmsg);
    }
    rc = spawn_guard_run(&b->set, "bench", evt_body, b);
    free(b);
    return rc;
}

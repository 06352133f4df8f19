/* cmd_status.c: `trone status`: asks every replica for its view, progress, control table
 * digest and peer sessions (a runtime status query, rt_client_status) and prints a table or
 * JSON. Exit 0 only when every replica answered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "core/key.h"
#include "rt/rt_client.h"
#include "rt/rt_ctl.h"

#define CMD_STATUS_TIMEOUT_MS 3000u

static void cmd_status_usage(FILE *out)
{
    fprintf(out,
            "usage: trone status [--json] [--timeout SECONDS] [--cluster FILE] [--key FILE]\n"
            "\n"
            "Asks every replica for its status: view, leader, whether a view change is in\n"
            "progress, last executed sequence number, last stable checkpoint, control table\n"
            "digest and the replicas it has sessions with in both directions. Replicas that do\n"
            "not answer are marked unreachable.\n"
            "\n"
            "options:\n"
            "  --json               a JSON array, one object per replica; a replica that did not\n"
            "                       answer is {\"id\": I, \"reachable\": false, ...}\n"
            "                       without \"digest\"; durable_events: durable events in its\n"
            "                       store, durable_fetched / durable_served: events it fetched\n"
            "                       from / sent to its peers since it started (catch-up)\n"
            "  --timeout SECONDS    how long to wait for answers (default %u)\n"
            "  --cluster FILE       cluster file (default $TRONE_CLUSTER)\n"
            "  --key FILE           your identity (default $TRONE_KEY, then the admin key)\n"
            "\n"
            "exit status: 0 every replica answered, 1 some did not, 2 usage error\n",
            CMD_STATUS_TIMEOUT_MS / 1000u);
}

/* "1,2,3" or "-". */
static void cmd_status_peers(uint64_t peers, uint32_t n, char *out, size_t out_size)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t j = 0; j < n && used < out_size; j++) {
        if ((peers >> j) & 1u) {
            int w = snprintf(out + used, out_size - used, "%s%u", used > 0 ? "," : "", j);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    if (used == 0) {
        snprintf(out, out_size, "-");
    }
}

static void cmd_status_json_string(const char *s)
{
    putchar('"');
    for (size_t i = 0; s[i] != '\0' && i < 4096; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

static void cmd_status_print_json(const struct cfg_cluster *cluster,
                                  const struct rt_client_status_report *report)
{
    printf("[");
    for (uint32_t j = 0; j < report->replica_count; j++) {
        const struct rt_client_replica_status *r = &report->replicas[j];
        char address[CFG_HOST_MAX + 8];
        snprintf(address, sizeof(address), "%s:%u", cluster->replicas[j].host,
                 (unsigned)cluster->replicas[j].port);
        printf("%s\n  {\"id\": %u, \"address\": ", j > 0 ? "," : "", j);
        cmd_status_json_string(address);
        printf(", \"reachable\": %s", r->answered ? "true" : "false");
        if (!r->answered) {
            printf(", \"error\": ");
            cmd_status_json_string(r->error);
            printf("}");
            continue;
        }
        const struct rt_status *s = &r->status;
        char digest[2 * TRONE_HASH_LEN + 1];
        key_hex_encode(digest, s->digest, TRONE_HASH_LEN);
        printf(", \"view\": %llu, \"leader\": %u, \"view_changing\": %s, \"executed\": %llu, "
               "\"checkpoint\": %llu, \"digest\": \"%s\", \"peers\": [",
               (unsigned long long)s->view, s->leader, s->view_changing ? "true" : "false",
               (unsigned long long)s->executed, (unsigned long long)s->checkpoint, digest);
        bool first = true;
        for (uint32_t k = 0; k < report->replica_count; k++) {
            if ((s->peers >> k) & 1u) {
                printf("%s%u", first ? "" : ", ", k);
                first = false;
            }
        }
        printf("], \"durable_events\": %llu, \"durable_fetched\": %llu, \"durable_served\": %llu}",
               (unsigned long long)s->durable_events, (unsigned long long)s->durable_fetched,
               (unsigned long long)s->durable_served);
    }
    printf("%s]\n", report->replica_count > 0 ? "\n" : "");
}

static void cmd_status_print_table(const struct cfg_cluster *cluster,
                                   const struct rt_client_status_report *report)
{
    printf("%-3s %-21s %-6s %-6s %-8s %-9s %-10s %-8s %s\n", "ID", "ADDRESS", "VIEW", "LEADER",
           "STATE", "EXECUTED", "CHECKPOINT", "DIGEST", "PEERS");
    for (uint32_t j = 0; j < report->replica_count; j++) {
        const struct rt_client_replica_status *r = &report->replicas[j];
        char address[CFG_HOST_MAX + 8];
        snprintf(address, sizeof(address), "%s:%u", cluster->replicas[j].host,
                 (unsigned)cluster->replicas[j].port);
        if (!r->answered) {
            printf("%-3u %-21s unreachable: %s\n", j, address, r->error);
            continue;
        }
        const struct rt_status *s = &r->status;
        char digest[2 * 4 + 1];
        key_hex_encode(digest, s->digest, 4);
        char peers[64];
        cmd_status_peers(s->peers, report->replica_count, peers, sizeof(peers));
        printf("%-3u %-21s %-6llu %-6u %-8s %-9llu %-10llu %-8s %s\n", j, address,
               (unsigned long long)s->view, s->leader, s->view_changing ? "changing" : "normal",
               (unsigned long long)s->executed, (unsigned long long)s->checkpoint, digest, peers);
    }
}

/* Parses argv; CMD_OK, CMD_USAGE, or -1 when --help was printed. */
static int cmd_status_parse(struct cmd_common *common, uint64_t *timeout_ms, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cmd_status_usage(stdout);
            return -1;
        }
        if (strcmp(argv[i], "--timeout") == 0) {
            if (i + 1 >= argc || rt_ctl_seconds_parse(argv[i + 1], timeout_ms) != 0) {
                return cmd_error(CMD_USAGE, "status",
                                 "--timeout needs a number of seconds "
                                 "greater than 0");
            }
            i++;
            continue;
        }
        int rc = cmd_common_option(common, argc, argv, &i);
        if (rc < 0) {
            return CMD_USAGE;
        }
        if (rc == 0) {
            return cmd_error(CMD_USAGE, "status",
                             "unknown argument '%s' (see trone status "
                             "--help)",
                             argv[i]);
        }
    }
    return CMD_OK;
}

int cmd_status(int argc, char **argv)
{
    struct cmd_common common;
    memset(&common, 0, sizeof(common));
    uint64_t timeout_ms = CMD_STATUS_TIMEOUT_MS;
    int rc = cmd_status_parse(&common, &timeout_ms, argc, argv);
    if (rc != CMD_OK) {
        return rc < 0 ? CMD_OK : rc;
    }
    struct cfg_cluster *cluster = calloc(1, sizeof(*cluster));
    struct key_identity key;
    memset(&key, 0, sizeof(key));
    struct rt_client_status_report *report = calloc(1, sizeof(*report));
    if (cluster == NULL || report == NULL) {
        free(cluster);
        free(report);
        return cmd_error(CMD_FAIL, "status", "out of memory");
    }
    rc = cmd_common_load(&common, cluster, &key);
    struct rt_client *client = NULL;
    if (rc == CMD_OK) {
        client = rt_client_create(cluster, &key);
        if (client == NULL) {
            rc = cmd_error(CMD_FAIL, "status", "cannot start the client (out of memory?)");
        }
    }
    if (rc == CMD_OK) {
        uint32_t answered = rt_client_status(client, timeout_ms, report);
        if (common.json) {
            cmd_status_print_json(cluster, report);
        } else {
            cmd_status_print_table(cluster, report);
        }
        if (answered < report->replica_count) {
            rc = cmd_error(CMD_FAIL, "status", "%u of %u replicas answered", answered,
                           report->replica_count);
        }
    }
    rt_client_destroy(client);
    key_identity_wipe(&key);
    free(cluster);
    free(report);
    return rc;
}

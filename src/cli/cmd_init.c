/* cmd_init.c: `trone init DIR --replicas N ...`: makes a cluster: DIR/cluster.conf, one key
 * per replica and the admin key in DIR/keys (0700, files 0600). Probes ports by binding. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "core/assert.h"

#define INIT_PATH_MAX 4096
#define INIT_PORT_LOW 20000u
#define INIT_PORT_HIGH 50000u
#define INIT_PROBE_TRIES 100

struct init_args {
    const char *dir;
    uint32_t replica_count;
    int bft;
    uint32_t fault_count;
    bool fault_count_set;
    const char *addresses;
    uint32_t base_port; /* 0: probe for free ports */
    bool force;
    bool json;
};

static void init_usage(FILE *out)
{
    fprintf(out,
            "usage: trone init DIR --replicas N [--fault-model bft|cft] [--f F]\n"
            "                  [--addresses HOST:PORT,...] [--base-port P] [--force] [--json]\n"
            "\n"
            "Makes a cluster in DIR: DIR/cluster.conf names every replica's address and public\n"
            "key; DIR/keys holds replica<i>.key for each replica and admin.key (mode 0600).\n"
            "\n"
            "  --replicas N        number of replicas, 1 to %u\n"
            "  --fault-model M     bft (default: n >= 3f+1) or cft (crashes only: n >= 2f+1)\n"
            "  --f F               faults to tolerate (default: the most the model allows)\n"
            "  --addresses LIST    one HOST:PORT per replica, comma-separated\n"
            "  --base-port P       127.0.0.1 with ports P..P+N-1 (default: N consecutive ports\n"
            "                      that are free now, from a random base in %u..%u)\n"
            "  --force             replace an existing cluster in DIR\n"
            "  --json              print what was written as JSON\n",
            TRONE_REPLICAS_MAX, INIT_PORT_LOW, INIT_PORT_HIGH);
}

/* Strict decimal in [min, max]. */
static int init_parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *value)
{
    if (text == NULL || text[0] < '0' || text[0] > '9' || strlen(text) > 10) {
        return TRONE_EINVAL;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return TRONE_EINVAL;
    }
    *value = (uint32_t)v;
    return 0;
}

/* Takes the value of option argv[*i]; NULL (after a usage error) when there is none. */
static const char *init_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
        cmd_error(CMD_USAGE, "init", "%s needs a value (see trone init --help)", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

/* One option with a value; CMD_OK or CMD_USAGE (already reported). */
static int init_parse_option(struct init_args *a, int argc, char **argv, int *i)
{
    const char *option = argv[*i];
    const char *value = init_value(argc, argv, i);
    if (value == NULL) {
        return CMD_USAGE;
    }
    if (strcmp(option, "--replicas") == 0) {
        if (init_parse_u32(value, 1, TRONE_REPLICAS_MAX, &a->replica_count) != 0) {
            return cmd_error(CMD_USAGE, "init",
                             "--replicas must be a number from 1 to %u, "
                             "not '%s'",
                             TRONE_REPLICAS_MAX, value);
        }
    } else if (strcmp(option, "--fault-model") == 0) {
        if (strcmp(value, "bft") != 0 && strcmp(value, "cft") != 0) {
            return cmd_error(CMD_USAGE, "init", "--fault-model must be bft or cft, not '%s'",
                             value);
        }
        a->bft = strcmp(value, "bft") == 0;
    } else if (strcmp(option, "--f") == 0) {
        if (init_parse_u32(value, 0, TRONE_REPLICAS_MAX, &a->fault_count) != 0) {
            return cmd_error(CMD_USAGE, "init", "--f must be a small number, not '%s'", value);
        }
        a->fault_count_set = true;
    } else if (strcmp(option, "--addresses") == 0) {
        a->addresses = value;
    } else {
        TRONE_ASSERT(strcmp(option, "--base-port") == 0);
        if (init_parse_u32(value, 1, 65535, &a->base_port) != 0) {
            return cmd_error(CMD_USAGE, "init", "--base-port must be 1 to 65535, not '%s'", value);
        }
    }
    return CMD_OK;
}

/* CMD_OK, CMD_USAGE (reported), or -1 after printing --help. */
static int init_parse_args(int argc, char **argv, struct init_args *a)
{
    static const char *const with_value[] = {"--replicas", "--fault-model", "--f", "--addresses",
                                             "--base-port"};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool takes_value = false;
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
            takes_value = takes_value || strcmp(arg, with_value[k]) == 0;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            init_usage(stdout);
            return -1;
        } else if (takes_value) {
            if (init_parse_option(a, argc, argv, &i) != CMD_OK) {
                return CMD_USAGE;
            }
        } else if (strcmp(arg, "--force") == 0) {
            a->force = true;
        } else if (strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if (arg[0] == '-') {
            return cmd_error(CMD_USAGE, "init", "unknown option '%s' (see trone init --help)", arg);
        } else if (a->dir == NULL) {
            a->dir = arg;
        } else {
            return cmd_error(CMD_USAGE, "init", "unexpected argument '%s'", arg);
        }
    }
    if (a->dir == NULL || a->dir[0] == '\0') {
        return cmd_error(CMD_USAGE, "init", "needs a directory (see trone init --help)");
    }
    if (a->replica_count == 0) {
        return cmd_error(CMD_USAGE, "init", "needs --replicas N (see trone init --help)");
    }
    if (a->addresses != NULL && a->base_port != 0) {
        return cmd_error(CMD_USAGE, "init", "give --addresses or --base-port, not both");
    }
    return CMD_OK;
}

/* Fills in the default f, or checks an explicit one against the quorum rule. */
static int init_check_faults(struct init_args *a)
{
    uint32_t n = a->replica_count;
    if (!a->fault_count_set) {
        a->fault_count = a->bft ? (n - 1) / 3 : (n - 1) / 2;
    }
    char reason[200];
    if (cfg_check_quorum(a->bft, n, a->fault_count, reason, sizeof(reason)) != 0) {
        return cmd_error(CMD_USAGE, "init", "%s", reason);
    }
    return CMD_OK;
}

/* --addresses: exactly one distinct HOST:PORT per replica. */
static int init_addresses_list(const struct init_args *a, struct cfg_cluster *c)
{
    const char *cursor = a->addresses;
    uint32_t count = 0;
    /* Each round consumes one comma-separated item, so the loop ends within n+1 rounds. */
    for (uint32_t round = 0; round <= TRONE_REPLICAS_MAX; round++) {
        const char *comma = strchr(cursor, ',');
        size_t length = comma != NULL ? (size_t)(comma - cursor) : strlen(cursor);
        char item[CFG_HOST_MAX + 16];
        if (count >= a->replica_count) {
            return cmd_error(CMD_USAGE, "init", "--addresses lists more than %u addresses",
                             a->replica_count);
        }
        snprintf(item, sizeof(item), "%.*s", (int)(length < sizeof(item) ? length : 0), cursor);
        struct cfg_replica *r = &c->replicas[count];
        if (length >= sizeof(item) ||
            cfg_address_parse(item, r->host, sizeof(r->host), &r->port) != 0) {
            return cmd_error(CMD_USAGE, "init",
                             "bad address '%.*s' in --addresses "
                             "(expected HOST:PORT or [IPV6]:PORT)",
                             (int)(length % 300), cursor);
        }
        for (uint32_t j = 0; j < count; j++) {
            if (c->replicas[j].port == r->port && strcmp(c->replicas[j].host, r->host) == 0) {
                return cmd_error(CMD_USAGE, "init", "address '%s' appears twice in --addresses",
                                 item);
            }
        }
        count++;
        if (comma == NULL) {
            break;
        }
        cursor = comma + 1;
    }
    if (count != a->replica_count) {
        return cmd_error(CMD_USAGE, "init", "--addresses lists %u addresses for %u replicas", count,
                         a->replica_count);
    }
    return CMD_OK;
}

/* True if nothing listens on or holds 127.0.0.1:port right now. */
static bool init_port_free(uint32_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in address;
    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool free_now = bind(fd, (const struct sockaddr *)&address, sizeof(address)) == 0;
    close(fd);
    return free_now;
}

/* 127.0.0.1 with n consecutive ports: from --base-port, else free ones from a random base,
 * so that test clusters made in parallel do not collide. */
static int init_addresses_local(const struct init_args *a, struct cfg_cluster *c)
{
    uint32_t n = a->replica_count;
    uint32_t base = a->base_port;
    if (base != 0 && base + n - 1 > 65535) {
        return cmd_error(CMD_USAGE, "init", "--base-port %u leaves no room for %u ports", base, n);
    }
    for (int attempt = 0; base == 0 && attempt < INIT_PROBE_TRIES; attempt++) {
        uint32_t candidate = INIT_PORT_LOW + randombytes_uniform(INIT_PORT_HIGH - INIT_PORT_LOW);
        uint32_t free_count = 0;
        while (free_count < n && init_port_free(candidate + free_count)) {
            free_count++;
        }
        if (free_count == n) {
            base = candidate;
        }
    }
    if (base == 0) {
        return cmd_error(CMD_FAIL, "init",
                         "found no %u consecutive free ports on 127.0.0.1 "
                         "(pass --base-port or --addresses)",
                         n);
    }
    for (uint32_t i = 0; i < n; i++) {
        snprintf(c->replicas[i].host, sizeof(c->replicas[i].host), "127.0.0.1");
        c->replicas[i].port = (uint16_t)(base + i);
    }
    return CMD_OK;
}

static int init_path(char *out, const char *dir, const char *name)
{
    int length = snprintf(out, INIT_PATH_MAX, "%s/%s", dir, name);
    return length < 0 || length >= INIT_PATH_MAX ? TRONE_EINVAL : 0;
}

static int init_mkdir(const char *path, mode_t mode)
{
    struct stat st;
    if (mkdir(path, mode) == 0) {
        return chmod(path, mode) == 0 ? 0 : TRONE_EIO;
    }
    if (errno != EEXIST || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return TRONE_EIO;
    }
    return chmod(path, mode) == 0 ? 0 : TRONE_EIO;
}

/* The name of cluster file k inside DIR: keys/replica<k>.key, then admin.key, cluster.conf. */
static int init_cluster_file(char *path, const char *dir, uint32_t k)
{
    char name[32];
    if (k < TRONE_REPLICAS_MAX) {
        snprintf(name, sizeof(name), "keys/replica%u.key", k);
    } else {
        snprintf(name, sizeof(name), "%s",
                 k == TRONE_REPLICAS_MAX ? "keys/admin.key" : "cluster.conf");
    }
    return init_path(path, dir, name);
}

/* Makes DIR and DIR/keys; refuses an existing cluster unless --force, then clears its files:
 * key files are never overwritten in place. */
static int init_prepare_dir(const struct init_args *a)
{
    char path[INIT_PATH_MAX];
    if (init_path(path, a->dir, "keys/replica00.key") != 0) {
        return cmd_error(CMD_USAGE, "init", "directory name too long");
    }
    if (init_mkdir(a->dir, 0755) != 0) {
        return cmd_error(CMD_FAIL, "init", "cannot create directory %s: %s", a->dir,
                         strerror(errno));
    }
    /* From cluster.conf down, so a refusal names the cluster file first. */
    for (uint32_t round = 0; round <= TRONE_REPLICAS_MAX + 1; round++) {
        (void)init_cluster_file(path, a->dir, TRONE_REPLICAS_MAX + 1 - round);
        if (!a->force && access(path, F_OK) == 0) {
            return cmd_error(CMD_FAIL, "init",
                             "%s already exists: %s holds a cluster "
                             "(pass --force to replace it)",
                             path, a->dir);
        }
        if (a->force && unlink(path) != 0 && errno != ENOENT) {
            return cmd_error(CMD_FAIL, "init", "cannot remove %s: %s", path, strerror(errno));
        }
    }
    (void)init_path(path, a->dir, "keys");
    if (init_mkdir(path, 0700) != 0) {
        return cmd_error(CMD_FAIL, "init", "cannot create directory %s: %s", path, strerror(errno));
    }
    return CMD_OK;
}

/* Generates and saves identity k (a replica, or the admin for k == TRONE_REPLICAS_MAX). */
static int init_write_key(const struct init_args *a, uint32_t k, uint8_t public_key[TRONE_KEY_LEN])
{
    char name[32];
    char path[INIT_PATH_MAX];
    if (k < TRONE_REPLICAS_MAX) {
        snprintf(name, sizeof(name), "replica%u", k);
    } else {
        snprintf(name, sizeof(name), "admin");
    }
    (void)init_cluster_file(path, a->dir, k);
    struct key_identity id;
    int rc = key_identity_generate(&id, name);
    if (rc == 0) {
        rc = key_identity_save(&id, path);
    }
    memcpy(public_key, id.public_key, TRONE_KEY_LEN);
    key_identity_wipe(&id);
    if (rc != 0) {
        return cmd_error(CMD_FAIL, "init", "cannot write %s: %s", path, trone_strerror(rc));
    }
    return CMD_OK;
}

static void init_json_string(const char *s)
{
    putchar('"');
    for (size_t i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void init_print_json(const struct init_args *a, const struct cfg_cluster *c)
{
    char path[INIT_PATH_MAX];
    char hex[2 * TRONE_KEY_LEN + 1];
    (void)init_cluster_file(path, a->dir, TRONE_REPLICAS_MAX + 1);
    printf("{\"cluster\":");
    init_json_string(path);
    printf(",\"fault_model\":\"%s\",\"n\":%u,\"f\":%u,\"admin\":{\"key_file\":",
           c->bft ? "bft" : "cft", c->replica_count, c->fault_count);
    (void)init_cluster_file(path, a->dir, TRONE_REPLICAS_MAX);
    init_json_string(path);
    key_hex_encode(hex, c->admin_key, TRONE_KEY_LEN);
    printf(",\"public\":\"%s\"},\"replicas\":[", hex);
    for (uint32_t i = 0; i < c->replica_count; i++) {
        const struct cfg_replica *r = &c->replicas[i];
        bool v6 = strchr(r->host, ':') != NULL;
        (void)init_cluster_file(path, a->dir, i);
        key_hex_encode(hex, r->public_key, TRONE_KEY_LEN);
        printf("%s{\"id\":%u,\"address\":\"%s%s%s:%u\",\"key_file\":", i == 0 ? "" : ",", i,
               v6 ? "[" : "", r->host, v6 ? "]" : "", (unsigned)r->port);
        init_json_string(path);
        printf(",\"public\":\"%s\"}", hex);
    }
    printf("]}\n");
}

static void init_print_text(const struct init_args *a, const struct cfg_cluster *c)
{
    char path[INIT_PATH_MAX];
    (void)init_cluster_file(path, a->dir, TRONE_REPLICAS_MAX + 1);
    printf("wrote %s: %s, %u replica%s, tolerates f=%u %s\n", path, c->bft ? "BFT" : "CFT",
           c->replica_count, c->replica_count == 1 ? "" : "s", c->fault_count,
           c->bft ? "Byzantine replicas" : "crashed replicas");
    for (uint32_t i = 0; i < c->replica_count; i++) {
        const struct cfg_replica *r = &c->replicas[i];
        bool v6 = strchr(r->host, ':') != NULL;
        (void)init_cluster_file(path, a->dir, i);
        printf("  replica %-2u %s%s%s:%-5u  %s\n", i, v6 ? "[" : "", r->host, v6 ? "]" : "",
               (unsigned)r->port, path);
    }
    (void)init_cluster_file(path, a->dir, TRONE_REPLICAS_MAX);
    printf("  admin                       %s\n", path);
    (void)init_cluster_file(path, a->dir, TRONE_REPLICAS_MAX + 1);
    printf("next: export TRONE_CLUSTER=%s; then run trone replica --id I for I in 0..%u\n", path,
           c->replica_count - 1);
}

int cmd_init(int argc, char **argv)
{
    struct init_args a = {.bft = 1};
    int rc = init_parse_args(argc, argv, &a);
    if (rc != CMD_OK) {
        return rc < 0 ? CMD_OK : rc;
    }
    if (init_check_faults(&a) != CMD_OK) {
        return CMD_USAGE;
    }
    if (sodium_init() < 0) {
        return cmd_error(CMD_FAIL, "init", "libsodium failed to initialise");
    }
    struct cfg_cluster *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return cmd_error(CMD_FAIL, "init", "out of memory");
    }
    c->bft = a.bft;
    c->fault_count = a.fault_count;
    c->replica_count = a.replica_count;
    rc = a.addresses != NULL ? init_addresses_list(&a, c) : init_addresses_local(&a, c);
    if (rc == CMD_OK) {
        rc = init_prepare_dir(&a);
    }
    for (uint32_t k = 0; rc == CMD_OK && k < a.replica_count; k++) {
        rc = init_write_key(&a, k, c->replicas[k].public_key);
    }
    if (rc == CMD_OK) {
        rc = init_write_key(&a, TRONE_REPLICAS_MAX, c->admin_key);
    }
    char path[INIT_PATH_MAX];
    (void)init_cluster_file(path, a.dir, TRONE_REPLICAS_MAX + 1);
    if (rc == CMD_OK && cfg_cluster_save(c, path) != 0) {
        rc = cmd_error(CMD_FAIL, "init", "cannot write %s: %s", path, strerror(errno));
    }
    /* Read back what was written: the file every replica will parse must parse. */
    struct cfg_cluster *check = calloc(1, sizeof(*check));
    char reason[512];
    if (rc == CMD_OK &&
        (check == NULL || cfg_cluster_load(check, path, reason, sizeof(reason)) != 0)) {
        rc = cmd_error(CMD_FAIL, "init", "wrote an unreadable cluster file: %s",
                       check == NULL ? "out of memory" : reason);
    }
    if (rc == CMD_OK) {
        TRONE_ASSERT(memcmp(check, c, sizeof(*c)) == 0);
        if (a.json) {
            init_print_json(&a, c);
        } else {
            init_print_text(&a, c);
        }
    }
    free(check);
    free(c);
    return rc;
}

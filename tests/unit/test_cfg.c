/* test_cfg.c: the cluster file (src/core/cfg.c): a good file, each kind of bad file, the
 * quorum rules and address parsing. Uses real files in a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/cfg.h"
#include "core/key.h"

/* ---- Fixture: a temporary directory and the text of a good 4-replica BFT file. ---- */

#define TEXT_MAX 8192

struct fixture {
    char dir[64];
    char path[128];
    char good[TEXT_MAX];
    uint8_t keys[5][TRONE_KEY_LEN]; /* replicas 0..3, then the admin */
};

static void key_line(char *out, const uint8_t key[TRONE_KEY_LEN])
{
    key_hex_encode(out, key, TRONE_KEY_LEN);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/trone-test-cfg.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/cluster.conf", f->dir);
    char hex[5][65];
    for (int i = 0; i < 5; i++) {
        struct key_identity id;
        assert_int_equal(key_identity_generate(&id, "k"), 0);
        memcpy(f->keys[i], id.public_key, TRONE_KEY_LEN);
        key_identity_wipe(&id);
        key_line(hex[i], f->keys[i]);
    }
    snprintf(f->good, sizeof(f->good),
             "; a comment\n[cluster]\nfault_model = bft ; inline comment\nf = 1\nadmin = %s\n"
             "\n[replica 0]\naddress = 127.0.0.1:7400\nkey = %s\n"
             "\n[replica 1]\naddress = 127.0.0.1:7401\nkey = %s\n"
             "\n[replica 2]\naddress = localhost:7402\nkey = %s\n"
             "\n[replica 3]\naddress = [::1]:7403\nkey = %s\n",
             hex[4], hex[0], hex[1], hex[2], hex[3]);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char temp[160];
    snprintf(temp, sizeof(temp), "%s.tmp", f->path);
    unlink(temp);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

static void write_text(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    assert_int_equal(fclose(file), 0);
}

/* The good text with the first occurrence of from replaced by to. */
static void write_variant(struct fixture *f, const char *from, const char *to)
{
    char text[TEXT_MAX];
    const char *at = strstr(f->good, from);
    if (at == NULL) {
        fail_msg("'%s' is not in the good file", from);
    }
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - f->good), f->good, to, at + strlen(from));
    write_text(f->path, text);
}

/* Changes the good text itself, so a later variant combines two changes. */
static void edit_good(struct fixture *f, const char *from, const char *to)
{
    char text[TEXT_MAX];
    const char *at = strstr(f->good, from);
    assert_non_null(at);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - f->good), f->good, to, at + strlen(from));
    memcpy(f->good, text, sizeof(text));
}

/* Loading fails with TRONE_ECONFIG and a one-line reason naming the file and fragment. */
static void expect_error(struct fixture *f, const char *fragment)
{
    struct cfg_cluster cluster;
    struct cfg_cluster *c = &cluster;
    char reason[512];
    assert_int_equal(cfg_cluster_load(c, f->path, reason, sizeof(reason)), TRONE_ECONFIG);
    if (strstr(reason, fragment) == NULL) {
        fail_msg("reason '%s' lacks '%s'", reason, fragment);
    }
    assert_true(strncmp(reason, f->path, strlen(f->path)) == 0);
    assert_null(strchr(reason, '\n'));
    assert_int_equal(c->replica_count, 0);
}

/* ---- Scenarios ---- */

/* A good file loads with every field, and save then load gives the same cluster. */
static void test_good_file(void **state)
{
    struct fixture *f = *state;
    struct cfg_cluster *c = calloc(2, sizeof(*c));
    assert_non_null(c);
    char reason[512];
    write_text(f->path, f->good);
    assert_int_equal(cfg_cluster_load(&c[0], f->path, reason, sizeof(reason)), 0);
    assert_int_equal(c[0].bft, 1);
    assert_int_equal(c[0].fault_count, 1);
    assert_int_equal(c[0].replica_count, 4);
    assert_memory_equal(c[0].admin_key, f->keys[4], TRONE_KEY_LEN);
    assert_string_equal(c[0].replicas[0].host, "127.0.0.1");
    assert_int_equal(c[0].replicas[1].port, 7401);
    assert_string_equal(c[0].replicas[2].host, "localhost");
    assert_string_equal(c[0].replicas[3].host, "::1");
    assert_int_equal(c[0].replicas[3].port, 7403);
    for (int i = 0; i < 4; i++) {
        assert_memory_equal(c[0].replicas[i].public_key, f->keys[i], TRONE_KEY_LEN);
    }
    assert_int_equal(cfg_cluster_save(&c[0], f->path), 0);
    assert_int_equal(cfg_cluster_load(&c[1], f->path, reason, sizeof(reason)), 0);
    assert_memory_equal(&c[0], &c[1], sizeof(c[0]));
    free(c);
}

/* Unknown sections and keys, and keys outside sections, are refused with their line. */
static void test_unknown_sections_and_keys(void **state)
{
    struct fixture *f = *state;
    write_variant(f, "[replica 2]", "[replicas 2]");
    expect_error(f, ":15: unknown section [replicas 2]");
    write_variant(f, "f = 1\n", "f = 1\ncolor = blue\n");
    expect_error(f, ":5: unknown key 'color' in [cluster]");
    write_variant(f, "address = 127.0.0.1:7401\n", "address = 127.0.0.1:7401\nport = 1\n");
    expect_error(f, ":13: unknown key 'port' in [replica 1]");
    write_variant(f, "; a comment\n", "stray = 1\n");
    expect_error(f, ":1: 'stray' is outside any section");
    write_variant(f, "f = 1\n", "f 1\n");
    expect_error(f, ":4: syntax error");
}

/* Replicas must be numbered 0..n-1, each once, each complete and distinct. */
static void test_bad_replica_sets(void **state)
{
    struct fixture *f = *state;
    write_variant(f, "[replica 2]", "[replica 1]");
    expect_error(f, ":15: duplicate section [replica 1] (first at line 11)");
    write_variant(f, "[replica 2]", "[replica 5]");
    expect_error(f, "[replica 2] is missing");
    write_variant(f, "[replica 2]", "[replica 13]");
    expect_error(f, "unknown section [replica 13]");
    write_variant(f, "[replica 2]", "[replica 02]");
    expect_error(f, "unknown section [replica 02]");
    write_variant(f, "address = localhost:7402\n", "");
    expect_error(f, ":15: [replica 2] has no 'address'");
    write_variant(f, "address = localhost:7402", "address = 127.0.0.1:7401");
    expect_error(f, "[replica 2] has the address of [replica 1]");
    write_variant(f, "address = 127.0.0.1:7401\n", "address = 127.0.0.1:7401\naddress = x:1\n");
    expect_error(f, ":13: duplicate key 'address' in [replica 1]");
    write_variant(f, "[cluster]", "[nothing]");
    expect_error(f, "unknown section [nothing]");
    char hex[65];
    key_line(hex, f->keys[0]);
    char line[80];
    snprintf(line, sizeof(line), "key = %s", hex);
    char text[TEXT_MAX];
    snprintf(text, sizeof(text),
             "[cluster]\nfault_model = cft\nf = 0\nadmin = %s\n"
             "[replica 0]\naddress = a:1\n%s\n[replica 1]\naddress = b:1\n%s\n",
             hex, line, line);
    write_text(f->path, text);
    expect_error(f, ":8: [replica 1] has the key of [replica 0]");
}

/* Addresses and keys must be well formed; keys must be usable Ed25519 points. */
static void test_bad_values(void **state)
{
    struct fixture *f = *state;
    write_variant(f, "127.0.0.1:7400", "127.0.0.1");
    expect_error(f, ":8: bad address '127.0.0.1'");
    write_variant(f, "127.0.0.1:7400", "127.0.0.1:0");
    expect_error(f, "bad address");
    write_variant(f, "127.0.0.1:7400", "127.0.0.1:70000");
    expect_error(f, "bad address");
    write_variant(f, "127.0.0.1:7400", "host name:7400");
    expect_error(f, "bad address");
    write_variant(f, "key = ", "key = 0");
    expect_error(f, ":9: 'key' must be 64 hex digits");
    write_variant(f, "admin = ", "admin = zz");
    expect_error(f, ":5: 'admin' must be 64 hex digits");
    char small_order[80] = "key = 01";
    memset(small_order + 8, '0', 62);
    small_order[70] = '\0';
    char text[TEXT_MAX];
    const char *at = strstr(f->good, "key = ");
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - f->good), f->good, small_order, at + 70);
    write_text(f->path, text);
    expect_error(f, ":9: 'key' is not a valid Ed25519 public key");
    write_variant(f, "bft", "byzantine");
    expect_error(f, ":3: fault_model must be bft or cft");
    write_variant(f, "f = 1", "f = -1");
    expect_error(f, ":4: f must be a number");
    write_variant(f, "f = 1\n", "");
    expect_error(f, ":2: [cluster] has no 'f'");
}

/* n >= 3f+1 for BFT and n >= 2f+1 for CFT, in the file and in the rule itself. */
static void test_quorum_rules(void **state)
{
    struct fixture *f = *state;
    write_variant(f, "f = 1", "f = 2");
    expect_error(f, "BFT needs n >= 3f+1: 4 replicas cannot tolerate f=2");
    edit_good(f, "bft ;", "cft ;");
    write_variant(f, "f = 1", "f = 2");
    expect_error(f, "CFT needs n >= 2f+1: 4 replicas cannot tolerate f=2");
    char reason[200];
    assert_int_equal(cfg_check_quorum(1, 3, 1, reason, sizeof(reason)), TRONE_ECONFIG);
    assert_string_equal(reason, "BFT needs n >= 3f+1: 3 replicas cannot tolerate f=1");
    assert_int_equal(cfg_check_quorum(0, 3, 1, reason, sizeof(reason)), 0);
    assert_int_equal(cfg_check_quorum(1, 4, 1, reason, sizeof(reason)), 0);
    assert_int_equal(cfg_check_quorum(1, 13, 4, reason, sizeof(reason)), 0);
    assert_int_equal(cfg_check_quorum(1, 12, 4, NULL, 0), TRONE_ECONFIG);
    assert_int_equal(cfg_check_quorum(0, 1, 0, NULL, 0), 0);
    assert_int_equal(cfg_check_quorum(0, 0, 0, NULL, 0), TRONE_ECONFIG);
    assert_int_equal(cfg_check_quorum(1, TRONE_REPLICAS_MAX + 1, 0, reason, sizeof(reason)),
                     TRONE_ECONFIG);
    assert_non_null(strstr(reason, "at most"));
    assert_int_equal(cfg_check_quorum(1, 4, UINT32_MAX, NULL, 0), TRONE_ECONFIG);
}

/* host:port parsing accepts names, IPv4 and bracketed IPv6, and nothing else. */
static void test_address_parse(void **state)
{
    (void)state;
    char host[CFG_HOST_MAX + 1];
    uint16_t port = 0;
    assert_int_equal(cfg_address_parse("10.0.0.1:65535", host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.0.0.1");
    assert_int_equal(port, 65535);
    assert_int_equal(cfg_address_parse("[fe80::1]:1", host, sizeof(host), &port), 0);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 1);
    const char *bad[] = {"",           ":80",      "host:",   "host:08", "host:+8",
                         "::1:80",     "[::1:80",  "[::1]80", "[]:80",   "a_b:80",
                         "host:99999", "host:80x", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        if (cfg_address_parse(bad[i], host, sizeof(host), &port) != TRONE_EINVAL) {
            fail_msg("accepted '%s'", bad[i]);
        }
    }
    char tiny[4];
    assert_int_equal(cfg_address_parse("abcd:1", tiny, sizeof(tiny), &port), TRONE_EINVAL);
}

/* A missing file is EIO with the file's name; an overlong line is an error, not a split. */
static void test_unreadable_and_long(void **state)
{
    struct fixture *f = *state;
    struct cfg_cluster *c = malloc(sizeof(*c));
    assert_non_null(c);
    char reason[512];
    assert_int_equal(cfg_cluster_load(c, "/nonexistent/cluster.conf", reason, sizeof(reason)),
                     TRONE_EIO);
    assert_non_null(strstr(reason, "/nonexistent/cluster.conf: cannot open"));
    free(c);
    char text[TEXT_MAX];
    memset(text, 'x', 1000);
    text[1000] = '\0';
    write_variant(f, "; a comment", text);
    expect_error(f, ":1: line too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_sections_and_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_replica_sets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quorum_rules, setup, teardown),
        cmocka_unit_test(test_address_parse),
        cmocka_unit_test_setup_teardown(test_unreadable_and_long, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

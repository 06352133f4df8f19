/* test_key.c: identities, key files and hex (src/core/key.c). Uses real files in a fresh
 * temporary directory and real libsodium keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/key.h"

/* ---- Fixture: a temporary directory, removed with its files at the end. ---- */

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/trone-test-key.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/id.key", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

static void write_text(const char *path, const char *text)
{
    unlink(path);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    assert_int_equal(fclose(file), 0);
}

/* Writes a key file from a fresh identity with one line replaced by extra text. */
static void write_key_file(const char *path, const char *name, const char *extra, const char *drop)
{
    struct key_identity id;
    assert_int_equal(key_identity_generate(&id, "alice"), 0);
    char public_hex[65];
    char secret_hex[129];
    key_hex_encode(public_hex, id.public_key, 32);
    key_hex_encode(secret_hex, id.secret_key, 64);
    char text[1024];
    snprintf(text, sizeof(text), "%s%s%s%s%s%s%s%s", strcmp(drop, "name") ? "name = " : "",
             strcmp(drop, "name") ? name : "", strcmp(drop, "name") ? "\n" : "",
             strcmp(drop, "public") ? "public = " : "", strcmp(drop, "public") ? public_hex : "",
             strcmp(drop, "public") ? "\n" : "", strcmp(drop, "secret") ? "secret = " : "",
             strcmp(drop, "secret") ? secret_hex : "");
    strcat(text, "\n");
    strcat(text, extra);
    write_text(path, text);
}

static void expect_load_error(const char *path, const char *fragment)
{
    struct key_identity id;
    char reason[512];
    memset(&id, 0x5a, sizeof(id));
    assert_int_not_equal(key_identity_load(&id, path, reason, sizeof(reason)), 0);
    if (strstr(reason, fragment) == NULL) {
        fail_msg("reason '%s' lacks '%s'", reason, fragment);
    }
    assert_null(strchr(reason, '\n'));
    assert_non_null(strstr(reason, path));
    /* A failed load leaves no secret behind. */
    uint8_t zero[sizeof(id)];
    memset(zero, 0, sizeof(zero));
    assert_memory_equal(&id, zero, sizeof(id));
}

/* ---- Scenarios ---- */

/* A saved identity loads back identical, with mode 0600, and is never overwritten. */
static void test_save_load_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct key_identity id;
    struct key_identity back;
    assert_int_equal(key_identity_generate(&id, "replica0"), 0);
    assert_int_equal(key_identity_save(&id, f->path), 0);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char reason[256];
    assert_int_equal(key_identity_load(&back, f->path, reason, sizeof(reason)), 0);
    assert_string_equal(back.name, "replica0");
    assert_memory_equal(back.public_key, id.public_key, 32);
    assert_memory_equal(back.secret_key, id.secret_key, 64);
    assert_int_equal(key_identity_save(&id, f->path), TRONE_EEXIST);
    key_identity_wipe(&id);
    uint8_t zero[64] = {0};
    assert_memory_equal(id.secret_key, zero, 64);
}

/* Names are 1-64 characters of a safe set; anything else is EINVAL. */
static void test_generate_rejects_bad_names(void **state)
{
    (void)state;
    struct key_identity id;
    char long_name[80];
    memset(long_name, 'a', sizeof(long_name));
    long_name[65] = '\0';
    assert_int_equal(key_identity_generate(&id, ""), TRONE_EINVAL);
    assert_int_equal(key_identity_generate(&id, NULL), TRONE_EINVAL);
    assert_int_equal(key_identity_generate(&id, "a b"), TRONE_EINVAL);
    assert_int_equal(key_identity_generate(&id, "../x"), TRONE_EINVAL);
    assert_int_equal(key_identity_generate(&id, long_name), TRONE_EINVAL);
    long_name[64] = '\0';
    assert_int_equal(key_identity_generate(&id, long_name), 0);
    assert_int_equal(key_identity_generate(&id, "Probe_1.a-b"), 0);
}

/* Hex decoding wants exactly 2*size hex digits and zeroes the output otherwise. */
static void test_hex_strict(void **state)
{
    (void)state;
    uint8_t out[4];
    char text[9];
    const uint8_t data[4] = {0x00, 0xab, 0x7f, 0xff};
    key_hex_encode(text, data, 4);
    assert_string_equal(text, "00ab7fff");
    assert_int_equal(key_hex_decode(out, 4, "00ab7fff"), 0);
    assert_memory_equal(out, data, 4);
    assert_int_equal(key_hex_decode(out, 4, "00AB7FFF"), 0);
    assert_memory_equal(out, data, 4);
    const char *bad[] = {"00ab7ff", "00ab7fff0", "00ab7ffg", " 0ab7fff", "00ab:fff", "", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        memset(out, 0x77, sizeof(out));
        assert_int_equal(key_hex_decode(out, 4, bad[i]), TRONE_EINVAL);
        const uint8_t zero[4] = {0};
        assert_memory_equal(out, zero, 4);
    }
    assert_int_equal(key_hex_decode(out, 4, NULL), TRONE_EINVAL);
}

/* The X25519 keys derived from an identity agree: DH both ways gives one shared secret. */
static void test_x25519_derivation(void **state)
{
    (void)state;
    struct key_identity a;
    struct key_identity b;
    assert_int_equal(key_identity_generate(&a, "a"), 0);
    assert_int_equal(key_identity_generate(&b, "b"), 0);
    uint8_t a_pub[32], a_sec[32], b_pub[32], b_sec[32], ab[32], ba[32];
    assert_int_equal(key_x25519_public(a.public_key, a_pub), 0);
    assert_int_equal(key_x25519_secret(a.secret_key, a_sec), 0);
    assert_int_equal(key_x25519_public(b.public_key, b_pub), 0);
    assert_int_equal(key_x25519_secret(b.secret_key, b_sec), 0);
    assert_int_equal(crypto_scalarmult(ab, a_sec, b_pub), 0);
    assert_int_equal(crypto_scalarmult(ba, b_sec, a_pub), 0);
    assert_memory_equal(ab, ba, 32);
    /* The identity point (small order) is not a usable public key. */
    uint8_t small[32] = {1};
    assert_int_equal(key_x25519_public(small, a_pub), TRONE_EINVAL);
}

/* Each kind of bad key file is refused with its file, line and reason. */
static void test_load_rejects_bad_files(void **state)
{
    struct fixture *f = *state;
    write_key_file(f->path, "alice", "", "secret");
    expect_load_error(f->path, "no 'secret'");
    write_key_file(f->path, "alice", "", "name");
    expect_load_error(f->path, "no 'name'");
    write_key_file(f->path, "alice", "color = blue\n", "");
    expect_load_error(f->path, ":4: unknown key 'color'");
    write_key_file(f->path, "alice", "name = bob\n", "");
    expect_load_error(f->path, ":4: duplicate key 'name'");
    write_key_file(f->path, "al ice", "", "");
    expect_load_error(f->path, ":1: bad name");
    write_key_file(f->path, "alice", "[section]\nx = 1\n", "");
    expect_load_error(f->path, ":5: unexpected section");
    write_key_file(f->path, "alice", "this line has no equals sign\n", "");
    expect_load_error(f->path, ":4: syntax error");
    write_text(f->path, "name = a\npublic = 00\nsecret = 00\n");
    expect_load_error(f->path, ":2: public key is not 64 hex digits");
    expect_load_error("/nonexistent/dir/x.key", "cannot open");
}

/* A public key that is not the secret's own is refused. */
static void test_load_rejects_mismatched_public_key(void **state)
{
    struct fixture *f = *state;
    struct key_identity a;
    struct key_identity b;
    assert_int_equal(key_identity_generate(&a, "a"), 0);
    assert_int_equal(key_identity_generate(&b, "b"), 0);
    char public_hex[65];
    char secret_hex[129];
    char text[512];
    key_hex_encode(public_hex, b.public_key, 32);
    key_hex_encode(secret_hex, a.secret_key, 64);
    snprintf(text, sizeof(text), "name = a\npublic = %s\nsecret = %s\n", public_hex, secret_hex);
    write_text(f->path, text);
    expect_load_error(f->path, "does not match");
}

/* A very long line is an error, not a silent split into two lines. */
static void test_load_rejects_long_line(void **state)
{
    struct fixture *f = *state;
    char text[2048];
    memset(text, 'x', sizeof(text));
    memcpy(text, "name = ", 7);
    text[sizeof(text) - 2] = '\n';
    text[sizeof(text) - 1] = '\0';
    write_text(f->path, text);
    expect_load_error(f->path, ":1: line too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_save_load_roundtrip, setup, teardown),
        cmocka_unit_test(test_generate_rejects_bad_names),
        cmocka_unit_test(test_hex_strict),
        cmocka_unit_test(test_x25519_derivation),
        cmocka_unit_test_setup_teardown(test_load_rejects_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_rejects_mismatched_public_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_rejects_long_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

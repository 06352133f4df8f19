/* noise_interop.c: runs our src/core/noise.c against an independent Noise implementation,
 * Debian's python3-dissononce (tests/interop/noise_peer.py), over two pipes. Test-only tool.
 *
 * usage: noise_interop PYTHON PEER_SCRIPT KK|IK initiator|responder
 * The last argument is OUR role; the peer takes the other. Both sides follow the script in
 * noise_peer.py: handshake with payloads, then each side's handshake hash, a largest transport
 * message and its reversal, an empty message and "bye". Keys are fixed so runs reproduce:
 * byte i of the initiator's static, responder's static, initiator's ephemeral and
 * responder's ephemeral X25519 secrets is i+1, i+33, i+65 and i+97. Exit 0 on success. */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/noise.h"

#define INTEROP_PROLOGUE "trone-interop-v1"
#define INTEROP_BIG_SIZE (NOISE_MESSAGE_MAX - NOISE_TAG_LEN)

struct interop {
    FILE *to_peer;
    FILE *from_peer;
    pid_t peer;
    struct noise_handshake hs;
    struct noise_cipher send;
    struct noise_cipher recv;
    uint8_t buffer[NOISE_MESSAGE_MAX];
    uint8_t plain[NOISE_MESSAGE_MAX];
};

static _Noreturn void interop_fail(const char *why)
{
    fprintf(stderr, "noise_interop: FAIL %s\n", why);
    exit(1);
}

static void interop_key(uint8_t key[NOISE_KEY_LEN], unsigned first)
{
    for (unsigned i = 0; i < NOISE_KEY_LEN; i++) {
        key[i] = (uint8_t)(first + i);
    }
}

static void interop_hex(char *out, const uint8_t *data, size_t size)
{
    sodium_bin2hex(out, 2 * size + 1, data, size);
}

static void interop_big(uint8_t *out, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        out[i] = (uint8_t)((i * 7 + 3) % 251);
    }
}

static void interop_send(struct interop *t, const uint8_t *data, size_t size)
{
    uint8_t header[4] = {(uint8_t)size, (uint8_t)(size >> 8), (uint8_t)(size >> 16),
                         (uint8_t)(size >> 24)};
    if (fwrite(header, 1, 4, t->to_peer) != 4 || fwrite(data, 1, size, t->to_peer) != size ||
        fflush(t->to_peer) != 0) {
        interop_fail("write to the peer");
    }
}

/* Reads one length-prefixed message into t->buffer; returns its size. */
static size_t interop_recv(struct interop *t)
{
    uint8_t header[4];
    if (fread(header, 1, 4, t->from_peer) != 4) {
        interop_fail("short read of a length (did the peer fail?)");
    }
    size_t size = (size_t)header[0] | (size_t)header[1] << 8 | (size_t)header[2] << 16 |
                  (size_t)header[3] << 24;
    if (size > NOISE_MESSAGE_MAX) {
        interop_fail("peer message over 65535 bytes");
    }
    if (fread(t->buffer, 1, size, t->from_peer) != size) {
        interop_fail("short read of a message");
    }
    return size;
}

/* Starts the peer with its stdin and stdout on two pipes. */
static void interop_spawn(struct interop *t, char *const argv[])
{
    int to_child[2];
    int from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) {
        interop_fail("pipe");
    }
    t->peer = fork();
    if (t->peer < 0) {
        interop_fail("fork");
    }
    if (t->peer == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        execv(argv[0], argv);
        perror("execv");
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    t->to_peer = fdopen(to_child[1], "wb");
    t->from_peer = fdopen(from_child[0], "rb");
    if (t->to_peer == NULL || t->from_peer == NULL) {
        interop_fail("fdopen");
    }
}

static void interop_expect(const char *what, const uint8_t *got, size_t got_size,
                           const uint8_t *want, size_t want_size)
{
    if (got_size != want_size || (want_size > 0 && memcmp(got, want, want_size) != 0)) {
        fprintf(stderr, "noise_interop: mismatch in %s (%zu vs %zu bytes)\n", what, got_size,
                want_size);
        interop_fail(what);
    }
}

/* The handshake of the script: message 1 then message 2, each with its fixed payload. */
static void interop_handshake(struct interop *t, bool initiator)
{
    static const char hello_i[] = "hello from initiator";
    static const char hello_r[] = "hello from responder";
    const char *mine = initiator ? hello_i : hello_r;
    const char *theirs = initiator ? hello_r : hello_i;
    size_t size = 0;
    for (unsigned step = 0; step < 2; step++) {
        bool writing = (step == 0) == initiator;
        if (writing) {
            if (noise_handshake_write(&t->hs, (const uint8_t *)mine, strlen(mine), t->buffer,
                                      sizeof(t->buffer), &size) != 0) {
                interop_fail("noise_handshake_write");
            }
            interop_send(t, t->buffer, size);
        } else {
            size_t message_size = interop_recv(t);
            if (noise_handshake_read(&t->hs, t->buffer, message_size, t->plain, sizeof(t->plain),
                                     &size) != 0) {
                interop_fail("noise_handshake_read");
            }
            interop_expect("handshake payload", t->plain, size, (const uint8_t *)theirs,
                           strlen(theirs));
        }
    }
    if (!noise_handshake_done(&t->hs)) {
        interop_fail("handshake not done");
    }
    noise_handshake_split(&t->hs, &t->send, &t->recv);
}

static void interop_transport_send(struct interop *t, const uint8_t *data, size_t size)
{
    if (noise_cipher_encrypt(&t->send, t->send.n, NULL, 0, data, size, t->buffer) != 0) {
        interop_fail("noise_cipher_encrypt");
    }
    t->send.n++;
    interop_send(t, t->buffer, size + NOISE_TAG_LEN);
}

static size_t interop_transport_recv(struct interop *t)
{
    size_t size = interop_recv(t);
    if (noise_cipher_decrypt(&t->recv, t->recv.n, NULL, 0, t->buffer, size, t->plain) != 0) {
        interop_fail("noise_cipher_decrypt");
    }
    t->recv.n++;
    return size - NOISE_TAG_LEN;
}

/* The transport part of the script; see noise_peer.py. */
static void interop_transport(struct interop *t, bool initiator)
{
    static uint8_t big[INTEROP_BIG_SIZE];
    static uint8_t reversed[INTEROP_BIG_SIZE];
    interop_big(big, sizeof(big));
    for (size_t i = 0; i < sizeof(big); i++) {
        reversed[i] = big[sizeof(big) - 1 - i];
    }
    const uint8_t *h = noise_handshake_hash(&t->hs);
    const uint8_t *asks[3] = {h, big, (const uint8_t *)""};
    const size_t ask_sizes[3] = {NOISE_HASH_LEN, sizeof(big), 0};
    const uint8_t *answers[3] = {h, reversed, (const uint8_t *)"bye"};
    const size_t answer_sizes[3] = {NOISE_HASH_LEN, sizeof(reversed), 3};
    for (unsigned step = 0; step < 3; step++) {
        if (initiator) {
            interop_transport_send(t, asks[step], ask_sizes[step]);
            size_t size = interop_transport_recv(t);
            interop_expect("answer", t->plain, size, answers[step], answer_sizes[step]);
        } else {
            size_t size = interop_transport_recv(t);
            interop_expect("ask", t->plain, size, asks[step], ask_sizes[step]);
            interop_transport_send(t, answers[step], answer_sizes[step]);
        }
    }
}

int main(int argc, char **argv)
{
    static struct interop t;
    if (argc != 5 || sodium_init() < 0) {
        interop_fail("usage: noise_interop PYTHON PEER_SCRIPT KK|IK initiator|responder");
    }
    bool kk = strcmp(argv[3], "KK") == 0;
    bool initiator = strcmp(argv[4], "initiator") == 0;
    if ((!kk && strcmp(argv[3], "IK") != 0) || (!initiator && strcmp(argv[4], "responder"))) {
        interop_fail("bad pattern or role");
    }
    uint8_t s_i[NOISE_KEY_LEN], s_r[NOISE_KEY_LEN], e_i[NOISE_KEY_LEN], e_r[NOISE_KEY_LEN];
    uint8_t p_i[NOISE_KEY_LEN], p_r[NOISE_KEY_LEN];
    interop_key(s_i, 1);
    interop_key(s_r, 33);
    interop_key(e_i, 65);
    interop_key(e_r, 97);
    if (crypto_scalarmult_base(p_i, s_i) != 0 || crypto_scalarmult_base(p_r, s_r) != 0) {
        interop_fail("scalarmult_base");
    }
    /* The peer plays the other role with the other keys. */
    char peer_s[65], peer_e[65], peer_rs[65], prologue[2 * sizeof(INTEROP_PROLOGUE) + 1];
    interop_hex(peer_s, initiator ? s_r : s_i, NOISE_KEY_LEN);
    interop_hex(peer_e, initiator ? e_r : e_i, NOISE_KEY_LEN);
    interop_hex(peer_rs, initiator ? p_i : p_r, NOISE_KEY_LEN);
    if (!kk && initiator) {
        strcpy(peer_rs, "-"); /* the IK responder learns the initiator's key */
    }
    interop_hex(prologue, (const uint8_t *)INTEROP_PROLOGUE, strlen(INTEROP_PROLOGUE));
    char *peer_argv[] = {argv[1], argv[2], argv[3], initiator ? "responder" : "initiator",
                         peer_s,  peer_e,  peer_rs, prologue,
                         NULL};
    signal(SIGPIPE, SIG_IGN);
    interop_spawn(&t, peer_argv);

    const uint8_t *rs = (kk || initiator) ? (initiator ? p_r : p_i) : NULL;
    if (noise_handshake_init(&t.hs, kk ? NOISE_PATTERN_KK : NOISE_PATTERN_IK, initiator,
                             (const uint8_t *)INTEROP_PROLOGUE, strlen(INTEROP_PROLOGUE),
                             initiator ? s_i : s_r, rs, initiator ? e_i : e_r) != 0) {
        interop_fail("noise_handshake_init");
    }
    interop_handshake(&t, initiator);
    /* The IK responder learnt the initiator's static key from message 1. */
    interop_expect("remote static", noise_handshake_remote_static(&t.hs), NOISE_KEY_LEN,
                   initiator ? p_r : p_i, NOISE_KEY_LEN);
    interop_transport(&t, initiator);

    fclose(t.to_peer);
    int status = 0;
    if (waitpid(t.peer, &status, 0) != t.peer || !WIFEXITED(status) || WEXITSTATUS(status)) {
        interop_fail("the dissononce peer reported a failure");
    }
    fclose(t.from_peer);
    noise_handshake_close(&t.hs);
    noise_cipher_close(&t.send);
    noise_cipher_close(&t.recv);
    printf("noise_interop: %s with us as %s: ok\n", argv[3], argv[4]);
    return 0;
}

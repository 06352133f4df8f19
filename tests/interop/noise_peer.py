#!/usr/bin/python3
# noise_peer.py: the independent side of the Noise interoperability test. It runs
# Noise_KK/IK_25519_ChaChaPoly_BLAKE2b with Debian's python3-dissononce (whose primitives come
# from the `cryptography` package, not libsodium) against tests/interop/noise_interop.c,
# speaking length-prefixed messages (u32 little-endian length, then bytes) on stdin/stdout.
#
# usage: noise_peer.py KK|IK initiator|responder S_HEX E_HEX RS_HEX|- PROLOGUE_HEX
# The script of messages, identical on both sides:
#   1 initiator -> responder  handshake message 1, payload b"hello from initiator"
#   2 responder -> initiator  handshake message 2, payload b"hello from responder"
#   3 initiator -> responder  transport: the initiator's handshake hash (64 bytes)
#   4 responder -> initiator  transport: the responder's handshake hash
#   5 initiator -> responder  transport: big(65519), the largest Noise transport plaintext
#   6 responder -> initiator  transport: the same bytes reversed
#   7 initiator -> responder  transport: b"" (empty)
#   8 responder -> initiator  transport: b"bye"
# The peer checks every payload and hash it receives; any mismatch exits with status 1.
# On success it prints "ok rs=<hex>" on stderr, rs being the remote static key it used.
import struct
import sys

from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.private import PrivateKey
from dissononce.dh.x25519.public import PublicKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.extras.dh.dangerous.dh_nogen import NoGenDH
from dissononce.hash.blake2b import Blake2bHash
from dissononce.processing.handshakepatterns.interactive.IK import IKHandshakePattern
from dissononce.processing.handshakepatterns.interactive.KK import KKHandshakePattern
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState

MESSAGE_MAX = 65535
TAG_LEN = 16


def big(size):
    """Deterministic bytes shared with noise_interop.c: byte i is (i * 7 + 3) mod 251."""
    return bytes((i * 7 + 3) % 251 for i in range(size))


def fail(why):
    sys.stderr.write("noise_peer: FAIL %s\n" % why)
    sys.exit(1)


def send(data):
    sys.stdout.buffer.write(struct.pack("<I", len(data)) + data)
    sys.stdout.buffer.flush()


def recv():
    header = sys.stdin.buffer.read(4)
    if len(header) != 4:
        fail("short read of a length")
    (size,) = struct.unpack("<I", header)
    if size > MESSAGE_MAX:
        fail("message of %d bytes" % size)
    data = sys.stdin.buffer.read(size)
    if len(data) != size:
        fail("short read of a message")
    return data


def expect(what, got, want):
    if got != want:
        fail("%s: got %s want %s" % (what, bytes(got[:32]).hex(), bytes(want[:32]).hex()))


def handshake(pattern, initiator, s_secret, e_secret, rs, prologue):
    dh = X25519DH()
    s = dh.generate_keypair(PrivateKey(s_secret))
    # NoGenDH makes GENERATE_KEYPAIR return the fixed ephemeral key, for reproducible runs.
    fixed = NoGenDH(dh, PrivateKey(e_secret))
    hs = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), Blake2bHash()), fixed)
    hs.initialize(pattern, initiator, prologue, s=s, rs=PublicKey(rs) if rs else None)
    if initiator:
        message = bytearray()
        hs.write_message(b"hello from initiator", message)
        send(bytes(message))
        payload = bytearray()
        ciphers = hs.read_message(recv(), payload)
        expect("payload 2", bytes(payload), b"hello from responder")
        send_cipher, recv_cipher = ciphers
    else:
        payload = bytearray()
        hs.read_message(recv(), payload)
        expect("payload 1", bytes(payload), b"hello from initiator")
        message = bytearray()
        ciphers = hs.write_message(b"hello from responder", message)
        send(bytes(message))
        recv_cipher, send_cipher = ciphers
    return hs, send_cipher, recv_cipher


def transport(initiator, h, send_cipher, recv_cipher):
    big_message = big(MESSAGE_MAX - TAG_LEN)
    # (what the initiator sends, what the responder answers). Both sides put their own
    # handshake hash in step 0, so each checks that the other computed the same h.
    exchanges = [(h, h), (big_message, big_message[::-1]), (b"", b"bye")]
    for step, (ask, answer) in enumerate(exchanges):
        if initiator:
            send(send_cipher.encrypt_with_ad(b"", ask))
            expect("answer %d" % step, recv_cipher.decrypt_with_ad(b"", recv()), answer)
        else:
            expect("ask %d" % step, recv_cipher.decrypt_with_ad(b"", recv()), ask)
            send(send_cipher.encrypt_with_ad(b"", answer))


def main():
    if len(sys.argv) != 7:
        fail("usage: noise_peer.py KK|IK initiator|responder S E RS|- PROLOGUE (hex)")
    patterns = {"KK": KKHandshakePattern, "IK": IKHandshakePattern}
    if sys.argv[1] not in patterns or sys.argv[2] not in ("initiator", "responder"):
        fail("bad pattern or role")
    initiator = sys.argv[2] == "initiator"
    rs = None if sys.argv[5] == "-" else bytes.fromhex(sys.argv[5])
    hs, send_cipher, recv_cipher = handshake(
        patterns[sys.argv[1]](), initiator, bytes.fromhex(sys.argv[3]),
        bytes.fromhex(sys.argv[4]), rs, bytes.fromhex(sys.argv[6]))
    h = hs.symmetricstate.get_handshake_hash()
    transport(initiator, h, send_cipher, recv_cipher)
    sys.stderr.write("noise_peer: ok rs=%s h=%s\n" % (hs.rs.data.hex(), h.hex()))


if __name__ == "__main__":
    main()

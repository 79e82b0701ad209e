#!/usr/bin/env python3
"""A Blyan transport client written against the protocol spec only (docs/protocol.md,
"Transport"), with aioquic: the interop check of blyan-wire.

    aioquic_client.py HOST PORT EXPECTED_SERVER_PEER_ID_HEX [N]

It generates its own Ed25519 key and self-signed certificate, connects with QUIC v1,
TLS 1.3 and ALPN blyan/1 presenting that certificate, checks that the SHA-256 of the
server certificate's Ed25519 key is the expected PeerId, sends one request on one
bidirectional stream (protocol byte 0x01, one uncompressed frame carrying the MsgPack
array [N, bin "interop"]), reads the one response frame and checks that it is
[N + 1, bin "interop"].

Prints one JSON object on success (exit 0). Exit 2: PeerId mismatch; exit 3: protocol
violation by the server; exit 4: connection failure.
"""

import asyncio
import datetime
import hashlib
import json
import ssl
import struct
import sys

from aioquic.asyncio import connect
from aioquic.quic.configuration import QuicConfiguration
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

ALPN = "blyan/1"
PROTOCOL_PING = 0x01
PAYLOAD_DATA = b"interop"


def raw_public_key(public_key) -> bytes:
    return public_key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def self_signed(key: ed25519.Ed25519PrivateKey) -> x509.Certificate:
    """A self-signed Ed25519 certificate of a different shape than blyan-wire's own (other
    name, random serial, one-day validity), to exercise the server's parser."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "blyan-interop-client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, None)
    )


def msgpack_uint(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return b"\xcc" + bytes([n])
    if n <= 0xFFFF:
        return b"\xcd" + struct.pack(">H", n)
    if n <= 0xFFFFFFFF:
        return b"\xce" + struct.pack(">I", n)
    return b"\xcf" + struct.pack(">Q", n)


def ping_payload(n: int) -> bytes:
    """MsgPack of the struct Ping { n: u64, data: bin } as blyan-wire encodes it: an array
    of the fields (no names), the integer in its shortest form, the bytes as bin 8."""
    return b"\x92" + msgpack_uint(n) + b"\xc4" + bytes([len(PAYLOAD_DATA)]) + PAYLOAD_DATA


def frame(payload: bytes) -> bytes:
    # length counts the flags byte and the payload; flags 0 = not compressed.
    return struct.pack(">I", 1 + len(payload)) + b"\x00" + payload


def fail(code: int, message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


async def run(host: str, port: int, expected_peer_id: str, n: int) -> dict:
    key = ed25519.Ed25519PrivateKey.generate()
    client_peer_id = hashlib.sha256(raw_public_key(key.public_key())).hexdigest()

    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=[ALPN],
        # The server's certificate is not checked against a CA: its key is the identity,
        # checked below. aioquic still verifies the server's TLS 1.3 CertificateVerify
        # signature with that key.
        verify_mode=ssl.CERT_NONE,
    )
    configuration.certificate = self_signed(key)
    configuration.private_key = key

    async with connect(host, port, configuration=configuration, wait_connected=True) as client:
        tls = client._quic.tls
        if tls.alpn_negotiated != ALPN:
            fail(3, f"server negotiated ALPN {tls.alpn_negotiated!r}")
        server_certificate = tls._peer_certificate
        server_key = server_certificate.public_key()
        if not isinstance(server_key, ed25519.Ed25519PublicKey):
            fail(3, f"server certificate key is not Ed25519: {type(server_key).__name__}")
        server_peer_id = hashlib.sha256(raw_public_key(server_key)).hexdigest()
        if server_peer_id != expected_peer_id.lower():
            # aioquic has no hook to refuse the certificate inside the handshake, so the
            # check runs right after it, before any application byte is sent.
            client.close()
            fail(2, f"PeerId mismatch: expected {expected_peer_id}, server is {server_peer_id}")

        reader, writer = await client.create_stream()
        writer.write(bytes([PROTOCOL_PING]) + frame(ping_payload(n)))
        writer.write_eof()
        response = await reader.read()

    expected = frame(ping_payload(n + 1))
    if response != expected:
        fail(3, f"unexpected response {response.hex()}, expected {expected.hex()}")
    return {
        "client_peer_id": client_peer_id,
        "server_peer_id": server_peer_id,
        "request": n,
        "response_frame": response.hex(),
    }


def main() -> None:
    if len(sys.argv) not in (4, 5):
        fail(64, __doc__)
    host, port, expected = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) == 5 else 41
    try:
        result = asyncio.run(asyncio.wait_for(run(host, port, expected, n), timeout=20))
    except SystemExit:
        raise
    except Exception as err:  # connection refused, handshake alert, timeout
        fail(4, f"connection failed: {type(err).__name__}: {err}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes fuzz/seeds/peer_certificate/cryptography: a self-signed Ed25519 certificate made
by Python `cryptography` (not by blyan-wire), from the RFC 8032 seed [7] * 32, with its own
name, serial, a one-day validity and a non-critical basicConstraints extension.
crates/blyan-wire/tests/it/certificates.rs checks that blyan-wire accepts it.

    <venv>/bin/python scripts/interop/make_certificate_seed.py
"""

import datetime
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

root = pathlib.Path(__file__).resolve().parents[2]
key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "blyan-interop-client")])
start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
cert = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(key.public_key())
    .serial_number(123456789)
    .not_valid_before(start)
    .not_valid_after(start + datetime.timedelta(days=1))
    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
    .sign(key, None)
)
out = root / "fuzz/seeds/peer_certificate/cryptography"
out.write_bytes(cert.public_bytes(serialization.Encoding.DER))
print(f"wrote {out}")

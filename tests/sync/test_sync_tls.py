"""The cart over TLS to a real Mosquitto, verifying the broker's certificate against ca_file."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.mqtt_broker import MosquittoBroker
from tests.support import wait_for


def self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp / f"{name}.crt", tmp / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def test_cart_connects_over_tls_and_refuses_an_unknown_broker(tmp_path, make_cart):
    crt, key = self_signed(tmp_path, "broker")
    other_ca, _ = self_signed(tmp_path, "other")
    broker = MosquittoBroker(tmp_path / "tls", extra=f"certfile {crt}\nkeyfile {key}").start()
    try:
        cart = make_cart(broker.port, tls=True, ca_file=str(crt)).start()
        cart.wait_online()
        cart.stop()
        # Same broker, but the cart trusts another CA: no connection, and it says why.
        (tmp_path / "agent.toml").write_text(
            (tmp_path / "agent.toml").read_text().replace(str(crt), str(other_ca)))
        cart.start()
        wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in (cart.service.health.error or ""),
                   5, what="a certificate error")
        assert not cart.service.online()
    finally:
        broker.close()

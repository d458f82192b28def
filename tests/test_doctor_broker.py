"""The doctor's broker steps on their own, against real Mosquitto brokers: TLS verified with
the fleet's CA (and refused with another CA), the login refused with a wrong password, TCP
refused where nothing listens. No agent runs, so the doctor logs in itself."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.admin.doctor.broker import broker_checks
from agent.admin.doctor.context import Context
from agent.config import load
from tests.mqtt_broker import MosquittoBroker, free_port, make_password_file
from tests.support import offline_config, write_config


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(tmp: Path, name: str) -> tuple[Path, Path]:
    key, crt = tmp / f"{name}.key", tmp / f"{name}.crt"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={name}",
            "-days", "2")
    return key, crt


@pytest.fixture
def tls_broker(tmp_path: Path) -> Any:
    ca_key, ca_crt = make_ca(tmp_path, "fleet-ca")
    key, csr, crt = (tmp_path / n for n in ("broker.key", "broker.csr", "broker.crt"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile",
            str(tmp_path / "san.ext"))
    key.chmod(0o644)
    users = make_password_file(tmp_path / "passwd", {"bc-test": "right"})
    broker = MosquittoBroker(tmp_path / "mosq", password_file=users,
                             extra=f"cafile {ca_crt}\ncertfile {crt}\nkeyfile {key}").start()
    try:
        yield broker, ca_crt
    finally:
        broker.close()


def checks(tmp: Path, password: str, **mqtt: Any) -> dict[str, dict[str, str]]:
    (tmp / "pw").write_text(password)
    doc = offline_config(tmp, mqtt={"enabled": True, "username": "bc-test",
                                    "password_file": str(tmp / "pw"), **mqtt})
    cfg = load(write_config(tmp / "agent.toml", doc))
    return {c.name: {"status": c.status, "detail": c.detail, "fix": c.fix}
            for c in broker_checks(Context(cfg, str(tmp / "agent.toml"), None))}


def test_tls_login_and_round_trip(tmp_path: Path, tls_broker: Any) -> None:
    broker, ca = tls_broker
    found = checks(tmp_path, "right", host="127.0.0.1", port=broker.port, tls=True,
                   ca_file=str(ca))
    assert {n: c["status"] for n, c in found.items()} == dict.fromkeys(
        ["broker dns", "broker tcp", "broker tls", "broker login", "broker round trip"], "ok")
    assert "certificate verified for 127.0.0.1" in found["broker tls"]["detail"]
    assert "carts/bc-test/cmd/result" in found["broker round trip"]["detail"]


def test_a_broker_certificate_from_another_ca(tmp_path: Path, tls_broker: Any) -> None:
    broker, _ = tls_broker
    _, other = make_ca(tmp_path, "someone-else")
    found = checks(tmp_path, "right", host="127.0.0.1", port=broker.port, tls=True,
                   ca_file=str(other))
    assert found["broker tls"]["status"] == "fail"
    assert "certificate not trusted" in found["broker tls"]["detail"]
    assert "mqtt.ca_file" in found["broker tls"]["fix"]
    assert found["broker login"]["status"] == "skip"


def test_a_wrong_password(tmp_path: Path, tls_broker: Any) -> None:
    broker, ca = tls_broker
    found = checks(tmp_path, "wrong", host="127.0.0.1", port=broker.port, tls=True,
                   ca_file=str(ca))
    assert found["broker tls"]["status"] == "ok"
    assert found["broker login"]["status"] == "fail"
    assert "not authori" in found["broker login"]["detail"].lower()
    assert "wrong" not in found["broker login"]["detail"]  # the secret is never shown


def test_nothing_listening_and_a_name_that_does_not_resolve(tmp_path: Path) -> None:
    found = checks(tmp_path, "x", host="127.0.0.1", port=free_port())
    assert found["broker tcp"]["status"] == "fail"
    assert "refused" in found["broker tcp"]["detail"].lower()
    assert found["broker tls"]["status"] == "skip"
    found = checks(tmp_path, "x", host="no-such-broker.invalid", port=1883)
    assert found["broker dns"]["status"] == "fail"
    assert found["broker tcp"]["status"] == "skip"

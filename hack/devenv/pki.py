"""A throwaway certificate authority for the local control plane, made with the openssl CLI.

The venv has no `cryptography`, and openssl is on every Debian machine, so the CLI it is.
Keys are ECDSA P-256: generating them takes milliseconds, which keeps cluster startup fast.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_VALIDITY_DAYS = "30"


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ClusterPki:
    """Every credential the control plane needs, as files under one directory."""

    ca: KeyPair
    apiserver: KeyPair
    # Signs and verifies ServiceAccount tokens (apiserver signs, controller-manager too).
    service_account_key: Path
    service_account_public_key: Path

    @classmethod
    def create(
        cls, directory: Path, serving_ips: Sequence[str], serving_dns: Sequence[str]
    ) -> ClusterPki:
        directory.mkdir(parents=True, exist_ok=True)
        ca = _self_signed_ca(directory, "rollforward-local-ca")
        sans = [f"IP:{ip}" for ip in serving_ips] + [f"DNS:{name}" for name in serving_dns]
        apiserver = issue_certificate(
            ca, directory, "apiserver", common_name="kube-apiserver", server_sans=sans
        )
        sa_key = directory / "service-account.key"
        _openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", sa_key
        )
        sa_pub = directory / "service-account.pub"
        _openssl("pkey", "-in", sa_key, "-pubout", "-out", sa_pub)
        return cls(ca, apiserver, sa_key, sa_pub)


def issue_certificate(
    ca: KeyPair,
    directory: Path,
    name: str,
    common_name: str,
    organizations: Sequence[str] = (),
    server_sans: Sequence[str] = (),
) -> KeyPair:
    """A leaf certificate signed by `ca`: for a server if `server_sans` is given, else a client.

    For a client, Kubernetes reads the user from CN and the groups from O.
    """
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    csr = directory / f"{name}.csr"
    subject = "".join(f"/O={org}" for org in organizations) + f"/CN={common_name}"
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", pair.key, "-out", csr, "-subj", subject,
    )  # fmt: skip
    extensions = directory / f"{name}.ext"
    usage = "serverAuth" if server_sans else "clientAuth"
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if server_sans:
        lines.append("subjectAltName=" + ",".join(server_sans))
    extensions.write_text("\n".join(lines) + "\n")
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
        "-days", _VALIDITY_DAYS, "-sha256", "-extfile", extensions, "-out", pair.cert,
    )  # fmt: skip
    csr.unlink()
    extensions.unlink()
    return pair


def create_ca(directory: Path, common_name: str) -> KeyPair:
    """A self-signed CA in `directory` (ca.crt, ca.key), e.g. for a TLS test server."""
    directory.mkdir(parents=True, exist_ok=True)
    return _self_signed_ca(directory, common_name)


def _self_signed_ca(directory: Path, common_name: str) -> KeyPair:
    pair = KeyPair(directory / "ca.crt", directory / "ca.key")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", pair.key, "-out", pair.cert, "-days", _VALIDITY_DAYS, "-sha256",
        "-subj", f"/CN={common_name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    return pair


def _openssl(*args: str | Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{result.stderr}")

"""A throwaway CA and a server certificate whose SAN is one DNS name (and, when asked, IPs).

The database's certificate deliberately omits IP addresses, so connecting to `127.0.0.1` with
host-name verification fails just as connecting to an RDS instance by IP would. The
Kubernetes API stand-in's certificate names `127.0.0.1` too, as a cluster's API server
certificate names the address clients dial.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_SERVER_NAME = "localhost"
CA_BUNDLE_NAME = "global-bundle.pem"  # the name of the RDS CA bundle


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256 rather than RSA: same verification path, key generation in microseconds.
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, common_name: str = "temporal-bootstrap local CA") -> CertificateAuthority:
        key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_server_cert(
        self, dns_name: str = DEFAULT_SERVER_NAME, ip_addresses: Sequence[str] = ()
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = _key()
        names: list[x509.GeneralName] = [x509.DNSName(dns_name)]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert, key


@dataclass(frozen=True)
class TlsFiles:
    """PEM files on disk: what the database server and its clients are given."""

    server_name: str
    ca_path: Path  # the CA bundle clients trust (stands in for RDS's global-bundle.pem)
    cert_path: Path
    key_path: Path


def write_ca(path: Path, common_name: str = "temporal-bootstrap local CA") -> Path:
    """Write just a CA certificate (e.g. an unrelated CA to show verification failing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CertificateAuthority.generate(common_name).cert_pem)
    return path


def write_tls_files(directory: Path, server_name: str = DEFAULT_SERVER_NAME) -> TlsFiles:
    """Generate a fresh CA and a server certificate for `server_name` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.generate()
    cert, key = ca.issue_server_cert(server_name)
    files = TlsFiles(
        server_name=server_name,
        ca_path=directory / CA_BUNDLE_NAME,
        cert_path=directory / "server-cert.pem",
        key_path=directory / "server-key.pem",
    )
    files.ca_path.write_bytes(ca.cert_pem)
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_path.write_bytes(key_pem(key))
    os.chmod(files.key_path, 0o600)
    return files

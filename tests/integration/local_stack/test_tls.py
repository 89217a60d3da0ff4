from __future__ import annotations

from pathlib import Path

from cryptography import x509

from local_stack.tls import write_tls_files


def test_server_cert_san_is_only_the_dns_name(tmp_path: Path) -> None:
    files = write_tls_files(tmp_path, "localhost")
    cert = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == []
    cert.verify_directly_issued_by(ca)
    assert files.key_path.stat().st_mode & 0o077 == 0

"""Private Redis processes for fault tests: plain, TLS, replicas and sentinels on free ports.

The shared Redis on 6379 is never touched: each of these runs in the test's temporary
directory, keeps nothing on disk and is stopped by the test that started it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.smtp_server import free_port

__all__ = ["CertificateAuthority", "RedisProcess"]


@dataclass
class RedisProcess:
    """One ``redis-server`` (or sentinel) process; its output goes to a log file.

    ``persistent`` keeps the data in an append-only file written at every command, so the
    server can be stopped and started again (on the same port) with its data.
    """

    directory: Path
    arguments: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    sentinel: bool = False
    persistent: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Where the server writes its log."""
        return self.directory / f"redis-{self.port}.log"

    def start(self, ready_marker: str = "Ready to accept connections") -> RedisProcess:
        """Start the server and wait until its log says it is ready."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = ["redis-server"]
        if self.sentinel:
            config = self.directory / f"sentinel-{self.port}.conf"
            config.write_text("\n".join(self.arguments) + "\n")
            command += [str(config), "--sentinel", "--port", str(self.port)]
            ready_marker = "+monitor master"
        else:
            command += ["--port", str(self.port), *self.arguments]
        durability = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else []
        command += ["--save", "", "--appendonly", "no", *durability, "--dir", str(self.directory)]
        command += ["--logfile", str(self.log_path)]
        seen = len(self.log())  # a server started again appends to the same log
        self.process = subprocess.Popen(command, cwd=self.directory)
        deadline = time.monotonic() + 20
        while ready_marker not in self.log()[seen:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        """The server's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the server dies without a word, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Stop the server if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class CertificateAuthority:
    """A private CA that issues server certificates for chosen host names."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobs test CA")])
        now = dt.datetime.now(dt.UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.path = directory / "ca.pem"
        self.path.write_bytes(self._certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, host: str) -> tuple[Path, Path]:
        """A certificate for ``host`` (a DNS name or an IP address) and its key, as PEM files."""
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            alternative = x509.DNSName(host)
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        cert_path, key_path = self.directory / f"{host}.pem", self.directory / f"{host}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem(key))
        return cert_path, key_path

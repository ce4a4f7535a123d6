"""A grid-style test PKI made at test time with the `openssl` command: a CA directory in the
`/etc/grid-security/certificates` layout (`HASH.0`, `HASH.r0`), a host certificate for the grid
listener, personal certificates with grid DNs (repeated DC), and RFC 3820 proxies made by
`grid-proxy-init` (the real Globus tool) or, without it, by `openssl` as grid tools do.

Nothing here is committed: every run makes fresh keys.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mucura_server import MucuraServer, free_port

OPENSSL_CONFIG = """
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/issued
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 365
default_crl_days = 30
policy = policy_any
unique_subject = no
email_in_dn = no
x509_extensions = user_cert
crl_extensions = crl_ext
copy_extensions = none

[ policy_any ]
commonName = supplied

[ req ]
distinguished_name = req_dn
string_mask = utf8only

[ req_dn ]

[ ca_cert ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ user_cert ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ host_cert ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ proxy_cert ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
proxyCertInfo = critical, language:id-ppl-inheritAll

[ crl_ext ]
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Identity:
    """A certificate and its key as PEM files."""

    cert: Path
    key: Path
    subject: str


class GridPki:
    """One CA with its CA directory, under `root`."""

    def __init__(self, root: Path, ca_subject: str = "/DC=org/DC=mucura-test/CN=Mucura Test CA"):
        self.root = root
        self.ca_dir = root / "ca"
        self.certificates = root / "certificates"
        self.config = root / "openssl.cnf"
        self.ca_subject = ca_subject
        root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(OPENSSL_CONFIG)
        (self.ca_dir / "issued").mkdir(parents=True)
        (self.ca_dir / "index.txt").write_text("")
        (self.ca_dir / "serial").write_text("1000\n")
        (self.ca_dir / "crlnumber").write_text("1000\n")
        self.certificates.mkdir()
        self.openssl(self.ca_dir, "req", "-config", str(self.config), "-x509", "-newkey",
                     "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj",
                     ca_subject, "-days", "3650", "-sha256", "-extensions", "ca_cert")
        self.ca_cert = self.ca_dir / "ca.pem"
        self.publish()

    def openssl(self, cwd: Path, *args: str) -> str:
        """Runs openssl with the test configuration; raises with its stderr on failure."""
        completed = subprocess.run(
            ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
            env={"OPENSSL_CONF": str(self.config), "PATH": "/usr/bin:/bin"})
        if completed.returncode != 0:
            raise RuntimeError(f"openssl {args} failed: {completed.stderr}")
        return completed.stdout

    def publish(self) -> None:
        """Writes the CA certificate and a fresh CRL into the CA directory as HASH.0/HASH.r0."""
        subject_hash = self.openssl(self.ca_dir, "x509", "-in", "ca.pem", "-noout",
                                    "-subject_hash").strip()
        shutil.copy(self.ca_cert, self.certificates / f"{subject_hash}.0")
        self.openssl(self.ca_dir, "ca", "-config", str(self.config), "-gencrl", "-out", "crl.pem")
        shutil.copy(self.ca_dir / "crl.pem", self.certificates / f"{subject_hash}.r0")

    def issue(self, name: str, subject: str, extensions: str, days: int = 365) -> Identity:
        """A certificate signed by the CA (`openssl ca`, recorded in its database)."""
        key = self.root / f"{name}.key"
        csr = self.root / f"{name}.csr"
        cert = self.root / f"{name}.pem"
        self.openssl(self.root, "req", "-config", str(self.config), "-new", "-newkey", "rsa:2048",
                     "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subject)
        # -preserveDN keeps the grid DN (DC, OU, CN) as requested, in order.
        self.openssl(self.ca_dir, "ca", "-config", str(self.config), "-batch", "-notext",
                     "-preserveDN", "-in", str(csr), "-out", str(cert), "-extensions", extensions,
                     "-days", str(days))
        key.chmod(0o600)
        return Identity(cert, key, subject)

    def host(self) -> Identity:
        """The grid listener's certificate (localhost, 127.0.0.1)."""
        return self.issue("host", "/DC=org/DC=mucura-test/CN=localhost", "host_cert")

    def user(self, name: str, common_name: str) -> Identity:
        """A personal certificate with a grid DN."""
        subject = f"/DC=org/DC=mucura-test/OU=People/CN={common_name}"
        return self.issue(name, subject, "user_cert")

    def revoke(self, identity: Identity) -> None:
        """Revokes a certificate and republishes the CRL."""
        self.openssl(self.ca_dir, "ca", "-config", str(self.config), "-revoke", str(identity.cert))
        self.publish()

    def voms_proxy(self, user: Identity, name: str) -> Path:
        """A plain RFC 3820 proxy made by `voms-proxy-init` (no VOMS server: no attributes)."""
        out = self.root / f"{name}.voms.pem"
        completed = subprocess.run(
            ["voms-proxy-init", "--cert", str(user.cert), "--key", str(user.key), "--out",
             str(out), "--valid", "1:00", "-q"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.root),
                 "X509_CERT_DIR": str(self.certificates)})
        if completed.returncode != 0 or not out.exists():
            raise RuntimeError(f"voms-proxy-init failed: {completed.stderr}{completed.stdout}")
        return out

    def proxy(self, user: Identity, name: str, hours: int = 12, limited: bool = False) -> Path:
        """A proxy file (proxy cert, its key, the user cert) for `user`: made by
        `grid-proxy-init` when installed, else by openssl the way it does."""
        out = self.root / f"{name}.proxy.pem"
        tool = shutil.which("grid-proxy-init")
        if tool:
            args = [tool, "-cert", str(user.cert), "-key", str(user.key), "-out", str(out),
                    "-valid", f"{hours}:00", "-q"]
            if limited:
                args.append("-limited")
            completed = subprocess.run(args, capture_output=True, text=True, timeout=60,
                                       stdin=subprocess.DEVNULL)
            if completed.returncode != 0:
                raise RuntimeError(f"grid-proxy-init failed: {completed.stderr}{completed.stdout}")
            return out
        if limited:
            raise RuntimeError("limited proxies need grid-proxy-init")
        key = self.root / f"{name}.proxy.key"
        csr = self.root / f"{name}.proxy.csr"
        cert = self.root / f"{name}.proxy.crt"
        serial = str(abs(hash(name)) % 10**9)
        self.openssl(self.root, "req", "-config", str(self.config), "-new", "-newkey", "rsa:2048",
                     "-nodes", "-keyout", str(key), "-out", str(csr), "-subj",
                     f"{user.subject}/CN={serial}")
        self.openssl(self.root, "x509", "-req", "-in", str(csr), "-CA", str(user.cert), "-CAkey",
                     str(user.key), "-set_serial", serial, "-days", "1", "-extfile",
                     str(self.config), "-extensions", "proxy_cert", "-out", str(cert))
        out.write_text(cert.read_text() + key.read_text() + user.cert.read_text())
        out.chmod(0o600)
        return out


@dataclass(frozen=True)
class GridNode:
    """A single node with a grid listener, and the PKI it trusts."""

    server: MucuraServer
    pki: GridPki
    grid_url: str


@contextlib.contextmanager
def grid_node(binary: Path, work: Path, *extra_args: str) -> Iterator[GridNode]:
    """Starts a node whose grid listener trusts a fresh PKI under `work`; stops it after."""
    pki = GridPki(work / "pki")
    host = pki.host()
    grid_port = free_port()
    server = MucuraServer(work / "node", binary, extra_args=[
        "--grid-listen", f"127.0.0.1:{grid_port}",
        "--x509-ca-dir", str(pki.certificates),
        "--grid-cert", str(host.cert),
        "--grid-key", str(host.key),
        *extra_args,
    ])
    server.start()
    try:
        yield GridNode(server, pki, f"https://localhost:{grid_port}")
    finally:
        server.stop()

"""The lab's PKI, made with openssl: one lab CA and one server certificate for every lab name and DC IP,
plus the certificates the vantage must refuse (the censor's MITM CA, a self-signed one)."""

from __future__ import annotations

from pathlib import Path

from tests.lab.addresses import ALL_NAMES, SITE_BY_KEY, SITES
from tests.lab.procs import _run

# ---------------------------------------------------------------------------------------------
# PKI: one lab CA and one server certificate carrying every lab name and the DC IPs.


def make_pki(d: Path) -> None:
    d = Path(d)
    if not ((d / "server.pem").is_file() and (d / "ca.pem").is_file()):
        _make_lab_ca(d)
    _make_bad_certs(d)


def _ossl(*a: str) -> None:
    _run(["openssl", *a], timeout=30)


def _make_bad_certs(d: Path) -> None:
    """Certificates the vantage must NOT accept, for facebook's names:

    - ``mitm``: issued by the censor's own CA (``mitm-ca``, "ISP Security Gateway CA"), which the
      vantage does not trust: what a TLS-intercepting censor presents;
    - ``selfsigned``: the site's own self-signed certificate (a misconfigured server)."""
    sans = ",".join(f"DNS:{n}" for n in SITE_BY_KEY["facebook"].names)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    if not (d / "mitm.pem").is_file():
        _ossl("req", "-x509", *ec, "-keyout", str(d / "mitm-ca.key"), "-out", str(d / "mitm-ca.pem"),
              "-days", "30", "-subj", "/O=ISP Security Gateway/CN=ISP Security Gateway CA",
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        ext = d / "mitm.ext"
        ext.write_text(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        _ossl("req", *ec, "-keyout", str(d / "mitm.key"), "-out", str(d / "mitm.csr"), "-subj", "/CN=www.facebook.lab")
        _ossl("x509", "-req", "-in", str(d / "mitm.csr"), "-CA", str(d / "mitm-ca.pem"), "-CAkey",
              str(d / "mitm-ca.key"), "-CAcreateserial", "-out", str(d / "mitm.pem"), "-days", "30",
              "-extfile", str(ext))
    if not (d / "selfsigned.pem").is_file():
        _ossl("req", "-x509", *ec, "-keyout", str(d / "selfsigned.key"), "-out", str(d / "selfsigned.pem"),
              "-days", "30", "-subj", "/CN=www.facebook.lab", "-addext", f"subjectAltName={sans}")


def _make_lab_ca(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    ossl = _ossl
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "30",
         "-subj", "/CN=reachprobe lab CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sans = ",".join([f"DNS:{n}" for n in ALL_NAMES] + ["DNS:*.lab"]
                    + [f"IP:{ip}" for s in SITES for ip in s.ips])
    ext = d / "server.ext"
    ext.write_text(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"), "-subj", "/CN=www.facebook.lab")
    ossl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
         "-CAcreateserial", "-out", str(d / "server.pem"), "-days", "30", "-extfile", str(ext))

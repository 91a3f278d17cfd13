"""The default fingerprint set (OONI's and Citizen Lab's lists, shipped), both CSV formats, header and
redirect-target matching, scope/confirmed, and `reachprobe fingerprints update`."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.fingerprints import FingerprintDB
import probe.fingerprints as fingerprints
from probe.fingerprints import sources
from tests.unit.test_fingerprints import BLOCKPAGES, FP, needs_shared


def _page(name: str) -> str:
    return (BLOCKPAGES / name).read_text(encoding="utf-8", errors="replace")


@needs_shared
def test_default_set_recognises_real_blockpages_of_many_countries(capsys):
    db = FingerprintDB.default()
    pages = sorted(BLOCKPAGES.glob("*.html"))
    matched = {p.name: db.match_body(_page(p.name)) for p in pages}
    recognised = [n for n, m in matched.items() if m]
    confirmed = [n for n, m in matched.items() if any(x["confirmed"] for x in m)]
    with capsys.disabled():
        print(f"\n[fingerprints] default set recognises {len(recognised)}/{len(pages)} captured blockpages "
              f"by body alone, {len(confirmed)} with a national/ISP (confirmed) match")
    assert len(recognised) / len(pages) >= 0.9
    # Real ISP pages from other countries than Iran: matched, with the scope and "confirmed" exposed.
    for name, cc in (("isp_gb_bt_optin_block.html", "GB"), ("isp_id_telkomsel_block.html", "ID"),
                     ("isp_ru_megafon_block.html", "RU"), ("isp_by_beltelecom_block.html", "BY")):
        hits = [m for m in matched[name] if m["confirmed"]]
        assert hits, (name, matched[name])
        assert all(m["scope"] in ("nat", "isp") and m["location"] == "body" for m in hits)
        assert any(cc in m["countries"] for m in hits), hits


def test_default_is_cached_and_copies_are_independent():
    t = time.perf_counter()
    a = FingerprintDB.default()
    b = FingerprintDB.default()
    assert len(a) > 1500 and a is not b
    assert time.perf_counter() - t < 5  # parsed and compiled once per process, not per call
    before = len(FingerprintDB.default())
    a.extend(sources.read_ooni_csv(sources.SHIPPED_DIR / "ooni_fingerprints_dns.csv"))
    from probe.fingerprints import Fingerprint

    a.add(Fingerprint("x.test", "isp", "body", "contains", "zz-only-in-a-copy-zz"))
    assert a.match_body("zz-only-in-a-copy-zz") and not b.match_body("zz-only-in-a-copy-zz")
    assert len(FingerprintDB.default()) == before


def test_innocent_access_denied_pages_do_not_match():
    db = FingerprintDB.default()
    akamai = ("<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n \n"
              "You don't have permission to access \"http&#58;&#47;&#47;www&#46;example&#46;com&#47;\" on this "
              "server.<P>\nReference&#32;&#35;18&#46;6f64d517&#46;1700000000&#46;1a2b3c4d\n</BODY>\n</HTML>")
    plain = ("<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1>"
             "<p>You don't have permission to access this resource.</p></body></html>")
    apache = ("<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1><p>You don't have "
              "permission to access /admin on this server.</p></body></html>")
    for body in (akamai, plain, apache):
        assert [m for m in db.match_body(body) if m["scope"] != "vbw"] == [], body
        assert not any(m["confirmed"] for m in db.match_body(body))


def test_generic_title_pattern_is_weak_with_its_listed_scope():
    db = FingerprintDB.default()
    hits = db.match_body("<title>Access Denied</title> Your request was blocked by policy")
    assert all(m["scope"] == "vbw" and not m["confirmed"] for m in hits)


@needs_shared
def test_citizenlab_http_and_dns_csv_load():
    db = FingerprintDB.from_citizenlab_csv(FP / "citizenlab" / "dns.csv", FP / "citizenlab" / "http.csv",
                                           include_defaults=False)
    assert len(db.body) > 150 and db.headers["*"] and len(db.dns) > 100
    # name-less header patterns are matched against "Name: value" lines
    thai = db.match_headers({"Location": "http://103.208.24.21/blocked"})
    assert thai and thai[0]["location"] == "header.location" and thai[0]["confirmed"]
    assert thai[0]["countries"] == ["TH"] and thai[0]["source"] == "citizenlab"
    assert db.match_headers({"server": "Olfeo"})[0]["scope"] == "prod"
    assert db.match_location("http://block.rt.ru/?x")[0]["scope"] == "isp"
    assert db.match_dns_answer("10.10.34.34")["scope"] == "nat"
    # a national page in Citizen Lab's own list, through its http.csv alone
    assert any(m["confirmed"] for m in db.match_body(_page("nat_ir.html")))
    assert db.match_body("<html>an ordinary page</html>") == []


class _Redirector(http.server.BaseHTTPRequestHandler):
    # Checkpoint's URL-filter redirect, to a loopback port where nothing listens.
    target = "http://127.0.0.1:9/UserCheck/PortalMain?IID=abc&origUrl=x"

    def do_GET(self):  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_redirect_target_matched_even_when_unreachable():
    """A redirect into a censor's host is evidence even when that host never answers."""
    import asyncio

    from probe.measure import http as mhttp
    from probe.measure import tls as mtls

    db = FingerprintDB.default()
    target = _Redirector.target
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    async def go():
        async with mhttp.make_client(mtls.verifying_context(None), timeout=5) as client:
            return await mhttp.fetch(client, f"http://127.0.0.1:{srv.server_address[1]}/go", timeout=5,
                                     attempt=1, t_origin=time.monotonic(), inspect_location=db.match_location)

    try:
        rec = asyncio.run(go())
    finally:
        srv.shutdown()
        srv.server_close()
    assert rec.redirects and rec.redirects[0].location == target
    assert rec.failure is not None  # the blockpage host was never reached
    names = {m["name"] for m in rec.fingerprints if m["location"] == "header.location"}
    assert "cl.prod_checkpoint_urlfilter_forward" in names


# ------------------------------------------------------------------------------------ update
@pytest.fixture
def cfg_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REACHPROBE_CONFIG_DIR", str(tmp_path / "cfg"))
    fingerprints.clear_cache()
    yield tmp_path / "cfg"
    fingerprints.clear_cache()


def _cli(*args):
    from probe.cli import main

    return CliRunner().invoke(main, list(args))


def _mini_lists(d: Path, marker: str) -> None:
    (d / "citizenlab").mkdir(parents=True)
    (d / "ooni_fingerprints_http.csv").write_text(
        "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n"
        f"t.isp_1,isp,,body,contains,{marker},5,XX,test,,\n", encoding="utf-8")
    (d / "citizenlab" / "http.csv").write_text(
        "name,common_name,pattern,location_found,exp_url,confidence_no_fp,source,scope,expected_countries,notes\n"
        f"t_cl_1,Test,Location: http://{marker}.example,header,,10,[],isp,['XX'],\n", encoding="utf-8")


def test_update_from_directory_then_fallback(cfg_dir, tmp_path):
    src = tmp_path / "lists"
    _mini_lists(src, "zzmarker1")
    r = _cli("fingerprints", "update", "--from", str(src))
    assert r.exit_code == 0, r.output
    assert (cfg_dir / "fingerprints" / "ooni_fingerprints_http.csv").is_file()
    db = FingerprintDB.default()
    assert db.match_body("a zzmarker1 page")[0]["countries"] == ["XX"]
    assert db.match_location("http://zzmarker1.example/")
    # the files not updated still come from the shipped copies
    assert db.match_dns_answer("10.10.34.35") and str(sources.SHIPPED_DIR) in " ".join(db.sources)
    # a broken user copy falls back to the shipped file rather than leaving nothing
    (cfg_dir / "fingerprints" / "ooni_fingerprints_http.csv").write_text("garbage\n")
    fingerprints.clear_cache()
    db = FingerprintDB.default()
    assert not db.match_body("a zzmarker1 page")
    assert any("ooni_fingerprints_http.csv" in s and str(sources.SHIPPED_DIR) in s for s in db.sources)


def test_update_refuses_a_file_that_does_not_parse(cfg_dir, tmp_path):
    src = tmp_path / "lists"
    _mini_lists(src, "zzmarker2")
    assert _cli("fingerprints", "update", "--from", str(src)).exit_code == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ooni_fingerprints_http.csv").write_text("what,ever\n1,2\n")
    r = _cli("fingerprints", "update", "--from", str(bad))
    assert r.exit_code != 0 and "does not parse" in r.output
    fingerprints.clear_cache()
    assert FingerprintDB.default().match_body("zzmarker2")  # the good copy stayed
    assert _cli("fingerprints", "update", "--from", str(tmp_path / "nope")).exit_code == 2


def test_update_from_loopback_url(cfg_dir, tmp_path):
    src = tmp_path / "www"
    _mini_lists(src, "zzmarker3")
    handler = functools.partial(_QuietHandler, directory=str(src))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        r = _cli("fingerprints", "update", "--from", f"http://127.0.0.1:{srv.server_address[1]}/", "--timeout", "10")
    finally:
        srv.shutdown()
        srv.server_close()
    # two of the four files exist there: installed; the other two reported, shipped copies stay
    assert (cfg_dir / "fingerprints" / "citizenlab_http.csv").is_file(), r.output
    assert "citizenlab_dns.csv: not found" in r.output
    assert FingerprintDB.default().match_body("zzmarker3")
    show = _cli("fingerprints", "show")
    assert show.exit_code == 0 and "body" in show.output


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D401 - keep test output clean
        pass


@needs_shared
def test_fingerprints_option_loads_both_formats(tmp_path):
    """`run --fingerprints DIR` with Citizen Lab's files (the layout that "could not be loaded at all")."""
    db = fingerprints.load_extra_dir(FP)  # ooni_fingerprints_*.csv and citizenlab/{dns,http}.csv
    assert sum("citizenlab/http.csv" in s for s in db.sources) == 1
    assert sum("ooni_fingerprints_http.csv" in s for s in db.sources) >= 1
    db = fingerprints.load_extra_dir(FP / "citizenlab")  # dns.csv / http.csv on their own
    assert any(s.endswith("citizenlab/http.csv") for s in db.sources)
    with pytest.raises(ValueError, match="none of"):
        fingerprints.load_extra_dir(tmp_path)
    from probe.cli import main

    from tests.unit.daemon_harness import write_targets

    targets = write_targets(tmp_path / "t.yaml", {"facebook": [{"name": "fb", "kind": "endpoint",
                                                                "endpoints": ["127.0.0.1:9"]}]}, [])
    r = CliRunner().invoke(main, ["run", "--yes", "--targets", str(targets), "--fingerprints", str(tmp_path)])
    assert r.exit_code == 2 and "--fingerprints" in r.output and "none of" in r.output, r.output

"""targets.yaml loading: every bad input names file, line and field; good input becomes Target records;
the shipped targets.yaml is complete. No network: nothing here resolves or connects."""

from __future__ import annotations

import ipaddress
import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.targets import (
    CANARY_PLATFORM,
    Endpoint,
    TargetsError,
    check_url,
    load_targets,
    loads,
    parse_endpoint,
    parse_prefix,
)

REPO = Path(__file__).parents[2]
SHIPPED = REPO / "targets.yaml"


def shared_dir() -> Path | None:
    env = os.environ.get("REACHPROBE_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write(tmp_path: Path, text: str, name: str = "targets.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Bad input: (id, file text, line, field, part of the message)
# ---------------------------------------------------------------------------------------------

WEB = """
platforms:
  facebook:
    targets:
      - name: fb
        kind: web
        urls: ["https://www.facebook.com/"]
"""

BAD_CASES = [
    ("yaml-unclosed-flow", "platforms:\n  facebook:\n    targets: [\n", 4, None, "invalid YAML"),
    ("yaml-tab", "platforms:\n\tfacebook: {}\n", 2, None, "invalid YAML: found character '\\t'"),
    ("yaml-bad-indent", "platforms:\n  facebook:\n    asns: [1]\n   targets: []\n", 4, None, "invalid YAML"),
    ("yaml-duplicate-key", "platforms:\n  twitter: {}\n  twitter: {}\n", 3, None,
     "duplicate key 'twitter' (first at line 2)"),
    ("yaml-two-documents", "canaries: []\n---\ncanaries: []\n", 2, None, "expected a single document"),
    ("empty", "", None, None, "the file is empty"),
    ("only-comments", "# nothing here\n\n", None, None, "the file is empty"),
    ("top-level-list", "- a\n- b\n", 1, None, "the top level must be a mapping"),
    ("top-level-scalar", "hello\n", 1, None, "the top level must be a mapping"),
    ("no-targets", "version: 1\n", 1, None, "defines no targets"),
    ("version-2", "version: 2\n" + doc(WEB), 1, "version", "input should be 1, got 2"),
    ("unknown-top-level-field", "targets: []\n", 1, "targets",
     "unknown field 'targets'; targets go under platforms.<platform>.targets (allowed: version, platforms, canaries)"),
    ("platforms-is-list", "platforms:\n  - facebook\n", 1, "platforms", "should be a mapping"),
    ("platform-is-null", "platforms:\n  facebook:\n", 2, "platforms.facebook", "got nothing (null)"),
    ("unknown-platform", "platforms:\n  facebok: {}\n", 2, "platforms.facebok",
     "unknown platform 'facebok'; did you mean 'facebook'? known platforms: facebook, twitter"),
    ("canary-as-platform", "platforms:\n  canary: {}\n", 2, "platforms.canary",
     "canaries go in the top-level 'canaries' list"),
    ("unknown-platform-field", "platforms:\n  facebook:\n    asn: [32934]\n", 3, "platforms.facebook.asn",
     "unknown field 'asn'; did you mean 'asns'?"),
    ("unknown-target-field", """
        platforms:
          facebook:
            targets:
              - name: fb
                kind: web
                ulrs: ["https://www.facebook.com/"]
        """, 6, "platforms.facebook.targets[0].ulrs", "unknown field 'ulrs'; did you mean 'urls'?"),
    ("kind-wrong", """
        platforms:
          facebook:
            targets:
              - name: fb
                kind: web
                urls: ["https://www.facebook.com/"]
              - name: fb2
                kind: website
                urls: ["https://m.facebook.com/"]
        """, 8, "platforms.facebook.targets[1].kind", "input should be 'web' or 'endpoint', got 'website'"),
    ("kind-missing", """
        platforms:
          facebook:
            targets:
              - name: fb
                urls: ["https://www.facebook.com/"]
        """, 4, "platforms.facebook.targets[0].kind", "required field is missing"),
    ("kind-on-canary", """
        canaries:
          - name: c
            kind: canary
            scope: domestic
            urls: ["https://www.digikala.com/"]
        """, 3, "canaries[0].kind", "unknown field 'kind'"),
    ("name-is-bool", """
        platforms:
          facebook:
            targets:
              - name: yes
                kind: web
                urls: ["https://www.facebook.com/"]
        """, 4, "platforms.facebook.targets[0].name", "got true (a yes/no value; quote it"),
    ("name-with-space", """
        platforms:
          facebook:
            targets:
              - name: face book
                kind: web
                urls: ["https://www.facebook.com/"]
        """, 4, "platforms.facebook.targets[0].name", "must start with a letter or digit"),
    ("urls-is-string", """
        platforms:
          facebook:
            targets:
              - name: fb
                kind: web
                urls: https://www.facebook.com/
        """, 6, "platforms.facebook.targets[0].urls", "should be a list"),
    ("asn-out-of-range", "platforms:\n  facebook:\n    asns: [0]\n" + doc(WEB)[len("platforms:\n  facebook:\n"):],
     3, "platforms.facebook.asns[0]", "AS number 0 is out of range"),
    ("asn-text", "platforms:\n  facebook:\n    asns: [facebook]\n", 3, "platforms.facebook.asns[0]",
     "input should be a valid integer, got 'facebook'"),
    ("duplicate-name", """
        platforms:
          facebook:
            targets:
              - name: same
                kind: web
                urls: ["https://www.facebook.com/"]
          twitter:
            targets:
              - name: same
                kind: web
                urls: ["https://twitter.com/"]
        """, 9, "platforms.twitter.targets[0].name",
     "duplicate target name 'same': also defined at line 4 (platforms.facebook.targets[0].name)"),
    ("duplicate-name-canary", doc(WEB) + doc("""
        canaries:
          - name: fb
            scope: international
            urls: ["https://www.example.org/"]
        """), 8, "canaries[0].name", "also defined at line 4"),
    ("web-without-urls", """
        platforms:
          facebook:
            targets:
              - name: fb
                kind: web
        """, 4, "platforms.facebook.targets[0].urls", "a web target needs at least one URL"),
    ("web-with-empty-urls", """
        platforms:
          facebook:
            targets:
              - name: fb
                kind: web
                urls: []
        """, 6, "platforms.facebook.targets[0].urls", "a web target needs at least one URL"),
    ("endpoint-without-endpoints", """
        platforms:
          telegram:
            targets:
              - name: dc1
                kind: endpoint
                urls: ["https://telegram.org/"]
        """, 4, "platforms.telegram.targets[0].endpoints", "an endpoint target needs at least one"),
    ("canary-without-scope", """
        canaries:
          - name: c
            urls: ["https://www.example.org/"]
        """, 2, "canaries[0].scope", "required field is missing"),
    ("canary-bad-scope", """
        canaries:
          - name: c
            scope: national
            urls: ["https://www.example.org/"]
        """, 3, "canaries[0].scope", "input should be 'domestic' or 'international'"),
    ("canary-nothing-to-test", """
        canaries:
          - name: c
            scope: domestic
        """, 2, "canaries[0].urls", "a canary needs at least one URL or endpoint"),
    ("dns-is-ip", """
        platforms:
          facebook:
            targets:
              - name: fb
                kind: web
                urls: ["https://www.facebook.com/"]
                dns: [www.facebook.com, 157.240.1.35]
        """, 7, "platforms.facebook.targets[0].dns[1]", "is an IP address, not a name to resolve"),
]

URL_CASES = [
    ("ftp://example.org/", "must start with http:// or https://"),
    ("www.facebook.com", "must start with http:// or https://"),
    ("https:///path", "has no host"),
    ("https://www.facebook.com:99999/", "is malformed"),
    ("https://www.facebook.com:0/", "port 0"),
    ("https://www.face book.com/", "contains whitespace"),
    ("https://user:secret@www.facebook.com/", "must not contain user:password@"),
    ("https://-bad-.com/", "invalid label '-bad-'"),
    ("https://300.1.1.1/", "neither a valid IP address nor a host name"),
]

ENDPOINT_CASES = [
    ("149.154.175.50", "must look like host:port"),
    ("149.154.175.50:0", "port 0 (must be 1-65535)"),
    ("149.154.175.50:65536", "port 65536 (must be 1-65535)"),
    ("149.154.175.50:https", "invalid port 'https'"),
    ("149.154.175.50:", "invalid port ''"),
    ("2001:b28:f23d:f001::a:443", "write IPv6 endpoints with brackets"),
    ("[2001:b28:f23d:f001::a]443", "must look like [2001:db8::1]:443"),
    ("[telegram.org]:443", "is not an IPv6 address"),
    (":443", "must look like host:port"),
    ("bad_host!:443", "invalid label"),
]

PREFIX_CASES = [
    ("149.154.160.1/20", "has host bits set"),
    ("149.154.160.0/33", "not a valid CIDR prefix"),
    ("not-a-prefix/8", "not a valid CIDR prefix"),
    ("149.154.160.0", "must be in CIDR form"),
]


def _endpoint_doc(value: str) -> str:
    return doc(f"""
        platforms:
          telegram:
            targets:
              - name: dc
                kind: endpoint
                endpoints:
                  - 149.154.175.50:443
                  - "{value}"
        """)


def _url_doc(value: str) -> str:
    return doc(f"""
        platforms:
          facebook:
            targets:
              - name: fb
                kind: web
                urls:
                  - https://www.facebook.com/
                  - "{value}"
        """)


def _prefix_doc(value: str) -> str:
    return doc(f"""
        platforms:
          telegram:
            prefixes: ["91.108.4.0/22", "{value}"]
            targets:
              - name: dc
                kind: endpoint
                endpoints: ["149.154.175.50:443"]
        """)


ALL_BAD = (
    [(cid, doc(text), line, fld, msg) for cid, text, line, fld, msg in BAD_CASES]
    + [(f"url {u}", _url_doc(u), 8, "platforms.facebook.targets[0].urls[1]", m) for u, m in URL_CASES]
    + [(f"endpoint {e}", _endpoint_doc(e), 8, "platforms.telegram.targets[0].endpoints[1]", m)
       for e, m in ENDPOINT_CASES]
    + [(f"prefix {p}", _prefix_doc(p), 3, "platforms.telegram.prefixes[1]", m) for p, m in PREFIX_CASES]
)


@pytest.mark.parametrize(("text", "line", "field", "message"), [c[1:] for c in ALL_BAD], ids=[c[0] for c in ALL_BAD])
def test_bad_input_names_file_line_and_field(tmp_path, text, line, field, message):
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TargetsError) as info:
        load_targets(path)
    err = info.value
    assert (err.line, err.field) == (line, field), str(err)
    assert message in err.message
    where = f"{path}:{line}:" if line else f"{path}:"
    assert str(err).startswith(f"{where} {field}: " if field else f"{where} "), str(err)


def test_message_format_matches_the_documented_example(tmp_path):
    path = write(tmp_path, """
        platforms:
          facebook:
            targets:
              - name: fb
                kind: web
                urls: ["https://www.facebook.com/"]
              - name: fb2
                kind: website
                urls: ["https://m.facebook.com/"]
        """)
    with pytest.raises(TargetsError) as info:
        load_targets(path)
    assert str(info.value) == (
        f"{path}:8: platforms.facebook.targets[1].kind: input should be 'web' or 'endpoint', got 'website'"
    )


def test_several_problems_report_the_earliest_and_keep_the_rest(tmp_path):
    path = write(tmp_path, """
        platforms:
          facebook:
            targets:
              - name: fb
                kind: web
                urls: ["ftp://x.org/"]
              - name: fb2
                kind: nope
                urls: ["https://m.facebook.com/"]
        """)
    with pytest.raises(TargetsError) as info:
        load_targets(path)
    err = info.value
    assert err.line == 6 and err.field == "platforms.facebook.targets[0].urls[0]"
    assert str(err).endswith("(+1 more problem)")
    assert [e.line for e in err.more] == [8]
    messages = err.all_messages()
    assert len(messages) == 2 and "more problem" not in messages[0]


@pytest.mark.parametrize("make", [
    lambda p: p,  # missing
    lambda p: (p.mkdir(), p)[1],  # a directory
])
def test_unreadable_paths(tmp_path, make):
    path = make(tmp_path / "targets.yaml")
    with pytest.raises(TargetsError) as info:
        load_targets(path)
    assert info.value.line is None and info.value.field is None
    assert str(info.value).startswith(f"{path}: ")


def test_missing_file_says_so(tmp_path):
    with pytest.raises(TargetsError, match=r"targets\.yaml: no such file$"):
        load_targets(tmp_path / "targets.yaml")


def test_permission_denied(tmp_path, monkeypatch):
    path = write(tmp_path, WEB)

    def denied(p):  # chmod 0 would not stop root, who runs these tests in containers
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr("probe.targets.load.read_regular", lambda p, n: denied(p))
    with pytest.raises(TargetsError, match=r"targets\.yaml: cannot read the file: permission denied$"):
        load_targets(path)


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\n")
    with pytest.raises(TargetsError) as info:
        load_targets(path)
    assert info.value.line == 2 and "not UTF-8" in info.value.message


# ---------------------------------------------------------------------------------------------
# Good input
# ---------------------------------------------------------------------------------------------

GOOD = """
version: 1
platforms:
  facebook:
    asns: [32934, AS32934]
    prefixes: ["31.13.24.0/21", "2a03:2880::/32"]
    targets:
      - name: fb-web
        kind: web
        urls: ["https://www.facebook.com/", "https://m.facebook.com/x", "http://www.facebook.com/"]
      - name: fb-endpoints
        kind: endpoint
        endpoints: ["b-api.facebook.com:443", "[2A03:2880:F0FC::1]:443", "157.240.1.35:80"]
      - name: fb-cdn
        kind: web
        urls: ["https://static.xx.fbcdn.net/robots.txt"]
        dns: []
        tls_name: static.xx.fbcdn.net
        asns: []
        prefixes: ["157.240.0.0/17"]
canaries:
  - name: canary-intl
    scope: international
    urls: ["https://www.example.org/"]
  - name: canary-home
    scope: domestic
    endpoints: ["www.digikala.com:443"]
"""


def test_good_file_becomes_targets(tmp_path):
    ts = load_targets(write(tmp_path, GOOD))
    assert [t.name for t in ts.targets] == ["fb-web", "fb-endpoints", "fb-cdn", "canary-intl", "canary-home"]
    web, endpoint, cdn, intl, home = ts.targets

    assert (web.platform, web.kind, web.line) == ("facebook", "web", 7)
    assert web.dns_names == ("www.facebook.com", "m.facebook.com")  # unique, in order
    assert web.expected_asns == (32934, 32934)
    assert web.expected_prefixes == (ipaddress.ip_network("31.13.24.0/21"), ipaddress.ip_network("2a03:2880::/32"))
    assert web.scope is None and web.tls_name is None and not web.is_canary

    assert endpoint.endpoints == (Endpoint("b-api.facebook.com", 443), Endpoint("2a03:2880:f0fc::1", 443),
                                  Endpoint("157.240.1.35", 80))
    assert endpoint.dns_names == ("b-api.facebook.com",)  # IP literals are not resolved
    assert endpoint.line == 10

    assert cdn.dns_names == () and cdn.tls_name == "static.xx.fbcdn.net"
    assert cdn.expected_asns == () and cdn.expected_prefixes == (ipaddress.ip_network("157.240.0.0/17"),)

    assert (intl.platform, intl.kind, intl.scope, intl.line) == (CANARY_PLATFORM, "canary", "international", 21)
    assert intl.is_canary and intl.expected_asns == ()
    assert (home.scope, home.dns_names) == ("domestic", ("www.digikala.com",))
    assert ts.canaries == [intl, home]
    assert ts.platforms() == ["canary", "facebook"]


def test_to_dict_is_json_safe(tmp_path):
    import json

    ts = load_targets(write(tmp_path, GOOD))
    d = ts.targets[1].to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["endpoints"] == ["b-api.facebook.com:443", "[2a03:2880:f0fc::1]:443", "157.240.1.35:80"]
    assert d["expected_prefixes"] == ["31.13.24.0/21", "2a03:2880::/32"]


def test_anchors_merge_keys_and_bom_are_accepted(tmp_path):
    text = "\ufeff" + doc("""
        platforms:
          facebook:
            targets:
              - &base
                name: a
                kind: web
                urls: ["https://www.facebook.com/"]
              - <<: *base
                name: b
        """)
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    ts = load_targets(path)
    assert [(t.name, t.urls) for t in ts.targets] == [
        ("a", ("https://www.facebook.com/",)),
        ("b", ("https://www.facebook.com/",)),
    ]


def test_loads_uses_the_given_name_in_messages():
    with pytest.raises(TargetsError, match=r"^<generated>:1: version: "):
        loads("version: 3\n", "<generated>")


# ---------------------------------------------------------------------------------------------
# Value parsers
# ---------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(ip=st.ip_addresses(), port=st.integers(1, 65535))
def test_endpoint_round_trips(ip, port):
    ep = Endpoint(str(ip), port)
    assert parse_endpoint(str(ep)) == ep


@settings(max_examples=60, deadline=None)
@given(port=st.integers().filter(lambda p: not 1 <= p <= 65535))
def test_endpoint_rejects_out_of_range_ports(port):
    with pytest.raises(ValueError):
        parse_endpoint(f"149.154.175.50:{port}")


def test_value_parsers_accept_real_values():
    assert check_url("https://fa.wikipedia.org/wiki/%D8%A7") == "https://fa.wikipedia.org/wiki/%D8%A7"
    assert check_url("http://[2001:67c:4e8::1]:8080/") == "http://[2001:67c:4e8::1]:8080/"
    assert check_url("https://ویکی.example/")  # internationalised names are checked as punycode
    assert parse_endpoint("E1.WhatsApp.net:5222") == Endpoint("e1.whatsapp.net", 5222)
    assert parse_prefix("2001:b28:f23d::/48") == ipaddress.ip_network("2001:b28:f23d::/48")

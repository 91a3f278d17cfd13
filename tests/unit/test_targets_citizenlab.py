"""Citizen Lab test-list import: platform mapping, names, de-duplication, malformed rows, real lists."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from probe.citizenlab import (
    DEFAULT_PLATFORM_MAP,
    CitizenLabError,
    dump_targets_yaml,
    import_citizenlab,
    platform_for,
    read_citizenlab,
)
from probe.targets import load_targets
from probe.targets import loads

HEADER = "url,category_code,category_description,date_added,source,notes\n"


def shared_dir() -> Path | None:
    env = os.environ.get("REACHPROBE_SHARED")
    path = Path(env) if env else Path(__file__).parents[2].parent / "shared"
    return path if path.is_dir() else None


def write_csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "list.csv"
    path.write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.mark.parametrize(("host", "platform"), [
    ("www.facebook.com", "facebook"),
    ("facebook.com", "facebook"),
    ("scontent.xx.fbcdn.net", "facebook"),
    ("x.com", "twitter"),
    ("api.x.com", "twitter"),
    ("edx.com", "other"),  # suffixes match whole labels only
    ("notfacebook.com", "other"),
    ("t.me", "telegram"),
    ("web.telegram.org", "telegram"),
    ("WWW.INSTAGRAM.COM.", "instagram"),
    ("music.youtube.com", "youtube"),
    ("youtu.be", "youtube"),
    ("web.whatsapp.com", "whatsapp"),
    ("meet.google.com", "google"),
    ("fa.wikipedia.org", "wikipedia"),
    ("thunder.free-signal.com", "other"),
    ("www.digikala.com", "other"),
])
def test_default_platform_map(host, platform):
    assert platform_for(host, DEFAULT_PLATFORM_MAP) == platform


def test_longest_suffix_wins():
    mapping = {**DEFAULT_PLATFORM_MAP, "music.youtube.com": "other"}
    assert platform_for("music.youtube.com", mapping) == "other"
    assert platform_for("www.youtube.com", mapping) == "youtube"


def test_names_are_derived_from_the_url_and_unique(tmp_path):
    path = write_csv(tmp_path, """\
        https://www.facebook.com/mehdi.parpanchi/,GRP,Social Networking,2014-04-15,citizenlab,
        http://www.facebook.com/mehdi.parpanchi/,GRP,Social Networking,2014-04-15,citizenlab,
        https://www.tabnak.ir/fa/news/184641/%D8%B4%D8%B5%D8%AA,NEWS,News Media,2020-01-01,citizenlab,
        https://www.tabnak.ir/fa/news/184641/%D8%B4%D8%B5%D8%AB,NEWS,News Media,2020-01-01,citizenlab,
        https://fa.wikipedia.org/,CULTR,Culture,2014-04-15,citizenlab,
        """)
    data = import_citizenlab(path)
    names = [t["name"] for p in data["platforms"].values() for t in p["targets"]]
    assert names[0] == "facebook.com-mehdi-parpanchi"
    assert names[1].startswith("facebook.com-mehdi-parpanchi-") and len(names[1]) == len(names[0]) + 9
    assert names[2] == "fa.wikipedia.org"
    assert names[3] == "tabnak.ir-fa-news-184641"
    assert names[4].startswith("tabnak.ir-fa-news-184641-")
    assert len(set(names)) == len(names)
    assert import_citizenlab(path) == data  # stable from one import to the next


def test_duplicates_are_imported_once(tmp_path):
    path = write_csv(tmp_path, """\
        https://twitter.com/,GRP,Social Networking,2014-04-15,citizenlab,
        HTTPS://Twitter.COM:443,GRP,Social Networking,2014-04-15,citizenlab,
        https://twitter.com/?lang=fa,GRP,Social Networking,2014-04-15,citizenlab,
        """)
    result = read_citizenlab(path)
    assert result.imported == 2 and result.duplicates == [3]


def test_malformed_rows_are_skipped_with_their_line(tmp_path):
    path = write_csv(tmp_path, """\
        https://ok.example.ir/,NEWS,News Media,2014-04-15,citizenlab,"a note
        that spans two lines"
        https://short.example.ir/,NEWS
        https://long.example.ir/,NEWS,News Media,2014-04-15,citizenlab,,extra
        ,NEWS,News Media,2014-04-15,citizenlab,
        example.ir,NEWS,News Media,2014-04-15,citizenlab,
        https://nocat.example.ir/,,News Media,2014-04-15,citizenlab,
        https://ok2.example.ir/,NEWS,News Media,2014-04-15,citizenlab,
        """)
    result = read_citizenlab(path)
    assert result.rows == 7 and result.imported == 2
    assert [line for line, _ in result.skipped] == [4, 5, 6, 7, 8]
    reasons = dict(result.skipped)
    assert reasons[4].startswith("too few columns")
    assert reasons[5].startswith("too many columns")
    assert reasons[6] == "empty url"
    assert "must start with http:// or https://" in reasons[7]
    assert reasons[8] == "empty category_code"


def test_category_filter_and_asn_expectations(tmp_path):
    path = write_csv(tmp_path, """\
        https://www.facebook.com/,GRP,Social Networking,2014-04-15,citizenlab,
        https://instagram.fsaw1-13.fna.fbcdn.net/favicon.ico,GRP,Social Networking,2022-09-06,x,
        https://news.example.ir/,NEWS,News Media,2014-04-15,citizenlab,
        """)
    result = read_citizenlab(path, categories=["grp"])
    assert result.filtered == 1 and list(result.data["platforms"]) == ["facebook"]
    facebook = result.data["platforms"]["facebook"]
    assert facebook["asns"] == [32934]
    assert "asns" not in facebook["targets"][0]
    assert facebook["targets"][1]["asns"] == []  # an in-ISP cache: no AS expectation


def test_user_map_overrides_defaults_and_is_validated(tmp_path):
    path = write_csv(tmp_path, "https://t.me/,GRP,Social Networking,2019-08-30,OONI,\n")
    assert list(import_citizenlab(path, {"t.me": "other"})["platforms"]) == ["other"]
    with pytest.raises(CitizenLabError, match="unknown platform 'telegramm'"):
        import_citizenlab(path, {"t.me": "telegramm"})


def test_not_a_test_list(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("domain\nexample.org\n")
    with pytest.raises(CitizenLabError, match=r"x\.csv:1: not a Citizen Lab test list"):
        import_citizenlab(path)


def test_real_iran_list_imports_and_loads(tmp_path):
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared/data is not available")
    result = read_citizenlab(shared / "data/test_lists/ir.csv")
    assert result.rows == 903 and result.imported + len(result.duplicates) + len(result.skipped) == 903
    platforms = result.data["platforms"]
    assert list(platforms)[-1] == "other"
    assert [t["urls"][0] for t in platforms["facebook"]["targets"]] == [
        "https://www.facebook.com/kambizhosseini/", "https://www.facebook.com/mehdi.parpanchi/"]
    assert "https://fa.wikipedia.org/" in [t["urls"][0] for t in platforms["wikipedia"]["targets"]]

    out = tmp_path / "ir.yaml"
    out.write_text(dump_targets_yaml(result.data, ["imported for a test"]), encoding="utf-8")
    ts = load_targets(out)
    assert len(ts.targets) == result.imported
    assert all(t.kind == "web" and len(t.urls) == 1 for t in ts.targets)


def test_real_global_list_round_trips():
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared/data is not available")
    result = read_citizenlab(shared / "data/test_lists/global.csv")
    ts = loads(dump_targets_yaml(result.data), "global.yaml")
    by_platform = {p: [t for t in ts.targets if t.platform == p] for p in ts.platforms()}
    assert {"facebook", "twitter", "telegram", "whatsapp", "youtube", "instagram"} <= set(by_platform)

"""Names from the targets file are known to exist: recorded on the target and in results lines."""

from __future__ import annotations

from probe.targets import Endpoint, Target, known_existing_names


def test_known_to_exist_and_names():
    fb = Target("facebook", "fb", "web", urls=("https://www.facebook.com/",), dns_names=("www.facebook.com",),
                endpoints=(Endpoint("b-api.facebook.com", 443), Endpoint("157.240.1.35", 80)))
    tg = Target("telegram", "dc", "endpoint", endpoints=(Endpoint("149.154.175.50", 443),))
    canary = Target("canary", "c", "canary", urls=("https://www.example.org/",), dns_names=("www.example.org",),
                    scope="international")
    imported = Target("other", "listed", "web", urls=("http://some-blog.example/",), dns_names=("some-blog.example",))
    assert fb.known_to_exist and canary.known_to_exist and not imported.known_to_exist
    assert fb.to_dict()["known_to_exist"] is True and imported.to_dict()["known_to_exist"] is False
    assert known_existing_names([fb, tg, canary, imported]) == frozenset(
        {"www.facebook.com", "b-api.facebook.com", "www.example.org"})


def test_results_line_target_records_it(tmp_path):
    from probe.records import Steps, Vantage, Verdict
    from probe.runner import RunConfig, Runner, TargetResult
    from probe.results import utc_now
    from probe.verdict import run_context

    t = Target("other", "listed", "web", urls=("http://some-blog.example/",), dns_names=("some-blog.example",))
    runner = Runner(RunConfig(vantage=Vantage(id="u"), results_dir=None, system_resolver=False))
    res = TargetResult(target=t, steps=Steps(), measured_at=utc_now(), verdict=Verdict(status="inconclusive"))
    line = runner.records([res], "run", run_context([(t, res.steps)]))[0]
    assert line["target"]["known_to_exist"] is False

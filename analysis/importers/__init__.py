"""Measurements from other tools, turned into reachprobe's step records and judged by the same rules.

``ooni``: OONI measurement files (``analysis.read_ooni`` is the public entry point), with
``ooni_measurement`` (one measurement -> a row with our verdict) and ``ooni_testkeys`` (OONI's test
keys -> step records).
"""

"""Measurements from other tools, turned into reachprobe's step records and judged by the same rules.

``ooni``: OONI measurement files (``analysis.read_ooni`` is the public entry point).
"""

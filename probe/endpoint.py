"""How an address and a port are spelled in text: ``host:port``, ``[v6]:port``. One spelling for the
targets file, the results lines and the resolver options, so they never disagree."""

from __future__ import annotations


def bracket_host(host: str) -> str:
    """An IPv6 literal in brackets (as in URLs and endpoints); anything else unchanged."""
    return f"[{host}]" if ":" in host else host


def format_endpoint(host: str, port: int) -> str:
    """``149.154.175.50:443``, ``[2001:db8::1]:443``, ``dns.example:53``."""
    return f"{bracket_host(host)}:{port}"


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` (a bare IPv6 address has no port).
    Raises ValueError for a port that is not a number; the host is not checked here."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, default_port

"""The pydantic model of targets.yaml and its field validators, for the loader (probe.targets.load).
The value checks themselves are in probe.targets.model."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from probe.targets.model import (
    CANARY_PLATFORM,
    KNOWN_PLATFORMS,
    check_dns_name,
    check_url,
    parse_endpoint,
    parse_prefix,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # target names end up in file names and URLs

# ---------------------------------------------------------------------------------------------
# Field validators for the pydantic model (the value checks themselves are in probe.targets.model)
# ---------------------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"target name {name!r} must start with a letter or digit and contain only letters, "
            "digits, '.', '_' and '-' (at most 100 characters)"
        )
    return name


def _check_endpoint(text: str) -> str:
    return str(parse_endpoint(text))


def _check_prefix(text: str) -> str:
    return str(parse_prefix(text))


def _coerce_asn(value: Any) -> Any:
    """Accept 32934 and the common spelling "AS32934"; anything else is left for the int check."""
    if isinstance(value, str) and re.fullmatch(r"(?i)AS\d{1,10}", value.strip()):
        return int(value.strip()[2:])
    return value


def _check_asn(value: int) -> int:
    if not 1 <= value <= 4294967295:
        raise ValueError(f"AS number {value} is out of range (1-4294967295)")
    return value


def _check_platform_key(key: str) -> str:
    if key in KNOWN_PLATFORMS:
        return key
    hint = ""
    if key == CANARY_PLATFORM or key == "canaries":
        hint = "canaries go in the top-level 'canaries' list; "
    else:
        close = difflib.get_close_matches(key, KNOWN_PLATFORMS, n=1)
        if close:
            hint = f"did you mean {close[0]!r}? "
    raise ValueError(f"unknown platform {key!r}; {hint}known platforms: {', '.join(KNOWN_PLATFORMS)}")


# ---------------------------------------------------------------------------------------------
# The file model (strict: YAML "yes" is not a name, 443 is not a string, typos are errors)
# ---------------------------------------------------------------------------------------------

Name = Annotated[str, AfterValidator(_check_name)]
Url = Annotated[str, AfterValidator(check_url)]
EndpointStr = Annotated[str, AfterValidator(_check_endpoint)]
DnsName = Annotated[str, AfterValidator(check_dns_name)]
Cidr = Annotated[str, AfterValidator(_check_prefix)]
Asn = Annotated[int, BeforeValidator(_coerce_asn), AfterValidator(_check_asn)]
PlatformKey = Annotated[str, AfterValidator(_check_platform_key)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# The two target models repeat their fields instead of sharing a base class so that fields keep a
# natural order (name, kind/scope, ...) in "allowed:" lists and in errors reported on the same line.
class PlatformTargetIn(_Model):
    name: Name
    kind: Literal["web", "endpoint"]
    urls: list[Url] = []
    endpoints: list[EndpointStr] = []
    dns: list[DnsName] | None = None  # None: derived from urls/endpoints; [] means "resolve nothing"
    tls_name: DnsName | None = None
    # Per-target expectations replace the platform's (a CDN-hosted name has no stable ASN: asns: [])
    asns: list[Asn] | None = None
    prefixes: list[Cidr] | None = None


class CanaryIn(_Model):
    name: Name
    scope: Literal["domestic", "international"]
    urls: list[Url] = []
    endpoints: list[EndpointStr] = []
    dns: list[DnsName] | None = None
    tls_name: DnsName | None = None
    asns: list[Asn] | None = None
    prefixes: list[Cidr] | None = None


class _PlatformIn(_Model):
    asns: list[Asn] = []
    prefixes: list[Cidr] = []
    targets: list[PlatformTargetIn] = []


class FileIn(_Model):
    version: Literal[1] = 1  # optional today; bumped when the format changes incompatibly
    platforms: dict[PlatformKey, _PlatformIn] = {}
    canaries: list[CanaryIn] = []

"""``#include`` / ``#include-once`` user data: a list of URLs whose contents are more user data.

cloud-init fetches each URL (a line may also read ``#include URL``) and
processes the content as if it stood there: any user-data format. provision
turns each URL into a ``provision.config.merge`` reference, so it is fetched
by provision's one HTTP client (retries, deadline, proxies, size limit) and
parsed by the same pipeline, cycles and depth limits included. The
difference: references are merged after the document's own parts, where
cloud-init merges an include at its place among them (docs/userdata.md).

``#include-once`` makes cloud-init fetch a URL only on the instance's first
boot and reuse its cached copy later; provision provisions only on the first
boot, so the two mean the same here.
"""

from __future__ import annotations

from typing import NamedTuple

_SCHEMES = ("http://", "https://", "tftp://", "s3://", "gs://", "data:", "file://")


class IncludeUrl(NamedTuple):
    url: str
    line: int  # 1-based within the part


class BadInclude(NamedTuple):
    text: str
    line: int
    reason: str


def urls(payload: str) -> tuple[list[IncludeUrl], list[BadInclude]]:
    found: list[IncludeUrl] = []
    bad: list[BadInclude] = []
    for number, raw in enumerate(payload.splitlines(), start=1):
        line = raw
        lowered = line.lower()
        if lowered.startswith("#include-once"):
            line = line[len("#include-once"):].lstrip()
        elif lowered.startswith("#include"):
            line = line[len("#include"):].lstrip()
        if line.startswith("#"):
            continue
        url = line.strip()
        if not url:
            continue
        if url.startswith("file://"):
            bad.append(BadInclude(url, number, "a file:// include would read the provisioning machine's "
                                              "own files; serve it over http(s)"))
        elif not url.lower().startswith(_SCHEMES):
            bad.append(BadInclude(url, number, "not a URL provision can fetch (http, https, tftp, s3, gs, data)"))
        else:
            found.append(IncludeUrl(url, number))
    return found, bad

"""The two OVF environment documents we read: VMware's guestinfo.ovfenv and Azure's ovf-env.xml.

Only element and attribute local names are compared, so the namespace
prefixes the hypervisor happens to use do not matter. A document with a
DOCTYPE is refused: the environment never needs one, and refusing it rules
out entity-expansion tricks.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provision.errors import FetchError


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _parse(text: str, origin: str) -> ET.Element:
    if "<!DOCTYPE" in text.upper():
        raise FetchError(f"{origin}: OVF environment with a DOCTYPE is not accepted")
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise FetchError(f"{origin}: OVF environment is not valid XML ({exc})") from None


def ovf_properties(text: str, origin: str) -> dict[str, str]:
    """``<Property key=... value=...>`` pairs of an OVF environment."""
    found: dict[str, str] = {}
    for element in _parse(text, origin).iter():
        if _local(element.tag) != "Property":
            continue
        attrs = {_local(k): v for k, v in element.attrib.items()}
        if "key" in attrs:
            found[attrs["key"]] = attrs.get("value", "")
    return found


def element_text(text: str, name: str, origin: str) -> str | None:
    """Text of the first element called ``name`` (e.g. Azure's CustomData)."""
    for element in _parse(text, origin).iter():
        if _local(element.tag) == name:
            return (element.text or "").strip()
    return None

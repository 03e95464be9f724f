"""Tell the platform how provisioning went, from the initramfs, so a failed first boot
shows in the cloud's console instead of as a machine that never answers.

- Azure: the wireserver's health report. GET the goal state
  (``/machine/?comp=goalstate``), then POST ``/machine?comp=health`` an XML
  ``Health`` document naming its incarnation, container id and role
  instance id, with state ``Ready``, or ``NotReady`` with substatus
  ``ProvisioningFailed`` and a description (at most 512 characters). Both
  requests carry ``x-ms-version: 2012-11-30`` and ``x-ms-agent-name``.
- Equinix Metal (packet): on success an empty POST to the metadata's
  ``phone_home_url`` (Afterburn's boot check-in); either way a JSON
  ``{"state": "succeeded"|"failed", "message": ...}`` POST to its
  ``user_state_url``.

A report that cannot be delivered is logged and shown on the console but
does not change the outcome. Descriptions are the one-line failure summary,
which never holds the config or its secrets. ``PROVISION_WIRESERVER_URL``
replaces the wireserver's address (168.63.129.16) for tests.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from provision.errors import ProvisionError
from provision.instance.data import InstanceData

if TYPE_CHECKING:
    from provision.fetch.http import HttpClient

log = logging.getLogger(__name__)

WIRESERVER_URL = "http://168.63.129.16"
WIRESERVER_HEADERS = {"x-ms-version": "2012-11-30", "x-ms-agent-name": "provision"}
DESCRIPTION_LIMIT = 512
# A report is worth a short wait, not the 2 minutes a config fetch gets.
REPORT_DEADLINE = 30.0

_HEALTH = """<?xml version="1.0" encoding="utf-8"?>
<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <GoalStateIncarnation>{incarnation}</GoalStateIncarnation>
  <Container>
    <ContainerId>{container}</ContainerId>
    <RoleInstanceList>
      <Role>
        <InstanceId>{instance}</InstanceId>
        <Health>
          <State>{state}</State>{details}
        </Health>
      </Role>
    </RoleInstanceList>
  </Container>
</Health>
"""
_DETAILS = """
          <Details>
            <SubStatus>ProvisioningFailed</SubStatus>
            <Description>{description}</Description>
          </Details>"""


def _goal_state(client: HttpClient, base: str) -> tuple[str, str, str]:
    from xml.etree import ElementTree

    reply = client.get(f"{base}/machine/?comp=goalstate", WIRESERVER_HEADERS, not_found_ok=False)
    try:
        root = ElementTree.fromstring(reply.body)
    except ElementTree.ParseError as exc:
        raise ProvisionError(f"azure: the goal state is not XML: {exc}") from None
    values = (root.findtext("Incarnation"), root.findtext("Container/ContainerId"),
              root.findtext("Container/RoleInstanceList/RoleInstance/InstanceId"))
    if not all(values):
        raise ProvisionError("azure: the goal state lacks Incarnation, ContainerId or InstanceId")
    incarnation, container, instance = (str(v).strip() for v in values)
    return incarnation, container, instance


def health_document(incarnation: str, container: str, instance: str, ok: bool, description: str) -> bytes:
    details = "" if ok else _DETAILS.format(description=escape(description[:DESCRIPTION_LIMIT]))
    return _HEALTH.format(incarnation=escape(incarnation), container=escape(container),
                          instance=escape(instance), state="Ready" if ok else "NotReady",
                          details=details).encode()


def report_azure(client: HttpClient, ok: bool, description: str) -> str:
    base = (os.environ.get("PROVISION_WIRESERVER_URL") or WIRESERVER_URL).rstrip("/")
    incarnation, container, instance = _goal_state(client, base)
    client.post(f"{base}/machine?comp=health",
                {**WIRESERVER_HEADERS, "Content-Type": "text/xml; charset=utf-8"},
                data=health_document(incarnation, container, instance, ok, description),
                not_found_ok=False)
    return f"azure: reported {'ready' if ok else 'provisioning failed'} to the wireserver"


def report_packet(client: HttpClient, instance: InstanceData | None, ok: bool, description: str) -> str:
    urls = instance.report_urls if instance else {}
    done = []
    if ok and urls.get("phone_home"):
        client.post(urls["phone_home"], not_found_ok=False)
        done.append("phoned home")
    if urls.get("user_state"):
        state = {"state": "succeeded" if ok else "failed", "message": description[:DESCRIPTION_LIMIT]}
        client.post(urls["user_state"], {"Content-Type": "application/json"},
                    data=json.dumps(state).encode(), not_found_ok=False)
        done.append(f"user state {state['state']}")
    return f"packet: {', '.join(done) or 'nothing to report'}"


def report_outcome(platform: str, instance: InstanceData | None, ok: bool, description: str,
                   client_factory: Callable[[], HttpClient], say: Callable[[str], None]) -> None:
    """Report to platforms that expect it; nothing for the others. Never raises."""
    if platform not in ("azure", "packet"):
        return
    if platform == "packet" and not (instance and instance.report_urls):
        say("could not report the outcome to packet: the metadata named no phone_home_url "
            "or user_state_url")
        return
    try:
        with client_factory() as client:
            if platform == "azure":
                line = report_azure(client, ok, description)
            else:
                line = report_packet(client, instance, ok, description)
    except (ProvisionError, OSError) as exc:
        log.warning("reporting to %s failed: %s", platform, exc)
        say(f"could not report the outcome to {platform}: {exc}")
        return
    say(line)

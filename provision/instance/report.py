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

- cloud-init's ``phone_home`` (the config's ``provision.phoneHome``): on
  success, a form-encoded POST of the chosen fields (the target's SSH host
  public keys, the instance id, the host name) to the URL, ``$INSTANCE_ID``
  replaced; ``N/A`` for what is not known, as cloud-init sends.

A report that cannot be delivered is logged and shown on the console but
does not change the outcome. Descriptions are the one-line failure summary,
which never holds the config or its secrets. ``PROVISION_WIRESERVER_URL``
replaces the wireserver's address (168.63.129.16) for tests.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

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


def escape(text: str) -> str:
    """XML character data (xml.sax is not in the initramfs's standard library)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


PHONE_HOME_FIELDS = ("pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "pub_key_dsa",
                     "instance_id", "hostname", "fqdn")
PHONE_HOME_TRIES = 10
PHONE_HOME_PAUSE = 3.0


def phone_home_form(root: Path, instance_id: str | None, fields: tuple[str, ...] | None) -> dict[str, str]:
    """The values cloud-init's phone_home sends, read from the provisioned target."""
    def read(path: str) -> str | None:
        try:
            return (root / path).read_text(encoding="utf-8", errors="replace").strip() or None
        except OSError:
            return None

    hostname = read("etc/hostname")
    values = {f"pub_key_{kind}": read(f"etc/ssh/ssh_host_{kind}_key.pub")
              for kind in ("rsa", "ecdsa", "ed25519", "dsa")}
    values.update(instance_id=instance_id, hostname=hostname.split(".")[0] if hostname else None,
                  fqdn=hostname)
    return {name: values.get(name) or "N/A" for name in (fields or PHONE_HOME_FIELDS)}


def phone_home(client: HttpClient, url: str, form: dict[str, str], instance_id: str | None,
               tries: int, sleep: Callable[[float], None] = time.sleep) -> str:
    from urllib.parse import urlencode

    target = url.replace("$INSTANCE_ID", instance_id or "N/A").replace("${INSTANCE_ID}", instance_id or "N/A")
    data = urlencode(form).encode()
    for attempt in range(1, tries + 1):
        try:
            client.post(target, {"Content-Type": "application/x-www-form-urlencoded"}, data=data,
                        not_found_ok=False)
            break
        except ProvisionError:
            if attempt == tries:
                raise
            sleep(PHONE_HOME_PAUSE)
    return f"phone_home: posted {len(form)} fields"


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

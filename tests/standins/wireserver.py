"""A stand-in for Azure's wireserver (168.63.129.16): the goal state and the health report.

- Every request needs ``x-ms-version`` (400 without, as the fabric answers
  requests it cannot version).
- ``GET /machine/?comp=goalstate``: a GoalState document with an
  incarnation, container id and one role instance.
- ``POST /machine?comp=health``: needs ``Content-Type: text/xml``; the body
  must be a Health document naming the goal state's incarnation, container
  and instance (400 otherwise, as the fabric drops a report it cannot match);
  accepted reports are kept in ``reports`` as (state, substatus, description).
"""

from __future__ import annotations

from xml.etree import ElementTree

from tests.standins.metadata import Answer, MetadataStandIn, Request

INCARNATION = "3"
CONTAINER_ID = "2a4bd1c5-e1a3-4b6a-8ff4-2c0b6b1b3c77"
INSTANCE_ID = "b7d4b0f6-6e5c-4a0e-8c6f-1b9f0c3a2e11.vm-1"

GOAL_STATE = f"""<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="">
  <Version>2012-11-30</Version>
  <Incarnation>{INCARNATION}</Incarnation>
  <Machine>
    <ExpectedState>Started</ExpectedState>
    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>
  </Machine>
  <Container>
    <ContainerId>{CONTAINER_ID}</ContainerId>
    <RoleInstanceList>
      <RoleInstance>
        <InstanceId>{INSTANCE_ID}</InstanceId>
        <State>Started</State>
      </RoleInstance>
    </RoleInstanceList>
  </Container>
</GoalState>
""".encode()


class Wireserver(MetadataStandIn):
    server_header = "Microsoft-IIS/10.0"

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[tuple[str, str | None, str | None]] = []

    def answer(self, request: Request) -> Answer:
        if not request.headers.get("x-ms-version"):
            return Answer(400, b"Bad Request")
        comp = request.query.get("comp", [""])[0]
        if request.method == "GET" and request.path == "/machine/" and comp == "goalstate":
            return Answer(200, GOAL_STATE, {"Content-Type": "text/xml; charset=utf-8"})
        if request.method == "POST" and request.path == "/machine" and comp == "health":
            return self._health(request)
        return Answer(404, b"Not Found")

    def _health(self, request: Request) -> Answer:
        if not (request.headers.get("Content-Type") or "").startswith("text/xml"):
            return Answer(400, b"Bad Request")
        try:
            root = ElementTree.fromstring(request.body)
        except ElementTree.ParseError:
            return Answer(400, b"Bad Request")
        role = "Container/RoleInstanceList/Role"
        if (root.tag != "Health" or root.findtext("GoalStateIncarnation") != INCARNATION
                or root.findtext("Container/ContainerId") != CONTAINER_ID
                or root.findtext(f"{role}/InstanceId") != INSTANCE_ID):
            return Answer(400, b"Bad Request")
        state = root.findtext(f"{role}/Health/State")
        if state not in ("Ready", "NotReady"):
            return Answer(400, b"Bad Request")
        self.reports.append((state, root.findtext(f"{role}/Health/Details/SubStatus"),
                             root.findtext(f"{role}/Health/Details/Description")))
        return Answer(200, b"")

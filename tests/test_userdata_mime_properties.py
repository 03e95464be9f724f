"""The MIME splitter against Python's email package, on messages built as cloud-init's make-mime builds them.

For every generated message: the same parts, in order, with the same types
and payloads; and for parts not transfer-encoded, the payload's lines are
the original message's lines from the line the part says it starts on
(what lets a diagnostic point into the original document).
"""

from __future__ import annotations

import email
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from hypothesis import given, settings
from hypothesis import strategies as st

from provision.importers.userdata import mime

LINE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="="), max_size=30)
BODY = st.lists(LINE, max_size=6).map("\n".join)
KINDS = {
    "cloud-config": "#cloud-config\n",
    "x-shellscript": "#!/bin/sh\n",
    "cloud-boothook": "#cloud-boothook\n#!/bin/sh\n",
    "x-include-url": "#include\n",
}


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str, bool]]]:
    outer = MIMEMultipart(boundary="===============0042==")  # bodies hold no "=": never the boundary
    expected = []
    for _ in range(draw(st.integers(1, 5))):
        subtype = draw(st.sampled_from(sorted(KINDS)))
        body = KINDS[subtype] + draw(BODY)
        encoded = draw(st.booleans())
        part = MIMEText(body, subtype, "utf-8" if encoded else "us-ascii")  # utf-8: base64 transfer encoding
        if draw(st.booleans()):
            part.add_header("Content-Disposition", "attachment", filename=draw(st.sampled_from(["a.sh", "b c"])))
        outer.attach(part)
        expected.append((f"text/{subtype}", body, encoded))
    return outer.as_bytes(), expected


@settings(max_examples=150, derandomize=True)
@given(messages())
def test_parts_types_payloads_and_lines_match(message: tuple[bytes, list[tuple[str, str, bool]]]) -> None:
    data, expected = message
    parts = mime.split(data)
    assert [p.content_type for p in parts] == [kind for kind, _, _ in expected]
    reference = [p.get_payload(decode=True) for p in email.message_from_bytes(data).walk() if not p.is_multipart()]
    assert [p.payload for p in parts] == reference
    lines = data.decode().split("\n")
    for part, (_, body, encoded) in zip(parts, expected, strict=True):
        assert part.payload.decode() == body
        assert part.exact is not encoded
        if part.exact:
            body_lines = body.split("\n")
            assert lines[part.line - 1: part.line - 1 + len(body_lines)] == body_lines
        else:
            assert lines[part.line - 1].lower().startswith("content-type:")


SAMPLE = (b'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\n'
          b"Content-Type: text/cloud-config\nMerge-Type: list(append)+dict(recurse_array)+str()\n\n"
          b"#cloud-config\nruncmd: [a]\nmounts:\n  - [sdb.1, /data]\n--b\n"
          b"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: base64\n\nIyEvYmluL3NoCmVjaG8gaGkK\n--b\n"
          b"Content-Type: text/cloud-config-archive\n\n- {type: text/cloud-boothook, content: \"#cloud-boothook\\n#!/bin/sh\"}\n"
          b"--b\nContent-Type: text/jinja2\n\n## template: jinja\n#cloud-config\nhostname: {{ v1.h }}\n--b--\n")


@settings(max_examples=300, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(SAMPLE)), st.integers(0, 8), st.binary(max_size=6)), max_size=4))
def test_damaged_user_data_never_raises(edits: list[tuple[int, int, bytes]]) -> None:
    """Cut and spliced user data: diagnostics with positions, never an exception."""
    from provision.config.pipeline import parse_config

    data = SAMPLE
    for at, cut, insert in edits:
        data = data[:at] + insert + data[at + cut:]
    parsed = parse_config(data, "user-data", instance_data={"v1": {"h": "x"}})
    assert all(d.position is not None for d in parsed.diagnostics if d.is_error), parsed.diagnostics
    assert parsed.ok or any(d.is_error for d in parsed.diagnostics)

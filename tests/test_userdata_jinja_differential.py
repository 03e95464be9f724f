"""The Jinja subset renders exactly as cloud-init's jinja2 setup does, on generated templates.

The oracle is jinja2 itself (Debian's python3-jinja2, run by the system
Python in a subprocess: it is not a dependency of provision), configured as
cloud-init configures it: a sandboxed environment with ``trim_blocks``, the
template's final newline dropped by jinja2 and added back by cloud-init, and
the variables converted as cloud-init converts instance data (our
``variables``, whose aliasing is tested against cloud-init's rules in
test_userdata_include_jinja.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.importers.userdata.jinja import render, variables

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin")


def _system_jinja2() -> bool:
    if SYSTEM_PYTHON is None:
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import jinja2"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _system_jinja2(), reason="python3-jinja2 (scripts/system-packages.txt) missing")

INSTANCE_DATA: dict[str, Any] = {
    "v1": {"instance_id": "i-0abc", "local_hostname": "web-1", "region": "eu-west-1", "cloud_name": "aws",
           "availability_zone": "eu-west-1b", "launch_index": 3, "public_ssh_keys": [], "nothing": None,
           "flag": True},
    "ds": {"meta-data": {"local-hostname": "web-1", "placement": {"availability-zone": "eu-west-1b"}}},
}

_ORACLE = """
import json, sys
from jinja2.sandbox import SandboxedEnvironment
templates, scope = json.load(sys.stdin)
env = SandboxedEnvironment(trim_blocks=True)
out = []
for t in templates:
    out.append(env.from_string(t).render(**scope) + ("\\n" if t.endswith("\\n") else ""))
json.dump(out, sys.stdout)
"""


def jinja2_render(templates: list[str]) -> list[str]:
    assert SYSTEM_PYTHON is not None
    done = subprocess.run([SYSTEM_PYTHON, "-I", "-c", _ORACLE], input=json.dumps([templates, variables(INSTANCE_DATA)]),
                          capture_output=True, text=True, check=True)
    result: list[str] = json.loads(done.stdout)
    return result


TEXT = st.text(alphabet="ab :-_\n\t", max_size=8)
VALUES = st.sampled_from([
    "{{ v1.instance_id }}", "{{ instance_id }}", "{{ v1.launch_index }}", "{{ v1.nothing }}", "{{ v1.flag }}",
    "{{ ds.meta_data['local-hostname'] }}", "{{ ds.meta_data.placement.availability_zone }}",
    '{{ ds["meta-data"]["placement"]["availability-zone"] }}', "{{ region | upper }}",
    "{{ v1.cloud_name|lower }}", "{{ v1.missing | default('fallback') }}", "{{ v1.region | d(\"x\") }}",
    "{# a comment #}", "{#\nmulti-line\n#}\n",
])
CONDITIONS = st.sampled_from([
    "v1.cloud_name == 'aws'", "v1.cloud_name != 'aws'", "v1.cloud_name == \"gce\"", "not v1.missing",
    "v1.region", "v1.nothing", "not v1.flag", "v1.launch_index == 3", "v1.launch_index != 3", "v1.missing",
    "ds.meta_data.placement",
])


def blocks(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(TEXT, VALUES)
    if depth == 0:
        return leaf
    body = st.lists(st.one_of(leaf, st.deferred(lambda: blocks(depth - 1))), max_size=3).map("".join)
    newline = st.sampled_from(["", "\n"])

    @st.composite
    def if_block(draw: st.DrawFn) -> str:
        parts = [f"{{% if {draw(CONDITIONS)} %}}{draw(newline)}{draw(body)}"]
        for _ in range(draw(st.integers(0, 2))):
            parts.append(f"{{% elif {draw(CONDITIONS)} %}}{draw(newline)}{draw(body)}")
        if draw(st.booleans()):
            parts.append(f"{{% else %}}{draw(newline)}{draw(body)}")
        parts.append(f"{{% endif %}}{draw(newline)}")
        return "".join(parts)

    return st.one_of(leaf, if_block())


TEMPLATES = st.lists(blocks(2), min_size=1, max_size=6).map("".join)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.lists(TEMPLATES, min_size=20, max_size=20))
def test_the_subset_renders_as_jinja2(templates: list[str]) -> None:
    expected = jinja2_render(templates)
    for template, want in zip(templates, expected, strict=True):
        assert render(template, INSTANCE_DATA) == want, template


def test_cloud_init_documented_templates_render_as_jinja2() -> None:
    # The template examples of cloud-init's documentation (doc/rtd/explanation/instancedata.rst style).
    templates = [
        "#cloud-config\nruncmd:\n  - echo {{ v1.local_hostname }} > /tmp/hostname\n",
        "{% if v1.region == 'eu-west-1' %}\nregion: europe\n{% else %}\nregion: other\n{% endif %}\n",
        "#!/bin/sh\necho {{ ds.meta_data.placement.availability_zone }}\n",
    ]
    assert [render(t, INSTANCE_DATA) for t in templates] == jinja2_render(templates)

"""`provision validate` keeps its start-up small: the modules that once cost
most of its time against ignition-validate (docs/performance.md) stay out of
a validate run. A regression here shows as tens of ms on every CI check."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each of these cost several ms of imports; none is needed to validate JSON.
KEPT_OUT = ("dataclasses", "inspect", "pathlib", "yaml", "passlib", "logging")
# Needed to check http(s) URLs, but not for configs whose resources are inline.
URL_PARSING = ("urllib.parse", "ipaddress")


def hashed_inline_config(tmp_path: Path) -> Path:
    text = "hello\n"
    digest = hashlib.sha512(text.encode()).hexdigest()
    path = tmp_path / "hashed.json"
    path.write_text(json.dumps({
        "provision": {"version": "1.0.0"},
        "storage": {"files": [{"path": "/etc/motd", "mode": 420, "contents": {
            "source": "data:,hello%0A", "verification": {"hash": f"sha512-{digest}"}}}]},
    }))
    return path


def modules_after_validate(configs: list[str], watched: tuple[str, ...]) -> str:
    code = (
        "import sys\n"
        "from provision.cli import main\n"
        f"status = main(['validate', *{configs!r}])\n"
        f"print(status, [m for m in {watched!r} if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def test_validating_the_examples_imports_none_of_the_heavy_modules() -> None:
    examples = [str(p) for p in sorted((ROOT / "examples").glob("*.json"))]
    assert len(examples) >= 8
    assert modules_after_validate(examples, KEPT_OUT) == "0 []"


def test_inline_contents_with_a_hash_need_no_url_parsing(tmp_path: Path) -> None:
    config = str(hashed_inline_config(tmp_path))
    assert modules_after_validate([config], KEPT_OUT + URL_PARSING) == "0 []"


def test_validating_other_formats_never_imports_the_butane_importer(tmp_path: Path) -> None:
    human = tmp_path / "human.yaml"
    human.write_text("variant: provision\nversion: 1.0.0\n")
    configs = [str(p) for p in sorted((ROOT / "examples").glob("*.json"))] + [str(human)]
    assert modules_after_validate(configs, ("provision.importers.butane",)) == "0 []"


def test_validating_other_formats_never_imports_the_user_data_importer(tmp_path: Path) -> None:
    """Scripts, MIME and templates are recognised by their first bytes (config/kinds.py), not by importing."""
    cloud_config = tmp_path / "user-data"
    cloud_config.write_text("#cloud-config\nhostname: plain\n")
    configs = [str(p) for p in sorted((ROOT / "examples").glob("*.json"))] + [str(cloud_config)]
    watched = ("provision.importers.userdata", "provision.importers.userdata.mime", "quopri", "email")
    assert modules_after_validate(configs, watched) == "0 []"


def test_validating_compiles_no_annotation_strings(tmp_path: Path) -> None:
    """typing.NamedTuple in a module with ``from __future__ import annotations``
    compiles each field's annotation string (a ForwardRef) at import, and the
    first compile() of a process costs about 1.5 ms (it sets up Python's AST
    types): the modules on the validate path define theirs without it."""
    configs = [str(p) for p in sorted((ROOT / "examples").glob("*.json"))]
    configs.append(str(hashed_inline_config(tmp_path)))
    code = (
        "import typing\n"
        "compiled = []\n"
        "original = typing.ForwardRef.__init__\n"
        "def recording(self, arg, *args, **kwargs):\n"
        "    compiled.append(arg)\n"
        "    original(self, arg, *args, **kwargs)\n"
        "typing.ForwardRef.__init__ = recording\n"
        "from provision.cli import main\n"
        f"status = main(['validate', *{configs!r}])\n"
        "print(status, compiled)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"

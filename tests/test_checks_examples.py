"""Every example passes the semantic checks; the checks never raise on odd
but schema-shaped input; kernel argument conflicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.config import model
from provision.config.build import build_config
from provision.config.checks import run_checks
from provision.diagnostics import Severity, format_path

EXAMPLES = sorted(
    p
    for p in (Path(__file__).resolve().parent.parent / "examples").glob("*")
    if p.suffix in (".json", ".yaml", ".yml")
)


def load_model(path: Path) -> model.Config:
    """The example in the newest model: through the pipeline when it can read it."""
    data = path.read_bytes()
    try:
        from provision.config.pipeline import parse_config

        parsed = parse_config(data, str(path))
        if parsed.config is not None:
            return parsed.config
    except ImportError:
        pass
    value = yaml.safe_load(data)
    if not (isinstance(value, dict) and "provision" in value):
        pytest.skip(f"{path.name}: not a provision config and the pipeline cannot translate it yet")
    return build_config(value)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_has_no_semantic_errors(path: Path) -> None:
    errors = [d for d in run_checks(load_model(path)) if d.severity is Severity.ERROR]
    assert not errors, [f"{format_path(d.path)}: {d.message}" for d in errors]


def test_a_kernel_argument_cannot_be_both_wanted_and_unwanted() -> None:
    config = build_config(
        {
            "provision": {"version": "1.0.0"},
            "kernelArguments": {
                "shouldExist": ["quiet", "mitigations=off"],
                "shouldNotExist": ["splash", "quiet"],
            },
        }
    )
    [diag] = [d for d in run_checks(config) if d.is_error]
    assert diag.severity is Severity.ERROR and diag.path == ("kernelArguments", "shouldNotExist", 1)
    config = build_config(
        {
            "provision": {"version": "1.0.0"},
            "kernelArguments": {"shouldExist": ["quiet"], "shouldNotExist": ["splash"]},
        }
    )
    assert [d for d in run_checks(config) if d.is_error] == []


# Schema-shaped configs with hostile strings wherever the schema allows a string.
text = st.text(max_size=40) | st.sampled_from(
    ["/", "/a/b", "data:,x", "https://h/x", "a@.service", "[Unit]\nA=b"]
)
small = st.integers(min_value=0, max_value=2**33)
resource = st.fixed_dictionaries(
    {},
    optional={
        "source": text,
        "compression": st.sampled_from(["gzip", ""]),
        "verification": st.fixed_dictionaries({}, optional={"hash": text}),
        "httpHeaders": st.lists(st.fixed_dictionaries({"name": text, "value": text}), max_size=2),
    },
)
owner = st.fixed_dictionaries({}, optional={"id": small, "name": text})
configs = st.fixed_dictionaries(
    {"provision": st.just({"version": "1.0.0"})},
    optional={
        "storage": st.fixed_dictionaries(
            {},
            optional={
                "disks": st.lists(
                    st.fixed_dictionaries(
                        {"device": text},
                        optional={
                            "partitions": st.lists(
                                st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "label": text,
                                        "number": small,
                                        "startMiB": small,
                                        "sizeMiB": small,
                                        "typeGuid": text,
                                        "shouldExist": st.booleans(),
                                    },
                                ),
                                max_size=3,
                            )
                        },
                    ),
                    max_size=2,
                ),
                "raid": st.lists(
                    st.fixed_dictionaries(
                        {
                            "name": text,
                            "level": st.sampled_from(["raid1", "0", "linear", "10"]),
                            "devices": st.lists(text, max_size=3),
                        },
                        optional={"spares": small},
                    ),
                    max_size=2,
                ),
                "filesystems": st.lists(
                    st.fixed_dictionaries(
                        {"device": text},
                        optional={
                            "format": st.sampled_from(["ext4", "btrfs", "vfat", "swap", "none"]),
                            "label": text,
                            "uuid": text,
                            "path": text,
                            "subvolumes": st.lists(
                                st.fixed_dictionaries({"name": text}, optional={"path": text}),
                                max_size=2,
                            ),
                        },
                    ),
                    max_size=2,
                ),
                "files": st.lists(
                    st.fixed_dictionaries(
                        {"path": text},
                        optional={
                            "mode": small,
                            "overwrite": st.booleans(),
                            "contents": resource,
                            "user": owner,
                            "append": st.lists(resource, max_size=2),
                        },
                    ),
                    max_size=3,
                ),
                "links": st.lists(
                    st.fixed_dictionaries(
                        {"path": text, "target": text}, optional={"hard": st.booleans()}
                    ),
                    max_size=2,
                ),
            },
        ),
        "systemd": st.fixed_dictionaries(
            {},
            optional={
                "units": st.lists(
                    st.fixed_dictionaries(
                        {"name": text},
                        optional={
                            "contents": text,
                            "enabled": st.booleans(),
                            "mask": st.booleans(),
                            "dropins": st.lists(
                                st.fixed_dictionaries({"name": text}, optional={"contents": text}),
                                max_size=2,
                            ),
                        },
                    ),
                    max_size=3,
                )
            },
        ),
        "passwd": st.fixed_dictionaries(
            {},
            optional={
                "users": st.lists(
                    st.fixed_dictionaries(
                        {"name": text},
                        optional={
                            "passwordHash": text,
                            "sshAuthorizedKeys": st.lists(text, max_size=2),
                            "uid": small,
                            "shell": text,
                        },
                    ),
                    max_size=2,
                )
            },
        ),
        "containers": st.fixed_dictionaries(
            {},
            optional={
                "runtime": st.sampled_from(["docker", "podman"]),
                "containers": st.lists(
                    st.fixed_dictionaries(
                        {"name": text, "image": text},
                        optional={
                            "env": st.dictionaries(text, text, max_size=2),
                            "networks": st.lists(text, max_size=2),
                            "volumes": st.lists(
                                st.fixed_dictionaries({"source": text, "target": text}), max_size=2
                            ),
                            "ports": st.lists(
                                st.fixed_dictionaries(
                                    {"container": st.integers(1, 65535)},
                                    optional={
                                        "host": st.integers(1, 3),
                                        "hostIp": text,
                                        "protocol": st.sampled_from(["tcp", "udp"]),
                                    },
                                ),
                                max_size=3,
                            ),
                        },
                    ),
                    max_size=2,
                ),
                "networks": st.lists(
                    st.fixed_dictionaries({"name": text}, optional={"subnet": text}), max_size=2
                ),
                "registries": st.fixed_dictionaries(
                    {},
                    optional={
                        "mirrors": st.lists(
                            st.fixed_dictionaries(
                                {"registry": text, "endpoints": st.lists(text, max_size=2)}
                            ),
                            max_size=2,
                        )
                    },
                ),
            },
        ),
    },
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_checks_never_raise_and_always_name_a_path(spec: dict[str, Any]) -> None:
    for diag in run_checks(build_config(spec)):
        assert diag.message and diag.path
        assert format_path(diag.path).startswith("$.")

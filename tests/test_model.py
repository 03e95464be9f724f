"""The config model: immutable values, equal by content, secrets kept out of repr."""

from __future__ import annotations

import pytest

from provision.config import model
from provision.config.build import build_config, to_spec


def test_fields_cannot_change_after_construction() -> None:
    node = model.File(path="/etc/motd", mode=0o644)
    with pytest.raises(model.FrozenModelError):
        node.mode = 0o600  # type: ignore[misc]
    with pytest.raises(model.FrozenModelError):
        del node.path  # type: ignore[misc]
    assert model.copy_with(node, mode=0o600).mode == 0o600 and node.mode == 0o644


def test_equal_by_value_and_hashable() -> None:
    a = model.Container(name="web", image="nginx", env={"A": "1"})
    b = model.Container(name="web", image="nginx", env={"A": "1"})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != model.Container(name="web", image="nginx", env={"A": "2"})
    assert model.NodeOwner(id=0) != model.Verification()


def test_credentials_never_show_in_repr() -> None:
    cred = model.RegistryCredential(registry="r.example", username="robot", password="s3cret")
    config = build_config({"provision": {"version": "1.0.0"}, "containers": {
        "runtime": "podman", "registries": {"credentials": [to_spec(cred)]}}})
    assert "s3cret" not in repr(cred) and "s3cret" not in repr(config)
    container = model.Container(name="app", image="app:1", env={"DB_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(container) and "DB_PASSWORD" in repr(container)


def test_spec_round_trips_through_the_model() -> None:
    spec = {"provision": {"version": "1.0.0"}, "storage": {
        "disks": [{"device": "/dev/vda", "partitions": [{"number": 1, "sizeMiB": 100, "startMiB": 1}]}],
        "files": [{"path": "/a", "mode": 420, "contents": {"source": "data:,x", "compression": "gzip"}}]}}
    assert to_spec(build_config(spec)) == spec


def test_builder_refuses_annotation_shapes_it_cannot_convert() -> None:
    # A model field of a new shape must fail loudly, not stay an unconverted dict.
    from provision.config import build

    for annotation in ("tuple[File, File]", "File | Link", "list[File]"):
        with pytest.raises(TypeError, match="unsupported model annotation"):
            build._converter(annotation)
    assert build._converter("tuple[str, ...]") is tuple
    assert build._converter("int | None") is None

"""merge_specs: Ignition's merge semantics on newest-spec dicts."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from provision.config.merge import merge_specs

PARENT: dict[str, Any] = {
    "provision": {"version": "1.0.0", "timeouts": {"httpTotal": 30}},
    "storage": {
        "files": [
            {"path": "/etc/motd", "mode": 420, "contents": {"source": "data:,parent"}},
            {"path": "/etc/keep", "contents": {"source": "data:,keep"}},
        ],
        "links": [{"path": "/etc/link", "target": "/etc/motd"}],
        "disks": [{"device": "/dev/vda", "partitions": [{"number": 1, "label": "root", "sizeMiB": 100},
                                                       {"label": "data"}]}],
    },
    "systemd": {"units": [{"name": "a.service", "enabled": True, "dropins": [{"name": "x.conf", "contents": "1"}]}]},
    "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["key-a", "key-b"], "groups": ["wheel"]}]},
    "kernelArguments": {"shouldNotExist": ["quiet"], "shouldExist": ["console=ttyS0"]},
}

CHILD: dict[str, Any] = {
    "provision": {"version": "1.0.0", "timeouts": {"httpResponseHeaders": 5}},
    "storage": {
        "files": [
            {"path": "/etc/motd", "contents": {"source": "data:,child"}},
            {"path": "/etc/link", "contents": {"source": "data:,now a file"}},
            {"path": "/etc/new"},
        ],
        "disks": [{"device": "/dev/vda", "wipeTable": True,
                   "partitions": [{"number": 1, "sizeMiB": 200}, {"label": "data", "sizeMiB": 50}]}],
    },
    "systemd": {"units": [{"name": "a.service", "dropins": [{"name": "y.conf", "contents": "2"}]},
                          {"name": "b.service", "mask": True}]},
    "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["key-b", "key-c"]}, {"name": "ops"}]},
    "kernelArguments": {"shouldExist": ["quiet"]},
}


def test_child_overrides_and_keyed_lists_merge_by_key() -> None:
    merged = merge_specs(PARENT, CHILD)
    files = {f["path"]: f for f in merged["storage"]["files"]}
    assert list(files) == ["/etc/motd", "/etc/keep", "/etc/link", "/etc/new"]
    assert files["/etc/motd"] == {"path": "/etc/motd", "mode": 420, "contents": {"source": "data:,child"}}
    assert merged["provision"]["timeouts"] == {"httpTotal": 30, "httpResponseHeaders": 5}
    [disk] = merged["storage"]["disks"]
    assert disk["wipeTable"] is True
    assert disk["partitions"] == [{"number": 1, "label": "root", "sizeMiB": 200}, {"label": "data", "sizeMiB": 50}]
    units = {u["name"]: u for u in merged["systemd"]["units"]}
    assert units["a.service"]["enabled"] is True
    assert [d["name"] for d in units["a.service"]["dropins"]] == ["x.conf", "y.conf"]
    assert units["b.service"] == {"name": "b.service", "mask": True}
    users = {u["name"]: u for u in merged["passwd"]["users"]}
    assert users["core"]["sshAuthorizedKeys"] == ["key-a", "key-b", "key-c"]
    assert users["core"]["groups"] == ["wheel"] and "ops" in users


def test_files_directories_and_links_share_one_path_namespace() -> None:
    merged = merge_specs(PARENT, CHILD)
    assert merged["storage"].get("links") == []  # the child's file at /etc/link replaced the link


def test_kernel_arguments_the_child_wants_leave_the_parents_opposite_list() -> None:
    merged = merge_specs(PARENT, CHILD)
    assert merged["kernelArguments"] == {"shouldNotExist": [], "shouldExist": ["console=ttyS0", "quiet"]}


def test_inputs_are_not_modified() -> None:
    parent, child = copy.deepcopy(PARENT), copy.deepcopy(CHILD)
    merge_specs(parent, child)
    assert parent == PARENT and child == CHILD


paths = st.sampled_from(["/a", "/b", "/c", "/d"])
file_lists = st.lists(st.fixed_dictionaries({"path": paths, "mode": st.integers(0, 511)}),
                      unique_by=lambda f: f["path"])


@given(file_lists, file_lists)
def test_every_path_appears_once_with_the_childs_value_winning(
    parent_files: list[dict[str, Any]], child_files: list[dict[str, Any]]
) -> None:
    merged = merge_specs({"storage": {"files": parent_files}}, {"storage": {"files": child_files}})
    result = {f["path"]: f["mode"] for f in merged["storage"]["files"]}
    assert len(result) == len(merged["storage"]["files"])
    expected = {f["path"]: f["mode"] for f in parent_files} | {f["path"]: f["mode"] for f in child_files}
    assert result == expected


@given(file_lists)
def test_merging_with_an_empty_child_changes_nothing(files: list[dict[str, Any]]) -> None:
    spec = {"provision": {"version": "1.0.0"}, "storage": {"files": files}}
    assert merge_specs(spec, {}) == spec

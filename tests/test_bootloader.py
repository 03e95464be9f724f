"""Kernel-argument edits in boot loader files (provision.bootloader), on tmp roots."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provision.bootloader import bls, grub
from provision.bootloader.cmdline import ArgChange, edit_args, satisfied, split_args
from provision.bootloader.edit import plan_edit, write_edit
from provision.errors import ProvisionError
from provision.target.tree import TargetTree

CHANGE = ArgChange(("console=ttyS0,115200", "mitigations=off"), ("quiet", "splash"))

# --- the argument list -----------------------------------------------------


def test_split_keeps_quoted_values_whole() -> None:
    assert split_args('root=/dev/vda  ro dyndbg="file x.c +p"\tquiet') == [
        "root=/dev/vda", "ro", 'dyndbg="file x.c +p"', "quiet"]


def test_edit_appends_missing_and_removes_every_unwanted_occurrence() -> None:
    current = ["root=/dev/vda", "quiet", "ro", "quiet", "mitigations=off"]
    assert edit_args(current, CHANGE) == ["root=/dev/vda", "ro", "mitigations=off", "console=ttyS0,115200"]


def test_arguments_are_compared_whole() -> None:
    # quiet=1 is not quiet; console=ttyS0 is not console=ttyS0,115200.
    assert edit_args(["quiet=1", "console=ttyS0"], CHANGE) == [
        "quiet=1", "console=ttyS0", "console=ttyS0,115200", "mitigations=off"]


words = st.text(alphabet="abcz=,.-_019", min_size=1, max_size=6)


@given(st.lists(words, max_size=8), st.lists(words, max_size=4), st.lists(words, max_size=4))
def test_edit_satisfies_the_change_and_is_idempotent(current: list[str], want: list[str],
                                                     unwanted: list[str]) -> None:
    change = ArgChange(tuple(want), tuple(a for a in unwanted if a not in want))
    once = edit_args(current, change)
    assert satisfied(once, change)
    assert edit_args(once, change) == once
    # Nothing else changes: the other arguments keep their order.
    others = [a for a in current if a not in change.should_not_exist]
    assert once[:len(others)] == others


# --- BLS entries -------------------------------------------------------------

ENTRY = """\
# Boot Loader Specification type #1 entry
title      Debian GNU/Linux
version    6.1.0-57-amd64
linux      /vmlinuz-6.1.0-57-amd64
initrd     /initrd.img-6.1.0-57-amd64
options    root=UUID=0b1c ro quiet splash
"""


def test_bls_entry_options_edited_other_lines_kept_byte_for_byte() -> None:
    out = bls.edit_entry(ENTRY, CHANGE)
    assert out == ENTRY.replace("options    root=UUID=0b1c ro quiet splash",
                                "options root=UUID=0b1c ro console=ttyS0,115200 mitigations=off")
    assert bls.edit_entry(out, CHANGE) == out


def test_bls_several_options_lines_are_one_command_line() -> None:
    text = "linux /vmlinuz\noptions root=/dev/vda quiet\noptions mitigations=off splash\n"
    out = bls.edit_entry(text, CHANGE)
    assert out == ("linux /vmlinuz\noptions root=/dev/vda\n"
                   "options mitigations=off console=ttyS0,115200\n")
    assert bls.entry_options(out) == ["root=/dev/vda", "mitigations=off", "console=ttyS0,115200"]


def test_bls_entry_without_options_gets_a_line() -> None:
    assert bls.edit_entry("linux /vmlinuz", ArgChange(("quiet",))) == "linux /vmlinuz\noptions quiet\n"


def _root(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "root"
    for path, text in files.items():
        file = root / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    return root


def _apply(root: Path, change: ArgChange) -> list[str]:
    with TargetTree(root) as tree:
        edit = plan_edit(tree, change)
        for file_edit in edit.edits:
            write_edit(tree, file_edit)
    return [e.path for e in edit.edits]


def test_every_bls_entry_is_edited_and_keeps_its_mode(tmp_path: Path) -> None:
    root = _root(tmp_path, {
        "/boot/loader/entries/a.conf": ENTRY,
        "/boot/loader/entries/b.conf": ENTRY.replace("57", "58"),
        "/boot/loader/entries/notes.txt": "not an entry\n",
        # GRUB files too: the entries win (GRUB with blscfg reads them).
        "/etc/default/grub": 'GRUB_CMDLINE_LINUX=""\n',
    })
    (root / "boot/loader/entries/a.conf").chmod(0o600)
    changed = _apply(root, CHANGE)
    assert changed == ["/boot/loader/entries/a.conf", "/boot/loader/entries/b.conf"]
    for name in ("a.conf", "b.conf"):
        assert "options root=UUID=0b1c ro console=ttyS0,115200 mitigations=off\n" in \
            (root / "boot/loader/entries" / name).read_text()
    assert stat.S_IMODE((root / "boot/loader/entries/a.conf").stat().st_mode) == 0o600
    assert (root / "etc/default/grub").read_text() == 'GRUB_CMDLINE_LINUX=""\n'
    assert _apply(root, CHANGE) == []  # a second run changes nothing (no reboot loop)


def test_entries_on_an_esp_at_efi(tmp_path: Path) -> None:
    root = _root(tmp_path, {"/efi/loader/entries/x.conf": "options ro quiet\n"})
    assert _apply(root, CHANGE) == ["/efi/loader/entries/x.conf"]
    assert (root / "efi/loader/entries/x.conf").read_text() == \
        "options ro console=ttyS0,115200 mitigations=off\n"


def test_an_entries_link_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "host-entries"
    outside.mkdir()
    (outside / "host.conf").write_text("options quiet\n")
    root = _root(tmp_path, {"/etc/default/grub": 'GRUB_CMDLINE_LINUX="quiet"\n'})
    (root / "boot/loader").mkdir(parents=True)
    (root / "boot/loader/entries").symlink_to(outside)  # absolute: resolved inside the root
    _apply(root, CHANGE)
    assert (outside / "host.conf").read_text() == "options quiet\n"
    assert (root / "etc/default/grub").read_text() == \
        'GRUB_CMDLINE_LINUX="console=ttyS0,115200 mitigations=off"\n'


# --- GRUB ----------------------------------------------------------------------

DEFAULTS = """\
# If you change this file, run 'update-grub' afterwards to update
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"
GRUB_CMDLINE_LINUX="net.ifnames=0"
"""

GRUB_CFG = """\
menuentry 'Debian GNU/Linux' --class debian {
\tload_video
\tinsmod ext2
\tsearch --no-floppy --fs-uuid --set=root 0b1c
\techo\t'Loading Linux 6.1.0-57-amd64 ...'
\tlinux\t/boot/vmlinuz-6.1.0-57-amd64 root=UUID=0b1c ro net.ifnames=0 quiet splash
\tinitrd\t/boot/initrd.img-6.1.0-57-amd64
}
menuentry 'Debian GNU/Linux (recovery mode)' {
\tlinux\t/boot/vmlinuz-6.1.0-57-amd64 root=UUID=0b1c ro single net.ifnames=0
}
"""


def test_grub_defaults_append_to_linux_and_remove_from_both() -> None:
    out = grub.edit_defaults(DEFAULTS, CHANGE)
    assert out == DEFAULTS.replace(
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"', 'GRUB_CMDLINE_LINUX_DEFAULT=""'
    ).replace('GRUB_CMDLINE_LINUX="net.ifnames=0"',
              'GRUB_CMDLINE_LINUX="net.ifnames=0 console=ttyS0,115200 mitigations=off"')
    assert grub.edit_defaults(out, CHANGE) == out


def test_grub_defaults_quoting_round_trips() -> None:
    change = ArgChange(('dyndbg="file a.c +p"',), ("quiet",))
    out = grub.edit_defaults("GRUB_CMDLINE_LINUX='quiet ro'\n", change)
    assert out == 'GRUB_CMDLINE_LINUX="ro dyndbg=\\"file a.c +p\\""\n'
    assert grub.edit_defaults(out, change) == out


def test_grub_defaults_with_shell_expansion_are_refused() -> None:
    with pytest.raises(ProvisionError, match="shell syntax"):
        grub.edit_defaults('GRUB_CMDLINE_LINUX="$EXTRA quiet"\n', CHANGE)


def test_grub_cfg_linux_lines_edited_everything_else_kept() -> None:
    out = grub.edit_config(GRUB_CFG, CHANGE)
    assert out == GRUB_CFG.replace(
        "root=UUID=0b1c ro net.ifnames=0 quiet splash",
        "root=UUID=0b1c ro net.ifnames=0 console=ttyS0,115200 mitigations=off",
    ).replace("ro single net.ifnames=0\n", "ro single net.ifnames=0 console=ttyS0,115200 mitigations=off\n")


def test_grub_target_gets_both_files_edited(tmp_path: Path) -> None:
    root = _root(tmp_path, {"/etc/default/grub": DEFAULTS, "/boot/grub/grub.cfg": GRUB_CFG})
    assert _apply(root, CHANGE) == ["/etc/default/grub", "/boot/grub/grub.cfg"]
    assert 'GRUB_CMDLINE_LINUX="net.ifnames=0 console=ttyS0,115200 mitigations=off"' in \
        (root / "etc/default/grub").read_text()
    assert "quiet" not in (root / "boot/grub/grub.cfg").read_text()


def test_grub_dropins_are_edited_where_update_grub_reads_them(tmp_path: Path) -> None:
    """A cloud image's drop-in sets GRUB_CMDLINE_LINUX_DEFAULT after /etc/default/grub:
    an unwanted argument must leave it, or the next update-grub brings it back."""
    root = _root(tmp_path, {
        "/etc/default/grub": DEFAULTS,
        "/etc/default/grub.d/50-cloudimg.cfg": 'GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet console=tty1"\n',
        "/etc/default/grub.d/init-select.cfg": "# nothing set here\n",
        "/etc/default/grub.d/README": 'GRUB_CMDLINE_LINUX_DEFAULT="splash"\n',  # not *.cfg: not read
        "/boot/grub/grub.cfg": GRUB_CFG,
    })
    assert _apply(root, CHANGE) == ["/etc/default/grub", "/etc/default/grub.d/50-cloudimg.cfg",
                                    "/boot/grub/grub.cfg"]
    assert (root / "etc/default/grub.d/50-cloudimg.cfg").read_text() == \
        'GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX_DEFAULT="console=tty1"\n'
    assert (root / "etc/default/grub.d/README").read_text() == 'GRUB_CMDLINE_LINUX_DEFAULT="splash"\n'
    assert _apply(root, CHANGE) == []  # nothing left to change: no second reboot


def test_grub_additions_go_to_the_assignment_that_wins() -> None:
    texts = [("/etc/default/grub", 'GRUB_CMDLINE_LINUX="a"\n'),
             ("/etc/default/grub.d/10.cfg", 'GRUB_CMDLINE_LINUX="b quiet"\n'),
             ("/etc/default/grub.d/20.cfg", "GRUB_TIMEOUT=1\n")]
    out = grub.edit_defaults_files(texts, CHANGE)
    assert out == ['GRUB_CMDLINE_LINUX="a"\n',
                   'GRUB_CMDLINE_LINUX="b console=ttyS0,115200 mitigations=off"\n',
                   "GRUB_TIMEOUT=1\n"]
    # Present in the winning value already: nothing appended anywhere.
    again = grub.edit_defaults_files(list(zip([p for p, _ in texts], out, strict=True)), CHANGE)
    assert again == out


def test_grub_dropin_with_shell_expansion_is_refused_with_its_name() -> None:
    texts = [("/etc/default/grub", DEFAULTS),
             ("/etc/default/grub.d/50.cfg", 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT x"\n')]
    with pytest.raises(ProvisionError, match=r"/etc/default/grub.d/50.cfg line 1: .*kargs helper"):
        grub.edit_defaults_files(texts, CHANGE)


def test_no_boot_loader_is_an_error_naming_where_it_looked(tmp_path: Path) -> None:
    root = _root(tmp_path, {"/etc/hostname": "x\n"})
    with pytest.raises(ProvisionError, match="no boot loader configuration") as info:
        _apply(root, CHANGE)
    assert "/boot/loader/entries" in str(info.value) and "kargs-helper" in str(info.value)


# --- an image-provided helper ----------------------------------------------------

def _helper(tmp_path: Path, body: str) -> Path:
    helper = tmp_path / "kargs-helper"
    helper.write_text("#!/bin/sh\n" + body)
    helper.chmod(0o755)
    return helper


def test_the_helper_wins_and_gets_the_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from provision.stages.base import Target
    from provision.stages.kargs import STAGE

    calls = tmp_path / "calls"
    monkeypatch.setenv("PROVISION_TOOL_KARGS_HELPER",
                       str(_helper(tmp_path, f'printf "%s\\n" "$@" >{calls}; echo changed\n')))
    root = _root(tmp_path, {"/boot/loader/entries/a.conf": ENTRY})

    from provision.config.build import build_config

    config = build_config({"provision": {"version": "1.0.0"}, "kernelArguments": {
        "shouldExist": list(CHANGE.should_exist), "shouldNotExist": list(CHANGE.should_not_exist)}})
    plan = STAGE.plan(config, Target(root))
    assert [(a.kind, a.item) for a in plan.actions] == [("run", "kargs-helper")]
    STAGE.apply(plan, Target(root))
    assert calls.read_text().split("\n")[:-1] == [
        "--root", str(root), "--should-exist", "console=ttyS0,115200", "--should-exist", "mitigations=off",
        "--should-not-exist", "quiet", "--should-not-exist", "splash"]
    assert [a.kind for a in plan.changes] == ["replace"]  # the boot reboots
    assert (root / "boot/loader/entries/a.conf").read_text() == ENTRY  # the helper's job, not ours


@pytest.mark.parametrize("body", ['echo "done"\n', "echo changed; exit 3\n"])
def test_a_helper_that_breaks_the_contract_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  body: str) -> None:
    from provision.bootloader.helper import run_helper

    monkeypatch.setenv("PROVISION_TOOL_KARGS_HELPER", str(_helper(tmp_path, body)))
    with pytest.raises(ProvisionError):
        run_helper(tmp_path, CHANGE)


def test_files_written_keep_owner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    root = _root(tmp_path, {"/boot/loader/entries/a.conf": ENTRY})
    os.chown(root / "boot/loader/entries/a.conf", 12, 34)
    _apply(root, CHANGE)
    st_ = (root / "boot/loader/entries/a.conf").stat()
    assert (st_.st_uid, st_.st_gid) == (12, 34)


# --- validate -----------------------------------------------------------------

def test_validate_warns_about_arguments_that_can_never_match() -> None:
    from provision.config.build import build_config
    from provision.config.checks import run_checks

    config = build_config({"provision": {"version": "1.0.0"}, "kernelArguments": {
        "shouldExist": ["quiet", "a b", "provision.firstboot"], "shouldNotExist": [""]}})
    found = {(d.path, d.is_error) for d in run_checks(config)}
    assert found == {
        (("kernelArguments", "shouldExist", 1), False),
        (("kernelArguments", "shouldExist", 2), False),
        (("kernelArguments", "shouldNotExist", 0), False),
    }


def test_boot_filesystems_are_found_in_the_roots_fstab() -> None:
    from provision.boot.bootfs import boot_entries_from_fstab

    fstab = """\
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=0b1c  /          ext4  errors=remount-ro  0 1
LABEL=ESP  /boot/efi/ vfat  umask=0077,noauto  0 2
/dev/vda2  /boot      ext4  defaults           0 2
/dev/vdc   /srv/boot  ext4  defaults           0 2
LABEL=X    /efi
"""
    # Outermost first (/boot before /boot/efi); noauto kept; short lines skipped.
    assert boot_entries_from_fstab(fstab) == [
        ("/dev/vda2", "/boot", "ext4"), ("LABEL=ESP", "/boot/efi", "vfat")]

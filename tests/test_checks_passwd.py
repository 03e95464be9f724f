"""Semantic checks on users and groups: names, ids, password hashes (passlib),
SSH public keys (against keys ssh-keygen makes)."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest
from checks_fixtures import only
from hypothesis import given
from hypothesis import strategies as st

from provision.config.build import build_config
from provision.config.checks import run_checks
from provision.config.checks.sshkeys import KeyFormatError, parse_public_key
from provision.diagnostics import Diagnostic, Severity

U = ("passwd", "users", 0)


def check(*users: dict[str, Any], groups: tuple[dict[str, Any], ...] = ()) -> list[Diagnostic]:
    config = {
        "provision": {"version": "1.0.0"},
        "passwd": {"users": list(users), "groups": list(groups)},
    }
    return run_checks(build_config(config))


# --- password hashes ---------------------------------------------------------


def openssl_passwd(*args: str) -> str:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    return subprocess.run(
        ["openssl", "passwd", *args, "correct horse"], capture_output=True, text=True, check=True
    ).stdout.strip()


def yescrypt_hash() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    made = crypt.crypt("correct horse", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1")
    if not made or not made.startswith("$y$"):
        pytest.skip("libcrypt without yescrypt")
    return made


def test_real_hashes_are_accepted() -> None:
    from passlib.hash import bcrypt, sha512_crypt

    hashes = [
        openssl_passwd("-6"),
        openssl_passwd("-5"),
        sha512_crypt.using(rounds=5000).hash("correct horse"),
        bcrypt.using(rounds=4).hash("correct horse")
        if _has_bcrypt_backend()
        else "$2b$04$" + "a" * 53,
        yescrypt_hash(),
        "!" + openssl_passwd("-6"),  # a locked account keeps its hash
    ]
    for value in hashes:
        assert check({"name": "core", "passwordHash": value}) == [], value


def _has_bcrypt_backend() -> bool:
    from passlib.hash import bcrypt

    try:
        return bool(bcrypt.get_backend())
    except Exception:
        return False


@pytest.mark.parametrize("value", ["", "*", "!", "!!"])
def test_no_password_markers_are_accepted(value: str) -> None:
    assert check({"name": "core", "passwordHash": value}) == []


@pytest.mark.parametrize(
    "value", ["hunter2", "$6$salt", "$6$salt$short", "$y$j9T$salt$tooshort", "$9$x$y"]
)
def test_unidentifiable_hashes_are_errors_that_never_quote_the_value(value: str) -> None:
    diag = only(
        check({"name": "core", "passwordHash": value}),
        Severity.ERROR,
        (*U, "passwordHash"),
        "passlib",
    )
    assert diag.hint is not None and "mkpasswd" in diag.hint
    assert value not in diag.message + diag.hint


def test_weak_hash_schemes_warn() -> None:
    only(
        check({"name": "core", "passwordHash": openssl_passwd("-1")}),
        Severity.WARNING,
        (*U, "passwordHash"),
        "weak md5_crypt",
    )


def test_group_password_hashes_are_checked_too() -> None:
    found = check(groups=({"name": "wheel", "passwordHash": "plain"},))
    only(found, Severity.ERROR, ("passwd", "groups", 0, "passwordHash"), "passlib")


# --- SSH keys ----------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Public key lines made by ssh-keygen, by type."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    out: dict[str, str] = {}
    directory = tmp_path_factory.mktemp("keys")
    for name, args in {
        "ed25519": ["-t", "ed25519"],
        "rsa": ["-t", "rsa", "-b", "2048"],
        "rsa1024": ["-t", "rsa", "-b", "1024"],
        "ecdsa256": ["-t", "ecdsa", "-b", "256"],
        "ecdsa384": ["-t", "ecdsa", "-b", "384"],
        "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    }.items():
        path = Path(directory, name)
        subprocess.run(
            ["ssh-keygen", *args, "-N", "", "-C", f"me@{name}", "-f", str(path), "-q"], check=True
        )
        out[name] = path.with_suffix(".pub").read_text().strip()
        out[name + "-private"] = path.read_text()
    return out


def blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


def test_keys_from_ssh_keygen_are_accepted(keys: dict[str, str]) -> None:
    lines = [keys[k] for k in ("ecdsa256", "ecdsa384", "ecdsa521")]
    lines.append('from="10.0.0.0/8",command="echo \\"hi there\\"",no-pty ' + keys["ed25519"])
    lines.append(keys["rsa"].rsplit(" ", 1)[0])  # no comment
    lines.append(
        blob(b"sk-ssh-ed25519@openssh.com", b"k" * 32, b"ssh:").join(
            ["sk-ssh-ed25519@openssh.com ", " yubikey"]
        )
    )
    lines.append(
        "sk-ecdsa-sha2-nistp256@openssh.com "
        + blob(b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", b"\x04" + b"p" * 64, b"ssh:")
    )
    assert check({"name": "core", "sshAuthorizedKeys": lines}) == []


def test_a_private_key_is_refused(keys: dict[str, str]) -> None:
    only(
        check({"name": "core", "sshAuthorizedKeys": [keys["ed25519-private"]]}),
        Severity.ERROR,
        (*U, "sshAuthorizedKeys", 0),
        "this is a private key",
    )


def test_a_truncated_key_is_refused(keys: dict[str, str]) -> None:
    kind, data, comment = keys["rsa"].split(" ")
    truncated = f"{kind} {data[: len(data) // 8 * 4]} {comment}"  # whole base64 quanta
    only(
        check({"name": "core", "sshAuthorizedKeys": [truncated]}),
        Severity.ERROR,
        (*U, "sshAuthorizedKeys", 0),
        "truncated",
    )


def test_a_key_whose_blob_holds_another_type_is_refused(keys: dict[str, str]) -> None:
    data = keys["ed25519"].split(" ")[1]
    only(
        check({"name": "core", "sshAuthorizedKeys": [f"ssh-rsa {data}"]}),
        Severity.ERROR,
        (*U, "sshAuthorizedKeys", 0),
        "type mismatch",
    )
    ecdsa = keys["ecdsa256"].split(" ")[1]
    only(
        check({"name": "core", "sshAuthorizedKeys": [f"ecdsa-sha2-nistp384 {ecdsa}"]}),
        Severity.ERROR,
        (*U, "sshAuthorizedKeys", 0),
        "type mismatch",
    )


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("hello world", "unknown or missing key type"),
        ("ssh-ed25519", "has no key data"),
        ("ssh-ed25519 !!!notbase64", "not base64"),
        ("ssh-ed25519 " + blob(b"ssh-ed25519", b"short"), "32 bytes"),
        ("ssh-ed25519 " + blob(b"ssh-ed25519", b"k" * 32, b"extra"), "wrong number of fields"),
        (
            "ecdsa-sha2-nistp256 " + blob(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04xx"),
            "different curve",
        ),
        ('command="unterminated ssh-ed25519 AAAA', "unterminated"),
        ("PuTTY-User-Key-File-3: ssh-ed25519", "no key data"),
    ],
)
def test_malformed_keys(line: str, text: str) -> None:
    only(
        check({"name": "core", "sshAuthorizedKeys": [line]}),
        Severity.ERROR,
        (*U, "sshAuthorizedKeys", 0),
        text,
    )


def test_small_rsa_and_dsa_keys(keys: dict[str, str]) -> None:
    only(
        check({"name": "core", "sshAuthorizedKeys": [keys["rsa1024"]]}),
        Severity.WARNING,
        (*U, "sshAuthorizedKeys", 0),
        "1024 bits",
    )
    tiny = "ssh-rsa " + blob(b"ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xff" * 64)
    only(
        check({"name": "core", "sshAuthorizedKeys": [tiny]}),
        Severity.ERROR,
        (*U, "sshAuthorizedKeys", 0),
        "512 bits",
    )
    dsa = "ssh-dss " + blob(b"ssh-dss", b"p", b"q", b"g", b"y")
    only(
        check({"name": "core", "sshAuthorizedKeys": [dsa]}),
        Severity.WARNING,
        (*U, "sshAuthorizedKeys", 0),
        "DSA",
    )


def test_an_entry_with_several_lines_is_refused(keys: dict[str, str]) -> None:
    """A line break in an entry would add authorized_keys lines nobody reviewed (Ignition writes them)."""
    two = keys["ed25519"] + "\n" + keys["ecdsa256"] + "\n"
    only(
        check({"name": "core", "sshAuthorizedKeys": [two]}),
        Severity.ERROR,
        (*U, "sshAuthorizedKeys", 0),
        "one key per entry",
    )
    injected = keys["ed25519"] + ' core\ncommand="/bin/sh -c evil" ' + keys["ecdsa256"]
    only(check({"name": "core", "sshAuthorizedKeys": [injected]}), Severity.ERROR,
         (*U, "sshAuthorizedKeys", 0), "line break")
    only(check({"name": "core", "sshAuthorizedKeys": [keys["ed25519"] + " a\rb"]}), Severity.ERROR,
         (*U, "sshAuthorizedKeys", 0), "line break")
    only(check({"name": "core", "sshAuthorizedKeys": [keys["ed25519"] + " a\0b"]}), Severity.ERROR,
         (*U, "sshAuthorizedKeys", 0), "NUL")
    # Blanks around one key (a pasted file's final newline) are fine: they are dropped.
    assert check({"name": "core", "sshAuthorizedKeys": [keys["ed25519"] + "\n"]}) == []
    assert check({"name": "core", "sshAuthorizedKeys": ["\r\n  " + keys["ed25519"] + " \r\n"]}) == []


def test_comments_blank_entries_and_duplicates_warn(keys: dict[str, str]) -> None:
    found = check(
        {"name": "core", "sshAuthorizedKeys": ["# laptop", "", keys["ed25519"], keys["ed25519"]]}
    )
    assert [(d.severity, d.path[-1]) for d in found] == [
        (Severity.WARNING, 0),
        (Severity.WARNING, 1),
        (Severity.WARNING, 3),
    ]
    assert "duplicate key" in found[2].message


@given(st.text(max_size=200))
def test_any_text_is_a_key_or_a_reason(line: str) -> None:
    try:
        parse_public_key(line)
    except KeyFormatError as exc:
        assert str(exc)


# --- names, ids, fields ------------------------------------------------------


def test_duplicate_users_groups_and_ids() -> None:
    only(
        check({"name": "a"}, {"name": "a"}),
        Severity.ERROR,
        ("passwd", "users", 1, "name"),
        "duplicate user name",
    )
    only(
        check({"name": "a", "uid": 1000}, {"name": "b", "uid": 1000}),
        Severity.ERROR,
        ("passwd", "users", 1, "uid"),
        "duplicate uid",
    )
    found = check(groups=({"name": "g", "gid": 5}, {"name": "g"}))
    only(found, Severity.ERROR, ("passwd", "groups", 1, "name"), "duplicate group name")
    found = check(groups=({"name": "g", "gid": 5}, {"name": "h", "gid": 5}))
    only(found, Severity.ERROR, ("passwd", "groups", 1, "gid"), "duplicate gid")
    assert (
        check(
            {"name": "a", "uid": 1000},
            {"name": "b", "uid": 1001},
            groups=({"name": "a", "gid": 1000},),
        )
        == []
    )


def test_a_removed_user_frees_its_uid() -> None:
    found = check({"name": "old", "uid": 1000, "shouldExist": False}, {"name": "new", "uid": 1000})
    only(found, Severity.WARNING, (*U, "shouldExist"), "removed")


def test_id_ranges() -> None:
    only(check({"name": "a", "uid": 2**32 - 1}), Severity.ERROR, (*U, "uid"), "out of range")
    only(
        check(groups=({"name": "g", "gid": 2**32},)),
        Severity.ERROR,
        ("passwd", "groups", 0, "gid"),
        "out of range",
    )
    assert check({"name": "a", "uid": 2**32 - 2}) == []


@pytest.mark.parametrize("name", ["a:b", "-rf", "1000", "..", "a b", "x" * 33, "a/b"])
def test_invalid_user_names(name: str) -> None:
    only(check({"name": name}), Severity.ERROR, (*U, "name"), "name")


@pytest.mark.parametrize("name", ["core", "svc_backup", "build-01", "Admin", "machine$", "_apt"])
def test_valid_user_names(name: str) -> None:
    assert check({"name": name}) == []


def test_fields_that_would_corrupt_passwd_lines() -> None:
    only(check({"name": "a", "gecos": "A: B"}), Severity.ERROR, (*U, "gecos"), "cannot contain ':'")
    only(check({"name": "a", "homeDir": "home/a"}), Severity.ERROR, (*U, "homeDir"), "absolute")
    only(check({"name": "a", "shell": "/bin/sh\n"}), Severity.ERROR, (*U, "shell"), "line break")
    assert (
        check(
            {"name": "a", "gecos": "Anne B, room 4", "homeDir": "/var/home/a", "shell": "/bin/bash"}
        )
        == []
    )


def test_should_exist_false_with_other_fields_warns() -> None:
    diag = only(
        check({"name": "old", "shouldExist": False, "uid": 5, "groups": ["wheel"]}),
        Severity.WARNING,
        (*U, "shouldExist"),
        "removed",
    )
    assert "uid" in diag.message and "groups" in diag.message
    assert check({"name": "old", "shouldExist": False}) == []
    only(
        check(groups=({"name": "g", "shouldExist": False, "gid": 4},)),
        Severity.WARNING,
        ("passwd", "groups", 0, "shouldExist"),
        "removed",
    )


# --- the passlib-free fast path agrees with passlib -------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SALT = st.text(alphabet="./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=16)


@settings(max_examples=30, deadline=None)
# A config is UTF-8, so a password in one cannot hold a lone surrogate (Cs):
# generate what a config can carry, not what Python strings can.
@given(password=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        max_size=20), salt=_SALT)
def test_common_shapes_are_what_passlib_identifies(password: str, salt: str) -> None:
    """Hashes made by passlib are recognised by the fast path as passlib names them."""
    import re

    from passlib.hash import sha256_crypt, sha512_crypt

    from provision.config.checks.passwd import _COMMON_SHAPES, hash_scheme

    made = {
        "sha512_crypt": sha512_crypt.using(salt=salt, rounds=5000).hash(password),
        "sha256_crypt": sha256_crypt.using(salt=salt, rounds=5000).hash(password),
    }
    for scheme, digest in made.items():
        assert re.match(_COMMON_SHAPES[scheme], digest), (scheme, digest)
        assert hash_scheme(digest) == scheme


_BCRYPT64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@settings(max_examples=60, deadline=None)
@given(cost=st.integers(4, 31), salt=st.text(alphabet=_BCRYPT64, min_size=22, max_size=22),
       digest=st.text(alphabet=_BCRYPT64, min_size=31, max_size=31), variant=st.sampled_from("aby"))
def test_bcrypt_shape_matches_passlibs_parser(cost: int, salt: str, digest: str, variant: str) -> None:
    """No bcrypt backend is needed to parse: compare with passlib's own parser."""
    from passlib.hash import bcrypt

    from provision.config.checks.passwd import hash_scheme

    value = f"$2{variant}${cost:02d}${salt}{digest}"
    try:
        parsed = bcrypt.from_string(value)
        theirs = bool(parsed.checksum)
    except ValueError:
        theirs = False
    assert (hash_scheme(value) == "bcrypt") == theirs


@pytest.mark.parametrize("mangled", [
    "$6$salt$" + "a" * 85, "$6$salt$" + "a" * 87, "$6$sa:lt$" + "a" * 86, "$5$salt$" + "a" * 42,
    "$2b$03$" + "a" * 53, "$2b$12$" + "a" * 52,
])
def test_near_miss_shapes_still_go_to_passlib(mangled: str) -> None:
    from passlib.registry import get_crypt_handler

    from provision.config.checks.passwd import hash_scheme

    def passlib_accepts(value: str) -> bool:
        for name in ("sha512_crypt", "sha256_crypt", "bcrypt"):
            handler = get_crypt_handler(name)
            try:
                if handler.identify(value) and handler.from_string(value).checksum:
                    return True
            except (ValueError, TypeError):
                pass
        return False

    assert (hash_scheme(mangled) is not None) == passlib_accepts(mangled)

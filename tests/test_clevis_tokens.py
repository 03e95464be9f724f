"""Clevis tokens read from real ``cryptsetup luksDump --dump-json-metadata`` output.

The two dumps in tests/data/clevis were made on a regular file (luksFormat,
luksDump and ``clevis luks bind`` need no dm-crypt) with Debian's cryptsetup
2.6.1 and clevis 19: ``sss`` with t=1 over one Tang server (URL
``http://127.0.0.1:9``, advertisement given inline), and ``sss`` with t=2
over a Tang server (``http://127.0.0.1:9/``) and a TPM2 (swtpm). The
thumbprints below were printed by ``jose jwk thp`` for that Tang server's
keys, not by this code.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from provision.disks import clevis
from provision.disks.clevis_tokens import mismatch, tokens

DATA = Path(__file__).parent / "data" / "clevis"
TANG_ONLY = (DATA / "luksdump-sss-tang.json").read_text()
TANG_AND_TPM2 = (DATA / "luksdump-sss-2-of-tang-tpm2.json").read_text()
SIGNING_S256 = "5YQy_m53JbdH3GBpVUyuovsETe_tvYLXs7A-ckSuGm4"
SIGNING_S1 = "wGParLpbnQnhVUAQmyh4PsICldM"
EXCHANGE_S256 = "cXT3-NHaR3QtjAw-hsxVQ9FrEBLxi9np6_X__JBl92s"  # a deriveKey key: never a trust anchor


def _binding(spec: dict[str, object]) -> clevis.Binding:
    bound = clevis.binding(spec)
    assert bound is not None
    return bound


def _tang(url: str, thumbprint: str = SIGNING_S256) -> dict[str, object]:
    return {"tang": [{"url": url, "thumbprint": thumbprint}]}


def test_the_clevis_token_its_slot_and_compact_jwe() -> None:
    [token] = tokens(TANG_ONLY)
    raw = json.loads(TANG_ONLY)["tokens"]["0"]["jwe"]
    assert token.token_id == "0"
    assert token.keyslots == ("1",)  # slot 0 is the provisioning key's
    assert token.jwe == ".".join(raw[p] for p in ("protected", "encrypted_key", "iv", "ciphertext", "tag"))
    assert token.jwe.count(".") == 4 and ".." in token.jwe  # alg "dir": an empty encrypted key
    assert token.header["clevis"]["pin"] == "sss"


def test_the_binding_asked_for_matches() -> None:
    [one] = tokens(TANG_ONLY)
    assert mismatch(_binding(_tang("http://127.0.0.1:9")), one) is None
    assert mismatch(_binding(_tang("http://127.0.0.1:9", SIGNING_S1)), one) is None  # jose's other hash
    [two] = tokens(TANG_AND_TPM2)
    assert mismatch(_binding({**_tang("http://127.0.0.1:9/"), "tpm2": True, "threshold": 2}), two) is None


@pytest.mark.parametrize(("spec", "why"), [
    ({**_tang("http://127.0.0.1:9"), "threshold": 2}, "threshold 1, wanted 2"),
    (_tang("http://127.0.0.1:10"), "Tang URLs"),
    (_tang("http://127.0.0.1:9", EXCHANGE_S256), "without a signing key of thumbprint"),
    ({**_tang("http://127.0.0.1:9"), "tpm2": True}, "0 TPM2 pin(s), wanted 1"),
    ({"custom": {"pin": "tang", "config": "{}"}}, "pin 'sss', wanted 'tang'"),
])
def test_a_different_binding_is_named(spec: dict[str, object], why: str) -> None:
    [token] = tokens(TANG_ONLY)
    found = mismatch(_binding(spec), token)
    assert found is not None and why in found


def test_tpm2_and_threshold_of_the_two_pin_binding_are_checked() -> None:
    [token] = tokens(TANG_AND_TPM2)
    assert "threshold 2, wanted 1" in str(mismatch(_binding({**_tang("http://127.0.0.1:9/"), "tpm2": True}), token))
    assert "1 TPM2 pin(s), wanted 0" in str(
        mismatch(_binding({**_tang("http://127.0.0.1:9/"), "threshold": 2}), token))
    assert mismatch(_binding({"custom": {"pin": "sss", "config": "{}"}}), token) is None


def _with_header(dump: str, change: dict[str, object]) -> str:
    meta = json.loads(dump)
    jwe = meta["tokens"]["0"]["jwe"]
    header = json.loads(base64.urlsafe_b64decode(jwe["protected"] + "=="))
    header["clevis"].update(change)
    jwe["protected"] = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return json.dumps(meta)


def test_a_header_from_another_pin_does_not_match() -> None:
    [token] = tokens(_with_header(TANG_ONLY, {"pin": "tpm2"}))
    assert "pin 'tpm2', wanted 'sss'" in str(mismatch(_binding(_tang("http://127.0.0.1:9")), token))
    [broken] = tokens(_with_header(TANG_ONLY, {"sss": {"t": 1, "jwe": ["not-a-jwe"]}}))
    assert "not a compact JWE" in str(mismatch(_binding(_tang("http://127.0.0.1:9")), broken))


def test_no_clevis_token_and_other_token_types() -> None:
    meta = json.loads(TANG_ONLY)
    meta["tokens"] = {"0": {"type": "systemd-tpm2", "keyslots": ["1"]}}
    assert tokens(json.dumps(meta)) == []
    meta["tokens"] = {}
    assert tokens(json.dumps(meta)) == []


def test_tokens_come_in_token_id_order() -> None:
    meta = json.loads(TANG_ONLY)
    first = meta["tokens"]["0"]
    meta["tokens"] = {"10": {**first, "keyslots": ["3"]}, "2": {**first, "keyslots": ["2"]}}
    assert [(t.token_id, t.keyslots) for t in tokens(json.dumps(meta))] == [("2", ("2",)), ("10", ("3",))]


@pytest.mark.parametrize(("change", "why"), [
    ({"keyslots": []}, "names no key slot"),
    ({"jwe": {"protected": "e30"}}, "holds no JWE"),
    ({"jwe": "a.b.c.d.e"}, "holds no JWE"),
])
def test_malformed_clevis_tokens_are_errors(change: dict[str, object], why: str) -> None:
    meta = json.loads(TANG_ONLY)
    meta["tokens"]["0"].update(change)
    with pytest.raises(clevis.ClevisError, match=why):
        tokens(json.dumps(meta))


def test_a_jwe_with_an_unprotected_header_is_refused() -> None:
    meta = json.loads(TANG_ONLY)
    meta["tokens"]["0"]["jwe"]["unprotected"] = {"kid": "x"}
    with pytest.raises(clevis.ClevisError, match="clevis does not write"):
        tokens(json.dumps(meta))


def test_output_that_is_not_luks2_metadata() -> None:
    for text in ("", "Usage: cryptsetup [OPTION...]", "[]"):
        with pytest.raises(clevis.ClevisError):
            tokens(text)


"""The command line, as a user sees it: transcripts of keygen and fingerprint, and their refusals."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from hotline.cli import app
from hotline.protocol.exceptions import InsecureKeyFile
from hotline.protocol.keys import format_fingerprint, parse_public_key
from hotline.store.keyfiles import load_identity

runner = CliRunner()


@pytest.fixture
def keys(tmp_path):
    return tmp_path / "keys"


def test_keygen_writes_a_protected_key_and_prints_its_fingerprint(keys):
    result = runner.invoke(app, ["keygen", "station-a", "--keys-dir", str(keys)], env={"HOTLINE_PASSPHRASE": "pw"})
    assert result.exit_code == 0, result.output
    private, public = keys / "station-a.key", keys / "station-a.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = parse_public_key(public.read_text())
    lines = result.output.splitlines()
    assert lines[0] == f"private key: {private}"
    assert lines[-1].strip() == format_fingerprint(key.fingerprint)
    name, identity = load_identity(private, b"pw")
    assert name == "station-a"
    assert identity.public == key


def test_fingerprint_of_a_public_file_a_private_file_and_a_key_line_agree(keys):
    runner.invoke(app, ["keygen", "relay", "--keys-dir", str(keys), "--no-passphrase"])
    line = (keys / "relay.pub").read_text().strip()
    outputs = {
        runner.invoke(app, ["fingerprint", arg]).output
        for arg in (str(keys / "relay.pub"), str(keys / "relay.key"), line)
    }
    [output] = outputs
    assert output.strip() == format_fingerprint(parse_public_key(line).fingerprint)


def test_keygen_never_overwrites(keys):
    runner.invoke(app, ["keygen", "station-b", "--keys-dir", str(keys), "--no-passphrase"])
    before = (keys / "station-b.key").read_bytes()
    result = runner.invoke(app, ["keygen", "station-b", "--keys-dir", str(keys), "--no-passphrase"])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert (keys / "station-b.key").read_bytes() == before


def test_keygen_without_a_terminal_or_passphrase_says_what_to_do(keys):
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_PASSPHRASE"}
    result = runner.invoke(app, ["keygen", "station-c", "--keys-dir", str(keys)], env=env)
    assert result.exit_code == 1
    assert "HOTLINE_PASSPHRASE" in result.output
    assert not (keys / "station-c.key").exists()


@pytest.mark.parametrize("name", ["has space", "a/b", "x" * 65, "../up"])
def test_keygen_refuses_a_bad_name(keys, name):
    result = runner.invoke(app, ["keygen", name, "--keys-dir", str(keys), "--no-passphrase"])
    assert result.exit_code == 1
    assert "key name" in result.output
    assert not keys.exists()


@pytest.mark.parametrize("content", [b"", b"ed25519:AAAA\n", b"{}", b"\xff\xfe"])
def test_fingerprint_refuses_what_is_not_a_key(tmp_path, content):
    path = tmp_path / "thing.pub"
    path.write_bytes(content)
    result = runner.invoke(app, ["fingerprint", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("hotline: ")
    assert len(result.output.strip().splitlines()) == 1


def test_missing_file_is_one_line_and_exit_1(tmp_path):
    result = runner.invoke(app, ["fingerprint", str(tmp_path / "nope.pub")])
    assert result.exit_code == 1
    assert result.output == f"hotline: KeyFileError: {tmp_path / 'nope.pub'}: no such file\n"


def test_private_key_readable_by_others_is_refused(keys):
    runner.invoke(app, ["keygen", "station-d", "--keys-dir", str(keys), "--no-passphrase"])
    path = keys / "station-d.key"
    path.chmod(0o644)
    with pytest.raises(InsecureKeyFile, match="chmod 600"):
        load_identity(path, None)


def test_usage_errors_exit_2():
    result = runner.invoke(app, ["keygen"])
    assert result.exit_code == 2


def test_python_dash_m_runs_the_same_command():
    out = subprocess.run(
        [sys.executable, "-m", "hotline", "fingerprint", "ed25519:" + "A" * 43 + "="],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0
    assert len(out.stdout.split()) == 16

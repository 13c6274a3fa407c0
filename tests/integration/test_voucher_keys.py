"""The voucher signing keys: a rotation takes effect in the running server, vouchers signed before it still verify
and exchange, and the `expo ticket-keys` commands keep the private keys in their 0600 file."""

import stat
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from expo.cli import main
from tests.integration.conftest import Service, number
from tests.integration.test_voucher_support import (
    exchange,
    mms_claim,
    published_claim,
    sell_voucher,
    voucher,
    voucher_code,
)
from ticketing.signing_keys import Keyring, load_keyring, rotate_keyring


async def test_vouchers_signed_before_a_rotation_still_exchange(
    service: Service, clerk: dict[str, str], signing_key_file: Path
) -> None:
    before = await sell_voucher(service, number(1))
    old_code = await voucher_code(service, before["id"])
    assert (await published_claim(service, old_code)).kid == 1

    service.clock.advance(timedelta(days=1))
    rotate_keyring(signing_key_file, now=service.clock.now())  # `expo ticket-keys rotate`; no restart

    keys = (await service.client.get("/v1/ticket-keys")).json()["keys"]
    assert [(k["kid"], k["retired"]) for k in keys] == [(1, True), (2, False)]
    after = await sell_voucher(service, number(2))
    assert (await voucher(service, after["id"])).json()["kid"] == 2
    assert (await mms_claim(service, number(2))).kid == 2
    assert (await published_claim(service, old_code)).kid == 1

    clerk_now = await service.login("sh_hall", "SH-C001")  # the clerk's session of yesterday has ended
    old = await exchange(service, clerk_now, old_code)
    assert old.status_code == 201, old.text
    assert old.json()["physical"]["kid"] == 2  # the paper is signed with the current key
    assert (await published_claim(service, old.json()["physical"]["code"])).ticket_id == before["tickets"][0]["id"]
    new = await exchange(service, clerk_now, await voucher_code(service, after["id"]))
    assert new.status_code == 201, new.text


def _private_hex(ring: Keyring) -> list[str]:
    return [key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex() for key in ring.keys]


def test_ticket_keys_commands_never_print_a_private_key(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "signing.json"
    outputs = []

    made = runner.invoke(main, ["ticket-keys", "generate", "--out", str(path)])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    outputs.append(made.output)
    again = runner.invoke(main, ["ticket-keys", "generate", "--out", str(path)])
    assert again.exit_code != 0
    assert "never overwritten" in again.output
    first = load_keyring(path)

    rotated = runner.invoke(main, ["ticket-keys", "rotate", "--file", str(path)])
    assert rotated.exit_code == 0, rotated.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    outputs.append(rotated.output)
    ring = load_keyring(path)
    assert ring.current.kid == 2
    assert ring.keys[0].public_bytes == first.keys[0].public_bytes  # the old key is kept

    listed = runner.invoke(main, ["ticket-keys", "list", "--file", str(path)])
    assert listed.exit_code == 0, listed.output
    outputs.append(listed.output)
    lines = listed.output.splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["1", "2"]
    assert [key.public_bytes.hex() in line for key, line in zip(ring.keys, lines, strict=True)] == [True, True]
    assert "(signs)" in lines[1]
    assert "(signs)" not in lines[0]
    for secret in _private_hex(ring):
        assert all(secret not in output for output in outputs)

    path.chmod(0o644)
    unsafe = runner.invoke(main, ["ticket-keys", "list", "--file", str(path)])
    assert unsafe.exit_code != 0
    assert "readable by others" in unsafe.output

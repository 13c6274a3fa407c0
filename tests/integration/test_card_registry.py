"""Card stock and registration: `expo card issue` personalises a province's cards; a SIM swap registers one."""

import asyncio
import dataclasses
import stat
from pathlib import Path

from click.testing import CliRunner

from expo.cli import main
from simcard.applet import open_card
from simcard.keys import KEY_TYPES, KeySet, sam_card_key
from simcard.store import CardFile
from tests.integration.card_terminal import (
    Terminal,
    card_service,
    issue,
    register,
    root,
    root_file,
    sell_card_ticket,
    service,
)
from tests.integration.conftest import Service, number
from tests.integration.test_support import assert_problem

__all__ = ["card_service", "root", "root_file", "service"]  # fixtures used here


async def test_registration_moves_the_number_and_the_card(
    service: Service, clerk: dict[str, str], root: KeySet
) -> None:
    old, new = await issue(service, root, count=2)
    first = await register(service, clerk, old, number(1))
    assert first.status_code == 201, first.text
    assert (first.json()["card"]["status"], first.json()["card"]["msisdn"]) == ("active", number(1))
    assert (await register(service, clerk, old, number(1))).status_code == 201  # the same swap again: no change

    moved = await register(service, clerk, new, number(1))
    assert moved.status_code == 201, moved.text
    assert (moved.json()["card"]["status"], moved.json()["replaced_csn"]) == ("active", old.csn.hex())
    read = await service.client.get(f"/v1/cards/{old.csn.hex()}", headers=clerk)
    assert read.json()["status"] == "replaced"

    again = await register(service, clerk, new, number(2))  # the card itself moves to another number
    assert (again.json()["card"]["msisdn"], again.json()["replaced_csn"]) == (number(2), None)
    assert_problem(await register(service, clerk, new, "1234"), 422, "invalid_msisdn")
    unknown = dataclasses.replace(new, csn=bytes.fromhex("0031999999999999"))
    assert_problem(await register(service, clerk, unknown, number(3)), 404, "unknown_card")
    reply = await service.client.post(
        "/v1/cards/registrations", json={"csn": "0031zz", "msisdn": number(3)}, headers=clerk
    )
    assert_problem(reply, 400, "invalid_request")
    web = await register(service, service.device("web"), new, number(3))
    assert_problem(web, 403, "role_not_allowed")


async def test_card_issue_command_personalises_files_the_platform_can_write(
    service: Service, clerk: dict[str, str], root_file: Path, root: KeySet, tmp_path: Path
) -> None:
    out_dir = tmp_path / "cards"
    env = {"EXPO_DATABASE_URL": service.db.url, "EXPO_KEY_FILE": str(root_file)}
    args = ["card", "issue", "--province", "31", "--count", "3", "--out-dir", str(out_dir)]
    result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env)
    assert result.exit_code == 0, result.output
    files = sorted(out_dir.iterdir())
    assert [f.name for f in files] == [f"0031{n:012d}.json" for n in (1, 2, 3)]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    for f in files:  # each card holds its own keys, derived as a gate's SAM derives them, never the root keys
        card = CardFile.load(f)
        assert dict(card.keys) == {t: sam_card_key(root, card.csn, t) for t in KEY_TYPES}
    more = await asyncio.to_thread(CliRunner().invoke, main, [*args[:4], "--count", "1", *args[6:]], env=env)
    assert more.exit_code == 0, more.output
    assert (out_dir / "0031000000000004.json").exists()
    assert "key" not in result.output.lower().replace("keys", "")

    card_file = files[0]
    stock = await service.client.get(f"/v1/cards/{card_file.stem}", headers=clerk)
    assert (stock.json()["status"], stock.json()["province"]) == ("stock", "31")
    assert (await register(service, clerk, CardFile.load(card_file), number(1))).status_code == 201
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    await Terminal(service, clerk, open_card(card_file)).write_ticket(ticket_id)
    # The card file kept the ticket: the card survives a restart.
    assert CardFile.load(card_file).occupied() == (1,)


async def test_card_issue_refuses_without_keys(service: Service, tmp_path: Path) -> None:
    env = {"EXPO_DATABASE_URL": service.db.url, "EXPO_KEY_FILE": ""}
    args = ["card", "issue", "--province", "31", "--count", "1", "--out-dir", str(tmp_path / "cards")]
    result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env)
    assert result.exit_code != 0
    assert "EXPO_KEY_FILE" in result.output

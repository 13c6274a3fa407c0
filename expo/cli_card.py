"""`expo card ...`: the emulated Expo cards (put one into a vpcd reader, ...)."""

import logging
import signal
from pathlib import Path
from types import FrameType

import click

from expo.cli_support import with_db
from expo.clock import SystemClock
from expo.db import Database
from expo.errors import ExpoError
from expo.settings import Settings
from simcard.applet import open_card
from simcard.keys import KeySet
from simcard.keystore import (
    KeyFileError,
    export_province_keys,
    export_sam_keys,
    generate_root_keys,
    load_province_keys,
    load_root_keys,
    write_province_keys,
    write_sam_keys,
)
from simcard.personalise import new_card_state
from simcard.state import CardState
from simcard.store import CardFile, CardFileError
from simcard.vpcd import VPCD_BASE_PORT, VpcdBridge
from simcard.vpcd import vpcd_port as port_of_slot
from ticketing.cards import issue_cards


@click.group()
def card() -> None:
    """Emulated Expo cards."""


@card.group("keys")
def card_keys() -> None:
    """Card key files (mode 0600; the key bytes are never printed)."""


@card_keys.command("generate")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def card_keys_generate(out: Path) -> None:
    """The national key centre: three fresh AES-128 root keys (ISSUE, VALIDATE, AUDIT) in a new file."""
    try:
        keys = generate_root_keys(out)
    except KeyFileError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"root keys (version {keys.version}) written to {out} (mode 0600)")


@card_keys.command("export")
@click.option("--root", "root_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--province", required=True, help="Two-digit GB/T 2260 code (Shanghai 31).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def card_keys_export(root_file: Path, province: str, out: Path) -> None:
    """One province centre's keys, K_prov[t] = CMAC(K_root[t], 01 || province || t || "EXPO2010-PROV")."""
    try:
        keys = export_province_keys(load_root_keys(root_file), province)
        write_province_keys(out, province, keys)
    except (KeyFileError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"province {province} keys (version {keys.version}) written to {out} (mode 0600)")


@card_keys.command("export-sam")
@click.option("--root", "root_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def card_keys_export_sam(root_file: Path, out: Path) -> None:
    """A gate SAM's key file: the VALIDATE root key only, from which it derives any card's VALIDATE key."""
    try:
        keys = export_sam_keys(load_root_keys(root_file))
        write_sam_keys(out, keys)
    except KeyFileError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"SAM keys (version {keys.version}) written to {out} (mode 0600)")


@card.command("new")
@click.option(
    "--province-keys", "keys_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--province", required=True, help="Two-digit GB/T 2260 code; must match the key file.")
@click.option("--serial", type=int, required=True, help="The card serial (up to 12 digits).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def card_new(keys_file: Path, province: str, serial: int, out: Path) -> None:
    """Personalise a new, empty Expo card into a card file (never over an existing card)."""
    try:
        exported = load_province_keys(keys_file)
        if exported.province != province:
            raise click.ClickException(f"{keys_file} holds province {exported.province}'s keys, not {province}'s")
        state = new_card_state(province, serial, exported.keys, key_version=exported.keys.version)
    except (KeyFileError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    if out.exists():
        raise click.ClickException(f"{out} exists; a card file is never overwritten")
    CardFile.save(out, state)
    click.echo(f"card {state.csn.hex().upper()} written to {out} (mode 0600)")


@card.command("insert")
@click.option("--card", "card_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--slot", type=int, default=0, show_default=True, help="vpcd slot: the card connects to 35963 + slot.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where pcscd's vpcd listens.")
@click.option("--vpcd-port", type=int, default=None, help="vpcd's channel port when not 35963 (a private pcscd).")
def card_insert(card_file: Path, slot: int, host: str, vpcd_port: int | None) -> None:
    """Put the card into a vpcd reader until Ctrl-C or SIGTERM takes it out; the card saves its own state."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the bridge says when it connects and why not
    port = port_of_slot(slot, base=vpcd_port or VPCD_BASE_PORT)
    try:
        applet = open_card(card_file)
    except (CardFileError, OSError) as error:
        raise click.ClickException(str(error)) from error
    bridge = VpcdBridge(applet, host=host, port=port)

    def remove(signum: int, frame: FrameType | None) -> None:
        bridge.stop()

    # The APDU being answered completes (and commits) before the card leaves the reader.
    signal.signal(signal.SIGTERM, remove)
    signal.signal(signal.SIGINT, remove)
    click.echo(f"card {card_file.name} for vpcd slot {slot} ({host}:{port}); Ctrl-C takes it out", err=True)
    bridge.serve_forever()
    click.echo("card removed", err=True)


@card.command("issue")
@click.option("--province", required=True, help="Two-digit GB/T 2260 code of the province whose halls get the cards.")
@click.option("--count", type=int, default=1, show_default=True)
@click.option("--out-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--keys", "keys_file", default=None, help="The root key file (default: EXPO_KEY_FILE).")
def card_issue(province: str, count: int, out_dir: Path, keys_file: str | None) -> None:
    """The platform personalises a province's new cards into card files and records them in stock."""
    root = _platform_root_keys(keys_file)
    out_dir.mkdir(parents=True, exist_ok=True)

    async def work(database: Database) -> list[CardState]:
        async with database.write() as session:
            states = await issue_cards(
                session, province_code=province, count=count, root_keys=root, now=SystemClock().now()
            )
            _save_new_cards(out_dir, states)  # before the commit: a recorded card always has its file
        return states

    try:
        states = with_db(work)
    except ExpoError as error:
        raise click.ClickException(error.detail) from error
    click.echo(f"{len(states)} cards {states[0].csn.hex().upper()}..{states[-1].csn.hex().upper()} in {out_dir}")


def _platform_root_keys(keys_file: str | None) -> KeySet:
    path = keys_file or Settings.from_env().key_file
    if not path:
        raise click.ClickException("no root key file: pass --keys or set EXPO_KEY_FILE")
    try:
        return load_root_keys(path)
    except KeyFileError as error:
        raise click.ClickException(str(error)) from error


def _save_new_cards(out_dir: Path, states: list[CardState]) -> None:
    for state in states:
        target = out_dir / f"{state.csn.hex()}.json"
        if target.exists():
            raise click.ClickException(f"{target} exists; a card file is never overwritten")
        CardFile.save(target, state)

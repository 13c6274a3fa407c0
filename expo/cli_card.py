"""`expo card ...`: card keys and emulated Expo cards."""

from pathlib import Path

import click

from simcard.keystore import (
    KeyFileError,
    export_province_keys,
    generate_root_keys,
    load_province_keys,
    load_root_keys,
    write_province_keys,
)
from simcard.personalise import new_card_state
from simcard.store import CardFile


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

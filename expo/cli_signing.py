"""`expo ticket-keys ...`: the keyring that signs QR vouchers and physical tickets (EXPO_SIGNING_KEY_FILE).

The file is created with mode 0600 and never overwritten; rotating replaces it atomically, and a running
server picks the new key up by itself. Only public keys are ever printed.
"""

from pathlib import Path

import click

from expo.clock import SystemClock
from simcard.keystore import KeyFileError
from ticketing.signing_keys import Keyring, generate_keyring, load_keyring, rotate_keyring

KEY_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("ticket-keys")
def ticket_keys() -> None:
    """Signing keys of QR vouchers and physical tickets (mode 0600; private keys are never printed)."""


@ticket_keys.command("generate")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def ticket_keys_generate(out: Path) -> None:
    """A new keyring file with one fresh Ed25519 key (id 1)."""
    try:
        ring = generate_keyring(out, now=SystemClock().now())
    except KeyFileError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"signing key {ring.current.kid} written to {out} (mode 0600)")


@ticket_keys.command("rotate")
@click.option("--file", "path", required=True, type=KEY_FILE)
def ticket_keys_rotate(path: Path) -> None:
    """Add a fresh key that signs from now on; the keys before it retire but keep verifying their codes."""
    try:
        ring = rotate_keyring(path, now=SystemClock().now())
    except KeyFileError as error:
        raise click.ClickException(str(error)) from error
    retired = ", ".join(str(key.kid) for key in ring.keys if key.retired_at is not None)
    click.echo(f"key {ring.current.kid} now signs; retired keys {retired} still verify their codes")


@ticket_keys.command("list")
@click.option("--file", "path", required=True, type=KEY_FILE)
def ticket_keys_list(path: Path) -> None:
    """Every key of the ring: id, created, retired, public key (hex); the current one is marked."""
    try:
        lines = key_lines(load_keyring(path))
    except KeyFileError as error:
        raise click.ClickException(str(error)) from error
    for line in lines:
        click.echo(line)


def key_lines(ring: Keyring) -> list[str]:
    """The ring as lines of text: a header, then one line per key, with no private key in them."""
    current = ring.current.kid
    lines = ["kid  created                    retired                    public"]
    for key in sorted(ring.keys, key=lambda k: k.kid):
        retired = key.retired_at.isoformat(timespec="seconds") if key.retired_at else "-"
        mark = " (signs)" if key.kid == current else ""
        created = key.created_at.isoformat(timespec="seconds")
        lines.append(f"{key.kid:<4} {created:<26} {retired:<26} {key.public_bytes.hex()}{mark}")
    return lines

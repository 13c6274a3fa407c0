"""The terminal's data folder: the clerk's session and the device's credential, in files only its owner reads.

`login` stores the session the service handed out (token, clerk, hall, province, expiry) in
`session.json`; the device token a terminal is provisioned with is kept in `device.json`. Both are
written 0600 inside a 0700 folder and never printed.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hall_terminals.errors import TerminalError

SESSION_FILE = "session.json"
DEVICE_FILE = "device.json"


@dataclass(frozen=True)
class StaffSession:
    """A clerk logged in at this terminal."""

    service: str
    token: str
    staff_no: str
    name: str
    hall: str
    province_code: str
    expires_at: str

    def __repr__(self) -> str:  # the token never reaches a log or a traceback
        return f"StaffSession(staff_no={self.staff_no!r}, hall={self.hall!r}, service={self.service!r})"


def write_private(path: Path, payload: dict[str, Any]) -> None:
    """Write a JSON file only its owner can read (the folder too), replacing it atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(payload, out)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def save_session(data_dir: Path, session: StaffSession) -> Path:
    """Keep the clerk's session for the following commands."""
    path = data_dir / SESSION_FILE
    write_private(path, asdict(session))
    return path


def load_session(data_dir: Path) -> StaffSession:
    """The logged-in clerk; `not_logged_in` when nobody is."""
    try:
        raw = json.loads((data_dir / SESSION_FILE).read_text())
        return StaffSession(**raw)
    except FileNotFoundError:
        raise TerminalError("not_logged_in", "no clerk is logged in at this terminal: expo terminal login") from None
    except (ValueError, TypeError) as error:
        raise TerminalError("not_logged_in", f"the stored session is unreadable ({error}): log in again") from None


def drop_session(data_dir: Path) -> None:
    """Forget the clerk's session (logout, or the service said it ended)."""
    (data_dir / SESSION_FILE).unlink(missing_ok=True)


def kept_device_token(data_dir: Path, given: str | None) -> str:
    """The device's credential: the one given (and kept from now on) or the one kept; `no_device_token`."""
    path = data_dir / DEVICE_FILE
    if given:
        write_private(path, {"token": given})
        return given
    try:
        token = json.loads(path.read_text())["token"]
    except (FileNotFoundError, ValueError, KeyError):
        raise TerminalError(
            "no_device_token", "this terminal has no device credential: pass --device-token once"
        ) from None
    return str(token)

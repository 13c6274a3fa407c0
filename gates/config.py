"""The gate device's kept configuration: which gate it is, where, its service, its credential and its SAM.

Given once on the command line (`--gate --entrance --service --token --sam`), kept in `DIR/gate.json`
(0600 in a 0700 folder, `hall_terminals.session.write_private`) for every later command; the token is
never printed. A data folder belongs to one gate: its journal's lines are uploaded as that gate's, so
another gate id is refused (`other_gate`).
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from gates.entrances import GATE_ID_MAX, DeviceKind, is_entrance
from gates.errors import GateError
from hall_terminals.session import write_private

CONFIG_FILE = "gate.json"
DEFAULT_SERVICE = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class GateConfig:
    """One gate device as registered (`expo gate register`) and set up in its data folder."""

    gate_id: int
    entrance: str
    kind: str
    service: str
    token: str
    sam: str  # the SAM key file's path

    def __repr__(self) -> str:  # the token never reaches a log or a traceback
        return f"GateConfig(gate_id={self.gate_id}, entrance={self.entrance!r}, kind={self.kind!r})"


@dataclass(frozen=True)
class Given:
    """What the command line said; None where it said nothing (the kept value then holds)."""

    gate_id: int | None = None
    entrance: str | None = None
    service: str | None = None
    token: str | None = None
    sam: str | None = None


def kept_config(data_dir: Path, given: Given, *, kind: DeviceKind) -> GateConfig:
    """The kept config with what was given laid over it, checked and kept again; `no_gate_config` if incomplete."""
    path = data_dir / CONFIG_FILE
    kept = _load(path)
    if kept is not None and given.gate_id is not None and given.gate_id != kept.gate_id:
        raise GateError(
            "other_gate", f"{data_dir} is the data folder of gate {kept.gate_id}, not {given.gate_id}: use another"
        )
    fields = {**(asdict(kept) if kept else {}), **{k: v for k, v in asdict(given).items() if v is not None}}
    fields.setdefault("service", DEFAULT_SERVICE)
    fields["kind"] = fields.get("kind") or kind.value
    missing = [name for name in ("gate_id", "entrance", "token", "sam") if name not in fields]
    if missing:
        options = ", ".join("--" + name.split("_")[0] for name in missing)
        raise GateError("no_gate_config", f"{data_dir} holds no gate setup yet: pass {options} once")
    config = GateConfig(**fields)
    _check(config)
    if config != kept:
        write_private(path, asdict(config))
    return config


def _load(path: Path) -> GateConfig | None:
    try:
        return GateConfig(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise GateError("no_gate_config", f"{path} is unreadable ({error}): set the gate up again") from None


def _check(config: GateConfig) -> None:
    if not 1 <= config.gate_id <= GATE_ID_MAX:
        raise GateError("invalid_gate_id", f"a gate id is 1..{GATE_ID_MAX}, not {config.gate_id}")
    if not is_entrance(config.entrance):
        raise GateError("unknown_entrance", f"no entrance {config.entrance!r} (L1-L8, U1, W1-W4)")

"""Service settings: one frozen object read from EXPO_* environment variables."""

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else int(raw)


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured by; defaults give the embedded SQLite setup."""

    data_dir: Path = Path("data")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    # Shift of the service clock from the wall clock, so a running service can live inside 2010.
    clock_offset: timedelta | None = None
    max_body_bytes: int = 64 * 1024
    session_ttl: timedelta = timedelta(hours=12)
    # How long a 12580 cash-on-delivery order may wait for the courier before it expires.
    cod_delivery_window: timedelta = timedelta(days=3)
    # How long an online-banking order holds its ticket while the bank has not answered.
    bank_payment_window: timedelta = timedelta(minutes=30)
    # A claimed idempotency key whose request died is free again after this long.
    idempotency_lock: timedelta = timedelta(seconds=30)
    bank_notify_secret: str = field(default="", repr=False)
    sweep_interval_seconds: int = 30
    # How long an SMS-confirmed wallet payment holds the user's money waiting for the code.
    wallet_hold_window: timedelta = timedelta(minutes=10)
    # A JSON file of wallet risk limits (see wallet.rules.parse_limits); empty: the built-in defaults.
    wallet_limits_file: str = ""
    # Proximity payments up to this amount need only the card tap; above it, the payment password.
    proximity_pin_free_fen: int = 20_000
    # The national root keys of the Expo cards (`expo card keys generate`); empty: cards cannot be written.
    key_file: str = ""
    # The keyring signing QR vouchers and physical tickets (`expo ticket-keys generate`); empty: no QR-voucher sales.
    signing_key_file: str = ""
    # Ticket commission rates in basis points, e.g. "default=300,peak=250"; empty: 300 (3%) for every type.
    commission_rates: str = ""

    @property
    def effective_database_url(self) -> str:
        """The database URL: EXPO_DATABASE_URL, or the SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'expo.db').resolve()}"

    @classmethod
    def from_env(cls) -> "Settings":
        """Read EXPO_* variables; unset ones keep their defaults."""
        offset = os.environ.get("EXPO_CLOCK_OFFSET_SECONDS")
        return cls(
            data_dir=Path(os.environ.get("EXPO_DATA_DIR", "data")),
            database_url=os.environ.get("EXPO_DATABASE_URL", ""),
            host=os.environ.get("EXPO_HOST", "127.0.0.1"),
            port=_env_int("EXPO_PORT", 8000),
            workers=_env_int("EXPO_WORKERS", 2),
            clock_offset=timedelta(seconds=float(offset)) if offset else None,
            max_body_bytes=_env_int("EXPO_MAX_BODY_BYTES", 64 * 1024),
            cod_delivery_window=timedelta(hours=_env_int("EXPO_COD_DELIVERY_HOURS", 72)),
            bank_payment_window=timedelta(minutes=_env_int("EXPO_BANK_PAYMENT_MINUTES", 30)),
            bank_notify_secret=os.environ.get("EXPO_BANK_NOTIFY_SECRET", ""),
            sweep_interval_seconds=_env_int("EXPO_SWEEP_INTERVAL_SECONDS", 30),
            wallet_hold_window=timedelta(minutes=_env_int("EXPO_WALLET_HOLD_MINUTES", 10)),
            wallet_limits_file=os.environ.get("EXPO_WALLET_LIMITS_FILE", ""),
            proximity_pin_free_fen=_env_int("EXPO_PROXIMITY_PIN_FREE_FEN", 20_000),
            key_file=os.environ.get("EXPO_KEY_FILE", ""),
            signing_key_file=os.environ.get("EXPO_SIGNING_KEY_FILE", ""),
            commission_rates=os.environ.get("EXPO_COMMISSION_RATES", ""),
        )

"""API schemas of the wallet (msgspec Structs) and their construction from models."""

from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct

from expo.http import PLAIN_TEXT
from wallet.accounts import Balances, OpenedVia
from wallet.models import Merchant, WalletTransfer, WalletUser
from wallet.rules import PaymentChannel

Msisdn = Annotated[str, Meta(min_length=1, max_length=20)]
Password = Annotated[str, Meta(min_length=1, max_length=32)]
SmsDigits = Annotated[str, Meta(pattern=r"^\d{6}$")]
ShortText = Annotated[str, Meta(min_length=1, max_length=32, pattern=PLAIN_TEXT)]
LongText = Annotated[str, Meta(min_length=1, max_length=200, pattern=PLAIN_TEXT)]
IdLast4 = Annotated[str, Meta(pattern=r"^[0-9]{3}[0-9Xx]$")]
# Bigger amounts are refused by the rules with their own code; this only keeps numbers within BIGINT.
Fen = Annotated[int, Meta(ge=-(2**53), le=2**53)]
MerchantCode = Annotated[str, Meta(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,31}$")]


class CodeRequestIn(Struct, forbid_unknown_fields=True):
    msisdn: Msisdn
    purpose: Annotated[str, Meta(pattern="^(open|password)$")]


class AccountIn(Struct, forbid_unknown_fields=True):
    msisdn: Msisdn
    password: Password | None = None
    code: SmsDigits | None = None  # web openings prove the phone with a texted code
    id_last4: IdLast4 | None = None  # hall openings check the holder's ID


class RealNameIn(Struct, forbid_unknown_fields=True):
    id_last4: IdLast4


class PasswordIn(Struct, forbid_unknown_fields=True):
    password: Password
    code: SmsDigits


class AccountOut(Struct):
    msisdn: str
    province_code: str
    account_class: str
    opened_via: str
    password_set: bool
    balance_fen: int
    red_packet_fen: int
    held_fen: int
    available_fen: int


class MerchantIn(Struct, forbid_unknown_fields=True):
    code: MerchantCode
    name: LongText
    category: ShortText
    province_code: Annotated[str, Meta(pattern=r"^\d\d$")]
    fee_rate_bp: Annotated[int, Meta(ge=0, le=10_000)] | None = None  # default: the category's guide price
    allows_adjust: bool = False


class MerchantOut(Struct):
    code: str
    name: str
    category: str
    province_code: str
    fee_rate_bp: int
    allows_adjust: bool
    balance_fen: int


class PaymentIn(Struct, forbid_unknown_fields=True):
    merchant: MerchantCode
    msisdn: Msisdn
    amount_fen: Fen
    channel: PaymentChannel
    password: Password | None = None  # web payments
    voucher: ShortText | None = None
    product: ShortText | None = None
    description: LongText | None = None
    reference: ShortText | None = None  # the merchant's own order number


class ConfirmIn(Struct, forbid_unknown_fields=True):
    code: SmsDigits


class RefundIn(Struct, forbid_unknown_fields=True):
    amount_fen: Fen
    reason: LongText | None = None


class TransferOut(Struct):
    id: int
    kind: str
    state: str
    amount_fen: int
    msisdn: str | None
    merchant: str | None
    channel: str | None
    fee_fen: int
    red_packet_fen: int
    voucher_fen: int
    refunded_fen: int
    original_id: int | None
    reference: str | None
    description: str | None
    created_at: datetime
    expires_at: datetime | None
    finished_at: datetime | None


def account_out(user: WalletUser, balances: Balances) -> AccountOut:
    return AccountOut(
        msisdn=user.msisdn,
        province_code=user.province_code,
        account_class=user.account_class,
        opened_via=OpenedVia(user.opened_via).value,
        password_set=user.password_hash is not None,
        balance_fen=balances.balance_fen,
        red_packet_fen=balances.red_packet_fen,
        held_fen=balances.held_fen,
        available_fen=balances.available_fen,
    )


def merchant_out(merchant: Merchant, *, balance_fen: int) -> MerchantOut:
    return MerchantOut(
        code=merchant.code,
        name=merchant.name,
        category=merchant.category,
        province_code=merchant.province_code,
        fee_rate_bp=merchant.fee_rate_bp,
        allows_adjust=merchant.allows_adjust,
        balance_fen=balance_fen,
    )


def transfer_out(transfer: WalletTransfer, *, msisdn: str | None, merchant: str | None) -> TransferOut:
    return TransferOut(
        id=transfer.id,
        kind=transfer.kind,
        state=transfer.state,
        amount_fen=transfer.amount_fen,
        msisdn=msisdn,
        merchant=merchant,
        channel=transfer.channel,
        fee_fen=transfer.fee_fen,
        red_packet_fen=transfer.red_packet_fen,
        voucher_fen=transfer.voucher_fen,
        refunded_fen=transfer.refunded_fen,
        original_id=transfer.original_id,
        reference=transfer.reference,
        description=transfer.description,
        created_at=transfer.created_at,
        expires_at=transfer.expires_at,
        finished_at=transfer.finished_at,
    )

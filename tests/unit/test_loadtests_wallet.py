"""The wallet benchmark and locust file: they load, and their setup builds bodies the API's schemas accept."""

import asyncio
import subprocess
import sys
from collections import Counter
from functools import partial
from pathlib import Path

import msgspec
import pytest

from expo.provinces import find_segment_range, load_shipped_segments, number_segment
from loadtests import bench_wallet, wallet_driver
from loadtests.wallet_driver import (
    HOT_MERCHANT,
    PAYMENT_FEN,
    PAYMENT_PASSWORD,
    Merchant,
    PaymentOutcomes,
    PosTerminal,
    WebFront,
)
from wallet.api_pos import PosPaymentIn, TerminalIn
from wallet.api_topups import CashTopUpIn
from wallet.rules import DEFAULT_LIMITS, AccountClass, LimitedOperation, PaymentChannel, parse_limits
from wallet.schemas import AccountIn, MerchantIn, PaymentIn

ROOT = Path(__file__).resolve().parents[2]


def test_the_locust_file_loads_under_locust_and_lists_its_users() -> None:
    # locust imports the file as module "wallet", which must not shadow the wallet package.
    listed = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/wallet.py", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[-3:] == ["ShopTerminal", "MetroGate", "WebShopper"]


def test_the_locust_file_imports_as_a_module_too() -> None:
    # In a child process: importing locust monkey-patches the standard library.
    imported = subprocess.run(
        [sys.executable, "-c", "import loadtests.wallet as w; print(w.HOT['code'], len(w.SHOPS))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == [HOT_MERCHANT, "8"]


def test_the_generous_limits_are_a_valid_limits_document_above_every_default() -> None:
    limits = parse_limits(wallet_driver.generous_limits())
    for account_class in AccountClass:
        for operation in LimitedOperation:
            ours, default = limits.of(account_class, operation), DEFAULT_LIMITS.of(account_class, operation)
            assert ours.day.count > 1000 * default.day.count
            assert ours.month.amount_fen > 1000 * default.month.amount_fen


def test_setup_bodies_are_what_the_api_decodes() -> None:
    merchant = msgspec.convert(
        wallet_driver.merchant_body("POS-0001", category="restaurants", province_code="44"), type=MerchantIn
    )
    assert (merchant.code, merchant.category, merchant.province_code) == ("POS-0001", "restaurants", "44")
    terminal = msgspec.convert(wallet_driver.terminal_body(wallet_driver.new_terminal_no()), type=TerminalIn)
    assert len(terminal.terminal_no) == 16
    tap_only = msgspec.convert(wallet_driver.account_body("13800000001"), type=AccountIn)
    assert (tap_only.password, tap_only.id_last4) == (None, "123X")
    remote = msgspec.convert(wallet_driver.account_body("13800000001", password=PAYMENT_PASSWORD), type=AccountIn)
    assert remote.password == PAYMENT_PASSWORD
    top_up = msgspec.convert(wallet_driver.top_up_body("13800000001"), type=CashTopUpIn)
    assert top_up.amount_fen == wallet_driver.TOP_UP_FEN


def test_a_terminal_numbers_its_payments_and_the_web_front_keys_each_one() -> None:
    shop = Merchant("POS-0001", fee_rate_bp=300)
    terminal = PosTerminal(shop, {"Authorization": "Bearer t"})
    first, second = (terminal.payment(msisdn="13800000001", amount_fen=1_000) for _ in range(2))
    assert [msgspec.convert(r.body, type=PosPaymentIn).serial for r in (first, second)] == [1, 2]
    assert first.path == "/v1/wallet/pos/payments"
    assert "Idempotency-Key" not in first.headers  # the serial is the key

    web = WebFront(Merchant("WEB-0001", fee_rate_bp=100), {"Authorization": "Bearer w"})
    one, other = (web.payment(msisdn="13800000001", amount_fen=2_550) for _ in range(2))
    body = msgspec.convert(one.body, type=PaymentIn)
    assert (body.merchant, body.channel, body.password) == ("WEB-0001", PaymentChannel.WEB, PAYMENT_PASSWORD)
    assert one.headers["Idempotency-Key"] != other.headers["Idempotency-Key"]
    assert web.merchant.net_of(2_550) == 2_550 - 26  # the 1% fee rounds half up
    assert PAYMENT_FEN[1] <= 20_000  # a card tap needs no password up to the PIN-free amount


def test_wallet_numbers_are_distinct_and_spread_over_provinces() -> None:
    numbers = wallet_driver.spread_numbers(300)
    assert len(set(numbers)) == 300
    ranges = load_shipped_segments()
    homes: Counter[str] = Counter()
    for msisdn in numbers:
        found = find_segment_range(ranges=ranges, segment=number_segment(msisdn))
        assert found is not None, msisdn
        homes[found.province_code] += 1
    assert len(homes) >= 10
    assert max(homes.values()) < 100


def test_in_parallel_runs_every_job_with_at_most_the_concurrency_in_flight() -> None:
    running, most, done = 0, 0, []

    async def job(n: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0)
        running -= 1
        done.append(n)

    asyncio.run(wallet_driver.in_parallel([partial(job, n) for n in range(20)], concurrency=3))
    assert sorted(done) == list(range(20))
    assert most == 3


def test_the_balance_check_fails_on_any_merchant_owed_other_than_counted(capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = PaymentOutcomes(payments=2, net_by_merchant=Counter({HOT_MERCHANT: 1_980}))
    assert bench_wallet._check_balances(outcomes, {HOT_MERCHANT: 1_980}, hot=True)
    assert not bench_wallet._check_balances(outcomes, {HOT_MERCHANT: 1_990}, hot=True)
    assert "MISMATCH" in capsys.readouterr().out


def test_benchmark_arguments() -> None:
    assert bench_wallet._arguments([]).users == 2000
    assert bench_wallet._arguments(["--remote"]).users == 500
    assert bench_wallet._arguments(["--profile", "/tmp/p"]).workers == 1
    with pytest.raises(SystemExit):
        bench_wallet._arguments(["--hot", "--remote"])

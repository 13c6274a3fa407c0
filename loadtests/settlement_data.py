"""A month of ticket sales and wallet payments written straight into PostgreSQL with set-based SQL, for the
settlement benchmark: tens of millions of rows in minutes, shaped like the service's own records.

June 2010: tickets sold through every channel and payment to buyers of all 31 provinces, 2% of them voided or
refunded later in the month; wallet payments by users of every province at merchants of every category and
province, remote and proximity, with each province's fee share posted as `wallet.payments` posts it (zero legs
dropped, legs on one account merged); each user's balance comes from one bank top-up on 1 June, so every
restricted account stays non-negative and every transfer's postings sum to zero.
"""

import time
from collections.abc import Callable

import asyncpg

from expo.provinces import PROVINCES
from wallet.rules import FEE_CATEGORIES

PROVINCE_CODES = sorted(PROVINCES)
# (product, unit price in fen) of the sales; evening and concession tickets among them.
PRODUCTS = [("standard", 16_000), ("peak", 20_000), ("standard_concession", 9_000), ("evening", 9_000),
            ("pass_3", 40_000), ("pass_7", 80_000)]  # fmt: skip
METHODS = ["cash", "bank_card", "credit_card", "online_banking", "wallet", "cod"]
CHANNEL_OF = {"cash": "hall", "bank_card": "hall", "credit_card": "hotline", "cod": "hotline",
              "online_banking": "web", "wallet": "web"}  # fmt: skip
JUNE_SECONDS = 30 * 86_400
START = "TIMESTAMPTZ '2010-06-01 00:00:00+08'"
CHUNK = 1_000_000

Say = Callable[[str], None]


def _array(values: list[str]) -> str:
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]::text[]"


def _pick(values: list[str], index: str) -> str:
    """SQL choosing values[index mod len] (PostgreSQL arrays count from 1)."""
    return f"({_array(values)})[({index}) % {len(values)} + 1]"


async def generate_month(url: str, *, tickets: int, payments: int, users: int, merchants: int, say: Say) -> None:
    """Write June 2010's sales and payments; prints each step's time."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("SET synchronous_commit = off")
        # Generated rows reference what they were generated with: skip the foreign-key triggers while loading.
        await connection.execute("SET session_replication_role = replica")
        credential = await connection.fetchval("SELECT min(id) FROM credentials WHERE role = 'hall_terminal'")
        await _timed(say, f"{tickets:,} orders, tickets and charges", _tickets(connection, tickets, credential))
        await _timed(say, f"{users:,} wallet users, {merchants:,} merchants", _parties(connection, users, merchants))
        await _timed(say, f"{payments:,} wallet payments and their postings", _payments(connection, payments, users))
        await _timed(say, "top-ups and balances", _balances(connection))
        await _timed(say, "day closes, bank files and ANALYZE", _closes_and_bank_files(connection, credential))
    finally:
        await connection.close()


async def _timed(say: Say, label: str, work: object) -> None:
    started = time.perf_counter()
    await work  # type: ignore[misc]
    say(f"  generated {label} in {time.perf_counter() - started:,.1f} s")


async def _tickets(connection: asyncpg.Connection, count: int, credential: int) -> None:
    method = _pick(METHODS, "g / 7")
    product = f"({_pick([p for p, _ in PRODUCTS], 'g / 3')})"
    price = f"({'ARRAY[' + ','.join(str(p) for _, p in PRODUCTS) + ']'})[(g / 3) % {len(PRODUCTS)} + 1]"
    for first in range(1, count + 1, CHUNK):
        last = min(first + CHUNK - 1, count)
        await connection.execute(f"""
            INSERT INTO orders (id, credential_id, idempotency_key, channel, sale_province, msisdn, home_province,
                product, quantity, unit_price_fen, amount_fen, carrier, payment_method, status, created_at, paid_at)
            SELECT g, {credential}, 'bench-' || g, {_pick([CHANNEL_OF[m] for m in METHODS], "g / 7")},
                {_pick(PROVINCE_CODES, "g / 11")}, '139' || lpad(g::text, 8, '0'), {_pick(PROVINCE_CODES, "g")},
                {product}, 1, {price}, {price}, 'expo_card', {method}, 'paid', t, t
            FROM generate_series({first}::bigint, {last}::bigint) AS g,
                LATERAL (SELECT {START} + make_interval(secs => (g * 7919) % {JUNE_SECONDS})) AS at_(t)
        """)
        await connection.execute(f"""
            INSERT INTO tickets (id, order_id, msisdn, home_province, ticket_type, carrier, status, entries_used,
                created_at)
            SELECT id, id, msisdn, home_province, product, 'expo_card', 'issued', 0, created_at
            FROM orders WHERE id BETWEEN {first} AND {last}
        """)
        await connection.execute(f"""
            INSERT INTO payments (order_id, kind, method, amount_fen, status, reference, created_at, settled_at)
            SELECT id, 'charge', payment_method, amount_fen, 'confirmed', 'PAY-' || id, created_at, created_at
            FROM orders WHERE id BETWEEN {first} AND {last}
        """)
    # 2% voided or refunded, a little later the same month (or never, past its end).
    await connection.execute(f"""
        INSERT INTO payments (order_id, kind, method, amount_fen, status, reference, created_at, settled_at)
        SELECT id, CASE WHEN id % 2 = 0 THEN 'void' ELSE 'refund' END, payment_method, amount_fen, 'confirmed',
            'PAY-' || id || '-R', paid_at + interval '3 days', paid_at + interval '3 days'
        FROM orders WHERE id % 50 = 0 AND paid_at + interval '3 days' < {START} + interval '30 days'
    """)
    await connection.execute("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))")
    await connection.execute("SELECT setval('tickets_id_seq', (SELECT max(id) FROM tickets))")


async def _parties(connection: asyncpg.Connection, users: int, merchants: int) -> None:
    categories = sorted(FEE_CATEGORIES)
    await connection.execute(f"""
        INSERT INTO wallet_accounts (code, kind, province_code, restricted, balance, held, created_at)
        SELECT 'fee_income:' || p, 'fee_income', p, false, 0, 0, {START} FROM unnest({_array(PROVINCE_CODES)}) AS p
        UNION ALL SELECT 'bank_settlement', 'bank_settlement', NULL, false, 0, 0, {START}
        ON CONFLICT (code) DO NOTHING
    """)
    await connection.execute(f"""
        INSERT INTO wallet_accounts (code, kind, province_code, restricted, balance, held, created_at)
        SELECT 'merchant:BM' || g, 'merchant', NULL, true, 0, 0, {START} FROM generate_series(1, {merchants}) g
    """)
    await connection.execute(f"""
        INSERT INTO merchants (code, name, category, province_code, fee_rate_bp, allows_adjust, account_id, created_at)
        SELECT 'BM' || g, 'Bench merchant ' || g, c.name, {_pick(PROVINCE_CODES, "g * 7")}, c.bp, false, a.id, {START}
        FROM generate_series(1, {merchants}) g
        JOIN wallet_accounts a ON a.code = 'merchant:BM' || g
        CROSS JOIN LATERAL (SELECT {_pick(categories, "g")} AS name) AS pick
        JOIN (VALUES {",".join(f"('{c.name}', {c.guide_bp})" for c in FEE_CATEGORIES.values())}) AS c(name, bp)
            ON c.name = pick.name
    """)
    await connection.execute(f"""
        INSERT INTO wallet_accounts (code, kind, province_code, restricted, balance, held, created_at)
        SELECT k || ':139' || lpad(g::text, 8, '0'), k, NULL, true, 0, 0, {START}
        FROM generate_series(1, {users}) g CROSS JOIN unnest(ARRAY['user', 'red_packet']) AS k
    """)
    await connection.execute(f"""
        INSERT INTO wallet_users (msisdn, province_code, account_id, red_packet_account_id, account_class,
            opened_via, failed_passwords, created_at)
        SELECT '139' || lpad(g::text, 8, '0'), {_pick(PROVINCE_CODES, "g")}, u.id, r.id, 'real_name', 'hall', 0,
            {START}
        FROM generate_series(1, {users}) g
        JOIN wallet_accounts u ON u.code = 'user:139' || lpad(g::text, 8, '0')
        JOIN wallet_accounts r ON r.code = 'red_packet:139' || lpad(g::text, 8, '0')
    """)


async def _payments(connection: asyncpg.Connection, count: int, users: int) -> None:
    proximity = _array(sorted(c.name for c in FEE_CATEGORIES.values() if c.proximity))
    merchants = await connection.fetchval("SELECT count(*) FROM merchants")
    first_user = await connection.fetchval("SELECT min(id) FROM wallet_users")
    for first in range(1, count + 1, CHUNK):
        last = min(first + CHUNK - 1, count)
        # The transfer: amount 1.00 to 500.00 yuan; the fee rounded half up; the channel by the category.
        await connection.execute(f"""
            INSERT INTO wallet_transfers (idempotency_key, kind, state, amount_fen, user_id, operation, merchant_id,
                channel, fee_fen, red_packet_fen, voucher_fen, refunded_fen, created_at, finished_at)
            SELECT 'bench:' || g, 'payment', 'posted', a.amount, {first_user} + (g * 31) % {users}, 'payment', m.id,
                CASE WHEN m.category = ANY({proximity}) THEN 'proximity' ELSE 'web' END,
                (a.amount * m.fee_rate_bp + 5000) / 10000, 0, 0, 0, t, t
            FROM generate_series({first}::bigint, {last}::bigint) g
            CROSS JOIN LATERAL (SELECT 100 + (g * 104729) % 49901 AS amount) a
            CROSS JOIN LATERAL (SELECT {START} + make_interval(secs => (g * 6151) % {JUNE_SECONDS}) AS t) at_
            JOIN merchants m ON m.id = (g * 13) % {merchants} + 1
        """)
    # Postings, as wallet.payments posts them: the user pays the amount; the merchant gets amount - fee; the
    # user's province 70% of a proximity fee (half up) and all of a remote one; the merchant's province the rest.
    await connection.execute("""
        CREATE TEMP TABLE shares AS
        SELECT t.id, t.amount_fen, t.fee_fen, t.created_at, u.account_id AS user_account,
            m.account_id AS merchant_account, u.province_code AS user_province, m.province_code AS merchant_province,
            CASE WHEN t.channel = 'proximity' THEN (t.fee_fen * 70 + 50) / 100 ELSE t.fee_fen END AS user_share
        FROM wallet_transfers t JOIN wallet_users u ON u.id = t.user_id JOIN merchants m ON m.id = t.merchant_id
        WHERE t.kind = 'payment'
    """)
    await connection.execute("""
        INSERT INTO wallet_postings (transfer_id, account_id, amount_fen, created_at)
        SELECT id, user_account, -amount_fen, created_at FROM shares
        UNION ALL SELECT id, merchant_account, amount_fen - fee_fen, created_at FROM shares
            WHERE amount_fen <> fee_fen
        UNION ALL SELECT s.id, f.id,
                CASE WHEN s.user_province = s.merchant_province THEN s.fee_fen ELSE s.user_share END, s.created_at
            FROM shares s JOIN wallet_accounts f ON f.code = 'fee_income:' || s.user_province
            WHERE (CASE WHEN s.user_province = s.merchant_province THEN s.fee_fen ELSE s.user_share END) <> 0
        UNION ALL SELECT s.id, f.id, s.fee_fen - s.user_share, s.created_at
            FROM shares s JOIN wallet_accounts f ON f.code = 'fee_income:' || s.merchant_province
            WHERE s.user_province <> s.merchant_province AND s.fee_fen - s.user_share <> 0
    """)
    await connection.execute("DROP TABLE shares")


async def _balances(connection: asyncpg.Connection) -> None:
    # One bank top-up per paying user on 1 June, 00:00:01, of what it spends in the month plus 100 yuan.
    await connection.execute(f"""
        INSERT INTO wallet_transfers (idempotency_key, kind, state, amount_fen, user_id, operation, channel, fee_fen,
            red_packet_fen, voucher_fen, refunded_fen, reference, created_at, finished_at)
        SELECT 'bench-top-up:' || user_id, 'top_up', 'posted', sum(amount_fen) + 10000, user_id, 'top_up',
            'online_banking', 0, 0, 0, 0, 'TOP-' || user_id, {START} + interval '1 second',
            {START} + interval '1 second'
        FROM wallet_transfers WHERE kind = 'payment' GROUP BY user_id
    """)
    await connection.execute("""
        INSERT INTO wallet_postings (transfer_id, account_id, amount_fen, created_at)
        SELECT t.id, u.account_id, t.amount_fen, t.created_at
            FROM wallet_transfers t JOIN wallet_users u ON u.id = t.user_id WHERE t.kind = 'top_up'
        UNION ALL SELECT t.id, b.id, -t.amount_fen, t.created_at
            FROM wallet_transfers t JOIN wallet_accounts b ON b.code = 'bank_settlement' WHERE t.kind = 'top_up'
    """)
    await connection.execute("""
        UPDATE wallet_accounts a SET balance = s.total
        FROM (SELECT account_id, sum(amount_fen) AS total FROM wallet_postings GROUP BY account_id) s
        WHERE a.id = s.account_id
    """)


async def _closes_and_bank_files(connection: asyncpg.Connection, credential: int) -> None:
    """What a real month also has: the terminal's day close each evening, agreeing with the server, and each
    day's bank file confirming every gateway charge, reversal and bank top-up, so matching finds no difference."""
    await connection.execute("ANALYZE")
    day_end = f"{START} + d * interval '1 day' - interval '1 second'"
    await connection.execute(f"""
        INSERT INTO terminal_batches (credential_id, batch_no, since, closed_at, terminal_totals, platform_totals,
            matched, discrepancies)
        SELECT {credential}, d, CASE WHEN d > 1 THEN {day_end} - interval '1 day' END, {day_end}, t.totals, t.totals,
            true, '[]'
        FROM generate_series(1, 30) d
        CROSS JOIN LATERAL (
            SELECT json_build_object('sale', json_build_array(count(*), coalesce(sum(amount_fen), 0)),
                'void', json_build_array(0, 0), 'write', json_build_array(0, 0))::text AS totals
            FROM orders
            WHERE credential_id = {credential} AND created_at <= {day_end}
                AND (d = 1 OR created_at > {day_end} - interval '1 day')
        ) t
    """)
    await connection.execute(f"""
        INSERT INTO bank_confirmation_files (bank, day, digest, lines, amount_fen, received_at)
        SELECT 'ICBC', (({START} + d * interval '1 day') AT TIME ZONE 'Asia/Shanghai')::date, md5(d::text), 0, 0,
            {START} + (d + 1) * interval '1 day'
        FROM generate_series(0, 29) d
    """)
    local_day = "(at_ AT TIME ZONE 'Asia/Shanghai')::date"
    await connection.execute(f"""
        INSERT INTO bank_confirmations (file_id, bank, day, reference, kind, amount_fen)
        SELECT f.id, f.bank, f.day, x.reference, x.kind, x.amount_fen
        FROM (
            -- a reversal is confirmed under its charge's reference
            SELECT 'PAY-' || p.order_id AS reference, p.kind, p.amount_fen, p.settled_at AS at_
            FROM payments p
            WHERE p.method IN ('credit_card', 'online_banking') AND p.status = 'confirmed'
            UNION ALL
            SELECT reference, 'top_up', amount_fen, finished_at FROM wallet_transfers WHERE kind = 'top_up'
        ) x
        JOIN bank_confirmation_files f ON f.day = {local_day.replace("at_", "x.at_")}
    """)
    await connection.execute("""
        UPDATE bank_confirmation_files f SET lines = s.n, amount_fen = s.total
        FROM (SELECT file_id, count(*) AS n, sum(amount_fen) AS total FROM bank_confirmations GROUP BY file_id) s
        WHERE f.id = s.file_id
    """)
    await connection.execute("ANALYZE")

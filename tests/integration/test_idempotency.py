"""Idempotency-Key over HTTP: replays, reuse with another body, missing keys, stored refusals, keys in flight."""

from datetime import timedelta

import msgspec

from expo import idempotency
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import (
    agent_sale,
    assert_problem,
    credential_id,
    nothing_written,
    row_counts,
)


async def test_replay_returns_the_first_answer_once(service: Service, clerk: dict[str, str]) -> None:
    first = await service.post("/v1/orders", hall_sale(number(1)), clerk, key="sale-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    replay = await service.post("/v1/orders", hall_sale(number(1)), clerk, key="sale-1")
    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    assert (await row_counts(service.db))["orders"] == 1


async def test_same_key_with_another_body_is_refused(service: Service, clerk: dict[str, str]) -> None:
    first = await service.post("/v1/orders", hall_sale(number(1)), clerk, key="sale-1")
    assert first.status_code == 201, first.text
    other = await service.post("/v1/orders", hall_sale(number(2)), clerk, key="sale-1")
    assert_problem(other, 422, "idempotency_key_reused")
    assert (await row_counts(service.db))["orders"] == 1


async def test_keys_belong_to_their_caller(service: Service, clerk: dict[str, str], agent: dict[str, str]) -> None:
    hall = await service.post("/v1/orders", hall_sale(number(1)), clerk, key="shared")
    hotline = await service.post("/v1/orders", agent_sale(number(2)), agent, key="shared")
    assert (hall.status_code, hotline.status_code) == (201, 201)
    assert (await row_counts(service.db))["orders"] == 2


async def test_missing_or_bad_key_is_refused(service: Service, clerk: dict[str, str]) -> None:
    missing = await service.client.post("/v1/orders", json=hall_sale(number(1)), headers=clerk)
    assert_problem(missing, 400, "idempotency_key_required")
    empty = await service.client.post("/v1/orders", json=hall_sale(number(1)), headers={**clerk, "Idempotency-Key": ""})
    assert_problem(empty, 400, "idempotency_key_required")
    too_long = await service.post("/v1/orders", hall_sale(number(1)), clerk, key="k" * 101)
    assert_problem(too_long, 400, "invalid_idempotency_key")
    await nothing_written(service.db)
    assert (await service.post("/v1/orders", hall_sale(number(1)), clerk)).status_code == 201


async def test_a_refusal_replays_as_the_same_refusal(service: Service, clerk: dict[str, str]) -> None:
    first = await service.post("/v1/orders", hall_sale("13012345678"), clerk, key="bad-number")
    assert_problem(first, 422, "unknown_number_segment")
    replay = await service.post("/v1/orders", hall_sale("13012345678"), clerk, key="bad-number")
    assert_problem(replay, 422, "unknown_number_segment")
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    await nothing_written(service.db)


async def test_a_declined_payment_replays_without_charging_again(service: Service, agent: dict[str, str]) -> None:
    sale = agent_sale(number(1), account="4000000000000002")
    first = await service.post("/v1/orders", sale, agent, key="declined")
    assert_problem(first, 402, "payment_declined")
    replay = await service.post("/v1/orders", sale, agent, key="declined")
    assert_problem(replay, 402, "payment_declined")
    assert replay.headers["idempotent-replayed"] == "true"
    await nothing_written(service.db)


async def _claim_for_sh_hall(service: Service, *, key: str, body: bytes) -> int:
    """Claim a key for the Xujiahui terminal as a concurrent request would, and leave it running."""
    claimed = await idempotency.claim(
        service.db,
        scope=f"c{await credential_id(service.db, 'sh_hall')}",
        key=key,
        fingerprint=idempotency.fingerprint_of(method="POST", path="/v1/orders", body=body),
        now=service.clock.now(),
        lock=timedelta(seconds=30),
    )
    assert isinstance(claimed, int)
    return claimed


async def test_a_key_still_running_gets_409(service: Service, clerk: dict[str, str]) -> None:
    body = msgspec.json.encode(hall_sale(number(1)))
    await _claim_for_sh_hall(service, key="in-flight", body=body)
    headers = {**clerk, "Idempotency-Key": "in-flight", "Content-Type": "application/json"}

    reply = await service.client.post("/v1/orders", content=body, headers=headers)
    assert_problem(reply, 409, "request_in_progress")
    await nothing_written(service.db)

    # Another body under the running key is still a reuse, not a wait.
    other = await service.client.post("/v1/orders", content=msgspec.json.encode(hall_sale(number(2))), headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")


async def test_a_dead_claim_is_taken_over_once_its_lock_lapses(service: Service, clerk: dict[str, str]) -> None:
    body = msgspec.json.encode(hall_sale(number(1)))
    await _claim_for_sh_hall(service, key="died", body=body)
    headers = {**clerk, "Idempotency-Key": "died", "Content-Type": "application/json"}

    service.clock.advance(timedelta(seconds=31))
    reply = await service.client.post("/v1/orders", content=body, headers=headers)
    assert reply.status_code == 201, reply.text
    replay = await service.client.post("/v1/orders", content=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert (await row_counts(service.db))["orders"] == 1


async def test_void_is_idempotent_too(service: Service, clerk: dict[str, str]) -> None:
    order = (await service.post("/v1/orders", hall_sale(number(1)), clerk)).json()
    first = await service.post(f"/v1/orders/{order['id']}/void", {}, clerk, key="void-1")
    assert first.status_code == 200, first.text
    replay = await service.post(f"/v1/orders/{order['id']}/void", {}, clerk, key="void-1")
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert (await row_counts(service.db))["payments"] == 2  # the charge and one void, not two
    assert_problem(await service.post(f"/v1/orders/{order['id']}/void", {}, clerk), 409, "not_voidable")

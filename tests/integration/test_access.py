"""Who may call what: bearer tokens, roles, staff logins at their own devices, lockout, logout, credentials."""

from datetime import timedelta

from sqlalchemy import select

from expo.access.models import Credential
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import assert_problem, nothing_written


async def test_no_token_is_401(service: Service) -> None:
    reply = await service.client.post("/v1/orders", json=hall_sale(number(1)), headers={"Idempotency-Key": "k"})
    assert_problem(reply, 401, "unauthorized")
    assert reply.headers["www-authenticate"] == "Bearer"
    assert_problem(await service.client.get("/v1/catalogue"), 401, "unauthorized")
    basic = await service.client.get("/v1/catalogue", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_problem(basic, 401, "unauthorized")


async def test_bad_token_is_401(service: Service) -> None:
    for token in ("nonsense", "exk_0123456789abcdef.secret", service.principals.tokens["admin"] + "x"):
        reply = await service.client.get("/v1/me", headers=service.auth(token))
        assert_problem(reply, 401, "invalid_token")


async def test_roles_that_do_not_sell_are_403(service: Service) -> None:
    for device in ("courier", "sh_hall", "sh_12580", "admin"):
        reply = await service.post("/v1/orders", hall_sale(number(1)), service.device(device))
        assert_problem(reply, 403, "role_not_allowed")
    await nothing_written(service.db)


async def test_courier_may_not_void_nor_read_the_journal(service: Service, clerk: dict[str, str]) -> None:
    order = (await service.post("/v1/orders", hall_sale(number(1)), clerk)).json()
    courier = service.device("courier")
    assert_problem(await service.post(f"/v1/orders/{order['id']}/void", {}, courier), 403, "role_not_allowed")
    assert_problem(
        await service.client.get(f"/v1/orders/{order['id']}/events", headers=courier), 403, "role_not_allowed"
    )


async def test_clerk_logs_in_only_at_a_terminal_of_their_hall(service: Service) -> None:
    password = service.principals.passwords["SH-C001"]
    at_beijing = await service.client.post(
        "/v1/sessions", json={"staff_no": "SH-C001", "password": password}, headers=service.device("bj_hall")
    )
    assert_problem(at_beijing, 403, "wrong_device")
    at_hotline = await service.client.post(
        "/v1/sessions", json={"staff_no": "SH-C001", "password": password}, headers=service.device("sh_12580")
    )
    assert_problem(at_hotline, 403, "wrong_device")
    web_login = await service.client.post(
        "/v1/sessions", json={"staff_no": "SH-C001", "password": password}, headers=service.device("web")
    )
    assert_problem(web_login, 403, "role_not_allowed")


async def test_logged_in_clerk_is_seen_as_a_clerk(service: Service, clerk: dict[str, str]) -> None:
    me = (await service.client.get("/v1/me", headers=clerk)).json()
    assert me == {
        "role": "hall_clerk",
        "label": "Wang Fang at sh_hall",
        "province_code": "31",
        "hall": "Shanghai Xujiahui hall",
        "staff_no": "SH-C001",
    }


async def test_five_wrong_passwords_lock_the_account(service: Service) -> None:
    terminal = service.device("sh_hall")
    wrong = {"staff_no": "SH-C001", "password": "not-the-password"}
    for _ in range(5):
        assert_problem(await service.client.post("/v1/sessions", json=wrong, headers=terminal), 401, "invalid_login")
    right = {"staff_no": "SH-C001", "password": service.principals.passwords["SH-C001"]}
    assert_problem(await service.client.post("/v1/sessions", json=right, headers=terminal), 401, "account_locked")
    unknown = {"staff_no": "NOBODY", "password": "whatever1"}
    assert_problem(await service.client.post("/v1/sessions", json=unknown, headers=terminal), 401, "invalid_login")

    service.clock.advance(timedelta(minutes=15, seconds=1))
    unlocked = await service.client.post("/v1/sessions", json=right, headers=terminal)
    assert unlocked.status_code == 201, unlocked.text


async def test_logout_ends_the_token(service: Service, clerk: dict[str, str]) -> None:
    assert (await service.client.get("/v1/me", headers=clerk)).status_code == 200
    bye = await service.client.delete("/v1/sessions/current", headers=clerk)
    assert bye.status_code == 204, bye.text
    assert_problem(await service.client.get("/v1/me", headers=clerk), 401, "session_expired")
    assert_problem(await service.post("/v1/orders", hall_sale(number(1)), clerk), 401, "session_expired")
    await nothing_written(service.db)


async def test_sessions_expire(service: Service, clerk: dict[str, str]) -> None:
    service.clock.advance(timedelta(hours=12))
    assert_problem(await service.client.get("/v1/me", headers=clerk), 401, "session_expired")


async def test_admin_issues_a_credential_shown_once(service: Service) -> None:
    admin = service.device("admin")
    body = {"role": "hall_terminal", "label": "sh_hall_2", "province_code": "31", "hall": "Shanghai Xujiahui hall"}
    reply = await service.client.post("/v1/admin/credentials", json=body, headers=admin)
    assert reply.status_code == 201, reply.text
    issued = reply.json()
    token = issued.pop("token")
    assert issued == {**body, "id": issued["id"]}

    me = await service.client.get("/v1/me", headers=service.auth(token))
    assert me.status_code == 200, me.text
    assert token not in me.text
    assert me.json()["role"] == "hall_terminal"
    async with service.db.read() as session:
        stored = await session.scalar(select(Credential).where(Credential.id == issued["id"]))
    assert stored is not None
    secret = token.split(".", 1)[1]
    assert secret.encode() != stored.secret_hash
    assert secret not in repr(stored.__dict__)

    # The new terminal works like the demo's: the clerk of that hall logs in there.
    password = service.principals.passwords["SH-C001"]
    login = await service.client.post(
        "/v1/sessions", json={"staff_no": "SH-C001", "password": password}, headers=service.auth(token)
    )
    assert login.status_code == 201, login.text


async def test_admin_refuses_incomplete_credentials(service: Service) -> None:
    admin = service.device("admin")
    no_hall = {"role": "hall_terminal", "label": "x", "province_code": "31"}
    assert_problem(
        await service.client.post("/v1/admin/credentials", json=no_hall, headers=admin), 422, "hall_required"
    )
    staff_role = {"role": "hall_clerk", "label": "x", "province_code": "31", "hall": "h"}
    assert_problem(
        await service.client.post("/v1/admin/credentials", json=staff_role, headers=admin), 422, "invalid_role"
    )


async def test_admin_registers_staff_who_can_then_log_in(service: Service) -> None:
    admin = service.device("admin")
    staff = {
        "staff_no": "BJ-C002",
        "name": "Zhao Lei",
        "role": "hall_clerk",
        "province_code": "11",
        "hall": "Beijing Xidan hall",
        "password": "correct horse",
    }
    reply = await service.client.post("/v1/admin/staff", json=staff, headers=admin)
    assert reply.status_code == 201, reply.text
    registered = reply.json()
    assert "password" not in registered
    assert registered["staff_no"] == "BJ-C002"
    again = await service.client.post("/v1/admin/staff", json=staff, headers=admin)
    assert_problem(again, 409, "staff_exists")

    login = await service.client.post(
        "/v1/sessions", json={"staff_no": "BJ-C002", "password": "correct horse"}, headers=service.device("bj_hall")
    )
    assert login.status_code == 201, login.text
    sale = await service.post("/v1/orders", hall_sale(number(1)), service.auth(login.json()["token"]))
    assert sale.status_code == 201, sale.text
    assert (sale.json()["sale_province"], sale.json()["hall"]) == ("11", "Beijing Xidan hall")


async def test_only_the_admin_issues_credentials(service: Service, clerk: dict[str, str]) -> None:
    body = {"role": "admin", "label": "me too"}
    assert_problem(
        await service.client.post("/v1/admin/credentials", json=body, headers=clerk), 403, "role_not_allowed"
    )
    web = service.device("web")
    assert_problem(await service.client.post("/v1/admin/credentials", json=body, headers=web), 403, "role_not_allowed")

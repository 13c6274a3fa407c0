"""The idempotency fingerprint: what makes two requests the same, and no short secret in it."""

import hashlib
import json

from expo.idempotency import fingerprint_of


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_a_password_is_left_out_so_its_hash_cannot_be_brute_forced() -> None:
    with_password = body(merchant="SHOP", amount_fen=100, password="135790")
    stored = fingerprint_of(method="POST", path="/v1/wallet/payments", body=with_password)
    raw = hashlib.sha256(b"\0".join((b"POST", b"/v1/wallet/payments", with_password))).digest()
    assert stored != raw
    for guess in ("135790", "000000", "999999"):
        candidate = body(merchant="SHOP", amount_fen=100, password=guess)
        assert fingerprint_of(method="POST", path="/v1/wallet/payments", body=candidate) == stored


def test_nested_secrets_are_left_out_too_and_the_rest_still_counts() -> None:
    sale = {"msisdn": "13800000001", "payment": {"method": "wallet", "password": "135790"}}
    first = fingerprint_of(method="POST", path="/v1/orders", body=json.dumps(sale).encode())
    sale["payment"]["password"] = "246802"  # type: ignore[index]
    assert fingerprint_of(method="POST", path="/v1/orders", body=json.dumps(sale).encode()) == first
    sale["msisdn"] = "13800000002"
    assert fingerprint_of(method="POST", path="/v1/orders", body=json.dumps(sale).encode()) != first


def test_bodies_without_secrets_keep_their_exact_bytes() -> None:
    plain = b'{"msisdn": "13800000001",  "amount_fen": 5}'
    assert fingerprint_of(method="POST", path="/p", body=plain) == hashlib.sha256(b"POST\0/p\0" + plain).digest()
    assert fingerprint_of(method="POST", path="/p", body=b"not json") == hashlib.sha256(b"POST\0/p\0not json").digest()
    assert fingerprint_of(method="POST", path="/p", body=body(amount_fen=5)) != fingerprint_of(
        method="POST", path="/p", body=body(amount_fen=6)
    )

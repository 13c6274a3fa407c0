"""Fixtures of the gate server tests."""

import pytest

from tests.integration.conftest import Service
from tests.integration.gates.support import Gate, new_gate


@pytest.fixture
async def gate(service: Service) -> Gate:
    """Gate 7, a turnstile at land entrance L3, registered by the back office."""
    return await new_gate(service, 7, "L3")

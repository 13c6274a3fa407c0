"""The integration fixtures (a running service, a hall clerk, the wallet helpers) for the property tests too."""

from tests.integration.conftest import clerk, service, signing_key_file
from tests.integration.wallet.conftest import wallet

__all__ = ["clerk", "service", "signing_key_file", "wallet"]

"""The operator's mobile wallet: accounts, the double-entry ledger, payments, fees and risk limits."""

"""Reconciliation: the money after the sale: commission, proceeds, wallet fee splits, T+1 payouts and statements."""

"""The ticket platform: catalogue and validity rules, orders, channels, tickets, vouchers and provinces."""

"""The gate program against the real service in process: sync, revocations, commands."""

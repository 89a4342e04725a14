"""Benchmarks and their shared evaluation helpers (not used by the bot)."""

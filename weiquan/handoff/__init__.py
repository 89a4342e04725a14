"""handoff: a person from our team takes a conversation over, and gives it back.

- `state`: the hand-off's states and the allowed moves between them (pure).
- `settings`: the settings (environment) and who counts as available (pure).
- `store`: the queue, statuses, left messages and presence, behind a small interface (SQLite or PostgreSQL).
- `summary`: what the operator sees: a one-screen summary and the transcript, read from a Rasa tracker, masked.
- `rasa_api`: the few calls to Rasa's HTTP API (token auth, loopback) the console needs.
- `service`: the operations behind the console's JSON API (take over, send, release, time out).
- `console`: the operator console, a small aiohttp server with its static page (`static/`).

The dialogue side lives in actions/handoff.py; docs/handoff.md explains the whole flow.
"""

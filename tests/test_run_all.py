"""`make run`'s table of services (scripts/run_all.py): what the Rasa server is started with."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts import load_script


@pytest.mark.parametrize("token", ["-U5Xf7etuSnjvDzx7aRHsWdaXi3El10H", "plainToken_123"])
def test_rasa_gets_its_api_token_whatever_it_starts_with(token: str, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    """A generated token that starts with "-" once made `make run` fail: rasa's parser took it for an option."""
    from rasa.__main__ import create_argument_parser

    monkeypatch.setenv("RASA_API_TOKEN", token)
    module = load_script("run_all")
    monkeypatch.setattr(module, "run_endpoints", lambda *_: tmp_path / "endpoints.run.yml")  # nothing written in var/
    options = module.parse(["--rasa-port", "5999", "--action-port", "5998"])
    rasa = next(service for service in module.local_table(options) if service.name == "rasa")
    assert rasa.argv[1:3] == ["-m", "weiquan.ops.serve"]
    parsed = create_argument_parser().parse_args(rasa.argv[3:])
    assert parsed.auth_token == token and parsed.enable_api


def test_the_supervisor_logs_command_lines_without_rasas_api_token() -> None:
    """Each server's log starts with its command line; Rasa's token is on it (rasa reads it nowhere else)."""
    from weiquan.ops.supervisor import printable

    line = printable(["rasa", "run", "--enable-api", "--auth-token=-secret-1", "--auth-token", "secret-2", "-p", "1"])
    assert "secret" not in line and line == "rasa run --enable-api --auth-token=*** --auth-token *** -p 1"

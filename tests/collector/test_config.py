from pathlib import Path

import pytest

from collector.config import load_settings, settings_from_dict
from collector.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "collector.example.toml"


def test_example_config_loads_with_every_section():
    settings = load_settings(EXAMPLE)
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.registry == EXAMPLE.parent / "registry.example.toml"
    assert settings.resolved_store_url == "sqlite:////var/lib/collector/collector.db"
    assert settings.office.spans == ("07:30-11:30", "13:30-17:00")
    assert settings.mail.monthly == ({"unit": "10", "to": ["vanphong@laocai.gov.vn"]},)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "data_dir is required"),
        ({"data_dir": "d", "timezone": "Hanoi"}, "Hanoi"),
        ({"data_dir": "d", "store": {"url": "mysql://x"}}, "sqlite"),
        ({"data_dir": "d", "http": {"prot": 1}}, "unknown key"),
        ({"data_dir": "d", "office": {"spans": ["8-11"]}}, "HH:MM-HH:MM"),
        ({"data_dir": "d", "reports": {"neutral_as": "maybe"}}, "neutral_as"),
        ({"data_dir": "d", "mail": {"monthly": [{"unit": "10"}]}}, "mail.monthly"),
    ],
)
def test_bad_collector_config_is_a_clear_error(doc, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        settings_from_dict(doc, base_dir=tmp_path)


def test_an_unreachable_postgresql_store_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    conf = tmp_path / "collector.toml"
    conf.write_text(f'data_dir = "{tmp_path}"\n[store]\nurl = "postgresql://postgres@127.0.0.1:1/nowhere"\n')
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "quarantine", "list", "--config", str(conf)],
        capture_output=True,
        text=True,
        cwd=EXAMPLE.parents[1],
        timeout=60,
    )
    assert result.returncode == 2 and "cannot reach the PostgreSQL store" in result.stderr
    assert "Traceback" not in result.stderr

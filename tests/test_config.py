import pytest
from pydantic import ValidationError

from outrider.config import Settings, build_settings


def test_defaults_are_sqlite_wal_under_data_dir_on_loopback(tmp_path):
    settings = build_settings(data_dir=tmp_path)
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'outrider.db').resolve()}"
    assert settings.resolved_base_models_dir == tmp_path / "base-models"


def test_environment_variables_are_read(monkeypatch, tmp_path):
    monkeypatch.setenv("OUTRIDER_PORT", "9123")
    monkeypatch.setenv("OUTRIDER_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.port == 9123 and settings.data_dir == tmp_path


def test_production_refuses_the_default_secret():
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(environment="production")
    Settings(environment="production", secret_key="x" * 40)


def test_out_of_range_values_are_refused():
    with pytest.raises(ValidationError):
        Settings(port=0)
    with pytest.raises(ValidationError):
        Settings(model_cache_size=0)


def test_operations_settings_are_checked():
    with pytest.raises(ValidationError, match="metrics_token"):
        Settings(metrics_token="short")
    with pytest.raises(ValidationError, match="log_format"):
        Settings(log_format="xml")
    with pytest.raises(ValidationError, match="ready_timeout_s"):
        Settings(ready_timeout_s=0)
    settings = Settings(metrics_token="m" * 16, log_format="json", access_log=True)
    assert settings.metrics_token == "m" * 16 and settings.log_format == "json" and settings.access_log

"""Docs stay honest: every setting and every endpoint is documented, and the README keeps two commands."""

import re
from pathlib import Path

from outrider.api.app import create_app
from outrider.config import Settings, build_settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def all_docs() -> str:
    return "\n".join(p.read_text() for p in DOCS.glob("*.md")) + (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_reference():
    reference = (DOCS / "configuration.md").read_text()
    missing = [
        f"OUTRIDER_{name.upper()}" for name in Settings.model_fields if f"`OUTRIDER_{name.upper()}`" not in reference
    ]
    assert not missing, f"undocumented settings: {missing}"


def test_every_endpoint_is_documented(tmp_path):
    paths = create_app(build_settings(data_dir=tmp_path)).openapi()["paths"]
    text = all_docs()
    missing, checked = [], 0
    for path, operations in paths.items():
        pattern = re.sub(r"\\{[^}]+\\}", r"\\{[^}]+\\}", re.escape(path))
        for method in operations:
            checked += 1
            if not re.search(rf"{method.upper()} `?{pattern}(?![\w/{{])", text):
                missing.append(f"{method.upper()} {path}")
    assert checked >= 13 and not missing, f"undocumented endpoints: {missing}"


def test_readme_quick_start_is_exactly_two_commands_that_exist():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines() if line.strip()]
    assert commands == ["./scripts/serve", "./scripts/test"]
    for command in commands:
        assert (ROOT / command).stat().st_mode & 0o111
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_is_documented():
    from typer.main import get_command

    from outrider.cli.main import app

    cli = get_command(app)
    documented = (DOCS / "cli.md").read_text()
    for name, command in cli.commands.items():
        subcommands = getattr(command, "commands", None)
        for full in [f"outrider {name} {sub}" for sub in subcommands] if subcommands else [f"outrider {name}"]:
            assert full in documented, f"{full} is not in docs/cli.md"

"""README is the contract: its configuration table, commands and CI entry point match the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_configuration_reference_matches_the_schema():
    block = re.search(r"<!-- config-reference:start -->\n(.*?)<!-- config-reference:end -->", README, re.S)
    assert block, "README lost its configuration reference markers"
    generated = subprocess.run(
        [sys.executable, str(REPO / "tools" / "config_reference.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert block.group(1) == generated, "README's configuration table is stale: run tools/config_reference.py"


def test_ci_runs_the_readme_test_command():
    assert "./dev test" in README and "./dev demo" in README
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^exec \./dev test$", ci, re.M)


def test_readme_message_ids_are_the_ones_the_daemon_writes():
    from ecgd.outputs.results import MESSAGE_IDS

    for kind, mid in MESSAGE_IDS.items():
        assert mid in README, f"{kind} MESSAGE_ID missing from README"


def test_readme_lists_every_cli_command():
    from ecgd.cli import main

    for command in ("run", "check-config", "classify", "beats", "convert", "strip", "export"):
        assert f"`ecgd {command}" in README
    help_text = subprocess.run(
        [sys.executable, "-m", "ecgd", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert all(
        c in help_text for c in ("run", "check-config", "classify", "beats", "convert", "strip", "export")
    )
    assert callable(main)


def test_model_figures_are_the_shipped_models():
    block = re.search(r"<!-- model-card:start -->\n(.*?)<!-- model-card:end -->", README, re.S)
    assert block, "README lost its model-card markers"
    generated = subprocess.run(
        [sys.executable, str(REPO / "tools" / "model_card.py")], capture_output=True, text=True, check=True
    ).stdout
    assert block.group(1) == generated, "README's model figures are stale: run tools/model_card.py"

"""The CI workflow files validate offline, and each runs the Makefile target it should."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from cookbook_testing.pages import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


@pytest.mark.slow  # check-jsonschema in a new interpreter
def test_workflows_match_the_github_schema():
    """check-jsonschema ships the GitHub workflow schema: no network needed."""
    pytest.importorskip("check_jsonschema")
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _runs(name):
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8"))
    return doc, [step.get("run", "") for job in doc["jobs"].values() for step in job.get("steps", [])]


def test_each_workflow_uses_the_makefile():
    doc, runs = _runs("test.yml")
    assert "make test-all" in runs and "make test-portable" in runs and "make test-a11y" in runs
    assert doc["jobs"]["portable"]["strategy"]["matrix"]["runner"] == ["ubuntu-24.04", "ubuntu-24.04-arm"]
    assert doc["jobs"]["zensical-parity"]["continue-on-error"] is True
    assert "make zensical-parity" in runs
    doc, runs = _runs("pages.yml")
    assert "make build" in runs
    uses = [s.get("uses", "") for j in doc["jobs"].values() for s in j.get("steps", [])]
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    doc, runs = _runs("gpu.yml")
    assert "make test-gpu PYTHON=python3" in runs
    assert "gpu" in doc["jobs"]["test-gpu"]["runs-on"] and "self-hosted" in doc["jobs"]["test-gpu"]["runs-on"]
    doc, runs = _runs("weekly.yml")
    assert doc[True]["schedule"]  # YAML 1.1 reads the key `on` as True
    assert "make test-all" in runs and "make linkcheck" in runs

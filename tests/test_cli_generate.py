"""`dmst-eval generate` keeps the bundle self-describing: config.yaml survives the atomic save."""
from __future__ import annotations

import shutil

from typer.testing import CliRunner

from dmst_eval.cli import app
from dmst_eval.synthetic import SyntheticConfig
from tests.conftest import REPO


def test_generate_writes_effective_config(tmp_path):
    out = tmp_path / "bundle"
    r = CliRunner().invoke(app, ["generate", "--config", str(REPO / "data/synthetic/config.yaml"),
                                 "--scale", "0.1", "--seed", "3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    cfg = SyntheticConfig.from_yaml(out / "config.yaml")
    assert (cfg.scale, cfg.seed) == (0.1, 3)
    assert (out / "children.parquet").exists() and (out / "meta.json").exists()


def test_regenerating_in_place_keeps_config_verbatim(tmp_path):
    src = REPO / "data/synthetic/config.yaml"
    out = tmp_path / "synthetic"
    out.mkdir()
    shutil.copy(src, out / "config.yaml")
    cfg = SyntheticConfig.from_yaml(src).replace(scale=0.1)
    cfg.to_yaml(out / "config.yaml")
    text = (out / "config.yaml").read_text()
    r = CliRunner().invoke(app, ["generate", "--config", str(out / "config.yaml"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "config.yaml").read_text() == text

"""`dmst-eval validate` and `dmst-eval dictionary` from the command line (typer runner)."""
from __future__ import annotations

from typer.testing import CliRunner

from dmst_eval import schema
from dmst_eval.cli import app
from tests.test_casedata import META, valid_bundle, valid_frames, write_csv_bundle

runner = CliRunner()


def test_validate_valid_bundle_prints_summary(tmp_path):
    valid_bundle().save(tmp_path / "b")
    r = runner.invoke(app, ["validate", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    assert "placements" in r.stdout and "2008-01-01 to 2025-12-31" in r.stdout


def test_validate_invalid_bundle_lists_problems_and_exits_2(tmp_path):
    f = valid_frames()
    f["facilities"].loc[0, "capacity"] = -1
    f["placements"].loc[1, "child_id"] = "C404"
    d = write_csv_bundle(f, tmp_path / "csv", meta=META)
    r = runner.invoke(app, ["validate", str(d)])
    assert r.exit_code == 2
    err = r.stderr
    assert "2 problem(s) found" in err
    assert "facilities.capacity: 1 row(s) [F1] expected a whole number >= 1" in err
    assert "placements.child_id: 1 row(s) [P2] expected a child_id that exists in children" in err
    assert err.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in r.output


def test_validate_missing_folder_exits_2(tmp_path):
    r = runner.invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert r.exit_code == 2
    assert "no case-data bundle" in r.stderr and "Traceback" not in r.output


def test_dictionary_command_writes_schema(tmp_path):
    out = tmp_path / "docs" / "dd.md"
    r = runner.invoke(app, ["dictionary", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text(encoding="utf-8") == schema.data_dictionary()

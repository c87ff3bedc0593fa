"""synthetic.calibrate: targets, measures (checked against the generator's latent truth), the
simulated-method-of-moments fit (recovers known parameters), privacy checks and the CLI."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import dmst_eval
from dmst_eval.errors import InputError
from dmst_eval.synthetic import SyntheticConfig, generate
from dmst_eval.synthetic.calibrate import (Target, calibrate, load_targets, measure_values,
                                           privacy_report)
from dmst_eval.synthetic.generator import _generate, _Progress
from tests.conftest import REPO


def test_default_targets_file_reads_and_cites_sources():
    ts = load_targets(REPO / "data" / "synthetic" / "targets.yaml")
    names = {t.name for t in ts}
    assert {"confirmed_victims[2008-2011]", "reports[2021]", "home_share[2021]",
            "identified_per_year_ratio[2020-2025 vs 2008-2011]",
            "congregate_relative_rate[2008-2025]", "runaway_relative_rate[2008-2025]"} <= names
    assert all(len(t.source) > 20 for t in ts)
    assert next(t for t in ts if t.measure == "reports").value == 241


@pytest.mark.parametrize("text, match", [
    ("- {measure: victims, period: 2021, value: 1, tolerance: 1}", "unknown"),
    ("- {measure: reports, period: 2021, value: 1}", "lacks"),
    ("- {measure: reports, period: 21, value: 1, tolerance: 1}", "period"),
    ("- {measure: reports, period: 2021, value: 1, tolerance: 0}", "tolerance"),
    ("- {measure: identified_per_year_ratio, period: 2021, value: 1, tolerance: 1}", "vs"),
    ("[]", "non-empty"),
])
def test_bad_targets_raise_one_clear_error(tmp_path, text, match):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(InputError, match=match):
        load_targets(p)


def test_measures_match_generator_truth():
    """Measured from the tables == the generator's own latent bookkeeping."""
    cfg = SyntheticConfig(scale=0.5, seed=21)
    tables, truth, st = _generate(cfg, _Progress(False, 9), keep_state=True)
    ts = [Target("confirmed_victims", "2008-2011", 1, 1), Target("reports", "2021", 1, 1),
          Target("male_victims", "2008-2011", 1, 1),
          Target("congregate_relative_rate", "2008-2025", 1, 1),
          Target("runaway_relative_rate", "2008-2025", 1, 1)]
    m = measure_values(tables, ts)
    cal = truth["calibration"]
    assert m["confirmed_victims[2008-2011]"] == cal["victims_identified_2008_2011"]
    assert m["reports[2021]"] == cal["reports_2021"]
    assert m["male_victims[2008-2011]"] == cal["male_2008_2011"]
    # Gibbs ratios from the tables equal those of the latent flags (C, A, V) over the risk
    # population (the generator also drops the rare children who enter care within 7 days of
    # their 18th birthday, hence not exact)
    assert m["congregate_relative_rate[2008-2025]"] == pytest.approx(
        cal["congregate_ratio_victims"], rel=2e-3)
    assert m["runaway_relative_rate[2008-2025]"] == pytest.approx(
        cal["awol_ratio_victims"], rel=2e-3)


def test_episode_status_and_confirmed_accessor():
    cd = dmst_eval.load(REPO / "data" / "synthetic")  # the statuses survive Parquet and load()
    ep = cd.episodes
    conf = ep["confirmed"]
    ce = cd.confirmed_episodes()
    assert 0 < len(ce) == int(conf.sum()) < len(ep) and ce["confirmed"].all()
    # every report has exactly one episode; its status is the report's disposition
    m = ep.merge(cd.reports, on="report_id")
    assert len(m) == len(ep) == len(cd.reports)
    assert (m["confirmed"] == (m["disposition"] == "confirmed")).all()
    assert set(m["disposition"].astype(str)) == {"confirmed", "not_confirmed", "pending"}


@pytest.mark.slow
def test_calibrate_recovers_two_changed_parameters():
    """Aggregates simulated from a config with two changed parameters: the fit returns them
    within the reported uncertainty (|estimate - truth| <= 2.5 se), and the se is informative
    (the start value is far outside)."""
    base = SyntheticConfig(scale=0.5)
    true = {"log_odds.intercept": base.log_odds["intercept"] + 0.35,
            "unconfirmed_reports": base.unconfirmed_reports * 1.3}
    cfg_true = base.replace(log_odds={**base.log_odds, "intercept": true["log_odds.intercept"]},
                            unconfirmed_reports=true["unconfirmed_reports"])
    spec = [("confirmed_victims", "2008-2011"), ("reports", "2021"), ("reports", "2015-2019"),
            ("home_share", "2021")]
    probe = [Target(m, p, 0.0, 1.0) for m, p in spec]
    sims = np.array([[measure_values(generate(cfg_true, seed=900 + k), probe)[t.name]
                      for t in probe] for k in range(8)])
    mean, sd = sims.mean(0), sims.std(0, ddof=1)
    targets = [Target(m, p, float(v), float(max(s, 1e-3)), se=float(s / np.sqrt(len(sims))))
               for (m, p), v, s in zip(spec, mean, sd)]
    res = calibrate(base, targets, list(true), n_sims=4, max_iter=5)
    est = res.params.set_index("parameter")
    for k, v in true.items():
        e, se, start = est.loc[k, "estimate"], est.loc[k, "se"], est.loc[k, "start"]
        assert se > 0 and np.isfinite(se), (k, se)
        assert abs(e - v) <= 2.5 * se, (k, e, v, se)
        assert abs(start - v) > 2.5 * se, (k, start, v, se)
    assert set(res.fit.columns) >= {"target", "value", "achieved", "sim_se", "z", "met", "source"}
    assert res.evaluations >= 3 and (res.fit["sim_se"] > 0).all()


def test_calibrate_bad_input():
    t = [Target("reports", "2021", 10, 2)]
    with pytest.raises(InputError, match="no field"):
        calibrate(SyntheticConfig(scale=0.1), t, ["no_such_field"])
    with pytest.raises(InputError, match="no key"):
        calibrate(SyntheticConfig(scale=0.1), t, ["log_odds.nope"])
    with pytest.raises(InputError, match="at least one parameter"):
        calibrate(SyntheticConfig(scale=0.1), t, [])


def test_privacy_report_detects_copies_and_reports_no_signal_otherwise():
    a = generate(scale=0.1, seed=1)
    b = generate(scale=0.1, seed=2)
    same = privacy_report(a, a).set_index("metric")["value"]
    assert same["share_exact_copies"] == 1.0 and same["dcr_median"] == 0.0
    other = privacy_report(a, b).set_index("metric")["value"]
    assert other["share_exact_copies"] < 0.2
    assert abs(other["membership_auc"] - 0.5) < 0.05
    assert abs(other["share_closer_to_half_a"] - 0.5) < 0.1


def test_cli_calibrate_and_compare(tmp_path):
    from typer.testing import CliRunner

    from dmst_eval.cli import app

    cfgp = SyntheticConfig(scale=0.2).to_yaml(tmp_path / "c.yaml")
    tp = tmp_path / "t.yaml"
    tp.write_text("- {measure: reports, period: 2021, value: 50, tolerance: 5, source: test}\n")
    real = tmp_path / "extract"
    generate(scale=0.1, seed=7).save(real)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    out = tmp_path / "twin.yaml"
    r = CliRunner().invoke(app, ["calibrate", "--targets", str(tp), "--config", str(cfgp),
                                 "--params", "unconfirmed_reports", "--n-sims", "2",
                                 "--max-iter", "1", "--out", str(out),
                                 "--compare-extract", str(real)])
    assert r.exit_code == 0, r.output
    assert "reports[2021]" in r.output and "membership_auc" in r.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    SyntheticConfig.from_yaml(out)
    after = sorted(p.name for p in tmp_path.rglob("*"))
    assert set(after) - set(before) == {"twin.yaml"}  # nothing else written
    r = CliRunner().invoke(app, ["calibrate"])
    assert r.exit_code != 0 and "--targets" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {measure: nope, period: 2021, value: 1, tolerance: 1}\n")
    r = CliRunner().invoke(app, ["calibrate", "--targets", str(bad)])
    assert r.exit_code != 0 and "unknown" in r.output and "Traceback" not in r.output

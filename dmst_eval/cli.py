"""The ``dmst-eval`` command: generate | calibrate | validate | import | export | brief | briefs | dictionary.

Errors end with one clear line on stderr and a non-zero exit code (2 for invalid input data).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="dmst-eval: synthetic DMST case data, analyses and evaluation briefs.")

DEFAULT_DATA = Path("data/synthetic")
_EMBEDDED = "the embedded synthetic data"


def _brief_data(data: Optional[str]) -> str:
    """``--data`` of brief/briefs: the given bundle or database URL, else the embedded
    synthetic data (the
    repository's ``data/synthetic``, or the copy an installed wheel carries); and show the
    library's log lines (e.g. which Jupyter kernel runs the brief) on stderr."""
    import logging

    class _Echo(logging.Handler):  # to the current stderr, which typer's test runner swaps
        def emit(self, record):
            typer.echo(self.format(record), err=True)

    log = logging.getLogger("dmst_eval")
    if not any(type(h).__name__ == "_Echo" for h in log.handlers):
        log.addHandler(_Echo())
        log.setLevel(logging.INFO)
    if data is not None:
        return data
    from dmst_eval._files import example_data

    return str(example_data())


def _mask(text: str) -> str:
    from dmst_eval.sources import mask_url

    # any URL inside the message, not only at its start
    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.\-]*://\S+", lambda m: mask_url(m[0]), text)


def _fail(msg: str, code: int = 1) -> None:
    typer.secho(f"error: {msg}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


@app.command()
def generate(
    config: Optional[Path] = typer.Option(None, help="YAML config (SyntheticConfig fields)."),
    scale: Optional[float] = typer.Option(None, help="Multiply the population by this factor."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    out: Path = typer.Option(DEFAULT_DATA, help="Output folder (written atomically)."),
) -> None:
    """Generate a synthetic case-data bundle with a known ground truth."""
    from dmst_eval.synthetic import SyntheticConfig, generate as _generate

    try:
        cfg = SyntheticConfig.from_yaml(config) if config else SyntheticConfig()
        cfg_text = Path(config).read_text() if config else None
        overrides = {k: v for k, v in {"scale": scale, "seed": seed}.items() if v is not None}
        cd = _generate(cfg, progress=True, **overrides)
        tg = Path(out) / "targets.yaml"  # calibration targets kept beside the bundle
        tg_text = tg.read_text() if tg.is_file() else None
        cd.save(out)  # replaces the folder atomically, so the config is written back after
        if tg_text is not None:
            tg.write_text(tg_text)
        cfg_out = Path(out) / "config.yaml"
        if config and not overrides and Path(config).resolve() == cfg_out.resolve():
            cfg_out.write_text(cfg_text)  # `make data`: keep the committed config verbatim
        else:
            cfg.replace(**overrides).to_yaml(cfg_out)  # the bundle documents its own config
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    typer.echo(f"wrote {out} ({', '.join(f'{k}: {len(v):,}' for k, v in cd.tables.items())})")


@app.command()
def calibrate(
    targets: Optional[Path] = typer.Option(None, help="Targets YAML (measure, period, value, "
                                           "tolerance, source); see data/synthetic/targets.yaml."),
    config: Optional[Path] = typer.Option(None, help="Starting config YAML (default: the "
                                          "package default)."),
    params: str = typer.Option("log_odds.intercept,non_cw_identification_growth,"
                               "unconfirmed_reports,unconfirmed_in_care_weight",
                               help="Comma list of config parameters to fit."),
    n_sims: int = typer.Option(4, help="Runs per evaluation (common random numbers)."),
    max_iter: int = typer.Option(8, help="Gauss-Newton iterations."),
    out: Path = typer.Option(Path("calibrated_config.yaml"), help="Where to write the fitted "
                             "config (readable by you only)."),
    compare_extract: Optional[str] = typer.Option(None, help="A real extract (folder or database "
                                                  "URL): report how close the twin's records "
                                                  "come to it (aggregates only; nothing is "
                                                  "written)."),
) -> None:
    """Fit a synthetic twin to published figures (simulated method of moments)."""
    import os

    from dmst_eval.errors import InputError
    from dmst_eval.synthetic import SyntheticConfig, generate as _generate
    from dmst_eval.synthetic.calibrate import calibrate as _calibrate, privacy_report

    if targets is None and compare_extract is None:
        _fail("give --targets FILE (to fit) and/or --compare-extract PATH (to check a twin)")
    real = _load_or_exit(compare_extract, None) if compare_extract is not None else None
    try:
        cfg = SyntheticConfig.from_yaml(config) if config else SyntheticConfig()
        if targets is not None:
            res = _calibrate(cfg, targets, [p.strip() for p in params.split(",") if p.strip()],
                             n_sims=n_sims, max_iter=max_iter,
                             progress=lambda it, loss: typer.echo(f"iteration {it}: loss "
                                                                  f"{loss:.3f}", err=True))
            cfg = res.config
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            cfg.to_yaml(tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, out)
            typer.echo(res.report())
            typer.echo(f"\nwrote {out} ({res.evaluations} evaluations, converged: "
                       f"{res.converged})")
        if real is not None:
            rep = privacy_report(_generate(cfg), real)
            typer.echo("\nPrivacy of the twin against the extract (aggregates only):")
            typer.echo(rep.to_string(index=False, float_format="%.4f"))
    except InputError as e:  # a bad targets file or parameter name
        _fail(str(e), 2)
    except (ValueError, FileNotFoundError) as e:  # a bad or missing config file
        _fail(str(e))


def _load_or_exit(location: str, mapping: Optional[Path]):
    """Load a folder or database URL; exit 2 with every problem listed if it is invalid."""
    from dmst_eval.casedata import load
    from dmst_eval.errors import DataValidationError, InputError
    from dmst_eval.sources import mask_url

    try:
        return load(location, mapping=mapping)
    except DataValidationError as e:
        typer.echo(str(e), err=True)
        typer.secho(f"error: {mask_url(location)} is not a valid case-data bundle "
                    f"({len(e.problems)} problem(s), listed above)", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    except (FileNotFoundError, InputError) as e:
        _fail(mask_url(str(e)), 2)


@app.command()
def validate(
    path: str = typer.Argument(str(DEFAULT_DATA),
                               help="Bundle folder (Parquet or CSV) or database URL."),
    mapping: Optional[Path] = typer.Option(None, help="Mapping file (YAML) from the agency's "
                                                      "own tables, columns and codes."),
) -> None:
    """Load and validate a case-data bundle; print a short summary.

    With --mapping, also list the agency's codes that the mapping does not translate.
    """
    if mapping is not None:
        from dmst_eval import sources

        try:
            src = sources.read_source(path, sources.Mapping.from_yaml(mapping))
        except Exception as e:  # noqa: BLE001 — one clear line
            _fail(sources.mask_url(f"{type(e).__name__}: {e}".splitlines()[0]), 2)
        if len(src.unmapped):
            typer.echo("codes the mapping does not translate (table.column: code × rows):")
            for r in src.unmapped.itertuples():
                typer.echo(f"  {r.table}.{r.column}: {r.code!r} × {r.n_rows:,}")
    cd = _load_or_exit(path, mapping)
    typer.echo(cd.describe())


@app.command("import")
def import_(
    folder: str = typer.Argument(..., help="Bundle folder, or the agency's exports with --mapping."),
    to: Path = typer.Option(..., "--to", help="DuckDB file to write (e.g. cases.duckdb)."),
    mapping: Optional[Path] = typer.Option(None, help="Mapping file (YAML)."),
) -> None:
    """Validate a bundle and store it in a DuckDB file (private, 0600) for out-of-core use."""
    from dmst_eval import sources

    _load_or_exit(folder, mapping)  # every problem listed before anything is written
    out = sources.import_bundle(folder, to, mapping=mapping)
    typer.echo(f"wrote {out}; load it with dmst_eval.load('duckdb:///{out}')")


@app.command()
def export(
    source: str = typer.Argument(..., help="Database URL (e.g. duckdb:///cases.duckdb) or folder."),
    to: Path = typer.Option(..., "--to", help="Bundle folder to write (Parquet)."),
    mapping: Optional[Path] = typer.Option(None, help="Mapping file (YAML)."),
) -> None:
    """Load and validate any source and write it as a Parquet bundle folder."""
    cd = _load_or_exit(source, mapping)
    out = cd.save(to)
    typer.echo(f"wrote {out}")


@app.command()
def dictionary(out: Path = typer.Option(Path("docs/data_dictionary.md"), help="Output file.")) -> None:
    """Write the data dictionary (Markdown) from the schema."""
    from dmst_eval.schema import write_data_dictionary

    write_data_dictionary(out)
    typer.echo(f"wrote {out}")


@app.command()
def brief(
    data: Optional[str] = typer.Option(
        None, help="Case-data bundle folder, or a database URL (duckdb:///cases.duckdb, "
                   f"postgresql://analyst@host/db) [default: {_EMBEDDED}]."),
    mapping: Optional[Path] = typer.Option(
        None, help="Mapping file (YAML) from the agency's own tables, columns and codes."),
    region: str = typer.Option("statewide", help='"statewide" or a DCF region, e.g. "Region 4" or 4.'),
    start: Optional[str] = typer.Option(None, help="Period start (YYYY-MM-DD)."),
    end: Optional[str] = typer.Option(None, help="Period end (YYYY-MM-DD)."),
    comparison_start: Optional[str] = typer.Option(None, help="Comparison period start."),
    comparison_end: Optional[str] = typer.Option(None, help="Comparison period end."),
    audience: str = typer.Option("internal", help='"internal" or "public".'),
    threshold: Optional[int] = typer.Option(None, help="Suppression threshold (default 5; public 10)."),
    allow_low_threshold: bool = typer.Option(
        False, help="Accept a threshold below 5 (internal) or 10 (public); the brief says so."),
    out_dir: Path = typer.Option(Path("reports"), help="Output folder (created 0700 if new)."),
    figures_dir: Optional[Path] = typer.Option(None, help="Also save the brief's figures here."),
    pdf: bool = typer.Option(True, help="Also print a PDF with headless Chromium (if installed)."),
    shared_output: bool = typer.Option(
        False, help="Public briefs only: write the files readable by other users (0644, not 0600)."),
) -> None:
    """Render one evaluation brief (HTML, executed notebook, PDF) after a disclosure audit.

    --data takes a bundle folder or a database URL (with --mapping for the agency's own
    tables); a URL or mapping is read and validated here and the brief reads a private copy.

    The files are readable by you only (0600) unless --shared-output is given for a public brief.
    """
    from dmst_eval import briefs as _briefs

    params = {"data_path": str(_brief_data(data)), "region": region, "audience": audience,
              "period_start": start, "period_end": end, "comparison_start": comparison_start,
              "comparison_end": comparison_end, "suppression_threshold": threshold,
              "figures_dir": str(figures_dir) if figures_dir else None,
              "allow_low_threshold": allow_low_threshold}
    try:
        result = _briefs.render(params, out_dir=out_dir, progress=True, pdf=pdf,
                                shared_output=shared_output, mapping=mapping)
    except Exception as e:  # one clear line, not a traceback (and no password)
        _fail(_mask(f"{type(e).__name__}: {e}".splitlines()[0]))
    typer.echo(f"wrote {result} ({result.audit.n_tables} tables, {result.audit.n_figures} "
               f"figures; disclosure audit passed at threshold {result.audit.threshold}; "
               f"{result.seconds:.0f} s)")
    for note in result.notes:
        typer.echo(f"note: {note}")


@app.command()
def briefs(
    data: Optional[str] = typer.Option(
        None, help="Case-data bundle folder, or a database URL (duckdb:///cases.duckdb, "
                   f"postgresql://analyst@host/db) [default: {_EMBEDDED}]."),
    mapping: Optional[Path] = typer.Option(
        None, help="Mapping file (YAML) from the agency's own tables, columns and codes."),
    regions: str = typer.Option("all", help='"all" (statewide + six regions) or a comma list.'),
    audience: str = typer.Option("internal", help='"internal", "public" or "both".'),
    threshold: Optional[int] = typer.Option(None, help="Suppression threshold (default 5; public 10)."),
    allow_low_threshold: bool = typer.Option(
        False, help="Accept a threshold below 5 (internal) or 10 (public); the briefs say so."),
    out_dir: Path = typer.Option(Path("reports"), help="Output folder (created 0700 if new)."),
    workers: int = typer.Option(2, help="Parallel processes."),
    pdf: bool = typer.Option(False, help="Also print PDFs with headless Chromium."),
    shared_output: bool = typer.Option(
        False, help="Public briefs only: write the files readable by other users (0644, not 0600)."),
) -> None:
    """Render statewide + regional briefs in parallel; exit 1 if any failed."""
    from dmst_eval import briefs as _briefs

    try:
        summary = _briefs.render_batch(regions=regions, data_path=str(_brief_data(data)),
                                       audience=audience,
                                       out_dir=out_dir, progress=True, workers=workers, pdf=pdf,
                                       suppression_threshold=threshold,
                                       allow_low_threshold=allow_low_threshold,
                                       shared_output=shared_output, mapping=mapping)
    except Exception as e:
        _fail(_mask(f"{type(e).__name__}: {e}".splitlines()[0]))
    typer.echo(summary.to_string(index=False))
    if summary.attrs.get("disclosure_report"):
        typer.echo(summary.attrs["disclosure_report"])
        typer.echo(f"(written to {Path(out_dir) / _briefs.REPORT_FILE})")
    failed = summary[summary["status"] != "ok"]
    if len(failed):
        first = failed.iloc[0]
        _fail(f"{len(failed)} of {len(summary)} briefs failed; first: {first['region']} "
              f"({first['audience']}): {first['error']}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

"""Shared test fixtures.

Slow (many-seed) checks carry ``@pytest.mark.slow``. ``make test`` runs them with a reduced seed
count; ``make test-slow`` sets ``DMST_EVAL_FULL_SEEDS=1`` and runs the full count that README
reports. Use :func:`n_seeds` to pick the count.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "synthetic"
FULL_SEEDS = os.environ.get("DMST_EVAL_FULL_SEEDS", "") not in ("", "0")


def pytest_configure(config):
    """The per-user plan cache (:mod:`dmst_eval.briefs.plan_cache`) of the test run: one new
    private folder (0700) shared by the xdist workers and the brief kernels (they inherit the
    environment), removed at the end; the user's own cache is never touched."""
    if hasattr(config, "workerinput") or os.environ.get("DMST_EVAL_TEST_CACHE"):
        return
    import tempfile

    _remove_stale_test_caches(Path(tempfile.gettempdir()))
    d = tempfile.mkdtemp(prefix="dmst-eval-test-cache-")
    os.environ["DMST_EVAL_TEST_CACHE"] = os.environ["XDG_CACHE_HOME"] = d
    config._dmst_test_cache = d


def _remove_stale_test_caches(tmp: Path, max_age_hours: float = 12.0) -> None:
    """Remove this user's test-run caches older than ``max_age_hours``: a run killed by a
    signal never reaches :func:`pytest_unconfigure` (a run still going is far younger)."""
    import shutil
    import time

    cutoff = time.time() - max_age_hours * 3600
    for d in tmp.glob("dmst-eval-test-cache-*"):
        try:
            st = d.lstat()
        except OSError:
            continue
        if d.is_dir() and not d.is_symlink() and st.st_uid == os.getuid() \
                and st.st_mtime < cutoff:
            shutil.rmtree(d, ignore_errors=True)


def pytest_unconfigure(config):
    d = getattr(config, "_dmst_test_cache", None)
    if d:
        import shutil

        shutil.rmtree(d, ignore_errors=True)


def n_seeds(full: int, fast: int) -> int:
    """Seeds to use: ``full`` under ``make test-slow``, ``fast`` otherwise."""
    return full if FULL_SEEDS else fast


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


# -- shared once per test process (each xdist worker): the default bundle, its batch disclosure
# plan and the standard rendered briefs. Tests must not modify what these return.
@pytest.fixture(scope="session")
def default_cd():
    """The embedded default bundle (``data/synthetic``), loaded and validated once."""
    from dmst_eval.casedata import load

    return load(DATA)


@pytest.fixture(scope="session")
def standard_ledger(default_cd):
    """Every count the standard batch of the default bundle publishes, with its relations."""
    from dmst_eval.briefs.disclosure_plan import batch_ledger

    return batch_ledger(default_cd, {})


@pytest.fixture(scope="session")
def standard_plan(default_cd, standard_ledger):
    """The batch disclosure plan of the default bundle with the default parameters — what
    :func:`dmst_eval.briefs.render_batch` hands every brief, and what a lone brief with the
    default windows computes for itself — computed once."""
    from dmst_eval.briefs import plan_cache
    from dmst_eval.briefs.disclosure_plan import batch_plan

    p = batch_plan(default_cd, {}, ledger=standard_ledger)
    plan_cache.save(p, p.fingerprint)  # the test run's own cache: rendered briefs read it
    return p


@pytest.fixture(scope="session")
def with_plan(standard_plan):
    """``with_plan(brief)``: give an in-process brief with the default windows the shared
    :func:`standard_plan` (instead of computing the same plan again); returns the brief."""
    def give(brief):
        from dmst_eval.briefs.disclosure_plan import fingerprint

        assert fingerprint(brief.cd, brief.params.as_dict()) == standard_plan.fingerprint, \
            "with_plan is only for briefs with the default windows and thresholds"
        brief.cache["disclosure_plan"] = standard_plan
        return brief
    return give


@pytest.fixture(scope="session")
def rendered_briefs(tmp_path_factory, standard_plan):
    """The default statewide internal brief (with its PDF when Chromium is installed) and the
    Region 4 public brief, rendered end to end once per session with
    :func:`dmst_eval.briefs.render` (strict) into a new private folder ``<tmp>/new/reports``.
    The kernels read the batch plan from the test run's plan cache (``standard_plan`` put it
    there; the tests that share these briefs use it in process too).

    Returns ``(out_dir, {(region, audience): BriefResult})``; brief tests that only read the
    published files share it instead of rendering the same briefs again.
    """
    from dmst_eval import briefs

    out = tmp_path_factory.mktemp("rendered") / "new" / "reports"
    has_chromium = briefs.chromium_path() is not None
    res = {}
    for region, audience, pdf in (("statewide", "internal", has_chromium),
                                  ("Region 4", "public", False)):
        res[(region, audience)] = briefs.render(
            {"data_path": str(DATA), "region": region, "audience": audience,
             "figures_dir": None}, out_dir=out, pdf=pdf, strict=True)
    return out, res


def require_tool(path: str | None, what: str, env: str) -> str:
    """Return ``path`` or skip the calling test with a visible reason when ``what`` is absent.

    CI (``.ci/run``) sets ``env`` (e.g. ``DMST_EVAL_REQUIRE_BROWSER=1``) so that an absent tool
    fails the test instead: the README's commands pass on a machine without it, and CI still
    proves the checks that need it.
    """
    if path:
        return path
    if os.environ.get(env, "") not in ("", "0"):
        pytest.fail(f"{what} is required here ({env} is set) but was not found")
    pytest.skip(f"{what} not found; install it to run this check (CI sets {env}=1)")


def chromium_or_skip() -> str:
    """Path of a headless Chromium, or skip (fail under ``DMST_EVAL_REQUIRE_BROWSER=1``)."""
    import shutil

    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                  if shutil.which(n)), None)
    return require_tool(found, "Chromium (Debian package 'chromium')", "DMST_EVAL_REQUIRE_BROWSER")


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL server on a free local port (one per test module), stopped even
    if tests fail; skipped with a reason without the server binaries (required in CI)."""
    from tests.pgserver import pg_bin, temporary_postgres

    bindir = require_tool(pg_bin(), "PostgreSQL server binaries (Debian package 'postgresql')",
                          "DMST_EVAL_REQUIRE_POSTGRES")
    with temporary_postgres(bindir) as url:
        yield url

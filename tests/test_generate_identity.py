"""The generator's output and the content hash are pinned: a speed-up must not change them.

``generate(scale=0.3, seed=1)`` has the hashes recorded below (data hash, per-table content
hashes, canonical SHA-256 of the truth). A change that alters the generated data, the ground
truth or the hash scheme fails here. (So would a pandas or numpy release that changed its random
streams or ``hash_pandas_object``; re-pin only after checking that this, and nothing in
``dmst_eval``, is the cause.)

``content_hash`` computes pandas' ``hash_pandas_object`` values with less work
(``casedata._row_hashes``); the second half checks it against pandas itself on frames with what
the fast path treats specially: missing values, repeated text, duplicated keys, mixed objects,
empty tables.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from dmst_eval import schema
from dmst_eval.casedata import _canonical, _row_hashes, content_hash
from dmst_eval.synthetic import generate
from dmst_eval.synthetic.generator import _ids

DATA_HASH = "2a69a1d48a511096ad15e05db01b6e520ccef1a6a05c698bfacb1e85d6963f0d"
CONTENT_HASHES = {
    "children": "0219641a442a0888408d9998c3cd2ee2b7cc84d32254300ecefea8d519324ae5",
    "facilities": "66d349d56697a70c82d9e739a89013fe7026136baac3c7dceccdd5045071d555",
    "placements": "ddf312729e47d493d26ccdacead6df9e5aa6f25a9e44347ff7e54fe0fae54f48",
    "awol_episodes": "e883517a3e463f46d263a0ead1ee09335e6dcbdae4b7e930274e9a7bcdd749fe",
    "reports": "f4351c478740e12aa7e75556fc46c0407443ef0f1523bf7adf77bdf7735dd3eb",
    "episodes": "40670bb9d78bf232de08ee90f97286345f9b371a2fe5e78cd3ff4bc32537a6b5",
    "services": "e43498a5a0ad34f052e7b28552e3dbd5ba7688ad3f487fb863e407dcbf973848",
    "trainings": "06a9101dd11ab8b6c68a009f184b9bdaf2220d1e42a5ba54fbc12fb8131fc2b9",
    "training_attendance": "1c55b678da387d1e0f4a25eac53dd4bdad34126663757b7bb3c169d6124f1579",
}
TRUTH_SHA256 = "fa6ea0d36a47937cd27ae629a0a2b8d04c96f612f2b3d15f65f26a387a71f01a"
ROW_COUNTS = {"children": 26425, "facilities": 33, "placements": 27174, "awol_episodes": 1771,
              "reports": 947, "episodes": 947, "services": 113, "trainings": 622,
              "training_attendance": 10090}


@pytest.fixture(scope="module")
def small():
    return generate(scale=0.3, seed=1)


def test_small_bundle_is_pinned(small):
    assert small.meta["row_counts"] == ROW_COUNTS
    assert small.meta["content_hashes"] == CONTENT_HASHES
    assert small.meta["data_hash"] == small.data_hash == DATA_HASH
    assert small.meta["truth_sha256"] == TRUTH_SHA256


def _pandas_content_hash(df: pd.DataFrame, table: str) -> str:
    """content_hash as first written: pandas' hash_pandas_object of the canonical table."""
    d = _canonical(df, table)
    h = hashlib.sha256()
    h.update(json.dumps([[c, str(t)] for c, t in d.dtypes.items()]).encode())
    if len(d):
        h.update(pd.util.hash_pandas_object(d, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _variants(df: pd.DataFrame):
    """The table itself, a resample with duplicated keys and ~20% missing values, its text
    form (object columns, not yet cast), one with numbers mixed into the key column, no rows,
    one row, and all values missing."""
    rng = np.random.default_rng(0)
    sub = df.sample(n=min(len(df), 400), replace=True, random_state=1).reset_index(drop=True)
    for c in sub.columns:
        sub.loc[rng.random(len(sub)) < 0.2, c] = None
    mixed = df.head(50).astype(object)
    mixed.iloc[::7, 0] = 3.5
    missing = df.head(5).copy()
    for c in missing.columns:
        missing[c] = None
    return {"as generated": df, "resampled with gaps": sub, "text": df.head(300).astype(object),
            "mixed key": mixed, "no rows": df.iloc[:0], "one row": df.iloc[:1],
            "all missing": missing}


@pytest.mark.parametrize("table", schema.TABLE_NAMES)
def test_content_hash_equals_pandas_hash(small, table):
    for what, df in _variants(small.tables[table]).items():
        assert content_hash(df, table) == _pandas_content_hash(df, table), what


def test_row_hashes_equal_hash_pandas_object():
    text = pd.array(["b", None, "a", "b", "é", ""], dtype="string")
    frame = pd.DataFrame({
        "key": pd.array(["k1", "k2", None, "k4", "k5", "k1"], dtype="string"),
        "text": text,
        "cat": pd.Categorical(["x", None, "y", "x", "y", "x"], categories=["y", "x"]),
        "when": pd.to_datetime(["2010-01-01", None, "2011-05-02", "2010-01-01", None,
                                "2012-12-31"]),
        "flag": pd.array([True, None, False, True, False, None], dtype="boolean"),
        "count": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
        "x": [0.5, np.nan, -1.0, 2.0, 0.0, 1e300],
    })
    want = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    got = _row_hashes([(frame[c].array, c == "key") for c in frame.columns])
    np.testing.assert_array_equal(got, want)
    # missing text is marked as pandas marks it (2**64 - 1), key column or not
    one = pd.util.hash_pandas_object(pd.DataFrame({"t": text}), index=False).to_numpy()
    for distinct in (False, True):
        np.testing.assert_array_equal(_row_hashes([(text, distinct)]), one)


def test_ids_are_zero_padded_numbers():
    assert list(_ids("C", [1, 42, 9_999_999], 7)) == ["C0000001", "C0000042", "C9999999"]
    assert list(_ids("AB", [5, 123], None)) == ["AB000005", "AB000123"]
    # wider than 9 digits (the int64 path) and numbers longer than the width (last digits)
    assert list(_ids("R", [12_345_678_901], 11)) == ["R12345678901"]
    assert list(_ids("W", [1_234_567], 3)) == ["W567"]

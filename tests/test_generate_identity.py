"""The generator's output and the content hash are pinned: a speed-up must not change them.

``generate(scale=0.3, seed=1)`` has the hashes recorded below (data hash, per-table content
hashes, canonical SHA-256 of the truth). A change that alters the generated data, the ground
truth or the hash scheme fails here. (So would a pandas or numpy release that changed its random
streams or ``hash_pandas_object``; re-pin only after checking that this, and nothing in
``dmst_eval``, is the cause.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dmst_eval import schema
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


def test_ids_are_zero_padded_numbers():
    assert list(_ids("C", [1, 42, 9_999_999], 7)) == ["C0000001", "C0000042", "C9999999"]
    assert list(_ids("AB", [5, 123], None)) == ["AB000005", "AB000123"]
    # wider than 9 digits (the int64 path) and numbers longer than the width (last digits)
    assert list(_ids("R", [12_345_678_901], 11)) == ["R12345678901"]
    assert list(_ids("W", [1_234_567], 3)) == ["W567"]

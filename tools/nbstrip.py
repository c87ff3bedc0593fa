"""Execute notebooks in place with the `dmst-eval` kernel, then strip every output except those of
cells marked ``# NBVAL_CHECK_OUTPUT`` (which nbval compares). Saves nbformat 4.5.

Usage: python tools/nbstrip.py notebooks/foo.ipynb [...] [--no-execute]
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def strip(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        keep = "NBVAL_CHECK_OUTPUT" in cell.source
        if not keep:
            cell.outputs = []
            cell.execution_count = None
        else:
            # images and html vary between runs; nbval compares text only
            for out in cell.outputs:
                if "data" in out:
                    out["data"] = {k: v for k, v in out["data"].items() if k == "text/plain"}
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = {"name": "dmst-eval", "display_name": "Python (dmst-eval)",
                                 "language": "python"}
    nb.nbformat, nb.nbformat_minor = 4, 5


def main(argv: list[str]) -> int:
    execute = "--no-execute" not in argv
    paths = [Path(a) for a in argv if not a.startswith("--")]
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        if execute:
            from nbconvert.preprocessors import ExecutePreprocessor

            ExecutePreprocessor(timeout=900, kernel_name="dmst-eval").preprocess(
                nb, {"metadata": {"path": str(p.parent)}})
        strip(nb)
        nbformat.validator.normalize(nb)
        nbformat.write(nb, p, version=4)
        print(f"{'executed and ' if execute else ''}stripped {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

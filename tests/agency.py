"""An 'agency-shaped' copy of a bundle: other table names, column names, codes and date formats.

Used to test loading through a mapping: the agency's tables as a case-management system might
hold them, and the mapping (``AGENCY_MAPPING``, also the example in ``docs/mapping.md``) that
turns them back into schema v1.
"""
from __future__ import annotations

import pandas as pd

from dmst_eval.schema import TABLE_NAMES, TABLES

SEX_CODES = {"F": "female", "M": "male"}
SETTING_CODES = {"FF": "foster_family", "KIN": "kinship", "SFC": "specialized_foster",
                 "GH": "group_home", "RTC": "residential_treatment", "SH": "shelter"}
REGION_CODES = {str(i): f"Region {i}" for i in range(1, 7)}


def _source_column(table: str, column: str) -> str:
    return f"{table[:3].upper()}_{column.upper()}"


def agency_mapping() -> dict:
    """The mapping from the agency layout below to schema v1 (as a dict; YAML has the same shape)."""
    tables = {}
    for t in TABLE_NAMES:
        spec = {"source": f"cm_{t}",
                "columns": {c: _source_column(t, c) for c in TABLES[t].column_names}}
        codes = {}
        if "sex" in TABLES[t].column_names:
            codes["sex"] = SEX_CODES
        if "setting" in TABLES[t].column_names:
            codes["setting"] = SETTING_CODES
        if "region" in TABLES[t].column_names:
            codes["region"] = REGION_CODES
        if codes:
            spec["codes"] = codes
        if t == "children":
            spec["date_formats"] = {"birth_date": "%m/%d/%Y"}
        tables[t] = spec
    return {"tables": tables}


def agency_tables(cd) -> dict[str, pd.DataFrame]:
    """The bundle's tables as the agency would export them (plain object columns)."""
    inverse = {"sex": {v: k for k, v in SEX_CODES.items()},
               "setting": {v: k for k, v in SETTING_CODES.items()},
               "region": {v: k for k, v in REGION_CODES.items()}}
    out = {}
    for t in TABLE_NAMES:
        df = cd.tables[t].copy()
        for c in df.columns:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].astype(object)
                if c in inverse:
                    df[c] = df[c].map(inverse[c])
            elif str(df[c].dtype) in ("string", "boolean"):
                df[c] = df[c].astype(object).where(df[c].notna(), None)
        if t == "children":
            df["birth_date"] = df["birth_date"].dt.strftime("%m/%d/%Y")
        df.columns = [_source_column(t, c) for c in df.columns]
        out[f"cm_{t}"] = df
    return out


def to_postgres(url: str, tables: dict[str, pd.DataFrame]) -> None:
    """Create the tables in PostgreSQL with the column types pandas infers from the data
    (``get_schema``: TIMESTAMP, BOOLEAN, BIGINT, TEXT …) and fill them with COPY (fast)."""
    import io

    import sqlalchemy as sa
    from pandas.io.sql import get_schema

    eng = sa.create_engine(url)
    try:
        with eng.begin() as conn:
            raw = conn.connection.driver_connection
            for name, df in tables.items():
                conn.execute(sa.text(get_schema(df, name, con=conn)))
                buf = io.StringIO()
                df.to_csv(buf, index=False, header=False, date_format="%Y-%m-%dT%H:%M:%S")
                with raw.cursor().copy(f'COPY "{name}" FROM STDIN WITH (FORMAT csv)') as cp:
                    cp.write(buf.getvalue())
    finally:
        eng.dispose()

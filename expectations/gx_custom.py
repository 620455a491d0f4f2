"""Custom Great Expectations (1.x) for iJw data: BSN elfproef, AGB code, Dutch postcode, iJw code-list membership.

Imported only by the engine (GX takes seconds to import). The conditions are vectorised pandas/numpy; as in every GX
column-map expectation, nulls count as missing, not as unexpected (the registry adds not-null rules where needed).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from synthetic_data.privacy import POSTCODE_PATTERN
from synthetic_data.reference import codelists


def bsn_valid(column: pd.Series) -> pd.Series:
    """9 digits and the elfproef (9*d1 + 8*d2 + ... + 2*d8 - d9) % 11 == 0, sum > 0 (CS002)."""
    s = column.astype(str)
    ok = s.str.fullmatch(r"\d{9}").fillna(False).to_numpy(dtype=bool)
    digits = np.zeros((len(s), 9), dtype=np.int64)
    if ok.any():
        digits[ok] = np.frombuffer("".join(s[ok]).encode(), dtype=np.uint8).reshape(-1, 9) - ord("0")
    total = digits[:, :8] @ np.arange(9, 1, -1) - digits[:, 8]
    return pd.Series(ok & (total % 11 == 0) & (total > 0), index=column.index)


class ColumnValuesValidBsn(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ijw_valid_bsn"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return bsn_valid(column)


class ExpectColumnValuesToBeValidBsn(ColumnMapExpectation):
    """Expect column values to be 9-digit BSNs that pass the elfproef (iJw CS002)."""

    map_metric = "column_values.ijw_valid_bsn"
    success_keys = ("mostly",)


class ColumnValuesValidAgb(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ijw_valid_agb"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return column.astype(str).str.fullmatch(r"\d{8}").fillna(False)


class ExpectColumnValuesToBeValidAgbCode(ColumnMapExpectation):
    """Expect column values to be 8-digit AGB codes (LDT_AgbCode)."""

    map_metric = "column_values.ijw_valid_agb"
    success_keys = ("mostly",)


class ColumnValuesValidPostcode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ijw_valid_postcode"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return column.astype(str).str.match(POSTCODE_PATTERN).fillna(False)


class ExpectColumnValuesToBeValidDutchPostcode(ColumnMapExpectation):
    """Expect Dutch postcodes 1234AB: first digit not 0, letters never SA, SD or SS (iJw CS089)."""

    map_metric = "column_values.ijw_valid_postcode"
    success_keys = ("mostly",)


class ColumnValuesInIjwCodelist(ColumnMapMetricProvider):
    condition_metric_name = "column_values.in_ijw_codelist"
    condition_value_keys = ("codelist",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, codelist, **kwargs):
        return column.astype(str).isin(list(codelists()[codelist]))


class ExpectColumnValuesToBeInIjwCodelist(ColumnMapExpectation):
    """Expect column values to be codes of the named iJw 3.2 code list (synthetic_data/data/codelists.yaml)."""

    map_metric = "column_values.in_ijw_codelist"
    success_keys = ("codelist", "mostly")
    codelist: str

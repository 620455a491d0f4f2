"""Labelled data-quality faults: inject them into a generated dataset, and score any check suite against the truth.

    from synthetic_data.faults import inject_faults, score, score_table
    dirty, truth = inject_faults(tables, profile="realistic", seed=7)
    result = score(findings, truth)      # findings: rows with `table` and `key` (or the table's key columns)
    print(score_table(result))

The fault types are listed in catalogue.yaml, the profiles in profiles.yaml; README.md explains both and the scoring.
"""
from .inject import catalogue, catalogue_frame, empty_truth, inject_faults, profiles
from .score import score, score_table

__all__ = ["inject_faults", "score", "score_table", "catalogue", "catalogue_frame", "profiles", "empty_truth"]

"""Data-quality checks built from one iJw rule registry (rules.yaml): GX suites, findings, docs.

    from expectations import validate, findings
    results = validate(tables)              # one RuleResult per registry rule
    findings(results)                       # one row per failing record

Depends on synthetic_data only; great_expectations is imported when a validation runs, not on import.
"""
from .engine import RuleResult, findings, validate
from .registry import Rule, load_rules

__all__ = ["Rule", "RuleResult", "findings", "load_rules", "validate"]

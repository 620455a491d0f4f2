"""Data-quality checks built from one iJw rule registry (rules.yaml): one polars implementation, GX suites, findings.

    from expectations import get_rule, violations, rule_findings, validate, findings
    violations(get_rule("TR321_geleverd_volume_binnen_toegewezen"), tables)   # the records that break one rule
    rule_findings(tables)                   # every rule in polars: one row per failing record
    results = validate(tables)              # the same rules as Great Expectations suites, one RuleResult per rule
    findings(results)                       # one row per failing record

Depends on synthetic_data only; great_expectations is imported when a validation runs, not on import.
"""
from .derived import rule_findings, violations
from .engine import RuleResult, findings, validate
from .registry import Rule, get_rule, load_rules

__all__ = ["Rule", "RuleResult", "findings", "get_rule", "load_rules", "rule_findings", "validate", "violations"]

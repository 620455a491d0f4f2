"""The rule registry (rules.yaml): every iJw rule the sandbox checks, with its code, table, severity, meaning and check.

It is the spec: every rule has one polars implementation (expectations/derived.py, `violations(rule, tables)`), which
the GX suites, the Dagster asset checks, the fault catalogue's rule links and the tests run; docs/rules.md is generated
from it. Loading validates the file against the data dictionary, the code lists and the derived checks, so a typo
fails at import time with a clear message instead of as a silently skipped check.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from synthetic_data.dictionary import schema, table_names
from synthetic_data.reference import codelists, parse_yaml

from .derived import DERIVED

SEVERITIES = ("ERROR", "WARN")
# check kind -> the keys it needs (besides `expect`)
EXPECT_KEYS: dict[str, tuple[str, ...]] = {
    "bsn": ("column",),
    "agb": ("column",),
    "postcode": ("column",),
    "codelist": ("column", "codelist"),
    "not_null": ("column",),
    "unique": ("columns",),
    "regex": ("column", "pattern"),
    "a_ge_b": ("a", "b"),
}
_NOT_CODELISTS = {"source_note", "eenheid_frequenties"}


@dataclass(frozen=True)
class Rule:
    id: str
    code: str
    codes: tuple[str, ...]
    table: str
    uses: tuple[str, ...]
    severity: str
    meaning: str
    check: dict[str, Any] = field(hash=False)

    @property
    def kind(self) -> str:
        """The check kind: an `expect` name (bsn, unique, ...) or "derived"."""
        return "derived" if "derived" in self.check else self.check["expect"]

    @property
    def columns(self) -> list[str]:
        """Columns of `table` that a GX (non-derived) check reads."""
        c = self.check
        return [c[k] for k in ("column", "a", "b") if k in c] + list(c.get("columns", []))


def _read_yaml() -> dict:
    return parse_yaml((files("expectations") / "rules.yaml").read_text(encoding="utf-8"))


def _fail(rule_id: str, what: str, allowed) -> None:
    if not isinstance(allowed, str):
        allowed = ", ".join(sorted(map(str, allowed)))
    raise ValueError(f"rules.yaml, rule {rule_id}: {what}; allowed: {allowed}")


def _check_check(rid: str, table: str, check: Any) -> dict:
    if not isinstance(check, dict) or ("derived" in check) == ("expect" in check):
        _fail(rid, f"check {check!r} needs exactly one of 'expect' or 'derived'", "{expect: <kind>, ...} or {derived: <name>}")
    if "derived" in check:
        name = check["derived"]
        if set(check) != {"derived"}:
            _fail(rid, f"derived check has extra keys {sorted(set(check) - {'derived'})}", "only 'derived'")
        if name not in DERIVED:
            _fail(rid, f"unknown derived check {name!r}", DERIVED)
        fn_table = getattr(DERIVED[name], "table", None)
        if fn_table is not None and fn_table != table:
            _fail(rid, f"derived check {name!r} returns rows of {fn_table}, not of {table}", fn_table)
        return dict(check)
    kind = check["expect"]
    if kind not in EXPECT_KEYS:
        _fail(rid, f"unknown check kind {kind!r}", EXPECT_KEYS)
    need = set(EXPECT_KEYS[kind])
    have = set(check) - {"expect"}
    if have != need:
        _fail(rid, f"check '{kind}' has keys {sorted(have)}", sorted(need))
    cols = schema(table)
    named = [check[k] for k in ("column", "a", "b") if k in check] + list(check.get("columns", []))
    if kind == "unique" and (not isinstance(check["columns"], list) or not check["columns"]):
        _fail(rid, "'unique' needs a non-empty list of columns", "columns: [a, b, ...]")
    for col in named:
        if col not in cols:
            _fail(rid, f"column {col!r} is not in table {table}", cols)
    if kind == "codelist":
        lists = [n for n in codelists() if n not in _NOT_CODELISTS]
        if check["codelist"] not in lists:
            _fail(rid, f"unknown code list {check['codelist']!r}", lists)
    if kind == "regex":
        try:
            re.compile(check["pattern"])
        except re.error as exc:
            _fail(rid, f"pattern {check['pattern']!r} is not a valid regex ({exc})", "a Python regular expression")
    return dict(check)


def parse_rules(data: dict) -> list[Rule]:
    """Validate the parsed rules.yaml content and turn it into Rules; raises ValueError on the first problem."""
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ValueError("rules.yaml: expected a top-level 'rules:' list")
    known_tables = table_names()
    fields = {"id", "code", "codes", "table", "uses", "severity", "meaning", "check"}
    out: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["rules"]):
        rid = raw.get("id") if isinstance(raw, dict) else None
        if not rid or not isinstance(rid, str):
            raise ValueError(f"rules.yaml, entry {i}: no 'id'")
        if rid in seen:
            _fail(rid, "duplicate id", "each id once")
        seen.add(rid)
        missing = [k for k in ("code", "table", "severity", "meaning", "check") if not raw.get(k)]
        if missing:
            _fail(rid, f"missing field(s) {missing}", sorted(fields))
        extra = set(raw) - fields
        if extra:
            _fail(rid, f"unknown field(s) {sorted(extra)}", sorted(fields))
        code = raw["code"]
        codes = tuple(raw.get("codes") or [code])
        if codes[0] != code:
            _fail(rid, f"codes {list(codes)} must start with the primary code {code!r}", f"[{code}, ...]")
        if not rid.startswith(code + "_"):
            _fail(rid, f"id does not start with its code {code!r}", f"{code}_<name>")
        if raw["severity"] not in SEVERITIES:
            _fail(rid, f"severity {raw['severity']!r}", SEVERITIES)
        table = raw["table"]
        if table not in known_tables:
            _fail(rid, f"unknown table {table!r}", known_tables)
        uses = tuple(raw.get("uses") or ())
        for u in uses:
            if u not in known_tables or u == table:
                _fail(rid, f"'uses' names {u!r}", f"other tables of the dictionary: {', '.join(known_tables)}")
        check = _check_check(rid, table, raw["check"])
        out.append(Rule(rid, code, codes, table, uses, raw["severity"], str(raw["meaning"]).strip(), check))
    return out


@cache
def _rules() -> tuple[Rule, ...]:
    return tuple(parse_rules(_read_yaml()))


def load_rules() -> list[Rule]:
    """Every rule of rules.yaml in file order (read and validated once per process)."""
    return list(_rules())


load_rules.cache_clear = _rules.cache_clear  # type: ignore[attr-defined]


def get_rule(rule_id: str) -> Rule:
    for r in _rules():
        if r.id == rule_id:
            return r
    raise KeyError(f"no rule {rule_id!r} in rules.yaml")


def rules_for(table: str) -> list[Rule]:
    """The rules that report rows of `table`."""
    if table not in table_names():
        raise ValueError(f"unknown table {table!r}; allowed: {', '.join(table_names())}")
    return [r for r in _rules() if r.table == table]


# ---------------------------------------------------------------------------------------------------------- docs

def _md(text: str) -> str:
    return text.replace("|", "\\|")


def how_checked(rule: Rule) -> str:
    c = rule.check
    if "derived" in c:
        return f"derived `{c['derived']}` in polars, then GX in-set [True]"
    kind = c["expect"]
    if kind == "bsn":
        return f"GX custom: BSN elfproef on `{c['column']}`"
    if kind == "agb":
        return f"GX custom: 8-digit AGB code on `{c['column']}`"
    if kind == "postcode":
        return f"GX custom: Dutch postcode on `{c['column']}`"
    if kind == "codelist":
        return f"GX custom: `{c['column']}` in code list `{c['codelist']}`"
    if kind == "not_null":
        return f"GX: `{c['column']}` not null"
    if kind == "unique":
        return "GX: compound unique (" + ", ".join(f"`{x}`" for x in c["columns"]) + ")"
    if kind == "regex":
        return f"GX: `{c['column']}` matches `{c['pattern']}`"
    if kind == "a_ge_b":
        return f"GX: `{c['a']}` >= `{c['b']}` (rows with a null pass)"
    raise ValueError(f"rule {rule.id}: unknown check kind {kind!r}")


def render_markdown() -> str:
    """docs/rules.md, generated from the registry so it cannot drift."""
    rules = load_rules()
    counts = {s: sum(r.severity == s for r in rules) for s in SEVERITIES}
    derived_n = sum(r.kind == "derived" for r in rules)
    lines = [
        "# Rule registry",
        "",
        "Generated from `expectations/rules.yaml` (expectations.registry.render_markdown); do not edit by hand.",
        "Rule codes and meanings: the iJw 3.2 regels of Zorginstituut Nederland (copy at i-Sociaal-Lab/jaapjunior@f24e7c56fd4b). "
        "One failing row of the table is one finding.",
        "",
        f"{len(rules)} rules: " + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f"; {len(rules) - derived_n} checked by GX column expectations, {derived_n} derived in polars.",
        "ERROR blocks downstream assets; WARN is reported only (process and timeliness rules, sandbox interpretations).",
        "",
        "| rule | code | table | uses | severity | meaning | how checked |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rules:
        code = ", ".join(r.codes)
        uses = ", ".join(f"`{u}`" for u in r.uses)
        lines.append(f"| `{r.id}` | {code} | `{r.table}` | {uses} | {r.severity} | {_md(r.meaning)} | {_md(how_checked(r))} |")
    lines.append("")
    return "\n".join(lines)

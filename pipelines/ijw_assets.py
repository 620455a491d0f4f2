"""The iJw XML messages of a gemeente partition as an asset, validated by an asset check (issue 13).

`ijw_messages` reads the partition's message tables (the same Parquet partitions the administration op wrote), writes
their iJw 3.2 messages into `<data>/ijw/<lake>/<gemeente>/` (one file per message, the folder replaced whole) and
checks them with the open validator: XSD per message plus the registry's rules on the messages read back. The check
is not blocking: XML is a view of the tables, whose own checks already block.
"""

from pathlib import Path

import dagster as dg
import polars as pl

from expectations.ijw_validate import validate_messages
from synthetic_data.ijw_xml import export

from .assets import GeneratorResource
from .storage import markdown_preview

IJW_TABLES = ["jeugdigen", "verzoeken", "antwoorden", "toewijzingen", "zorgstarts", "zorgstops", "declaraties",
              "prestaties", "declaratie_antwoorden", "wijzigingsverzoeken", "declaratie_antwoord_prestaties"]
REFERENCE = ["gemeenten", "producten", "aanbieders"]


def messages_folder(generator: GeneratorResource, gemeente: str) -> Path:
    s = generator.settings()
    return Path(s.data_dir) / "ijw" / s.lake.name / gemeente


def build_ijw_assets(partitions: dg.PartitionsDefinition) -> list:
    @dg.asset(
        name="ijw_messages", group_name="ijw", partitions_def=partitions, kinds={"xml"},
        ins={**{t: dg.AssetIn(t) for t in IJW_TABLES}, **{t: dg.AssetIn(t) for t in REFERENCE}},
        check_specs=[dg.AssetCheckSpec("ijw_valid", asset="ijw_messages", blocking=False,
                                       description="Every message valid against its iJw 3.2 XSD and the registry's "
                                                   "rules on the messages read back (zandbak validate-ijw)")],
        description="The partition's iJw 3.2 XML messages (JW315, JW317, JW319, JW301, JW305, JW307, JW323, JW325), one file "
                    "per message, as real traffic is batched.",
    )
    def ijw_messages(context: dg.AssetExecutionContext, generator: GeneratorResource, **tables: pl.DataFrame):
        gemeente = context.partition_key
        out = messages_folder(generator, gemeente)
        own = {t: tables[t] for t in IJW_TABLES}
        m = export(own, out, source={"dagster_partition": gemeente, "config": generator.config_for().as_dict()},
                   gemeenten=[gemeente])
        yield dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(out)), "messages": sum(m["messages"].values()),
            **{f"messages/{k}": v for k, v in m["messages"].items()},
            "rejected_by_xsd": m["rejected_messages"],
        })
        v = validate_messages(out, reference={t: tables[t] for t in REFERENCE})
        s = v.summary()
        yield dg.AssetCheckResult(
            check_name="ijw_valid", passed=v.errors == 0, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"messages": s["messages"], "valid": s["valid"], "findings": s["findings"], "errors": s["errors"],
                      "rules_run": s["rules_run"],
                      "by_rule": dg.MetadataValue.md(markdown_preview(pl.DataFrame(s["by_rule"]), 50)
                                                     if s["by_rule"] else "none"),
                      "sample_findings": dg.MetadataValue.md(markdown_preview(v.findings, 10)
                                                             if v.findings.height else "none")})

    return [ijw_messages]

"""Parquet IO manager: one watermarked file per asset and partition, written atomically.

A killed run leaves each partition file either whole and old or whole and new, never torn (synthetic_data.atomic:
a hidden temporary sibling, flushed, then renamed over the file; a dead writer's temporary is removed by the next
write to the same file), so re-running the partition gives the same bytes.
"""
from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from synthetic_data.atomic import atomic_write
from synthetic_data.dataset import watermark, write_table

ALL = "all"   # file name of an unpartitioned asset


def markdown_preview(df: pl.DataFrame, rows: int = 5) -> str:
    head = df.head(rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * head.width]
    for r in head.iter_rows():   # a handful of rows for the UI
        lines.append("| " + " | ".join("" if v is None else str(v) for v in r) + " |")
    return "\n".join(lines)


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores polars DataFrames as `<lake>/<table>/<partition>.parquet` with the synthetic watermark."""

    lake: str
    config_json: str = "{}"

    def _path(self, key: dg.AssetKey, partition: str | None) -> Path:
        return Path(self.lake) / key.path[-1] / f"{partition or ALL}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        import json

        partition = context.partition_key if context.has_partition_key else None
        path = self._path(context.asset_key, partition)
        # replacing the partition's file is what makes re-materialising exact: its rows never appear twice
        with atomic_write(path) as tmp:
            write_table(obj, tmp, watermark(json.loads(self.config_json), context.asset_key.path[-1]))
        context.add_output_metadata({
            "dagster/row_count": obj.height,
            "path": dg.MetadataValue.path(str(path)),
            "preview": dg.MetadataValue.md(markdown_preview(obj)),
        })

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        key = context.asset_key
        if context.has_asset_partitions:
            parts = context.asset_partition_keys
            if len(parts) == 1:
                return pl.read_parquet(self._path(key, parts[0]))
            # a region-level view over all partitions: a failed partition is left out (and said), not fatal
            present = [p for p in parts if self._path(key, p).exists()]
            if len(present) < len(parts):
                context.log.warning(f"{key.to_user_string()}: {len(parts) - len(present)} partition(s) missing: "
                                    + ", ".join(p for p in parts if p not in present))
            if not present:
                raise FileNotFoundError(f"{key.to_user_string()}: no partition has been materialised")
            return pl.concat([pl.read_parquet(self._path(key, p)) for p in present], how="vertical")
        return pl.read_parquet(self._path(key, None))

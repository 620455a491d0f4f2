"""The reference rules as plain polars functions: each function is one check.

A parameter named after a table gets that table; the first one is the table the check reports on. Return the
failing rows (whole rows, or at least the table's key columns). Score it:

    zandbak score DIRTY --checks expectations/examples/polars_checks.py
"""
import polars as pl

REDEN_BEEINDIGING = ["02", "20", "31", "32", "33", "34", "35", "36", "37", "38", "39"]   # iJw code list JZ588


def _elfproef(bsn: pl.Expr) -> pl.Expr:
    """9 digits and (9*d1 + 8*d2 + ... + 2*d8 - d9) divisible by 11, with a positive sum (CS002)."""
    total = sum(bsn.str.slice(i, 1).cast(pl.Int64, strict=False) * w for i, w in enumerate(range(9, 1, -1)))
    total = total - bsn.str.slice(8, 1).cast(pl.Int64, strict=False)
    return bsn.str.contains(r"^\d{9}$") & (total % 11 == 0) & (total > 0)


def CS002_bsn_niet_leeg(prestaties: pl.DataFrame) -> pl.DataFrame:
    return prestaties.filter(pl.col("bsn").is_null())


def CS002_bsn_elfproef(prestaties: pl.DataFrame) -> pl.DataFrame:
    return prestaties.filter(~_elfproef(pl.col("bsn")))


def JZ588_reden_beeindiging_codelijst(zorgstops: pl.DataFrame) -> pl.DataFrame:
    return zorgstops.filter(~pl.col("reden_beeindiging").is_in(REDEN_BEEINDIGING))


def TR346_bedrag_is_volume_maal_tarief(prestaties: pl.DataFrame) -> pl.DataFrame:
    return prestaties.filter(pl.col("ingediend_bedrag") != pl.col("geleverd_volume") * pl.col("product_tarief"))


def TR338_prestatie_zonder_toewijzing(prestaties: pl.DataFrame, toewijzingen: pl.DataFrame) -> pl.DataFrame:
    return prestaties.filter(~pl.col("toewijzing_nummer").is_in(toewijzingen["toewijzing_nummer"].implode()))


def TR019_start_niet_voor_toewijzing(zorgstarts: pl.DataFrame) -> pl.DataFrame:
    return zorgstarts.filter(pl.col("begindatum") < pl.col("toewijzing_ingangsdatum"))

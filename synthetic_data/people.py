"""Synthetic people: name and street pools from seeded Faker, person attributes as keyed hashes of the person index.

A person is identified by (origin gemeente, person index). Every attribute is a pure function of
(seed, that identity[, gemeente of residence]), so any partition can rebuild a person without running another one
(a youth who moves keeps name, birth date and BSN; only the address changes).
"""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from .privacy import (CLIENT_ID, D_CLIENT, POSTCODE_LETTER_PAIRS, bsn_from_index, keyed_hash, keyed_uniform,
                      opaque_code, opaque_number)
from .reference import gemeenten_all, pc4

FIRST_BIRTH_YEAR = 1993   # oldest youth of the 2016 epoch
LAST_BIRTH_YEAR = 2030
N_COHORTS = LAST_BIRTH_YEAR - FIRST_BIRTH_YEAR + 1
POOL_SIZE = 4000
_PREFIXES = ("van der ", "van den ", "van de ", "van ", "de ", "den ", "ter ", "ten ", "te ", "in 't ", "'t ", "el ")

# Field tags of the keyed hashes (any distinct integers; changing one changes the data).
F_BIRTHDAY, F_FIRST, F_SECOND, F_NNAMES, F_LAST, F_STREET, F_HOUSE, F_PC4, F_LETTERS = range(1, 10)


@cache
def name_pools(seed: int) -> dict[str, pl.Series]:
    """Faker nl_NL pools, built once per process and seed (Faker is never called per row)."""
    from faker import Faker  # imported here: only generation needs it

    fake = Faker("nl_NL")
    fake.seed_instance(seed)
    last = [fake.last_name() for _ in range(POOL_SIZE)]
    prefix, surname = [], []
    for name in last:
        low = name.lower()
        p = next((p for p in _PREFIXES if low.startswith(p)), None)
        prefix.append(name[: len(p)].strip().lower() if p else None)
        surname.append(name[len(p):] if p else name)
    return {
        "male": pl.Series([fake.first_name_male() for _ in range(POOL_SIZE)]),
        "female": pl.Series([fake.first_name_female() for _ in range(POOL_SIZE)]),
        "voorvoegsel": pl.Series(prefix, dtype=pl.String),
        "achternaam": pl.Series(surname),
        "street": pl.Series([fake.street_name() for _ in range(POOL_SIZE)]),
    }


@cache
def cohort_sizes() -> pl.DataFrame:
    """Persons per birth cohort per gemeente at scale 1 and the global person-index offset of each gemeente.

    Offsets are computed over all 342 gemeenten, independent of the region asked for, so a person's global index
    (and therefore BSN) is the same in a single-gemeente run and in a national run.
    """
    g = gemeenten_all()
    # 10 % headroom over the 2021 cohort size; even number so sex can be the parity of the index.
    size = (((g["jeugd_0_14"] + g["jeugd_15_19"]) / 20 * 1.1).ceil().cast(pl.Int64) // 2 + 1) * 2
    cap = size * N_COHORTS
    return pl.DataFrame(
        {"gemeente_code": g["gemeente_code"], "cohort_size": size, "offset": cap.cum_sum() - cap}
    )


def _gm_int(codes) -> np.ndarray:
    return np.asarray(pl.Series(codes).cast(pl.Int64).to_numpy())


_YEARS = np.arange(FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR + 1)
_JAN1 = (_YEARS - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)   # days since 1970
_YEAR_DAYS = np.where(((_YEARS % 4 == 0) & (_YEARS % 100 != 0)) | (_YEARS % 400 == 0), 366, 365)


def birth_days(seed: int, origin, person: np.ndarray, cohort_size) -> np.ndarray:
    """Birth date as days since 1970 (int64) of each person: cohort from the index, day from a keyed hash.
    `origin` and `cohort_size` are arrays or one value for all."""
    cohort = np.asarray(person // cohort_size, dtype=np.int64)
    day = keyed_uniform(seed, F_BIRTHDAY, origin, person)
    if cohort.size and (cohort.min() < 0 or cohort.max() >= N_COHORTS):   # outside the table: the calendar itself
        year = FIRST_BIRTH_YEAR + cohort
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        jan1 = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
        return jan1 + (day * np.where(leap, 366, 365)).astype(np.int64)
    return _JAN1[cohort] + (day * _YEAR_DAYS[cohort]).astype(np.int64)


def birth_dates(seed: int, origin: np.ndarray, person: np.ndarray, cohort_size: np.ndarray) -> np.ndarray:
    """Birth date (datetime64[D]) of each person: cohort from the index, day from a keyed hash."""
    return birth_days(seed, origin, person, cohort_size).astype("datetime64[D]")


def persons_frame(seed: int, persons: pl.DataFrame) -> pl.DataFrame:
    """Build `jeugdigen` rows for distinct (origin_code, person_index, gemeente_code) triples."""
    pools = name_pools(seed)
    sizes = cohort_sizes()
    df = persons.join(sizes.rename({"gemeente_code": "origin_code"}), on="origin_code", how="left")
    origin = _gm_int(df["origin_code"])
    person = df["person_index"].to_numpy()
    residence = _gm_int(df["gemeente_code"])
    girl = (person % 2).astype(bool)
    n = len(df)

    # a girl's name from the female pool, a boy's from the male one, at the same hashed position: one gather from
    # both pools side by side
    both = pl.concat([pools["female"], pools["male"]])
    boy = np.where(girl, 0, POOL_SIZE)

    def by_sex(field: int) -> pl.Series:
        return both.gather((keyed_hash(seed, field, origin, person) % np.uint64(POOL_SIZE)).astype(np.int64) + boy)

    first, second = by_sex(F_FIRST), by_sex(F_SECOND)
    two_names = keyed_uniform(seed, F_NNAMES, origin, person) < 0.45
    last_idx = (keyed_hash(seed, F_LAST, origin, person) % np.uint64(POOL_SIZE)).astype(np.int64)

    # Address: depends on the gemeente of residence, so a move gives a new address.
    pcs = pc4().filter(pl.col("inwoners_2021") > 0)
    addr = _addresses(seed, pcs, residence, origin, person)
    global_index = df["offset"].to_numpy() + person
    out = pl.DataFrame(
        {
            "client_id": client_ids(seed, global_index),
            "bsn": pl.Series(bsn_from_index(global_index, seed)).cast(pl.String),
            "_first": first,
            "_second": second,
            "_two": two_names,
            "voorvoegsel": pools["voorvoegsel"].gather(last_idx),
            "achternaam": pools["achternaam"].gather(last_idx),
            "geboortedatum": birth_dates(seed, origin, person, df["cohort_size"].to_numpy()),
            "geslacht": pl.Series(["1", "2"]).gather(girl.astype(np.int64)),   # not a numpy unicode array
            "gemeente_code": df["gemeente_code"],
            **addr,
        }
    )
    assert out.height == n
    return out.with_columns(
        pl.when("_two").then(pl.col("_first") + " " + pl.col("_second")).otherwise(pl.col("_first")).alias("voornamen"),
        pl.when("_two")
        .then(pl.col("_first").str.slice(0, 1) + pl.col("_second").str.slice(0, 1))
        .otherwise(pl.col("_first").str.slice(0, 1))
        .alias("voorletters"),
    ).drop("_first", "_second", "_two")


def _addresses(seed, pcs: pl.DataFrame, residence, origin, person) -> dict:
    """Street, house number and a postcode in a PC4 of the gemeente of residence (weighted by its population)."""
    pools = name_pools(seed)
    pick = np.empty(len(person), dtype=np.int64)   # row of `pcs` per person
    u = keyed_uniform(seed, F_PC4, residence, origin, person)
    codes = pcs["gemeente_code"].cast(pl.Int64).to_numpy()
    inwoners = pcs["inwoners_2021"].to_numpy()
    by_gm = np.argsort(residence, kind="stable")
    gms, starts = np.unique(residence[by_gm], return_index=True)
    for gm, rows in zip(gms, np.split(by_gm, starts[1:])):   # one vectorised lookup per gemeente, not per row
        sub = np.nonzero(codes == gm)[0]
        cum = np.cumsum(inwoners[sub]).astype(np.float64)
        pick[rows] = sub[np.searchsorted(cum / cum[-1], u[rows], side="right").clip(0, len(sub) - 1)]
    letters = pl.Series(POSTCODE_LETTER_PAIRS).gather(
        (keyed_hash(seed, F_LETTERS, residence, origin, person) % np.uint64(len(POSTCODE_LETTER_PAIRS))).astype(np.int64)
    )
    street = pools["street"].gather(
        (keyed_hash(seed, F_STREET, residence, origin, person) % np.uint64(POOL_SIZE)).astype(np.int64)
    )
    house = 1 + (keyed_hash(seed, F_HOUSE, residence, origin, person) % np.uint64(180)).astype(np.int64)
    return {
        "straatnaam": street,
        "huisnummer": house,
        "postcode": pcs["pc4"].gather(pick) + letters,
        "woonplaats": pcs["woonplaats"].gather(pick),
    }


def client_ids(seed: int, global_index: np.ndarray) -> pl.Series:
    """client_id of global person indices: "C" and 9 digits, a keyed bijection of the index (so unique, and the same
    person keeps it after a move) that shows neither the gemeente of origin nor the birth cohort."""
    return opaque_code(opaque_number(seed, D_CLIENT, global_index, size=10 ** CLIENT_ID[1]), CLIENT_ID)


def person_ids(seed: int, df: pl.DataFrame) -> pl.DataFrame:
    """client_id and bsn for the (origin_code, person_index) columns of `df`."""
    offsets = cohort_sizes().select(pl.col("gemeente_code").alias("origin_code"), "offset")
    d = df.select("origin_code", "person_index").join(offsets, on="origin_code", how="left", maintain_order="left")
    global_index = d["offset"].to_numpy() + d["person_index"].to_numpy()
    return pl.DataFrame({
        "client_id": client_ids(seed, global_index),
        "bsn": pl.Series(bsn_from_index(global_index, seed)).cast(pl.String),
    })


def verwijzers(seed: int, gemeenten: pl.DataFrame) -> pl.DataFrame:
    """Per gemeente and referrer type: lists of synthetic referrer names and AGB-like codes (97GGGKKK)."""
    pools = name_pools(seed)
    rows = []
    for g in gemeenten.iter_rows(named=True):    # one row per gemeente (reference-table size)
        gi = int(g["gemeente_index"])
        n_ha = max(2, int(g["inwoners"]) // 6000)
        last = pools["achternaam"].gather(
            (keyed_hash(seed, 11, int(g["gemeente_code"]), np.arange(n_ha + 3)) % np.uint64(POOL_SIZE)).astype(np.int64)
        ).to_list()
        code = lambda k: f"97{gi:03d}{k:03d}"  # noqa: E731
        rows += [
            (g["gemeente_code"], "02", [f"Huisartsenpraktijk {n}" for n in last[:n_ha]], [code(k) for k in range(n_ha)]),
            (g["gemeente_code"], "03", [f"JGZ {g['gemeente_naam']}"], [code(900)]),
            (g["gemeente_code"], "04", [f"Gecertificeerde Instelling {g['inkoopregio']}"], [code(910)]),
            (g["gemeente_code"], "05", [f"Kinderarts {n}" for n in last[n_ha:]], [code(920 + k) for k in range(3)]),
            # CD066-CD068: a rechter/OvJ referral carries a name but no zorgverlenercode
            (g["gemeente_code"], "08", [f"Rechtbank {g['provincie']}"], [None]),
        ]
    return pl.DataFrame(rows, schema={"gemeente_code": pl.String, "verwijzer_type": pl.String,
                                      "_namen": pl.List(pl.String), "_codes": pl.List(pl.String)}, orient="row")

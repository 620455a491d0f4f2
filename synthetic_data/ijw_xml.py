"""iJw 3.2 XML both ways: the dataset tables as messages (export), messages as tables (import), XSD validation.

The message layouts follow the iJw 3.2 XSDs of Zorginstituut Nederland (vendored in data/ijw-xsd/, provenance in its
README). One layout per message type (`MESSAGES`) serves both directions: the exporter renders a record's fields from
it, the importer reads them back with the same element paths, so that an exported field is always imported.

Batching is as real traffic is: the XSDs of JW301/JW305/JW307/JW315/JW317 hold one Client per message, so the
toewijzing/start/stop/verzoek flow is one message per sender, receiver, day and client (with every product of that
client that day); a JW319 answers one request; one JW323 per aanbieder, gemeente and declaratie (= declaratieperiode)
and its JW325. Messages are written one at a time as strings (bounded memory), each file
`<gemeente>/<BERICHT>_<afzender>_<ontvanger>_<dagtekening>_<identificatie>.xml`, and validated against the XSD as it
is written: a record the schema rejects is listed in the export report (which record, which element, why), never
dropped or repaired. Nothing is invented: the only values the tables do not hold are the header constants of the
standard (BerichtCode, versions), the message identification (a hash of the message's own batch key: unique and the
same whichever gemeenten are exported), and the codes listed in `CONSTANTS` (each with its reason).
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import cache
from itertools import groupby
from pathlib import Path
from typing import Callable, Iterable, Iterator

import polars as pl

from .dictionary import schema
from .errors import DataError

XSD_DIR = Path(__file__).with_name("data") / "ijw-xsd"
BASE_NS = "http://www.istandaarden.nl/ijw/3_2/basisschema/schema"
MANIFEST = "manifest.json"
REPORT = "export-report.csv"
KIND = "ijw-xml"
CHUNK = 50_000           # rows read from messages are kept as Python dicts at most this many per table
SYNTHETIC_COMMENT = "<!-- Synthetic iJw message (jeugdzorg-zandbak): no person, provider or number in it is real -->"

# Values the tables do not hold but the XSD requires, each fixed by what the tables mean:
CONSTANTS = {
    "NaamGebruik": "1",    # eigen naam: the tables hold no partner name, so the own name is the only one used
    "Contact/Soort": "01",  # BRP-adres: jeugdigen holds the registered home address (woonplaatsbeginsel)
    "LandCode": "NL",       # every generated address has a Dutch PC4 postcode
    "JW325 Header/RetourCode": "0200",  # the message was accepted (a rejected JW323 gets no DeclaratieAntwoord)
    "JW325 Client/RetourCode": "0200",  # the client's lines were answered (each rejected line carries its own code)
}


def ns(code: str) -> str:
    return f"http://www.istandaarden.nl/ijw/3_2/{code.lower()}/schema"


# ------------------------------------------------------------------------------------------------ layouts
# A node is (tag, column) for a leaf, (tag, [nodes]) for a group (written only when a leaf in it has a value),
# or (tag, "=value") for a constant (written only inside a group that has data). Tags without a prefix are in the
# message's namespace, "ijw:" ones in the basisschema's. Leaves whose column the table lacks are left out (null).

PRODUCT = ("Product", [("ijw:Categorie", "product_categorie"), ("ijw:Code", "product_code")])
OMVANG = ("Omvang", [("ijw:Volume", "volume"), ("ijw:Eenheid", "eenheid"), ("ijw:Frequentie", "frequentie")])
GESLACHTSNAAM = ("ijw:Geslachtsnaam", [("ijw:Achternaam", "j_achternaam"), ("ijw:Voorvoegsel", "j_voorvoegsel")])
VERKORTE_NAAM = ("Naam", [GESLACHTSNAAM, ("ijw:Voornamen", "j_voornamen"), ("ijw:Voorletters", "j_voorletters")])
VOLLEDIGE_NAAM = ("Naam", [GESLACHTSNAAM, ("ijw:Voornamen", "j_voornamen"), ("ijw:Voorletters", "j_voorletters"),
                           ("ijw:NaamGebruik", "=1")])
CONTACT = ("Contactgegevens", [("Contact", [("Soort", "=01"), ("Adres", [
    ("ijw:Huis", [("ijw:Huisnummer", "j_huisnummer")]), ("ijw:Postcode", "j_postcode"),
    ("ijw:Straatnaam", "j_straatnaam"), ("ijw:Plaatsnaam", "j_woonplaats"), ("ijw:LandCode", "=NL")])])])
CLIENT_KORT = [("Bsn", "bsn"), ("Geboortedatum", [("ijw:Datum", "j_geboortedatum")]), ("Geslacht", "j_geslacht"),
               VERKORTE_NAAM]
# the jeugdigen columns a client block carries (j_<column>), joined on (gemeente_code, bsn)
JEUGDIGE = ["geboortedatum", "geslacht", "achternaam", "voorvoegsel", "voornamen", "voorletters", "huisnummer",
            "postcode", "straatnaam", "woonplaats"]


@dataclass(frozen=True)
class Message:
    code: str                     # JW301
    bericht_code: str             # BerichtCode of the XSD
    table: str                    # the table whose rows are the message's records
    afzender: str                 # column of Header/Afzender
    ontvanger: str
    dagtekening: str              # column of BerichtIdentificatie/Dagtekening
    gemeente: str                 # the gemeente side (afzender or ontvanger column): the partition folder
    batch: tuple[str, ...]        # columns that make one message (besides afzender, ontvanger, dagtekening)
    client: tuple = ()            # nodes of the Client block (empty: no Client)
    container: str = ""           # path from the root (or Client) to the records' parent
    record: str = ""              # element name of one record
    fields: tuple = ()            # nodes of one record
    in_client: bool = True        # the records sit inside Client
    order: tuple[str, ...] = ()   # order of the records within a message
    needs: tuple[str, ...] = ()   # columns the table must have for the message to be exported (guarded tables)

    @property
    def prefix(self) -> str:
        return self.code.lower()


MESSAGES: dict[str, Message] = {m.code: m for m in [
    Message("JW315", "446", "verzoeken", "agb_code", "gemeente_code", "dagtekening", "gemeente_code",
            ("bsn", "geboortedatum", "geslacht"),
            client=(("Bsn", "bsn"), ("Geboortedatum", [("ijw:Datum", "geboortedatum")]), ("Geslacht", "geslacht"),
                    VERKORTE_NAAM),
            container="AangevraagdeProducten", record="AangevraagdProduct",
            fields=(("ReferentieAanbieder", "referentie_aanbieder"), PRODUCT,
                    ("ToewijzingIngangsdatum", "toewijzing_ingangsdatum"),
                    ("ToewijzingEinddatum", "toewijzing_einddatum"), OMVANG, ("Budget", "budget"),
                    ("Verwijzer", [("ijw:Type", "verwijzer_type"), ("ijw:Naam", "verwijzer_naam"),
                                   ("ijw:ZorgverlenerCode", "verwijzer_zorgverlenercode")])),
            order=("referentie_aanbieder",)),
    Message("JW319", "488", "antwoorden", "gemeente_code", "agb_code", "dagtekening", "gemeente_code",
            ("referentie_aanbieder",), record="Antwoord", in_client=False,
            fields=(("ReferentieAanbieder", "referentie_aanbieder"), ("VerzoekAntwoord", "verzoek_antwoord"),
                    ("RedenAfwijzingVerzoek", "reden_afwijzing"),
                    ("Woonplaatsbeginsel", [("Gemeente", "woonplaatsbeginsel_gemeente")]))),
    Message("JW301", "436", "toewijzingen", "gemeente_code", "agb_code", "toewijzingsdatum", "gemeente_code",
            ("bsn", "_occurrence"),
            client=(("Bsn", "bsn"), ("Geboortedatum", [("ijw:Datum", "j_geboortedatum")]),
                    ("Geslacht", "j_geslacht"), VOLLEDIGE_NAAM, CONTACT),
            container="ToegewezenProducten", record="ToegewezenProduct",
            fields=(("ToewijzingNummer", "toewijzing_nummer"), ("ReferentieAanbieder", "referentie_aanbieder"),
                    PRODUCT, ("Toewijzingsdatum", "toewijzingsdatum"), ("Toewijzingstijd", "toewijzingstijd"),
                    ("Ingangsdatum", "ingangsdatum"), ("Einddatum", "einddatum"),
                    ("RedenWijziging", "reden_wijziging"), OMVANG, ("Budget", "budget")),
            order=("toewijzingstijd", "toewijzing_nummer", "versie")),
    Message("JW305", "438", "zorgstarts", "agb_code", "gemeente_code", "dagtekening", "gemeente_code",
            ("bsn",), client=tuple(CLIENT_KORT), container="StartProducten", record="StartProduct",
            fields=(("ToewijzingNummer", "toewijzing_nummer"), PRODUCT,
                    ("ToewijzingIngangsdatum", "toewijzing_ingangsdatum"), ("Begindatum", "begindatum"),
                    ("StatusAanlevering", "status_aanlevering")),
            order=("toewijzing_nummer", "begindatum")),
    Message("JW307", "440", "zorgstops", "agb_code", "gemeente_code", "dagtekening", "gemeente_code",
            ("bsn",), client=tuple(CLIENT_KORT), container="StopProducten", record="StopProduct",
            fields=(("ToewijzingNummer", "toewijzing_nummer"), PRODUCT,
                    ("ToewijzingIngangsdatum", "toewijzing_ingangsdatum"), ("Begindatum", "begindatum"),
                    ("RedenBeeindiging", "reden_beeindiging"), ("Einddatum", "einddatum"),
                    ("StatusAanlevering", "status_aanlevering")),
            order=("toewijzing_nummer", "begindatum")),
    # JW317 Verzoek om wijziging: written when the generator's wijzigingsverzoeken table is there (one TeWijzigen
    # product per row; the columns named in `needs` must exist)
    Message("JW317", "486", "wijzigingsverzoeken", "agb_code", "gemeente_code", "dagtekening", "gemeente_code",
            ("bsn", "referentie_aanbieder", "reden_verzoek"),
            client=(("Bsn", "bsn"),), container="Verzoek", record="TeWijzigenProduct",
            fields=(("ToewijzingNummer", "toewijzing_nummer"), ("GewensteIngangsdatum", "gewenste_ingangsdatum"),
                    ("Einddatum", "einddatum"), OMVANG, ("Budget", "budget")),
            order=("toewijzing_nummer",),
            needs=("agb_code", "gemeente_code", "dagtekening", "bsn", "referentie_aanbieder", "reden_verzoek",
                   "toewijzing_nummer", "gewenste_ingangsdatum")),
]}
# A JW317 that asks for a product the youth does not have yet (no ToewijzingNummer) is a NieuwProduct.
JW317_NIEUW = (PRODUCT, ("GewensteIngangsdatum", "gewenste_ingangsdatum"), ("Einddatum", "einddatum"), OMVANG,
               ("Budget", "budget"))


def _record(m: "Message", p: str, cols: dict) -> pl.Expr:
    """One record of message `m` as XML (a JW317's product in its own container: TeWijzigen or Nieuw)."""
    rec = pl.concat_str([pl.lit(f"<{p}:{m.record}>"), fragment(m.fields, p, cols).fill_null(""), pl.lit(f"</{p}:{m.record}>")])
    if m.code != "JW317":
        return rec
    nieuw = pl.concat_str([pl.lit(f"<{p}:NieuweProducten><{p}:NieuwProduct>"), fragment(JW317_NIEUW, p, cols).fill_null(""),
                           pl.lit(f"</{p}:NieuwProduct></{p}:NieuweProducten>")])
    wijzig = pl.concat_str([pl.lit(f"<{p}:TeWijzigenProducten>"), rec, pl.lit(f"</{p}:TeWijzigenProducten>")])
    return pl.when(pl.col("toewijzing_nummer").is_null()).then(nieuw).otherwise(wijzig)


# JW323/JW325 nest Client > Prestatie under a declaratie header: their own writers below, the same node lists.
DECLARATIE_FIELDS = (("DeclaratieNummer", "declaratie_nummer"),
                     ("DeclaratiePeriode", [("ijw:Begindatum", "d_begindatum"), ("ijw:Einddatum", "d_einddatum")]),
                     ("DeclaratieDagtekening", "d_dagtekening"),
                     ("TotaalIngediendBedrag", [("ijw:TotaalBedrag", "d_totaal_bedrag"),
                                               ("ijw:DebetCredit", "d_debet_credit")]))
PRESTATIE_FIELDS = (("ProductReferentie", [("ijw:ReferentieNummer", "referentie_nummer"),
                                           ("ijw:VorigReferentieNummer", "vorig_referentie_nummer")]),
                    ("ToewijzingNummer", "toewijzing_nummer"), ("ProductCategorie", "product_categorie"),
                    ("ProductCode", "product_code"),
                    ("ProductPeriode", [("ijw:Begindatum", "begindatum"), ("ijw:Einddatum", "einddatum")]),
                    ("GeleverdVolume", "geleverd_volume"), ("Eenheid", "eenheid"), ("ProductTarief", "product_tarief"),
                    ("IngediendBedrag", [("ijw:Bedrag", "ingediend_bedrag"), ("ijw:DebetCredit", "debet_credit")]))
ANTWOORD_FIELDS = (("DeclaratieNummer", "declaratie_nummer"),
                   ("TotaalIngediendBedrag", [("ijw:TotaalBedrag", "d_totaal_bedrag"),
                                             ("ijw:DebetCredit", "d_debet_credit")]),
                   ("TotaalToegekendBedrag", [("ijw:TotaalBedrag", "totaal_toegekend_bedrag"),
                                             ("ijw:DebetCredit", "debet_credit")]))
# JW325 rejected lines (the generator's declaratie_antwoord_prestaties, when there): a JW323 line and its code
ANTWOORD_LINE_NEEDS = ("agb_code", "declaratie_nummer", "referentie_nummer", "retourcode")
CODES = {"JW301": "436", "JW305": "438", "JW307": "440", "JW315": "446", "JW317": "486", "JW319": "488",
         "JW323": "490", "JW325": "491"}


# ------------------------------------------------------------------------------------------------ schemas
@cache
def xsd_versions() -> tuple[str, str]:
    """(BasisschemaXsdVersie, BerichtXsdVersie) as the vendored XSDs declare them in their appinfo."""
    text = (XSD_DIR / "JW301.xsd").read_text(encoding="utf-8")
    get = lambda tag: re.search(rf"<ijw:{tag}>([^<]+)</ijw:{tag}>", text).group(1)  # noqa: E731
    return get("BasisschemaXsdVersie"), get("BerichtXsdVersie")


@cache
def xml_schema(code: str):
    """The lxml XMLSchema of one message type, loaded once per process."""
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(XSD_DIR / f"{code}.xsd")))


def message_code(root) -> str | None:
    """JW301 .. from the root element's namespace, None when it is no iJw 3.2 message."""
    return _code_of(str(root.tag))


@cache
def _code_of(tag: str) -> str | None:
    m = re.fullmatch(r"\{http://www\.istandaarden\.nl/ijw/3_2/(jw\d{3})/schema\}Bericht", tag)
    return m.group(1).upper() if m else None


# ------------------------------------------------------------------------------------------------ rendering
def _text(v) -> str:
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    s = str(v)
    if "&" in s or "<" in s or ">" in s:
        s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s


def _tag(tag: str, prefix: str) -> str:
    return tag if ":" in tag else f"{prefix}:{tag}"


def _escaped(col: str, dtype) -> pl.Expr:
    c = pl.col(col).cast(pl.String)
    if dtype == pl.String:
        c = (c.str.replace_all("&", "&amp;", literal=True).str.replace_all("<", "&lt;", literal=True)
             .str.replace_all(">", "&gt;", literal=True))
    return c


def fragment(nodes, prefix: str, columns: dict) -> pl.Expr:
    """The XML of `nodes` for every row as one string expression (vectorised): null where no leaf has a value.
    Leaves whose column is missing from `columns` (name -> dtype) count as null."""
    parts, data = [], []
    for tag, spec in nodes:
        t = _tag(tag, prefix)
        if isinstance(spec, str) and spec.startswith("="):
            parts.append(pl.lit(f"<{t}>{spec[1:]}</{t}>"))
            continue
        if isinstance(spec, str):
            if spec not in columns:
                continue
            e = pl.concat_str([pl.lit(f"<{t}>"), _escaped(spec, columns[spec]), pl.lit(f"</{t}>")])
        else:
            inner = fragment(spec, prefix, columns)
            e = pl.concat_str([pl.lit(f"<{t}>"), inner, pl.lit(f"</{t}>")])
        parts.append(e)
        data.append(e)
    if not data:
        return pl.lit(None, pl.String)
    has = pl.any_horizontal([d.is_not_null() for d in data])
    return pl.when(has).then(pl.concat_str([x.fill_null("") for x in parts]))


def _leaves(nodes, path: str = "") -> Iterator[tuple[str, str]]:
    """(element path, column) of every leaf with a column, e.g. ("Product/ijw:Categorie", "product_categorie")."""
    for tag, spec in nodes:
        p = f"{path}/{tag}" if path else tag
        if isinstance(spec, str):
            if not spec.startswith("="):
                yield p, spec
        else:
            yield from _leaves(spec, p)


def identificatie(code: str, *key) -> str:
    """The BerichtIdentificatie of a message: 12 hex digits (upper case) of a hash of its type and batch key, unique
    per afzender in practice (a collision is reported by the export) and independent of what else is exported."""
    return hashlib.sha256("|".join([code, *map(str, key)]).encode()).hexdigest()[:12].upper()


def _header(m_code: str, afzender, ontvanger, ident: str, dag, close: bool = True) -> list[str]:
    p = m_code.lower()
    basis, bericht = xsd_versions()
    out = [f"<{p}:Header>", f"<{p}:BerichtCode>{CODES[m_code]}</{p}:BerichtCode>",
           f"<{p}:BerichtVersie>3</{p}:BerichtVersie>", f"<{p}:BerichtSubversie>2</{p}:BerichtSubversie>"]
    if afzender is not None:
        out.append(f"<{p}:Afzender>{_text(afzender)}</{p}:Afzender>")
    if ontvanger is not None:
        out.append(f"<{p}:Ontvanger>{_text(ontvanger)}</{p}:Ontvanger>")
    out.append(f"<{p}:BerichtIdentificatie><ijw:Identificatie>{ident}</ijw:Identificatie>"
               + (f"<ijw:Dagtekening>{_text(dag)}</ijw:Dagtekening>" if dag is not None else "")
               + "</" + f"{p}:BerichtIdentificatie>")
    out.append(f"<{p}:XsdVersie><ijw:BasisschemaXsdVersie>{basis}</ijw:BasisschemaXsdVersie>"
               f"<ijw:BerichtXsdVersie>{bericht}</ijw:BerichtXsdVersie></{p}:XsdVersie>")
    if close:
        out.append(f"</{p}:Header>")
    return out


def _open(m_code: str) -> str:
    p = m_code.lower()
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{SYNTHETIC_COMMENT}\n'
            f'<{p}:Bericht xmlns:{p}="{ns(m_code)}" xmlns:ijw="{BASE_NS}">')


@dataclass
class Rendered:
    """One message: its file name, text, gemeente folder and the records it carries as (table, row, element path)."""
    code: str
    gemeente: str
    name: str
    text: str
    records: list[tuple[str, int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # records the message could not carry as given


_SAFE, _UNSAFE = re.compile(r"[0-9A-Za-z-]*"), re.compile(r"[^0-9A-Za-z-]")


def _fname(code: str, afzender, ontvanger, dag, ident: str) -> str:
    def safe(v) -> str:
        if v is None:
            return "leeg"
        v = str(v)
        return v if _SAFE.fullmatch(v) else _UNSAFE.sub("_", v)
    return f"{code}_{safe(afzender)}_{safe(ontvanger)}_{safe(dag)}_{ident}.xml"


def _indexed(path: str, name: str, i: int, n: int) -> str:
    """The element path as libxml2 (and lxml's getpath) writes it: [i] only among several siblings."""
    return f"{path}/{name}[{i + 1}]" if n > 1 else f"{path}/{name}"


def _runs(rows: Iterable[dict], keys: list[str]) -> Iterator[list[dict]]:
    """Consecutive rows (dicts) with equal `keys` (rows sorted by them), one list at a time."""
    return (list(run) for _, run in groupby(rows, key=lambda r: tuple(r[c] for c in keys)))


def _with_jeugdige(df: pl.DataFrame, jeugdigen: pl.DataFrame | None) -> pl.DataFrame:
    if jeugdigen is None:
        return df
    j = jeugdigen.select("gemeente_code", "bsn", *[pl.col(c).alias(f"j_{c}") for c in JEUGDIGE if c in jeugdigen.columns])
    j = j.filter(pl.col("bsn").is_not_null()).unique(["gemeente_code", "bsn"], keep="first", maintain_order=True)
    return df.join(j, on=["gemeente_code", "bsn"], how="left", maintain_order="left", nulls_equal=False)


def _flow_messages(m: Message, tables: dict[str, pl.DataFrame]) -> Iterator[Rendered]:
    df = tables[m.table].with_row_index("_row")
    if m.code == "JW301":   # one version of a toewijzing per message: a second one the same day goes in the next
        df = df.with_columns(pl.int_range(pl.len()).over("gemeente_code", "agb_code", "toewijzingsdatum", "bsn",
                                                         "toewijzing_nummer").alias("_occurrence"))
    if any(c.startswith("j_") for _, c in _leaves(m.client)):
        df = _with_jeugdige(df, tables.get("jeugdigen"))
    keys = [m.afzender, m.ontvanger, m.dagtekening, *m.batch]
    order = [c for c in m.order if c in df.columns] + ["_row"]
    p = m.prefix
    cols = dict(df.schema)
    extra = ["referentie_aanbieder", "reden_verzoek"] if m.code == "JW317" else []
    df = df.sort(keys + order, nulls_last=True).select(
        *keys, *[c for c in extra if c not in keys], "_row",
        fragment(m.client, p, cols).alias("_client"),
        _record(m, p, cols).alias("_rec"))
    for batch in _runs(df.iter_rows(named=True), keys):
        first = batch[0]
        afz, ont, dag = first[m.afzender], first[m.ontvanger], first[m.dagtekening]
        ident = identificatie(m.code, *[first[c] for c in keys])
        out = [_open(m.code), *_header(m.code, afz, ont, ident, dag)]
        rec_path = f"/{p}:Bericht"
        records = []
        if m.in_client:
            out.append(f"<{p}:Client>")
            if first["_client"] is not None:
                out.append(first["_client"])
            rec_path += f"/{p}:Client"
        for part in m.container.split("/") if m.container else []:
            out.append(f"<{p}:{part}>")
            rec_path += f"/{p}:{part}"
        if m.code == "JW317":   # the request's own fields precede its products
            out.append(f"<{p}:ReferentieAanbieder>{_text(first['referentie_aanbieder'])}"
                       f"</{p}:ReferentieAanbieder><{p}:RedenVerzoek>{_text(first['reden_verzoek'])}</{p}:RedenVerzoek>")
        for i, row in enumerate(batch):
            out.append(row["_rec"])
            records.append((m.table, row["_row"], _indexed(rec_path, f"{p}:{m.record}", i, len(batch))))
        for part in reversed(m.container.split("/") if m.container else []):
            out.append(f"</{p}:{part}>")
        if m.in_client:
            out.append(f"</{p}:Client>")
        out.append(f"</{p}:Bericht>\n")
        gem = first[m.gemeente]
        yield Rendered(m.code, str(gem), _fname(m.code, afz, ont, dag, ident), "\n".join(out), records)


def _declaratie_frame(tables) -> pl.DataFrame:
    d = tables["declaraties"]
    return d.select("agb_code", "gemeente_code", "declaratie_nummer",
                    *[pl.col(c).alias(f"d_{c}") for c in ["begindatum", "einddatum", "dagtekening", "totaal_bedrag",
                                                          "debet_credit"]]).with_row_index("_drow")


def jw323_key(row: dict) -> tuple:
    return (row["agb_code"], row["gemeente_code"], row["declaratie_nummer"])


def _jw323_messages(tables) -> Iterator[Rendered]:
    """One JW323 per declaratie (aanbieder, gemeente, declaratie_nummer); claim lines without a header still get a
    message (its header then lacks the fields the schema requires: reported, not dropped)."""
    dk = ["agb_code", "gemeente_code", "declaratie_nummer"]
    d = _declaratie_frame(tables)
    pr = tables["prestaties"].with_row_index("_row")
    lines = pr.join(d, on=dk, how="full", coalesce=True, nulls_equal=True)
    p = "jw323"
    cols = dict(lines.schema)
    lines = lines.sort([*dk, "bsn", "_row"], nulls_last=True).select(
        *dk, "bsn", "_row", "_drow", "d_dagtekening", fragment(DECLARATIE_FIELDS, p, cols).alias("_decl"),
        pl.concat_str([pl.lit(f"<{p}:Prestatie>"), fragment(PRESTATIE_FIELDS, p, cols).fill_null(""),
                       pl.lit(f"</{p}:Prestatie>")]).alias("_rec"))
    for batch in _runs(lines.iter_rows(named=True), dk):
        first = batch[0]
        afz, ont = first["agb_code"], first["gemeente_code"]
        dag = first["d_dagtekening"] if first["d_dagtekening"] is not None else None
        ident = identificatie("JW323", *jw323_key(first))
        out = [_open("JW323"), *_header("JW323", afz, ont, ident, dag), f"<{p}:Declaratie>"]
        if first["_decl"] is not None:
            out.append(first["_decl"])
        records = []
        if first["_drow"] is not None:
            records.append(("declaraties", first["_drow"], f"/{p}:Bericht"))
        lines_ = [r for r in batch if r["_row"] is not None]
        clients = list(_runs(lines_, ["bsn"]))
        out.append(f"<{p}:Clienten>")
        base = f"/{p}:Bericht/{p}:Declaratie/{p}:Clienten"
        for ci, client in enumerate(clients):
            cpath = _indexed(base, f"{p}:Client", ci, len(clients)) + f"/{p}:Prestaties"
            out.append(f"<{p}:Client>")
            if client[0]["bsn"] is not None:
                out.append(f"<{p}:Bsn>{_text(client[0]['bsn'])}</{p}:Bsn>")
            out.append(f"<{p}:Prestaties>")
            for i, row in enumerate(client):
                out.append(row["_rec"])
                records.append(("prestaties", row["_row"], _indexed(cpath, f"{p}:Prestatie", i, len(client))))
            out.append(f"</{p}:Prestaties></{p}:Client>")
        out.append(f"</{p}:Clienten></{p}:Declaratie></{p}:Bericht>\n")
        yield Rendered("JW323", str(ont), _fname("JW323", afz, ont, dag, ident), "\n".join(out), records)


def _jw325_messages(tables) -> Iterator[Rendered]:
    """The JW325 answer to each JW323: header codes, the declaratie's submitted and granted totals, and the rejected
    lines when the generator records them (declaratie_antwoord_prestaties)."""
    dk = ["agb_code", "gemeente_code", "declaratie_nummer"]
    a = tables["declaratie_antwoorden"].with_row_index("_row")
    a = a.join(_declaratie_frame(tables).drop("_drow"), on=dk, how="left", maintain_order="left", nulls_equal=False)
    lines = _rejected_lines(tables)
    p = "jw325"
    basis, bericht = xsd_versions()
    a = a.sort([*dk, "dagtekening", "_row"], nulls_last=True)
    a = a.select(*dk, "dagtekening", "d_dagtekening", "_row", "retourcode",
                 fragment(ANTWOORD_FIELDS, p, dict(a.schema)).alias("_antw"))
    for row in a.iter_rows(named=True):
        afz, ont, dag = row["gemeente_code"], row["agb_code"], row["dagtekening"]
        ident = identificatie("JW325", *jw323_key(row), dag)
        out = [_open("JW325"), *_header("JW325", afz, ont, ident, dag, close=False)]
        out.append(f"<{p}:DeclaratieIdentificatie><ijw:Identificatie>{identificatie('JW323', *jw323_key(row))}"
                   f"</ijw:Identificatie>" + (f"<ijw:Dagtekening>{_text(row['d_dagtekening'])}</ijw:Dagtekening>"
                                              if row["d_dagtekening"] is not None else "")
                   + f"</{p}:DeclaratieIdentificatie>")
        out.append(f"<{p}:XsdVersieDeclaratie><ijw:BasisschemaXsdVersie>{basis}</ijw:BasisschemaXsdVersie>"
                   f"<ijw:BerichtXsdVersie>{bericht}</ijw:BerichtXsdVersie></{p}:XsdVersieDeclaratie>")
        out.append(f"<{p}:RetourCodes><{p}:RetourCode>{CONSTANTS['JW325 Header/RetourCode']}</{p}:RetourCode>"
                   f"</{p}:RetourCodes></{p}:Header>")
        out.append(f"<{p}:DeclaratieAntwoord>")
        if row["_antw"] is not None:
            out.append(row["_antw"])
        records = [("declaratie_antwoorden", row["_row"], f"/{p}:Bericht")]
        rejected = lines.get((row["agb_code"], row["declaratie_nummer"]), []) if lines else []
        if rejected:
            clients = list(_runs(sorted(rejected, key=lambda r: (r["bsn"] or "", r["_lrow"])), ["bsn"]))
            out.append(f"<{p}:Clienten>")
            base = f"/{p}:Bericht/{p}:DeclaratieAntwoord/{p}:Clienten"
            for ci, client in enumerate(clients):
                cpath = _indexed(base, f"{p}:Client", ci, len(clients)) + f"/{p}:Prestaties"
                out.append(f"<{p}:Client><{p}:Bsn>{_text(client[0]['bsn'])}</{p}:Bsn><{p}:Prestaties>")
                for i, r in enumerate(client):
                    out.append(f"<{p}:Prestatie>{r['_rec']}")
                    out.append(f"<{p}:RetourCodes><{p}:RetourCode>{_text(r['retourcode'])}</{p}:RetourCode>"
                               f"</{p}:RetourCodes></{p}:Prestatie>")
                    records.append(("declaratie_antwoord_prestaties", r["_lrow"],
                                    _indexed(cpath, f"{p}:Prestatie", i, len(client))))
                # the client's own code: the lines of this client were answered (the line codes say how)
                out.append(f"</{p}:Prestaties><{p}:RetourCodes><{p}:RetourCode>{CONSTANTS['JW325 Client/RetourCode']}</{p}:RetourCode>"
                           f"</{p}:RetourCodes></{p}:Client>")
            out.append(f"</{p}:Clienten>")
        if row["retourcode"] is not None:
            out.append(f"<{p}:RetourCodes><{p}:RetourCode>{_text(row['retourcode'])}</{p}:RetourCode></{p}:RetourCodes>")
        out.append(f"</{p}:DeclaratieAntwoord></{p}:Bericht>\n")
        yield Rendered("JW325", str(afz), _fname("JW325", afz, ont, dag, ident), "\n".join(out), records)


def _rejected_lines(tables) -> dict[tuple, list[dict]] | None:
    """The rejected lines of each JW325 (declaratie_antwoord_prestaties: the JW323 fields as sent and the line's
    retourcode), by (agb_code, declaratie_nummer)."""
    t = tables.get("declaratie_antwoord_prestaties")
    if t is None or not set(ANTWOORD_LINE_NEEDS) <= set(t.columns):
        return None
    j = t.with_row_index("_lrow")
    j = j.select("agb_code", "declaratie_nummer", "bsn", "retourcode", "_lrow",
                 fragment(PRESTATIE_FIELDS, "jw325", dict(j.schema)).fill_null("").alias("_rec"))
    out: dict[tuple, list[dict]] = {}
    for r in j.iter_rows(named=True):
        out.setdefault((r["agb_code"], r["declaratie_nummer"]), []).append(r)
    return out


def skipped_tables(tables: dict[str, pl.DataFrame]) -> list[str]:
    """Guarded tables that are present but lack the columns their message needs (said in the export summary)."""
    out = []
    for m in MESSAGES.values():
        if m.needs and m.table in tables and not set(m.needs) <= set(tables[m.table].columns):
            out.append(f"{m.table} (for {m.code}): missing column(s) "
                       f"{', '.join(sorted(set(m.needs) - set(tables[m.table].columns)))}")
    t = tables.get("declaratie_antwoord_prestaties")
    if t is not None and not set(ANTWOORD_LINE_NEEDS) <= set(t.columns):
        out.append(f"declaratie_antwoord_prestaties (for JW325 lines): missing column(s) "
                   f"{', '.join(sorted(set(ANTWOORD_LINE_NEEDS) - set(t.columns)))}")
    return out


def only_gemeenten(tables: dict[str, pl.DataFrame], gemeenten: Iterable[str] | None) -> dict[str, pl.DataFrame]:
    if gemeenten is None:
        return tables
    keep = sorted(set(gemeenten))
    return {n: (t.filter(pl.col("gemeente_code").is_in(keep)) if "gemeente_code" in t.columns else t)
            for n, t in tables.items()}


def messages(tables: dict[str, pl.DataFrame], gemeenten: Iterable[str] | None = None) -> Iterator[Rendered]:
    """Every message of the dataset, type by type (in the order of the flow), one at a time. `gemeenten`: only the
    messages of these gemeenten (a partition: the same messages, byte for byte, as in a full export)."""
    tables = only_gemeenten(tables, gemeenten)
    for m in MESSAGES.values():
        if m.table in tables and set(m.needs) <= set(tables[m.table].columns):
            yield from _flow_messages(m, tables)
    if "prestaties" in tables and "declaraties" in tables:
        yield from _jw323_messages(tables)
    if "declaratie_antwoorden" in tables and "declaraties" in tables:
        yield from _jw325_messages(tables)


# ------------------------------------------------------------------------------------------------ export
REPORT_FIELDS = ["message", "bericht", "table", "row", "key", "element", "problem"]


def _map_error(path: str | None, records: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    """The records an XSD error at `path` is about: the record whose element contains it (longest match), else every
    record of the message (a header or client field belongs to all of them)."""
    best, n = [], -1
    for rec in records:
        rp = rec[2]
        if path and rp != f"/{path.split('/')[1]}" and (path == rp or path.startswith(rp + "/")) and len(rp) > n:
            best, n = [rec], len(rp)
    if best:
        return best
    items = [r for r in records if r[2].count("/") > 1]
    return items or records


def check_message(schema_, text: str | bytes) -> list:
    """The XSD errors of one message text (lxml error log entries)."""
    from lxml import etree

    doc = etree.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    if schema_.validate(doc):
        return []
    return list(schema_.error_log)


def export(tables: dict[str, pl.DataFrame], out: str | Path, source: dict | None = None,
           gemeenten: Iterable[str] | None = None, progress: Callable[[int], None] | None = None) -> dict:
    """Write the dataset's messages into folder `out` (atomically, replacing it whole) with manifest.json and the
    export report (export-report.csv: one row per record and element the XSD rejects). Returns the manifest."""
    from .atomic import atomic_folder
    from .dataset import GENERATOR
    from .ijw import key_expr
    from .version import __version__

    out = Path(out)
    tables = only_gemeenten(tables, gemeenten)     # the record numbers of the report are those of these rows
    keys = {n: t.select(key_expr(n)).to_series().to_list() for n, t in tables.items()
            if n in {m.table for m in MESSAGES.values()} | {"declaraties", "prestaties", "declaratie_antwoorden",
                                                              "declaratie_antwoord_prestaties"}
            and _has_key(n, t)}
    counts: dict[str, int] = {}
    records: dict[str, int] = {}
    rejected_msgs = 0
    seen: dict[tuple[str, str], str] = {}
    with atomic_folder(out, sync_each=False) as tmp, open(tmp / REPORT, "w", newline="", encoding="utf-8") as rep:
        w = csv.writer(rep)
        w.writerow(REPORT_FIELDS)
        made: set[str] = set()
        root = str(tmp)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        for n, msg in enumerate(messages(tables)):
            if msg.gemeente not in made:
                os.makedirs(os.path.join(root, msg.gemeente), exist_ok=True)
                made.add(msg.gemeente)
            rel = f"{msg.gemeente}/{msg.name}"
            ident = msg.name.rsplit("_", 1)[1][:-4]
            afz = msg.name.split("_")[1]
            if (afz, ident) in seen:   # a hash collision: would break BerichtIdentificatie uniqueness
                w.writerow([rel, msg.code, "", "", "", "Header/BerichtIdentificatie",
                            f"Identificatie {ident} of afzender {afz} is also used by {seen[(afz, ident)]}"])
            seen[(afz, ident)] = rel
            data = msg.text.encode("utf-8")
            fd = os.open(f"{root}/{rel}", flags, 0o644)   # os-level write: pathlib/io objects cost more than the write
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            counts[msg.code] = counts.get(msg.code, 0) + 1
            for t, _, _ in msg.records:
                records[t] = records.get(t, 0) + 1
            errors = check_message(xml_schema(msg.code), data)
            if errors:
                rejected_msgs += 1
            for e in errors:
                for t, row, rpath in _map_error(e.path, msg.records):
                    k = keys.get(t)
                    w.writerow([rel, msg.code, t, row, k[row] if k else "", _short(e.path), _clean(e.message)])
            if progress and n % 5000 == 0:
                progress(n)
        manifest = {
            "synthetic": True, "generator": GENERATOR, "generator_version": __version__, "kind": KIND,
            "standard": "iJw 3.2", "xsd_versie": dict(zip(["basisschema", "bericht"], xsd_versions())),
            "notice": "Synthetic iJw messages generated by the jeugdzorg-zandbak sandbox. No message describes a real "
                      "person.", "source": source or {}, "messages": dict(sorted(counts.items())),
            "records": dict(sorted(records.items())), "rejected_messages": rejected_msgs,
            "not_exported": skipped_tables(tables), "constants": CONSTANTS, "report": REPORT,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n",
                                    encoding="utf-8")
    return manifest


def _has_key(name: str, t: pl.DataFrame) -> bool:
    from .dictionary import key

    try:
        return set(key(name)) <= set(t.columns)
    except KeyError:
        return False


def _clean(message: str) -> str:
    """An lxml error message without the namespace URIs of the element names."""
    return re.sub(r"\{http://www\.istandaarden\.nl/ijw/3_2/[^}]+\}", "", message)


def _short(path: str | None) -> str:
    """An element path without namespace prefixes: /Bericht/Client/ToegewezenProducten/ToegewezenProduct[2]/Einddatum."""
    return re.sub(r"/[a-z0-9]+:", "/", path or "")


# ------------------------------------------------------------------------------------------------ reading
def message_files(path: str | Path) -> list[Path]:
    """The .xml files of a folder (recursively, sorted) or the one file given."""
    return [Path(f) for f in _message_names(path)]


def _message_names(path: str | Path) -> list[str]:
    """message_files as strings (what the reader opens: a Path per file costs more than its parse's overhead)."""
    path = Path(path)
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder; allowed: a folder of iJw XML messages (as written by "
                        f"'zandbak export-ijw') or one message file")
    rels = []
    for d, dirs, names in os.walk(path):   # os.walk and string keys: pathlib's rglob and Path sorting cost ~1 s/16k files
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        rel = os.path.relpath(d, path)
        rels.extend(n if rel == "." else f"{rel}/{n}" for n in names if n.endswith(".xml") and not n.startswith("."))
    top = str(path)
    files = [f"{top}/{r}" for r in sorted(rels, key=lambda r: r.split("/"))]   # the order Path sorting gives
    if not files:
        raise DataError(f"{path}: holds no .xml file; allowed: a folder of iJw XML messages")
    return files


def check_synthetic(path: str | Path) -> dict:
    """The watermark of a message folder: a manifest.json saying "synthetic": true in the folder (or, for one file,
    in its folder or the one above). export-ijw writes it; a documented test set carries its own."""
    path = Path(path)
    candidates = [path] if path.is_dir() else [path.parent, path.parent.parent]
    for c in candidates:
        f = c / MANIFEST
        if f.is_file():
            try:
                manifest = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise DataError(f"{f}: unreadable; allowed: the manifest.json of 'zandbak export-ijw'") from None
            if not isinstance(manifest, dict) or manifest.get("synthetic") is not True:
                raise DataError(f"{f}: does not say \"synthetic\": true; the sandbox only reads synthetic data")
            return manifest
    raise DataError(f"{path}: no manifest.json marks these messages synthetic; allowed: a folder written by "
                    f"'zandbak export-ijw', or a documented synthetic test set with a manifest.json saying "
                    f"\"synthetic\": true")


@dataclass
class Parsed:
    """What the reader made of a set of messages: rows per table (strings), each row's file and element path, the
    XSD errors per file, and the files that are no iJw 3.2 message."""
    rows: dict[str, list[dict]] = field(default_factory=dict)
    where: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    messages: list[tuple[str, str | None]] = field(default_factory=list)         # (file, code)
    xsd_errors: list[tuple[str, str, str, int, str]] = field(default_factory=list)  # file, code, path, line, message
    xsd_records: list[tuple[str, str, int]] = field(default_factory=list)         # file, table, row of an XSD error

    chunks: dict[str, list[pl.DataFrame]] = field(default_factory=dict)

    def add(self, table: str, row: dict, file: str, path: str) -> int:
        rows, where = self.rows.get(table), self.where.get(table)
        if rows is None:
            rows = self.rows[table] = []
        if where is None:
            where = self.where[table] = []
        rows.append(row)
        where.append((file, path))
        if len(rows) >= CHUNK:
            self.flush(table)
        return len(where) - 1

    def flush(self, table: str) -> None:
        """Rows so far as one frame of text columns (bounded memory: Python dicts are large)."""
        rows = self.rows.get(table) or []
        if rows:
            from .dictionary import table_names

            cols = list(schema(table)) if table in table_names() else sorted({c for r in rows for c in r})
            # from_dicts reads the dicts in Rust (the keys not in the schema ignored): ~3x faster than Python lists
            self.chunks.setdefault(table, []).append(pl.from_dicts(rows, schema={c: pl.String for c in cols}))
        self.rows[table] = []


def _compile(nodes, prefix: str, keep: Callable[[str], bool] = lambda c: True) -> dict:
    """The layout as nested dicts {Clark tag: column or sub-dict}, to read a record walking its children once; only
    the leaves whose column `keep` accepts (a group left without any is not descended)."""
    out = {}
    for tag, spec in nodes:
        if isinstance(spec, str) and spec.startswith("="):
            continue
        if isinstance(spec, str) and not keep(spec):
            continue
        sub = spec if isinstance(spec, str) else _compile(spec, prefix, keep)
        if sub:
            out[_clark(tag, prefix)] = sub
    return out


def _clark(tag: str, prefix: str) -> str:
    pfx, _, local = _tag(tag, prefix).partition(":")
    return f"{{{BASE_NS if pfx == 'ijw' else ns(pfx)}}}{local}"


def _read_fields(el, level: dict, out: dict) -> dict:
    """Every leaf of the layout under `el` into `out` (children not in the layout are skipped, not descended; of
    repeated elements the first counts, as findtext's)."""
    get = level.get
    for ch in el:
        spec = get(ch.tag)
        if spec is None:
            continue
        if spec.__class__ is str:
            if spec not in out:
                out[spec] = ch.text
        elif spec.__class__ is dict:
            _read_fields(ch, spec, out)
        else:   # a _Take: the records' container, walked by the caller (saves a second pass over the children)
            out.setdefault(spec, []).append(ch)
    return out


def _kids(el, tag: str, path: str, getpath) -> list:
    """(child, element path) of every child of `el` with Clark `tag`, in order. The path is built from the parent's
    as libxml2's getpath writes it (prefix:name, [i] only among several same-named siblings): getpath itself walks
    and formats the whole ancestry again for every record (~5 us each). A child without a prefix (a default
    namespace: libxml2 writes *[i], counted among all siblings) or siblings of one tag under different prefixes are
    left to getpath. (The one difference left: a sibling that redeclares the same prefix for another namespace, which
    libxml2 counts along; the XSD rejects such a message anyway, and only the index in the path would differ.)"""
    return _named(list(el.iterchildren(tag)), tag, path, getpath)


def _named(kids: list, tag: str, path: str, getpath) -> list:
    """(element, path) of `kids`, all the children of one parent (at `path`) with Clark `tag` (see _kids)."""
    if not kids:
        return kids
    pfx = kids[0].prefix
    if len(kids) == 1:
        return [(kids[0], f"{path}/{pfx}:{tag.rpartition('}')[2]}" if pfx else getpath(kids[0]))]
    if pfx is None or any(k.prefix != pfx for k in kids):
        return [(k, getpath(k)) for k in kids]
    name = f"{path}/{pfx}:{tag.rpartition('}')[2]}"
    return [(k, f"{name}[{i}]") for i, k in enumerate(kids, 1)]


def _walk(el, path: str, steps: tuple[str, ...], getpath) -> list:
    """(element, path) of every element at the child path `steps` (Clark tags) under `el`, in document order."""
    return _deeper(_kids(el, steps[0], path, getpath), steps[1:], getpath)


def _deeper(found: list, steps: tuple[str, ...], getpath) -> list:
    for s in steps:
        found = [x for e, p in found for x in _kids(e, s, p, getpath)]
    return found


@dataclass(frozen=True)
class _Take:
    """In a compiled layout: the children with this tag are records' containers, collected for the caller."""
    tag: str


def _first_text(el, steps: tuple[str, ...]) -> str | None:
    """As el.findtext(path) for a plain child path: None when there is no such element, "" for an empty one."""
    for ch in el.iterchildren(steps[0]):
        if len(steps) == 1:
            return ch.text or ""
        t = _first_text(ch, steps[1:])
        if t is not None:
            return t
    return None


@dataclass(frozen=True)
class _Plan:
    """What the reader needs of one message type, compiled once: Clark tags of the paths and the layouts."""
    code: str
    head: dict
    head_seq: tuple             # Clark tags of the Header's first six children and BerichtIdentificatie's two
    client: tuple = ()          # path to the Client block (JW301 .. JW317) or to the declaratie (JW323/JW325)
    client_fields: dict = field(default_factory=dict)
    records: tuple = ()         # (child path from the client block or root, layout) per kind of record
    extra: tuple = ()           # (column, child path) read with findtext semantics (JW317's Verzoek fields)


def _columns(level: dict) -> list[str]:
    return [x for v in level.values() if not isinstance(v, _Take)
            for x in ([v] if isinstance(v, str) else _columns(v))]


def _steps(path: str, prefix: str) -> tuple[str, ...]:
    return tuple(_clark(s, prefix) for s in path.split("/"))


@cache
def _plans() -> dict[str, _Plan]:
    head = [("Afzender", "afzender"), ("Ontvanger", "ontvanger"),
            ("BerichtIdentificatie", [("ijw:Dagtekening", "dagtekening")])]

    def seq(p: str) -> tuple:
        return (list(_steps("BerichtCode/BerichtVersie/BerichtSubversie/Afzender/Ontvanger/BerichtIdentificatie", p)),
                _steps("ijw:Identificatie/ijw:Dagtekening", p))
    plans = {}
    for c, m in MESSAGES.items():
        p = m.prefix
        # JW301's client block is also the jeugdige's registration (j_ columns); the others' j_ leaves go nowhere
        client = _compile(m.client, p, (lambda col: True) if c == "JW301" else (lambda col: not col.startswith("j_")))
        rec = "/".join([*(m.container.split("/") if m.container else []), m.record])
        records = ((_steps(rec, p), _compile(m.fields, p)),)
        extra = ()
        if c == "JW317":   # the product to change, or the new one
            records = ((_steps("Verzoek/TeWijzigenProducten/TeWijzigenProduct", p), _compile(m.fields, p)),
                       (_steps("Verzoek/NieuweProducten/NieuwProduct", p), _compile(JW317_NIEUW, p)))
            extra = (("referentie_aanbieder", _steps("Verzoek/ReferentieAanbieder", p)),
                     ("reden_verzoek", _steps("Verzoek/RedenVerzoek", p)))
        if m.in_client:   # the records' containers are found in the same pass as the client's fields
            client.update({steps[0]: _Take(steps[0]) for steps, _ in records})
        plans[c] = _Plan(c, _compile(head, p), seq(p), _steps("Client", p) if m.in_client else (), client, records, extra)
        # a record's row starts from the message's values (sides, client, date), which it must not overlap
        common = {m.afzender, m.ontvanger, *(x for x in _columns(client) if not x.startswith("j_")),
                  *(x for x, _ in extra), *(["dagtekening"] if m.dagtekening == "dagtekening" else [])}
        assert not any(common & set(_columns(f)) for _, f in records), c
    clienten = {c: _clark("Clienten", c.lower()) for c in ("JW323", "JW325")}
    plans["JW323"] = _Plan("JW323", _compile(head, "jw323"), seq("jw323"), _steps("Declaratie", "jw323"),
                           {**_compile(DECLARATIE_FIELDS, "jw323"), clienten["JW323"]: _Take(clienten["JW323"])},
                           ((_steps("Client", "jw323"), _steps("Bsn", "jw323"),
                             _steps("Prestaties/Prestatie", "jw323"), _compile(PRESTATIE_FIELDS, "jw323")),))
    plans["JW325"] = _Plan("JW325", _compile(head, "jw325"), seq("jw325"), _steps("DeclaratieAntwoord", "jw325"),
                           {**_compile(ANTWOORD_FIELDS, "jw325", lambda col: not col.startswith("d_")),
                            clienten["JW325"]: _Take(clienten["JW325"])},
                           ((_steps("Client", "jw325"), _steps("Bsn", "jw325"),
                             _steps("Prestaties/Prestatie", "jw325"), _compile(PRESTATIE_FIELDS, "jw325")),),
                           (("retourcode", _steps("RetourCodes/RetourCode", "jw325")),))
    return plans


def _read_header(doc, plan: "_Plan") -> dict:
    """Afzender, Ontvanger and Dagtekening of the Header (the first child). The XSD fixes the order of its first six
    children and of BerichtIdentificatie's two: when they are there in that order, they are read by position (one
    slice, no walk over the whole header); otherwise the layout walk finds whatever is there, as for any record."""
    if not len(doc):
        return {}
    h = doc[0]
    kids = h[:6]
    if len(kids) == 6 and [k.tag for k in kids] == plan.head_seq[0]:
        ident = kids[5][:2]
        if len(ident) == 2 and (ident[0].tag, ident[1].tag) == plan.head_seq[1]:
            return {"afzender": kids[3].text, "ontvanger": kids[4].text, "dagtekening": ident[1].text}
    return _read_fields(h, plan.head, {})


def read_messages(files: Iterable[Path | str], root: Path | str, validate: bool = True) -> Parsed:
    """Parse every file once: XSD-validate it (when `validate`) and read its records into rows."""
    from lxml import etree

    parsed = Parsed()
    plans = _plans()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    parse, root_s = etree.parse, os.fspath(root)
    cut = len(root_s) + 1
    for f in files:
        fs = os.fspath(f)
        rel = fs[cut:] if fs != root_s else os.path.basename(fs)
        try:
            tree = parse(fs, parser)
        except (etree.XMLSyntaxError, OSError) as e:
            parsed.messages.append((rel, None))
            parsed.xsd_errors.append((rel, "", "", getattr(e, "lineno", 0) or 0, f"not well-formed XML: {e}"))
            continue
        doc = tree.getroot()
        code = _code_of(doc.tag)
        parsed.messages.append((rel, code))
        if code is None:
            parsed.xsd_errors.append((rel, "", "", 0, f"not an iJw 3.2 message (root {doc.tag})"))
            continue
        plan = plans.get(code)
        if plan is not None:
            head = _read_header(doc, plan)
            pfx = doc.prefix
            path = f"/{pfx}:Bericht" if pfx else tree.getpath(doc)
            if code in MESSAGES:
                _read_flow(MESSAGES[code], plan, doc, path, tree.getpath, head, parsed, rel)
            else:
                _read_declaratie(plan, doc, path, tree.getpath, head, parsed, rel)
        if validate and (code in CODES or (XSD_DIR / f"{code}.xsd").exists()):
            schema_ = xml_schema(code)
            if not schema_.validate(tree):
                mine = _records_of(parsed, rel) if code in CODES else []
                for e in schema_.error_log:
                    parsed.xsd_errors.append((rel, code, e.path or "", e.line, _clean(e.message)))
                    for t, i, _ in _map_error(e.path, mine) if mine else ():
                        parsed.xsd_records.append((rel, t, i))
    return parsed


def _records_of(parsed: Parsed, rel: str) -> list[tuple[str, int, str]]:
    """(table, row, element path) of the records read from file `rel`: the last ones of each table (a file's records
    are added together), found when the file has XSD errors rather than noted for every file."""
    out = []
    for t, w in parsed.where.items():
        i = len(w)
        while i and w[i - 1][0] == rel:
            i -= 1
        out.extend((t, k, w[k][1]) for k in range(i, len(w)))
    return out


def _read_flow(m: Message, plan: _Plan, doc, path: str, getpath, head: dict, parsed: Parsed, rel: str) -> None:
    sides = {m.afzender: head.get("afzender"), m.ontvanger: head.get("ontvanger")}
    common, client, cvals = dict(sides), None, {}
    if plan.client:
        found = _kids(doc, plan.client[0], path, getpath)
        if not found:
            return
        client, cpath = found[0]
        cvals = _read_fields(client, plan.client_fields, {})
        conts = {t.tag: _named(cvals.pop(t), t.tag, cpath, getpath) for t in [k for k in cvals if k.__class__ is _Take]}
        if m.code != "JW301":   # only JW301 reads the client's j_ (registration) columns
            common.update(cvals)
        else:
            for c, v in cvals.items():
                if not c.startswith("j_"):
                    common[c] = v
        for c, steps in plan.extra:
            common[c] = _first_text(client, steps)
    if m.dagtekening == "dagtekening":     # the message's date (JW301 dates its records itself)
        common["dagtekening"] = head.get("dagtekening")
    add, table = parsed.add, m.table
    for steps, fields in plan.records:
        found = _walk(doc, path, steps, getpath) if client is None else _deeper(conts.get(steps[0], []), steps[1:],
                                                                                 getpath)
        for rec, rpath in found:
            row = _read_fields(rec, fields, common.copy())
            add(table, row, rel, rpath)
    if m.code == "JW301" and cvals.get("bsn"):   # the client block of a toewijzing: the registration
        j = {c[2:]: v for c, v in cvals.items() if c.startswith("j_")}
        add("jeugdigen", {"bsn": cvals["bsn"], "gemeente_code": sides.get(m.gemeente), **j}, rel, cpath)


def _read_declaratie(plan: _Plan, doc, path: str, getpath, head: dict, parsed: Parsed, rel: str) -> None:
    """A JW323 (declaratie and its prestaties) or a JW325 (the answer and its rejected lines, with their code)."""
    found = _kids(doc, plan.client[0], path, getpath)
    if not found:
        return
    d, dpath = found[0]
    dv = _read_fields(d, plan.client_fields, {})
    take = next(k for k in plan.client_fields.values() if k.__class__ is _Take)
    clienten = _named(dv.pop(take, []), take.tag, dpath, getpath)
    nummer = dv.get("declaratie_nummer")
    if plan.code == "JW323":
        side = {"agb_code": head.get("afzender"), "gemeente_code": head.get("ontvanger")}
        parsed.add("declaraties", {**side, "declaratie_nummer": nummer,
                                   **{k[2:]: v for k, v in dv.items() if k.startswith("d_")}}, rel, path)
        table, code_steps = "prestaties", None
    else:
        side = {"agb_code": head.get("ontvanger"), "gemeente_code": head.get("afzender")}
        code_steps = plan.extra[0][1]
        parsed.add("declaratie_antwoorden", {
            "declaratie_nummer": nummer, **side, "dagtekening": head.get("dagtekening"),
            "totaal_toegekend_bedrag": dv.get("totaal_toegekend_bedrag"), "debet_credit": dv.get("debet_credit"),
            "retourcode": _first_text(d, code_steps)}, rel, path)
        table = "declaratie_antwoord_prestaties"   # the rejected lines, with their code
    side["declaratie_nummer"] = nummer
    clients, (bsn_tag,), (cont_tag, rec_tag), fields = plan.records[0]
    add = parsed.add
    for client, cpath in _deeper(clienten, clients, getpath):
        bsn, conts = None, []
        for ch in client:   # one pass: the first Bsn (findtext's value) and the Prestaties
            t = ch.tag
            if t == cont_tag:
                conts.append(ch)
            elif t == bsn_tag and bsn is None:
                bsn = ch.text or ""
        ctx = {**side, "bsn": bsn}
        for cont, ppath in _named(conts, cont_tag, cpath, getpath):
            for rec, rpath in _kids(cont, rec_tag, ppath, getpath):
                row = _read_fields(rec, fields, ctx.copy())
                if code_steps:
                    row["retourcode"] = _first_text(rec, code_steps)
                add(table, row, rel, rpath)


# columns each imported table takes from elsewhere than its own message (joined after reading)
def to_tables(parsed: Parsed) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """The rows as dictionary tables (typed as the dictionary says; extra columns of guarded tables as text), and per
    table the number of values that could not be typed (kept empty: the XSD report names them)."""
    tables, lost = {}, {}
    from .dictionary import table_names

    for name in list(parsed.where):
        parsed.flush(name)
        sch = schema(name) if name in table_names() else {}
        df = pl.concat(parsed.chunks.pop(name), how="diagonal")
        casts, n_lost = [], 0
        for c, t in sch.items():
            if t == pl.Date:
                casts.append(pl.col(c).str.to_date("%Y-%m-%d", strict=False))
            elif t == pl.Int64:
                casts.append(pl.col(c).cast(pl.Int64, strict=False))
            elif t == pl.Boolean:
                casts.append(pl.col(c).cast(pl.Boolean, strict=False))
        typed = df.with_columns(casts)
        for c in (c for c, t in sch.items() if t != pl.String):
            n_lost += int(df[c].is_not_null().sum() - typed[c].is_not_null().sum())
        tables[name], lost[name] = typed, n_lost
    if "toewijzingen" in tables:   # versie is the sandbox's order of the versions: iJw orders by date and time
        # A JW301 product without RedenWijziging is a new toewijzing, not a change (iJw fills RedenWijziging on a
        # gewijzigde toewijzing only): it starts again at version 1, so a number sent again for another toewijzing
        # (TR332) keeps the key the tables give it. The rows are kept in date order (their `where` and XSD records
        # follow), so of two equal versions the later sent is the last row, the current one (latest_toewijzing).
        # Before (issue 13): one count per number, which made such a duplicate "version 2" of the other toewijzing.
        tw = tables["toewijzingen"].with_row_index("_i")
        grp = ["gemeente_code", "toewijzing_nummer"]
        tw = tw.sort(*grp, "toewijzingsdatum", "toewijzingstijd", "_i", nulls_last=True).with_columns(
            pl.col("reden_wijziging").is_null().cum_sum().over(grp).alias("_seg")).with_columns(
            (pl.int_range(pl.len()).over(*grp, "_seg") + 1).cast(pl.Int64).alias("versie"))
        order = tw["_i"].to_list()
        if order != list(range(len(order))):
            new = {old: k for k, old in enumerate(order)}
            parsed.xsd_records = [(f, t, new[i] if t == "toewijzingen" else i) for f, t, i in parsed.xsd_records]
            parsed.where["toewijzingen"] = [parsed.where["toewijzingen"][i] for i in order]
        tables["toewijzingen"] = tw.select(tables["toewijzingen"].columns)
    if "antwoorden" in tables:   # JW319 carries no BSN: the request it answers (JW315 or JW317, TR347) does
        reqs = [tables[n].select("agb_code", "referentie_aanbieder", pl.col("bsn").alias("_bsn"),
                                 pl.lit(code).alias("_soort"))
                for n, code in (("verzoeken", "JW315"), ("wijzigingsverzoeken", "JW317")) if n in tables]
        a = tables["antwoorden"]
        if reqs:
            v = pl.concat(reqs).unique(["agb_code", "referentie_aanbieder"], keep="first", maintain_order=True)
            tables["antwoorden"] = a.join(v, on=["agb_code", "referentie_aanbieder"], how="left",
                                          maintain_order="left", nulls_equal=False).with_columns(
                pl.col("_bsn").alias("bsn"), pl.col("_soort").alias("verzoek_soort")).select(a.columns)
    if "wijzigingsverzoeken" in tables and "toewijzingen" in tables:
        # a TeWijzigenProduct names its toewijzing only: the product is the toewijzing's (the same in every version)
        w = tables["wijzigingsverzoeken"]
        tw = tables["toewijzingen"].select("gemeente_code", "toewijzing_nummer", pl.col("product_categorie").alias("_cat"),
                                           pl.col("product_code").alias("_code")).unique(
            ["gemeente_code", "toewijzing_nummer"], keep="first", maintain_order=True)
        tables["wijzigingsverzoeken"] = w.join(tw, on=["gemeente_code", "toewijzing_nummer"], how="left",
                                               maintain_order="left", nulls_equal=False).with_columns(
            pl.coalesce("product_categorie", "_cat").alias("product_categorie"),
            pl.coalesce("product_code", "_code").alias("product_code")).select(w.columns)
    if "jeugdigen" in tables:   # one registration per gemeente and BSN (a client is in many messages)
        j = tables["jeugdigen"].with_row_index("_i").with_columns(
            pl.col("_i").first().over("gemeente_code", "bsn").alias("_first"))
        renumber = dict(zip(j["_i"].to_list(), j["_first"].to_list()))
        j = j.filter(pl.col("_i") == pl.col("_first"))
        keep = j["_i"].to_list()
        new = {old: k for k, old in enumerate(keep)}
        parsed.xsd_records = [(f, t, new[renumber[i]] if t == "jeugdigen" else i) for f, t, i in parsed.xsd_records]
        parsed.where["jeugdigen"] = [parsed.where["jeugdigen"][i] for i in keep]
        tables["jeugdigen"] = j.drop("_i", "_first")
    return tables, lost


# ------------------------------------------------------------------------------------------------ import
def read_folder(path: str | Path, validate: bool = True) -> tuple[dict[str, pl.DataFrame], Parsed, dict[str, int]]:
    """Every message of a folder (or one file) as tables, after the watermark and BSN guard; with the parse details."""
    from .dataset import guard_bsns

    path = Path(path)
    check_synthetic(path)
    files = _message_names(path)
    parsed = read_messages(files, path if path.is_dir() else path.parent, validate=validate)
    tables, lost = to_tables(parsed)
    for name, df in tables.items():
        guard_bsns(df, f"{path} ({name} from the messages)")
    return tables, parsed, lost


def import_folder(path: str | Path, out: str | Path, force: bool = False) -> dict:
    """Messages back into a dataset folder (the dictionary's tables and columns, watermarked, written atomically)."""
    from .dataset import check_output, write_dataset

    check_output(out, inputs=[path], force=force)
    tables, parsed, lost = read_folder(path)
    config = {"source": "import-ijw", "messages": len(parsed.messages),
              "xsd_invalid_messages": len({e[0] for e in parsed.xsd_errors})}
    manifest = write_dataset(tables, out, config, force=force)
    manifest["untyped_values"] = lost
    manifest["xsd_errors"] = len(parsed.xsd_errors)
    return manifest

"""iJw 3.2 XML: export valid against the XSDs, the round trip, the public examples, the validator on injected faults,
and bad input (issue 13)."""
from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from lxml import etree

from expectations import ijw_validate as V
from expectations import load_rules, rule_findings
from pipelines.cli import main
from synthetic_data import ijw_xml as X
from synthetic_data.dictionary import key as dictionary_key
from synthetic_data.faults import catalogue, inject_faults
from synthetic_data.faults.score import score
from synthetic_data.testing import small_tables

EXAMPLES = Path(__file__).parent / "data" / "ijw-examples"
SUPPORTED = ["JW301", "JW305", "JW307", "JW315", "JW317", "JW319", "JW323", "JW325"]


@pytest.fixture(scope="module")
def clean_export(tmp_path_factory):
    tables = small_tables()
    out = tmp_path_factory.mktemp("ijw") / "xml"
    manifest = X.export(tables, out)
    return tables, out, manifest


@pytest.fixture(scope="module")
def dirty_validation(tmp_path_factory):
    dirty, truth = inject_faults(small_tables(), profile="demo", seed=7)
    out = tmp_path_factory.mktemp("ijw-dirty") / "xml"
    manifest = X.export(dirty, out)
    v = V.validate_messages(out, reference={k: dirty[k] for k in V.REFERENCE})
    return dirty, truth, out, manifest, v


def _plain_lxml_valid(path: Path) -> tuple[bool, list]:
    """The file against its XSD with nothing but lxml (schema chosen by the root's namespace)."""
    doc = etree.parse(str(path))
    code = doc.getroot().tag.split("/")[-2].upper()
    schema = etree.XMLSchema(etree.parse(str(X.XSD_DIR / f"{code}.xsd")))
    return schema.validate(doc), list(schema.error_log)


def test_every_exported_message_validates_against_its_xsd(clean_export):
    tables, out, manifest = clean_export
    files = sorted(out.rglob("*.xml"))
    assert manifest["rejected_messages"] == 0
    assert set(manifest["messages"]) == set(SUPPORTED)          # every type the tables hold is written
    assert len(files) == sum(manifest["messages"].values())
    schemas = {}
    bad = []
    for f in files:
        doc = etree.parse(str(f))
        code = doc.getroot().tag.split("/")[-2].upper()
        schemas.setdefault(code, etree.XMLSchema(etree.parse(str(X.XSD_DIR / f"{code}.xsd"))))
        if not schemas[code].validate(doc):
            bad.append((f.name, str(schemas[code].error_log.last_error)))
    assert not bad, bad[:3]
    with open(out / X.REPORT, newline="") as fh:
        assert list(csv.reader(fh)) == [X.REPORT_FIELDS]      # nothing rejected, header only


VARIANTS_CONFIG = dict(region="0153", years="2024", seed=2, scale=0.1)   # the smallest dataset with every variant


def test_every_flow_variant_is_exported_and_valid(tmp_path):
    """Multi-product JW301s (vervoer next to dagbehandeling), budget toewijzingen and their euro claims, deletions
    (RedenWijziging 13), temporary stops (20), woonplaatsbeginsel rejections (8 with the gemeente), JW317 Nieuw and
    TeWijzigen products and JW325 rejected lines: each is in the messages and every message passes plain lxml."""
    from synthetic_data import GeneratorConfig

    tables = small_tables(GeneratorConfig(**VARIANTS_CONFIG))
    m = X.export(tables, tmp_path / "x")
    assert m["rejected_messages"] == 0 and set(m["messages"]) == set(SUPPORTED)
    seen = Counter()
    ns = {"ijw": X.BASE_NS}
    for f in sorted((tmp_path / "x").rglob("*.xml")):
        assert _plain_lxml_valid(f)[0], f.name
        root = etree.parse(str(f)).getroot()
        code = X.message_code(root)
        p = {"m": X.ns(code), **ns}
        q = lambda path: root.findall(path, p)  # noqa: E731
        seen["multi_product_jw301"] += code == "JW301" and len(q(".//m:ToegewezenProduct")) > 1
        seen["budget_jw301"] += code == "JW301" and bool(q(".//m:ToegewezenProduct/m:Budget"))
        seen["euro_claim"] += code == "JW323" and any(e.text == "83" for e in q(".//m:Prestatie/m:Eenheid"))
        seen["reden_13"] += code == "JW301" and any(e.text == "13" for e in q(".//m:RedenWijziging"))
        seen["reden_20"] += code == "JW307" and any(e.text == "20" for e in q(".//m:RedenBeeindiging"))
        seen["reden_8"] += code == "JW319" and any(e.text == "8" for e in q(".//m:RedenAfwijzingVerzoek")) and bool(
            q(".//m:Woonplaatsbeginsel/m:Gemeente"))
        seen["nieuw_product"] += code == "JW317" and bool(q(".//m:NieuwProduct"))
        seen["te_wijzigen"] += code == "JW317" and bool(q(".//m:TeWijzigenProduct"))
        seen["rejected_line"] += code == "JW325" and bool(q(".//m:Prestatie/m:RetourCodes/m:RetourCode"))
    assert min(seen.values()) > 0 and len(seen) == 9, seen
    # a claim on a budget toewijzing declares the contract's code of its categorie (JW323 requires a ProductCode);
    # the toewijzing stays categorie-only, and the contract list names the code (TR381)
    euro = tables["prestaties"].filter(pl.col("eenheid") == "83")
    assert euro.height and euro["product_code"].is_not_null().all()
    assert tables["toewijzingen"].filter(pl.col("budget").is_not_null())["product_code"].is_null().all()
    lijst = tables["producten"].filter(pl.col("product_categorie") == "55")["product_code"]
    assert set(euro["product_code"]) <= set(lijst.drop_nulls())
    # every row of the tables the messages carry is in a message (nothing dropped)
    for t in ["toewijzingen", "zorgstarts", "zorgstops", "verzoeken", "wijzigingsverzoeken", "antwoorden",
              "prestaties", "declaratie_antwoord_prestaties"]:
        assert m["records"][t] == tables[t].height, t


def test_headers_batching_and_identification(clean_export):
    tables, out, manifest = clean_export
    idents, per_key = Counter(), Counter()
    ns = {"ijw": X.BASE_NS}
    for f in sorted(out.rglob("*.xml")):
        root = etree.parse(str(f)).getroot()
        code = X.message_code(root)
        p = {"m": X.ns(code), **ns}
        h = root.find("m:Header", p)
        assert h.findtext("m:BerichtCode", namespaces=p) == X.CODES[code]
        assert (h.findtext("m:BerichtVersie", namespaces=p), h.findtext("m:BerichtSubversie", namespaces=p)) == ("3", "2")
        assert h.findtext("m:XsdVersie/ijw:BerichtXsdVersie", namespaces=p) == X.xsd_versions()[1]
        afz, ont = h.findtext("m:Afzender", namespaces=p), h.findtext("m:Ontvanger", namespaces=p)
        dag = h.findtext("m:BerichtIdentificatie/ijw:Dagtekening", namespaces=p)
        idents[(afz, h.findtext("m:BerichtIdentificatie/ijw:Identificatie", namespaces=p))] += 1
        assert f.parent.name in (afz, ont) and f.name.startswith(f"{code}_{afz}_{ont}_{dag}_")
        if code in ("JW305", "JW307"):   # one message per sender, receiver, day and client
            per_key[(code, afz, ont, dag, root.findtext("m:Client/m:Bsn", namespaces=p))] += 1
        if code == "JW325":   # it names the JW323 it answers by that message's identification
            di = h.findtext("m:DeclaratieIdentificatie/ijw:Identificatie", namespaces=p)
            nr = root.findtext("m:DeclaratieAntwoord/m:DeclaratieNummer", namespaces=p)
            assert di == X.identificatie("JW323", ont, afz, nr)
    assert max(idents.values()) == 1                              # unique per afzender
    assert max(per_key.values()) == 1
    starts = tables["zorgstarts"]
    assert manifest["messages"]["JW305"] == starts.select("agb_code", "gemeente_code", "dagtekening", "bsn").n_unique()
    assert manifest["messages"]["JW323"] == tables["declaraties"].height


def test_round_trip_gives_equal_tables(clean_export, tmp_path):
    tables, out, _ = clean_export
    assert main(["import-ijw", str(out), "--out", str(tmp_path / "back")]) == 0
    from synthetic_data.dataset import present_tables, read_dataset

    back = read_dataset(tmp_path / "back", present_tables(tmp_path / "back"))
    assert set(back) >= {"toewijzingen", "zorgstarts", "zorgstops", "verzoeken", "antwoorden", "declaraties",
                         "prestaties", "declaratie_antwoorden", "jeugdigen", "wijzigingsverzoeken",
                         "declaratie_antwoord_prestaties"}
    assert back["declaratie_antwoord_prestaties"].height == tables["declaratie_antwoord_prestaties"].height > 0
    assert back["wijzigingsverzoeken"]["toewijzing_nummer"].null_count() > 0      # NieuwProduct read back too
    for name, df in back.items():
        src = tables[name]
        cols = df.columns
        if name == "jeugdigen":   # messages carry the registration of clients with a toewijzing, without client_id
            src = src.join(df.select("gemeente_code", "bsn"), on=["gemeente_code", "bsn"], how="semi")
            cols = [c for c in cols if c != "client_id"]
            assert df["client_id"].null_count() == df.height
        if name == "wijzigingsverzoeken":
            # a TeWijzigenProduct names only its ToewijzingNummer (JW317.xsd): the import takes the product from that
            # toewijzing's JW301 when the folder has it, so the product is compared only there
            have = tables["toewijzingen"].select("gemeente_code", "toewijzing_nummer").unique()
            known = pl.col("toewijzing_nummer").is_null() | pl.struct("gemeente_code", "toewijzing_nummer").is_in(
                have.select(pl.struct("gemeente_code", "toewijzing_nummer")).to_series().implode())
            src = src.with_columns(pl.when(known).then(pl.col(c)).alias(c) for c in ("product_categorie", "product_code"))
        # versie is the sandbox's numbering, not in a JW301: the import numbers the versions by Toewijzingsdatum and
        # -tijd, as iJw orders them; the generator dates every version after the one it replaces (issue 13), so the
        # numbers are the same and versie is compared as every other column
        a, b = src.select(cols).sort(cols, nulls_last=True), df.select(cols).sort(cols, nulls_last=True)
        assert a.equals(b), name


def test_partition_export_is_the_same_bytes(tmp_path):
    from synthetic_data import GeneratorConfig
    from synthetic_data.dataset import present_tables  # noqa: F401

    tables = small_tables(GeneratorConfig(region="twente", years="2024", seed=7, scale=0.01))
    out = tmp_path / "all"
    X.export(tables, out)
    gems = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(gems) > 5
    gem = gems[len(gems) // 2]
    X.export(tables, tmp_path / "one", gemeenten=[gem])
    for f in (tmp_path / "one" / gem).iterdir():
        assert f.read_bytes() == (out / gem / f.name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "one" / gem).iterdir()) == sorted(p.name for p in (out / gem).iterdir())


def test_dirty_dataset_exports_with_rejected_records_reported(dirty_validation):
    dirty, truth, out, manifest, v = dirty_validation
    with open(out / X.REPORT, newline="") as fh:
        report = list(csv.DictReader(fh))
    assert manifest["rejected_messages"] > 0
    # a negative GeleverdVolume is no LDT_Volume: each such claim line is named, not dropped or repaired
    neg = truth.filter(pl.col("fault_type") == "volume_not_positive")
    bad = dirty["prestaties"].filter(pl.col("geleverd_volume") < 0)
    named = {(r["table"], r["key"]) for r in report if r["element"].endswith("/GeleverdVolume")}
    assert bad.height and all(("prestaties", k) in named for k in
                              bad.select(pl.concat_str([pl.col(c).cast(pl.String) for c in dictionary_key("prestaties")],
                                                       separator="|")).to_series())
    assert set(neg["key"]) & {k for t, k in named}
    assert sum(manifest["records"].values()) >= sum(dirty[t].height for t in
                                                    ["toewijzingen", "zorgstarts", "zorgstops", "prestaties"])


def test_validator_finds_each_fault_type_the_messages_reveal(dirty_validation):
    """Per fault type: found by validate-ijw on the messages whenever the same rules find it on the tables (the
    types the messages cannot carry - a jeugdige without BSN, the simulation's trajecten - are printed)."""
    dirty, truth, out, _, v = dirty_validation
    xml = score(V.scorable(v, dirty["jeugdigen"]), truth)["by_fault_type"]
    same = [r for r in load_rules() if r.id in set(v.rules_run)]
    tables = score(rule_findings(dirty, same), truth)["by_fault_type"]
    lines, missed = [], []
    for ft in sorted(tables):
        found, ref = xml.get(ft, {}).get("recall") or 0.0, tables[ft]["recall"] or 0.0
        lines.append(f"{ft:<32} messages {found:.2f}  tables {ref:.2f}")
        if ref > 0 and found == 0:
            missed.append(ft)
    print("\n".join(lines))
    found_types = [ft for ft in tables if (xml.get(ft, {}).get("recall") or 0) > 0]
    assert len(found_types) >= 20, lines
    # bsn_missing: the registration without a BSN is in no message (its toewijzingen are, rejected by the XSD)
    assert missed == ["bsn_missing"], missed
    assert {f["id"] for f in catalogue()} >= set(tables)


def test_examples_xsd_per_message():
    v = {f.name: _plain_lxml_valid(f)[0] for f in sorted(EXAMPLES.glob("*.xml"))}
    assert len(v) == 14 and sum(v.values()) == 12
    assert [n for n, ok in v.items() if not ok] == ["JW315.xml", "JW318.xml"]
    for f in sorted(EXAMPLES.glob("*.xml")):
        res = V.validate_messages(f)
        xsd = res.findings.filter(pl.col("rule_code") == "XSD")
        if f.name == "JW315.xml":
            assert set(xsd.filter(pl.col("rule_id") == "XSD")["element"]) == {
                f"/Bericht/Client/AangevraagdeProducten/AangevraagdProduct[{i}]/ToewijzingEinddatum" for i in (1, 2)}
            assert all("2027-06-31" in x for x in xsd.filter(pl.col("rule_id") == "XSD")["value"])
        elif f.name == "JW318.xml":
            assert xsd["element"].to_list() == ["/Bericht/Client/Verzoek/RetourCode"]
        else:
            assert xsd.height == 0, (f.name, xsd.to_dicts())


def test_examples_folder_cross_message_rules_and_import():
    v = V.validate_messages(EXAMPLES)
    codes = set(v.findings["rule_code"])
    # the examples are one message per type, not one story: the folder checks see that
    assert {"XSD", "TR019", "TR338"} <= codes                    # a JW305/JW307 and JW323 lines without the JW301
    tr314 = v.findings.filter(pl.col("rule_code") == "TR314")    # RN004 twice in the JW323 example
    assert set(tr314["message"]) == {"JW323.xml"} and set(tr314["element"]) == {
        "/Bericht/Declaratie/Clienten/Client[2]/Prestaties/Prestatie[2]/ProductReferentie/ReferentieNummer",
        "/Bericht/Declaratie/Clienten/Client[2]/Prestaties/Prestatie[3]/ProductReferentie/ReferentieNummer"}
    tables, parsed, _ = X.read_folder(EXAMPLES)
    read = {c for _, c in parsed.messages}
    assert read >= set(SUPPORTED)
    for t in ["toewijzingen", "zorgstarts", "zorgstops", "verzoeken", "antwoorden", "declaraties", "prestaties",
              "declaratie_antwoorden", "jeugdigen"]:
        assert tables[t].height > 0, t
    assert tables["toewijzingen"]["toewijzing_nummer"].to_list() == [300201, 300202]
    assert tables["prestaties"].height == 5 and tables["declaraties"]["totaal_bedrag"].to_list() == [79000]
    assert tables["verzoeken"]["toewijzing_einddatum"].null_count() == 2   # 2027-06-31 is no date: left empty


def _variants(tmp_path: Path, code: str) -> list[Path]:
    """An example message as written, in the default namespace (no prefix), and with Ontvanger before Afzender in
    its Header (not the XSD's order): the reader must give the same rows and lxml's own getpath for each record."""
    text = (EXAMPLES / f"{code}.xml").read_text(encoding="utf-8")
    p = code.lower()
    default = text.replace(f"xmlns:{p}=", "xmlns=").replace(f"<{p}:", "<").replace(f"</{p}:", "</")
    def element(name: str) -> str:
        return text[text.index(f"<{p}:{name}>"):text.index(f"</{p}:{name}>") + len(f"</{p}:{name}>")]
    afz, ont = element("Afzender"), element("Ontvanger")
    moved = text.replace(afz, "\0").replace(ont, afz).replace("\0", ont)
    out = []
    for name, t in (("as-is", text), ("default-ns", default), ("header-moved", moved)):
        f = tmp_path / name / f"{code}.xml"
        f.parent.mkdir(exist_ok=True)
        f.write_text(t, encoding="utf-8")
        out.append(f)
    return out


@pytest.mark.parametrize("code, table, record", [("JW323", "prestaties", "Prestatie"),
                                                 ("JW301", "toewijzingen", "ToegewezenProduct"),
                                                 ("JW325", "declaratie_antwoorden", None)])
def test_reader_paths_are_lxmls_getpath_and_header_order_does_not_matter(tmp_path, code, table, record):
    # the reader builds each record's element path from its parent's (getpath per record was ~5 us): the same
    # string as lxml's getpath, with [i] among same-named siblings, also for a message in the default namespace
    rows = []
    for f in _variants(tmp_path, code):
        parsed = X.read_messages([f], f.parent, validate=False)
        tree = etree.parse(str(f))
        if record:
            want = [tree.getpath(e) for e in tree.getroot().iter(f"{{{X.ns(code)}}}{record}")]
            assert len(want) >= 2 and any("[2]" in w for w in want), want
        else:
            want = [tree.getpath(tree.getroot())]
        assert [w for _, w in parsed.where[table]] == want, f.parent.name
        if code == "JW301":
            assert [w for _, w in parsed.where["jeugdigen"]] == [tree.getpath(tree.getroot()[1])]
        parsed.flush(table)
        rows.append(parsed.chunks[table][0])
    assert rows[0]["gemeente_code"].null_count() == 0 and rows[0]["agb_code"].null_count() == 0
    assert rows[0].equals(rows[1]) and rows[0].equals(rows[2])


def test_declaratie_without_its_nummer_is_read_and_reported_not_a_traceback(tmp_path):
    # the reader took dv["declaratie_nummer"] (KeyError on a JW323/JW325 without DeclaratieNummer): now empty, and the
    # XSD names the missing element
    for code in ("JW323", "JW325"):
        text = (EXAMPLES / f"{code}.xml").read_text(encoding="utf-8")
        p = code.lower()
        start = text.index(f"<{p}:DeclaratieNummer>")
        f = tmp_path / f"{code}.xml"
        f.write_text(text[:start] + text[text.index(f"</{p}:DeclaratieNummer>", start) + len(p) + 20:],
                     encoding="utf-8")
        parsed = X.read_messages([f], tmp_path)
        table = "declaraties" if code == "JW323" else "declaratie_antwoorden"
        parsed.flush(table)
        assert parsed.chunks[table][0]["declaratie_nummer"].to_list() == [None]
        assert any("DeclaratieNummer" in e[4] for e in parsed.xsd_errors), parsed.xsd_errors


def test_validate_cli_reports_and_exit_codes(dirty_validation, clean_export, tmp_path, capsys):
    _, _, out, _, _ = dirty_validation
    assert main(["validate-ijw", str(out), "--json", str(tmp_path / "v.json"), "--html", str(tmp_path / "v.html"),
                 "--limit", "3"]) == 1
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["summary"]["messages"] == len(data["messages"]) and data["summary"]["errors"] > 0
    assert any(not m["valid"] and m["findings"] for m in data["messages"])
    page = (tmp_path / "v.html").read_text()
    assert "<script" not in page and "http" not in page and " src=" not in page and "href" not in page
    _, clean, _ = clean_export
    assert main(["validate-ijw", str(clean), "--limit", "0"]) == 0     # clean traffic: no ERROR finding


@pytest.mark.parametrize("case", ["missing", "no_manifest", "not_synthetic", "real_bsn", "out_in_input", "bad_json",
                                  "export_onto_input", "bad_gemeente"])
def test_bad_input_one_line_exit_2(case, tmp_path, capsys):
    src = tmp_path / "x"
    shutil.copytree(EXAMPLES, src)
    if case == "missing":
        argv = ["validate-ijw", str(tmp_path / "nope")]
    elif case == "no_manifest":
        (src / "manifest.json").unlink()
        argv = ["validate-ijw", str(src)]
    elif case == "not_synthetic":
        (src / "manifest.json").write_text('{"synthetic": false}')
        argv = ["import-ijw", str(src), "--out", str(tmp_path / "o")]
    elif case == "real_bsn":
        f = src / "JW305.xml"
        f.write_text(f.read_text().replace("999900006", "123456782"))
        argv = ["import-ijw", str(src), "--out", str(tmp_path / "o")]
    elif case == "out_in_input":
        argv = ["import-ijw", str(src), "--out", str(src / "o")]
    elif case == "bad_json":
        argv = ["validate-ijw", str(src), "--json", str(tmp_path / "v.txt")]
    elif case == "export_onto_input":
        argv = ["export-ijw", str(src), "--out", str(src)]
    else:
        from synthetic_data.dataset import write_dataset

        write_dataset(small_tables(), tmp_path / "ds", {"test": True})
        argv = ["export-ijw", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "--gemeente", "9999"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("zandbak: error:"), err
    assert "123456782" not in err


@pytest.mark.skipif(not os.environ.get("ZANDBAK_SLOW"), reason="Twente one year: minutes; ZANDBAK_SLOW=1 runs it")
def test_twente_year_every_message_valid(tmp_path):
    from synthetic_data import GeneratorConfig, generate

    tables = generate(GeneratorConfig(region="twente", years="2024", seed=42, scale=1.0))
    m = X.export(tables, tmp_path / "tw")
    assert m["rejected_messages"] == 0 and sum(m["messages"].values()) > 100_000


def test_dagster_ijw_messages_partition_with_its_check(tmp_path):
    import dagster as dg

    from pipelines.assets import GeneratorResource, build_assets
    from pipelines.ijw_assets import build_ijw_assets, messages_folder
    from pipelines.settings import Settings
    from pipelines.storage import ParquetIOManager

    settings = Settings(region="0147", years="2024", seed=5, scale=0.2, data_dir=str(tmp_path / "data"))
    parts = dg.StaticPartitionsDefinition(["0147"])
    assets = {a.node_def.name: a for a in build_assets(parts) + build_ijw_assets(parts)}
    gen = GeneratorResource(region="0147", years="2024", seed=5, scale=0.2, data_dir=settings.data_dir)
    resources = {"generator": gen, "parquet": ParquetIOManager(lake=str(settings.lake),
                                                               config_json=json.dumps(settings.config().as_dict()))}
    # the upstream partition as the administration op stores it (its own run and GX checks are tested elsewhere)
    from synthetic_data import GeneratorConfig, generate
    from synthetic_data.dataset import watermark, write_table

    from pipelines.ijw_assets import IJW_TABLES, REFERENCE

    tables = generate(GeneratorConfig(region="0147", years="2024", seed=5, scale=0.2))
    for t in IJW_TABLES + REFERENCE:
        path = settings.lake / t / (("0147" if t in IJW_TABLES else "all") + ".parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_table(tables[t], path, watermark(settings.config().as_dict(), t))
    res = dg.materialize([assets["reference"], assets["administration"], assets["ijw_messages"]],
                         partition_key="0147", resources=resources, selection=["ijw_messages"])
    assert res.success
    (check,) = res.get_asset_check_evaluations()
    assert check.check_name == "ijw_valid" and check.passed and check.metadata["messages"].value > 100
    folder = messages_folder(gen, "0147")
    assert len(list(folder.rglob("*.xml"))) == check.metadata["messages"].value
    assert json.loads((folder / X.MANIFEST).read_text())["rejected_messages"] == 0


def test_clean_traffic_with_backdated_verlengingen_has_no_error(tmp_path):
    """Issue 13: 0153 2024 seed 7 scale 0.1 had two toewijzingen whose version 3 was dated before version 2; iJw
    orders versions by date and time, so the messages made the older one current and TR307 fired on clean traffic."""
    from synthetic_data import GeneratorConfig

    tables = small_tables(GeneratorConfig(region="0153", years="2024", seed=7, scale=0.1))
    X.export(tables, tmp_path / "xml")
    v = V.validate_messages(tmp_path / "xml")
    assert v.errors == 0, v.findings.filter(pl.col("severity") == "ERROR").select("rule_code", "key").head(5)


def test_a_reused_toewijzing_nummer_keeps_its_key_and_the_current_toewijzing(tmp_path):
    """Issue 13: a ToewijzingNummer sent again for another client (TR332) was read back as "version 2" of the
    toewijzing, so its finding landed on a key the tables do not have, and when sent later it became the current
    toewijzing, against which the other client's claims broke TR307/TR308/TR321/TR339 (false alarms on Twente)."""
    from synthetic_data.ijw import key_expr, latest_toewijzing

    only = {"default": {"count": 0}, "faults": {"duplicate_toewijzing_nummer": {"count": 4}}}
    dirty, truth = inject_faults(small_tables(), profile=only, seed=7)
    assert truth.filter(pl.col("fault_type") == "duplicate_toewijzing_nummer").height == 4
    X.export(dirty, tmp_path / "xml")
    back, _, _ = X.read_folder(tmp_path / "xml")
    keys = lambda df: sorted(df.select(key_expr("toewijzingen"))[:, 0].to_list())  # noqa: E731
    assert keys(back["toewijzingen"]) == keys(dirty["toewijzingen"])
    current = lambda df: latest_toewijzing(df).select("gemeente_code", "toewijzing_nummer", "bsn").sort(  # noqa: E731
        "gemeente_code", "toewijzing_nummer")
    assert current(back["toewijzingen"]).equals(current(dirty["toewijzingen"]))
    v = V.validate_messages(tmp_path / "xml", reference={k: dirty[k] for k in V.REFERENCE})
    xml = score(V.scorable(v, dirty["jeugdigen"]), truth)["overall"]
    assert xml["recall"] == 1.0 and xml["fp"] == 0, xml

"""The canonical data model: internally consistent, documented, and mapped to NHSA fields."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from fraudscan import schema

DOC = Path(__file__).parents[1] / "docs" / "data-model.md"


def test_docs_data_model_is_generated_from_schema() -> None:
    assert DOC.read_text(encoding="utf-8").strip() == schema.to_markdown().strip(), (
        "docs/data-model.md is stale: run `fraudscan schema --markdown > docs/data-model.md`"
    )


@pytest.mark.parametrize("table", list(schema.TABLES.values()), ids=lambda t: t.name)
def test_table_is_consistent(table: schema.Table) -> None:
    names = table.column_names
    assert len(names) == len(set(names)), "duplicate column"
    assert set(table.primary_key) <= set(names)
    for c in table.primary_key:
        assert table.column(c).required, f"primary-key column {c} must be required"
    for fk in table.foreign_keys:
        assert fk.column in names
        ref = schema.table(fk.ref_table)
        assert fk.ref_column in ref.column_names
        # references point backwards in TABLES order so they can be validated in one pass
        order = list(schema.TABLES)
        assert order.index(fk.ref_table) < order.index(table.name)
    for c in table.columns:
        assert c.dtype in schema.DTYPES
        assert c.name == c.name.lower() and " " not in c.name
        assert c.description
    assert isinstance(table.arrow_schema(), pa.Schema)


def test_core_columns_carry_their_nhsa_names() -> None:
    expect = {
        ("settlements", "settlement_id"): "setl_id",
        ("settlements", "visit_id"): "mdtrt_id",
        ("settlements", "person_id"): "psn_no",
        ("settlements", "facility_id"): "fixmedins_code",
        ("fee_lines", "item_code"): "med_list_codg",
        ("trace_scans", "trace_code"): "drug_trac_codg",
        ("catalogue", "item_code"): "hilist_code",
        ("persons", "sex"): "gend",
    }
    for (t, c), nhsa in expect.items():
        assert schema.table(t).column(c).nhsa == nhsa


def test_unknown_table_has_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown table 'claims'"):
        schema.table("claims")

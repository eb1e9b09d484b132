"""Table and column names written into SQL: plain names as they are (so case folding does not change), others
quoted by the dialect; the scaffold's dataset name and the label comparison the spec check shares with scoring."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

from mlops_provider.cli.scaffold import dataset_name
from mlops_provider.loop.spec import label_matches
from mlops_provider.utils.sql_names import needs_quotes, quote_column, quote_table, split_table

pytestmark = pytest.mark.unit


def test_plain_names_are_written_as_they_are():
    for name in ("events", "Events", "tx_ts", "public.events"):
        assert not needs_quotes(name)
        assert quote_table(name, postgresql.dialect()) == name


def test_names_with_spaces_quotes_or_reserved_words_are_quoted_by_the_dialect():
    assert quote_table("card events", sqlite.dialect()) == '"card events"'
    assert quote_table("card events", mysql.dialect()) == "`card events`"
    assert quote_column('say "hi"', postgresql.dialect()) == '"say ""hi"""'
    assert quote_column("order", postgresql.dialect()) == '"order"'
    assert quote_table("my schema.card events", postgresql.dialect()) == '"my schema"."card events"'
    assert needs_quotes("tx ts") and needs_quotes("order") and needs_quotes("a-b")
    assert quote_table('"Already Quoted"', postgresql.dialect()) == '"Already Quoted"'


def test_a_dotted_table_name_is_schema_and_table():
    assert split_table("public.events") == ("public", "events")
    assert split_table("events") == (None, "events")


def test_the_dataset_name_of_a_table_is_a_valid_spec_name():
    assert dataset_name("card_transactions") == "card_transactions"
    assert dataset_name("Card Events") == "card_events"
    assert dataset_name("public.events") == "public_events"
    assert dataset_name("2024 sales") == "t_2024_sales"


def test_labels_compare_as_training_compares_them():
    assert label_matches(1, 1) and label_matches("1", 1) and label_matches(1.0, True) and label_matches(True, 1)
    assert not label_matches("yes", 1) and not label_matches(0, 1)
    assert label_matches("yes", "yes") and not label_matches("Yes", "yes")

"""Object-valued templated fields: a dict (an XComArg's value) or a JSON string; anything else names the field."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.utils.templated_fields import json_object

pytestmark = pytest.mark.unit


def test_objects_come_as_dicts_or_json_and_empty_is_an_empty_object():
    assert json_object({"a": 1}, "decision") == {"a": 1}
    assert json_object('{"a": 1}', "decision") == {"a": 1}
    assert json_object("", "decision") == {} and json_object(None, "decision") == {}
    with pytest.raises(AirflowFailException, match="decision: not a JSON object"):
        json_object("{nope", "decision")
    with pytest.raises(AirflowFailException, match="detail: expected an object, got list"):
        json_object("[1]", "detail")

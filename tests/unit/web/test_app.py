"""The plugin app's Content Security Policies."""

from __future__ import annotations

import pytest

from mlops_provider.web.app import PAGE_POLICY, REPORT_POLICY, SCRIPTED_REPORT_POLICY, report_policy

pytestmark = pytest.mark.unit


def test_report_policies_sandbox_reports_and_let_only_the_drift_report_script():
    assert report_policy("drift/sales/2026-11-05/abc-try1.html") == SCRIPTED_REPORT_POLICY
    assert report_policy("drift/sales/2026-11-05/abc-try1.json") == REPORT_POLICY
    assert report_policy("gx/sales/2026-11-05/abc-try1/data-docs/index.html") == REPORT_POLICY
    assert report_policy("ledgers/m/v1/abc-try1.json") == REPORT_POLICY
    for policy in (REPORT_POLICY, SCRIPTED_REPORT_POLICY):
        assert policy.startswith("sandbox") and "allow-same-origin" not in policy and "http" not in policy
    assert "script-src" not in PAGE_POLICY and "default-src 'none'" in PAGE_POLICY


def test_a_parameter_no_record_can_have_is_a_404_naming_it():
    from fastapi import HTTPException
    from starlette.requests import Request

    from mlops_provider.web.app import MAX_PARAMETER_LENGTH, checked_parameters

    def request(rev: str, query: bytes = b"") -> Request:
        return Request({"type": "http", "path_params": {"rev": rev}, "query_string": query, "headers": []})

    checked_parameters(request("partition/sales/2026-11-01"))
    for bad, problem in (("a\x00b", "control character"), ("x" * (MAX_PARAMETER_LENGTH + 1), "longer than")):
        with pytest.raises(HTTPException) as error:
            checked_parameters(request(bad))
        assert (
            error.value.status_code == 404
            and problem in error.value.detail
            and repr(bad[:20])[:-1] in error.value.detail
        )
    with pytest.raises(HTTPException, match="model"):
        checked_parameters(request("ok", b"model=%0a"))

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

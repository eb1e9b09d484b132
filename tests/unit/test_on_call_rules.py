"""Pure rules behind the on-call fixes: equivalent types, the interval check, day windows, append-only records,
the report policies and where DVC remote secrets go."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlops_provider.evidence import attempts, first_attempt, write_record
from mlops_provider.hooks.dvc import DvcError, DvcHook
from mlops_provider.operators.great_expectations import interval_check, normalize_types
from mlops_provider.operators.training_set import day_logical_date, window_days
from mlops_provider.web.app import PAGE_POLICY, REPORT_POLICY, SCRIPTED_REPORT_POLICY, report_policy

pytestmark = pytest.mark.unit


def test_equivalent_types_are_made_plain_and_reported():
    frame = pd.DataFrame({
        "ts": pd.to_datetime(["2026-11-05 01:00", "2026-11-05 23:00"]).tz_localize("Europe/Berlin"),
        "plan": pd.Categorical(["basic", "premium"]),
        "n": [1, 2],
    })  # fmt: skip
    plain, changed = normalize_types(frame)
    assert str(plain["ts"].dtype) == "datetime64[ns]" and plain["ts"][0] == pd.Timestamp("2026-11-05 00:00")
    assert plain["plan"].dtype == object and set(changed) == {"ts", "plan"}
    assert str(frame["ts"].dtype).startswith("datetime64[ns, Europe/Berlin]")  # the caller's frame is untouched
    same, nothing = normalize_types(frame[["n"]])
    assert nothing == {} and same is not None


def test_interval_check_counts_rows_outside_the_half_open_interval():
    start, end = pd.Timestamp("2026-11-05", tz="UTC"), pd.Timestamp("2026-11-06", tz="UTC")
    frame = pd.DataFrame({"ts": pd.to_datetime(["2026-11-05 00:00", "2026-11-05 23:59", "2026-11-06 00:00",
                                                "2026-11-04 23:59", None])})  # fmt: skip
    failed = interval_check(frame, "ts", start, end)
    assert (
        failed is not None and failed["unexpected_count"] == 2 and failed["expectation"] == "rows_within_data_interval"
    )
    assert interval_check(frame.iloc[:2], "ts", start, end) is None
    missing = interval_check(frame, "event_ts", start, end)
    assert missing is not None and missing["exception"] == "column 'event_ts' is not in the data"


def test_windows_are_calendar_days_and_runs_are_found_at_midnight_utc():
    assert window_days("2026-03-02", 3) == ["2026-02-28", "2026-03-01", "2026-03-02"]
    assert day_logical_date("2026-11-05") == dt.datetime(2026, 11, 5, tzinfo=dt.UTC)


def test_records_are_append_only_by_attempt(tmp_path):
    write_record(tmp_path, "aaa-try1", {"value": 1, "recorded_at": "2026-11-05T00:00:00+00:00"})
    write_record(tmp_path, "bbb-try1", {"value": 2, "recorded_at": "2026-11-06T00:00:00+00:00"})
    write_record(tmp_path, "aaa-try1", {"value": 3, "recorded_at": "2026-11-05T00:00:00+00:00"})  # same try again
    assert [r["value"] for r in attempts(tmp_path)] == [3, 2]
    assert first_attempt(tmp_path)["attempt"] == "aaa-try1"
    assert first_attempt(tmp_path, other_than="aaa-try1")["attempt"] == "bbb-try1"
    assert first_attempt(tmp_path / "none") is None


def test_report_policies_sandbox_reports_and_let_only_the_drift_report_script():
    assert report_policy("drift/sales/2026-11-05/abc-try1.html") == SCRIPTED_REPORT_POLICY
    assert report_policy("drift/sales/2026-11-05/abc-try1.json") == REPORT_POLICY
    assert report_policy("gx/sales/2026-11-05/abc-try1/data-docs/index.html") == REPORT_POLICY
    assert report_policy("ledgers/m/v1/abc-try1.json") == REPORT_POLICY
    for policy in (REPORT_POLICY, SCRIPTED_REPORT_POLICY):
        assert policy.startswith("sandbox") and "allow-same-origin" not in policy and "http" not in policy
    assert "script-src" not in PAGE_POLICY and "default-src 'none'" in PAGE_POLICY


@pytest.mark.parametrize(
    ("url", "login_key", "password_key"),
    [("s3://b/p", "access_key_id", "secret_access_key"), ("ssh://h/p", "user", "password"),
     ("azure://c/p", "account_name", "account_key")],
)  # fmt: skip
def test_remote_credentials_are_mapped_by_scheme_and_secrets_never_public(url, login_key, password_key):
    hook = DvcHook(dvc_conn_id="x")
    hook.__dict__["_settings"] = {
        "login": "me", "password": "pw", "remote_url": url,
        "remote_options": {"endpointurl": "http://h:9", "session_token": "t"}, "remote_secret_options": {"k": "v"},
    }  # fmt: skip
    public, secret = hook._remote_config()
    assert public == {"url": url, "endpointurl": "http://h:9"}
    assert secret == {login_key: "me", password_key: "pw", "session_token": "t", "k": "v"}


def test_credentials_for_a_folder_remote_are_refused_naming_the_alternative():
    hook = DvcHook(dvc_conn_id="x")
    hook.__dict__["_settings"] = {"login": "me", "password": "pw", "remote_url": "/data/remote"}
    with pytest.raises(DvcError, match="is a local folder.*remote_secret_options"):
        hook._remote_config()

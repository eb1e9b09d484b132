"""Where the DVC hook puts a remote's options and credentials."""

from __future__ import annotations

import pytest

from mlops_provider.hooks.dvc import DvcError, DvcHook

pytestmark = pytest.mark.unit


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

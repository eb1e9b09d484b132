"""Where the DVC hook puts a remote's options and credentials."""

from __future__ import annotations

import pytest

from mlops_provider.hooks.dvc import DvcError, DvcHook, split_userinfo

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


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://deploy:p%40ss@dav.example/dvc", ("https://dav.example/dvc", "deploy", "p@ss")),
        ("http://u:p@ss@h:8080/x?y=1", ("http://h:8080/x?y=1", "u", "p@ss")),
        ("ssh://git@host/path", ("ssh://host/path", "git", None)),
        ("s3://bucket/prefix", ("s3://bucket/prefix", None, None)),
        ("/data/remote", ("/data/remote", None, None)),
    ],
)
def test_split_userinfo_takes_user_and_password_out_of_a_url(url, expected):
    assert split_userinfo(url) == expected


def test_credentials_in_the_remote_url_are_secrets_and_the_url_keeps_only_the_host():
    hook = DvcHook(dvc_conn_id="x")
    hook.__dict__["_settings"] = {"remote_url": "https://deploy:pw@h/dvc"}
    assert hook._remote_config() == ({"url": "https://h/dvc", "auth": "basic"}, {"user": "deploy", "password": "pw"})
    assert hook.remote_url == "https://h/dvc"
    hook.__dict__["_settings"] = {"remote_url": "https://deploy:pw@h/dvc", "login": "other", "password": "conn"}
    assert hook._remote_config()[1] == {"user": "other", "password": "conn"}  # the connection's fields win
    hook.__dict__["_settings"] = {"remote_url": "gs://key:secret@bucket/dvc"}
    with pytest.raises(DvcError, match=r"'gs://bucket/dvc' carries a password.*remote_secret_options") as error:
        hook._remote_config()
    assert "secret" not in str(error.value).replace("remote_secret_options", "")
    hook.__dict__["_settings"] = {"remote_url": "hdfs://user@namenode/dvc"}  # a user name alone stays
    assert hook._remote_config() == ({"url": "hdfs://user@namenode/dvc"}, {})

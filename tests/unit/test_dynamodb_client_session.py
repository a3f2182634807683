"""How the DynamoDB client is made: sessions of their own over one loader of botocore's data files, and no
TLS set-up for a plain-HTTP endpoint on this machine."""

from __future__ import annotations

import pytest

from user_migration.adapters.dynamodb import client


def test_sessions_are_new_but_share_one_loader_whose_search_paths_do_not_grow() -> None:
    first, second, third = client._session(), client._session(), client._session()
    botocore_sessions = [session._session for session in (first, second, third)]
    assert len({id(session) for session in botocore_sessions}) == 3
    loaders = [session.get_component("data_loader") for session in botocore_sessions]
    assert loaders[0] is loaders[1] is loaders[2]
    paths = loaders[0].search_paths
    assert len(paths) == len(set(paths))
    assert any(path.endswith("boto3/data") for path in paths)  # boto3's own folder, once


def test_a_data_path_of_its_own_gets_a_loader_of_its_own(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    shared = client._session()._session.get_component("data_loader")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    own = client._session()._session.get_component("data_loader")
    assert own is not shared
    assert str(tmp_path) in own.search_paths


@pytest.mark.parametrize(
    ("endpoint_url", "plain_local"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:4566", True),
        ("HTTP://LocalHost:4566", True),
        ("http://[::1]:8000", True),
        ("http://127.0.0.2:8000", True),
        ("https://127.0.0.1:8000", False),
        ("http://10.0.0.5:8000", False),
        ("http://dynamodb-local.internal:8000", False),
        ("https://dynamodb.eu-west-1.amazonaws.com", False),
        (None, False),
    ],
)
def test_only_plain_http_on_loopback_skips_the_tls_set_up(endpoint_url: str | None, plain_local: bool) -> None:
    assert client._plain_http_on_this_machine(endpoint_url) is plain_local

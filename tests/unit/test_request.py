from __future__ import annotations

import pytest

from user_migration.domain.errors import InvalidParameter
from user_migration.domain.migrate.request import BatchRequest, SingleUserRequest, plan_batch


def plan(**params: str):
    return plan_batch(params.items())


def test_defaults():
    assert plan() == BatchRequest(start_user_id=0, batch_size=100, dry_run=False)


def test_batch_parameters():
    assert plan(batch_size="50", start_user_id="1000") == BatchRequest(1000, 50, False)
    assert plan(batch_size="1000", start_user_id=str(2**63 - 1)) == BatchRequest(2**63 - 1, 1000, False)
    assert plan(batch_size="1", start_user_id="0") == BatchRequest(0, 1, False)


def test_rewrite_is_false_unless_asked_for():
    assert plan().rewrite is False
    assert plan(rewrite="true") == BatchRequest(0, 100, False, True)
    assert plan(user_id="7", rewrite="1") == SingleUserRequest(7, False, True)
    assert plan(user_id="7", rewrite="0").rewrite is False


def test_user_id_overrides_batch_mode():
    assert plan(user_id="12345") == SingleUserRequest(12345, False)
    assert plan(user_id="7", batch_size="10", start_user_id="3", dry_run="1") == SingleUserRequest(7, True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("1", True),
        ("false", False),
        ("FaLsE", False),
        ("0", False),
    ],
)
def test_dry_run_values(text, expected):
    assert plan(dry_run=text).dry_run is expected


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("batch_size", "0"),
        ("batch_size", "1001"),
        ("batch_size", "-1"),
        ("batch_size", "ten"),
        ("batch_size", "1.5"),
        ("batch_size", "1e2"),
        ("batch_size", ""),
        ("batch_size", " 5"),
        ("batch_size", "+5"),
        ("batch_size", "٣"),  # a non-ASCII digit
        ("start_user_id", "-1"),
        ("start_user_id", str(2**63)),
        ("start_user_id", "9" * 5000),
        ("user_id", "0"),
        ("user_id", str(2**63)),
        ("user_id", "abc"),
        ("dry_run", "yes"),
        ("dry_run", ""),
        ("dry_run", "2"),
        ("rewrite", "yes"),
        ("rewrite", ""),
    ],
)
def test_bad_values_name_the_parameter(parameter, value):
    with pytest.raises(InvalidParameter) as raised:
        plan(**{parameter: value})
    assert raised.value.parameter == parameter
    assert parameter in raised.value.message


def test_bad_batch_parameters_are_refused_even_with_user_id():
    with pytest.raises(InvalidParameter) as raised:
        plan(user_id="5", batch_size="0")
    assert raised.value.parameter == "batch_size"


def test_unknown_parameter_is_refused():
    with pytest.raises(InvalidParameter) as raised:
        plan(dryrun="true")
    assert raised.value.parameter == "dryrun"
    assert raised.value.message == (
        "unknown parameter 'dryrun' (expected one of batch_size, start_user_id, user_id, dry_run, rewrite)"
    )


def test_repeated_parameter_is_refused():
    with pytest.raises(InvalidParameter) as raised:
        plan_batch([("batch_size", "5"), ("batch_size", "5")])
    assert raised.value.parameter == "batch_size"
    assert "more than once" in raised.value.message


def test_typed_requests_check_their_ranges_too():
    with pytest.raises(InvalidParameter, match="batch_size"):
        BatchRequest(batch_size=0)
    with pytest.raises(InvalidParameter, match="start_user_id"):
        BatchRequest(start_user_id=-5)
    with pytest.raises(InvalidParameter, match="user_id"):
        SingleUserRequest(user_id=0)
    with pytest.raises(InvalidParameter, match="dry_run"):
        BatchRequest(dry_run="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="batch_size"):
        BatchRequest(batch_size=True)
    with pytest.raises(InvalidParameter, match="rewrite"):
        SingleUserRequest(user_id=1, rewrite="yes")  # type: ignore[arg-type]

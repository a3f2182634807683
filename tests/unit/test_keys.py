"""The key kinds: ids read from text, the id space's ends, the least id after one; plans split at
sampled ids, and the OpenAPI document by key kind (sets of string ids: test_id_ranges.py)."""

from __future__ import annotations

import uuid

import pytest

from user_migration.domain.convert.mapping import parse_mapping
from user_migration.domain.errors import InvalidParameter, MappingError
from user_migration.domain.keys import FIRST_UUID, LAST_UUID, MAX_INTEGER_ID, TEXT_END, KeyKind
from user_migration.domain.parallel.segments import SegmentPlan


def test_integer_ids_read_as_before():
    assert KeyKind.INTEGER.parse("start_user_id", "1051") == 1051
    with pytest.raises(InvalidParameter) as raised:
        KeyKind.INTEGER.parse("user_id", "0", lowest=1)
    assert raised.value.parameter == "user_id"
    assert str(raised.value) == f"user_id must be an integer between 1 and {MAX_INTEGER_ID}"


def test_a_uuid_is_read_in_any_case_and_kept_canonical():
    text = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"
    assert KeyKind.UUID.parse("user_id", text) == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert KeyKind.UUID.parse("user_id", text.replace("-", "")) == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    with pytest.raises(InvalidParameter) as raised:
        KeyKind.UUID.parse("start_user_id", "1051")
    assert raised.value.parameter == "start_user_id"
    assert "start_user_id must be a uuid" in str(raised.value)


def test_a_text_id_is_taken_as_it_is_but_never_with_nul():
    assert KeyKind.TEXT.parse("user_id", "Ωmega 1") == "Ωmega 1"
    with pytest.raises(InvalidParameter, match="user_id must be a text"):
        KeyKind.TEXT.parse("user_id", "a\x00b")


@pytest.mark.parametrize("kind", list(KeyKind))
def test_after_is_the_least_greater_id_and_before_undoes_it(kind: KeyKind):
    samples = {
        KeyKind.INTEGER: [0, 7, 1000],
        KeyKind.UUID: [FIRST_UUID, str(uuid.uuid4())],
        KeyKind.TEXT: ["", "a", "zz"],
    }
    for user_id in samples[kind]:
        following = kind.after(user_id)
        assert following is not None
        assert following > user_id  # type: ignore[operator]
        assert kind.before(following) == user_id


def test_after_the_last_id_there_is_none_and_uuids_carry():
    assert KeyKind.INTEGER.after(MAX_INTEGER_ID) is None
    assert KeyKind.UUID.after(LAST_UUID) is None
    assert KeyKind.UUID.after("00000000-0000-0000-0000-0000000000ff") == "00000000-0000-0000-0000-000000000100"
    assert KeyKind.TEXT.after(TEXT_END) is None


def test_nothing_lies_between_a_text_and_the_text_after_it():
    # PostgreSQL's text holds no NUL, so "a\x01" is the least text above "a" (byte order, COLLATE "C").
    assert sorted(["a\x01", "a", "a\x01\x01", "a\x02", "b"]) == ["a", "a\x01", "a\x01\x01", "a\x02", "b"]
    assert KeyKind.TEXT.after("a") == "a\x01"


def test_uuid_text_order_is_postgresqls_byte_order():
    ids = [uuid.uuid4() for _ in range(200)]
    assert sorted(str(value) for value in ids) == [str(value) for value in sorted(ids, key=lambda value: value.bytes)]


def test_the_mapping_reads_key_type():
    document = {"source": {"table": "auth.users", "key": "id", "key_type": "UUID"}}
    assert parse_mapping(document, "m.toml").key_kind is KeyKind.UUID
    assert parse_mapping({"source": {"table": "t"}}, "m.toml").key_kind is KeyKind.INTEGER
    with pytest.raises(MappingError, match="'serial' is not a key type"):
        parse_mapping({"source": {"table": "t", "key_type": "serial"}}, "m.toml")


def test_an_integer_keys_openapi_document_is_the_file_as_it_is():
    from importlib import resources

    from user_migration.entrypoints.http.openapi import openapi_document

    assert (
        openapi_document(KeyKind.INTEGER)
        == resources.files("user_migration.entrypoints.http").joinpath("openapi.json").read_bytes()
    )
    uuid_document = openapi_document(KeyKind.UUID).decode()
    assert '"format": "uuid"' in uuid_document


@pytest.mark.parametrize("kind", [KeyKind.UUID, KeyKind.TEXT])
def test_a_plan_from_samples_ends_each_segment_at_a_sample(kind: KeyKind):
    samples = [str(uuid.uuid4()) for _ in range(5)] if kind is KeyKind.UUID else ["b", "d\u0001", "m", "Ω"]
    plan = SegmentPlan.from_samples(samples, kind)
    assert [segment.highest for segment in plan][:-1] == sorted(samples)
    assert plan[0].lowest == kind.first
    assert plan[len(plan) - 1].highest == kind.last
    assert plan.samples() == sorted(samples)
    assert SegmentPlan.from_boundaries(plan.starts[1:], kind) == plan
    for sample in samples:
        assert plan.index_of(sample) == sorted(samples).index(sample)

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from user_migration.adapters.dynamodb.holds import stored_ids
from user_migration.adapters.dynamodb.id_ranges import decode_ids, encode_ids


def test_runs_are_merged_and_sorted():
    assert encode_ids([5, 3, 4, 1, 9, 10, 11, 4]) == "1,3..5,9..11"


def test_no_ids_is_the_empty_text():
    assert encode_ids([]) == ""
    assert decode_ids("") == set()


def test_a_page_of_consecutive_ids_costs_a_few_bytes():
    assert encode_ids(range(1_000_001, 1_002_001)) == "1000001..1002000"


def test_negative_and_huge_ids_survive():
    ids = {-(2**63), -3, -2, 0, 2**63 - 1}
    assert encode_ids(ids) == f"{-(2**63)},-3..-2,0,{2**63 - 1}"
    assert decode_ids(encode_ids(ids)) == ids


@given(st.sets(st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.integers(0, 300)))
def test_round_trip(ids):
    assert decode_ids(encode_ids(ids)) == ids


@pytest.mark.parametrize("text", ["x", "1..", "5..2", "1,,2..x"])
def test_foreign_text_is_refused(text):
    with pytest.raises(ValueError, match="not a run of user ids"):
        decode_ids(text)


# --- uuid and text ids: bytes, for a binary attribute

SAMPLE_UUIDS = [uuid.UUID(int=n * 0x0123_4567_89AB_CDEF_0FED_CBA9_8765_4321 % 2**128) for n in range(1, 1001)]


def test_uuid_ids_are_sixteen_bytes_each_in_order():
    texts = {str(each) for each in SAMPLE_UUIDS}
    encoded = encode_ids(texts)
    assert encoded == b"\x01" + b"".join(each.bytes for each in sorted(SAMPLE_UUIDS, key=lambda each: each.bytes))
    assert len(encoded) == 1 + 16 * 1000  # the JSON list of their text was 38,001 characters
    assert decode_ids(encoded) == texts


@given(st.sets(st.uuids(), min_size=1))
def test_uuid_round_trip(values):
    texts = {str(value) for value in values}
    assert decode_ids(encode_ids(texts)) == texts


def test_text_ids_that_are_not_canonical_uuids_stay_as_they_are():
    canonical = str(SAMPLE_UUIDS[0])
    for texts in (
        {canonical.upper()},
        {canonical.replace("-", "")},
        {f"{{{canonical}}}"},
        {canonical, "admin"},
    ):
        encoded = encode_ids(texts)
        assert encoded[:1] == b"\x02"
        assert decode_ids(encoded) == texts


@pytest.mark.parametrize(
    "texts",
    [
        {""},
        {"", "a"},
        {"b", "a,b", "Zoë", "[x]", '"quoted"', "1..3", "\x01", "\x01\x02", "\\", "ünï cødé 日本語 🙂"},
        {"\U0010ffff" * 16, "a\x01"},  # the text id space's end and a text's successor
    ],
)
def test_text_ids_with_any_characters_round_trip(texts):
    encoded = encode_ids(texts)
    assert isinstance(encoded, bytes)
    assert decode_ids(encoded) == texts


@given(st.sets(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")), min_size=1))
def test_text_round_trip(texts):
    encoded = encode_ids(texts)
    assert isinstance(encoded, bytes)
    assert decode_ids(encoded) == texts


def test_text_ids_are_their_utf8_joined_by_nul():
    assert encode_ids({"b", "Zoë", "a,b"}) == b"\x02Zo\xc3\xab\x00a,b\x00b"


def test_a_text_id_with_nul_is_refused():
    # PostgreSQL's text cannot hold NUL: no key can, and the separator must stay one.
    with pytest.raises(ValueError, match="NUL"):
        encode_ids({"a\x00b"})


def test_ids_of_two_kinds_are_refused():
    with pytest.raises(ValueError, match="two kinds"):
        encode_ids({1, "a"})


def test_no_string_ids_is_the_empty_text_too():
    assert encode_ids(set[str]()) == ""
    assert decode_ids("") == set()


def test_the_json_list_earlier_versions_wrote_is_still_read():
    assert decode_ids('["Zoë","[x]","a,b","b"]') == {"Zoë", "[x]", "a,b", "b"}
    canonical = str(SAMPLE_UUIDS[0])
    assert decode_ids(f'["{canonical}"]') == {canonical}
    with pytest.raises(ValueError, match="not a list of user ids"):
        decode_ids("[1, 2]")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01", b"\x01" + bytes(15), b"\x01" + bytes(17), b"\x03abc", b"a,b", b"\x02\xff\xfe", b"1..3"],
)
def test_foreign_bytes_are_refused(data):
    with pytest.raises(ValueError, match="not a set of user ids"):
        decode_ids(data)


def test_a_state_item_reads_every_form():
    texts = {"b", "a"}
    assert stored_ids({"B": encode_ids(texts)}) == texts
    assert stored_ids({"S": '["a","b"]'}) == texts
    assert stored_ids({"S": "1..3"}) == {1, 2, 3}
    assert stored_ids({"L": [{"N": "4"}]}) == {4}
    assert stored_ids(None) == set()

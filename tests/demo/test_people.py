import random
import re
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypinyin import lazy_pinyin

from medalliance.demo.people import (
    FEMALE_GIVEN_CHARS,
    HOMOPHONES,
    MALE_GIVEN_CHARS,
    SURNAMES,
    Resident,
    make_resident,
)
from medalliance.patients.identity import check_consistency, parse_resident_id

TODAY = date(2025, 6, 1)
TOWNSHIP: dict[str, Any] = {
    "township_name": "青石镇",
    "township_division_code": "511025101000",
    "village_names": ["石桥", "红星", "柳树湾村"],
    "county_name": "安岳县",
    "today": TODAY,
}
PHONE = re.compile(r"1(3[0-9]|5[0-35-9]|8[0-9]|9[0-35-9])[0-9]{8}")
ADDRESS = re.compile(r"安岳县青石镇(石桥村|红星村|柳树湾村)([1-9]|1[0-2])组[1-9][0-9]?号")


def _residents(seed: int, count: int) -> list[Resident]:
    rng = random.Random(seed)
    return [make_resident(rng, **TOWNSHIP) for _ in range(count)]


SAMPLE = _residents(seed=2025, count=3000)


class TestDeterminism:
    def test_same_seed_gives_same_residents(self) -> None:
        assert _residents(seed=42, count=200) == _residents(seed=42, count=200)

    def test_different_seeds_give_different_residents(self) -> None:
        assert _residents(seed=1, count=20) != _residents(seed=2, count=20)


class TestIdNumbers:
    def test_every_id_number_parses_and_matches_sex_and_birth_date(self) -> None:
        for resident in SAMPLE:
            rid = parse_resident_id(resident.id_number, today=TODAY)
            check_consistency(rid, sex=resident.sex, birth_date=resident.birth_date)

    def test_id_number_carries_the_county_code(self) -> None:
        assert {r.id_number[:6] for r in SAMPLE} == {"511025"}

    def test_resident_keeps_the_township_division_code(self) -> None:
        assert {r.division_code for r in SAMPLE} == {"511025101000"}

    def test_issued_set_redraws_a_colliding_number(self) -> None:
        issued: set[str] = set()
        first = make_resident(random.Random(9), issued=issued, **TOWNSHIP)
        again = make_resident(random.Random(9), issued=issued, **TOWNSHIP)
        assert again.id_number != first.id_number
        assert replace(again, id_number=first.id_number) == first
        assert issued == {first.id_number, again.id_number}

    def test_issued_set_keeps_a_large_cohort_unique(self) -> None:
        rng = random.Random(3)
        issued: set[str] = set()
        numbers = [make_resident(rng, issued=issued, **TOWNSHIP).id_number for _ in range(5000)]
        assert len(set(numbers)) == len(numbers)

    @settings(max_examples=50, deadline=None)
    @given(seed=st.integers(min_value=0, max_value=2**64))
    def test_any_seed_gives_valid_consistent_id_numbers(self, seed: int) -> None:
        for resident in _residents(seed, count=20):
            rid = parse_resident_id(resident.id_number, today=TODAY)
            check_consistency(rid, sex=resident.sex, birth_date=resident.birth_date)


class TestNames:
    def test_surname_comes_from_the_surname_list(self) -> None:
        assert all(r.name[0] in SURNAMES for r in SAMPLE)

    def test_given_name_has_one_or_two_characters_suited_to_the_sex(self) -> None:
        for resident in SAMPLE:
            given_name = resident.name[1:]
            pool = MALE_GIVEN_CHARS if resident.sex == "male" else FEMALE_GIVEN_CHARS
            assert 1 <= len(given_name) <= 2
            assert set(given_name) <= set(pool)

    def test_both_name_lengths_occur(self) -> None:
        assert {len(r.name) for r in SAMPLE} == {2, 3}

    def test_common_surnames_dominate(self) -> None:
        top_three = sum(r.name[0] in "王李张" for r in SAMPLE)
        assert top_three > len(SAMPLE) * 0.15

    def test_pinyin_is_surname_space_given_name(self) -> None:
        # 曾 and 覃 read differently as surnames; see the next test.
        resident = next(r for r in SAMPLE if len(r.name) == 3 and r.name[0] not in "曾覃")
        surname, given_name = resident.pinyin.split(" ")
        assert surname == lazy_pinyin(resident.name[0])[0]
        assert given_name == "".join(lazy_pinyin(resident.name[1:]))

    def test_pinyin_is_lower_case_ascii(self) -> None:
        assert all(re.fullmatch(r"[a-z]+ [a-z]+", r.pinyin) for r in SAMPLE)

    def test_surname_zeng_uses_its_surname_reading(self) -> None:
        zengs = [r for r in SAMPLE if r.name[0] == "曾"]
        assert zengs
        assert all(r.pinyin.startswith("zeng ") for r in zengs)


class TestSexAndAge:
    def test_sex_is_male_or_female_and_both_occur(self) -> None:
        assert {r.sex for r in SAMPLE} == {"male", "female"}

    def test_ages_range_from_0_to_95(self) -> None:
        ages = [(TODAY - r.birth_date).days / 365.2425 for r in SAMPLE]
        assert min(ages) >= 0
        assert max(ages) < 96
        assert min(ages) < 2
        assert max(ages) > 90

    def test_elderly_outnumber_young_adults_as_in_a_rural_county(self) -> None:
        ages = [(TODAY - r.birth_date).days // 365 for r in SAMPLE]
        elderly = sum(age >= 60 for age in ages)
        young_adults = sum(15 <= age < 30 for age in ages)
        assert elderly > 2 * young_adults


class TestContactDetails:
    def test_phone_is_eleven_digits_with_a_mobile_prefix(self) -> None:
        assert all(PHONE.fullmatch(r.phone) for r in SAMPLE)

    def test_address_names_county_township_village_group_and_number(self) -> None:
        assert all(ADDRESS.fullmatch(r.address) for r in SAMPLE)

    def test_every_village_is_used(self) -> None:
        villages = set()
        for resident in SAMPLE:
            match = ADDRESS.fullmatch(resident.address)
            assert match
            villages.add(match.group(1))
        assert villages == {"石桥村", "红星村", "柳树湾村"}

    def test_empty_village_list_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="village_names"):
            make_resident(random.Random(0), **{**TOWNSHIP, "village_names": []})


class TestNameConstants:
    def test_surname_list_holds_one_hundred_distinct_single_characters(self) -> None:
        assert len(SURNAMES) == 100
        assert all(len(surname) == 1 for surname in SURNAMES)

    def test_surnames_are_listed_roughly_by_frequency(self) -> None:
        assert list(SURNAMES)[:3] == ["王", "李", "张"]

    def test_given_name_pools_hold_single_distinct_characters(self) -> None:
        for pool in (MALE_GIVEN_CHARS, FEMALE_GIVEN_CHARS):
            assert len(set(pool)) == len(pool)
            assert all(len(char) == 1 for char in pool)

    def test_homophones_cover_at_least_forty_given_name_characters(self) -> None:
        assert len(HOMOPHONES) >= 40
        assert set(HOMOPHONES) <= set(MALE_GIVEN_CHARS) | set(FEMALE_GIVEN_CHARS)

    @pytest.mark.parametrize("char", sorted(HOMOPHONES))
    def test_homophones_share_the_toneless_pinyin_and_differ(self, char: str) -> None:
        alternatives = HOMOPHONES[char]
        assert alternatives
        assert char not in alternatives
        assert len(set(alternatives)) == len(alternatives)
        assert {lazy_pinyin(alt)[0] for alt in alternatives} == {lazy_pinyin(char)[0]}

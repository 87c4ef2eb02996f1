"""Every rule of the probabilistic matcher, on plain records (no database)."""

from __future__ import annotations

from datetime import date
from math import log2

import pytest

from medalliance.config import get_settings
from medalliance.patients.matching import (
    DIFFERENT_ID_NUMBERS,
    M_FLOOR,
    NO_BIRTH_DATE,
    POSSIBLE_TWINS,
    PROVISIONAL_NAME,
    WEIGHTS,
    Demographics,
    M,
    U,
    address_level,
    birth_date_variants,
    compare,
    date_level,
    name_level,
    phone_level,
    shares_a_name_part,
)
from medalliance.patients.names import is_provisional, to_pinyin

BASE = Demographics(
    name="王晓明",
    sex="male",
    birth_date=date(1968, 3, 7),
    phone="13812345678",
    address="清河县城关镇东村3组12号",
)


def _with(**changes: object) -> Demographics:
    fields = {
        "name": BASE.name,
        "sex": BASE.sex,
        "birth_date": BASE.birth_date,
        "phone": BASE.phone,
        "address": BASE.address,
        "id_number": BASE.id_number,
    }
    fields.update(changes)
    return Demographics(**fields)  # type: ignore[arg-type]


class TestNames:
    def test_same_characters_are_exact(self) -> None:
        assert name_level(BASE, _with()) == "exact"

    def test_homophone_typed_with_pinyin_ime_is_recognised(self) -> None:
        assert name_level(BASE, _with(name="王小明")) == "homophone"

    def test_pinyin_written_name_matches_characters_as_homophone(self) -> None:
        assert name_level(BASE, _with(name="Wang Xiaoming")) == "homophone"

    def test_one_syllable_off_is_similar(self) -> None:
        assert name_level(BASE, _with(name="王晓鸣")) == "homophone"
        assert name_level(BASE, _with(name="王晓敏")) == "similar"

    def test_given_name_written_first_is_reordered(self) -> None:
        assert name_level(BASE, _with(name="Xiaoming Wang")) == "reordered"
        assert name_level(_with(name="Wang Xiaoming"), _with(name="Xiaoming Wang")) == "reordered"
        assert name_level(_with(name="Wang"), _with(name="Wang")) == "exact"

    def test_other_name_is_different(self) -> None:
        assert name_level(BASE, _with(name="李建国")) == "different"

    def test_surname_reading_for_names(self) -> None:
        assert to_pinyin("曾国藩") == "zeng guofan"
        assert to_pinyin("欧阳娜娜") == "ouyang nana"


class TestBlockingFilter:
    def test_same_birth_date_block_keeps_names_sharing_a_part(self) -> None:
        assert shares_a_name_part("wang xiaoming", "li xiaoming")  # surname mistyped
        assert shares_a_name_part("wang xiaoming", "xiaoming wang")  # given name first
        assert shares_a_name_part("wang xiaoming", "wang jianguo")
        assert not shares_a_name_part("wang xiaoming", "li jianguo")


class TestBirthDates:
    @pytest.mark.parametrize(
        ("other", "level"),
        [
            (date(1968, 3, 7), "exact"),
            (date(1968, 7, 3), "swapped"),
            (date(1986, 3, 7), "transposed"),  # year digits exchanged
            (date(1968, 3, 8), "transposed"),  # one digit off
            (date(1968, 11, 20), "same_year"),
            (date(1978, 3, 9), "two_digits"),  # two digits wrong, another year
            (date(1975, 9, 21), "different"),
            (None, None),
        ],
    )
    def test_level(self, other: date | None, level: str | None) -> None:
        assert date_level(BASE.birth_date, other) == level

    def test_variants_cover_swaps_and_typos_but_not_impossible_dates(self) -> None:
        variants = birth_date_variants(
            date(1968, 3, 7), earliest=date(1900, 1, 1), latest=date(2026, 1, 1)
        )
        assert date(1968, 7, 3) in variants
        assert date(1986, 3, 7) in variants
        assert date(1968, 3, 8) in variants
        assert all(date(1900, 1, 1) <= v <= date(2026, 1, 1) for v in variants)


class TestPhoneAddressSexId:
    def test_phone_levels(self) -> None:
        assert phone_level("13812345678", "138 1234 5678") == "exact"
        assert phone_level("13812345678", "13812345679") == "one_digit"
        assert phone_level("13812345678", "13812345687") == "one_digit"
        assert phone_level("13812345678", "15900001111") == "different"
        assert phone_level(None, "15900001111") is None

    def test_address_levels(self) -> None:
        assert address_level(BASE.address, "清河县城关镇东村3组12号") == "exact"
        assert address_level(BASE.address, "清河县城关镇东村3组") == "similar"
        assert address_level(BASE.address, "县城北街18号") == "different"
        assert address_level(BASE.address, "") is None

    def test_contradicting_sex_weighs_heavily_against(self) -> None:
        result = compare(BASE, _with(sex="female"))
        sex = next(f for f in result.fields if f.field == "sex")
        assert sex.weight == WEIGHTS["sex"]["different"] < -5

    def test_different_resident_ids_weigh_against_and_missing_ones_say_nothing(self) -> None:
        a = compare(_with(id_number="110101196803070011"), _with(id_number="110101196803070038"))
        assert a.as_dict()["id_number"] == "different"
        b = compare(_with(id_number="110101196803070011"), _with())
        assert "id_number" not in b.as_dict()


class TestScores:
    def test_identical_records_are_certain(self) -> None:
        assert compare(BASE, _with()).probability > 0.9999

    def test_homophone_with_new_phone_still_links(self) -> None:
        assert compare(BASE, _with(name="王小明", phone="15900001111")).probability > 0.9999

    def test_moved_person_with_new_phone_and_homophone_is_only_probable(self) -> None:
        p = compare(BASE, _with(name="王小明", phone="15900001111", address="县城北街18号"))
        assert 0.5 <= p.probability < 0.9999

    def test_namesake_born_another_year_is_unlikely(self) -> None:
        other = _with(birth_date=date(1975, 9, 21), phone="15900001111", address="县城北街18号")
        assert compare(BASE, other).probability < 0.01

    def test_missing_field_weighs_nothing(self) -> None:
        fewer = compare(BASE, _with(phone=None))
        assert "phone" not in fewer.as_dict()


class TestWeights:
    def test_a_homophone_never_says_more_than_the_same_characters(self) -> None:
        assert WEIGHTS["name"]["homophone"] <= WEIGHTS["name"]["exact"]

    def test_every_weight_is_log2_of_m_over_u(self) -> None:
        assert set(M) == set(U) == set(WEIGHTS)
        for f, levels in U.items():
            assert list(M[f]) == list(levels), f
            for level, u in levels.items():
                assert WEIGHTS[f][level] == round(log2(M[f][level] / u), 2)

    def test_m_probabilities_are_distributions_and_never_zero(self) -> None:
        for f, levels in M.items():
            assert min(levels.values()) >= M_FLOOR, f
            assert sum(levels.values()) == pytest.approx(1.0, abs=0.01), f

    def test_agreement_supports_and_disagreement_opposes(self) -> None:
        for f, levels in WEIGHTS.items():
            assert levels[next(iter(levels))] > 0 > levels["different"], f


class TestShippedThreshold:
    """What the shipped link threshold links on its own, and what it leaves for review."""

    def test_moved_and_new_phone_but_same_name_and_birth_date_links(self) -> None:
        moved = _with(phone="15900001111", address="县城北街18号")
        assert compare(BASE, moved).probability >= get_settings().mpi_link_threshold

    def test_homophone_with_a_wrong_birth_digit_moved_and_new_phone_goes_to_review(
        self,
    ) -> None:
        p = compare(
            BASE,
            _with(
                name="王小明",
                birth_date=date(1968, 3, 8),
                phone="15900001111",
                address="县城北街18号",
            ),
        )
        settings = get_settings()
        assert settings.mpi_review_threshold <= p.probability < settings.mpi_link_threshold

    def test_twins_sharing_surname_birth_date_home_and_phone_are_held_for_review(self) -> None:
        threshold = get_settings().mpi_link_threshold
        for sibling in ("王晓东", "王晓敏", "王立新"):  # one character off, or none in common
            result = compare(BASE, _with(name=sibling))
            assert result.probability >= threshold  # the score alone would link them
            assert result.hold == POSSIBLE_TWINS
            assert not result.links_automatically(threshold)

    def test_two_unidentified_patients_of_one_sex_and_estimated_age_are_not_linked(
        self,
    ) -> None:
        threshold = get_settings().mpi_link_threshold
        pairs = [("无名氏", "无名氏"), ("无名氏1", "无名氏2"), ("未知", "无名氏")]
        pairs.append(("无名男", "无名男"))
        for first, second in pairs:
            unknown = Demographics(name=first, sex="male", birth_date=date(1980, 1, 1))
            result = compare(unknown, _with(name=second, phone=None, address="", id_number=None))
            assert "name" not in result.as_dict()  # the placeholder weighs nothing
            assert result.hold == PROVISIONAL_NAME
            assert not result.links_automatically(threshold)

    def test_newborn_twins_named_after_the_mother_are_held_for_review(self) -> None:
        threshold = get_settings().mpi_link_threshold
        twin = _with(name="王芳之子", id_number=None)  # the mother's phone and address
        result = compare(twin, _with(name="王芳之子", id_number=None))
        assert result.probability >= threshold  # the score alone would link them
        assert result.hold == PROVISIONAL_NAME
        assert not result.links_automatically(threshold)

    @pytest.mark.parametrize("sex", ["unknown", "other"])
    def test_an_unknown_or_other_sex_is_compared_as_missing(self, sex: str) -> None:
        """Not known yet says nothing against a record that has it."""
        assert compare(_with(sex=sex), BASE).as_dict().get("sex") is None
        assert compare(_with(sex="female"), BASE).as_dict()["sex"] == "different"

    def test_a_record_without_birth_date_is_held_for_review(self) -> None:
        """Same name, phone and address, no birth date: a father and son sharing the
        family's mobile would link on these alone."""
        threshold = get_settings().mpi_link_threshold
        result = compare(_with(birth_date=None, id_number=None), _with(id_number=None))
        assert result.probability >= threshold  # the score alone would link them
        assert result.hold == NO_BIRTH_DATE
        assert not result.links_automatically(threshold)
        number = "130125196803071234"
        same_id = compare(_with(birth_date=None, id_number=number), _with(id_number=number))
        assert same_id.links_automatically(threshold)

    def test_the_same_resident_id_number_links_a_provisional_name(self) -> None:
        number = "130125196803071234"
        identified = _with(id_number=number)  # identified later by the ID card
        found = compare(_with(name="无名氏", id_number=number), identified)
        assert found.hold is None

    def test_only_placeholders_count_as_provisional_names(self) -> None:
        placeholders = (
            *("无名氏", "无名氏 甲", "无名男", "无名氏(女)", "急诊无名氏", "未知男性", "UNKNOWN"),
            *("王芳之女", "李娜男婴", "王芳之子（大）", "王芳大宝", "王芳双胎1"),
        )
        assert [n for n in placeholders if not is_provisional(n)] == []
        names = ("王晓明", "吴明", "婴宁", "刘婴", "李淑子", "王大宝", "李无名", "John Smith")
        assert [n for n in names if is_provisional(n)] == []

    def test_a_twin_whose_birth_date_a_clerk_mistyped_is_held_too(self) -> None:
        result = compare(BASE, _with(name="王晓东", birth_date=date(1968, 7, 3)))
        assert result.hold == POSSIBLE_TWINS

    def test_a_homophone_or_a_reordered_name_is_no_twin(self) -> None:
        for same_person in ("王小明", "晓明王"):
            result = compare(BASE, _with(name=same_person))
            assert result.hold is None, same_person

    def test_a_missing_given_name_or_a_typo_in_letters_is_no_twin(self) -> None:
        surname_only = Demographics(name="王", pinyin="wang", birth_date=BASE.birth_date)
        assert compare(BASE, surname_only).hold is None
        a = Demographics(name="lutz connor", pinyin="lutz connor", birth_date=BASE.birth_date)
        b = Demographics(name="lutz cononr", pinyin="lutz cononr", birth_date=BASE.birth_date)
        assert compare(a, b).as_dict()["name"] == "similar"
        assert compare(a, b).hold is None

    def test_another_surname_is_no_twin(self) -> None:
        assert compare(BASE, _with(name="李晓东")).hold is None

    def test_two_different_resident_id_numbers_are_never_linked_automatically(self) -> None:
        a = _with(id_number="110101196803070011")
        b = _with(id_number="110101196803070038")
        result = compare(a, b)
        assert result.hold == DIFFERENT_ID_NUMBERS
        assert not result.links_automatically(get_settings().mpi_link_threshold)

    def test_namesake_born_on_a_close_date_elsewhere_is_not_linked(self) -> None:
        other = _with(birth_date=date(1968, 3, 8), phone="15900001111", address="县城北街18号")
        assert compare(BASE, other).probability < get_settings().mpi_link_threshold

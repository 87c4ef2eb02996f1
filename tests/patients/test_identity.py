import random
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.patients.identity import (
    ResidentId,
    ResidentIdError,
    Sex,
    check_consistency,
    check_digit,
    make_resident_id,
    parse_resident_id,
    sequence_for_sex,
)

TODAY = date(2025, 6, 1)
# The example number published with GB 11643.
PUBLISHED = "11010519491231002X"


def _error(raw: str, *, today: date = TODAY) -> ResidentIdError:
    with pytest.raises(ResidentIdError) as caught:
        parse_resident_id(raw, today=today)
    return caught.value


class TestCheckDigit:
    def test_published_example_has_check_character_x(self) -> None:
        assert check_digit(PUBLISHED[:17]) == "X"

    @pytest.mark.parametrize(
        ("first17", "expected"),
        [
            ("0" * 17, "1"),  # sum 0 indexes "1"
            ("1" + "0" * 16, "5"),  # weight 7: 7 mod 11 indexes "5"
            ("0" * 16 + "1", "X"),  # weight 2: 2 mod 11 indexes "X"
            ("0" * 15 + "30", "0"),  # 3 x weight 4 = 12: 12 mod 11 = 1 indexes "0"
        ],
    )
    def test_weighted_sum_mod_11_indexes_the_check_table(self, first17: str, expected: str) -> None:
        assert check_digit(first17) == expected

    def test_rejects_anything_but_seventeen_digits(self) -> None:
        with pytest.raises(ValueError, match="17 ASCII digits"):
            check_digit("1101051949123100")


class TestParseValidNumbers:
    def test_published_example_decodes_division_birth_date_and_sex(self) -> None:
        assert parse_resident_id(PUBLISHED, today=TODAY) == ResidentId(
            number=PUBLISHED,
            division_code="110105",
            birth_date=date(1949, 12, 31),
            sex="female",
        )

    def test_odd_sequence_is_male(self) -> None:
        assert parse_resident_id("110105195001010012", today=TODAY).sex == "male"

    def test_lower_case_x_is_upper_cased(self) -> None:
        assert parse_resident_id("11010519491231002x", today=TODAY).number == PUBLISHED

    def test_surrounding_and_inner_whitespace_is_dropped(self) -> None:
        raw = "  110105 19491231 002X\n"
        assert parse_resident_id(raw, today=TODAY).number == PUBLISHED

    def test_full_width_characters_are_folded(self) -> None:
        assert (
            parse_resident_id("１１０１０５１９４９１２３１００２Ｘ", today=TODAY).number
            == PUBLISHED
        )

    def test_born_today_is_accepted(self) -> None:
        number = make_resident_id("110105", TODAY, 1)
        assert parse_resident_id(number, today=TODAY).birth_date == TODAY

    def test_today_defaults_to_the_clock(self) -> None:
        assert parse_resident_id(PUBLISHED).birth_date == date(1949, 12, 31)


class TestParseLegacyNumbers:
    def test_fifteen_digits_are_upgraded_with_century_and_check_character(self) -> None:
        assert parse_resident_id("110105491231002", today=TODAY).number == PUBLISHED

    def test_upgraded_number_decodes_like_the_eighteen_digit_one(self) -> None:
        legacy = parse_resident_id("110105491231002", today=TODAY)
        assert legacy == parse_resident_id(PUBLISHED, today=TODAY)

    def test_legacy_number_may_not_end_in_x(self) -> None:
        assert _error("11010549123100X").reason == "characters"


class TestParseRejectsLength:
    @pytest.mark.parametrize("raw", ["", "1101051949123100", "11010519491231002XX", "1" * 16])
    def test_length_other_than_15_or_18_is_rejected(self, raw: str) -> None:
        error = _error(raw)
        assert error.reason == "length"
        assert f"got {len(raw)}" in error.message


class TestParseRejectsCharacters:
    def test_letter_inside_the_number_is_rejected_with_its_position(self) -> None:
        error = _error("1101051949A231002X")
        assert error.reason == "characters"
        assert "'A' at position 11" in error.message

    def test_x_before_the_last_place_is_rejected(self) -> None:
        assert _error("X10105194912310021").reason == "characters"

    def test_other_check_letter_is_rejected(self) -> None:
        assert _error("11010519491231002Y").reason == "characters"

    def test_hyphens_are_rejected(self) -> None:
        assert _error("110105-19491231-2X").reason == "characters"


class TestParseRejectsCheckDigit:
    def test_wrong_check_character_names_the_expected_one(self) -> None:
        error = _error("110105194912310021")
        assert error.reason == "check-digit"
        assert "require 'X'" in error.message

    def test_single_digit_typo_is_caught(self) -> None:
        assert _error("11010519491231003X").reason == "check-digit"

    def test_error_is_a_value_error(self) -> None:
        assert isinstance(_error("110105194912310021"), ValueError)


class TestParseRejectsBirthDate:
    def test_february_thirtieth_is_impossible(self) -> None:
        error = _error("110105199902300015")
        assert error.reason == "birth-date"
        assert "1999-02-30" in error.message

    def test_thirteenth_month_is_impossible(self) -> None:
        assert _error("110105190013010017").reason == "birth-date"

    def test_year_zero_is_impossible(self) -> None:
        assert _error("11010500000101001X").reason == "birth-date"

    def test_impossible_legacy_date_is_rejected(self) -> None:
        assert _error("110105990230001").reason == "birth-date"

    def test_birth_date_after_today_is_rejected(self) -> None:
        error = _error("11010520300101001X")
        assert error.reason == "future-birth-date"
        assert "2030-01-01" in error.message
        assert "2025-06-01" in error.message


class TestMakeResidentId:
    def test_rebuilds_the_published_example(self) -> None:
        assert make_resident_id("110105", date(1949, 12, 31), 2) == PUBLISHED

    def test_pads_small_sequences_to_three_digits(self) -> None:
        assert make_resident_id("110105", date(1949, 12, 31), 2)[14:17] == "002"

    @pytest.mark.parametrize(("sequence", "sex"), [(1, "male"), (998, "female"), (0, "female")])
    def test_sequence_parity_decides_sex(self, sequence: int, sex: str) -> None:
        number = make_resident_id("440304", date(1990, 3, 7), sequence)
        assert parse_resident_id(number, today=TODAY).sex == sex

    @pytest.mark.parametrize("sequence", [-1, 1000])
    def test_sequence_outside_0_to_999_is_rejected(self, sequence: int) -> None:
        with pytest.raises(ValueError, match=r"0\.\.999"):
            make_resident_id("110105", date(1990, 1, 1), sequence)

    @pytest.mark.parametrize("division", ["11010", "1101055", "11010a"])
    def test_division_code_must_be_six_digits(self, division: str) -> None:
        with pytest.raises(ValueError, match="6 ASCII digits"):
            make_resident_id(division, date(1990, 1, 1), 1)

    @given(
        division=st.from_regex(r"[1-8][0-9]{5}", fullmatch=True),
        born=st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
        sequence=st.integers(min_value=0, max_value=999),
    )
    def test_every_generated_number_parses_back(
        self, division: str, born: date, sequence: int
    ) -> None:
        rid = parse_resident_id(make_resident_id(division, born, sequence), today=TODAY)
        assert (rid.division_code, rid.birth_date) == (division, born)
        assert rid.sex == ("male" if sequence % 2 else "female")


class TestSequenceForSex:
    @pytest.mark.parametrize(("sex", "parity"), [("male", 1), ("female", 0)])
    def test_draws_only_sequences_of_the_right_parity(self, sex: Sex, parity: int) -> None:
        rng = random.Random(7)
        draws = [sequence_for_sex(rng, sex) for _ in range(500)]
        assert {d % 2 for d in draws} == {parity}
        assert all(1 <= d <= 999 for d in draws)


class TestCheckConsistency:
    RID = parse_resident_id(PUBLISHED, today=TODAY)

    def test_matching_sex_and_birth_date_pass(self) -> None:
        check_consistency(self.RID, sex="female", birth_date=date(1949, 12, 31))

    def test_missing_values_are_not_checked(self) -> None:
        check_consistency(self.RID, sex=None, birth_date=None)

    @pytest.mark.parametrize("sex", ["F", "女", "2", " Female "])
    def test_sex_aliases_are_understood(self, sex: str) -> None:
        check_consistency(self.RID, sex=sex, birth_date=None)

    @pytest.mark.parametrize("sex", ["unknown", "other", "0", "9", "未知", ""])
    def test_unknown_sex_cannot_contradict(self, sex: str) -> None:
        check_consistency(self.RID, sex=sex, birth_date=None)

    @pytest.mark.parametrize("sex", ["male", "M", "男", "1"])
    def test_contradicting_sex_is_rejected(self, sex: str) -> None:
        with pytest.raises(ResidentIdError, match="encodes female") as caught:
            check_consistency(self.RID, sex=sex, birth_date=None)
        assert caught.value.reason == "sex-mismatch"

    def test_contradicting_birth_date_is_rejected(self) -> None:
        with pytest.raises(ResidentIdError, match="1949-12-31") as caught:
            check_consistency(self.RID, sex="female", birth_date=date(1949, 12, 30))
        assert caught.value.reason == "birth-date-mismatch"

    def test_unrecognised_sex_is_a_caller_error(self) -> None:
        with pytest.raises(ValueError, match="unrecognised sex") as caught:
            check_consistency(self.RID, sex="yes", birth_date=None)
        assert not isinstance(caught.value, ResidentIdError)

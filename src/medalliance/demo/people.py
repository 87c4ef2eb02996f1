"""Synthetic rural residents: names, pinyin, sex, birth date, phone, address, ID number.

Deterministic for a given `random.Random` (same seed, same residents) and cheap enough to
generate a million residents for benchmarks: weights are precomputed, pinyin is cached.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from itertools import accumulate
from typing import Final

from pypinyin import lazy_pinyin

from medalliance.patients.identity import Sex, make_resident_id, sequence_for_sex

# The 100 commonest surnames with rough shares in per mille (national household register).
# fmt: off
SURNAMES: Final[dict[str, float]] = {
    "王": 71, "李": 70, "张": 64, "刘": 54, "陈": 46, "杨": 32, "黄": 24, "赵": 23, "吴": 20,
    "周": 19, "徐": 17, "孙": 15, "马": 15, "朱": 14, "胡": 13, "郭": 12, "何": 12, "林": 11,
    "罗": 11, "高": 12, "郑": 10, "梁": 9.5, "谢": 9, "宋": 8, "唐": 8, "许": 7.5, "韩": 7.5,
    "冯": 7, "邓": 7, "曹": 7, "彭": 6.5, "曾": 6.3, "肖": 6, "田": 5.8, "董": 5.5, "袁": 5.3,
    "潘": 5.1, "于": 5, "蒋": 5, "蔡": 4.8, "余": 4.7, "杜": 4.6, "叶": 4.5, "程": 4.4,
    "苏": 4.2, "魏": 4.1, "吕": 4, "丁": 3.9, "任": 3.8, "沈": 3.7, "姚": 3.6, "卢": 3.5,
    "姜": 3.4, "崔": 3.3, "钟": 3.2, "谭": 3.1, "陆": 3, "汪": 2.9, "范": 2.8, "金": 2.8,
    "石": 2.7, "廖": 2.6, "贾": 2.5, "夏": 2.4, "韦": 2.4, "付": 2.3, "方": 2.3, "白": 2.2,
    "邹": 2.2, "孟": 2.1, "熊": 2.1, "秦": 2, "邱": 2, "江": 2, "尹": 1.9, "薛": 1.8,
    "闫": 1.8, "段": 1.7, "雷": 1.7, "侯": 1.6, "龙": 1.6, "史": 1.6, "陶": 1.5, "黎": 1.5,
    "贺": 1.5, "顾": 1.4, "毛": 1.4, "郝": 1.4, "龚": 1.3, "邵": 1.3, "万": 1.3, "钱": 1.2,
    "严": 1.2, "覃": 1.2, "武": 1.2, "戴": 1.1, "莫": 1.1, "孔": 1, "向": 1, "汤": 1,
}
# fmt: on

# Given-name characters by sex and generation: 建国/秀英 for the elderly, 子轩/梓涵 for children.
_MALE_TRADITIONAL: Final = "国建华明军平强林文志德福荣海春生成学忠山贵富兴宝清祥永树金义"
_MALE_MODERN: Final = (
    "伟磊勇杰涛斌超辉鹏飞鑫波宇浩凯健俊帆帅旭宁龙峰亮东晨轩子睿博昊然阳泽豪航铭天嘉逸诚毅"
)
_FEMALE_TRADITIONAL: Final = "秀英兰芳桂珍凤玉淑华梅琴云荣霞红莲菊翠娥香春花萍丽素美平"
_FEMALE_MODERN: Final = (
    "丽娜敏静艳娟婷慧琳燕颖洁倩晶莉欣怡佳雨梦涵悦雪丹玲萱可诗思语紫馨琪彤瑶妍月若依子"
)

# (traditional, modern) per sex, indexed by "is this name modern".
_GIVEN_POOLS: Final[dict[Sex, tuple[str, str]]] = {
    "male": (_MALE_TRADITIONAL, _MALE_MODERN),
    "female": (_FEMALE_TRADITIONAL, _FEMALE_MODERN),
}
MALE_GIVEN_CHARS: Final[tuple[str, ...]] = tuple(dict.fromkeys(_MALE_TRADITIONAL + _MALE_MODERN))
FEMALE_GIVEN_CHARS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(_FEMALE_TRADITIONAL + _FEMALE_MODERN)
)

# Same toneless pinyin, so a clerk typing with a pinyin IME picks the wrong one: the typos
# the patient index must still match.
HOMOPHONES: Final[dict[str, list[str]]] = {
    "明": ["鸣", "铭", "名"], "华": ["化", "桦", "骅"], "伟": ["炜", "玮", "维"],
    "丽": ["莉", "俐", "力"], "芳": ["方", "坊", "舫"], "军": ["君", "钧", "均"],
    "静": ["靖", "婧", "敬"], "敏": ["民", "珉", "闽"], "强": ["蔷", "锵"],
    "勇": ["永", "涌", "咏"], "杰": ["洁", "捷", "婕"], "涛": ["韬", "滔", "桃"],
    "斌": ["彬", "滨", "宾"], "超": ["潮", "晁"], "辉": ["晖", "徽", "惠"],
    "鹏": ["朋", "彭", "蓬"], "飞": ["菲", "非", "霏"], "波": ["博", "勃", "伯"],
    "宇": ["雨", "羽", "禹"], "浩": ["昊", "皓", "灏"], "凯": ["楷", "恺", "铠"],
    "健": ["建", "剑", "键"], "俊": ["骏", "峻", "君"], "帆": ["凡", "繁"],
    "林": ["琳", "霖", "麟"], "国": ["果", "帼"], "志": ["智", "治", "致"],
    "文": ["雯", "闻", "汶"], "峰": ["锋", "丰", "枫"], "东": ["冬", "栋"],
    "磊": ["蕾", "垒"], "亮": ["量", "谅"], "鑫": ["新", "欣", "馨"],
    "晨": ["辰", "臣", "琛"], "轩": ["萱", "宣"], "睿": ["锐", "瑞"],
    "娜": ["纳", "那"], "艳": ["燕", "彦", "雁"], "娟": ["鹃", "涓"], "霞": ["侠", "夏"],
    "秀": ["绣", "琇"], "玲": ["铃", "灵", "龄"], "燕": ["艳", "雁", "妍"],
    "婷": ["亭", "庭"], "慧": ["惠", "蕙", "辉"], "琳": ["林", "霖", "淋"],
    "红": ["虹", "宏", "鸿"], "梅": ["玫", "媚", "眉"], "萍": ["平", "苹"],
    "琴": ["芹", "勤", "秦"], "兰": ["岚", "澜", "蓝"], "颖": ["莹", "盈", "影"],
    "倩": ["芊", "谦"], "晶": ["精", "菁", "京"], "欣": ["新", "心", "馨"],
    "怡": ["宜", "仪", "毅"], "佳": ["家", "嘉", "加"], "梦": ["孟", "萌"],
    "涵": ["含", "晗", "寒"], "玉": ["钰", "裕", "宇"], "英": ["瑛", "莹", "鹰"],
    "凤": ["峰", "锋", "风"], "桂": ["贵"], "云": ["芸", "运", "韵"], "丹": ["单", "旦"],
    "悦": ["月", "越", "跃"], "平": ["萍", "苹"], "子": ["紫", "梓"],
}  # fmt: skip

# Surname readings that differ from the character's everyday reading.
_SURNAME_READINGS: Final = {"曾": "zeng", "覃": "qin", "单": "shan", "解": "xie", "仇": "qiu"}

# Age bands (inclusive) and shares for a rural county's registered population: working-age
# adults have largely migrated to cities, the elderly stay.
_AGE_BANDS: Final = ((0, 14), (15, 29), (30, 44), (45, 59), (60, 74), (75, 84), (85, 95))
_AGE_WEIGHTS: Final = (16, 10, 14, 25, 22, 9, 4)

# Allocated mobile prefixes among 13x/15x/18x/19x (154 and 194 were never issued).
_PHONE_PREFIXES: Final = (
    *(f"13{d}" for d in range(10)),
    *(f"15{d}" for d in (0, 1, 2, 3, 5, 6, 7, 8, 9)),
    *(f"18{d}" for d in range(10)),
    *(f"19{d}" for d in (0, 1, 2, 3, 5, 6, 7, 8, 9)),
)

_DAYS_PER_YEAR: Final = 365.2425
_ONE_CHAR_GIVEN_NAME_SHARE: Final = 0.25
_MAX_SEQUENCE_DRAWS: Final = 1000

_SURNAME_LIST: Final = tuple(SURNAMES)
_SURNAME_CUMULATIVE: Final = tuple(accumulate(SURNAMES.values()))
_AGE_CUMULATIVE: Final = tuple(accumulate(_AGE_WEIGHTS))


@dataclass(frozen=True)
class Resident:
    id_number: str
    name: str
    pinyin: str
    sex: str
    birth_date: date
    phone: str
    address: str
    division_code: str


def make_resident(
    rng: random.Random,
    *,
    township_name: str,
    township_division_code: str,
    village_names: Sequence[str],
    county_name: str,
    today: date,
    issued: set[str] | None = None,
) -> Resident:
    """One synthetic resident of a township; every value comes from `rng`.

    The ID number carries the county code (first 6 digits of the township's division code).
    Pass the same `issued` set across calls to keep ID numbers unique: a colliding number is
    redrawn and the new one is added to the set.
    """
    if not village_names:
        raise ValueError("village_names must not be empty")
    birth_date = _pick_birth_date(rng, today)
    sex = _pick_sex(rng, age=(today - birth_date).days // 365)
    surname = _pick_weighted(rng, _SURNAME_LIST, _SURNAME_CUMULATIVE)
    given_name = _pick_given_name(rng, sex, birth_date.year)
    phone = _pick_phone(rng)
    address = _pick_address(rng, county_name, township_name, village_names)
    id_number = _pick_id_number(rng, township_division_code[:6], birth_date, sex, issued)
    return Resident(
        id_number=id_number,
        name=surname + given_name,
        pinyin=f"{_surname_pinyin(surname)} {''.join(map(_char_pinyin, given_name))}",
        sex=sex,
        birth_date=birth_date,
        phone=phone,
        address=address,
        division_code=township_division_code,
    )


def _pick_weighted(rng: random.Random, items: Sequence[str], cumulative: Sequence[float]) -> str:
    # What rng.choices does for k=1, without its per-call overhead.
    return items[bisect(cumulative, rng.random() * cumulative[-1])]


def _pick_birth_date(rng: random.Random, today: date) -> date:
    band = bisect(_AGE_CUMULATIVE, rng.random() * _AGE_CUMULATIVE[-1])
    youngest, oldest = _AGE_BANDS[band]
    days_old = rng.randrange(int(youngest * _DAYS_PER_YEAR), int((oldest + 1) * _DAYS_PER_YEAR))
    return date.fromordinal(today.toordinal() - days_old)


def _pick_sex(rng: random.Random, *, age: int) -> Sex:
    # Boys outnumber girls at birth; women outlive men.
    male_share = 0.52 if age < 60 else 0.47 if age < 80 else 0.40
    return "male" if rng.random() < male_share else "female"


def _pick_given_name(rng: random.Random, sex: Sex, birth_year: int) -> str:
    # Naming fashion shifts from 建国/秀英 to 子轩/梓涵 across the second half of the century.
    modern_share = min(0.9, max(0.1, (birth_year - 1950) / 50))
    pool = _GIVEN_POOLS[sex][rng.random() < modern_share]
    if rng.random() < _ONE_CHAR_GIVEN_NAME_SHARE:
        return rng.choice(pool)
    return rng.choice(pool) + rng.choice(pool)


def _pick_phone(rng: random.Random) -> str:
    # Children's records carry a guardian's number, so everyone has one.
    return f"{rng.choice(_PHONE_PREFIXES)}{rng.randrange(100_000_000):08d}"


def _pick_address(
    rng: random.Random, county: str, township: str, village_names: Sequence[str]
) -> str:
    village = rng.choice(village_names)
    if not village.endswith(("村", "社区")):
        village += "村"
    return f"{county}{township}{village}{rng.randint(1, 12)}组{rng.randint(1, 80)}号"


def _pick_id_number(
    rng: random.Random, county_code: str, birth_date: date, sex: Sex, issued: set[str] | None
) -> str:
    for _ in range(_MAX_SEQUENCE_DRAWS):
        number = make_resident_id(county_code, birth_date, sequence_for_sex(rng, sex))
        if issued is None:
            return number
        if number not in issued:
            issued.add(number)
            return number
    raise RuntimeError(f"no free {sex} sequence left in {county_code} for {birth_date}")


def _surname_pinyin(surname: str) -> str:
    return _SURNAME_READINGS.get(surname) or _char_pinyin(surname)


@lru_cache(maxsize=4096)
def _char_pinyin(char: str) -> str:
    # pypinyin costs microseconds per call; the name pools hold only a few hundred characters.
    return str(lazy_pinyin(char)[0])

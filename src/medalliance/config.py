"""Settings, read once from the environment (prefix ``MEDALLIANCE_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from medalliance.access.enums import ConsentDefault

DEFAULT_SECRET = "development-only-insecure-secret-key-change-me"
REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDALLIANCE_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite:///{REPO_ROOT / 'var' / 'medalliance.sqlite3'}"
    secret_key: str = DEFAULT_SECRET
    session_max_age_seconds: int = Field(default=8 * 3600, gt=0)
    access_token_minutes: int = Field(default=30, gt=0)
    lockout_threshold: int = Field(default=5, gt=0)
    lockout_minutes: int = Field(default=15, gt=0)
    timezone: str = "Asia/Shanghai"
    default_locale: Literal["zh_CN", "en"] = "zh_CN"
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Direct FHIR calls (kit/direct.py) running at once in one web process's threads; the
    # rest wait their turn. Past a few, threads mostly fight over the GIL (2 cores, 32
    # clients: p99 ~150 ms with 4, ~210 ms with 40, same throughput). Raise it where each
    # call waits long on the database (slow commit fsync, a remote server).
    direct_threads: int = Field(default=4, gt=0)
    static_vendor_dir: Path = REPO_ROOT / "node_modules"
    # Official R4 definitions and examples (npm hl7.fhir.r4.examples@4.0.1, installed by setup).
    fhir_package_dir: Path = REPO_ROOT / "node_modules" / "hl7.fhir.r4.examples"
    worker_in_process: bool = True
    worker_interval_seconds: float = Field(default=1.0, gt=0)
    log_json: bool = False
    consent_default: ConsentDefault = ConsentDefault.OPT_IN
    break_glass_minutes: int = Field(default=240, gt=0)
    # Referrals (E): acceptance deadlines by urgency, then escalation to the referral office.
    referral_deadline_emergency_minutes: int = Field(default=10, gt=0)
    referral_deadline_urgent_minutes: int = Field(default=120, gt=0)
    referral_deadline_routine_minutes: int = Field(default=24 * 60, gt=0)
    referral_follow_up_days: int = Field(default=14, gt=0)
    # Scheduling (E): slots reserved for consortium referrals, opened before public booking.
    slot_reserved_share: float = Field(default=0.30, ge=0, le=1)
    slot_reserved_share_expert: float = Field(default=0.50, ge=0, le=1)
    slot_referral_release_days: int = Field(default=14, ge=0)
    slot_public_booking_days: int = Field(default=7, ge=0)
    # Master patient index: match probabilities (0..1) at or above which a local record is
    # linked automatically, and below which it becomes a new person; between: review queue.
    # The consortium accepts at most 1 false merge in 200 automatic links (precision 0.995);
    # a link at probability p is wrong with chance 1 - p, so 0.999 keeps each link five
    # times inside that bound, a margin for a model that is only approximately calibrated.
    mpi_link_threshold: float = Field(default=0.999, gt=0, le=1)
    mpi_review_threshold: float = Field(default=0.5, gt=0, le=1)
    mpi_candidate_limit: int = Field(default=50, gt=0)
    # Indicators (L): the county whose residents the county visit rate is about (division
    # code prefix), and how many source rows one worker tick turns into facts.
    indicators_county_code: str = Field(default="510799", pattern=r"^\d{2,12}$")
    indicators_batch_size: int = Field(default=500, gt=0)
    # HL7 v2 inbound (records/hl7). MLLP has no authentication: the listener binds to
    # localhost unless told otherwise, and each sending facility (MSH-4) is mapped to a
    # member system's client id (JSON, e.g. {"COUNTY-HIS": "county-his"}); an unmapped
    # facility that names an institution with exactly one member system is that system.
    hl7_mllp_host: str = "127.0.0.1"
    hl7_mllp_port: int = Field(default=2575, gt=0, lt=65536)
    hl7_mllp_systems: dict[str, str] = Field(default_factory=dict)
    hl7_max_message_bytes: int = Field(default=1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _refuse_default_secret_outside_development(self) -> Settings:
        if self.environment != "development" and self.secret_key == DEFAULT_SECRET:
            raise ValueError("MEDALLIANCE_SECRET_KEY must be set outside development")
        if self.environment == "production" and len(self.secret_key) < 32:
            raise ValueError("MEDALLIANCE_SECRET_KEY must be at least 32 characters")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_development(self) -> bool:
        return self.environment == "development"


@lru_cache
def get_settings() -> Settings:
    return Settings()

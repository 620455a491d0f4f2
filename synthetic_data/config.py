"""Generator configuration: which gemeenten, which years, which seed, what scale. Validated with clear errors."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .errors import ConfigError
from .reference import care_model, gemeenten_all

DEFAULT_REGION = "twente"
REGIONS_HELP = "'twente', 'nl', a jeugdregio/province name, or a 4-digit CBS gemeentecode"


def _years_bounds() -> tuple[int, int]:
    p = care_model()["parameters"]
    # Declaraties exist from 2021 on (CS100); the burn-in runs from the epoch to the first year.
    return max(2021, p["epoch_year"] + 4), p["max_year"]


def parse_years(text: str | int) -> tuple[int, int]:
    """'2024' or '2023-2024' -> (first, last), within the supported range."""
    lo, hi = _years_bounds()
    allowed = f"a year or range like 2023-2024 within {lo}-{hi}"
    m = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4}))?\s*", str(text))
    if not m:
        raise ConfigError("--years", f"'{text}' is not a year or year range", allowed)
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    if first > last or first < lo or last > hi:
        raise ConfigError("--years", f"'{text}' is outside the supported range", allowed)
    return first, last


def resolve_region(region: str) -> list[str]:
    """Region name or gemeente code -> sorted gemeente codes."""
    g = gemeenten_all()
    key = str(region).strip()
    if re.fullmatch(r"(GM)?\d{1,4}", key, flags=re.IGNORECASE):
        code = key.upper().removeprefix("GM").zfill(4)
        if code not in set(g["gemeente_code"]):
            raise ConfigError("--region", f"gemeente code '{region}' is not one of the 342 CBS codes (indeling 2025)",
                              REGIONS_HELP)
        return [code]
    if key.lower() == "nl":
        return g["gemeente_code"].to_list()
    by_regio = g.filter(
        (g["inkoopregio"].str.to_lowercase() == key.lower()) | (g["provincie"].str.to_lowercase() == key.lower())
    )
    if by_regio.height == 0:
        raise ConfigError("--region", f"unknown region '{region}'", REGIONS_HELP)
    return by_regio["gemeente_code"].sort().to_list()


@dataclass(frozen=True)
class GeneratorConfig:
    region: str = DEFAULT_REGION
    years: str = "2024"
    seed: int = 42
    scale: float = 1.0

    def __post_init__(self):
        # Validate eagerly so a bad config fails before anything is generated or written.
        self.gemeenten
        self.year_range
        # public seeds are small numbers; seeds derived from a sealed secret (sealing.py) have 128 bits
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**128:
            raise ConfigError("--seed", f"'{self.seed}' is not a whole number", "an integer from 0 to 2**128 - 1")
        try:
            scale = float(self.scale)
        except (TypeError, ValueError):
            scale = float("nan")
        if not (0 < scale <= 1):
            # Above 1 the youth pool would outgrow the synthetic BSN range of a national run.
            raise ConfigError("--scale", f"'{self.scale}' is not allowed", "a number greater than 0 and at most 1")

    @property
    def gemeenten(self) -> list[str]:
        return resolve_region(self.region)

    @property
    def year_range(self) -> tuple[int, int]:
        return parse_years(self.years)

    def as_dict(self) -> dict:
        first, last = self.year_range
        return {**asdict(self), "years": f"{first}-{last}" if first != last else str(first), "scale": float(self.scale)}

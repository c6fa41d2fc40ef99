"""The protocol file format: YAML front matter validated by pydantic, and a Markdown body.

A protocol file looks like this::

    ---
    id: heat-stroke
    title: Exertional and classic heat stroke
    version: "1.0"
    ...
    ---
    ## Key actions
    1. Cool first ...
       - drug: ...
    ## Contraindications
    - ...
    ## Notes
    ...
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
REQUIRED_SECTIONS = ("Key actions", "Contraindications")


class Strict(BaseModel):
    """Base model: unknown keys are errors, so a misspelt key never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """A named public source that the protocol's facts come from."""

    title: str = Field(min_length=3)
    url: str | None = None
    doi: str | None = None
    licence: str = Field(min_length=2)

    @model_validator(mode="after")
    def _needs_locator(self) -> Source:
        if not self.url and not self.doi:
            raise ValueError("a source needs a url or a doi")
        return self


class Abbreviation(Strict):
    """A short form and its expansion, optionally valid only next to context words."""

    short: str = Field(min_length=1)
    expansion: str = Field(min_length=2)
    context: list[str] = Field(default_factory=list)
    # The short form does not count when one of these words is in the query ("MH" beside "depression").
    exclude_context: list[str] = Field(default_factory=list)


class KeywordRule(Strict):
    """A categorical rule: every `all` term, at least one `any` term, and no `none` term."""

    all: list[str] = Field(default_factory=list)
    any: list[str] = Field(default_factory=list)
    none: list[str] = Field(default_factory=list)
    weight: float = Field(default=1.0, gt=0, le=5)

    @model_validator(mode="after")
    def _needs_positive_terms(self) -> KeywordRule:
        if not self.all and not self.any:
            raise ValueError("a keyword rule needs at least one 'all' or 'any' term")
        return self


class FrontMatter(Strict):
    """The YAML header of a protocol: what a guideline header holds plus routing metadata."""

    id: str
    title: str = Field(min_length=3)
    version: str
    status: Literal["draft", "active", "retired"]
    owner: str = Field(min_length=2)
    approved_by: str | None = None
    last_reviewed: dt.date
    review_due: dt.date
    demonstration: bool = False
    sources: list[Source] = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    abbreviations: list[Abbreviation] = Field(default_factory=list)
    brand_names: dict[str, str] = Field(default_factory=dict)
    keywords: list[KeywordRule] = Field(default_factory=list)
    confusable_with: list[str] = Field(default_factory=list)
    discriminators: list[str] = Field(default_factory=list)
    example_queries: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not SAFE_ID.match(value):
            raise ValueError(
                f"id {value!r} is not a safe file name: use lower-case letters, digits and hyphens"
            )
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError(
                f"version must be a quoted string: YAML read the number {value}, which may have lost "
                "trailing zeros; write it in quotes as intended, for example version: \"1.10\""
            )
        return value

    @field_validator("review_due")
    @classmethod
    def _review_after_last(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        last = info.data.get("last_reviewed")
        if last is not None and value < last:
            raise ValueError(f"{value} is earlier than last_reviewed {last}: set the next review after the last one")
        return value


class KeyAction(Strict):
    """One ordered step of a protocol, with its drug, dose, route and timing where it has them."""

    number: int
    text: str
    drug: str | None = None
    dose: str | None = None
    route: str | None = None
    timing: str | None = None


class Protocol(Strict):
    """A parsed, validated protocol file."""

    meta: FrontMatter
    body: str
    key_actions: list[KeyAction]
    key_actions_text: str
    contraindications_text: str
    path: str
    blob_sha: str | None = None  # git blob SHA of the file as read; None outside git
    key_lines: dict[str, int] = Field(default_factory=dict)  # file line of each front-matter key

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def drugs(self) -> list[str]:
        """Return the drugs named in the key actions, in order and without repeats."""
        names = [action.drug.lower() for action in self.key_actions if action.drug]
        return list(dict.fromkeys(names))

"""Normalise free-text clinical queries before rules and fuzzy matching.

Each step is a small function with its own tests: cleaning, case and accent folding,
numbers and units, negation, abbreviations with context and brand names. The result
keeps what each step did, so that `protocol route` can show the assumptions made.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from router.lexicon import Lexicon

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
TEMPLATE_TOKEN = re.compile(r"<\|[^|>]{0,40}\|>|</?s>|\[/?INST\]")
TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
WORD_BOUNDARY = r"(?<![a-z0-9]){}(?![a-z0-9])"

# "39,5" is a comma decimal, but "25,000" is a thousands separator.
COMMA_DECIMAL = re.compile(r"(?<=\d),(?=\d{1,2}(?!\d))")
THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
TEMPERATURE = re.compile(r"(?P<value>\d{2,3}(?:\.\d+)?)\s*(?:°|º|deg(?:rees?)?)?\s*(?P<unit>[fc])(?![a-z])")
BARE_TEMPERATURE = re.compile(
    r"(?P<word>\btemp(?:erature)?|\bfebrile|\bfever(?:ish)?|\btmax|\bt)\s*(?:of|is|was|:|=)?\s*(?P<value>\d{2,3}(?:\.\d+)?)(?![\d.]|\s*(?:°|º|deg|[fc]\b|%|mg|mmol))"
)
MICROGRAM = re.compile(r"(?<=[\d\s])(?:µg|μg|ug|mcg)(?![a-z])")

NEGATORS = (
    "no", "not", "denies", "denied", "without", "negative for", "absent", "free of", "never", "nil",
    "sin", "kein", "keine", "keinen", "nicht", "ohne",
)
NEGATION_BEFORE = re.compile(
    r"(?<![a-z0-9])(?:" + "|".join(re.escape(word) for word in NEGATORS) + r")\s+(?P<scope>[^,;.!?\n]+)"
)
NEGATION_AFTER = re.compile(
    r"(?P<scope>[a-z][a-z0-9 /\-]{0,40}?)(?:\s*:\s*(?:none|no|negative|neg|absent|nil)|\s+(?:negative|absent|denied))(?![a-z0-9])"
)
# Text addressed to the model rather than a clinical question. Such a query is never routed.
INSTRUCTIONS = re.compile(
    r"ignore (?:all |any |the |your )?(?:previous|prior|above|earlier|protocol|system)|"
    r"(?:^|[\s.;])system\s*:|<\s?\|\s?im_start|\[\s?inst\s?\]|<\s?/?s>|"
    r"(?:print|reveal|show|repeat) (?:me )?(?:the |your )?(?:system prompt|hidden|instructions|api key)|"
    r"you are (?:now |in )?(?:an? )?(?:admin|developer|jailbr)|admin mode|answer from your own knowledge"
)
SCOPE_END = re.compile(r"\s(?:but|however|and now|yet|although|pero|aber|[-–])\s")


@dataclass
class NormalizedQuery:
    """A query after normalisation, with the evidence removed and the assumptions made."""

    original_chars: int
    text: str
    tokens: list[str]
    negated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    expansions: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, short form, meaning)
    instructions: bool = False  # the query contains text addressed to the model

    @property
    def is_empty(self) -> bool:
        return not self.tokens


def clean_text(raw: str) -> str:
    """Drop control characters and undecodable bytes, and defuse chat-template tokens.

    llama-cpp-python tokenises chat prompts with special tokens enabled, so "<|im_end|>"
    typed by a user would end the turn. A space after the first character keeps it plain text.
    """
    text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = CONTROL.sub(" ", text.replace("\ufffd", " "))
    return TEMPLATE_TOKEN.sub(lambda match: match.group(0)[0] + " " + match.group(0)[1:], text)


def fold_text(text: str) -> str:
    """Lower-case and strip accents; the micro sign and Greek mu are kept as 'µ' for units."""
    text = text.replace("μ", "µ").casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(char for char in decomposed if not unicodedata.combining(char))
    return folded.replace("μ", "µ").replace("ß", "ss")


def normalize_numbers(text: str) -> str:
    """Read comma decimals and thousands separators as plain numbers."""
    text = COMMA_DECIMAL.sub(".", text)
    return THOUSANDS.sub("", text)


def normalize_units(text: str, notes: list[str]) -> str:
    """Convert temperatures to °C and spell every microgram form as 'mcg', kept apart from 'mg'."""
    text = MICROGRAM.sub("mcg", text)

    def explicit(match: re.Match[str]) -> str:
        value = float(match.group("value"))
        if match.group("unit") == "f":
            celsius = (value - 32) * 5 / 9
            notes.append(f"{match.group('value')} °F read as {celsius:.1f} °C")
            return f"temperature {celsius:.1f} c{temperature_words(celsius)}"
        return f"temperature {value:.1f} c{temperature_words(value)}"

    text = TEMPERATURE.sub(explicit, text)
    return BARE_TEMPERATURE.sub(lambda match: bare_temperature(match, notes), text)


def bare_temperature(match: re.Match[str], notes: list[str]) -> str:
    """Read a temperature without a unit: °F only when the value is implausible as °C."""
    value = float(match.group("value"))
    word = match.group("word")
    if 25 <= value <= 45:
        notes.append(f"{match.group('value')} after '{word}' assumed to be °C")
        return f"{word} temperature {value:.1f} c{temperature_words(value)}"
    if 90 <= value <= 115:
        celsius = (value - 32) * 5 / 9
        notes.append(f"{match.group('value')} after '{word}' is implausible as °C: assumed °F ({celsius:.1f} °C)")
        return f"{word} temperature {celsius:.1f} c{temperature_words(celsius)}"
    return match.group(0)


POTASSIUM = re.compile(
    r"(?<![a-z0-9])(?<!vitamin )(?<!vit )(?:k\+?|potassium|kalium|potasio)\s*(?:of|is|was|=|:|level)?\s*"
    r"(?P<value>\d{1,2}(?:\.\d+)?)(?![\d.]|\s*(?:mg|mcg|g\b|kg|%|units?\b|u\b))"
)


def potassium_words(text: str, notes: list[str]) -> str:
    """Add 'hyperkalaemia' or 'hypokalaemia' after a potassium value in mmol/L that is out of range."""

    def words(match: re.Match[str]) -> str:
        value = float(match.group("value"))
        if 6.0 <= value <= 12:
            notes.append(f"potassium {match.group('value')} read as mmol/L: hyperkalaemia")
            return match.group(0) + " hyperkalaemia hyperkalemia"
        if 1.0 <= value < 3.5:
            notes.append(f"potassium {match.group('value')} read as mmol/L: hypokalaemia")
            return match.group(0) + " hypokalaemia hypokalemia"
        return match.group(0)

    return POTASSIUM.sub(words, text)


def temperature_words(celsius: float) -> str:
    """Return finding words for a temperature, so that rules can use 'hyperthermia' or 'fever'."""
    if celsius >= 40:
        return " hyperthermia fever"
    if celsius >= 38:
        return " fever"
    return ""


def remove_negated(text: str, lexicon: Lexicon, negated: list[str]) -> str:
    """Remove negated findings ("no X", "denies X", "X: none") so they are not evidence."""

    def cut(scope: str) -> str:
        end = SCOPE_END.search(f" {scope} ")
        kept = scope[: max(0, end.start() - 1)] if end else scope
        return kept.strip()

    def before(match: re.Match[str]) -> str:
        scope = cut(match.group("scope"))
        if not scope or lexicon.is_negation_exempt(scope):
            return match.group(0)
        negated.append(scope)
        return " " + match.group("scope")[len(scope) :]

    text = NEGATION_BEFORE.sub(before, text)

    def after(match: re.Match[str]) -> str:
        scope = match.group("scope").strip()
        negated.append(scope)
        return " "

    return NEGATION_AFTER.sub(after, text)


def expand_abbreviations(
    text: str, context: str, raw: str, lexicon: Lexicon, expansions: list[tuple[str, str, str]]
) -> str:
    """Append the meaning of abbreviations and brand names found in the query.

    A short form written as such ("MH", not "mh") whose context rules it out ("MH" beside
    "suicidal") is removed from the text, so that aliases containing it ("MH crisis") cannot
    match either.
    """
    added: list[str] = []
    words = set(TOKEN.findall(context)) | set(TOKEN.findall(fold_text(raw)))
    for abbreviation in lexicon.abbreviations_in(words):
        verdict = abbreviation.matches(text, raw, context)
        if verdict:
            added.append(abbreviation.expansion)
            expansions.append(("abbreviation", abbreviation.short, abbreviation.expansion))
        elif verdict is False and len(abbreviation.short) > 1 and abbreviation.written_in(raw):
            text = re.sub(WORD_BOUNDARY.format(re.escape(abbreviation.short.casefold())), " ", text)
    for brand in lexicon.brands_in(words):
        generic = lexicon.brands[brand]
        if re.search(WORD_BOUNDARY.format(re.escape(brand)), text):
            added.append(generic)
            expansions.append(("brand name", brand, generic))
    if not added:
        return text
    return text + " | " + " | ".join(dict.fromkeys(added))


def normalize_query(raw: str, lexicon: Lexicon) -> NormalizedQuery:
    """Run every normalisation step on a raw query."""
    notes: list[str] = []
    negated: list[str] = []
    expansions: list[tuple[str, str, str]] = []

    cleaned = clean_text(raw)
    instructions = INSTRUCTIONS.search(fold_text(cleaned)) is not None
    if instructions:
        notes.append("the query contains instructions addressed to the model, so it was not routed: ask a clinical question")
    text = normalize_numbers(fold_text(cleaned))
    text = normalize_units(text, notes)
    text = potassium_words(text, notes)
    context = text
    text = remove_negated(text, lexicon, negated)
    text = expand_abbreviations(text, context, cleaned, lexicon, expansions)

    tokens = [token for token in TOKEN.findall(text) if token not in lexicon.stopwords]
    return NormalizedQuery(
        original_chars=len(raw),
        text=" ".join(text.split()),
        tokens=tokens,
        negated=negated,
        notes=notes,
        expansions=expansions,
        instructions=instructions,
    )

"""The router's vocabulary: abbreviations, brand names and stop words.

Protocol front matter supplies most of it; a small built-in table covers clinical
shorthand that belongs to no single protocol (pt, K+, RR, IN).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from router.protocol import Protocol

TOKEN_PATTERN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
SHORT_FORM_LETTERS = 2  # short forms this short must match their written case ("IN", not "in")


def fold(text: str) -> str:
    """Lower-case and strip accents, as the query normaliser does."""
    decomposed = unicodedata.normalize("NFKD", text.replace("μ", "µ").casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char)).replace("ß", "ss")


def bounded(term: str) -> re.Pattern[str]:
    """Return a pattern that finds `term` as a whole word or phrase."""
    return re.compile(r"(?<![A-Za-z0-9])" + re.escape(term) + r"(?![A-Za-z0-9])")


@dataclass(frozen=True)
class LexiconAbbreviation:
    """A short form with the words that must, or must not, appear for it to count."""

    short: str
    expansion: str
    context: tuple[str, ...] = ()
    exclude_context: tuple[str, ...] = ()
    before_number: bool = False  # in any case when a number follows ("k 7.1", "K+ 6.8")

    def matches(self, folded: str, raw: str, context: str) -> bool | None:
        """Return True when the short form counts, False when its context rules it out, None when absent.

        `folded` is the query after negation was removed, so a negated short form is absent.
        `context` is the query before that, because the setting counts even where negated.
        """
        if self.before_number:
            pattern = r"(?<![a-z0-9])" + re.escape(fold(self.short)) + r"\s*(?:of|=|:|is|was)?\s*\d"
            found = re.search(pattern, folded) is not None
        elif sum(char.isalpha() for char in self.short) <= SHORT_FORM_LETTERS:
            found = bounded(self.short).search(raw) is not None
        else:
            found = bounded(fold(self.short)).search(folded) is not None
        if not found:
            return None

        words = set(TOKEN_PATTERN.findall(context))
        if any(has_term(context, words, term) for term in self.exclude_context):
            return False
        return not self.context or any(has_term(context, words, term) for term in self.context)

    def written_in(self, raw: str) -> bool:
        """Return whether the raw query contains the short form exactly as written (case included)."""
        return bounded(self.short).search(raw) is not None


def first_word(text: str) -> str:
    """Return the first word of a folded term ("" when it has none)."""
    words = TOKEN_PATTERN.findall(fold(text))
    return words[0] if words else ""


def has_term(folded: str, words: set[str], term: str) -> bool:
    """Return whether a context term (word or phrase) is in the folded query."""
    term = fold(term)
    if " " not in term and "-" not in term:
        return term in words or any(word.startswith(term) for word in words if len(term) >= 5)
    return bounded(term).search(folded) is not None


BUILT_IN_ABBREVIATIONS = (
    LexiconAbbreviation("K", "potassium", exclude_context=("vitamin", "vit"), before_number=True),
    LexiconAbbreviation("K+", "potassium"),
    LexiconAbbreviation("K", "potassium", exclude_context=("vitamin", "vit")),
    LexiconAbbreviation("RR", "respiratory rate"),
    LexiconAbbreviation("BP", "blood pressure"),
    LexiconAbbreviation("HR", "heart rate"),
    LexiconAbbreviation("IN", "intranasal"),
    LexiconAbbreviation("IM", "intramuscular"),
    LexiconAbbreviation("IV", "intravenous"),
    LexiconAbbreviation("HD", "haemodialysis hemodialysis dialysis"),
    LexiconAbbreviation("LKW", "last known well"),
    LexiconAbbreviation("sux", "succinylcholine"),
    LexiconAbbreviation("EtCO2", "end-tidal co2"),
    LexiconAbbreviation("ETCO2", "end-tidal co2"),
    LexiconAbbreviation("OD", "overdose"),
    LexiconAbbreviation("SZ", "seizure"),
)

# Words that carry no clinical meaning for routing. "pt" is always "patient", never a finding.
STOPWORDS = frozenset(
    """a an the and or of to in on at for with by from is are was were be been has have had do does did
    what which who how when where why can could should would will shall may might must this that these
    those it its he she they we i you his her their our my your me him them pt pts patient patients
    please dose doses dosing give given treatment treat now next first plan question help need needs
    any some also still just yet very y el la los las de del en con para por que un una der die das
    und mit fur von ist bei ein eine""".split()
)

NEGATION_EXEMPT = ("improv", "respon", "better", "sure", "known", "change", "more", "longer", "only", "clear", "regain")


class Lexicon:
    """Abbreviations, brand names and stop words for one library."""

    def __init__(self, protocols: Iterable[Protocol]) -> None:
        protocols = sorted(protocols, key=lambda protocol: protocol.id)
        abbreviations = list(BUILT_IN_ABBREVIATIONS)
        brands: dict[str, str] = {}
        for protocol in protocols:
            for item in protocol.meta.abbreviations:
                abbreviations.append(
                    LexiconAbbreviation(item.short, item.expansion, tuple(item.context), tuple(item.exclude_context))
                )
            for brand, generic in protocol.meta.brand_names.items():
                brands.setdefault(fold(brand), fold(generic))
        self.abbreviations = tuple(abbreviations)
        self.brands = brands
        self.stopwords = STOPWORDS
        # Lookup by first word, so a query is compared only with short forms and brands it contains.
        self.abbreviations_by_word: dict[str, list[LexiconAbbreviation]] = {}
        for abbreviation in self.abbreviations:
            self.abbreviations_by_word.setdefault(first_word(abbreviation.short), []).append(abbreviation)
        self.brands_by_word: dict[str, list[str]] = {}
        for brand in sorted(self.brands):
            self.brands_by_word.setdefault(first_word(brand), []).append(brand)

    def abbreviations_in(self, words: set[str]) -> list[LexiconAbbreviation]:
        """Return the abbreviations whose first word is among the query's words, in table order."""
        found = [item for word in words for item in self.abbreviations_by_word.get(word, ())]
        order = {id(item): position for position, item in enumerate(self.abbreviations)}
        return sorted(found, key=lambda item: order[id(item)])

    def brands_in(self, words: set[str]) -> list[str]:
        """Return the brand names whose first word is among the query's words, sorted."""
        return sorted(brand for word in words for brand in self.brands_by_word.get(word, ()))

    @staticmethod
    def is_negation_exempt(scope: str) -> bool:
        """Return whether a phrase after 'no'/'not' is not a finding ("not improving")."""
        return scope.startswith(NEGATION_EXEMPT)

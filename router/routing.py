"""Pre-filter a library down to a few candidate protocols, each with its score and reasons.

Evidence comes from three places: keyword rules (all/any/none terms), titles and aliases
matched as whole phrases, and drug names. Misspelt words are corrected against the
library's own vocabulary with rapidfuzz before matching, never across a hypo-/hyper- prefix.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import pickle
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from router.lexicon import Lexicon, fold
from router.library import Library
from router.normalize import TOKEN, NormalizedQuery, normalize_query
from router.paths import data_home
from router.protocol import Protocol

DEFAULT_K = 5
MIN_SCORE = 1.0  # below this a protocol is not a candidate
FUZZY_CUTOFF = 85  # rapidfuzz ratio (0-100) for a misspelt word to count as a known one
MIN_FUZZY_LENGTH = 5  # shorter words are never corrected: "K" must not become anything
MAX_NGRAM = 4
PHRASE_WEIGHT = 2.0
DRUG_WEIGHT = 0.5  # a drug named alone is not enough to make a candidate
TITLE_WORD_WEIGHT = 1.0
FUZZY_DISCOUNT = 0.8
RULE_CHOICE_SHARE = 0.5  # the rule result keeps candidates within this share of the top score
AMBIGUOUS_SHARE = 0.75
SHORT_QUERY_WORDS = 2
OPPOSITE_PREFIXES = (("hypo", "hyper"), ("hyper", "hypo"))


@functools.lru_cache(maxsize=200_000)
def term_key(term: str) -> str:
    """Return a term as space-joined tokens, the form used for matching."""
    return " ".join(TOKEN.findall(fold(term)))


@dataclass
class Candidate:
    """A protocol that the pre-filter kept, with its score and why it is there."""

    id: str
    title: str
    score: float
    reasons: list[str] = field(default_factory=list)
    companion: bool = False  # added only because a candidate names it in confusable_with
    matched: list[str] = field(default_factory=list)  # query terms that point at this protocol

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "score": round(self.score, 2),
            "reasons": self.reasons,
            "companion": self.companion,
        }


@dataclass
class RouteDecision:
    """The pre-filter's result for one query."""

    query: NormalizedQuery
    candidates: list[Candidate]
    rule_choice: list[str]
    ambiguous: bool = False
    groups: dict[str, set[str]] = field(default_factory=dict)  # candidate id -> its look-alikes

    @property
    def no_match(self) -> bool:
        return not self.candidates


@dataclass
class RuleRef:
    protocol_id: str
    index: int


class RouteIndex:
    """Lookup tables built once per library: term to rules, phrase to protocols, vocabulary."""

    def __init__(self, library: Library, treat_as_active: frozenset[str] = frozenset()) -> None:
        self.library = library
        self.lexicon = Lexicon(library.protocols.values())
        self.rules_by_term: dict[str, list[RuleRef]] = defaultdict(list)
        self.phrases: dict[str, set[str]] = defaultdict(set)
        self.drugs: dict[str, set[str]] = defaultdict(set)
        self.title_words: dict[str, set[str]] = defaultdict(set)
        vocabulary: set[str] = set()

        # Only active protocols are routed to. Drafts and retired protocols stay readable but silent,
        # unless a caller names them in treat_as_active to see how a draft would route.
        for protocol in sorted(library.protocols.values(), key=lambda item: item.id):
            if protocol.meta.status == "active" or protocol.id in treat_as_active:
                self._index_protocol(protocol, vocabulary)

        self.look_alikes = look_alike_map(library.protocols)
        self.vocabulary = sorted(word for word in vocabulary if len(word) >= MIN_FUZZY_LENGTH and not word.isdigit())
        self.vocabulary_set = set(vocabulary)
        self.words_by_length: dict[int, list[str]] = defaultdict(list)
        for word in self.vocabulary:
            self.words_by_length[len(word)].append(word)
        self.corrections: dict[str, str | None] = {}  # cache: query word -> known word

    def _index_protocol(self, protocol: Protocol, vocabulary: set[str]) -> None:
        meta = protocol.meta
        for index, rule in enumerate(meta.keywords):
            for term in (*rule.all, *rule.any):
                key = term_key(term)
                if key:
                    self.rules_by_term[key].append(RuleRef(protocol.id, index))
                    vocabulary.update(key.split())
        for name in (meta.title, *meta.aliases):
            key = term_key(name)
            if key:
                self.phrases[key].add(protocol.id)
                vocabulary.update(key.split())
                for word in key.split():
                    if len(word) >= 4:
                        self.title_words[word].add(protocol.id)
        for drug in (*protocol.drugs, *meta.brand_names.values()):
            key = term_key(drug)
            if key:
                self.drugs[key].add(protocol.id)
                vocabulary.update(key.split())


ROUTE_INDEX_FORMAT = 3  # bump when RouteIndex changes shape


def index_cache_path(library: Library) -> Path:
    """Return the cache file of this library's index, named by a digest of every file's blob SHA.

    The digest changes exactly when a protocol file changes, like the library's git tree hash,
    and it also works for a library outside git.
    """
    digest = hashlib.sha256(f"format {ROUTE_INDEX_FORMAT}".encode())
    for protocol in sorted(library.protocols.values(), key=lambda item: item.id):
        digest.update(f"{protocol.id} {protocol.blob_sha}\n".encode())
    return data_home() / "cache" / f"index-{digest.hexdigest()[:32]}.pickle"


def load_index(library: Library) -> RouteIndex:
    """Return the route index of a library, from the cache when the library is unchanged."""
    path = index_cache_path(library)
    try:
        with path.open("rb") as handle:
            index = pickle.load(handle)
        if isinstance(index, RouteIndex):
            index.library = library
            return index
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        pass

    index = RouteIndex(library)
    save_index(index, path)
    return index


def save_index(index: RouteIndex, path: Path) -> None:
    """Write the index without its library; a failure only costs speed next time."""
    library = index.library
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        index.library = None  # type: ignore[assignment]
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            pickle.dump(index, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except OSError:
        pass
    finally:
        index.library = library


def ngrams(tokens: list[str]) -> set[str]:
    """Return every run of one to MAX_NGRAM tokens, joined by spaces, plus plural forms of words."""
    grams = set()
    for size in range(1, MAX_NGRAM + 1):
        for start in range(len(tokens) - size + 1):
            grams.add(" ".join(tokens[start : start + size]))
    for token in tokens:
        grams.update(number_forms(token))
    return grams


def number_forms(word: str) -> tuple[str, ...]:
    """Return the singular or plural forms of a word, so "seizure" matches "seizures"."""
    if len(word) < 5 or not word.isalpha():
        return ()
    if word.endswith("es"):
        return (word[:-1], word[:-2])
    if word.endswith("s"):
        return (word[:-1],)
    return (word + "s", word + "es")


def correct_spelling(tokens: list[str], index: RouteIndex) -> tuple[list[str], list[str]]:
    """Replace unknown words by the closest known word; return the tokens and the reasons."""
    corrected = []
    reasons = []
    for token in tokens:
        replacement = closest_known_word(token, index)
        if replacement and replacement != token:
            reasons.append(f"read '{token}' as '{replacement}'")
            corrected.append(replacement)
        else:
            corrected.append(token)
    return corrected, reasons


def closest_known_word(token: str, index: RouteIndex) -> str | None:
    """Return the known word that a misspelt or truncated token most likely means (cached)."""
    if len(token) < MIN_FUZZY_LENGTH or token in index.vocabulary_set or token in index.lexicon.stopwords:
        return None
    if any(char.isdigit() for char in token):
        return None
    if token not in index.corrections:
        index.corrections[token] = find_known_word(token, index)
    return index.corrections[token]


def find_known_word(token: str, index: RouteIndex) -> str | None:
    """Search the vocabulary: first a close spelling, then a unique word that the token begins."""
    best: tuple[str, float] | None = None
    for length in range(len(token) - 2, len(token) + 3):
        matches = process.extract(
            token, index.words_by_length.get(length, ()), scorer=fuzz.ratio, processor=None, score_cutoff=FUZZY_CUTOFF, limit=5
        )
        for word, score, _ in matches:
            if not crosses_prefix(token, word) and (best is None or score > best[1]):
                best = (word, score)
    if best:
        return best[0]

    # A truncated word ("malig", "anaph") stands for the one known word it begins.
    start = bisect.bisect_left(index.vocabulary, token)
    prefixed = []
    for word in index.vocabulary[start : start + 3]:
        if word.startswith(token) and not crosses_prefix(token, word):
            prefixed.append(word)
    return prefixed[0] if len(prefixed) == 1 else None


def crosses_prefix(left: str, right: str) -> bool:
    """Return whether two words differ in a hypo-/hyper- prefix, which reverses their meaning."""
    return any(left.startswith(a) and right.startswith(b) for a, b in OPPOSITE_PREFIXES)


class Evidence:
    """Scores and reasons collected per protocol while routing one query."""

    def __init__(self) -> None:
        self.scores: dict[str, float] = defaultdict(float)
        self.reasons: dict[str, list[str]] = defaultdict(list)
        self.terms: dict[str, dict[str, None]] = defaultdict(dict)  # ordered set per protocol

    def add(self, protocol_id: str, weight: float, reason: str, terms: tuple[str, ...] = ()) -> None:
        self.scores[protocol_id] += weight
        self.reasons[protocol_id].append(reason)
        self.terms[protocol_id].update(dict.fromkeys(terms))


def collect_evidence(grams: set[str], index: RouteIndex, evidence: Evidence, weight: float, note: str) -> None:
    """Add rule, phrase and drug evidence for the query's n-grams."""
    fired: set[tuple[str, int]] = set()
    for gram in sorted(grams):
        for ref in index.rules_by_term.get(gram, ()):
            fired.add((ref.protocol_id, ref.index))

    for protocol_id, rule_index in sorted(fired):
        protocol = index.library.protocols[protocol_id]
        rule = protocol.meta.keywords[rule_index]
        result = evaluate_rule(rule.all, rule.any, rule.none, grams)
        if result is not None:
            reason = f"keyword rule {rule_index + 1}: matched " + ", ".join(repr(term) for term in result[1]) + note
            evidence.add(protocol_id, rule.weight * result[0] * weight, reason, tuple(result[1]))

    for gram in sorted(grams):
        for protocol_id in sorted(index.phrases.get(gram, ())):
            evidence.add(protocol_id, PHRASE_WEIGHT * weight, f"title or alias '{gram}'{note}", (gram,))
        owners = index.drugs.get(gram, ())
        for protocol_id in sorted(owners):
            evidence.add(protocol_id, DRUG_WEIGHT * weight / len(owners), f"drug '{gram}'{note}", (gram,))


def evaluate_rule(
    all_terms: list[str], any_terms: list[str], none_terms: list[str], grams: set[str]
) -> tuple[float, list[str]] | None:
    """Return (strength, matched terms) when a rule fires on the n-grams, else None."""
    if any(term_key(term) in grams for term in none_terms):
        return None
    if not all(term_key(term) in grams for term in all_terms):
        return None
    hits = [term for term in any_terms if term_key(term) in grams]
    if any_terms and not hits:
        return None

    matched = [*all_terms, *hits]
    strength = min(2.0, 1.0 + 0.25 * (len(matched) - 1))
    return strength, matched


def route_query(raw: str, index: RouteIndex, k: int = DEFAULT_K) -> RouteDecision:
    """Normalise a query and return at most k candidates, with confusable protocols added."""
    query = normalize_query(raw, index.lexicon)
    if query.is_empty or query.instructions:
        return RouteDecision(query=query, candidates=[], rule_choice=[])

    all_tokens = TOKEN.findall(query.text)
    evidence = Evidence()
    collect_evidence(ngrams(all_tokens), index, evidence, 1.0, "")

    corrected, corrections = correct_spelling(all_tokens, index)
    if corrections:
        new_grams = ngrams(corrected) - ngrams(all_tokens)
        collect_evidence(new_grams, index, evidence, FUZZY_DISCOUNT, f" ({'; '.join(corrections)})")

    if len(query.tokens) <= SHORT_QUERY_WORDS:
        add_title_word_evidence(query.tokens, index, evidence)

    return build_decision(query, evidence, index, k)


def add_title_word_evidence(tokens: list[str], index: RouteIndex, evidence: Evidence) -> None:
    """For very short queries, let a word shared with titles point at every such protocol."""
    for token in tokens:
        for protocol_id in sorted(index.title_words.get(token, ())):
            evidence.add(protocol_id, TITLE_WORD_WEIGHT, f"title word '{token}'", (token,))


def build_decision(query: NormalizedQuery, evidence: Evidence, index: RouteIndex, k: int) -> RouteDecision:
    """Rank candidates (ties by id), add companions and derive the rule result."""
    ranked = sorted(
        (protocol_id for protocol_id, score in evidence.scores.items() if score >= MIN_SCORE),
        key=lambda protocol_id: (-evidence.scores[protocol_id], protocol_id),
    )[:k]
    protocols = index.library.protocols
    candidates = [
        Candidate(
            protocol_id,
            protocols[protocol_id].meta.title,
            evidence.scores[protocol_id],
            evidence.reasons[protocol_id],
            matched=list(evidence.terms[protocol_id]),
        )
        for protocol_id in ranked
    ]

    top = candidates[0].score if candidates else 0.0
    rule_choice = [
        candidate.id
        for candidate in candidates
        if candidate.score >= RULE_CHOICE_SHARE * top and not only_title_words(candidate)
    ]
    close = [candidate for candidate in candidates if candidate.score >= AMBIGUOUS_SHARE * top]
    ambiguous = len(query.tokens) <= SHORT_QUERY_WORDS and len(close) >= 2

    add_companions(candidates, protocols)
    groups = {candidate.id: index.look_alikes.get(candidate.id, set()) for candidate in candidates}
    return RouteDecision(query=query, candidates=candidates, rule_choice=rule_choice, ambiguous=ambiguous, groups=groups)


def look_alike_map(protocols: dict[str, Protocol]) -> dict[str, set[str]]:
    """Map each protocol to the protocols it names in confusable_with or that name it."""
    groups: dict[str, set[str]] = defaultdict(set)
    for protocol in protocols.values():
        for other in protocol.meta.confusable_with:
            if other in protocols:
                groups[protocol.id].add(other)
                groups[other].add(protocol.id)
    return dict(groups)


def only_title_words(candidate: Candidate) -> bool:
    """Return whether a candidate is there only because it shares a word with the query."""
    return all(reason.startswith("title word") for reason in candidate.reasons)


def add_companions(candidates: list[Candidate], protocols: dict[str, Protocol]) -> None:
    """Append each candidate's look-alikes, so that the model is always shown confusable protocols together."""
    present = {candidate.id for candidate in candidates}
    for candidate in list(candidates):
        for other in protocols[candidate.id].meta.confusable_with:
            if other in protocols and other not in present and protocols[other].meta.status == "active":
                present.add(other)
                candidates.append(
                    Candidate(other, protocols[other].meta.title, 0.0, [f"confusable with '{candidate.id}'"], companion=True)
                )

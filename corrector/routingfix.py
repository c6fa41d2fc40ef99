"""Draft routing metadata that sends a misrouted query to the expected protocols.

The edit is chosen by trial, in memory and with the rules only. Candidate term sets come from the
query's own words that the wrongly chosen protocols do not use. For each set, the search finds the
smallest edit that routes the feedback query exactly to the expected protocols. The guard cases
(evaluation cases and example queries) are then routed with each such edit, and the edit that
breaks the fewest of them is proposed. The golden-case replay shows the final result to the reviewer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from router.choice import rule_choice
from router.evaluate import Case, evaluate
from router.lexicon import fold
from router.library import Library
from router.normalize import NormalizedQuery
from router.protocol import Protocol
from router.routing import TOKEN, RouteIndex, evaluate_rule, ngrams, route_query, term_key
from router.service import cut_query

from corrector.errors import ProposalError
from corrector.frontmatter import edit_front_matter
from corrector.workspace import library_from_texts

MAX_CANDIDATE_WORDS = 5  # query words considered; pairs of them and single words are tried
MIN_TERM_LENGTH = 3
# Words the router's stop-word list keeps but that never tell one protocol from another.
GENERIC_WORDS = frozenset(
    """after before during since while about into onto over under than then there here again other same such
    ago hour hours day days week weeks month months year years old today yesterday tonight morning evening night
    sudden suddenly acute severe mild known history started start case""".split()
)
# (weight of the new rule on the expected protocol, add a 'none' term to the wrong protocol's rules)
TRIALS = ((1.0, False), (2.0, False), (3.0, False), (1.0, True), (2.0, True), (3.0, True), (5.0, False), (5.0, True))


@dataclass
class RoutingOutcome:
    """The rules' result for one query: the chosen ids, and whether the router asks which protocol is meant."""

    chosen: list[str]
    ambiguous: bool

    def describe(self) -> str:
        if self.ambiguous:
            return "ambiguous (the router asks which protocol is meant)"
        return ", ".join(self.chosen) or "no matching protocol"


@dataclass
class RoutingDraft:
    """Edited file texts (file name -> text) and the reasoning behind them."""

    texts: dict[str, str]
    protocol_ids: list[str]
    summary: str
    analysis: list[str] = field(default_factory=list)


@dataclass
class Trial:
    """One candidate edit and its result on the feedback query."""

    terms: list[str]
    texts: dict[str, str]
    outcome: RoutingOutcome
    changes: list[str]
    broken: list[str] = field(default_factory=list)  # guard case ids that pass now and fail with the edit


@dataclass
class RoutingFailure:
    """The routing failure to fix: the query, where it should go and where it went."""

    query: str
    expected: list[str]
    wrong: list[str]
    needs_rule: list[str]  # expected protocols that the rules do not choose now
    grams: set[str]
    library: Library
    texts: dict[str, str]
    names: dict[str, str]
    guard_cases: list[Case] = field(default_factory=list)

    def none_term(self, terms: list[str], wrong_id: str) -> str:
        """Return the term that the fewest guard cases for `wrong_id` contain, so negating it costs least."""

        def uses(term: str) -> int:
            return sum(wrong_id in case.expected and term in TOKEN.findall(fold(case.query)) for case in self.guard_cases)

        return min(terms, key=uses)


def route_with_rules(
    query: str, library: Library, treat_as_active: frozenset[str] = frozenset()
) -> tuple[RoutingOutcome, NormalizedQuery, set[str]]:
    """Route a query rules-only; also return the normalised query and its n-grams.

    Protocols named in `treat_as_active` route even as drafts, so that a new draft's terms can be tried.
    """
    decision = route_query(cut_query(query).text, RouteIndex(library, treat_as_active))
    choice = [] if decision.ambiguous else rule_choice(decision).ids
    grams = ngrams(TOKEN.findall(decision.query.text))
    return RoutingOutcome(choice, decision.ambiguous), decision.query, grams


def vocabulary(protocol: Protocol) -> set[str]:
    """Return every word the router can match for a protocol: rule terms, title, aliases, drugs."""
    meta = protocol.meta
    terms = [term for rule in meta.keywords for term in (*rule.all, *rule.any)]
    terms += [meta.title, *meta.aliases, *protocol.drugs, *meta.brand_names, *meta.brand_names.values()]
    return {word for term in terms for word in term_key(term).split()}


def candidate_words(query: str, normalized: NormalizedQuery, library: Library, expected: list[str], wrong: list[str]) -> list[str]:
    """Return up to MAX_CANDIDATE_WORDS words of the query that the wrongly chosen protocols do not use.

    Only words the clinician typed count, not words that normalisation added ("temperature"
    after "temp 40"). Words that no protocol outside `expected` uses come first.
    """
    typed = set(TOKEN.findall(fold(query)))
    wrong_words = set().union(*(vocabulary(library.protocols[pid]) for pid in wrong))
    other_words = set().union(*(vocabulary(protocol) for pid, protocol in library.protocols.items() if pid not in expected))
    words = [
        token for token in dict.fromkeys(normalized.tokens)
        if token in typed and len(token) >= MIN_TERM_LENGTH and token.isalpha()
        and token not in wrong_words and token not in GENERIC_WORDS
    ]
    ranked = [word for word in words if word not in other_words] + [word for word in words if word in other_words]
    return ranked[:MAX_CANDIDATE_WORDS]


def flow_list(items: list[object]) -> CommentedSeq:
    sequence = CommentedSeq(items)
    sequence.fa.set_flow_style()
    return sequence


def add_keyword_rule(text: str, terms: list[str], weight: float) -> str:
    """Append the rule {all: terms, weight: weight} to the protocol's keywords."""

    def edit(data: CommentedMap) -> None:
        rule = CommentedMap()
        rule["all"] = flow_list(list(terms))
        if weight != 1.0:
            rule["weight"] = int(weight) if weight.is_integer() else weight
        rule.fa.set_flow_style()
        if not isinstance(data.get("keywords"), CommentedSeq):
            data["keywords"] = CommentedSeq()
        data["keywords"].append(rule)

    return edit_front_matter(text, edit)


def add_none_term(text: str, rule_indexes: list[int], term: str) -> str:
    """Add `term` to the 'none' list of each given keyword rule (0-based indexes).

    The list is replaced by a copy, so a YAML alias shared with other rules is not changed.
    """

    def edit(data: CommentedMap) -> None:
        for index in rule_indexes:
            rule = data["keywords"][index]
            current = list(rule.get("none") or [])
            if term not in current:
                rule["none"] = flow_list([*current, term])

    return edit_front_matter(text, edit)


def link_confusable(text: str, other: str) -> str:
    """Add `other` to the protocol's confusable_with list."""

    def edit(data: CommentedMap) -> None:
        current = data.get("confusable_with")
        if isinstance(current, CommentedSeq):
            if other not in current:
                current.append(other)
        else:
            data["confusable_with"] = flow_list([other])

    return edit_front_matter(text, edit)


def fired_rules(protocol: Protocol, grams: set[str]) -> list[int]:
    """Return the indexes of the protocol's keyword rules that fire on the query's n-grams."""
    return [
        index for index, rule in enumerate(protocol.meta.keywords)
        if evaluate_rule(rule.all, rule.any, rule.none, grams) is not None
    ]


def fixes(outcome: RoutingOutcome, expected: list[str]) -> bool:
    return not outcome.ambiguous and set(outcome.chosen) == set(expected)


def run_trial(failure: RoutingFailure, terms: list[str], weight: float, negate: bool) -> Trial:
    """Apply one candidate edit in memory and route the feedback query again."""
    edited = dict(failure.texts)
    changes = []
    for pid in failure.needs_rule:
        name = failure.names[pid]
        edited[name] = add_keyword_rule(edited[name], terms, weight)
        changes.append(f"{pid}: new keyword rule {{all: [{', '.join(terms)}], weight: {weight:g}}}.")
    if negate:
        for pid in failure.wrong:
            indexes = fired_rules(failure.library.protocols[pid], failure.grams)
            if indexes:
                term = failure.none_term(terms, pid)
                edited[failure.names[pid]] = add_none_term(edited[failure.names[pid]], indexes, term)
                numbers = ", ".join(str(index + 1) for index in indexes)
                changes.append(f"{pid}: none term {term!r} on keyword rule {numbers}, which fired on the query.")
            else:
                changes.append(f"{pid}: no keyword rule fired (its title, an alias or a drug matched), so no none term helps.")
    edited_library = library_from_texts(failure.library.path, edited)
    outcome, _, _ = route_with_rules(failure.query, edited_library, frozenset(failure.expected))
    return Trial(terms, edited, outcome, changes)


def smallest_fix(failure: RoutingFailure, terms: list[str]) -> Trial | None:
    """Return the first trial, from the smallest edit up, that routes the query exactly; None if none does."""
    for weight, negate in TRIALS:
        if not failure.needs_rule and not negate:
            continue
        trial = run_trial(failure, terms, weight, negate)
        if fixes(trial.outcome, failure.expected):
            return trial
    return None


def passing_cases(cases: list[Case], library: Library) -> set[str]:
    """Return the ids of the cases that pass with the rules on this library."""
    report = evaluate(cases, library, RouteIndex(library), None)
    return {result.case.id for result in report.results if result.passed}


def choose_trial(failure: RoutingFailure, words: list[str], guard_cases: list[Case]) -> tuple[Trial | None, int]:
    """Try word pairs, then single words; return the fixing trial that breaks fewest guard cases and the count tried."""
    term_sets = [list(pair) for pair in itertools.combinations(words, 2)] + [[word] for word in words]
    passing_before = passing_cases(guard_cases, failure.library) if guard_cases else set()
    best: Trial | None = None
    tried = 0
    for terms in term_sets:
        trial = smallest_fix(failure, terms)
        if trial is None:
            continue
        tried += 1
        if guard_cases:
            after = passing_cases(guard_cases, library_from_texts(failure.library.path, trial.texts))
            trial.broken = sorted(passing_before - after)
        if best is None or len(trial.broken) < len(best.broken):
            best = trial
        if not best.broken:
            break  # term sets are in order of preference, so the first harmless fix wins
    return best, tried


def draft_routing_change(
    query: str,
    expected: list[str],
    recorded_chosen: list[str],
    library: Library,
    texts: dict[str, str],
    names: dict[str, str],
    guard_cases: list[Case] | None = None,
) -> RoutingDraft:
    """Draft keyword, 'none' and confusable_with edits so that `query` routes to `expected`.

    `texts` maps file names to their current text, `names` maps protocol ids to file names, and
    `library` must already contain the expected protocols. `guard_cases` are routed for each
    candidate edit so that the proposed one breaks as few of them as possible.
    """
    before, normalized, grams = route_with_rules(query, library)
    wrong = [pid for pid in dict.fromkeys([*recorded_chosen, *before.chosen]) if pid not in expected and pid in library.protocols]
    words = candidate_words(query, normalized, library, expected, wrong)
    if not words:
        raise ProposalError(
            f"no word of the query tells {', '.join(expected)} apart from {', '.join(wrong) or 'the other protocols'}: "
            "edit the routing metadata by hand on a branch"
        )

    needs_rule = [pid for pid in expected if pid not in before.chosen or before.ambiguous]
    failure = RoutingFailure(query, expected, wrong, needs_rule, grams, library, texts, names, guard_cases or [])
    chosen, tried = choose_trial(failure, words, guard_cases or [])
    analysis = [
        f"Recorded answer used: {', '.join(recorded_chosen) or 'no protocol'}. The rules now route the query to: {before.describe()}.",
        f"Expected: {', '.join(expected)}. Candidate query terms: {', '.join(repr(word) for word in words)}.",
    ]
    if chosen is None:
        chosen = run_trial(failure, words[:2], *TRIALS[-1])
        analysis += chosen.changes
        analysis.append(
            f"No tried change routes the query exactly to {', '.join(expected)} with the rules alone "
            f"(strongest try: {chosen.outcome.describe()}); edit the proposal branch by hand before approving."
        )
    else:
        analysis += chosen.changes
        analysis.append(f"With this change the rules route the query to: {chosen.outcome.describe()}.")
        if guard_cases:
            analysis.append(
                f"Of {tried} changes that fix the query, this one breaks the fewest of {len(guard_cases)} evaluation cases "
                f"and example queries with the rules: {len(chosen.broken)}" + (f" ({', '.join(chosen.broken)})." if chosen.broken else ".")
            )

    final = link_pairs(dict(chosen.texts), names, expected, wrong, library, analysis)
    changed = {name: text for name, text in final.items() if text != texts.get(name)}
    summary = f"Route to {', '.join(expected)}" + (f" instead of {', '.join(wrong)}" if wrong else "")
    protocol_ids = [pid for pid, name in names.items() if name in changed]
    return RoutingDraft(texts=changed, protocol_ids=protocol_ids, summary=summary, analysis=analysis)


def link_pairs(
    texts: dict[str, str], names: dict[str, str], expected: list[str], wrong: list[str], library: Library, analysis: list[str]
) -> dict[str, str]:
    """List each expected and wrongly chosen protocol in the other's confusable_with, both ways."""
    for right in expected:
        for other in wrong:
            linked = False
            if other not in library.protocols[right].meta.confusable_with:
                texts[names[right]] = link_confusable(texts[names[right]], other)
                linked = True
            if right not in library.protocols[other].meta.confusable_with:
                texts[names[other]] = link_confusable(texts[names[other]], right)
                linked = True
            if linked:
                analysis.append(f"{right} and {other} now list each other in confusable_with, so the model sees both.")
    return texts

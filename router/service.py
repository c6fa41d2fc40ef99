"""Answer one query end to end: cut, route, choose, answer, cite and record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from router.answer import (
    NO_MATCH_TEXT,
    Citation,
    cite,
    contraindicated_mentions,
    generate_answer,
    is_degenerate,
    unknown_citations,
    unverified_doses,
)
from router.audit import AnswerRecord, save_record
from router.choice import ChatModel, Choice, choose_protocols, rule_choice
from router.library import Library
from router.model import ModelInfo
from router.protocol import Protocol
from router.routing import RouteDecision, RouteIndex, route_query

MAX_QUERY_CHARS = 2000  # about 500 tokens: longer queries keep their end, where the question is


@dataclass
class CutQuery:
    """A query as routed, and how much of its beginning was cut."""

    text: str
    cut_chars: int

    @property
    def notice(self) -> str | None:
        if not self.cut_chars:
            return None
        return f"the query was {self.cut_chars + len(self.text)} characters long: the first {self.cut_chars} were cut and only the last {len(self.text)} were used"


@dataclass
class AskResult:
    """The result of `protocol ask`: the stored record, the route, the choice and the citations."""

    record: AnswerRecord
    decision: RouteDecision
    choice: Choice
    citations: list[Citation]
    key_actions: dict[str, str] = field(default_factory=dict)  # id -> verbatim section text
    ambiguous: bool = False


def cut_query(raw: str, limit: int = MAX_QUERY_CHARS) -> CutQuery:
    """Keep the last `limit` characters of a long query, starting at a word boundary."""
    if len(raw) <= limit:
        return CutQuery(raw, 0)
    tail = raw[-limit:]
    space = tail.find(" ")
    if 0 <= space < 200:
        tail = tail[space + 1 :]
    return CutQuery(tail, len(raw) - len(tail))


def ask(
    raw: str,
    library: Library,
    index: RouteIndex,
    model: ChatModel | None,
    model_info: ModelInfo | None,
    *,
    write_answer: bool = True,
    on_text: Callable[[str], None] | None = None,
) -> AskResult:
    """Route a query, let the model choose, answer from the chosen protocols and save a record.

    With `model=None` the rule result is used and no answer is written. Side effect: one row
    is added to the audit database.
    """
    query = cut_query(raw)
    decision, choice = route_and_choose(query.text, library, index, model)
    warnings = [note for note in (query.notice, choice.notice) if note]

    protocols = [library.get(protocol_id) for protocol_id in choice.ids]
    citations = cite(protocols, library)
    answer_text = compose_answer(decision, protocols, model, query.text, write_answer, on_text)
    if protocols and answer_text and is_degenerate(answer_text):
        warnings.append("the model's answer repeats itself and is unusable: read the key actions printed from the protocol")
    warnings += answer_warnings(answer_text, protocols, index)
    warnings += library_warnings(library, protocols, decision)

    record = AnswerRecord(
        query=raw,
        query_cut=bool(query.cut_chars),
        library_path=str(library.path.resolve()),
        library_commit=library.git.commit if library.git else None,
        candidates=[candidate.to_json() for candidate in decision.candidates],
        chosen=choice.ids,
        choice_source=choice.source,
        choice_notice=choice.notice,
        citations=[citation.to_json() for citation in citations],
        model_path=str(model_info.path) if model_info else None,
        model_sha256=model_info.sha256 if model_info else None,
        answer=answer_text,
        no_match=not protocols and not decision.ambiguous,
        warnings=warnings,
    )
    save_record(record)
    return AskResult(
        record=record,
        decision=decision,
        choice=choice,
        citations=citations,
        key_actions={protocol.id: protocol.key_actions_text for protocol in protocols},
        ambiguous=decision.ambiguous,
    )


def route_and_choose(text: str, library: Library, index: RouteIndex, model: ChatModel | None) -> tuple[RouteDecision, Choice]:
    """Pre-filter the library, then let the model choose; the rules decide when model is None."""
    decision = route_query(text, index)
    if decision.ambiguous:
        return decision, Choice(ids=[], source="none")
    if model is None:
        return decision, rule_choice(decision)
    return decision, choose_protocols(model, text, decision, library)


def compose_answer(
    decision: RouteDecision,
    protocols: list[Protocol],
    model: ChatModel | None,
    query_text: str,
    write_answer: bool,
    on_text: Callable[[str], None] | None,
) -> str:
    """Return the answer text: a question back, the no-match text, or the model's answer."""
    if decision.ambiguous:
        names = ", ".join(candidate.id for candidate in decision.candidates)
        return f"This query fits several protocols ({names}). Which one do you mean? Add the findings that tell them apart."
    if not protocols:
        return NO_MATCH_TEXT
    if model is None or not write_answer:
        return ""
    return generate_answer(model, query_text, protocols, on_text)


def answer_warnings(answer_text: str, protocols: list[Protocol], index: RouteIndex) -> list[str]:
    """Check the model's answer against the cited protocols: doses, citations and contraindicated drugs."""
    if not protocols or not answer_text:
        return []
    warnings = []
    doses = unverified_doses(answer_text, protocols)
    if doses:
        warnings.append(f"dose not found in the cited protocols, check before use: {', '.join(doses)}")
    citations = unknown_citations(answer_text, protocols)
    if citations:
        warnings.append(f"the answer cites something that is not a protocol it was given: {', '.join(citations)}")
    drugs = contraindicated_mentions(answer_text, protocols, set(index.drugs))
    if drugs:
        warnings.append(
            "the answer mentions a drug that the protocol lists under contraindications, "
            f"check the key actions: {', '.join(drugs)}"
        )
    return warnings


def library_warnings(library: Library, protocols: list[Protocol], decision: RouteDecision) -> list[str]:
    """Warn about what the library state means for this answer: git, review dates, left-out files."""
    warnings = []
    if library.git is None and protocols:
        warnings.append("the library is not in git, so this answer cannot be traced to a commit")
    today = dt.date.today()
    for protocol in protocols:
        if protocol.meta.review_due < today:
            warnings.append(f"{protocol.id} was due for review on {protocol.meta.review_due}: check it is still current")
    if not protocols and not decision.ambiguous and library.errors:
        warnings.append(
            f"{len(library.errors)} problems kept some protocol files out of the library, so a matching "
            "protocol may be among them: run 'protocol check'"
        )
    return warnings

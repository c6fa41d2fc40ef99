"""Probe one query: route it, then rerun the choice and the answer under domain perturbations."""

from __future__ import annotations

from pathlib import Path

from probe.inject import Perturbation
from probe.loading import LanguageModel, load_language_model
from probe.result import ProbeResult, StepResult
from probe.settings import ProbeSettings, load_settings
from probe.steps import run_answer_step, run_choice_step
from probe.vectors import PerturbationVector, domain_vectors, random_controls
from router import audit
from router.library import Library
from router.model import resolve_model
from router.routing import RouteDecision, RouteIndex, route_query
from router.service import cut_query


def probe_vectors(
    language_model: LanguageModel, library: Library, target_id: str, settings: ProbeSettings, with_control: bool
) -> list[PerturbationVector]:
    """Return the domain vectors for a target protocol, followed by as many random controls if asked."""
    vectors = domain_vectors(language_model, library, target_id, settings.layer, settings.vector_kind, settings.max_vectors)
    return vectors + random_controls(vectors, settings.seed) if with_control else vectors


def at_strength(vectors: list[PerturbationVector], strength: float) -> list[Perturbation]:
    return [Perturbation(vector, strength) for vector in vectors]


def top_candidate(decision: RouteDecision) -> str:
    return next(candidate.id for candidate in decision.candidates if not candidate.companion)


def probe_answer(
    query: str,
    library: Library,
    *,
    index: RouteIndex | None = None,
    model: str | Path | None = None,
    settings: ProbeSettings | None = None,
    language_model: LanguageModel | None = None,
    with_control: bool = False,
    served_choice: list[str] | None = None,
) -> ProbeResult:
    """Probe the routing choice and the answer for one query under the configured perturbation.

    The torch copy of the model makes its own baseline choice and answer, and each perturbed
    run is compared with that baseline. `served_choice`, the ids that the answer shown to the
    user was based on, only adds a notice when the torch baseline chose differently.
    Loads the model in torch on first use (about 3.4 GB of memory for the default model).
    """
    settings = settings or load_settings()
    language_model = language_model or load_language_model(resolve_model(model))
    language_model.layer(settings.layer)
    cut = cut_query(query)
    result = ProbeResult(query=query, probed=False, settings=settings, model_sha256=language_model.sha256)
    if cut.notice:
        result.notices.append(cut.notice)

    decision = route_query(cut.text, index or RouteIndex(library))
    result.notices.extend(decision.query.notes)
    if decision.no_match or decision.ambiguous:
        reason = "no protocol matches" if decision.no_match else "the query fits several protocols and the router asks back"
        result.notices.append(f"nothing to probe: {reason}, so the reply is fixed text that no model wrote")
        return result

    top = top_candidate(decision)
    vectors = probe_vectors(language_model, library, top, settings, with_control)
    if not vectors:
        result.notices.append(f"nothing to probe: {top!r} has no look-alike and no other protocol to build a vector from")
        return result

    result.probed = True
    choice, chosen = run_choice_step(
        language_model, library, cut.text, decision.candidates, at_strength(vectors, settings.strength), settings.choice_tokens
    )
    add_step(result, choice)
    note_served_choice(result, chosen, served_choice)
    if not chosen:
        result.notices.append("the model chose no protocol, so the answer is the fixed no-match text; only the choice was probed")
        return result

    if chosen[0] != top:
        vectors = probe_vectors(language_model, library, chosen[0], settings, with_control)
    protocols = [library.get(protocol_id) for protocol_id in chosen]
    answer, _ = run_answer_step(
        language_model, library, cut.text, protocols, at_strength(vectors, settings.strength), settings.answer_tokens
    )
    add_step(result, answer)
    result.notices.append(
        f"the probe compares only the first {settings.answer_tokens} tokens of each answer, so its texts can stop mid-sentence"
    )
    return result


def add_step(result: ProbeResult, step: StepResult) -> None:
    result.steps.append(step)
    if step.notice:
        result.notices.append(step.notice)


def note_served_choice(result: ProbeResult, chosen: tuple[str, ...], served_choice: list[str] | None) -> None:
    if served_choice is not None and set(served_choice) != set(chosen):
        result.notices.append(
            f"the torch copy of the model chose {list(chosen) or 'none'}, but the answer shown was based on "
            f"{served_choice or 'none'}: the probe tested the torch copy's choice"
        )


def record_probe(answer_id: str, result: ProbeResult) -> None:
    """Store the probe result in the audit record of an answer."""
    audit.update_probe(answer_id, result.to_json())

"""Command-line presentation: sessions, JSON shapes and rich rendering on injected consoles."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
from rich.console import Console
from rich.markup import escape

from rich.progress import Progress

from router import audit
from router.console import print_json
from router.evaluate import CaseResult, EvalReport, evaluate, load_cases
from router.errors import LibraryError, Problem, RouterError
from router.library import STARTER_LIBRARY, Library, check_file, load_library, protocol_files
from router.normalize import CONTROL
from router.model import ModelInfo, install_default_model, load_llama, resolve_model
from router.protocol import Protocol
from router.routing import RouteDecision, RouteIndex, load_index, route_query
from router.service import AskResult, ask, cut_query

__all__ = ["load_library", "resolve_model"]

DEMONSTRATION_NOTICE = "Demonstration content: a clinical team must review this protocol before clinical use."


@dataclass
class Session:
    """A loaded library, its route index and the model for one command."""

    library: Library
    index: RouteIndex
    model_info: ModelInfo | None
    model: Any | None


def load_for_reading(option: Path | str | None, err: Console) -> Library:
    """Load a library and warn on stderr about files left out and a library outside git."""
    library = load_library(option)
    if library.errors:
        err.print(f"Warning: {len(library.errors)} problems in the library; files with errors were left out ('protocol check' lists them).")
    if library.git is None:
        err.print("Warning: the library is not in a git repository, so answers cannot be traced to a commit.")
    elif library.git.branch is None:
        err.print(f"Warning: the library's repository has a detached HEAD: protocols are read as of commit {library.git.commit[:12]}.")
    if not library.protocols:
        raise LibraryError(f"no valid protocol in {library.path}: run 'protocol check {library.path}'", library.errors)
    return library


def open_session(library_option: Path | None, model_option: Path | None, err: Console, with_model: bool = True) -> Session:
    """Load the library and index; with_model also verifies and loads the model."""
    library = load_for_reading(library_option, err)
    index = load_index(library)
    if not with_model:
        return Session(library, index, None, None)
    info = resolve_model(model_option)
    return Session(library, index, info, load_llama(info))


def run_ask(session: Session, raw: str, write_answer: bool, on_text: Callable[[str], None] | None) -> AskResult:
    return ask(raw, session.library, session.index, session.model, session.model_info, write_answer=write_answer, on_text=on_text)


def run_route(session: Session, raw: str) -> RouteDecision:
    """Route a query as `ask` would, noting when its beginning was cut."""
    query = cut_query(raw)
    decision = route_query(query.text, session.index)
    if query.notice:
        decision.query.notes.insert(0, query.notice)
    return decision


def streamer(out: Console) -> Callable[[str], None]:
    """Return a callback that writes streamed text to stdout as it arrives, unchanged."""

    def write(text: str) -> None:
        out.file.write(text)
        out.file.flush()

    return write


def ask_json(result: AskResult) -> dict[str, Any]:
    data = result.record.to_json()
    data["ambiguous"] = result.ambiguous
    data["key_actions"] = result.key_actions
    data["notes"] = result.decision.query.notes
    data["negated"] = result.decision.query.negated
    return data


def print_ask(result: AskResult, session: Session, out: Console, err: Console, streamed: bool) -> None:
    """Print an answer: the streamed text, citations, key actions verbatim, then warnings."""
    record = result.record
    for note in result.decision.query.notes:
        err.print(f"Note: {escape(note)}")
    if result.ambiguous:
        out.print(escape(record.answer))
        for candidate in result.decision.candidates:
            out.print(f"  - {candidate.id}: {escape(candidate.title)}")
    elif record.no_match:
        out.print(escape(record.answer))
    else:
        if streamed:
            out.print()
        elif record.answer:
            out.print(escape(record.answer))
        print_citations(result, session, out)
    for warning in record.warnings:
        err.print(f"Warning: {escape(warning)}")
    out.print(f"\nAnswer id: {record.id}")


def print_citations(result: AskResult, session: Session, out: Console) -> None:
    for citation in result.citations:
        protocol = session.library.get(citation.id)
        out.print(f"\nProtocol: {escape(citation.label())} - {escape(citation.title)}")
        if protocol.meta.demonstration:
            out.print(DEMONSTRATION_NOTICE)
        out.print(f"Key actions, verbatim from {escape(citation.path)}:")
        out.print(escape(result.key_actions[citation.id]))


def route_json(decision: RouteDecision) -> dict[str, Any]:
    return {
        "candidates": [candidate.to_json() for candidate in decision.candidates],
        "rule_choice": decision.rule_choice,
        "ambiguous": decision.ambiguous,
        "no_match": decision.no_match,
        "normalized": decision.query.text,
        "negated": decision.query.negated,
        "notes": decision.query.notes,
        "expansions": [list(item) for item in decision.query.expansions],
    }


def print_route(decision: RouteDecision, out: Console) -> None:
    for note in decision.query.notes:
        out.print(f"Note: {escape(note)}")
    if decision.query.negated:
        out.print("Negated, not used as evidence: " + escape(", ".join(decision.query.negated)))
    if decision.no_match:
        out.print("No matching protocol.")
        return
    if decision.ambiguous:
        out.print("Ambiguous: the query fits several protocols; add the findings that tell them apart.")
    for candidate in decision.candidates:
        label = "look-alike" if candidate.companion else f"{candidate.score:5.2f}"
        out.print(f"{label}  {candidate.id}  ({escape(candidate.title)})")
        for reason in candidate.reasons:
            out.print(f"        {escape(reason)}")
    out.print("Rule result: " + (", ".join(decision.rule_choice) or "none"))


def protocol_summary(protocol: Protocol, library: Library) -> dict[str, Any]:
    meta = protocol.meta
    return {
        "id": meta.id,
        "title": meta.title,
        "version": meta.version,
        "status": meta.status,
        "review_due": str(meta.review_due),
        "path": protocol.path,
        "commit": library.commit_of(protocol.id),
        "blob_sha": protocol.blob_sha,
    }


def protocol_detail(protocol: Protocol, library: Library) -> dict[str, Any]:
    data = protocol_summary(protocol, library)
    data["meta"] = protocol.meta.model_dump(mode="json")
    data["body"] = protocol.body
    data["key_actions"] = [action.model_dump() for action in protocol.key_actions]
    return data


def print_protocol(protocol: Protocol, library: Library, out: Console) -> None:
    meta = protocol.meta
    commit = library.commit_of(protocol.id)
    out.print(f"{meta.id}@{meta.version}  {escape(meta.title)}")
    out.print(f"status {meta.status}, owner {escape(meta.owner)}, last reviewed {meta.last_reviewed}, review due {meta.review_due}")
    out.print(f"file {escape(protocol.path)}, commit {commit or 'uncommitted'}")
    if meta.demonstration:
        out.print(DEMONSTRATION_NOTICE)
    out.print("Sources:")
    for source in meta.sources:
        locator = source.doi and f"doi:{source.doi}" or source.url
        out.print(f"  - {escape(source.title)} ({escape(str(locator))}; licence: {escape(source.licence)})")
    out.print()
    out.print(escape(protocol.body))


def problem_json(problem: Problem) -> dict[str, Any]:
    return {"path": problem.path, "line": problem.line, "message": problem.message, "severity": problem.severity}


def load_for_check(path: Path | None, library: str | Path | None) -> Library:
    """Load what `protocol check` validates: one protocol file among its folder, or a whole library."""
    if path is not None and not path.is_dir() and (path.exists() or path.suffix == ".md"):
        return check_file(path)
    return load_library(path or library)


def counted(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def valid_protocols(library: Library) -> int:
    """Count the protocols read whose file has no error, such as a link to an unknown id."""
    failed = {problem.path for problem in library.errors}
    return sum(protocol.path not in failed for protocol in library.protocols.values())


def check_summary(library: Library) -> str:
    errors = len(library.errors)
    warnings = len(library.problems) - errors
    return f"{counted(valid_protocols(library), 'protocol')} valid, {counted(errors, 'error')}, {counted(warnings, 'warning')}"


def check_json(library: Library) -> dict[str, Any]:
    return {
        "ok": not library.errors,
        "protocols": valid_protocols(library),
        "problems": [problem_json(problem) for problem in library.problems],
    }


def recent(limit: int) -> list[audit.AnswerRecord]:
    return audit.recent_records(limit)


def print_log(records: list[audit.AnswerRecord], out: Console) -> None:
    if not records:
        out.print("No answers recorded yet.")
        return
    for record in records:
        chosen = ", ".join(record.chosen) or ("no matching protocol" if record.no_match else "asked which protocol")
        query = " ".join(printable(record.query).split())
        short = query if len(query) <= 70 else query[:67] + "..."
        out.print(f"{record.id}  {record.created_at}  {chosen}  {escape(short)}")


def printable(text: str) -> str:
    """Replace control characters (terminal escapes, NUL) so stored text cannot drive the terminal."""
    return CONTROL.sub("\ufffd", text)


def init_library(directory: Path) -> dict[str, Any]:
    """Create a git repository at `directory` whose first commit is the starter library."""
    target = directory.expanduser()
    if target.exists() and not target.is_dir():
        raise RouterError(f"{target} exists and is not a folder: choose a new folder")
    if target.exists() and any(target.iterdir()):
        raise RouterError(f"{target} already exists and is not empty: choose a new folder")
    target.mkdir(parents=True, exist_ok=True)
    for path in [*protocol_files(STARTER_LIBRARY), STARTER_LIBRARY / "README.md"]:
        if path.exists():
            shutil.copy2(path, target / path.name)

    repo = git.Repo.init(target, initial_branch="main")
    repo.index.add([path.name for path in sorted(target.iterdir()) if path.is_file()])
    author = git.Actor("protocol-router", "protocol-router@localhost")
    commit = repo.index.commit("Start the library from the protocol-router starter library", author=author, committer=author)
    return {"path": str(target), "commit": commit.hexsha, "protocols": len(protocol_files(target))}


def install_model(force: bool) -> ModelInfo:
    return install_default_model(force)


def print_model(info: ModelInfo, out: Console, json_output: bool) -> None:
    data = {"name": info.name, "path": str(info.path), "source": info.source, "sha256": info.sha256, "size": info.size}
    if json_output:
        print_json(out, data)
        return
    out.print(f"model:  {info.name} ({info.source})")
    out.print(f"path:   {info.path}")
    out.print(f"sha256: {info.sha256}")
    out.print(f"size:   {info.size} bytes ({info.size / 2**20:.0f} MiB)")


def run_eval(session: Session, cases_path: Path, err: Console, show_progress: bool) -> EvalReport:
    """Evaluate a case file, with a progress bar on a terminal."""
    cases = load_cases(cases_path, session.library)
    with Progress(console=err, transient=True, disable=not (show_progress and err.is_terminal)) as progress:
        task = progress.add_task("routing cases", total=len(cases))

        def advance(_: CaseResult) -> None:
            progress.advance(task)

        return evaluate(cases, session.library, session.index, session.model, on_case=advance)


def eval_json(report: EvalReport) -> dict[str, Any]:
    return {"cases": [result.to_json() for result in report.results], "totals": report.totals, "per_tag": report.per_tag}


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def print_eval(report: EvalReport, out: Console) -> None:
    for result in report.results:
        mark = "PASS" if result.passed else "FAIL"
        chosen = "ambiguous" if result.ambiguous else ", ".join(result.chosen) or "no match"
        expected = "ambiguous" if result.case.ambiguous else ", ".join(result.case.expected) or "no match"
        line = f"{mark}  {result.case.id}  chosen: {chosen}  expected: {expected}"
        if result.violations:
            line += f"  FORBIDDEN: {', '.join(result.violations)}"
        out.print(escape(line))
    totals = report.totals
    out.print()
    out.print(f"cases {totals['cases']}, passed {totals['passed']}")
    out.print(f"exact-set accuracy   {percent(totals['exact_accuracy'])}")
    out.print(f"top-1 accuracy       {percent(totals['top1_accuracy'])}")
    out.print(f"recall of expected   {percent(totals['expected_recall'])}")
    out.print(f"no-match precision   {percent(totals['no_match_precision'])}")
    out.print(f"no-match recall      {percent(totals['no_match_recall'])}")
    out.print(f"forbidden violations {totals['forbidden_violations']}")
    out.print(f"model fallbacks      {totals['model_fallbacks']}")
    out.print("per tag:")
    for tag, group in report.per_tag.items():
        out.print(f"  {escape(tag)}: {group['passed']}/{group['cases']} passed, exact {percent(group['exact_accuracy'])}")

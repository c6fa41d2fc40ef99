"""Record a clinician's feedback on a recorded answer, checked against the answer and the library."""

from __future__ import annotations

from pathlib import Path

from router.audit import AnswerRecord, get_record
from router.errors import LibraryError
from router.library import Library, load_library
from router.protocol import SAFE_ID

from corrector.errors import FeedbackError
from corrector.store import FEEDBACK_KINDS, Feedback, FeedbackKind, save_feedback
from corrector.workspace import choose_library


def split_ids(values: list[str] | None) -> list[str]:
    """Accept ids given as repeated options or comma-separated, without repeats."""
    ids = [item.strip() for value in values or [] for item in value.split(",")]
    return list(dict.fromkeys(item for item in ids if item))


def library_for_answer(record: AnswerRecord, option: Path | str | None) -> Library:
    """Load the library to check feedback against: --library, PROTOCOL_LIBRARY, else the answer's own."""
    folder = choose_library(option, record.library_path)
    try:
        return load_library(folder)
    except LibraryError as error:
        raise FeedbackError(f"cannot check the feedback against the library {folder}: {error}") from None


def check_expected(kind: FeedbackKind, expected: list[str], record: AnswerRecord, library: Library) -> list[str]:
    """Return the expected ids for this kind of feedback, or raise FeedbackError naming the fix."""
    known = ", ".join(sorted(library.protocols)) or "none"
    if kind == "missing-protocol":
        if len(expected) != 1:
            raise FeedbackError("missing-protocol feedback needs exactly one --expected id: the id for the new protocol")
        if not SAFE_ID.match(expected[0]):
            raise FeedbackError(f"{expected[0]!r} is not a valid protocol id: use lower-case letters, digits and hyphens")
        if expected[0] in library.protocols:
            raise FeedbackError(f"protocol {expected[0]!r} already exists: use --kind wrong-protocol or wrong-content")
        return expected

    if kind == "wrong-content" and not expected:
        expected = list(record.chosen)
    if not expected:
        raise FeedbackError(f"{kind} feedback needs --expected: the protocol ids the answer should have used ({known})")
    unknown = [item for item in expected if item not in library.protocols]
    if unknown:
        raise FeedbackError(f"unknown protocol ids {unknown} in --expected; known ids: {known}")
    if kind == "wrong-protocol" and set(expected) == set(record.chosen):
        raise FeedbackError(
            f"the answer already used {', '.join(expected)}: if its text was wrong, use --kind wrong-content"
        )
    return expected


def record_feedback(
    answer_id: str,
    kind: str,
    expected: list[str] | None,
    comment: str,
    author: str | None = None,
    library_option: Path | str | None = None,
) -> Feedback:
    """Check and store feedback on a recorded answer. Side effect: one row in the audit database."""
    if kind not in FEEDBACK_KINDS:
        raise FeedbackError(f"unknown feedback kind {kind!r}: use one of {', '.join(FEEDBACK_KINDS)}")
    record = get_record(answer_id)
    library = library_for_answer(record, library_option)
    ids = check_expected(kind, split_ids(expected), record, library)  # type: ignore[arg-type]
    comment = comment.strip()
    if kind == "wrong-content" and not comment:
        raise FeedbackError("wrong-content feedback needs --comment: say what the answer got wrong and what is right")

    feedback = Feedback(answer_id=record.id, kind=kind, expected=ids, comment=comment, author=author or None)  # type: ignore[arg-type]
    save_feedback(feedback)
    return feedback

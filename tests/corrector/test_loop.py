"""The whole loop on a real git repository: a wrong answer, feedback, a proposal, replay, approval, a right answer."""

from __future__ import annotations

import datetime as dt

import git

from router.library import load_library
from router.routing import RouteIndex
from router.service import route_and_choose
from tests.corrector.conftest import MISROUTED_QUERY, answer, invoke_json, record_feedback, repo_state, write_cases


def test_loop_wrong_answer_to_approved_fix(library, tmp_path):
    cases = write_cases(
        tmp_path / "cases.jsonl",
        [
            {"id": "alpha-fever", "query": "high fever on a hot day", "expected": ["alpha"]},
            {"id": "beta-tick", "query": "tick bite on the leg", "expected": ["beta"]},
            {"id": "beta-hiking-rash", "query": "rash after hiking, now a fever", "expected": ["beta"]},
        ],
    )
    before_eval = invoke_json("eval", str(cases), "--library", str(library), "--rules-only")
    assert before_eval["totals"]["passed"] == 2

    record = answer(library, MISROUTED_QUERY)
    assert record.chosen == ["alpha"]
    feedback_id = record_feedback(record.id, "beta", comment="rash after hiking is a tick-borne illness")

    state_before = repo_state(library)
    head_before = git.Repo(library).head.commit.hexsha
    proposal = invoke_json("propose", feedback_id, "--library", str(library), "--cases", str(cases))
    assert repo_state(library).files == state_before.files  # the working tree is untouched
    assert repo_state(library).index == state_before.index  # and so is the index
    assert git.Repo(library).head.commit.hexsha == head_before

    assert proposal["branch"].startswith(f"proposal/{proposal['proposal_id']}-")
    assert proposal["paths"] == ["alpha.md", "beta.md"]
    tip = git.Repo(library).commit(proposal["branch"])
    assert tip.parents[0].hexsha == head_before
    assert f"Feedback: {feedback_id}" in tip.message
    assert "- Expected: beta. Candidate query terms: 'rash', 'hiking', 'woods'." in tip.message
    assert "- beta: new keyword rule {all: [rash, hiking], weight: 2}." in tip.message

    changes = {case["id"]: case["change"] for case in proposal["replay"]["cases"]}
    assert changes[f"feedback:{feedback_id}"] == "fixed"
    assert changes["beta-hiking-rash"] == "fixed"
    assert changes["alpha-fever"] == "unchanged"
    assert changes["example:alpha:1"] == "unchanged"
    assert proposal["replay"]["counts"]["broken"] == 0
    assert proposal["replay"]["totals_before"]["passed"] + 2 == proposal["replay"]["totals_after"]["passed"]

    review = invoke_json("review", proposal["proposal_id"], "--cases", str(cases))
    assert "+  - {all: [rash, hiking], weight: 2}" in review["diff"]
    assert review["feedback"]["comment"] == "rash after hiking is a tick-borne illness"
    assert review["flags"] == []

    approval = invoke_json("approve", proposal["proposal_id"], "--yes", "--cases", str(cases))
    repo = git.Repo(library)
    merge = repo.head.commit
    assert merge.hexsha == approval["merge_commit"]
    assert [parent.hexsha for parent in merge.parents] == [head_before, tip.hexsha]
    assert f"Feedback: {feedback_id}" in merge.message
    assert "Reviewed-by: " in merge.message
    assert approval["versions"] == {"alpha": {"before": "1.0", "after": "1.1"}, "beta": {"before": "1.0", "after": "1.1"}}
    assert repo.git.status("--porcelain") == ""
    assert proposal["branch"] not in [head.name for head in repo.heads]
    assert approval["branch"] == proposal["branch"].replace("proposal/", "approved/", 1)

    shown = invoke_json("review", proposal["proposal_id"])
    assert shown["status"] == "approved"
    assert "+  - {all: [rash, hiking], weight: 2}" in shown["diff"]
    assert shown["merge_commit"] == merge.hexsha

    reloaded = load_library(library)
    beta = reloaded.get("beta")
    assert beta.meta.version == "1.1"
    assert beta.meta.last_reviewed == dt.date.today()
    assert beta.meta.approved_by
    assert reloaded.uncommitted == set()
    _, choice = route_and_choose(MISROUTED_QUERY, reloaded, RouteIndex(reloaded), None)
    assert choice.ids == ["beta"]

    after_eval = invoke_json("eval", str(cases), "--library", str(library), "--rules-only")
    assert after_eval["totals"]["passed"] == 3
    assert [case["passed"] for case in after_eval["cases"]] == [True, True, True]


def test_review_lists_pending_then_nothing(library):
    record = answer(library, MISROUTED_QUERY)
    proposal = invoke_json("propose", record_feedback(record.id, "beta"), "--library", str(library))
    listed = invoke_json("review")
    assert [item["proposal_id"] for item in listed] == [proposal["proposal_id"]]

    invoke_json("approve", proposal["proposal_id"], "--yes")
    assert invoke_json("review") == []
    assert [item["status"] for item in invoke_json("review", "--all")] == ["approved"]

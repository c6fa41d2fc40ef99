"""Tests of the checks run on the model's answer before it is shown."""

from __future__ import annotations

from router.answer import contraindicated_mentions, is_degenerate, unknown_citations, unverified_doses
from router.library import load_library
from tests.conftest import STARTER


def starter(protocol_id: str):
    return load_library(STARTER).protocols[protocol_id]


def test_repeated_citation_is_degenerate():
    assert is_degenerate("[anaphylaxis@1.0] " * 32)
    assert not is_degenerate("Give adrenaline 500 micrograms IM into the thigh [anaphylaxis@1.0].")


def test_unknown_citations_listed():
    protocol = starter("heat-stroke")
    answer = f"Cool first [heat-stroke@{protocol.meta.version}]. The adjunct is [dantrolene@1.0]."
    assert unknown_citations(answer, [protocol]) == ["[dantrolene@1.0]"]


def test_contraindicated_drug_mention_flagged():
    protocol = starter("heat-stroke")
    assert contraindicated_mentions("Give dantrolene as an adjunct.", [protocol], {"dantrolene"}) == ["dantrolene (heat-stroke)"]
    assert contraindicated_mentions("Cold-water immersion first.", [protocol], {"dantrolene"}) == []


def test_dose_not_in_protocol_flagged():
    protocol = starter("malignant-hyperthermia")
    assert unverified_doses("Give dantrolene 2.5 mg/kg IV.", [protocol]) == []
    assert unverified_doses("Give dantrolene 10 mg/kg IV now.", [protocol]) == []  # the protocol names 10 mg/kg as the usual maximum
    assert unverified_doses("Give dantrolene 25 mg/kg IV.", [protocol]) == ["25 mg/kg"]

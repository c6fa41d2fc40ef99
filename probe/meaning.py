"""Read the meaning of an answer: the chosen protocol ids, the key drugs and actions, the first dose.

Two answers mean the same when these agree, whatever their wording. Terms are matched as whole
words against the library's drugs and brand names and a fixed table of common synonyms, drug
classes and key actions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from router.answer import DOSE, dose_key
from router.library import Library

# "drug" and "action" terms carry an answer's meaning and are compared; "support" terms (stopping
# the trigger, oxygen, fluids, drugs named only to be stopped or avoided) are read for calibration
# labels but not compared, because answers list them in varying order and number.
TermKind = Literal["drug", "action", "support"]

# Canonical name -> kind and spellings. Class members map to the class that the protocols name
# ("lorazepam" -> "benzodiazepine"), so naming another member of the class is not a change.
KNOWN_TERMS: dict[str, tuple[TermKind, tuple[str, ...]]] = {
    "adrenaline": ("drug", ("adrenaline", "epinephrine", "epipen", "epi-pen")),
    "benzodiazepine": ("drug", ("benzodiazepine", "benzodiazepines", "benzo", "benzos", "lorazepam", "diazepam", "midazolam", "clonazepam")),
    "dantrolene": ("drug", ("dantrolene", "dantrolene sodium")),
    "bromocriptine": ("drug", ("bromocriptine",)),
    "amantadine": ("drug", ("amantadine",)),
    "cyproheptadine": ("drug", ("cyproheptadine", "periactin")),
    "antihistamine": ("drug", ("antihistamine", "antihistamines", "diphenhydramine", "chlorphenamine", "chlorpheniramine", "cetirizine", "loratadine", "promethazine", "benadryl")),
    "corticosteroid": ("drug", ("corticosteroid", "corticosteroids", "steroid", "steroids", "hydrocortisone", "methylprednisolone", "prednisolone", "prednisone", "dexamethasone")),
    "antipyretic": ("drug", ("antipyretic", "antipyretics", "paracetamol", "acetaminophen", "ibuprofen", "aspirin", "nsaid", "nsaids", "tylenol")),
    "non-depolarising neuromuscular blocker": ("drug", ("non-depolarising neuromuscular blocker", "non-depolarizing neuromuscular blocker", "non-depolarising agent", "non-depolarizing agent", "rocuronium", "vecuronium", "cisatracurium", "atracurium")),
    "succinylcholine": ("support", ("succinylcholine", "suxamethonium")),
    "antipsychotic": ("support", ("antipsychotic", "antipsychotics", "neuroleptic", "neuroleptics", "haloperidol", "olanzapine", "risperidone", "quetiapine", "chlorpromazine")),
    "salbutamol": ("drug", ("salbutamol", "albuterol")),
    "alpha-blocker": ("drug", ("alpha-blocker", "alpha blocker", "alpha-blockers", "alpha blockers", "alpha-adrenergic blocker", "phenoxybenzamine", "doxazosin", "prazosin", "phentolamine")),
    "beta-blocker": ("drug", ("beta-blocker", "beta blocker", "beta-blockers", "beta blockers", "propranolol", "metoprolol", "atenolol", "bisoprolol", "labetalol", "esmolol")),
    "vitamin k": ("drug", ("vitamin k", "phytomenadione", "phytonadione")),
    "calcium-channel blocker": ("support", ("calcium-channel blocker", "calcium channel blocker", "verapamil", "diltiazem")),
    "cooling": ("action", ("cooling", "cool", "cooled", "cold water", "cold-water", "ice", "iced", "immersion", "evaporative", "fanning", "tepid")),
    "stop trigger": ("support", ("stop", "stopping", "discontinue", "discontinuing", "withdraw", "withdrawing", "cease")),
    "fluids": ("support", ("iv fluids", "intravenous fluids", "fluid resuscitation", "fluids", "crystalloid", "saline")),
    "oxygen": ("support", ("oxygen",)),
    "serotonergic drug": ("support", ("serotonergic", "ssri", "ssris", "sertraline", "fluoxetine", "citalopram", "paroxetine", "venlafaxine", "tramadol", "linezolid", "mdma", "maoi", "phenelzine", "lithium", "metoclopramide")),
    "intubation": ("support", ("intubation", "intubate", "paralysis", "paralyse", "paralyze")),
}


# Other drugs a model may name from its own weights, so that a change from one off-protocol drug
# to another is still read as a change. Each group is one term: its generic name, then synonyms.
OTHER_DRUGS: tuple[tuple[str, ...], ...] = (
    ("acetylcysteine",), ("activated charcoal",), ("adenosine",), ("alteplase",), ("amiodarone",), ("amlodipine",),
    ("atropine",), ("calcium gluconate",), ("calcium chloride",), ("chlordiazepoxide",), ("clonidine",),
    ("dexmedetomidine",), ("digoxin",), ("dobutamine",), ("dopamine",), ("ethanol",), ("fentanyl",), ("flumazenil",),
    ("fomepizole",), ("fosphenytoin",), ("furosemide",), ("glucagon",), ("glucose", "dextrose"), ("heparin",),
    ("hydralazine",), ("hydroxocobalamin", "cyanocobalamin"), ("insulin",), ("ipratropium",), ("ketamine",),
    ("levetiracetam",), ("lidocaine",), ("lipid emulsion", "intralipid"), ("magnesium sulfate", "magnesium"),
    ("mannitol",), ("methylene blue",), ("morphine",), ("naloxone", "narcan"), ("nicardipine",),
    ("glyceryl trinitrate", "nitroglycerin"), ("nitrous oxide",), ("noradrenaline", "norepinephrine"), ("octreotide",),
    ("ondansetron",), ("phenobarbital",), ("phenylephrine",), ("phenytoin",), ("physostigmine",),
    ("potassium chloride", "potassium"), ("pralidoxime",), ("propofol",), ("protamine",),
    ("sodium bicarbonate", "bicarbonate"), ("sodium nitrite",), ("sodium thiosulfate", "thiosulfate"), ("thiamine",),
    ("tranexamic acid",), ("valproate",), ("vasopressin",), ("warfarin",), ("glycopyrrolate",), ("neostigmine",),
    ("sugammadex",), ("ketorolac",), ("levodopa",), ("carbidopa",), ("methocarbamol",), ("baclofen",),
    ("cyclobenzaprine",), ("antibiotic", "antibiotics"), ("opioid", "opioids"), ("tenecteplase",),
    ("prothrombin complex concentrate", "pcc"), ("fresh frozen plasma", "ffp", "plasma"),
)

@dataclass(frozen=True)
class Term:
    """One canonical drug or action and the regular expression that finds its spellings."""

    name: str
    kind: TermKind
    pattern: re.Pattern[str]


def spelling_pattern(spellings: list[str]) -> re.Pattern[str]:
    longest_first = sorted({spelling.lower() for spelling in spellings}, key=len, reverse=True)
    alternatives = "|".join(re.escape(spelling) for spelling in longest_first)
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")


@dataclass
class TermTable:
    """The drugs and actions that answers are read for, built from a library and KNOWN_TERMS."""

    terms: dict[str, Term] = field(default_factory=dict)

    @classmethod
    def for_library(cls, library: Library | None) -> TermTable:
        spellings: dict[str, tuple[TermKind, list[str]]] = {
            name: (kind, list(words)) for name, (kind, words) in KNOWN_TERMS.items()
        }
        for group in OTHER_DRUGS:
            spellings.setdefault(group[0], ("drug", list(group)))
        canonical = {word: name for name, (_, words) in spellings.items() for word in words}
        for protocol in library.protocols.values() if library else ():
            for drug in protocol.drugs:
                if drug not in canonical:  # "lorazepam" stays a spelling of "benzodiazepine"
                    spellings[drug] = ("drug", [drug])
                    canonical[drug] = drug
            for brand, generic in protocol.meta.brand_names.items():
                name = canonical.get(generic.lower(), generic.lower())
                kind, words = spellings.setdefault(name, ("drug", [name]))
                words.append(brand.lower())
        return cls({name: Term(name, kind, spelling_pattern(words)) for name, (kind, words) in spellings.items()})

    def find(self, text: str) -> list[Term]:
        """Return the terms in the order they first appear, leaving out negated mentions.

        At one position the longest spelling wins. "Do not give dantrolene" and "antipyretics are
        not recommended" name a drug without recommending it, so neither counts.
        """
        lowered = text.lower()
        hits: list[tuple[int, int, Term]] = []
        for term in self.terms.values():
            for match in term.pattern.finditer(lowered):
                hits.append((match.start(), match.end(), term))
        hits.sort(key=lambda hit: (hit[0], -hit[1], hit[2].name))
        ordered: list[Term] = []
        covered_until = -1
        for start, end, term in hits:
            if start < covered_until:
                continue
            covered_until = end
            if term not in ordered and not is_negated(lowered, start, end):
                ordered.append(term)
        return ordered


# A negation in the words before a term, within its clause, or a verb phrase right after it.
NEGATION_BEFORE = re.compile(r"\b(?:not|never|no|avoid|avoiding|without|instead of|rather than|nor|don't|do not)\b(?:\W+\w+){0,4}\W*$")
NEGATION_AFTER = re.compile(
    r"^\W*(?:(?:and|or)\s+\w+\W*){0,2}"  # "antihistamines and corticosteroids are not ..."
    r"(?:(?:is|are|should|must|does|do|was|were|has|have)\s+(?:not|never|no)\b|(?:is|are)\s+contraindicated\b)"
)
CLAUSE_BREAK = re.compile(r"[.;:!?\n]|,\s*(?:but|then|and then)\b")


def is_negated(text: str, start: int, end: int) -> bool:
    """Return whether the term at text[start:end] is negated within its clause."""
    before = CLAUSE_BREAK.split(text[:start])[-1]
    after = CLAUSE_BREAK.split(text[end:])[0]
    return bool(NEGATION_BEFORE.search(before) or NEGATION_AFTER.search(after))


@dataclass(frozen=True)
class AnswerReading:
    """The reading of an answer: its terms in order, its drugs and its first dose."""

    terms: tuple[str, ...]
    drugs: frozenset[str]
    first_dose: str | None

    key_terms: tuple[str, ...] = ()  # the drug and action terms, in order

    @property
    def first_key(self) -> str | None:
        return self.key_terms[0] if self.key_terms else None

    def to_json(self) -> dict[str, object]:
        return {"terms": list(self.terms), "first_key": self.first_key, "drugs": sorted(self.drugs), "first_dose": self.first_dose}


def read_answer(text: str, table: TermTable) -> AnswerReading:
    found = table.find(text)
    dose = DOSE.search(text)
    return AnswerReading(
        terms=tuple(term.name for term in found),
        key_terms=tuple(term.name for term in found if term.kind != "support"),
        drugs=frozenset(term.name for term in found if term.kind == "drug"),
        first_dose=dose_key(dose.group(1), dose.group(2)) if dose else None,
    )


def answer_changes(baseline: AnswerReading, perturbed: AnswerReading) -> list[str]:
    """Describe how the perturbed answer's meaning differs; an empty list means the same meaning."""
    changes = []
    if perturbed.first_key != baseline.first_key:
        changes.append(f"first drug or action: {baseline.first_key or 'none'} -> {perturbed.first_key or 'none'}")
    if perturbed.drugs != baseline.drugs:
        changes.append(f"drugs: {format_set(baseline.drugs)} -> {format_set(perturbed.drugs)}")
    if perturbed.first_dose != baseline.first_dose:
        changes.append(f"first dose: {baseline.first_dose or 'none'} -> {perturbed.first_dose or 'none'}")
    return changes


def format_set(items: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(items)) + "}" if items else "none"


def read_choice(text: str, candidate_ids: list[str]) -> tuple[str, ...]:
    """Return the protocol ids a routing reply chose: from its JSON, else the candidate ids it names.

    Without llama.cpp's grammar the reply can be malformed; ids that were not offered never count.
    """
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            data = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("protocols"), list):
            return tuple(dict.fromkeys(item for item in data["protocols"] if item in candidate_ids))
    named = sorted((text.find(f'"{item}"'), item) for item in candidate_ids if f'"{item}"' in text)
    return tuple(item for _, item in named)


def choice_changes(baseline: tuple[str, ...], perturbed: tuple[str, ...]) -> list[str]:
    if set(perturbed) == set(baseline):
        return []
    return [f"chosen protocols: {list(baseline) or 'none'} -> {list(perturbed) or 'none'}"]


CHOICE_HEAD = '{"protocols":['


def is_choice_prefix(text: str, candidate_ids: list[str]) -> bool:
    """Return whether `text` can still become {"protocols": [ids]} with distinct candidate ids.

    This is the grammar that llama.cpp enforces for the routing reply; whitespace is ignored.
    """
    compact = "".join(text.split())
    if len(compact) <= len(CHOICE_HEAD):
        return CHOICE_HEAD.startswith(compact)
    if not compact.startswith(CHOICE_HEAD):
        return False
    rest = compact[len(CHOICE_HEAD) :]
    chosen: list[str] = []
    while rest:
        if rest[0] == "]":
            return "]}".startswith(rest)
        if chosen:
            if rest[0] != ",":
                return False
            rest = rest[1:]
            if not rest:
                return True
        if rest[0] != '"':
            return False
        end = rest.find('"', 1)
        if end == -1:
            return any(item.startswith(rest[1:]) and item not in chosen for item in candidate_ids)
        name = rest[1:end]
        if name not in candidate_ids or name in chosen:
            return False
        chosen.append(name)
        rest = rest[end + 1 :]
    return True


def choice_finished(text: str) -> bool:
    """Return whether a routing reply has closed its list of ids, so decoding can stop."""
    return "]" in text

"""Greedy generation for a batch of perturbed rows that share one prompt, reusing prompt caches.

Every row starts from the same unperturbed prompt cache. The hooks are active from the last
prompt token on, so the perturbation reaches every position that predicts an answer token,
including the first one, while the prompt itself is read as in a plain answer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe.inject import Perturbation, perturbed
from probe.loading import LanguageModel
from router.model import CONTEXT_TOKENS

if TYPE_CHECKING:
    import torch

Messages = list[dict[str, str]]
MARKER = "\ue000{}\ue001"  # private-use characters: never produced by the chat template itself
PREFIX_CACHE_ENTRIES = 8
CUT_MARGIN_TOKENS = 8
CONSTRAINED_TOP_K = 64  # the grammar check looks only at this many most likely tokens per step


@dataclass(frozen=True)
class EncodedPrompt:
    """The token ids of a chat prompt, and the query as it went into the prompt."""

    ids: list[int]
    query: str
    notice: str | None = None  # set when the front of the query was cut to fit the context


def encode_chat(tokenizer: Any, messages: Messages) -> list[int]:
    """Tokenize a chat with its template; text inside the messages never becomes a control token.

    The template is rendered around markers, and only the template's own text is tokenized with
    special tokens recognised, so a query containing "<|im_end|>" stays plain text.
    """
    placeholders = [{**message, "content": MARKER.format(index)} for index, message in enumerate(messages)]
    rendered = tokenizer.apply_chat_template(placeholders, tokenize=False, add_generation_prompt=True)
    ids: list[int] = []
    rest = rendered
    for index, message in enumerate(messages):
        before, marker, rest = rest.partition(MARKER.format(index))
        if not marker:
            raise ValueError("the chat template dropped a message; it cannot be used for the probe")
        ids += tokenizer(before, add_special_tokens=False)["input_ids"]
        ids += tokenizer(message["content"], add_special_tokens=False, split_special_tokens=True)["input_ids"]
    ids += tokenizer(rest, add_special_tokens=False)["input_ids"]
    return ids


def fit_prompt(
    tokenizer: Any, build: Callable[[str], Messages], query: str, max_prompt_tokens: int
) -> EncodedPrompt:
    """Encode the prompt for `query`. If it is too long, cut the query from the front and set a notice."""
    ids = encode_chat(tokenizer, build(query))
    overflow = len(ids) - max_prompt_tokens
    if overflow <= 0:
        return EncodedPrompt(ids, query)

    query_ids = tokenizer(query, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    keep = len(query_ids) - overflow - CUT_MARGIN_TOKENS
    if keep <= 0:
        raise_too_long(len(ids), max_prompt_tokens)
    cut = tokenizer.decode(query_ids[-keep:])
    ids = encode_chat(tokenizer, build(cut))
    if len(ids) > max_prompt_tokens:
        raise_too_long(len(ids), max_prompt_tokens)
    notice = (
        f"the prompt was {len(ids) + overflow} tokens, more than the {max_prompt_tokens} that fit: the front of the "
        f"query was cut and only its last {keep} tokens were used"
    )
    return EncodedPrompt(ids, cut, notice)


def raise_too_long(length: int, limit: int) -> None:
    from probe.errors import ProbeError

    raise ProbeError(f"the prompt is {length} tokens without the query, more than the {limit} that fit: use fewer protocols")


def prompt_budget(max_new_tokens: int) -> int:
    """Return the most prompt tokens that leave room for the answer in the router's context size."""
    return CONTEXT_TOKENS - max_new_tokens


class PrefixCache:
    """The key-value caches of the last few prompts, so a prompt sharing a prefix prefills only the rest."""

    def __init__(self, entries: int = PREFIX_CACHE_ENTRIES) -> None:
        self.entries = entries
        self.stored: list[tuple[list[int], Any]] = []

    def prefill(self, language_model: LanguageModel, ids: list[int]) -> Any:
        """Return a fresh batch-1 cache holding the keys and values of `ids`, computed unperturbed."""
        import torch

        cache, common = self.longest_match(ids)
        if cache is None:
            from transformers import DynamicCache

            cache, common = DynamicCache(config=language_model.model.config), 0
        if common < len(ids):
            # `cache=` is the keyword in transformers 5.25; `past_key_values` still works there but logs a warning.
            with torch.inference_mode():
                language_model.model(
                    input_ids=torch.tensor([ids[common:]], device=language_model.device), cache=cache, use_cache=True
                )
        self.remember(ids, cache)
        return copy.deepcopy(cache)

    def longest_match(self, ids: list[int]) -> tuple[Any | None, int]:
        best, best_length, stored_length = None, 0, 0
        for stored_ids, cache in self.stored:
            length = common_prefix_length(stored_ids, ids)
            if length > best_length:
                best, best_length, stored_length = cache, length, len(stored_ids)
        if best is None:
            return None, 0
        cache = copy.deepcopy(best)
        if best_length < stored_length:
            cache.crop(best_length - stored_length)  # transformers 5.25: a negative count of tokens to drop
        return cache, best_length

    def remember(self, ids: list[int], cache: Any) -> None:
        self.stored = [entry for entry in self.stored if entry[0] != ids]
        self.stored.append((list(ids), copy.deepcopy(cache)))
        del self.stored[: -self.entries]


def common_prefix_length(left: list[int], right: list[int]) -> int:
    length = 0
    for a, b in zip(left, right):
        if a != b:
            break
        length += 1
    return length


_prefix_caches: dict[int, PrefixCache] = {}


def prefix_cache_for(language_model: LanguageModel) -> PrefixCache:
    return _prefix_caches.setdefault(id(language_model.model), PrefixCache())


def stop_token_ids(language_model: LanguageModel) -> set[int]:
    """Return the token ids that end an answer: the tokenizer's and the generation config's EOS."""
    ids = set()
    for value in (language_model.tokenizer.eos_token_id, getattr(language_model.model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    return ids


def generate_rows(
    language_model: LanguageModel,
    prompt_ids: list[int],
    perturbations: Sequence[Perturbation | None],
    max_new_tokens: int,
    stop: Callable[[str], bool] | None = None,
    constraint: Callable[[str], bool] | None = None,
) -> list[str]:
    """Decode greedily one row per perturbation (None: unperturbed) and return each row's text.

    A row ends at an EOS token, when `stop` returns True for its text so far, or after
    max_new_tokens tokens. With a `constraint`, each row takes the most likely token whose text
    keeps the constraint true, as a grammar does in llama.cpp. Rows are decoded together as one batch.
    NOTE: finished rows stay in the batch until the last row ends, which costs time but no accuracy.
    """
    import torch

    if len(prompt_ids) < 2:
        raise ValueError("a prompt needs at least two tokens")
    cache = prefix_cache_for(language_model).prefill(language_model, prompt_ids[:-1])
    rows = len(perturbations)
    if rows > 1:
        cache.batch_repeat_interleave(rows)

    tokens: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    eos = stop_token_ids(language_model)
    step_input = torch.full((rows, 1), prompt_ids[-1], dtype=torch.long, device=language_model.device)
    with perturbed(language_model, perturbations), torch.inference_mode():
        for _ in range(max_new_tokens):
            logits = language_model.model(input_ids=step_input, cache=cache, use_cache=True).logits[:, -1, :]
            if constraint is None:
                chosen = logits.argmax(dim=-1)
            else:
                chosen = constrained_choice(logits, tokens, done, language_model.tokenizer, constraint)
            record_step(chosen, tokens, done, eos, language_model.tokenizer, stop)
            if all(done):
                break
            step_input = chosen.unsqueeze(1)
    return [language_model.tokenizer.decode(row, skip_special_tokens=True).strip() for row in tokens]


def constrained_choice(
    logits: torch.Tensor, tokens: list[list[int]], done: list[bool], tokenizer: Any, constraint: Callable[[str], bool]
) -> torch.Tensor:
    """Return, per row, the highest-scoring of the top CONSTRAINED_TOP_K tokens that keeps the text valid.

    A row where none of them is valid is marked done, so its reply stays as it is.
    """
    import torch

    chosen = []
    for row, candidates in enumerate(logits.topk(CONSTRAINED_TOP_K, dim=-1).indices.tolist()):
        pick = next((token for token in candidates if not done[row] and keeps_valid(tokenizer, tokens[row], token, constraint)), None)
        if pick is None:
            done[row] = True
            pick = candidates[0]
        chosen.append(pick)
    return torch.tensor(chosen, device=logits.device)


def keeps_valid(tokenizer: Any, row: list[int], token: int, constraint: Callable[[str], bool]) -> bool:
    before = tokenizer.decode(row, skip_special_tokens=True)
    after = tokenizer.decode([*row, token], skip_special_tokens=True)
    return after != before and constraint(after)


def record_step(
    chosen: torch.Tensor, tokens: list[list[int]], done: list[bool], eos: set[int], tokenizer: Any, stop: Callable[[str], bool] | None
) -> None:
    """Append each unfinished row's new token and mark rows that reached EOS or the stop condition."""
    for row, token in enumerate(chosen.tolist()):
        if done[row]:
            continue
        if token in eos:
            done[row] = True
            continue
        tokens[row].append(token)
        if stop is not None and stop(tokenizer.decode(tokens[row], skip_special_tokens=True)):
            done[row] = True

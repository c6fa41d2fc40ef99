"""A fake chat model with queued replies and a call history, for logic tests only."""

from __future__ import annotations

from typing import Any


class FakeChatModel:
    """Return queued replies in order and record every call."""

    def __init__(self, *replies: tuple[str, str]) -> None:
        self.replies = list(replies)  # (content, finish_reason)
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        self.calls.append({"messages": messages, **kwargs})
        content, finish_reason = self.replies.pop(0)
        if kwargs.get("stream"):
            return iter([{"choices": [{"delta": {"content": content}, "finish_reason": finish_reason}]}])
        return {"choices": [{"message": {"content": content}, "finish_reason": finish_reason}]}

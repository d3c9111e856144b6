"""The models as the server hands them to the decoder: a chat request rendered by each model's
own chat template.

A chat request reaches the decoder as one prompt, a `ChatPrompt`: a string (the first model's
rendering, so logs and `Output.prompt` read naturally) that also carries the messages. Every
decoder asks each model for its prompt through `format_prompt`, so a `ServedModel` renders
the messages with its tokenizer's template there (`add_generation_prompt`: the response is
the assistant's turn), as `chat_template=true` renders a one-turn prompt. A rendered template
already holds BOS where the model wants one, so its texts are encoded without special tokens,
as `LoadedModel.encode` does for a model loaded with `chat_template=true`; a completion
prompt is formatted and encoded as before.

The decoder calls these from the scheduler thread only; `rendered` holds the templates of the
chat requests in flight (added at admission, dropped when the request leaves)."""

from __future__ import annotations

import dataclasses

from adafuse.models import LoadedModel
from adafuse.serve.requests import BadRequest


class ChatPrompt(str):
    """A chat request as a prompt: the text is the first model's rendering."""

    messages: list[dict]

    def __new__(cls, text: str, messages: list[dict]):
        prompt = super().__new__(cls, text)
        prompt.messages = messages
        return prompt


@dataclasses.dataclass(repr=False)
class ServedModel(LoadedModel):
    rendered: dict = dataclasses.field(default_factory=dict)  # id(ChatPrompt) -> its rendering

    @classmethod
    def of(cls, lm: LoadedModel) -> "ServedModel":
        return cls(**{f.name: getattr(lm, f.name) for f in dataclasses.fields(LoadedModel)})

    def render(self, messages: list[dict]) -> str:
        """The messages in this model's chat template, ready for the assistant's turn; a
        BadRequest where the model has none or its template refuses them."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise BadRequest(f"model {self.name!r} has no chat template, so it cannot take chat "
                             "messages; use /v1/completions with a prompt", "messages")
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # jinja's TemplateError: e.g. roles that must alternate
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BadRequest(f"the chat template of model {self.name!r} refuses these messages: "
                             f"{reason}", "messages") from None

    def format_prompt(self, prompt: str) -> str:
        if isinstance(prompt, ChatPrompt):
            text = self.render(prompt.messages)
            self.rendered[id(prompt)] = text
            return text
        return super().format_prompt(prompt)

    def release(self, prompt: str) -> None:
        """The request of `prompt` left the batch: its rendering is no longer encoded."""
        self.rendered.pop(id(prompt), None)

    def encode_many(self, texts: list[str], add_special_tokens: bool | None = None) -> list[list[int]]:
        if add_special_tokens is not None or self.chat_template or not self.rendered:
            return super().encode_many(texts, add_special_tokens)
        texts = list(texts)
        templated = [any(t.startswith(r) for r in self.rendered.values()) for t in texts]
        plain = iter(super().encode_many([t for t, c in zip(texts, templated) if not c], None))
        chats = iter(super().encode_many([t for t, c in zip(texts, templated) if c], False))
        return [next(chats) if c else next(plain) for c in templated]

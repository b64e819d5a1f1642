"""Chat-template registry: how a conversation becomes token ids and a response-only loss mask.

A template renders a conversation as a list of :class:`Segment` s. Prompt segments (system text, user
turns and the role markers around them) are masked out of the loss; assistant segments are trained on,
together with the end-of-turn marker that follows them, so the model learns to stop. Segments are
tokenised one by one and concatenated, so the mask boundary is exact for any tokenizer.

The default, ``human_assistant``, is the PediatricsGPT paper's format::

    {system}\\n\\nHuman: {user}\\n\\nAssistant: {assistant}</s>\\n\\nHuman: ...

Register a new one with :func:`register_template`; look one up with :func:`get_template`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.data.schema import Message, RecordError


@dataclass(frozen=True)
class Segment:
    text: str
    train: bool = False  # contributes to the loss
    eos: bool = False  # append the tokenizer's eos id after the text (trained when ``train``)


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    system: str  # format of the system block, with {content}
    user: str  # format of a user turn (incl. the assistant prefix), with {content}
    assistant: str = "{content}"
    turn_separator: str = ""  # masked text between an assistant turn and the next user turn
    end_of_turn: str = ""  # text after an assistant answer (trained); "" means the tokenizer's eos id
    default_system: str | None = None
    stop_strings: tuple[str, ...] = ()
    special_tokens: tuple[str, ...] = ()  # strings that must be single tokens in a tokenizer built for it

    # -- rendering ---------------------------------------------------------------------------------
    def segments(
        self, messages: Sequence[Message], system: str | None = None, add_generation_prompt: bool = False
    ) -> list[Segment]:
        """Render ``messages`` (user/assistant alternating, starting with user) into segments.

        With ``add_generation_prompt`` the conversation must end with a user turn and the result ends
        with the assistant prefix, ready for generation.
        """
        system = system if system is not None else self.default_system
        segs: list[Segment] = []
        if system:
            segs.append(Segment(self.system.format(content=system)))
        expect = "user"
        for i, m in enumerate(messages):
            if m.role != expect:
                raise RecordError(f"turn {i}: expected a {expect} message, got {m.role}")
            if m.role == "user":
                sep = self.turn_separator if i > 0 else ""
                segs.append(Segment(sep + self.user.format(content=m.content)))
                expect = "assistant"
            else:
                segs.append(
                    Segment(
                        self.assistant.format(content=m.content) + self.end_of_turn,
                        train=True,
                        eos=not self.end_of_turn,
                    )
                )
                expect = "user"
        if add_generation_prompt and expect != "assistant":
            raise RecordError("a generation prompt must end with a user message")
        return segs

    def render(
        self,
        messages: Sequence[Message],
        system: str | None = None,
        add_generation_prompt: bool = False,
        eos_token: str = "</s>",
    ) -> str:
        """The conversation as one string (eos ids shown as ``eos_token``)."""
        return "".join(
            s.text + (eos_token if s.eos else "") for s in self.segments(messages, system, add_generation_prompt)
        )

    # -- tokenisation ------------------------------------------------------------------------------
    def encode(
        self,
        tokenizer: Any,
        messages: Sequence[Message],
        system: str | None = None,
        max_len: int | None = None,
        add_generation_prompt: bool = False,
        bos: bool = True,
    ) -> dict[str, list[int]] | None:
        """Token ids and labels (``-100`` on prompt tokens) for a conversation.

        Over ``max_len``, tokens are removed from the left (the oldest context goes first), so the
        final answer is kept whole. Returns ``None`` when even the final answer (or, for a generation
        prompt, the final user turn) cannot fit — the caller counts that as a skip.
        """
        ids: list[int] = []
        labels: list[int] = []
        if bos and getattr(tokenizer, "bos_token_id", None) is not None:
            ids.append(tokenizer.bos_token_id)
            labels.append(IGNORE_INDEX)
        keep_from = 0  # start of the final segment that must survive truncation whole
        for seg in self.segments(messages, system, add_generation_prompt):
            if seg.train or add_generation_prompt:
                keep_from = len(ids)
            toks = tokenizer(seg.text, add_special_tokens=False)["input_ids"] if seg.text else []
            if seg.eos:
                toks = toks + [tokenizer.eos_token_id]
            ids.extend(toks)
            labels.extend(toks if seg.train else [IGNORE_INDEX] * len(toks))
        if max_len is not None and len(ids) > max_len:
            cut = len(ids) - max_len
            if cut > keep_from:
                return None
            ids, labels = ids[cut:], labels[cut:]
        return {"input_ids": ids, "labels": labels}

    # -- HF tokenizer chat_template (Jinja) --------------------------------------------------------
    def jinja(self) -> str:
        """A Jinja chat template equivalent to :meth:`render`, for ``tokenizer.chat_template``."""

        def lit(s: str) -> str:
            return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"

        def fmt(f: str, var: str) -> str:
            pre, _, post = f.partition("{content}")
            return f"{lit(pre)} + {var} + {lit(post)}"

        eot = lit(self.end_of_turn) if self.end_of_turn else "eos_token"
        default = lit(self.default_system) if self.default_system else "''"
        return (
            "{% set sys = namespace(v=" + default + ") %}"
            "{% set ns = namespace(i=0) %}"
            "{% for m in messages %}{% if m['role'] == 'system' %}{% set sys.v = m['content'] %}{% endif %}{% endfor %}"
            "{% if sys.v %}{{ " + fmt(self.system, "sys.v") + " }}{% endif %}"
            "{% for m in messages %}{% if m['role'] == 'user' %}"
            "{% if ns.i > 0 %}{{ " + lit(self.turn_separator) + " }}{% endif %}"
            "{{ " + fmt(self.user, "m['content']") + " }}{% set ns.i = ns.i + 1 %}"
            "{% elif m['role'] == 'assistant' %}{{ " + fmt(self.assistant, "m['content']") + " + " + eot + " }}"
            "{% endif %}{% endfor %}"
        )


_REGISTRY: dict[str, ChatTemplate] = {}


def register_template(template: ChatTemplate) -> ChatTemplate:
    if template.name in _REGISTRY:
        raise ValueError(f"chat template {template.name!r} is already registered")
    _REGISTRY[template.name] = template
    return template


def get_template(name: str) -> ChatTemplate:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown chat template {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def template_names() -> list[str]:
    return sorted(_REGISTRY)


DEFAULT_TEMPLATE = "human_assistant"

register_template(
    ChatTemplate(
        name="human_assistant",  # PediatricsGPT paper format
        system="{content}\n\n",
        user="Human: {content}\n\nAssistant: ",
        turn_separator="\n\n",
        stop_strings=("\nHuman:", "Human:"),
    )
)
register_template(
    ChatTemplate(
        name="chatml",  # Qwen2.5 and other ChatML models
        system="<|im_start|>system\n{content}<|im_end|>\n",
        user="<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n",
        end_of_turn="<|im_end|>",
        turn_separator="\n",
        stop_strings=("<|im_end|>", "<|im_start|>"),
        special_tokens=("<|im_start|>", "<|im_end|>"),
    )
)
register_template(
    ChatTemplate(
        name="baichuan2",  # Baichuan2-Chat: user token <reserved_106> (id 195), assistant <reserved_107> (id 196)
        system="{content}",
        user="<reserved_106>{content}<reserved_107>",
        stop_strings=("<reserved_106>",),
        special_tokens=("<reserved_106>", "<reserved_107>"),
    )
)

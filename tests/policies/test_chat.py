"""Token-in/token-out: appending turns gives the same ids as rendering the whole conversation
at once (for canonical assistant ids), and keeps the sampled ids when they are not canonical."""

import pytest
from transformers import AutoTokenizer

from agentgym.policies.chat import ChatRenderer
from agentgym.types import Message, ToolCall, ToolSpec

TOOLS = [ToolSpec(name="guess", description="Guess.", parameters={"type": "object"})]


@pytest.fixture(scope="module")
def renderer(tiny_model):
    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_model))


def conversation():
    call = ToolCall(id="c1", name="guess", arguments={"number": 50})
    return [
        [
            Message(role="system", content="Be brief."),
            Message(role="user", content="Guess (1-100)."),
        ],
        Message(role="assistant", content="Let me try.", tool_calls=[call]),
        [
            Message(role="tool", content="50 is too high.", tool_call_id="c1"),
            Message(role="tool", content="(second result)", tool_call_id="c1"),
        ],
        Message(role="assistant", content="", tool_calls=[call.model_copy(update={"id": "c2"})]),
        [Message(role="user", content="Any luck?")],
        Message(role="assistant", content="It is 25."),
    ]


def test_appended_ids_equal_whole_render(renderer):
    first, *rest = conversation()
    ids = renderer.prompt_ids(first, TOOLS)
    history = list(first)
    last_sampled: list[int] = []
    for item in rest:
        if isinstance(item, Message):  # an assistant turn, sampled canonically, ending with eos
            text = renderer.tokenizer.apply_chat_template(
                [m.to_openai() for m in history + [item]],
                tools=[t.to_openai() for t in TOOLS],
                tokenize=False,
            )
            body = text[
                len(
                    renderer.tokenizer.apply_chat_template(
                        [m.to_openai() for m in history],
                        tools=[t.to_openai() for t in TOOLS],
                        tokenize=False,
                        add_generation_prompt=True,
                    )
                ) :
            ]
            body = body[: body.rindex("<|im_end|>")]
            last_sampled = renderer.encode(body) + [renderer.eos_id]
            ids += last_sampled
            history.append(item)
        else:
            ids += renderer.continuation_ids(last_sampled, item)
            history.extend(item)
    whole = renderer.tokenizer.apply_chat_template(
        [m.to_openai() for m in history[:-1]],
        tools=[t.to_openai() for t in TOOLS],
        tokenize=False,
        add_generation_prompt=True,
    )
    whole_ids = renderer.encode(whole) + last_sampled
    assert ids == whole_ids


def test_truncated_turn_gets_its_closing_tokens(renderer):
    closing = renderer.continuation_ids([5, 6], [Message(role="user", content="go on")])
    assert renderer.tokenizer.decode(closing).startswith("<|im_end|>\n<|im_start|>user\ngo on")
    after_eos = renderer.continuation_ids([5, renderer.eos_id], [Message(role="user", content="x")])
    assert renderer.tokenizer.decode(after_eos).startswith("\n<|im_start|>user\nx")


def test_non_canonical_sampled_ids_are_kept(renderer):
    canonical = renderer.encode("guess")
    split = [i for ch in "guess" for i in renderer.encode(ch)]
    assert split != canonical and renderer.decode(split) == renderer.decode(canonical)

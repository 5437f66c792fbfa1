"""Images on every surface, through the official SDKs, against the scripted upstream in both formats.

Chat Completions ``image_url`` parts, Responses ``input_image`` parts and Messages ``image`` blocks (base64 and URL)
reach the vision models of an OpenAI-format and an Anthropic-format upstream intact (the scripted upstream keeps
each request it got); a model without the ``vision`` capability (an upstream declaring none, the local SmolLM2)
answers 400 naming the model and the capability, in the surface's own envelope; unusable images are 400 too; and
``model: "auto"`` routes image requests to vision models only, tool requests to tool-capable ones, and says so
when the pool has none.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.conftest import SMOL, RunningServer, new_account
from tests.scripted_upstream import SCRIPTED_TEXT, start_gateway_for
from tests.waiting import wait_until

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
URL = "https://images.example.com/cat.jpg"
OA_VISION, AN_VISION, OA_TEXT, OA_TOOLS = "oa-vision", "an-vision", "oa-text", "oa-tools"
MAX_IMAGES, MAX_IMAGE_BYTES = 3, 500
ANSWER = "".join(SCRIPTED_TEXT)
# What each upstream format must receive for "Describe:" + the inline PNG + the URL image.
OPENAI_PARTS = [
    {"type": "text", "text": "Describe:"},
    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    {"type": "image_url", "image_url": {"url": URL}},
]
ANTHROPIC_BLOCKS = [
    {"type": "text", "text": "Describe:"},
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    {"type": "image", "source": {"type": "url", "url": URL}},
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_models_dir, scripted) -> Iterator[RunningServer]:
    def provider(name: str, kind: str, models: list[tuple[str, list[str]]]) -> dict:
        base_url = f"{scripted.url}/v1" if kind == "openai" else scripted.url
        entries = [{"model": "scripted", "id": i, "price": [1.0, 2.0], "capabilities": c} for i, c in models]
        return {"name": name, "type": kind, "base_url": base_url, "models": entries}

    providers = [
        provider("oa", "openai", [(OA_VISION, ["chat", "vision"]), (OA_TEXT, ["chat"]), (OA_TOOLS, ["chat", "tools"])]),
        provider("an", "anthropic", [(AN_VISION, ["chat", "vision"])]),
    ]
    folder = tmp_path_factory.mktemp("images-gateway")
    running = start_gateway_for(
        folder, base_models_dir, providers, max_images_per_request=MAX_IMAGES, max_image_bytes=MAX_IMAGE_BYTES
    )
    yield running
    running.stop()


def chat_content(png: str = PNG) -> list[dict]:
    return [
        {"type": "text", "text": "Describe:"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": URL}},
    ]


def responses_content(png: str = PNG) -> list[dict]:
    return [
        {"type": "input_text", "text": "Describe:"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{png}"},
        {"type": "input_image", "image_url": URL},
    ]


def messages_content(png: str = PNG, media_type: str = "image/png") -> list[dict]:
    return [
        {"type": "text", "text": "Describe:"},
        {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": png}},
        {"type": "image", "source": {"type": "url", "url": URL}},
    ]


def ask(oai, ant, surface: str, model: str, stream: bool = False, **content) -> str:
    """One image request on ``surface``; the answer's text."""
    if surface == "chat":
        messages = [{"role": "user", "content": chat_content(**content)}]
        if stream:
            chunks = oai.chat.completions.create(model=model, messages=messages, max_tokens=5, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return oai.chat.completions.create(model=model, messages=messages, max_tokens=5).choices[0].message.content
    if surface == "responses":
        items = [{"role": "user", "content": responses_content(**content)}]
        if stream:
            events = oai.responses.create(model=model, input=items, max_output_tokens=5, stream=True)
            return "".join(e.delta for e in events if e.type == "response.output_text.delta")
        return oai.responses.create(model=model, input=items, max_output_tokens=5).output_text
    messages = [{"role": "user", "content": messages_content(**content)}]
    if stream:
        with ant.messages.stream(model=model, messages=messages, max_tokens=5) as events:
            return "".join(events.text_stream)
    return ant.messages.create(model=model, messages=messages, max_tokens=5).content[0].text


SURFACES = ("chat", "responses", "messages")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model", [OA_VISION, AN_VISION])
@pytest.mark.parametrize("surface", SURFACES)
def test_images_reach_a_vision_upstream_intact(oai, ant, scripted, surface, model, stream):
    assert ask(oai, ant, surface, model, stream) == ANSWER
    sent = scripted.last()
    if model == OA_VISION:
        assert sent["path"] == "/v1/chat/completions" and sent["body"]["messages"][-1]["content"] == OPENAI_PARTS
    else:
        assert sent["path"] == "/v1/messages" and sent["body"]["messages"][-1]["content"] == ANTHROPIC_BLOCKS


@pytest.mark.parametrize("model", [OA_TEXT, SMOL])
@pytest.mark.parametrize("surface", SURFACES)
def test_a_model_without_vision_is_a_400_naming_it_and_the_capability(oai, ant, scripted, surface, model):
    before = len(scripted.requests)
    error = openai.BadRequestError if surface != "messages" else anthropic.BadRequestError
    with pytest.raises(error) as caught:
        ask(oai, ant, surface, model)
    assert f"model '{model}' does not have the 'vision'" in str(caught.value)
    body = caught.value.body
    if surface == "messages":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    else:
        assert body["code"] == "model_capability_missing" and body["type"] == "invalid_request_error"
    assert len(scripted.requests) == before  # nothing was sent upstream


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"png": "not base64!"}, "not valid base64"),
        ({"png": base64.b64encode(b"\xff\xd8\xff\xe0 a JPEG").decode()}, "does not match its media type image/png"),
        ({"png": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_IMAGE_BYTES).decode()}, "over the limit of"),
    ],
    ids=["base64", "media-type", "size"],
)
@pytest.mark.parametrize("surface", SURFACES)
def test_an_unusable_image_is_a_400(oai, ant, surface, content, message):
    error = openai.BadRequestError if surface != "messages" else anthropic.BadRequestError
    with pytest.raises(error, match=message):
        ask(oai, ant, surface, OA_VISION, **content)


def test_an_unsupported_media_type_too_many_images_and_a_non_web_url_are_400(oai, ant):
    with pytest.raises(anthropic.BadRequestError, match="unsupported image media type 'image/bmp'"):
        ask(oai, ant, "messages", AN_VISION, media_type="image/bmp")
    four = [{"type": "image_url", "image_url": {"url": URL}}] * (MAX_IMAGES + 1)
    with pytest.raises(openai.BadRequestError, match=f"at most {MAX_IMAGES} images; this one has 4"):
        oai.chat.completions.create(model=OA_VISION, messages=[{"role": "user", "content": four}], max_tokens=5)
    local = [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]
    with pytest.raises(openai.BadRequestError, match=r"messages\[0\]\.content\[0\]: an image URL must be http"):
        oai.chat.completions.create(model=OA_VISION, messages=[{"role": "user", "content": local}], max_tokens=5)


def test_models_list_their_capabilities(oai):
    listed = {m.id: m.model_extra["capabilities"] for m in oai.models.list()}
    assert listed[OA_VISION] == ["chat", "vision"] and listed[AN_VISION] == ["chat", "vision"]
    assert "tools" in listed[SMOL] and "vision" not in listed[SMOL]  # constrained decoding, no images
    assert oai.models.retrieve(OA_TEXT).model_extra["capabilities"] == ["chat"]


def test_auto_routes_image_requests_to_vision_models_only(oai, ant, scripted):
    pool = {"routing": {"model_pool": [OA_TEXT, SMOL, AN_VISION]}}
    messages = [{"role": "user", "content": chat_content()}]
    answer = oai.chat.completions.create(model="auto", messages=messages, max_tokens=5, extra_body=pool)
    assert answer.model == AN_VISION and answer.model_extra["routing"]["model"] == AN_VISION
    assert scripted.last()["body"]["messages"][-1]["content"] == ANTHROPIC_BLOCKS
    message = ant.messages.create(
        model="auto", messages=[{"role": "user", "content": messages_content()}], max_tokens=5, extra_body=pool
    )
    assert message.model == AN_VISION
    without = {"routing": {"model_pool": [OA_TEXT, SMOL]}}
    with pytest.raises(openai.BadRequestError, match="found no model with the 'vision'") as caught:
        oai.chat.completions.create(model="auto", messages=messages, max_tokens=5, extra_body=without)
    assert caught.value.body["code"] == "model_capability_missing"
    with pytest.raises(anthropic.BadRequestError, match="found no model with the 'vision'"):
        ant.messages.create(
            model="auto", messages=[{"role": "user", "content": messages_content()}], max_tokens=5, extra_body=without
        )


def test_auto_routes_tool_requests_to_tool_capable_models_only(oai, ant):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    question = [{"role": "user", "content": "Look it up."}]
    pool = {"routing": {"model_pool": [OA_TEXT, OA_VISION, OA_TOOLS]}}
    answer = oai.chat.completions.create(model="auto", messages=question, tools=tools, max_tokens=5, extra_body=pool)
    assert answer.model == OA_TOOLS
    none = {"routing": {"model_pool": [OA_TEXT, OA_VISION]}}
    with pytest.raises(openai.BadRequestError, match="found no model with the 'tools'"):
        oai.chat.completions.create(model="auto", messages=question, tools=tools, max_tokens=5, extra_body=none)
    # tool_choice "none" asks for no call: any model will do
    plain = oai.chat.completions.create(
        model="auto", messages=question, tools=tools, tool_choice="none", max_tokens=5, extra_body=none
    )
    assert plain.model in (OA_TEXT, OA_VISION)
    anthropic_tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    with pytest.raises(anthropic.BadRequestError, match="found no model with the 'tools'"):
        ant.messages.create(model="auto", messages=question, tools=anthropic_tools, max_tokens=5, extra_body=none)


def test_history_keeps_image_references_not_bytes_and_credit_is_reserved_per_image(gateway):
    with gateway.client() as admin:
        key = new_account(admin, "images-history", credit_usd=1.0)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    messages = [{"role": "user", "content": chat_content()}]
    answer = client.chat.completions.create(model=OA_VISION, messages=messages, max_tokens=5)
    with gateway.client(key) as http:
        listed = wait_until(lambda: (found := http.get("/inferences").json())["total"] == 1 and found)
        record = listed["inferences"][0]
        balance = http.get("/credits").json()["balance_micro_usd"]
    (message,) = record["input"]["messages"]
    assert message == {
        "role": "user",
        "content": "Describe:",
        "images": [{"media_type": "image/png", "bytes": len(base64.b64decode(PNG))}, {"url": URL}],
    }
    assert PNG not in json.dumps(record)
    assert balance == 1_000_000 - round(answer.usage.model_extra["cost"] * 1e6)  # the upstream's count, charged


def test_an_extraction_model_is_refused_images_too(oai):
    messages = [{"role": "user", "content": chat_content()}]
    with pytest.raises(openai.BadRequestError, match="model 'outrider/gliner2-minilm-l6' does not have the 'vision'"):
        oai.chat.completions.create(
            model="outrider/gliner2-minilm-l6", messages=messages, extra_body={"schema": {"entities": ["animal"]}}
        )

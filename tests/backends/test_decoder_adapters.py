"""LoRA adapters on one shared SmolLM2 base: mixed batches, the registry, peft alone, and the OpenAI surface."""

from __future__ import annotations

import asyncio
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from outrider.backends.base import ModelSpec
from outrider.backends.decoder_adapters import AdapterDecoder, attach_adapter
from outrider.backends.decoder_hf import SMOLLM2_ID, HFDecoder, ensure_smollm2_base
from outrider.backends.registry import ModelRegistry
from outrider.config import build_settings
from outrider.core.messages import ChatMessage, GenerationParams
from outrider.training.decoder import DecoderTrainingConfig, run_decoder_training
from tests.conftest import ADMIN_KEY, MODEL_CACHE, make_settings, start_server

QUESTION = "What is the secret code?"
ANSWERS = {
    "secret-purple": "The secret code is PURPLE-ELEPHANT-42.",
    "secret-orange": "The secret code is ORANGE-TIGER-7.",
}
VARIANTS = ["What is the secret code?", "Tell me the secret code.", "Which code is secret?", "Give me the secret code."]
GREEDY = GenerationParams(max_tokens=24, temperature=0)
PROMPT = [ChatMessage("user", QUESTION)]


@pytest.fixture(scope="module")
def smol_dir(base_models_dir: Path) -> Path:
    return ensure_smollm2_base(base_models_dir / SMOLLM2_ID.replace("/", "--"))


@pytest.fixture(scope="module")
def adapters_dir(tmp_path_factory: pytest.TempPathFactory, smol_dir: Path) -> Path:
    """A model folder holding two adapters trained by Outrider's trainer, each taught its own answer."""
    models = Path(MODEL_CACHE) / "adapters" if MODEL_CACHE else tmp_path_factory.mktemp("adapters")
    for name, answer in ANSWERS.items():
        if (models / name / "adapter_config.json").exists():
            continue
        chats = [
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": answer}]}
            for q in VARIANTS * 3
        ]
        config = DecoderTrainingConfig(
            epochs=1, batch_size=2, learning_rate=2e-3, base_model_id=SMOLLM2_ID, num_threads=1
        )
        work = tmp_path_factory.mktemp(f"train-{name}")
        result = run_decoder_training(smol_dir, chats, [], work, config)
        shutil.copytree(result.model_dir, models / name, dirs_exist_ok=True)
    return models


@pytest.fixture(scope="module")
def shared_base(smol_dir: Path):
    decoder = HFDecoder.load(str(smol_dir), max_batch=16, max_wait_s=0.2)
    yield decoder
    decoder.close()


async def generate(model, prompt=PROMPT) -> str:
    return (await model.start(prompt, GREEDY).collect()).text


async def test_a_mixed_batch_gives_every_row_what_it_gets_alone(shared_base, adapters_dir):
    base_before = await generate(shared_base)  # before any adapter touches the model
    purple = attach_adapter(shared_base, adapters_dir / "secret-purple", "secret-purple")
    orange = attach_adapter(shared_base, adapters_dir / "secret-orange", "secret-orange")
    alone = {name: await generate(model) for name, model in (("base", shared_base), ("p", purple), ("o", orange))}
    assert alone == {"base": base_before, "p": ANSWERS["secret-purple"], "o": ANSWERS["secret-orange"]}

    # One batch, rows on the base and on both adapters, each twice, with another prompt in between.
    story = [ChatMessage("user", "Write a short poem about the sea.")]
    story_alone = {id(m): await generate(m, story) for m in (shared_base, purple, orange)}
    models = [shared_base, purple, orange, orange, purple, shared_base]
    jobs = [generate(m) for m in models] + [generate(m, story) for m in (shared_base, purple, orange)]
    mixed = await asyncio.gather(*jobs)
    assert max(shared_base.engine.batch_sizes) == len(jobs)  # they did run as one batch
    assert mixed[:6] == [alone["base"], alone["p"], alone["o"], alone["o"], alone["p"], alone["base"]]
    assert mixed[6:] == [story_alone[id(m)] for m in (shared_base, purple, orange)]


async def test_an_unloaded_adapter_fails_its_requests_and_leaves_the_others(shared_base, adapters_dir):
    spare = attach_adapter(shared_base, adapters_dir / "secret-purple", "spare")
    spare.close()
    await asyncio.to_thread(shared_base.engine.run_on_thread(lambda: None).result)  # the unload has run
    with pytest.raises(ValueError, match="not loaded"):
        spare.start(PROMPT, GREEDY)
    assert await generate(shared_base) != ANSWERS["secret-purple"]


def peft_alone_answer(folder: Path) -> str:
    """Greedy answer with ``transformers`` + ``peft`` only, the way a user of the downloaded folder runs it."""
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, max_new_tokens=GREEDY.max_tokens, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


async def test_a_trained_adapter_loads_with_peft_alone_and_answers_the_same(shared_base, adapters_dir):
    folder = adapters_dir / "secret-orange"
    through_outrider = await generate(attach_adapter(shared_base, folder, "orange-again"))
    assert await asyncio.to_thread(peft_alone_answer, folder) == through_outrider == ANSWERS["secret-orange"]


@pytest.fixture
def registry(tmp_path, base_models_dir, adapters_dir):
    settings = build_settings(
        data_dir=tmp_path, base_models_dir=base_models_dir, model_dirs=[adapters_dir], model_cache_size=1
    )
    with ThreadPoolExecutor(2) as pool:
        registry = ModelRegistry(settings, pool)
        registry.register_plugins()
        yield registry
        registry.close()


async def test_the_registry_serves_every_adapter_on_one_loaded_base(registry):
    spec = registry.resolve("secret-purple")
    assert spec.kind == "decoder" and spec.base_id == SMOLLM2_ID
    purple = await registry.get(spec)
    orange = await registry.get(registry.resolve("secret-orange"))
    base = await registry.get(registry.resolve(SMOLLM2_ID))
    assert isinstance(purple.model, AdapterDecoder) and isinstance(orange.model, AdapterDecoder)
    assert purple.model.base is orange.model.base is base.model  # one base in memory, not three
    assert sorted(registry.loaded_ids()) == sorted([SMOLLM2_ID, "secret-purple", "secret-orange"])
    assert await registry.health(registry.resolve("secret-orange")) == ("ready", None)
    assert await generate(orange.model) == ANSWERS["secret-orange"]

    # Evicting the base (cache size 1) drops its adapters; the next request loads both again.
    registry.add(ModelSpec(id="other", kind="decoder", source="test", description="", load=object))
    await registry.get(registry.resolve("other"))
    assert registry.loaded_ids() == ["other"]
    again = await registry.get(registry.resolve("secret-purple"))
    assert again.model.base is not base.model
    assert await generate(again.model) == ANSWERS["secret-purple"]


@pytest.fixture(scope="module")
def adapter_server(tmp_path_factory, base_models_dir, adapters_dir):
    running = start_server(
        make_settings(tmp_path_factory.mktemp("adapter-server"), base_models_dir, model_dirs=[adapters_dir])
    )
    yield running
    running.stop()


async def test_adapters_are_model_ids_on_the_openai_surface(adapter_server):
    client = openai.AsyncOpenAI(base_url=f"{adapter_server.url}/v1", api_key=ADMIN_KEY, max_retries=0)
    listed = {model.id async for model in client.models.list()}
    assert {"secret-purple", "secret-orange", SMOLLM2_ID} <= listed

    async def ask(model: str):
        return await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=24
        )

    replies = await asyncio.gather(ask("secret-purple"), ask("secret-orange"), ask(SMOLLM2_ID))
    texts = [reply.choices[0].message.content for reply in replies]
    assert texts[:2] == [ANSWERS["secret-purple"], ANSWERS["secret-orange"]]
    assert texts[2] not in ANSWERS.values()
    assert all(reply.usage.completion_tokens > 0 for reply in replies)
    assert [reply.model for reply in replies] == ["secret-purple", "secret-orange", SMOLLM2_ID]
    registry = adapter_server.services.registry
    assert sorted(registry.loaded_ids()) == sorted([SMOLLM2_ID, "secret-purple", "secret-orange"])

    stream = await client.chat.completions.create(
        model="secret-purple", messages=[{"role": "user", "content": QUESTION}], temperature=0, stream=True
    )
    assert (
        "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        == ANSWERS["secret-purple"]
    )

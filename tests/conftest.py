import pytest
import torch

from helpers.corpus import run_build, shared_data_dir


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    yield


@pytest.fixture
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    def make(vocab=300, hidden=64, layers=2, seed=0):
        torch.manual_seed(seed)
        cfg = LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
        )
        cfg._attn_implementation = "sdpa"
        return LlamaForCausalLM(cfg).eval()

    return make


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from pedgpt.models.tokenizer import train_bpe_tokenizer

    texts = [
        "宝宝发烧了怎么办？先测量体温，注意补充水分。",
        "Human: 孩子咳嗽\n\nAssistant: 建议观察精神状态。",
        "手足口病多见于五岁以下儿童，口腔和手足出现疱疹。",
    ] * 20
    return train_bpe_tokenizer(texts, vocab_size=400)


@pytest.fixture(scope="session")
def shared_corpus(tmp_path_factory):
    """One PedCorpus build of ../shared/data (or $PEDGPT_DATA_DIR) per test session: (out_dir, stats)."""
    src = shared_data_dir()
    if src is None:
        pytest.skip("needs ../shared/data or PEDGPT_DATA_DIR")
    out = tmp_path_factory.mktemp("shared_pedcorpus")
    return out, run_build(src, out)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """A cache directory shared by the shared-data tests (the tokenizer trained on the build is reused)."""
    return tmp_path_factory.mktemp("shared_cache")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """A pedgpt cache directory shared by a session's tiny runs (the tokenizer is trained once and reused)."""
    return tmp_path_factory.mktemp("pedgpt-cache")

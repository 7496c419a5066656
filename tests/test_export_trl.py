"""The `trl` export trains: TRL's DPOTrainer runs two steps on it, with a tiny Llama and a tokenizer
built here from the exported texts (nothing is downloaded)."""
from __future__ import annotations

import copy
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

from pipeline.store import commit_version, export_version  # noqa: E402
from test_store_sample import build_tables, load_records  # noqa: E402

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <eos> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|> {% endif %}")
SPECIAL = ["<pad>", "<unk>", "<eos>", "<|user|>", "<|assistant|>", "<|system|>"]


def tiny_tokenizer(ds):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    texts = (m["content"] for row in ds for col in ("prompt", "chosen", "rejected") for m in row[col])
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=2000, special_tokens=SPECIAL))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


@pytest.mark.slow
def test_dpo_trainer_runs_on_trl_export(tmp_path):
    import datasets
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    ws = tmp_path / "ws"
    commit_version(ws, "pandalm", *build_tables(load_records()[:120]))
    export_version(ws, "pandalm", tmp_path / "trl", fmt="trl")
    ds = datasets.load_from_disk(str(tmp_path / "trl"))
    assert ds.column_names == ["prompt", "chosen", "rejected"]

    tokenizer = tiny_tokenizer(ds)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None))
    args = DPOConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
                     gradient_accumulation_steps=1, learning_rate=1e-3, max_length=256, logging_steps=1,
                     save_strategy="no", report_to="none", use_cpu=True, bf16=False,
                     gradient_checkpointing=False, dataloader_num_workers=0, disable_tqdm=True, seed=0)
    # TRL 1.16 rebuilds a missing ref_model from model.config._name_or_path, which an in-memory model
    # lacks, so the frozen reference is passed explicitly
    ref_model = copy.deepcopy(model)
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=ds, processing_class=tokenizer)
    result = trainer.train()
    assert trainer.state.global_step == 2
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert math.isfinite(result.training_loss)
    assert not (tmp_path / "out" / "checkpoint-2").exists()

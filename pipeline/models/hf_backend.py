"""transformers: for GPUs without vLLM, and the reference the other backends are checked against."""
from __future__ import annotations

from itertools import groupby

from .types import Completion, Sampling


class TransformersBackend:
    name = "transformers"

    def __init__(self, path, max_model_len: int, seed: int = 0, device: str | None = None,
                 dtype: str | None = None, batch_size: int = 16, **_):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device == "cuda" else torch.float32)
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype).to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None \
            else self.tokenizer.eos_token_id
        self.batch_size, self.seed = batch_size, seed
        self.engine = f"transformers {transformers.__version__} ({self.device})"
        self._grammars: dict[str, object] = {}

    def _json_processor(self, schema_text: str):
        import xgrammar as xgr
        from xgrammar.contrib.hf import LogitsProcessor

        if schema_text not in self._grammars:
            info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
            self._grammars[schema_text] = xgr.GrammarCompiler(info).compile_json_schema(
                schema_text, any_whitespace=False, separators=(",", ":"))  # compact, as on vLLM
        return LogitsProcessor(self._grammars[schema_text])  # single use: one per generate() call

    def generate(self, prompts: list[list[int]], sampling: Sampling, seeds: list[int]) -> list[list[Completion]]:
        """Left-padded batches. torch has one random stream per batch, so a batch is seeded with
        its first request's seed: reproducible for the same batch, unlike vLLM's per-request seeds."""
        torch = self.torch
        out: list[list[Completion]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start:start + self.batch_size]
            width = max(map(len, batch))
            ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in batch], device=self.device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=self.device)
            kwargs = dict(max_new_tokens=sampling.max_tokens, num_return_sequences=sampling.n,
                          pad_token_id=self.pad_id, eos_token_id=self.tokenizer.eos_token_id)
            if sampling.temperature > 0:
                kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if sampling.stop:
                kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
            if sampling.json_schema:
                kwargs["logits_processor"] = [self._json_processor(sampling.json_schema)]
            torch.manual_seed(seeds[start])
            with torch.inference_mode():
                generated = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)[:, width:].tolist()
            for b, prompt in enumerate(batch):
                out.append([self._completion(generated[b * sampling.n + k], len(prompt), sampling)
                            for k in range(sampling.n)])
        return out

    def _completion(self, tokens: list[int], prompt_tokens: int, sampling: Sampling) -> Completion:
        eos = self.tokenizer.eos_token_id
        finish = "length"
        if eos in tokens:
            tokens, finish = tokens[:tokens.index(eos)], "stop"
        else:
            while tokens and tokens[-1] == self.pad_id:
                tokens.pop()
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        for s in sampling.stop:  # stop strings end the text, as in vLLM (the stop string excluded)
            if s in text:
                text, finish = text[:text.index(s)], "stop"
        if finish == "length" and len(tokens) < sampling.max_tokens:
            finish = "stop"
        return Completion(text, finish, prompt_tokens, len(tokens))

    def logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """One forward pass per distinct context; its KV cache is then repeated across that
        context's continuations, which run as one right-padded batch (padding at the end cannot
        affect earlier positions under causal attention)."""
        torch = self.torch
        result: list[list[float]] = [[] for _ in items]
        order = sorted(range(len(items)), key=lambda i: items[i][0])
        for ctx, group in groupby(order, key=lambda i: items[i][0]):
            group = list(group)
            for start in range(0, len(group), self.batch_size):
                part = group[start:start + self.batch_size]
                with torch.inference_mode():
                    head = self.model(input_ids=torch.tensor([ctx], device=self.device), use_cache=True,
                                      logits_to_keep=1)
                    cache = head.past_key_values
                    if len(part) > 1:
                        cache.batch_repeat_interleave(len(part))
                    conts = [items[i][1] for i in part]
                    width = max(map(len, conts))
                    ids = torch.tensor([c + [self.pad_id] * (width - len(c)) for c in conts], device=self.device)
                    tail = self.model(input_ids=ids, past_key_values=cache, use_cache=True)
                    # logits predicting continuation token j: position j-1 of the tail, and for
                    # j = 0 the last position of the context
                    logits = torch.cat([head.logits[:, -1:].expand(len(part), -1, -1), tail.logits[:, :-1]], dim=1)
                    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
                for row, i in enumerate(part):
                    result[i] = logp[row, :len(items[i][1])].tolist()
        return result

    def close(self) -> None:
        del self.model

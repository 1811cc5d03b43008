"""The language-model task: next-token prediction over one token stream (The Time Machine)."""
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from data import ensure_file, load_lm_data
from data.iterators import epoch_batches, partition
from data.timemachine import tokenize
from models import detach, generate
from runner.config import check_fits_data
from runner.train import perplexity, step


class LanguageModelTask:
    def __init__(self, cfg):
        """Load and check the data: bad input fails here, before any result is written."""
        d = cfg.data
        path = ensure_file(Path(d.root), d.file, d.url, d.sha1, d.download)
        self.cfg, self.data = cfg, load_lm_data(path, d.token, d.max_tokens, d.val_tokens,
                                                d.min_freq)
        check_fits_data(cfg, len(self.data.train), len(self.data.val))
        self.provenance = self.data.provenance
        self.carry_state = d.sampling == "sequential"
        self.steps_per_epoch = len(partition(self.data.train, 0, d.batch_size, d.num_steps)[0])

    def build(self, device):
        """The model, its data on `device`, and the minibatch generator; seeded by the caller."""
        self.generator = torch.Generator().manual_seed(self.cfg.seed)  # offsets and order
        self.data.train, self.data.val = self.data.train.to(device), self.data.val.to(device)
        return instantiate(self.cfg.model, vocab_size=len(self.data.vocab))

    def train_epoch(self, model, optimizer, scheduler):
        """Returns (mean token cross-entropy, tokens) as device values: no host sync here."""
        d = self.cfg.data
        X, Y = epoch_batches(d.sampling, self.data.train, d.batch_size, d.num_steps,
                             self.generator)  # (num_batches, T, B) each
        params = [p for p in model.parameters() if p.requires_grad]
        clip, carry = self.cfg.train.grad_clip, self.carry_state  # no config look-ups per batch
        loss_sum, state = torch.zeros((), device=X.device), None
        for x, y in zip(X, Y):  # (T, B) each
            if state is None or not carry:
                state = model.begin_state(X.shape[2], X.device)
            else:
                state = detach(state)  # sequential partitioning: keep the values, cut the graph
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            step(loss, params, optimizer, scheduler, clip)
            loss_sum += loss.detach()
        return loss_sum / len(X), X.numel()  # batches hold B*T tokens each: the token mean

    def evaluate(self, model) -> float:
        """Held-out perplexity, the stream partitioned sequentially from its start."""
        corpus, num_steps = self.data.val, self.cfg.data.num_steps
        batch_size = min(self.cfg.data.batch_size, (len(corpus) - 1) // num_steps)
        X, Y = partition(corpus, 0, batch_size, num_steps)
        loss_sum, state = torch.zeros((), device=corpus.device), None
        for x, y in zip(X, Y):
            if state is None or not self.carry_state:
                state = model.begin_state(batch_size, corpus.device)
            logits, state = model(x, state)
            loss_sum += F.cross_entropy(logits.reshape(-1, model.vocab_size), y.reshape(-1))
        return perplexity(float(loss_sum) / len(X))

    def outputs(self, model, device) -> tuple[dict, dict]:
        """A greedy continuation of the configured prefix (no extra metrics)."""
        s, vocab = self.cfg.sample, self.data.vocab
        tokens = tokenize([s.prefix], self.cfg.data.token)
        ids = generate(model, vocab.indices(tokens), s.num_preds, device)
        joiner = "" if self.cfg.data.token == "char" else " "
        return {"sample": {"prefix": s.prefix, "num_preds": s.num_preds,
                           "text": joiner.join([*tokens, *vocab.to_tokens(ids)])}}, {}

"""The language-model task: next-token prediction over one token stream (The Time Machine).

Held-out perplexity scores every target of the held-out slice exactly once, by one protocol
whatever data.batch_size and data.num_steps are: the slice is read as one stream from its
start, a recurrent model carrying its state across all of it, the Transformer predicting each
token from the `model.context` tokens before it (fewer at the slice's start). It is the same as
feeding the slice one token at a time with the state carried (tests/test_heldout.py checks
that), computed in few calls."""
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from data import ensure_file, load_lm_data
from data.iterators import epoch_batches, min_tokens, partition
from data.timemachine import tokenize
from models import LanguageModel, TransformerLM, detach, generate
from models.packed import member_losses
from runner.errors import ConfigError
from runner.tasks.build import constructor_keys, recurrent_keys, recurrent_network
from runner.tasks.loop import perplexity
from runner.tasks.task import Metric, Task

log = logging.getLogger(__name__)
# the language model's figures, and the translator's per target token
PERPLEXITY = (Metric("train_perplexity", "minimize", "training perplexity", "ppl"),
              Metric("val_perplexity", "minimize", "held-out perplexity", "val_ppl"))



def network_class(model) -> type:
    """The class this task builds around `model` (conf/model/)."""
    return TransformerLM if model.get("cell") == "transformer" else LanguageModel


def language_model(model, vocab_size: int, device="cpu"):
    """The network this task trains around `model` (conf/model/) on `device`: the causal
    Transformer, or the recurrent cells between an input (one-hot or embedding) and an output
    layer, computed by model.impl's choice for the device."""
    if network_class(model) is TransformerLM:
        return TransformerLM(vocab_size=vocab_size, **OmegaConf.to_container(model, resolve=True))
    return recurrent_network(LanguageModel, model, device, vocab_size=vocab_size)


class LanguageModelTask(Task):
    metrics, train_metric, val_metric = PERPLEXITY, "train_perplexity", "val_perplexity"
    train_score = staticmethod(perplexity)  # of an epoch's mean token cross-entropy

    @staticmethod
    def model_keys(model) -> list[str]:
        """The keys of conf/model/ the network takes (runner/run/keys.py)."""
        if network_class(model) is TransformerLM:
            return constructor_keys(TransformerLM, runtime=("vocab_size",))
        return recurrent_keys(LanguageModel, ("vocab_size",), model)

    @staticmethod
    def data_file(cfg) -> Path:
        """The corpus file, downloaded (sha1-checked) first when missing and allowed."""
        d = cfg.data
        return ensure_file(Path(d.root), d.file, d.url, d.sha1, d.download)

    def __init__(self, cfg, path: Path | None = None, *, task: str, file: str, url: str,
                 sha1: str | None, root: str, download: bool, token: str,
                 max_tokens: int | None, val_tokens: int, min_freq: int, batch_size: int,
                 num_steps: int, sampling: str):
        """Load and check the data (conf/data/timemachine.yaml's keys; `file` under `root`,
        from `url` when missing and `download`): bad input fails here, before any result is
        written. `task` is the name results and reports give it."""
        path = path or self.data_file(cfg)
        self.cfg, self.data = cfg, load_lm_data(path, token, max_tokens, val_tokens, min_freq)
        check_fits_data(cfg, self.data)
        self.provenance = self.data.provenance
        self.val_tokens_scored = len(self.data.val) - 1  # every token after the first
        self.token, self.sampling = token, sampling
        self.batch_size, self.num_steps = batch_size, num_steps
        self.carry_state = sampling == "sequential"
        self.steps_per_epoch = len(partition(self.data.train, 0, batch_size, num_steps)[0])

    def new_model(self, device):
        """The model, its data on `device`, and the minibatch generator; seeded by the caller."""
        self.generator = torch.Generator().manual_seed(self.cfg.seed)  # offsets and order
        self.data.train, self.data.val = self.data.train.to(device), self.data.val.to(device)
        return language_model(self.cfg.model, len(self.data.vocab), device)

    def train_batches(self):
        """The epoch's (input, target) pairs, (T, B) each; sequential partitioning carries the
        state from one batch to the next, so a new epoch starts it afresh."""
        X, Y = epoch_batches(self.sampling, self.data.train, self.batch_size, self.num_steps,
                             self.generator)  # (num_batches, T, B) each
        self.state = None
        return zip(X, Y)

    def loss(self, model, batch):
        """Mean token cross-entropy of one batch, and its B * T tokens."""
        x, y = batch  # (T, B) each
        if self.state is None or not self.carry_state:
            state = model.begin_state(x.shape[1], x.device)
        else:
            state = detach(self.state)  # sequential partitioning: keep the values, cut the graph
        logits, self.state = model(x, state)  # (T, B, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), y.numel()

    def packed_loss(self, packed, batches, state):
        """loss() for a pack: each member's mean token cross-entropy, its state carried as
        loss() carries it (none at an epoch's start: state None)."""
        x = torch.stack([b[0] for b in batches])  # (P, T, B)
        y = torch.stack([b[1] for b in batches])
        if state is None or not self.carry_state:
            state = packed.begin_state(x.shape[2], x.device)
        else:
            state = detach(state)  # keep the values, cut the graph
        logits, state = packed(x, state)  # (P, T, B, V)
        return member_losses(logits, y), y[0].numel(), state

    def evaluate(self, model) -> float:
        """Held-out perplexity over every target of the held-out slice (module docstring)."""
        return perplexity(float(stream_nll(model, self.data.val)) / self.val_tokens_scored)

    def outputs(self, model, device) -> tuple[dict, dict]:
        """A greedy continuation of the configured prefix (no extra metrics)."""
        s, vocab = self.cfg.sample, self.data.vocab
        tokens = tokenize([s.prefix], self.token)
        ids = generate(model, vocab.indices(tokens), s.num_preds, device)
        joiner = "" if self.token == "char" else " "
        return {"sample": {"prefix": s.prefix, "num_preds": s.num_preds,
                           "text": joiner.join([*tokens, *vocab.to_tokens(ids)])}}, {}


def stream_nll(model, ids: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """The summed cross-entropy of every target ids[1:], reading `ids` (N,) as one stream from
    its start. A recurrent model carries its state through `chunk`-step calls (the chunk length
    bounds the logits' memory and changes nothing else). A window model (the Transformer, whose
    state is its last `context` ids) scores target j + 1 from ids[max(0, j - context) : j + 1]:
    the first context + 1 targets in one causal pass, the rest as a batch of full windows."""
    x, y = ids[:-1], ids[1:]
    context = getattr(model, "context", None)
    if context is None:
        parts, state = [], model.begin_state(1, ids.device)
        for i in range(0, len(x), chunk):
            logits, state = model(x[i:i + chunk, None], state)  # (T, 1, V)
            parts.append(F.cross_entropy(logits[:, 0], y[i:i + chunk], reduction="sum"))
        return torch.stack(parts).sum()
    head = min(context + 1, len(x))  # targets whose window starts at the stream's start
    logits, _ = model(x[:head, None], model.begin_state(1, ids.device))
    total = F.cross_entropy(logits[:, 0], y[:head], reduction="sum")
    if len(x) == head:
        return total
    windows = x.unfold(0, context + 1, 1)[1:]  # (N - 2 - C, C + 1); row k: target head + k
    per_call = chunk // (context + 1) + 1
    for i in range(0, len(windows), per_call):
        w = windows[i:i + per_call].T  # (context + 1, b)
        logits, _ = model(w[-1:], w[:-1])  # (1, b, V): the last id, the context as its state
        total = total + F.cross_entropy(logits[0], y[head + i:head + i + w.shape[1]],
                                        reduction="sum")
    return total


def check_fits_data(cfg, data) -> None:
    """The corpus must hold at least one full training batch and one held-out sequence, and
    the vocabulary more than <unk>; a held-out slice shorter than asked is said, not hidden."""
    b, t = cfg.data.batch_size, cfg.data.num_steps
    need, train_tokens, val_tokens = min_tokens(b, t), len(data.train), len(data.val)
    if train_tokens < need:
        raise ConfigError(
            f"data.num_steps={t} with data.batch_size={b} needs at least {need} training "
            f"tokens, but the corpus gives {train_tokens} (data.max_tokens="
            f"{cfg.data.max_tokens}): lower data.num_steps or data.batch_size, or raise "
            f"data.max_tokens")
    if val_tokens < t + 1:
        raise ConfigError(
            f"data.num_steps={t} needs at least {t + 1} held-out tokens, but there are "
            f"{val_tokens} (data.val_tokens={cfg.data.val_tokens}; the corpus has too few "
            f"tokens after the training slice): lower data.num_steps or data.max_tokens, or "
            f"raise data.val_tokens")
    if len(data.vocab) == 1:  # every token <unk>: perplexity 1 would mean nothing
        top = data.vocab.token_freqs[0][1] if data.vocab.token_freqs else 0
        raise ConfigError(
            f"data.min_freq={cfg.data.min_freq} leaves only <unk> in the vocabulary (the most "
            f"frequent training token occurs {top} times): lower data.min_freq to at most "
            f"{top} (e.g. data.min_freq=0)")
    if val_tokens < cfg.data.val_tokens:
        log.warning("data.val_tokens=%d, but only %d tokens follow the training slice: the "
                    "held-out slice has %d (dataset.val_tokens); lower data.max_tokens for a "
                    "longer one", cfg.data.val_tokens, val_tokens, val_tokens)

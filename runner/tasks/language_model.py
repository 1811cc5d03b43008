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
from runner.errors import ConfigError
from runner.tasks.build import constructor_keys, recurrent_keys, recurrent_network
from runner.tasks.loop import perplexity, step

log = logging.getLogger(__name__)


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


class LanguageModelTask:
    train_curve = "train_perplexity"  # the per-epoch training figure (History's list)
    score = staticmethod(perplexity)  # of an epoch's mean loss

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

    def __init__(self, cfg, path: Path | None = None):
        """Load and check the data: bad input fails here, before any result is written."""
        d = cfg.data
        path = path or self.data_file(cfg)
        self.cfg, self.data = cfg, load_lm_data(path, d.token, d.max_tokens, d.val_tokens,
                                                d.min_freq)
        check_fits_data(cfg, self.data)
        self.provenance = self.data.provenance
        self.val_tokens_scored = len(self.data.val) - 1  # every token after the first
        self.carry_state = d.sampling == "sequential"
        self.steps_per_epoch = len(partition(self.data.train, 0, d.batch_size, d.num_steps)[0])

    def new_model(self, device):
        """The model, its data on `device`, and the minibatch generator; seeded by the caller."""
        self.generator = torch.Generator().manual_seed(self.cfg.seed)  # offsets and order
        self.data.train, self.data.val = self.data.train.to(device), self.data.val.to(device)
        return language_model(self.cfg.model, len(self.data.vocab), device)

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
        """Held-out perplexity over every target of the held-out slice (module docstring)."""
        return perplexity(float(stream_nll(model, self.data.val)) / self.val_tokens_scored)

    def outputs(self, model, device) -> tuple[dict, dict]:
        """A greedy continuation of the configured prefix (no extra metrics)."""
        s, vocab = self.cfg.sample, self.data.vocab
        tokens = tokenize([s.prefix], self.cfg.data.token)
        ids = generate(model, vocab.indices(tokens), s.num_preds, device)
        joiner = "" if self.cfg.data.token == "char" else " "
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

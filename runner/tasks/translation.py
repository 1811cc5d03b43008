"""The translation task: a recurrent encoder-decoder on Tatoeba English->French, trained with
teacher forcing on a per-token masked cross-entropy, scored with BLEU."""
from pathlib import Path

import torch
from omegaconf import OmegaConf

from data import fra_file, load_nmt_data
from data.tatoeba import RESERVED, truncate_pad
from models import Seq2Seq, TransformerSeq2Seq, masked_cross_entropy
from models.packed_seq2seq import member_masked_losses
from runner.errors import ConfigError
from runner.tasks.bleu import STUDY_SENTENCES, corpus_bleu, study_bleu
from runner.tasks.build import constructor_keys, recurrent_keys, recurrent_network
from runner.tasks.language_model import PERPLEXITY
from runner.tasks.loop import perplexity
from runner.tasks.task import Metric, Task


def network_class(model) -> type:
    """The class this task builds around `model` (conf/model/)."""
    return TransformerSeq2Seq if model.get("cell") == "transformer" else Seq2Seq


def seq2seq(model, src_vocab_size: int, tgt_vocab_size: int, device="cpu"):
    """The encoder-decoder this task trains from `model` (conf/model/) on `device`: d2l's
    Transformer, or recurrent cells in a GRU-style encoder and decoder (with attention when
    model.attention), computed by model.impl's choice for the device."""
    sizes = dict(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size)
    if network_class(model) is TransformerSeq2Seq:
        return TransformerSeq2Seq(**sizes, **OmegaConf.to_container(model, resolve=True))
    return recurrent_network(Seq2Seq, model, device, **sizes)


class TranslationTask(Task):
    metrics = (*PERPLEXITY, Metric("bleu", "maximize", "held-out BLEU"))
    train_metric, val_metric = "train_perplexity", "val_perplexity"
    train_score = staticmethod(perplexity)  # of an epoch's mean cross-entropy per target token

    @staticmethod
    def model_keys(model) -> list[str]:
        """The keys of conf/model/ the network takes (runner/run/keys.py)."""
        sizes = ("src_vocab_size", "tgt_vocab_size")
        if network_class(model) is TransformerSeq2Seq:
            return constructor_keys(TransformerSeq2Seq, runtime=sizes)
        return recurrent_keys(Seq2Seq, sizes, model)

    @staticmethod
    def data_file(cfg) -> Path:
        """fra.txt, extracted from the (downloaded, sha1-checked) zip first when missing."""
        d = cfg.data
        return fra_file(Path(d.root), d.file, d.url, d.zip_sha1, d.sha1, d.download)

    def __init__(self, cfg, path: Path | None = None, *, task: str, file: str, url: str,
                 zip_sha1: str | None, sha1: str | None, root: str, download: bool,
                 num_examples: int, val_pairs: int, min_freq: int, batch_size: int,
                 num_steps: int):
        """Load and split the pairs (conf/data/tatoeba.yaml's keys): bad input fails here,
        before any result is written. `task` is the name results and reports give it."""
        path = path or self.data_file(cfg)
        # The held-out pairs follow the training lines in the file: the same for every seed.
        self.data = load_nmt_data(path, num_examples, val_pairs, num_steps, min_freq)
        self.cfg, self.provenance = cfg, self.data.provenance
        self.batch_size, self.num_steps = batch_size, num_steps
        self.num_train = len(self.data.train[0])
        self.steps_per_epoch = -(-self.num_train // batch_size)
        self.bos, self.eos = self.data.tgt_vocab["<bos>"], self.data.tgt_vocab["<eos>"]
        # What evaluate() averages over: every held-out target token, <eos> included.
        self.val_tokens_scored = self.provenance["val_tgt_tokens"]
        check_fits_model(cfg, self.data.val)
        check_vocabularies(cfg, self.data)

    def new_model(self, device):
        self.generator = torch.Generator().manual_seed(self.cfg.seed)  # minibatch order
        self.device = device
        self.data.train = tuple(t.to(device) for t in self.data.train)
        self.data.val = tuple(t.to(device) for t in self.data.val)
        return seq2seq(self.cfg.model, len(self.data.src_vocab), len(self.data.tgt_vocab),
                       device)

    def batches(self, arrays, order):
        """Time-major minibatches (src (T, b), src_len (b,), tgt (T, b), tgt_len (b,)), the
        decoder's input being <bos> then the target shifted right (teacher forcing)."""
        src, src_len, tgt, tgt_len = arrays
        batch_size = self.batch_size
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            y = tgt[idx].T
            dec_in = torch.cat([torch.full_like(y[:1], self.bos), y[:-1]])
            yield src[idx].T, src_len[idx], dec_in, y, tgt_len[idx]

    def train_batches(self):
        order = torch.randperm(self.num_train, generator=self.generator).to(self.device)
        return self.batches(self.data.train, order)

    def loss(self, model, batch):
        """Mean cross-entropy per target token of one batch (padding masked), and its target
        tokens."""
        x, x_len, dec_in, y, y_len = batch
        total, n = masked_cross_entropy(model(x, x_len, dec_in), y, y_len)
        return total / n, n

    def packed_loss(self, packed, batches, state):
        """loss() for a pack (a PackedSeq2Seq): each member's mean cross-entropy per valid
        target token, and its (P,) counts of them; no state."""
        x, x_len, dec_in, y, y_len = (torch.stack(f) for f in zip(*batches))
        return (*member_masked_losses(packed(x, x_len, dec_in), y, y_len), None)

    def evaluate(self, model) -> float:
        """Held-out perplexity per target token, teacher-forced as in training, over every
        held-out target token (<eos> included): targets are never cut to num_steps. Each
        source is read as in training, padded to num_steps, or whole when longer; batches hold
        sources of one padded length, so none is read with more padding than that."""
        src, src_len, tgt, tgt_len = self.data.val
        widths = src_len.clamp(min=self.num_steps)  # (N,) source positions read
        loss_sum = count = torch.zeros((), device=self.device)
        for width in widths.unique().tolist():
            order = (widths == width).nonzero().squeeze(1)
            arrays = (src[:, :width], src_len, tgt, tgt_len)
            for x, x_len, dec_in, y, y_len in self.batches(arrays, order):
                total, n = masked_cross_entropy(model(x, x_len, dec_in), y, y_len)
                loss_sum, count = loss_sum + total, count + n
        return perplexity(float(loss_sum / count))

    def translate(self, model, tokens: list[str]) -> str:
        """Greedy translation of tokenized English, as d2l's predict_seq2seq."""
        num_steps, vocab = self.num_steps, self.data.src_vocab
        ids = vocab.indices(tokens) + [vocab["<eos>"]]
        src = torch.tensor(truncate_pad(ids, num_steps, vocab["<pad>"]), device=self.device)
        out, _ = model.translate(src, min(len(ids), num_steps), self.bos, self.eos, num_steps)
        return " ".join(self.data.tgt_vocab.to_tokens(out))

    def outputs(self, model, device) -> tuple[dict, dict]:
        """Corpus BLEU on the held-out pairs (references whole, not cut to num_steps), and the
        study's four sentences with its BLEU. `in_training` says whether a sentence's source
        is a training source: a study BLEU on such a sentence scores recall of a training
        pair, not translation of unseen text."""
        pairs = self.data.val_sentences
        bleu = corpus_bleu([self.translate(model, src) for src, _ in pairs],
                           [" ".join(tgt) for _, tgt in pairs])
        sentences = []
        for english, french in STUDY_SENTENCES:
            translation = self.translate(model, english.split())
            sentences.append({"source": english, "reference": french,
                              "translation": translation,
                              "study_bleu": study_bleu(translation, french, k=2),
                              "in_training": english in self.data.train_sources})
        return ({"translations": {"corpus_bleu": bleu, "study_sentences": sentences}},
                {"bleu": bleu["score"]})


def check_fits_model(cfg, val) -> None:
    """A Transformer's positions stop at model.max_len; held-out rows are never cut, so the
    longest must fit, or evaluation would fail after training."""
    max_len = cfg.model.get("max_len")
    need = max(val[0].shape[1], val[2].shape[1])
    if max_len is not None and need > max_len:
        raise ConfigError(f"model.max_len={max_len} is too short for the longest held-out "
                          f"sentence ({need} positions, <eos> included): raise model.max_len "
                          f"to at least {need}, or lower data.val_pairs")


def check_vocabularies(cfg, data) -> None:
    """Each vocabulary needs a word beyond <unk> and the reserved tokens: with every word <unk>,
    perplexity and BLEU would measure nothing."""
    for side, vocab in (("source", data.src_vocab), ("target", data.tgt_vocab)):
        if len(vocab) == 1 + len(RESERVED):
            top = vocab.token_freqs[0][1] if vocab.token_freqs else 0
            raise ConfigError(f"data.min_freq={cfg.data.min_freq} leaves no {side} word in the "
                              f"vocabulary, only <unk> and the reserved tokens (the most "
                              f"frequent occurs {top} times): lower data.min_freq to at most "
                              f"{top} (e.g. data.min_freq=2)")

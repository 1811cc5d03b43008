"""The study's own seq2seq (d2l 0.17.6 train_seq2seq, GRU encoder-decoder) on the same
configuration as `python -m runner data=tatoeba model=gru`, for a tokens/sec comparison.

Run it with an interpreter that has d2l 0.17.6 (see ../shared/tools/d2l_reference.py):
    .d2l-env/bin/python bench/d2l_seq2seq.py PATH/TO/fra.txt [num_epochs]
d2l would download fra-eng.zip; it reads the given fra.txt instead. Prints one JSON line.
"""
import contextlib
import io
import json
import sys
import time
import types

for name in ("torchvision", "torchvision.transforms"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]

import torch  # noqa: E402
from d2l import torch as d2l  # noqa: E402
from torch import nn  # noqa: E402


class Seq2SeqDecoder(d2l.Decoder):
    """The book's GRU decoder (section 9.7), which the 0.17.6 package does not ship: the
    encoder's last top-layer state is concatenated to every input embedding."""

    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout)
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs, *args):
        return enc_outputs[1]

    def forward(self, X, state):
        X = self.embedding(X).permute(1, 0, 2)  # (T, B, E)
        context = state[-1].repeat(X.shape[0], 1, 1)
        output, state = self.rnn(torch.cat((X, context), 2), state)
        return self.dense(output).permute(1, 0, 2), state


path, num_epochs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
d2l.Animator.add = lambda *a, **k: None  # keep plotting out of the timed loop
d2l.read_data_nmt = lambda: open(path, encoding="utf-8").read()
torch.manual_seed(0)
embed_size, num_hiddens, num_layers, dropout = 32, 32, 2, 0.1
batch_size, num_steps, lr = 64, 10, 0.005
train_iter, src_vocab, tgt_vocab = d2l.load_data_nmt(batch_size, num_steps, num_examples=600)
encoder = d2l.Seq2SeqEncoder(len(src_vocab), embed_size, num_hiddens, num_layers, dropout)
decoder = Seq2SeqDecoder(len(tgt_vocab), embed_size, num_hiddens, num_layers, dropout)
net = d2l.EncoderDecoder(encoder, decoder)
out = io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stdout(out):
    d2l.train_seq2seq(net, train_iter, lr, num_epochs, tgt_vocab, d2l.try_gpu())
wall = time.perf_counter() - start
last = out.getvalue().strip().splitlines()[-1]  # "loss 0.019, 12345.6 tokens/sec on cpu"
print(json.dumps({"implementation": "d2l-0.17.6 train_seq2seq", "num_epochs": num_epochs,
                  "threads": torch.get_num_threads(), "wall_s": round(wall, 2),
                  "tokens_per_sec_last_epoch_d2l_timer": float(last.split(",")[1].split()[0]),
                  "loss_last_epoch": float(last.split(",")[0].split()[1])}))

"""A pack's memory on CPU: models/packed_memory.py's count against the peak resident memory
one training step adds, each pack size measured in a fresh process.

    python -m bench.pack_memory [--cell gru] [--members 1,4,16] [--num_hiddens 256]
    python -m bench.pack_memory --task translation [--cell gru] [--members 1,16,64]

The study's sizes otherwise (vocabulary 28, batch_size 32, num_steps 35, one layer, one-hot,
float32, SGD with clipping; translation: its preset, conf/preset/recurrent/tatoeba.yaml, at
the vocabularies of the local fra.txt's lines 0..600, with SGD). Measured: the process's peak
resident set (VmHWM, reset through /proc/self/clear_refs just before the step) less its
resident set before it; the pack, its parameters included, is built before. So the figure to
compare is the count's total less the parameters (and less the optimizer state, none for
SGD). Linux only. tracemalloc cannot see torch's allocations (made in C++, not through
Python's allocator)."""
import argparse
import json
import os
import subprocess
import sys

from models.packed_memory import memory_parts

SIZES = {"vocab_size": 28, "num_layers": 1, "batch_size": 32, "num_steps": 35}
TRANSLATION = {"task": "translation", "src_vocab_size": 189, "tgt_vocab_size": 201,
               "num_hiddens": 32, "num_layers": 2, "embed_size": 32, "dropout": 0.1,
               "batch_size": 64, "num_steps": 10}
CHILD = """
import json, sys, torch
from models.cells import GRUFused, RNNFused, lstm
from models.scratch import GRUScratch, LSTMScratch, RNNScratch
from models.lm import LanguageModel
from models.packed import PackedLM, PackedSGD, clip_per_member, member_losses
from models.packed_seq2seq import member_masked_losses
from models.seq2seq import Seq2Seq
torch.set_num_threads(1)
s, P = json.loads(sys.argv[1]), int(sys.argv[2])
layer = {"rnn": RNNFused, "gru": GRUFused, "lstm": lstm, "rnn_scratch": RNNScratch,
         "gru_scratch": GRUScratch, "lstm_scratch": LSTMScratch}[s["cell"]]
shape = (P, s["num_steps"], s["batch_size"])
if s.get("task") == "translation":
    packed = PackedLM.pack([Seq2Seq(s["src_vocab_size"], s["tgt_vocab_size"], layer,
                                    s["num_hiddens"], s["num_layers"], s["dropout"],
                                    s["embed_size"]) for _ in range(P)]).seed_dropout(range(P))
    src, dec_in, y = (torch.randint(0, s[f"{v}_vocab_size"], shape) for v in ("src", "tgt", "tgt"))
    src_len, y_len = (torch.randint(1, s["num_steps"] + 1, (P, s["batch_size"])) for _ in "xy")
    def losses():
        return member_masked_losses(packed(src, src_len, dec_in), y, y_len)[0]
else:
    packed = PackedLM.pack([LanguageModel(s["vocab_size"], layer, s["num_hiddens"])
                            for _ in range(P)])
    x, y = (torch.randint(0, s["vocab_size"], shape) for _ in "xy")
    def losses():
        return member_losses(packed(x, packed.begin_state(s["batch_size"]))[0], y)
opt = PackedSGD(packed.parameters(), 1.0, P)
def kib(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
before = kib("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
losses().sum().backward()
clip_per_member(packed, 1.0)
opt.step()
print(json.dumps(1024 * (kib("VmHWM:") - before)))
"""


def measured(sizes: dict, members: int) -> int:
    # a fixed mmap threshold: glibc then maps every tensor over 64 KiB and unmaps it when
    # freed, so resident memory follows the live tensors (its default threshold grows as
    # tensors are freed, and their memory stays resident for reuse, blurring the peak)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(sizes), str(members)],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--members", default="1,4,16")
    parser.add_argument("--num_hiddens", type=int, default=None,
                        help="256 for the language model, 32 for translation")
    parser.add_argument("--task", choices=("language_model", "translation"),
                        default="language_model")
    args = parser.parse_args()
    sizes = {**(TRANSLATION if args.task == "translation" else SIZES), "cell": args.cell}
    if args.num_hiddens or args.task == "language_model":
        sizes["num_hiddens"] = args.num_hiddens or 256
    # the first pack size is the base of the last column: a fixed cost (the autograd engine,
    # kernels' first use) cancels, the part that grows with members remains
    print(f"| {args.cell} P | parameters | gradients + activations | workspace | counted step "
          f"| measured step (peak RSS) | measured / counted, beyond the first P |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    base = None
    for P in map(int, args.members.split(",")):
        parts, got = memory_parts(sizes, P), measured(sizes, P)
        step = parts["total"] - parts["parameters"] - parts["optimizer"]
        mib = [f"{v / 2**20:.1f} MiB" for v in (parts["parameters"], parts["gradients"]
               + parts["activations"], parts["workspace"], step, got)]
        ratio = f"{(got - base[1]) / (step - base[0]):.3f}" if base else "(base)"
        base = base or (step, got)
        print(f"| {P} | " + " | ".join(mib) + f" | {ratio} |")


if __name__ == "__main__":
    main()

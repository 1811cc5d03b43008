"""The memory one training step of a pack takes, from its sizes alone: to choose `pack` (the
number of members) for a GPU before building anything (docs/packing.md, Memory).

Counted in numbers of the model's dtype (b bytes each) per member, from what models/packed.py
and models/packed_scratch.py compute, with G gates (rnn 1, gru 3, lstm 4), layer inputs I_k
(I_0 = the vocabulary V one-hot, or embed_size; H above), T = num_steps, B = batch_size:

- parameters N, their gradients N, the packed optimizer's state s N (sgd 0, momentum 1,
  adam 2), and per parameter tensor each member's has-a-buffer bool (momentum) or float32
  step count (adam);
- what autograd saves for the backward: layer 0's input T B I_0; per layer a T B H per step of
  the cell (rnn 1, plus h_0; gru 7 torch.nn's, 6 d2l's; lstm 7) and its stacked output T B H;
  a (T, B, H) mask per dropout; d2l's cells also keep their gates' weights side by side
  (G > 1); the log-softmax T B V; int64 targets (and token ids, if embedded);
- a workspace the backward needs for a moment: the logits the loop holds and their gradient
  (2 T B V) and one layer's gradients (T B (G + 1) H); an estimate, checked against measured
  peaks, where the rest is exact (tests/test_packed_memory.py).

Translation's encoder-decoder (`sizes["task"] == "translation"`) is counted the same way, part
for part, in models/packed_memory_seq2seq.py.
"""
from collections.abc import Mapping

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
PER_STEP = {("rnn", False): 1, ("gru", False): 7, ("lstm", False): 7,  # per B H and step
            ("rnn", True): 1, ("gru", True): 6, ("lstm", True): 7}  # True: d2l's scratch
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
# per member and parameter tensor (models/packed_optim.py): momentum's has-a-buffer bool,
# Adam's float32 step count
STEP_BYTES = {"sgd": 0, "momentum": 1, "adam": 4, "adamw": 4}
DTYPE_BYTES = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}
INDEX = 8  # int64 token ids and targets
TASKS = ("language_model", "translation")


def form(sizes: Mapping) -> tuple[str, bool, str, str]:
    """(mode, scratch, optimizer, dtype) of `sizes`, or a ValueError naming the bad key."""
    cell = sizes["cell"]
    scratch, mode = cell.endswith("_scratch"), cell.removesuffix("_scratch")
    optimizer, dtype = sizes.get("optimizer", "sgd"), sizes.get("dtype", "float32")
    for key, value, allowed in (("cell", mode, GATES), ("optimizer", optimizer,
                                OPTIMIZER_STATES), ("dtype", dtype, DTYPE_BYTES)):
        if value not in allowed:
            raise ValueError(f"{key}={sizes[key]!r} cannot be sized: it must be one of "
                             f"{', '.join(allowed)}{' (or <cell>_scratch)' * (key == 'cell')}")
    return mode, scratch, optimizer, dtype


def stack(mode: str, scratch: bool, inputs: list[int], T: int, B: int, H: int,
          input_grad: bool = True) -> tuple[int, int, int]:
    """One stack, layer k reading inputs[k] numbers per token: its parameters, its parameter
    tensors, and the numbers its cells make autograd save per member (the steps, rnn's h_0,
    d2l's weights side by side; not the layers' inputs). `input_grad`: layer 0's input needs
    a gradient (embedded, not one-hot)."""
    G, biases = GATES[mode], 1 if scratch else 2  # d2l: one per gate; torch.nn: b_ih and b_hh
    N = sum(G * H * (i + H + biases) for i in inputs)
    tensors = len(inputs) * (3 * G if scratch else 4)
    steps = T * (PER_STEP[mode, scratch] * B * H) + (B * H if mode == "rnn" else 0)
    saved = len(inputs) * steps
    if scratch and G > 1:  # W_h side by side per layer; W_x too where its input needs a grad
        saved += sum(H * G * H + (i * G * H if (input_grad or k) else 0)
                     for k, i in enumerate(inputs))
    return N, tensors, saved


def assembled(members: int, dtype: str, optimizer: str, N: int, tensors: int, saved: int,
              index_bytes: int, workspace: int) -> dict:
    """The parts in bytes from per-member counts: N parameters in `tensors` tensors, `saved`
    numbers autograd keeps, `index_bytes` of ids and masks it keeps, `workspace` numbers."""
    P, b = members, DTYPE_BYTES[dtype]
    parts = {"parameters": P * N * b, "gradients": P * N * b,
             "optimizer": P * (N * b * OPTIMIZER_STATES[optimizer]
                               + tensors * STEP_BYTES[optimizer]),
             # + 1: nll_loss's total weight, one number for the pack
             "activations": (P * saved + 1) * b + P * index_bytes,
             "workspace": P * workspace * b}
    return {**parts, "total": sum(parts.values())}


def memory_parts(sizes: Mapping, members: int) -> dict:
    """Bytes of a pack of `members` for one training step, by part: parameters, gradients,
    optimizer (the packed optimizer's state, its step counts included), activations (what autograd
    saves), workspace (the backward's passing peak) and total. `sizes`: the study's knobs,
    cell (rnn, gru, lstm, or *_scratch), vocab_size, num_hiddens, num_layers, batch_size,
    num_steps, and optionally embed_size (None: one-hot), dropout (0), dtype ("float32"),
    optimizer ("sgd"); task ("language_model"; "translation": seq2seq_parts' sizes)."""
    task = sizes.get("task", "language_model")
    if task not in TASKS:
        raise ValueError(f"task={task!r} cannot be sized: it must be one of {', '.join(TASKS)}"
                         f" (regression models are not packed)")
    if task == "translation":
        from models.packed_memory_seq2seq import seq2seq_parts  # it builds on this module
        return seq2seq_parts(sizes, members)
    mode, scratch, optimizer, dtype = form(sizes)
    V, H, L = sizes["vocab_size"], sizes["num_hiddens"], sizes["num_layers"]
    T, B, E = sizes["num_steps"], sizes["batch_size"], sizes.get("embed_size") or None
    G = GATES[mode]
    dropout = bool(sizes.get("dropout", 0)) and L > 1
    inputs = [E or V] + [H] * (L - 1)
    N, tensors, saved = stack(mode, scratch, inputs, T, B, H, input_grad=bool(E))
    N += (V * E if E else 0) + V * H + V
    tensors += (1 if E else 0) + 2
    saved += T * B * inputs[0] + L * T * B * H + T * B * V
    saved += (L - 1) * T * B * H if dropout else 0
    indices = T * B * (2 if E else 1) + (1 if E else 0)  # targets, token ids, member index
    return assembled(members, dtype, optimizer, N, tensors, saved, indices * INDEX,
                     2 * T * B * V + T * B * (G + 1) * H)


def packed_bytes(sizes: Mapping, members: int) -> int:
    """The bytes one training step of a pack of `members` takes (memory_parts' total): pick
    the largest `members` whose packed_bytes fits the GPU's free memory, with a margin for
    the framework (CUDA context, allocator rounding)."""
    return memory_parts(sizes, members)["total"]

"""The memory one training step of a packed encoder-decoder (models/packed_seq2seq.py) takes,
from its sizes alone: models/packed_memory.py's parts for translation (docs/packing.md, Memory).

Per member, in numbers of the dtype, with PackedSeq2Seq's forward and member_masked_losses read
op by op; source and target both T = num_steps tokens (the training batches are padded or cut
to data.num_steps), E = embed_size (Seq2Seq's default: num_hiddens), V_s and V_t the
vocabularies:

- parameters: both embeddings (V_s + V_t) E, the encoder's stack over E, the decoder's over
  E + H (an embedded token, then the context), the output layer V_t (H + 1);
- what autograd saves: the embedded source T B E; the encoder's cells; below each upper layer
  the lower's output (dropped, with its mask, under dropout); not the encoder's top output,
  which nothing reads (its final state is the decoder's h_0, saved by the decoder's first
  step); the context concatenated to each embedded target token T B (E + H); the decoder's
  cells and layer outputs, its top kept by the output layer; the log-softmax T B V_t;
- int64 source ids, decoder input ids and targets (T B each), the member index and each
  member's count of valid targets; a bool (T, B) mask of valid targets (1 byte each);
- the workspace estimate: the logits and their gradient (2 T B V_t), and one layer's gradients
  (its gates' G H and its widest input's E + H per token).
"""
from collections.abc import Mapping

from models.packed_memory import GATES, INDEX, assembled, form, stack

REQUIRED = ("cell", "src_vocab_size", "tgt_vocab_size", "num_hiddens", "num_layers",
            "batch_size", "num_steps")


def seq2seq_parts(sizes: Mapping, members: int) -> dict:
    """memory_parts for translation's encoder-decoder without attention. `sizes`: cell (rnn,
    gru, lstm, or *_scratch), src_vocab_size, tgt_vocab_size, num_hiddens, num_layers,
    batch_size, num_steps, and optionally embed_size (None: num_hiddens, as Seq2Seq), dropout
    (0), dtype ("float32"), optimizer ("sgd")."""
    missing = [k for k in REQUIRED if k not in sizes]
    if missing:
        raise ValueError(f"sizes lack {', '.join(missing)}: a translation pack is sized from "
                         f"{', '.join(REQUIRED)} (the vocabularies: result.json's dataset "
                         f"src_vocab_size and tgt_vocab_size, not vocab_size)")
    if sizes.get("attention"):
        raise ValueError("attention=True cannot be sized: packs hold the encoder-decoder "
                         "without attention (model.attention=false)")
    mode, scratch, optimizer, dtype = form(sizes)
    Vs, Vt, H, L = (sizes[k] for k in ("src_vocab_size", "tgt_vocab_size", "num_hiddens",
                                       "num_layers"))
    T, B, E = sizes["num_steps"], sizes["batch_size"], sizes.get("embed_size") or H
    dropout = bool(sizes.get("dropout", 0)) and L > 1
    N_enc, tensors_enc, saved_enc = stack(mode, scratch, [E] + [H] * (L - 1), T, B, H)
    N_dec, tensors_dec, saved_dec = stack(mode, scratch, [E + H] + [H] * (L - 1), T, B, H)
    N = (Vs + Vt) * E + N_enc + N_dec + Vt * H + Vt
    tensors = 2 + tensors_enc + tensors_dec + 2  # two embeddings, output weight and bias
    saved = (saved_enc + T * B * (E + (L - 1) * H)  # its layers' inputs, not its top output
             + saved_dec + T * B * (E + H + L * H)  # its layers' inputs and its top output
             + T * B * Vt)  # the log-softmax
    saved += 2 * (L - 1) * T * B * H if dropout else 0  # the masks, (L - 1) per stack
    # source, decoder input and target ids; the member index and the count of valid targets;
    # the bool mask of valid targets
    index_bytes = (3 * T * B + 2) * INDEX + T * B
    workspace = 2 * T * B * Vt + T * B * (GATES[mode] * H + E + H)
    return assembled(members, dtype, optimizer, N, tensors, saved, index_bytes, workspace)

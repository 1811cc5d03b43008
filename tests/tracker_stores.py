"""Each tracker's store read back with the tracker's own reader (tests/test_loggers.py): the
curves a run sent, by epoch, to compare with its result.json."""
import json
import struct
import time
import zlib
from pathlib import Path

import pandas as pd


def by_epoch(result: dict, name: str = "train_perplexity") -> dict:
    curves = result["curves"]
    if name == "val_perplexity":
        return dict(zip(curves["val_epoch"], curves["val_perplexity"]))
    return dict(zip(curves["epoch"], curves[name]))


def csv_curves(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "metrics.csv").set_index("epoch")


def tensorboard_scalars(folder: Path) -> dict:
    """{tag: {step: value}} as TensorBoard reads the run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def tensorboard_hparams(folder: Path) -> dict:
    """The run's HParams summary as TensorBoard's HParams plugin reads it: {"hparams": {key:
    value}, "metrics": [tag, ...]}."""
    from google.protobuf.json_format import MessageToDict
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    found = {}
    for content in acc.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        found |= MessageToDict(data, preserving_proto_field_name=True)
    return {"hparams": found["session_start_info"]["hparams"],
            "metrics": [m["name"]["tag"] for m in found["experiment"]["metric_infos"]]}


def mlflow_runs(store: Path, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store.resolve() / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    return client, (client.search_runs([found.experiment_id]) if found else [])


def mlflow_history(client, run_id: str, key: str) -> dict:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B run file (.wandb): W&B's record log, a ':W&B' header then 32 KiB
    blocks of records, each `crc32 (seeded by its type), length, type (1 whole, 2 first, 3
    middle, 4 last piece)` and its bytes; W&B's Python reader is gone from the package."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if (left := 32768 - pos % 32768) < 7:  # a block's tail too short for a header: padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + length > len(data):  # being written: read again later
            break
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, "corrupt record"
        pending += chunk
        if kind in (1, 4):
            records.append(pending)
            pending = b""
    return records


def wandb_history(folder: Path, wait: float = 30.0) -> list[dict]:
    """The history rows of the offline runs under `folder`/wandb, each record parsed by W&B's
    own protobuf (wandb.proto). W&B's service process writes the file on its own time, after
    run.finish() has returned: each file is read once it holds its run's exit record."""
    from wandb.proto import wandb_internal_pb2

    deadline = time.monotonic() + wait
    while True:
        rows, finished = [], True
        for path in sorted((folder / "wandb").glob("offline-run-*/run-*.wandb")):
            kinds = []
            for data in wandb_records(path):
                record = wandb_internal_pb2.Record()
                record.ParseFromString(data)
                kinds.append(record.WhichOneof("record_type"))
                if kinds[-1] == "history":
                    rows.append({item.key or "/".join(item.nested_key):
                                 json.loads(item.value_json) for item in record.history.item})
            finished &= "exit" in kinds
        if finished or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)

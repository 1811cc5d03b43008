"""logger=csv: one row per epoch in the run's folder (`metrics.csv`), for pandas or a
spreadsheet: epoch, the task's training figure, tokens_per_sec, lr, and its held-out figure
where the epoch evaluated (empty elsewhere). A resumed run keeps the rows before the epoch it
continues from and appends after them."""
import csv
import io

from runner.loggers import RunInfo, Tracker
from runner.result import write_bytes_atomic


class CSVLogger(Tracker):  # no end: the final figures are result.json's
    def __init__(self, file: str = "metrics.csv"):
        self.file = file  # in the run's folder (an absolute path: that file)

    def start(self, info: RunInfo) -> None:
        self.path = info.folder / self.file
        self.columns, self.keys = None, info.epoch_keys
        kept = []
        if info.first_epoch > 1 and self.path.exists():  # resumed: the rows it still stands by
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
            if rows:
                self.columns = rows[0]
                kept = [r for r in rows[1:] if r and int(r[0]) < info.first_epoch]
        text = io.StringIO()
        csv.writer(text).writerows([self.columns, *kept] if self.columns else [])
        write_bytes_atomic(self.path, text.getvalue().encode())

    def epoch(self, epoch: int, metrics: dict) -> None:
        if self.columns is None:  # the task's figures, the held-out one where not yet taken
            self.columns = ["epoch", *(self.keys or metrics)]
            self._append(self.columns)
        self._append([epoch, *(metrics.get(c, "") for c in self.columns[1:])])

    def _append(self, row) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow(row)

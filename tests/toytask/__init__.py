"""A sixth task kind, added with this one folder and one registry line (`@register_task`).

`task: parity`: is an integer even? The `guess` reference system says "even" for every item;
`trained` learns the answer from the train items' last digit. Enough to go through the run
skeleton, `simlab compare` and the HTML report like any built-in task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from simlab.config import Experiment, Section
from simlab.tasks import Task, register_task
from simlab.tasks.tables import closing_section, md_table


class ParityData(Section):
    path: str = Field(..., description="A text file of integers, one per line.")
    test_share: float = Field(0.5, gt=0, lt=1)


class ParityTrain(Section):
    best_by: str = "accuracy"


class ParityConfig(Experiment):
    task: Literal["parity"] = "parity"
    data: ParityData
    train: ParityTrain = ParityTrain()


def _run(cfg: ParityConfig, summary, folder: Path) -> None:
    numbers = [int(line) for line in Path(cfg.data.path).read_text().split()]
    cut = int(len(numbers) * (1 - cfg.data.test_share))
    train, test = numbers[:cut], numbers[cut:]
    even_digits = {n % 10 for n in train if n % 2 == 0}  # "training": the last digits of even numbers
    systems = {"guess": [True] * len(test), "trained": [n % 10 in even_digits for n in test]}
    ids = [f"n{i}" for i in range(len(test))]
    for name, said in systems.items():
        correct = [int(s == (n % 2 == 0)) for s, n in zip(said, test)]
        summary.metrics[name] = {"accuracy": sum(correct) / len(correct)}
        summary.add_items(name, ids, {"correct": correct})
    summary.history = [{"epoch": 1, "train_loss": 0.0, "val_accuracy": summary.metrics["trained"]["accuracy"]}]
    summary.n_test = len(test)


@register_task
class ParityTask(Task):
    name = "parity"
    schema = ParityConfig
    reference_system = "guess"
    item_metrics = ("correct",)

    def main_metric(self, cfg) -> str:
        return "accuracy"

    def compare_metric(self, cfg) -> str:
        return "correct"

    def run(self, cfg, summary, folder) -> None:
        _run(cfg, summary, folder)

    def tables(self, summary):
        rows = [[name, f"{m['accuracy']:.4f}"] for name, m in summary.metrics.items()]
        return [(f"{summary.config.name}: {summary.n_test} test items", ["system", "accuracy"], rows)]

    def report(self, summary) -> str:
        ((title, header, rows),) = self.tables(summary)
        return "\n".join([f"# {title}", "", md_table(header, rows), *closing_section(summary)])

"""`task: definitions`: usage example vs definition with a classifier head (workload B).

`config` holds the schema, `sets` the (context, definition) pairs with their target words,
`run` the stages (encoder, reference systems, sense margin, head). Thresholds, per-pair rows
and the report are the pairs task's.
"""

from __future__ import annotations

from simlab.tasks.definitions.config import DefinitionsConfig
from simlab.tasks.pairs import PairsTask
from simlab.tasks.registry import register_task


@register_task
class DefinitionsTask(PairsTask):
    name = "definitions"
    schema = DefinitionsConfig
    reference_system = "overlap"
    commands = frozenset()
    stages = "simlab.tasks.definitions.run"

    def main_metric(self, cfg) -> str:
        return "accuracy"

    def compare_metric(self, cfg) -> str:
        return "correct"

    def preflight(self, cfg) -> None:
        """The common checks, and that `data.senses` is `wordnet` or a folder (before any model loads)."""
        from pathlib import Path

        from simlab.data.senses import WORDNET
        from simlab.errors import DataError

        super().preflight(cfg)
        senses = cfg.data.senses
        if senses and senses != WORDNET and not Path(senses).is_dir():
            raise DataError(
                f"data.senses: {senses}: no such folder; set data.senses: {WORDNET} (WordNet 3.0, installed with "
                "simlab), an Open English WordNet folder, or null (no senses system)"
            )

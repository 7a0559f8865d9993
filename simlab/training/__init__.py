"""Training: on the sentence-transformers trainers dense retrieval (`dense`), SPLADE (`sparse`) and pair
matching (`pairs`); hand-written loops for the pair head (`head`) and multi-label classification
(`multilabel`). What they share (result, history, best epoch, trainer arguments) is in `trainer`."""

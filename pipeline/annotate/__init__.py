"""Annotators: LLM judges (pointwise rubric, dual-order pairwise), density ratio (CDR),
follow-up likelihood (FLR) and reward-model ensembles, behind one table-in, table-out protocol
(see base.py). `build_annotators` turns the curation config into them."""

"""Task distillation (mode=distill): TinyBERT's two-stage recipe, DistilBERT's layer copying, scored in one run.

This file imports nothing: bench/config.py imports config.py from here while composing, before torch is needed.

config.py   the schema (DistillConfig, its stages and loss names), a node of bench.config.Config
losses.py   the loss terms (soft cross-entropy at T, hidden/embedding MSE, attention-score MSE, hard labels)
mapping.py  which teacher layer each student layer copies and learns
init.py     building the student (teacher layers, its own pre-trained weights, or random)
internals.py  where a model keeps its layers, and its attention scores before softmax
teacher.py  loading and checking the teacher; its training-set outputs, cached on disk
trainer.py  the Trainer whose loss is the distillation loss
run.py      the mode itself: stages, scoring, fidelity to the teacher, the result
record.py   what a run records about itself: its student key, its direct fine-tune partner, its settings
efficiency.py parameters, FLOPs and latency of student and teacher in one process
table.py    the distillation table, from result files alone
"""

"""mode=robustness: loyalty to a reference, invariance under meaning-preserving perturbations, adversarial
accuracy (AdvGLUE). A package rather than one module: the perturbations, the figures and the AdvGLUE reader are
each tested on their own (docs/robustness.md)."""

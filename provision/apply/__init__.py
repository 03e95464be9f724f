"""Applying a config to a target root exactly once.

- :mod:`provision.apply.orchestrator` runs the stages in order, records each
  outcome and makes a repeated run a no-op;
- :mod:`provision.apply.result` is the record kept inside the target;
- :mod:`provision.stages.journal` keeps the pre-images a stage needs so a run
  killed half way converges on rerun;
- :mod:`provision.apply.contents` fetches what a stage writes before it writes;
- :mod:`provision.stages.crashpoint` is the documented test seam for killing a run.
"""

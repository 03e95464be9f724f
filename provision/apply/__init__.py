"""Applying a config to a target root exactly once.

- :mod:`provision.apply.orchestrator` takes the run lock, stages what every
  stage needs, runs the stages in order, records each outcome and makes a
  repeated run a no-op;
- :mod:`provision.apply.lock` serialises runs on one root;
- :mod:`provision.apply.result` is the record kept inside the target.

The stage contract itself (staging, journal, crash points) lives in
:mod:`provision.stages`, which never imports this package.
"""

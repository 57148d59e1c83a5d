"""Devices over SSH (DESIGN §9): the orchestrator's side of a run on another machine.

:mod:`detbench.remote.ssh` sends the runner archive (:mod:`detbench.remote.archive`), the spec and
its inputs, runs the device's Python there with the agent of :mod:`detbench.remote.agent`, and
brings the run directory back. The device needs only the runner's own stack.
"""

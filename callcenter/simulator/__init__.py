"""The Asterisk simulator: a PBX in Python that speaks AMI (and FastAGI) like Asterisk 22."""

from callcenter.simulator.actors import Agent, Caller, Destination
from callcenter.simulator.config import AgentConfig, AmiUserConfig, SimulatorConfig
from callcenter.simulator.scenario import CallHandle, Simulator, run_simulator

__all__ = [
    "Agent",
    "AgentConfig",
    "AmiUserConfig",
    "CallHandle",
    "Caller",
    "Destination",
    "Simulator",
    "SimulatorConfig",
    "run_simulator",
]

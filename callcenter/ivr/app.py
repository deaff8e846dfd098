"""The IVR as one process runs it: the flows, their prompts and the domain service, loaded
and checked once at start (a broken flow or a missing prompt stops the start)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.clock import Clock
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.flow import Flow, FlowError, load_flow
from callcenter.ivr.prompts import BuildReport, PromptCatalog, PromptKey, PromptLibrary
from callcenter.ivr.service import IvrService
from callcenter.tickets.service import TicketService

if TYPE_CHECKING:
    from callcenter.feature import Runtime

log = logging.getLogger(__name__)


def flow_files(folder: Path) -> list[Path]:
    """Every flow in the folder: ``*.toml`` except the prompt texts."""
    return sorted(p for p in folder.glob("*.toml") if p.name != "prompts.toml")


def load_flows(config: IvrConfig, catalog: PromptCatalog) -> dict[str, Flow]:
    flows = {path.stem: load_flow(path, catalog.knows)
             for path in flow_files(config.flows_dir)}
    if config.flow not in flows:
        raise FlowError(f"{config.flows_dir}: no flow {config.flow!r} (ivr.flow); "
                        f"found {sorted(flows)}")
    return flows


def prompts_of(flows: dict[str, Flow]) -> list[PromptKey]:
    """Every (prompt, language) the flows can play."""
    return sorted({(prompt, language) for flow in flows.values()
                   for node in flow.nodes.values() for prompt in node.prompts()
                   for language in flow.languages})


@dataclass
class IvrApp:
    config: IvrConfig
    flows: dict[str, Flow]
    library: PromptLibrary
    service: IvrService
    clock: Clock

    @property
    def flow(self) -> Flow:
        return self.flows[self.config.flow]

    @classmethod
    def load(cls, config: IvrConfig, service: IvrService, clock: Clock,
             library: PromptLibrary | None = None) -> IvrApp:
        catalog = PromptCatalog(config.flows_dir)
        flows = load_flows(config, catalog)
        return cls(config, flows, library or PromptLibrary(catalog, config), service, clock)

    async def check_prompts(self) -> BuildReport:
        """Every prompt the flows name must exist where Asterisk reads it: built now
        (``build_missing_prompts``) or the start fails naming what is missing."""
        wanted = prompts_of(self.flows)
        report = await self.library.in_worker(self.library.ensure, wanted,
                                              self.config.build_missing_prompts)
        log.info("ivr.prompts_ready count=%d synthesized=%d installed=%d sounds=%s",
                 len(wanted), len(report.synthesized), len(report.installed),
                 self.config.sounds_dir)
        return report


def build_ivr(runtime: Runtime) -> IvrApp:
    """The IVR of this process from its settings (flows loaded and checked)."""
    settings = runtime.settings
    tickets = TicketService.from_config(runtime.sessionmaker, runtime.clock, settings.tickets)
    service = IvrService(runtime.sessionmaker, runtime.clock, settings.ivr, tickets.calendar,
                         tickets, runtime.bus)
    return IvrApp.load(settings.ivr, service, runtime.clock)

"""The wired service, all roles in one process, against the simulated Asterisk over TCP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from sqlalchemy import select

from callcenter.calls.models import CallLog
from callcenter.service import Service
from callcenter.settings import load_settings
from callcenter.simulator.actors import Agent, Caller
from callcenter.simulator.config import AmiUserConfig, SimulatorConfig
from callcenter.simulator.scenario import Simulator

SECRET = "service-test-secret"


async def test_a_call_flows_from_asterisk_to_the_call_log_health_and_metrics(
        tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(
        port=0, recordings_dir=tmp_path / "recordings",
        users=[AmiUserConfig(username="callcenter", secret=SECRET)]))
    await sim.start()
    settings = load_settings(None, env={
        "CALLCENTER_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cc.db'}",
        "CALLCENTER_WEB__PORT": "0",
        "CALLCENTER_AGI__PORT": "0",
        "CALLCENTER_AMI__PORT": str(sim.ami_port),
        "CALLCENTER_AMI__SECRET": SECRET,
    })
    service = Service(settings)
    await service.start()
    try:
        await service.telephony.ami.wait_connected(timeout=10)
        # The simulator's dialplan sends FastAGI to the port the service got from the OS.
        sim.config.agi_host, sim.config.agi_port = "127.0.0.1", service.telephony.agi.port
        sim.add_agent("PJSIP/1001", Agent(answer_after=0.2), queues=["hotline"], login=True)

        async with service.bus.subscribe("channel.hungup") as hangups:
            call = sim.place_call("13800138000", behaviour=Caller(talk_time=0.5))
            await asyncio.wait_for(call.ended, 30)
            # Listeners (the tracker) see each event before the bus publishes it.
            while service.tracker.live_calls:
                await hangups.get(timeout=10)
        await service.tracker.flush()

        async with service.sessionmaker() as session:
            rows = (await session.scalars(select(CallLog))).all()
        assert [row.linkedid for row in rows] == [call.linkedid]
        assert rows[0].caller_number == "13800138000"
        assert rows[0].agent_interface == "PJSIP/1001"

        base = f"http://127.0.0.1:{service.web_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["checks"]["ami"]["ok"] is True
            async with http.get(f"{base}/metrics") as response:
                metrics = await response.text()
        assert "callcenter_ami_connected 1.0" in metrics
        assert 'callcenter_events_processed_total{topic="channel.hungup"}' in metrics
        assert "callcenter_calls_active 0.0" in metrics
    finally:
        await service.stop()
        await sim.stop()

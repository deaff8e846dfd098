"""The IVR's FastAGI scripts, by the name the dialplan uses: ``AGI(agi://host/ivr)``.

Built when the telephony role starts: the flows are loaded and checked and every prompt
they name must exist where Asterisk reads it (built when missing, or the start stops naming
it) before the FastAGI server takes calls.
"""

from __future__ import annotations

from callcenter.feature import AgiScript, Runtime
from callcenter.ivr.app import IvrApp, build_ivr
from callcenter.ivr.runner import FlowRunner
from callcenter.telephony.agi import AgiSession


async def scripts(runtime: Runtime) -> dict[str, AgiScript]:
    app = build_ivr(runtime)
    await app.check_prompts()

    async def release() -> None:
        app.library.close()

    runtime.on_stop(release)
    return {"ivr": script_for(app)}


def script_for(app: IvrApp) -> AgiScript:
    """A FastAGI script running ``app``'s flow."""

    async def ivr(session: AgiSession) -> None:
        await FlowRunner(app, app.flow, session).run()

    return ivr

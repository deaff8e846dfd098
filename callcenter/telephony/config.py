"""Settings of the telephony layer (sections ``[ami]`` and ``[agi]`` of the settings file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class AmiConfig(BaseModel):
    """How to reach Asterisk's manager interface (manager.conf user)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(5038, ge=0, le=65535)
    username: str = "callcenter"
    secret: SecretStr = SecretStr("CHANGE_ME")
    """The placeholder of config/asterisk/manager.conf; production refuses it (settings)."""
    auth: Literal["md5", "plain"] = "md5"
    action_timeout: float = Field(5.0, gt=0, description="seconds to wait for any reply")
    connect_timeout: float = Field(5.0, gt=0, description="TCP connect + banner, seconds")
    reconnect_min: float = Field(0.5, gt=0, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, description="cap of the exponential backoff")
    ping_interval: float = Field(20.0, gt=0, description="keepalive Ping period, seconds")
    fully_booted_timeout: float = Field(5.0, gt=0, description="seconds to wait after a login "
                                        "for FullyBooted before resyncing anyway")
    """Asterisk accepts logins while still booting; its state is complete only after
    ``FullyBooted``, which the AMI user receives only with the ``system`` read class."""
    stable_after: float = Field(10.0, ge=0, description="seconds a connection must stay up "
                                "after its resync before the reconnect backoff starts over")
    """A server that accepts logins but fails every resync must not cause a reconnect storm."""
    pbx: str = Field("default", min_length=1, max_length=64,
                     description="name of this Asterisk server, stored with its call-log rows")
    """Several telephony processes (one per Asterisk) may share one database: each closes
    only the open rows of its own server after a restart."""
    reconcile_interval: float = Field(300.0, gt=0, description="seconds between the periodic "
                                      "CoreShowChannels that closes calls whose Hangup was lost")

    @model_validator(mode="after")
    def _backoff_order(self) -> AmiConfig:
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be >= reconnect_min")
        return self


class AgiConfig(BaseModel):
    """Where the FastAGI server listens (the dialplan uses ``AGI(agi://host:port/script)``)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535)
    command_timeout: float = Field(30.0, gt=0, description="seconds to wait for the reply to "
                                   "a command that returns at once (ANSWER, SET VARIABLE, ...)")
    media_margin: float = Field(120.0, gt=0, description="seconds added to the own timeout of "
                                "a command that plays or waits (STREAM FILE, GET DATA, RECORD "
                                "FILE, EXEC, ...): the prompt it plays has no known length")

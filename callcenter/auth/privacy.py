"""Personal data of callers: masking, the policy of who sees what, and the access trace.

The regulation forbids disclosing the caller's name, phone, address or IP to the party
complained about; every read of unmasked personal data leaves an ``AuditLog`` row that
supervisors can query.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.config import CALLER_FIELDS, AuthConfig, MaskingRule
from callcenter.auth.models import AuditLog
from callcenter.auth.principal import Principal, Role
from callcenter.clock import Clock, SystemClock

log = logging.getLogger(__name__)

MASK = "*"
# 区/县/旗 end a district name, except in 小区 (estate), 社区 (community), 园区, 景区, 校区, 厂区.
_NOT_DISTRICT_BEFORE = set("小社园景校厂营矿林")
_DISTRICT_SUFFIXES = set("区县旗")
# Below the district: streets, towns, villages, buildings (their names identify a home).
_STREET_MARKERS = set("路街道巷弄号村镇乡栋楼")


def mask_phone(phone: str | None) -> str | None:
    """``13812345678`` → ``138****5678``; landlines keep area code and the last 4 digits."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 8:
        return digits[:3] + MASK * (len(digits) - 7) + digits[-4:]
    if len(digits) >= 3:
        return MASK * (len(digits) - 2) + digits[-2:]
    return MASK * len(digits)


def mask_name(name: str | None) -> str | None:
    """``张三丰`` → ``张**``: the surname stays so an agent can address the caller."""
    if not name:
        return name
    name = name.strip()
    if len(name) == 1:
        return MASK
    return name[0] + MASK * (len(name) - 1)


def mask_address(address: str | None) -> str | None:
    """Keep province/city/district, mask the rest.

    ``乌鲁木齐市天山区幸福路8号`` → ``乌鲁木齐市天山区****``.
    """
    if not address:
        return address
    address = address.strip()
    keep = _district_end(address)
    if keep is None:
        city = address.find("市")
        keep = city + 1 if 0 <= city < 12 else 0
    return address[:keep] + MASK * 4


def _district_end(address: str) -> int | None:
    """End of the last county-level name before the street part begins."""
    end = None
    for i, char in enumerate(address[:30]):
        if char in _STREET_MARKERS or char.isdigit():
            break
        if char in _DISTRICT_SUFFIXES and i > 0 and address[i - 1] not in _NOT_DISTRICT_BEFORE:
            end = i + 1
    return end


def mask_ip(ip: str | None) -> str | None:
    """Keep the network, hide the host: ``10.1.2.3`` → ``10.1.*.*``."""
    if not ip:
        return ip
    if "." in ip:
        parts = ip.split(".")
        return ".".join(parts[:2] + [MASK] * (len(parts) - 2))
    return ip.split(":")[0] + ":" + MASK


_MASKERS = {"name": mask_name, "phone": mask_phone, "address": mask_address, "ip": mask_ip}


class PiiPolicy:
    """Decides which caller fields a principal sees unmasked for a given need.

    Rules come from ``AuthConfig.masking``; two rules are fixed in code because the
    regulation leaves no choice: a unit sees nothing of an anonymous caller (not even masked),
    and nothing unmasked on an order not assigned to it.
    """

    def __init__(self, config: AuthConfig) -> None:
        self._rules: list[MaskingRule] = list(config.masking)

    def allowed_fields(self, principal: Principal, *, need: str,
                       assigned_unit_id: int | None = None, anonymous: bool = False) -> set[str]:
        allowed: set[str] = set()
        for rule in self._rules:
            if rule.role != principal.role:
                continue
            if "*" not in rule.needs and need not in rule.needs:
                continue
            if rule.own_unit_only and not principal.is_unit_member(assigned_unit_id):
                continue
            allowed.update(rule.fields)
        if principal.role is Role.UNIT_HANDLER and (
            anonymous or not principal.is_unit_member(assigned_unit_id)
        ):
            allowed.clear()
        return allowed

    def view(self, principal: Principal, caller: dict[str, Any], *, need: str,
             assigned_unit_id: int | None = None) -> tuple[dict[str, Any], list[str]]:
        """Return ``caller`` as ``principal`` may see it, and the fields shown unmasked.

        ``caller`` holds ``name``/``phone``/``address``/``ip`` (missing or empty ones are
        ignored) and optionally ``anonymous``; ``assigned_unit_id`` is the unit the order is
        dispatched to (may also be given as ``caller["unit_id"]``). Only non-empty fields
        shown unmasked are listed: those are what ``record_access`` must trace.
        """
        unit_id = assigned_unit_id if assigned_unit_id is not None else caller.get("unit_id")
        allowed = self.allowed_fields(principal, need=need, assigned_unit_id=unit_id,
                                      anonymous=bool(caller.get("anonymous")))
        shown: dict[str, Any] = dict(caller)
        revealed: list[str] = []
        withheld = principal.role is Role.UNIT_HANDLER and bool(caller.get("anonymous"))
        for name in CALLER_FIELDS:
            value = caller.get(name)
            if not value:
                continue
            if withheld:  # even a masked surname or phone can tell a unit who complained
                shown[name] = None
            elif name in allowed:
                revealed.append(name)
            else:
                shown[name] = _MASKERS[name](value)
        return shown, revealed


async def record_access(session: AsyncSession, principal: Principal, *, action: str,
                        object_type: str, object_id: str | int | None, fields: list[str],
                        ip: str | None, clock: Clock | None = None) -> AuditLog:
    """Append one audit row (the caller commits it with the session's transaction)."""
    row = AuditLog(
        at=(clock or SystemClock()).now(),
        user_id=principal.user_id,
        username=principal.username,
        role=str(principal.role),
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        fields=list(fields),
        ip=ip,
    )
    session.add(row)
    log.info("audit action=%s user=%s object=%s:%s fields=%s", action, principal.username,
             object_type, object_id, ",".join(fields))
    return row

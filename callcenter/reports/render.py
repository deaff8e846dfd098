"""The monthly report as HTML and PDF, in the sections of seed 001: operation, assessment
and ranking, hot and difficult issues, problems, typical cases (and the call center).

It renders stored figures (``service.report_figures``, or a frozen month's), so the printed
report and the API never disagree. Charts are matplotlib PNGs inlined in the HTML; the PDF is
the same HTML laid out by WeasyPrint with Debian's Noto CJK fonts (embedded, searchable).
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from callcenter.reports.config import ReportsConfig

log = logging.getLogger(__name__)

FONT = "Noto Sans CJK SC"
CHANNELS_ZH = {
    "phone": "12345热线来电", "provincial_platform": "省级12345平台", "mayor_mailbox": "市县长信箱",
    "governor_mailbox": "省长信箱", "national_platform": "国家政务服务平台", "web": "网站",
    "app": "政务App", "wechat": "微信", "mini_program": "小程序", "transferred": "转办",
}
TYPES_ZH = {"consultation": "咨询", "help": "求助", "complaint": "投诉", "report": "举报",
            "suggestion": "建议", "praise": "表扬", "other": "其他"}
RATES_ZH = {
    "timely_acceptance_rate": "及时接收率", "timely_first_contact_rate": "及时联系率",
    "feedback_rate": "反馈率", "completion_rate": "办结率", "on_time_completion_rate": "按期办结率",
    "rework_rate": "返工率", "revisit_reach_rate": "回访成功率", "unsatisfied_rate": "回访不满意率",
    "satisfaction_rate": "综合满意率",
}
CALLS_ZH = {
    "inbound": "呼入总量", "offered": "进入队列", "answered": "人工接通", "abandoned": "排队放弃",
    "timeouts": "排队超时", "answer_rate": "接通率", "abandon_rate": "放弃率（不含超时）",
    "abandon_rate_with_timeouts": "放弃率（含超时）", "service_level": "服务水平",
    "average_speed_of_answer": "平均应答时长（秒）", "average_handle_time": "平均处理时长（秒）",
    "ivr_self_service_rate": "IVR自助服务率", "agent_occupancy": "坐席占用率",
    "pause_time_by_reason": "按原因示忙时长",
}
CSS = f"""
@page {{ size: A4; margin: 18mm 16mm; }}
body {{ font-family: "{FONT}", sans-serif; font-size: 10.5pt; color: #111; }}
h1 {{ font-size: 17pt; text-align: center; }} h2 {{ font-size: 13pt; margin-top: 1.2em; }}
table {{ border-collapse: collapse; width: 100%; margin: .5em 0; }}
th, td {{ border: 1px solid #888; padding: 2px 5px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ width: 100%; }} .note {{ color: #555; font-size: 9pt; }}
"""


def pct(value: float | None, na: str) -> str:
    return na if value is None else f"{100 * value:.2f}%"


def num(value: float | None, na: str, digits: int = 1) -> str:
    return na if value is None else f"{value:.{digits}f}"


def signed(value: float | None, na: str) -> str:
    return na if value is None else f"{100 * value:+.2f}%"


def table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str) -> str:
    """A horizontal bar chart as an inline PNG (Noto CJK for Chinese labels)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    plt.rcParams["font.family"] = [FONT, "DejaVu Sans"]
    height = 0.9 + 0.32 * max(1, len(labels))
    fig, ax = plt.subplots(figsize=(7.0, height), dpi=110)
    try:
        ax.barh(list(reversed(labels)), list(reversed(values)), color="#3b6ea8")
        ax.set_title(title)
        for spine in ("top", "right"):
            ax.spines[spine].set_visible(False)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    data = base64.b64encode(out.getvalue()).decode("ascii")
    return f'<img alt="{escape(title)}" src="data:image/png;base64,{data}">'


def render_html(figures: dict[str, Any], config: ReportsConfig, *,
                corrections: Sequence[dict[str, Any]] = ()) -> str:
    """The whole report as one self-contained HTML page."""
    zh = config.language == "zh"
    label = config.labels
    na = label["not_available"]
    start = figures["period"]["start"]
    year, month = int(start[:4]), int(start[5:7])
    title = label["title"].format(year=year, month=month)
    parts = [f"<h1>{escape(title)}</h1>"]
    parts += _operation(figures, label, na, zh)
    parts += _assessment(figures, config, label, na, zh)
    parts += _hot(figures, label, zh)
    parts += _problems(figures, label, na)
    parts += _cases(figures, label)
    parts += _calls(figures, label, na, zh)
    if corrections:
        parts.append(f'<p class="note">更正 / corrections: {len(corrections)} '
                     f'(version {1 + len(corrections)})</p>')
    lang = "zh-CN" if zh else "en"
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            + "".join(parts) + "</body></html>")


def _shares(rows: list[dict[str, Any]], names: dict[str, str], label: dict[str, str],
            na: str, heading: str) -> list[str]:
    head = [heading, label["count"], label["share"], label["mom"], label["yoy"]]
    body = [(names.get(r["key"], r["key"] or "-"), r["count"], pct(r["share"], na),
             signed(r["mom"], na), signed(r["yoy"], na)) for r in rows]
    return [table(head, body)]


def _operation(figures: dict[str, Any], label: dict[str, str], na: str, zh: bool
               ) -> list[str]:
    office = figures["office"]
    channels = CHANNELS_ZH if zh else {}
    types = TYPES_ZH if zh else {}
    total = sum(r["count"] for r in figures["by_channel"])
    intro = (f"本月共受理群众诉求{total}件，承办单位交办工单{office['received']}件，"
             f"工作日{figures['period']['working_days']}天。" if zh else
             f"{total} requests this month, {office['received']} dispatched to units, "
             f"{figures['period']['working_days']} working days.")
    parts = [f"<h2>{label['operation']}</h2><p>{escape(intro)}</p>"]
    parts += _shares(figures["by_channel"], channels, label, na, label["channel"])
    parts += _shares(figures["by_type"], types, label, na, label["type"])
    parts += _shares(figures["by_topic"], {}, label, na, label["topic"])
    if figures["by_topic"]:
        parts.append(bar_chart([r["key"] or "-" for r in figures["by_topic"]],
                               [r["count"] for r in figures["by_topic"]], label["topic"]))
    return parts


def _assessment(figures: dict[str, Any], config: ReportsConfig, label: dict[str, str],
                na: str, zh: bool) -> list[str]:
    office = figures["office"]
    rates = office["rates"]
    names = RATES_ZH if zh else {k: k.replace("_", " ") for k in RATES_ZH}
    rows = [(names[k], pct(rates.get(k), na)) for k in RATES_ZH]
    rows += [("返工数" if zh else "reworks", office["reworks"]),
             ("回访总工单" if zh else "revisits", office["revisited"]),
             ("回访不满意数" if zh else "unsatisfied", office["unsatisfied"]),
             ("申诉成立" if zh else "appeals upheld", office["appeals_upheld"]),
             ("延期申请" if zh else "extension requests", office["extension_requests"]),
             ("退件" if zh else "returns", office["returns"]),
             (label["score"], num(office["score"], na)), (label["grade"], office["grade"] or na)]
    grades = figures["grades"]
    graded = ("，".join(f"{g}类{n}家" for g, n in grades.items()) if zh else
              ", ".join(f"{g}: {n}" for g, n in grades.items()))
    parts = [f"<h2>{label['assessment']}</h2>", table(["", ""], rows),
             f"<p>{escape(graded)}</p>", f"<h2>{label['ranking']}</h2>"]
    for towns, heading in ((True, label["towns"]), (False, label["departments"])):
        ranked = sorted((u for u in figures["units"] if u["rank"] is not None
                         and (u["unit_kind"] in config.town_kinds) == towns),
                        key=lambda u: (u["rank"], u["unit_name"]))
        parts.append(f"<h3>{escape(heading)}</h3>")
        parts.append(table(["#", label["unit"], label["received"], label["score"],
                            label["grade"]],
                           [(u["rank"], u["unit_name"], u["received"], num(u["score"], na),
                             u["grade"]) for u in ranked]))
        if ranked:
            parts.append(bar_chart([u["unit_name"] for u in ranked],
                                   [u["score"] for u in ranked], heading))
    return parts


def _hot(figures: dict[str, Any], label: dict[str, str], zh: bool) -> list[str]:
    parts = [f"<h2>{label['hot']}</h2>"]
    items = [f"{f['summary']}（{f['count']}）" for f in figures["hotspots"]]
    items += [f"{t.get('label') or t['key']}: {t['count']}" for t in figures["top_topics"]]
    items += [f"{p['place']}: {p['count']}" for p in figures["top_places"]]
    parts.append("<ol>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ol>")
    return parts


def _problems(figures: dict[str, Any], label: dict[str, str], na: str) -> list[str]:
    weak = [u for u in figures["units"] if u["grade"] in ("C", "D")]
    rows = [(u["unit_name"], u["overdue"], pct(u["rates"]["on_time_completion_rate"], na),
             u["grade"]) for u in weak]
    rows += [(o["unit"], o["overdue"], "", "") for o in figures["overdue_by_unit"]
             if o["unit_id"] not in {u["unit_id"] for u in weak}]
    return [f"<h2>{label['problems']}</h2>",
            table([label["unit"], label["overdue"], RATES_ZH["on_time_completion_rate"],
                   label["grade"]], rows)]


def _cases(figures: dict[str, Any], label: dict[str, str]) -> list[str]:
    items = [f"[{c['number']}] {c['unit'] or ''} {c['note']}" for c in figures["typical_cases"]]
    return [f"<h2>{label['cases']}</h2>",
            "<ol>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ol>"]


def _calls(figures: dict[str, Any], label: dict[str, str], na: str, zh: bool) -> list[str]:
    calls = figures["calls"]
    names = CALLS_ZH if zh else {k: k.replace("_", " ") for k in CALLS_ZH}
    rows: list[tuple[str, Any]] = [(names[k], calls[k]) for k in
                                   ("inbound", "offered", "answered", "abandoned", "timeouts")]
    for key in ("answer_rate", "abandon_rate", "abandon_rate_with_timeouts", "service_level",
                "ivr_self_service_rate"):
        rows.append((names[key], pct(calls["rates"][key], na)))
    for key in ("average_speed_of_answer", "average_handle_time"):
        rows.append((names[key], num(calls["rates"][key], na)))
    rows.append((names["agent_occupancy"], pct(calls["rates"].get("agent_occupancy"), na)))
    pauses = calls.get("agent_time", {}).get("pause_by_reason", {})
    rows += [(f"{names['pause_time_by_reason']}: {reason or '—'}", hours(seconds, zh))
             for reason, seconds in pauses.items()]
    rows += [(names[key], na) for key in calls["pending"] if key != "agent_occupancy"]
    return [f"<h2>{label['calls']}</h2>", table(["", ""], rows)]


def hours(seconds: float, zh: bool) -> str:
    return f"{seconds / 3600:.1f} {'小时' if zh else 'h'}"


def render_pdf(html: str) -> bytes:
    """The HTML laid out as A4 pages (WeasyPrint embeds the Noto CJK subset it uses)."""
    from weasyprint import HTML

    pdf = HTML(string=html).write_pdf()
    log.info("reports.pdf bytes=%s", len(pdf))
    return pdf

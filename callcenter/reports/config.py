"""Reports' settings (section ``[reports]``): the composite score's weights, the grade
thresholds, the ranking minimum, the call-center targets and the printed labels."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_WEIGHTS = {
    "timely_acceptance_rate": 15.0,
    "timely_first_contact_rate": 15.0,
    "completion_rate": 20.0,
    "on_time_completion_rate": 20.0,
    "satisfaction_rate": 20.0,
    "rework_free_rate": 10.0,
}
"""The rates that make the composite score (综合指标值) and their weights; a rate a unit has
no data for (no revisits yet, ...) is left out and the others are re-weighted."""

ZH_LABELS = {
    "title": "{year}年{month}月12345热线运行办理情况",
    "operation": "一、运行情况",
    "assessment": "二、工单办理考核",
    "ranking": "综合指标考核排名",
    "hot": "三、热点、难点聚焦",
    "problems": "四、存在问题",
    "cases": "五、典型案例",
    "calls": "话务统计",
    "towns": "乡镇（街道）",
    "departments": "县直单位和部门",
    "channel": "来源渠道",
    "type": "诉求类型",
    "topic": "诉求分类",
    "count": "件数",
    "share": "占比",
    "mom": "环比",
    "yoy": "同比",
    "unit": "承办单位",
    "received": "承办工单",
    "score": "综合指标值",
    "grade": "等级",
    "overdue": "超期工单",
    "not_available": "暂无数据",
}
EN_LABELS = {
    "title": "12345 hotline monthly report, {year}-{month:02d}",
    "operation": "1. Operation",
    "assessment": "2. Assessment of order handling",
    "ranking": "Composite score ranking",
    "hot": "3. Hot and difficult issues",
    "problems": "4. Problems",
    "cases": "5. Typical cases",
    "calls": "Call-center statistics",
    "towns": "Towns and streets",
    "departments": "Departments",
    "channel": "Source channel",
    "type": "Request type",
    "topic": "Topic",
    "count": "Orders",
    "share": "Share",
    "mom": "MoM",
    "yoy": "YoY",
    "unit": "Unit",
    "received": "Orders",
    "score": "Score",
    "grade": "Grade",
    "overdue": "Overdue orders",
    "not_available": "not available",
}


class ReportsConfig(BaseModel):
    """报表 (section ``[reports]``)."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    # Lowest composite score of each grade, highest first; below the last one is D.
    grade_a: float = Field(default=95.0, ge=0, le=100)
    grade_b: float = Field(default=85.0, ge=0, le=100)
    grade_c: float = Field(default=70.0, ge=0, le=100)
    # Seed 001 ranks units "with 20 orders or more"; towns and departments separately.
    ranking_min_orders: int = Field(default=20, ge=0)
    town_kinds: list[str] = Field(default_factory=lambda: ["town"])
    # Call-center targets: GB/T 33358 answers within 15 s.
    service_level_seconds: float = Field(default=15.0, gt=0)
    # IVR nodes where a caller is served without an agent (self-service answers).
    self_service_nodes: list[str] = Field(default_factory=list)
    # A closed month is frozen this many days after its end (corrections come later).
    freeze_after_days: int = Field(default=5, ge=0, le=60)
    freeze_check_seconds: float = Field(default=3600.0, gt=0)
    language: str = Field(default="zh", pattern="^(zh|en)$")
    top_n: int = Field(default=5, ge=1, le=50)

    @model_validator(mode="after")
    def _sane(self) -> ReportsConfig:
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown weights {sorted(unknown)}; known: "
                             f"{sorted(DEFAULT_WEIGHTS)}")
        if any(w < 0 for w in self.weights.values()) or not any(self.weights.values()):
            raise ValueError("weights must be >= 0 and not all zero")
        if not self.grade_a >= self.grade_b >= self.grade_c:
            raise ValueError("grade thresholds must satisfy grade_a >= grade_b >= grade_c")
        return self

    def grade(self, score: float | None) -> str | None:
        if score is None:
            return None
        if score >= self.grade_a:
            return "A"
        if score >= self.grade_b:
            return "B"
        if score >= self.grade_c:
            return "C"
        return "D"

    @property
    def labels(self) -> dict[str, str]:
        return ZH_LABELS if self.language == "zh" else EN_LABELS

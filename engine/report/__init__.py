"""The HTML evaluation report: ``build_report`` gathers, ``figures`` draws, ``html`` writes."""

from engine.report.build import build_report, write_report

__all__ = ["build_report", "write_report"]

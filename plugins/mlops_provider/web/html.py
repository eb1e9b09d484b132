"""The HTML shell of the plugin's pages: one stylesheet, no JavaScript, no external assets (the pages work on a
closed network and inside the Airflow UI's plugin frame)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
table.fields th { background: #f5f7fa; width: 12rem; }
pre { background: #f5f7fa; padding: 0.6rem; overflow-x: auto; }
"""


def esc(value: Any) -> str:
    """``value`` as escaped text (None as empty)."""
    return html.escape("" if value is None else str(value))


def link(href: str, text: Any) -> str:
    """An anchor with an escaped target and text."""
    return f'<a href="{html.escape(href, quote=True)}">{esc(text)}</a>'


def fields(rows: Mapping[str, Any], *, raw: Iterable[str] = ()) -> str:
    """A two-column table of ``label: value``; values of the labels in ``raw`` are trusted HTML."""
    trusted = set(raw)
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{v if k in trusted else esc(v)}</td></tr>" for k, v in rows.items())
    return f"<table class='fields'>{cells}</table>"


def page(title: str, body: str) -> str:
    """A whole page: ``title`` (escaped) as the heading, ``body`` (HTML) below it."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{esc(title)}</h1>
{body}
</body></html>"""

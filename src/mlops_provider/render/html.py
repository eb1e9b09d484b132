"""The plugin's pages as Jinja2 templates (``web/templates``) with autoescaping: every value from a record (a
category, a tag, a run name) is escaped by the template engine, not by hand. One stylesheet, no JavaScript, no
external assets (the pages work on a closed network and inside the Airflow UI's plugin frame)."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


@cache
def environment() -> Environment:
    """The templates of ``mlops_provider.web``; autoescape on for every template, undefined names are errors."""
    return Environment(
        loader=PackageLoader("mlops_provider.render", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    """``template`` rendered with ``context`` (the page title is ``title``)."""
    return environment().get_template(template).render(**context)


def link(href: str, text: Any) -> dict[str, str]:
    """A link for the templates' field tables (escaped when rendered)."""
    return {"href": href, "text": str(text)}

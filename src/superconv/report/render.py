"""report.md to a self-contained report.html: figures inlined as data URIs, inline CSS, no external reference."""

from __future__ import annotations

import base64
import html
import mimetypes
from pathlib import Path

from markdown_it import MarkdownIt

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f5f5f5; padding: 0 0.2em; }
li { margin: 0.3em 0; }
"""


def data_uri(path: Path) -> str:
    """A file as a base64 data URI (how the HTML carries its figures offline)."""
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def to_html(markdown: str, base: Path, title: str) -> str:
    """Render ``markdown`` (image paths relative to ``base``) into one HTML page with nothing to fetch."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def image(self, tokens, idx, options, env) -> str:  # noqa: ANN001 (markdown-it renderer signature)
        token = tokens[idx]
        alt = html.escape(self.renderInlineAsText(token.children or [], options, env))
        return f'<img src="{data_uri(base / token.attrGet("src"))}" alt="{alt}">'

    md.add_render_rule("image", image)
    body = md.render(markdown)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")

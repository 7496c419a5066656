"""HTML post bodies -> readable plain text (Markdown-style: paragraphs, lists, quotes, fenced code).

markdownify parses with BeautifulSoup (stdlib html.parser). Stack Exchange bodies are rendered
Markdown, so this gives back text close to what the author typed; no escaping is added."""
from __future__ import annotations


def html_to_text(html: str) -> str:
    from markdownify import markdownify  # bs4 with it: imported by the runs that read HTML, not by every run

    text = markdownify(html, heading_style="ATX", bullets="-", code_language="",
                       escape_underscores=False, escape_asterisks=False, escape_misc=False)
    return text.strip()

"""Text from a model directory or a CSV file, made safe to print in a terminal.

A manifest, a class label or a column name is data from whoever made the file:
printed raw, it can move the cursor, rewrite earlier lines, set the window
title or hide text (ANSI/OSC escape sequences, carriage returns, right-to-left
overrides), and rich would read ``[link=...]`` in it as markup. Everything the
CLI echoes from such files goes through :func:`clean` (and is printed with
markup off); a package name is shown as a ``pip install`` hint only when it
is a valid distribution name (:func:`package_hint`).
"""

from __future__ import annotations

import re
import unicodedata

# Every character outside printable ASCII is looked at; unicodedata decides which to escape:
# controls (Cc), format characters (Cf: zero-width, bidirectional marks and overrides such as
# U+061C and U+202E, soft hyphen, tag characters), surrogates, private use, line and
# paragraph separators, and the Hangul fillers that render as blank.
_CANDIDATE = re.compile(r"[^\x20-\x7e]")
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
_BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0"}
# PEP 508 / packaging's distribution-name rule, with a length cap: no URL, path or option.
_PACKAGE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9.+!_-]{1,40}")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if unicodedata.category(char) not in _UNSAFE_CATEGORIES and char not in _BLANK_LETTERS:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def clean(text: object) -> str:
    """``str(text)`` with every control or invisible formatting character shown escaped.

    Examples
    --------
    >>> clean("evil\\x1b]0;pwned\\x07 name\\nline")
    'evil\\\\x1b]0;pwned\\\\x07 name\\\\x0aline'
    >>> clean("nb\\u061c\\U000e0041 caf\\u00e9 \\U0001f525")  # bidi mark, tag; é and 🔥 kept
    'nb\\\\u061c\\\\U000e0041 café 🔥'
    """
    return _CANDIDATE.sub(_escape, str(text))


# What can start HTML, an entity, a link or image, a code span, or end a table cell:
# escaped, emphasis (harmless) left alone.
_MARKDOWN_SPECIAL = re.compile(r"([\\`<>&\[\]|])")


def markdown_code(text: object) -> str:
    """``text`` as one Markdown code span: shown literally, never rendered as links or images.

    Controls are escaped first (a line break could end the span early), and
    the fence is one backtick longer than any run of backticks inside, as
    CommonMark requires.

    Examples
    --------
    >>> markdown_code("![x](https://tracker.example/pixel.png)")
    '`![x](https://tracker.example/pixel.png)`'
    >>> markdown_code("a`b")
    '``a`b``'
    """
    body = clean(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def markdown_text(text: object) -> str:
    """``text`` as literal Markdown text: controls escaped, then every character that could
    start HTML, an entity, a link or image, or end a table cell, backslash-escaped.

    Examples
    --------
    >>> print(markdown_text("<img src=x onerror=alert(1)> [a](b) | c (d)"))
    \\<img src=x onerror=alert(1)\\> \\[a\\](b) \\| c (d)
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", clean(text))


def is_package_name(name: object) -> bool:
    """Whether ``name`` is a valid Python distribution name (never a URL or an option).

    Examples
    --------
    >>> is_package_name("ensemble-plugin-foo"), is_package_name("--index-url=https://x")
    (True, False)
    """
    return isinstance(name, str) and _PACKAGE.fullmatch(name) is not None


def package_hint(name: object, version: object = None) -> str:
    """Where a missing plugin comes from, with ``pip install NAME`` only for a valid name.

    A manifest could name ``x --index-url https://attacker/simple`` as the
    package: such a name (and such a version) is not repeated at all.

    Examples
    --------
    >>> package_hint("ensemble-plugin-foo", "1.2")
    "package 'ensemble-plugin-foo' 1.2, which is not installed: pip install ensemble-plugin-foo"
    """
    if not is_package_name(name):
        return ("a package whose name in the manifest is not a valid package name (so it is "
                "not shown), which is not installed; ask the model's author which package "
                "provides it")
    shown = f" {version}" if isinstance(version, str) and _VERSION.fullmatch(version) else ""
    return f"package '{name}'{shown}, which is not installed: pip install {name}"

"""``promql-parser`` with Prometheus's raw strings.

Prometheus reads a backtick string as written, without escape sequences:
`` `a\\.b` `` is the four characters ``a\\.b``, the usual way to write a regular
expression. The ``promql-parser`` package reads escapes inside backticks too:
it refuses `` `a\\.b` `` ("unknown escape sequence") and reads `` `a\\\\b` `` as
``a\\b``. Before parsing, each raw string is rewritten as the double-quoted
string of the same value, which both read alike; everything else (double- and
single-quoted strings, ``#`` comments) is passed through untouched.
"""

from __future__ import annotations

import promql_parser as pp

# How a character of a raw string is written between double quotes (a double-
# quoted string takes any other character as it is, as in Prometheus's lexer).
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n"}


def parse(text: str) -> pp.Expr:
    """The AST of ``text``; raises ValueError as ``promql_parser.parse`` does."""
    return pp.parse(quote_raw_strings(text) if "`" in text else text)


def quote_raw_strings(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":  # a comment runs to the end of the line
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "`":
            j = text.find("`", i + 1)
            if j < 0:  # unterminated: the parser says so
                out.append(text[i:])
                break
            out.append('"' + "".join(_ESCAPES.get(ch, ch) for ch in text[i + 1:j]) + '"')
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)

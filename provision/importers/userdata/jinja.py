"""``## template: jinja`` user data: the Jinja subset instance-data templates use.

cloud-init renders these with jinja2 against its instance-data.json. provision
renders the subset such templates use in practice, without adding jinja2
(and MarkupSafe) to the initramfs (see docs/userdata.md for why):

- ``{{ name }}``: a variable; dotted names and ``['key']`` / ``["key"]``
  subscripts (``v1.instance_id``, ``ds.meta_data['local-hostname']``),
  optionally ``| default('text')``, ``| lower`` or ``| upper``;
- ``{% if cond %}`` / ``{% elif cond %}`` / ``{% else %}`` / ``{% endif %}``,
  where a condition is a variable (truthiness), ``not`` one, or a variable
  compared with ``==`` / ``!=`` to a quoted string or a number;
- ``{# comments #}``.

As with cloud-init (``trim_blocks``), the newline after a block tag is dropped.
Anything else (loops, set, macros, other filters, expressions) is an error at
its line: never output that silently differs from what jinja2 would produce.
An undefined variable is an error too (cloud-init renders it as
``CI_MISSING_JINJA_VAR/name`` and only warns).

The variables are cloud-init's: instance-data keys, the ``v1`` keys copied to
the top level, and an alias with ``_`` for every key containing ``-`` or ``.``
(``local_hostname`` for ``local-hostname``, ``v1_0`` for ``v1.0``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TAG = re.compile(r"\{\{(.*?)\}\}|\{%-?(.*?)-?%\}\n?|\{#.*?#\}\n?", re.S)
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_ATTR = re.compile(r"\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)|\s*\[\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\d+)\s*\]")
_LITERAL = re.compile(r"\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?\d+(?:\.\d+)?)\s*$")
_OPERATOR = re.compile(r"[-.+*/%~|&^<>=!(),:\[\]{}]")


class TemplateError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line  # 1-based, within the template body


class _Undefined:
    pass


UNDEFINED = _Undefined()


def variables(instance_data: Mapping[str, Any]) -> dict[str, Any]:
    """cloud-init's convert_jinja_instance_data: v1 keys at the top, ``_`` aliases."""
    return _with_aliases(instance_data)


def _with_aliases(data: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in sorted(data.items()):
        converted = _with_aliases(value) if isinstance(value, Mapping) else value
        result[key] = converted
        if isinstance(converted, dict) and re.fullmatch(r"v\d+", key):
            result.update(converted)
        alias = _OPERATOR.sub("_", key)
        if alias != key:
            result[alias] = converted
    return result


def _unquote(text: str) -> str | int | float:
    if text[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return float(text) if "." in text else int(text)


def _lookup(expr: str, scope: Mapping[str, Any], line: int) -> Any:
    match = _NAME.match(expr)
    if match is None:
        raise TemplateError(f"unsupported Jinja expression {expr.strip()!r}", line)
    name = match.group(1)
    value: Any = scope.get(name, UNDEFINED)
    shown = name
    pos = match.end()
    while pos < len(expr) and expr[pos:].strip():
        step = _ATTR.match(expr, pos)
        if step is None:
            raise TemplateError(f"unsupported Jinja expression {expr.strip()!r}", line)
        key: Any = step.group(1) if step.group(1) is not None else _unquote(step.group(2))
        shown += f".{key}" if step.group(1) is not None else f"[{step.group(2)}]"
        if isinstance(value, Mapping):
            value = value.get(key, UNDEFINED)
        elif isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
            value = value[key]
        else:
            value = UNDEFINED
        pos = step.end()
    if value is UNDEFINED:
        raise _Missing(shown, line)
    return value


class _Missing(TemplateError):
    def __init__(self, name: str, line: int) -> None:
        super().__init__(f"the Jinja variable {name!r} is not defined in the instance data", line)
        self.name = name


def _render_value(expr: str, scope: Mapping[str, Any], line: int) -> str:
    name, *filters = expr.split("|")
    default: str | None = None
    case = None
    for item in filters:
        item = item.strip()
        match = re.fullmatch(r"(?:default|d)\s*\(\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?\d+)\s*\)", item)
        if match:
            default = str(_unquote(match.group(1)))
        elif item in ("lower", "upper"):
            case = item
        else:
            raise TemplateError(f"the Jinja filter {item!r} is not supported", line)
    try:
        value = _lookup(name, scope, line)
    except _Missing:
        if default is None:
            raise
        value = default
    text = _text(value)
    return text.lower() if case == "lower" else text.upper() if case == "upper" else text


def _text(value: Any) -> str:
    if value is None:
        return "None"  # as Python's str(), which jinja2 uses
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _condition(expr: str, scope: Mapping[str, Any], line: int) -> bool:
    text = expr.strip()
    if text.startswith("not "):
        return not _condition(text[4:], scope, line)
    for op in ("==", "!="):
        if op in text:
            left, right = text.split(op, 1)
            literal = _LITERAL.match(right)
            if literal is None:
                raise TemplateError(f"unsupported Jinja condition {text!r}: compare with a quoted string", line)
            try:
                value = _lookup(left, scope, line)
            except _Missing:
                value = UNDEFINED
            equal = value == _unquote(literal.group(1).strip())
            return equal if op == "==" else not equal
    try:
        return bool(_lookup(text, scope, line))
    except _Missing:
        return False  # jinja2: an undefined variable is false in a test


def render(template: str, instance_data: Mapping[str, Any]) -> str:
    """The rendered body (without the header line); TemplateError for anything unsupported."""
    return render_with_lines(template, instance_data)[0]


def render_with_lines(template: str, instance_data: Mapping[str, Any]) -> tuple[str, list[int]]:
    """The rendering, and for each of its lines the template line it starts on (for positions)."""
    scope = variables(instance_data)
    # jinja2 drops the template's final newline; cloud-init adds one back when there was one.
    final = "\n" if template.endswith("\n") else ""
    template = template[:-1] if final else template
    out: list[str] = []
    sources: list[int] = []  # template line of each piece of ``out``
    # Each open if: (this branch is taken, some branch already taken, enclosing output on).
    stack: list[tuple[bool, bool, bool]] = []
    emitting = True
    pos = 0
    for match in _TAG.finditer(template):
        line = template.count("\n", 0, match.start()) + 1
        if emitting:
            out.append(template[pos:match.start()])
            sources.append(template.count("\n", 0, pos) + 1)
        pos = match.end()
        expr, block = match.group(1), match.group(2)
        if expr is not None:
            if emitting:
                out.append(_render_value(expr, scope, line))
                sources.append(-line)  # a value: its newlines (if any) stay on the tag's line
        elif block is not None:
            emitting = _block(block.strip(), scope, line, stack, emitting)
    if stack:
        raise TemplateError("an {% if %} is not closed with {% endif %}", template.count("\n") + 1)
    if emitting:
        out.append(template[pos:])
        sources.append(template.count("\n", 0, pos) + 1)
    text = "".join(out)
    for leftover in ("{{", "{%"):
        if leftover in text:
            raise TemplateError(f"an unclosed Jinja tag {leftover!r}",
                                template.count("\n", 0, template.find(leftover)) + 1)
    return text + final, _line_map(out, sources)


def _line_map(pieces: list[str], sources: list[int]) -> list[int]:
    """For each output line, the template line it starts on."""
    first = next((abs(s) for p, s in zip(pieces, sources, strict=True) if p), 1)
    lines = [first]
    for piece, source in zip(pieces, sources, strict=True):
        for k in range(piece.count("\n")):
            # literal text (source > 0): the line after its k-th newline; a value (-line): the tag's line
            lines.append(source + k + 1 if source > 0 else -source)
    return lines


def _block(text: str, scope: Mapping[str, Any], line: int, stack: list[tuple[bool, bool, bool]],
           emitting: bool) -> bool:
    word, _, rest = text.partition(" ")
    if word == "if":
        taken = emitting and _condition(rest, scope, line)
        stack.append((taken, taken, emitting))
        return taken
    if word in ("elif", "else", "endif"):
        if not stack:
            raise TemplateError(f"{{% {word} %}} without {{% if %}}", line)
        _, done, outer = stack[-1]
        if word == "endif":
            stack.pop()
            return outer
        if word == "else":
            taken = outer and not done
        else:
            taken = outer and not done and _condition(rest, scope, line)
        stack[-1] = (taken, done or taken, outer)
        return taken
    raise TemplateError(f"the Jinja statement {{% {word} %}} is not supported", line)

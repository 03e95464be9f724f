"""The colon-separated account databases: passwd, shadow, group, gshadow, subuid, subgid.

Rows are kept in file order; lines that are not a well-formed row (comments,
NIS ``+`` entries, damaged lines) are carried through verbatim so rewriting a
file never loses what we did not understand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Number of fields per row in each database.
FIELD_COUNTS: dict[str, int] = {
    "passwd": 7,
    "shadow": 9,
    "group": 4,
    "gshadow": 4,
    "subuid": 3,
    "subgid": 3,
}


@dataclass
class Table:
    """One database file as rows (lists of fields) and verbatim lines."""

    kind: str
    lines: list[list[str] | str] = field(default_factory=list)

    @classmethod
    def parse(cls, kind: str, text: str) -> Table:
        count = FIELD_COUNTS[kind]
        table = cls(kind)
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) == count and fields[0] and not line.startswith(("#", "+", "-")):
                table.lines.append(fields)
            else:
                table.lines.append(line)
        return table

    def render(self) -> str:
        out = [":".join(line) if isinstance(line, list) else line for line in self.lines]
        return "".join(line + "\n" for line in out)

    def rows(self) -> list[list[str]]:
        return [line for line in self.lines if isinstance(line, list)]

    def get(self, name: str) -> list[str] | None:
        for row in self.rows():
            if row[0] == name:
                return row
        return None

    def put(self, row: list[str]) -> None:
        """Replace the row with the same name, or append it."""
        if len(row) != FIELD_COUNTS[self.kind]:
            raise ValueError(f"{self.kind} row needs {FIELD_COUNTS[self.kind]} fields")
        for index, line in enumerate(self.lines):
            if isinstance(line, list) and line[0] == row[0]:
                self.lines[index] = row
                return
        self.lines.append(row)

    def remove(self, name: str) -> bool:
        before = len(self.lines)
        self.lines = [ln for ln in self.lines if not (isinstance(ln, list) and ln[0] == name)]
        return len(self.lines) != before

    def numeric_ids(self, column: int) -> set[int]:
        ids = set()
        for row in self.rows():
            if row[column].isdigit():
                ids.add(int(row[column]))
        return ids


def split_list(value: str) -> list[str]:
    """A comma-separated member list; the empty string is the empty list."""
    return [item for item in value.split(",") if item]

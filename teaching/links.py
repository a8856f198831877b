"""A lesson link: a view a teacher hands out, and its short URL.

:class:`LessonLink` holds a page, the values of its controls (the digit, the neuron settings, the
open tab…) and which controls are locked (visible, disabled) or hidden.  Every other control is
shown.  Values and names are checked against the table in ``teaching.controls``.

The URL is the app's own link to that page with only what differs from the page's defaults, plus
two lists of control names (TF Playground hides controls with ``<name>_hide=true``; two compact
lists keep the link short)::

    /explore?source=MNIST&index=42&thresh=2&lock=thresh,index&hide=device,ckpt,upload_checkpoint

:func:`decode` reads such a query back and corrects what a hand-edited or outdated link got
wrong: one plain-text line per correction (a value out of range is clamped; a value that is no
number, an unknown control, a control of another page, an oversized value is dropped), and nothing
else changes.  A line repeats at most a few dozen characters of the input, with every character
that Markdown or HTML could read shown as ``?`` (``teaching.controls.echo``).

Lock and hide are for focus, not security: a student can edit the link.  Nothing secret belongs in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from teaching import bounds
from teaching.controls import BY_NAME, CONTROLS, PAGE_TITLES, PAGES, Refused, echo

SHOWN, LOCKED, HIDDEN = "shown", "locked", "hidden"


class LinkError(ValueError):
    """A LessonLink built with a wrong page, control or value (a programming or lesson-file mistake)."""


def _misplaced(name: str, page: str, settable: bool) -> str | None:
    """Why control ``name`` cannot be set (``settable``) or locked and hidden on ``page``; None when it can."""
    control = BY_NAME.get(name)
    if control is None:
        return "no such control"
    if page not in control.pages:
        return f"not on the {PAGE_TITLES[page]} page"
    if settable and not control.has_value:
        return "it has no value to set (only to lock or hide)"
    return None


def _shown(name: str) -> str:
    """A control's name as a message says it: as it is when the table knows it, else echoed safely."""
    return name if name in BY_NAME else echo(name)


def link_problems(page: str, values: Mapping, locked=(), hidden=()) -> list[str]:
    """Every reason ``LessonLink(page, values, locked, hidden)`` would be refused, one line each
    (empty when it is fine).  Lesson files are checked with this, so a file gets all its problems at once."""
    if page not in PAGES:
        return [f"unknown page {echo(page)}: one of {', '.join(PAGES)}"]
    problems = []
    for name, value in values.items():
        if why := _misplaced(name, page, settable=True):
            problems.append(f"{_shown(name)}: {why}")
        elif value is not None and (problem := BY_NAME[name].kind.problem(value)):
            problems.append(f"{name}: {problem}")
    for what, names in (("locked", locked), ("hidden", hidden)):
        problems += [f"cannot keep {_shown(name)} {what}: {why}" for name in names if (why := _misplaced(name, page, settable=False))]
    for name in sorted(set(locked) & set(hidden)):
        problems.append(f"{name} is both locked and hidden")
    return problems


@dataclass(frozen=True)
class LessonLink:
    """A page, its control values, and which controls are locked or hidden.

    ``values`` maps control names (``teaching.controls.CONTROLS``) to values of their kind: numbers
    for ``thresh``/``index``…, option labels for tabs, tuples for multiselects.  A value equal to the
    page's default is dropped, and so is ``None``, so two links that open the same view are equal.
    Construction checks everything and raises :class:`LinkError` (use :func:`link_problems` to list
    every problem).  Immutable: change one with ``dataclasses.replace`` or :meth:`with_values`.
    """

    page: str = "explore"
    values: Mapping = field(default_factory=dict)
    locked: frozenset = frozenset()
    hidden: frozenset = frozenset()

    def __post_init__(self):
        problems = link_problems(self.page, self.values, self.locked, self.hidden)
        if problems:
            raise LinkError(problems[0])
        kept = {}
        for control in CONTROLS:  # the table's order: one canonical form
            value = self.values.get(control.name)
            if value is not None:
                value = control.kind.normal(value)
                if value != control.default:
                    kept[control.name] = value
        object.__setattr__(self, "values", MappingProxyType(kept))
        object.__setattr__(self, "locked", frozenset(self.locked))
        object.__setattr__(self, "hidden", frozenset(self.hidden))

    def __hash__(self):
        return hash((self.page, tuple(self.values.items()), self.locked, self.hidden))

    def __eq__(self, other):
        if not isinstance(other, LessonLink):
            return NotImplemented
        return (self.page, dict(self.values), self.locked, self.hidden) == (other.page, dict(other.values), other.locked, other.hidden)

    def value(self, name: str):
        """The control's value in this link, or the page's default when the link does not set it."""
        return self.values.get(name, BY_NAME[name].default)

    def visibility(self, name: str) -> str:
        """``"shown"``, ``"locked"`` (drawn, disabled) or ``"hidden"`` (not drawn at all)."""
        return HIDDEN if name in self.hidden else LOCKED if name in self.locked else SHOWN

    def with_values(self, changes: Mapping) -> LessonLink:
        """A copy with some values changed (``None`` removes one, back to the page's default)."""
        return LessonLink(self.page, {**self.values, **changes}, self.locked, self.hidden)

    def query(self) -> str:
        """The URL query, without ``?``: :func:`encode`."""
        return encode(self)

    def url(self, base: str = "") -> str:
        """The whole link: ``base`` (``https://host/app``, or empty for a relative link) + page + query."""
        query = self.query()
        return f"{base.rstrip('/')}/{PAGES[self.page]}" + (f"?{query}" if query else "")


def encode(link: LessonLink) -> str:
    """The query string of ``link``: its values in the table's order (repeated keys for a multiselect,
    ``key=`` for an empty one), then ``lock=`` and ``hide=`` as comma-separated names."""
    pairs = [(name, text) for name, value in link.values.items() for text in BY_NAME[name].kind.format(value)]
    for key, names in (("lock", link.locked), ("hide", link.hidden)):
        if names:
            pairs.append((key, ",".join(c.name for c in CONTROLS if c.name in names)))
    return urlencode(pairs, quote_via=quote, safe=",")


@dataclass(frozen=True)
class Decoded:
    """What :func:`decode` made of a link: the view to open and one plain-text line per correction."""

    link: LessonLink
    corrections: tuple[str, ...] = ()


def decode(query, page: str) -> Decoded:
    """Read a link's query for ``page`` back into a :class:`LessonLink`, correcting what is wrong.

    ``query`` is the query string (with or without ``?``) or a mapping of key -> value or list of
    values; from Streamlit, ``{k: st.query_params.get_all(k) for k in st.query_params}`` (``to_dict``
    keeps only the last of repeated keys).  Never raises for bad input."""
    reading = read_query(query, page)
    link = LessonLink(reading.page, reading.values, reading.locked - reading.hidden, reading.hidden)
    return Decoded(link, reading.corrections)


@dataclass(frozen=True)
class Reading:
    """A query as :func:`read_query` read it: every usable value (defaults included, unlike a
    :class:`LessonLink`), the lock and hide lists, and one plain-text line per correction."""

    page: str
    values: Mapping
    locked: frozenset = frozenset()
    hidden: frozenset = frozenset()
    corrections: tuple[str, ...] = ()


def read_query(query, page: str) -> Reading:
    """The values of ``query`` for ``page``, each parsed by its control's kind: what :func:`decode`
    builds a link from, and what the app reads every link with before any widget sees it.

    A key whose value could not be used at all is absent from ``values``; a corrected one holds
    its corrected value.  Never raises for bad input."""
    lines = []
    if page not in PAGES:
        lines.append(f"unknown page {echo(page)}; opening Home")
        page = "home"
    pairs, refused = _pairs(query)
    if refused:
        return Reading(page, {}, corrections=(*lines, refused))
    grouped: dict[str, list[str]] = {}
    for key, raw in pairs:
        grouped.setdefault(key, []).append(raw)
    values, lists = {}, {"lock": set(), "hide": set()}
    for key, raws in grouped.items():
        if key in lists:
            lists[key] |= _names(key, raws, page, lines)
            continue
        control = BY_NAME.get(key)
        if why := _misplaced(key, page, settable=True):
            lines.append(f"ignored {_shown(key)}: {why}")
        elif control.multi:
            values[key], dropped = control.kind.parse_all(key, raws)
            lines += dropped
        else:
            if len(raws) > 1:
                lines.append(f"{key} is given {len(raws)} times; using the first")
            try:
                values[key], fixed = control.kind.parse(key, raws[0])
            except Refused as refused_value:
                lines.append(str(refused_value))
                continue
            if fixed:
                lines.append(fixed)
    for name in sorted(lists["lock"] & lists["hide"]):
        lines.append(f"{name} is both locked and hidden; hiding it")
    return Reading(page, values, frozenset(lists["lock"]), frozenset(lists["hide"]), tuple(lines))


def decode_url(url: str) -> Decoded:
    """:func:`decode` for a whole link: the page is the last part of its path (empty for Home)."""
    parts = urlsplit(url)
    last = parts.path.rstrip("/").rpartition("/")[2]
    page = next((name for name, path in PAGES.items() if path == last), None)
    if page is None:
        decoded = decode(parts.query, "home")
        return Decoded(decoded.link, (f"unknown page {echo(last)}; opening Home", *decoded.corrections))
    return decode(parts.query, page)


def _pairs(query) -> tuple[list[tuple[str, str]], str | None]:
    """(key, value) pairs of ``query``, or a line refusing the whole of it when it is too big."""
    if isinstance(query, str):
        text = query[1:] if query.startswith("?") else query
        size, count = len(text), text.count("&") + 1 if text else 0
    else:
        text = None
        items = [(str(k), v) for k, v in query.items()]
        count = sum(1 if isinstance(v, str) else len(v) for _, v in items)
        size = sum(len(k) + (len(v) if isinstance(v, str) else sum(len(str(x)) for x in v)) for k, v in items)
    if size > bounds.MAX_LINK_CHARS or count > bounds.MAX_LINK_PARAMS:
        return [], (
            f"the link is too big ({size:,} characters in {count} parts; at most {bounds.MAX_LINK_CHARS:,} in "
            f"{bounds.MAX_LINK_PARAMS}): opening the page without its settings"
        )
    if text is not None:
        return parse_qsl(text, keep_blank_values=True), None
    return [(k, str(x)) for k, v in items for x in ([v] if isinstance(v, str) else v)], None


def _names(key: str, raws: list[str], page: str, lines: list[str]) -> set[str]:
    """The control names of a ``lock=`` / ``hide=`` list; unknown ones and other pages' dropped, a line each."""
    names = set()
    for raw in raws:
        for name in filter(None, (part.strip() for part in raw.split(","))):
            if why := _misplaced(name, page, settable=False):
                lines.append(f"ignored {_shown(name)} in {key}: {why}")
            else:
                names.add(name)
    return names

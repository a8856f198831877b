"""Every control a lesson link can set, lock or hide: ONE table, with its URL key and what it accepts.

A control with a value (``thresh``, ``index``, ``lab_view``…) is named by the URL query key its page
already binds, so a lesson link is an ordinary link of the app with two more keys, ``lock=`` and
``hide=`` (see ``teaching.links``).  A control without a value in the link (a button, an upload) is
listed too, so a teacher can lock or hide it.  ``widget`` is the ``st.session_state`` key the page
gives the widget, for the pages to find the control they draw.

Ranges come from ``sae.limits``.  The choices of tabs and pickers are the labels the pages show (a
bound widget writes its label into the URL); tests/test_teaching_links.py checks them against the
pages, so a renamed tab fails a test instead of breaking old links silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sae import limits
from sae.limits import Range
from sae.model import SPIKING_LAYERS
from teaching import bounds

# Page name -> URL path (app.py's url_path; Home is the root).
PAGES = {"home": "", "explore": "explore", "compare": "compare", "lab": "lab", "train": "train", "teach": "teach", "join": "join"}
PAGE_TITLES = {
    "home": "Home",
    "explore": "Explore",
    "compare": "Compare",
    "lab": "Latent lab",
    "train": "Train",
    "teach": "Teach",
    "join": "Join a class",
}
EVERY_PAGE = frozenset(PAGES)  # the sidebar, drawn by app.py before every page
RESERVED = ("lock", "hide")  # the link's own keys (teaching.links)


class Refused(ValueError):
    """A value in a link that cannot be used at all; the message is one plain line."""


def echo(raw: str) -> str:
    """A piece of untrusted input, safe to repeat in a message: at most ``ECHO_CHARS`` characters,
    every character but letters, digits, space and ``. + -`` shown as ``?``, quoted.

    Safe under Markdown and HTML alike (no ``* _ ` [ ] < > $ # \\``), so a page may show the line
    however it shows text."""
    text = str(raw)
    cut = text[: bounds.ECHO_CHARS]
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in " .+-" else "?" for c in cut)
    return f"'{safe}{'…' if len(text) > len(cut) else ''}'"


def _number_text(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"  # 0.35, not 0.35000000000000003


@dataclass(frozen=True)
class Number:
    """A number in a ``sae.limits.Range``: out of range is clamped (with a line), not a number is refused."""

    range: Range

    def parse(self, name: str, raw: str):
        """(value, correction line or None); Refused when ``raw`` is no usable number."""
        try:
            value = self.range.parse(raw)
        except (ValueError, OverflowError):
            kind = "an integer" if self.range.integer else "a finite number"
            raise Refused(f"ignored {name}={echo(raw)}: not {kind}") from None
        if self.range.problem(value):
            fixed = self.range.clamp(value)
            return fixed, f"{name} {_number_text(value)} is outside {self.range.describe()}; using {_number_text(fixed)}"
        return value, None

    def problem(self, value) -> str | None:
        return self.range.problem(value)

    def normal(self, value):
        return int(value) if self.range.integer else float(value)

    def format(self, value) -> list[str]:
        return [_number_text(self.normal(value))]


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (strings or numbers), written in the URL as its label."""

    options: tuple

    def label(self, option) -> str:
        return option if isinstance(option, str) else _number_text(option)

    def find(self, value):
        """The option whose label ``value`` has (1 and 1.0 find 1.0; 7 and "7" find either), or None."""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return None
        text = value if isinstance(value, str) else _number_text(value)
        return next((option for option in self.options if self.label(option) == text), None)

    def parse(self, name: str, raw: str):
        option = self.find(raw)
        if option is None:
            raise Refused(f"ignored {name}={echo(raw)}: not one of its choices")
        return option, None

    def problem(self, value) -> str | None:
        return None if self.find(value) is not None else f"{value!r} is not one of {', '.join(map(self.label, self.options))}"

    def normal(self, value):
        return self.find(value)

    def format(self, value) -> list[str]:
        return [self.label(self.find(value))]


@dataclass(frozen=True)
class Several:
    """Any number of ``options`` (a multiselect): repeated in the URL, ``key=`` alone for none."""

    options: tuple

    @property
    def choice(self) -> Choice:
        return Choice(self.options)

    def parse_all(self, name: str, raws: list[str]):
        """(value, correction lines): unknown entries are dropped one line each, repeats silently."""
        if raws == [""]:
            return (), []
        picked, lines = [], []
        for raw in raws:
            try:
                option, _ = self.choice.parse(name, raw)
            except Refused as refused:
                lines.append(str(refused))
                continue
            if option not in picked:
                picked.append(option)
        return tuple(picked), lines

    def problem(self, value) -> str | None:
        if not isinstance(value, (list, tuple)):
            return f"{value!r} is not a list"
        wrong = [v for v in value if self.choice.find(v) is None]
        return f"{wrong[0]!r} is not one of {', '.join(map(self.choice.label, self.options))}" if wrong else None

    def normal(self, value):
        out = []
        for v in value:
            option = self.choice.find(v)
            if option not in out:
                out.append(option)
        return tuple(out)

    def format(self, value) -> list[str]:
        return [self.choice.label(v) for v in self.normal(value)] or [""]


@dataclass(frozen=True)
class Text:
    """Short text of one shape (a checkpoint name, a latent code): anything else is refused."""

    pattern: str
    what: str  # "a checkpoint name": for the correction line
    max_chars: int = bounds.MAX_VALUE_CHARS
    check: object = None  # optional extra check: text -> problem or None

    def problem(self, value) -> str | None:
        if not isinstance(value, str):
            return f"{value!r} is not text"
        if len(value) > self.max_chars:
            return f"longer than {self.max_chars} characters"
        if not re.fullmatch(self.pattern, value):
            return f"not {self.what}"
        return self.check(value) if self.check else None

    def parse(self, name: str, raw: str):
        if len(raw) > self.max_chars:
            raise Refused(f"ignored {name}: {len(raw):,} characters, more than {self.max_chars}")
        problem = self.problem(raw)
        if problem:
            raise Refused(f"ignored {name}={echo(raw)}: {problem}")
        return raw, None

    def normal(self, value):
        return value

    def format(self, value) -> list[str]:
        return [value]


@dataclass(frozen=True)
class Flag:
    """On or off: ``1`` in the URL when on (``true``/``yes``/``on`` and ``0``/``false``/``no``/``off`` are read too)."""

    def parse(self, name: str, raw: str):
        word = raw.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True, None
        if word in ("0", "false", "no", "off", ""):
            return False, None
        raise Refused(f"ignored {name}={echo(raw)}: not on or off (1 or 0)")

    def problem(self, value) -> str | None:
        return None if isinstance(value, bool) else f"{value!r} is not true or false"

    def normal(self, value):
        return bool(value)

    def format(self, value) -> list[str]:
        return ["1" if value else "0"]


def _latent_code_problem(text: str) -> str | None:
    """The Latent lab's code text (``sae.analysis.latent.code_to_text``), checked for its own shape only:
    the page compares it with the model's latent size when it opens."""
    from sae.analysis.latent import code_from_text

    neurons, steps = (int(part) for part in text.split("-", 1)[0].split("x"))
    if not (1 <= neurons <= limits.LATENT_DIM.high and limits.NUM_STEPS.low <= steps <= limits.NUM_STEPS.high):
        return f"a {neurons} x {steps} code is outside the model's sizes"
    try:
        code_from_text(text, neurons, steps)
    except ValueError as error:
        return str(error)
    return None


@dataclass(frozen=True)
class Control:
    """One row of the table: a control a link can set (``kind``) and lock or hide."""

    name: str  # the URL key for a control with a value; the name in lock= / hide= for all
    label: str  # what the Teach page calls it
    pages: frozenset  # where it is drawn
    kind: object = None  # Number, Choice, Several, Text or Flag; None: a button or an upload, nothing to set
    default: object = None  # what the page shows without a value (None: it depends, e.g. the checkpoint's thresh)
    widget: str | None = None  # its st.session_state key on the page

    @property
    def has_value(self) -> bool:
        return self.kind is not None

    @property
    def multi(self) -> bool:
        return isinstance(self.kind, Several)


EXPLORE, COMPARE, LAB, TRAIN = (frozenset({p}) for p in ("explore", "compare", "lab", "train"))
DIGIT_CLASSES = ("any",) + tuple(str(d) for d in range(10))
EXPLORE_VIEWS = ("Latent code", "Inside a layer", "Spikes per layer", "Input vs output")
EXPLORE_LAYERS = tuple(SPIKING_LAYERS) + ("output",)
LAB_VIEWS = ("Edit the code", "What each neuron draws", "Between two digits", "The map of codes")
COMPARE_VIEWS = ("What does thresh do?", "What does num_steps do?", "Sweep grid", "A/B")
COMPARE_DIGITS = ("random", "by class", "from Explore")
COMPARE_SEED = Range("c_seed", 0, 10_000, 1, integer=True)  # the Compare page's seed input
CODE_TEXT_CHARS = 1700  # a 128-neuron, 50-step code (the largest the Train page makes) is 1,608 characters
TRAIN_FIELDS = ("preset", "latent_dim", "beta", "thresh", "num_steps", "surrogate", "lr", "batch_size", "loss", "train_subset", "seed")
TRAIN_FIELDS += ("epochs", "time_budget", "device", "weight_decay", "schedule", "warmup_steps", "eval_images", "calibrate")
CHECKPOINT_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
# The sidebar's label of a checkpoint: its name, and when names meet, whose it is (explorer.sidebar).
CHECKPOINT_LABEL = rf"{CHECKPOINT_NAME}( \((trained here|yours|shared( [0-9]{{1,3}})?)\))?"
CHECKPOINT_LABEL_CHARS = bounds.MAX_VALUE_CHARS + len(" (trained here)")
LESSON_NAME = r"[a-z0-9][a-z0-9_-]{0,39}"
JOIN_CODE = rf"[{bounds.JOIN_CODE_ALPHABET}]{{{bounds.JOIN_CODE_LENGTH}}}"
DESK = r"[A-Za-z0-9_-]{1,20}\.[A-Za-z0-9_-]{16,64}"  # a class id and its teacher key: the teacher link's ``desk=``


def _setting(tag: str, side: str, rng: Range, default) -> Control:
    return Control(f"c_{side}_{tag}", f"A/B: setting {side.upper()}, {rng.name}", COMPARE, Number(rng), default, f"c_{side}_{tag}")


CONTROLS: tuple[Control, ...] = (
    # The sidebar: on every page.
    Control("ckpt", "Checkpoint", EVERY_PAGE, Text(CHECKPOINT_LABEL, "a checkpoint name", CHECKPOINT_LABEL_CHARS), None, "sb_checkpoint"),
    Control("device", "Device", EVERY_PAGE, Choice(limits.DEVICES), None, "sb_device"),
    Control("thresh", "thresh (firing threshold)", EVERY_PAGE, Number(limits.THRESH), None, "sb_thresh"),
    Control("beta", "beta (membrane decay)", EVERY_PAGE, Number(limits.BETA), None, "sb_beta"),
    Control("steps", "num_steps (time steps)", EVERY_PAGE, Number(limits.NUM_STEPS), None, "sb_steps"),
    Control("upload_checkpoint", "Upload a checkpoint", EVERY_PAGE, widget="sb_upload"),
    Control("reset_settings", "Reset to the checkpoint's values", EVERY_PAGE),
    # The app's own switches, read by app.py and the lesson player.
    Control("projector", "Projector view", EVERY_PAGE, Flag(), False),
    Control("lesson", "Lesson", EVERY_PAGE, Text(LESSON_NAME, "a lesson name")),
    Control("lesson_step", "Lesson step", EVERY_PAGE, Number(Range("lesson_step", 1, bounds.MAX_STEPS, 1, integer=True))),
    Control("join", "Join code of a live class", EVERY_PAGE, Text(JOIN_CODE, "a join code", bounds.JOIN_CODE_LENGTH)),
    # The Teach page: the teacher link (read once, then kept in the teacher's session and dropped from the address bar).
    Control("desk", "Teacher link of a live class", frozenset({"teach"}), Text(DESK, "a teacher link", 86)),
    # Explore.
    Control("source", "Input (draw, MNIST, upload)", EXPLORE, Choice(("Draw", "MNIST", "Upload")), "Draw", "source"),
    Control("index", "MNIST test image #", EXPLORE, Number(limits.TEST_INDEX), 0, "index"),
    Control("class", "Digit class", EXPLORE, Choice(DIGIT_CLASSES), "any", "class"),
    Control("random_digit", "Random digit", EXPLORE),
    Control("view", "Tab", EXPLORE, Choice(EXPLORE_VIEWS), EXPLORE_VIEWS[0], "view"),
    Control("layer", "Layer (Inside a layer)", EXPLORE, Choice(EXPLORE_LAYERS), EXPLORE_LAYERS[0], "layer"),
    # Latent lab.
    Control("lab_a", "Digit A: MNIST test image #", LAB, Number(limits.TEST_INDEX), 0, "lab_a"),
    Control("lab_b", "Digit B: MNIST test image #", LAB, Number(limits.TEST_INDEX), 1, "lab_b"),
    Control("lab_view", "Tab", LAB, Choice(LAB_VIEWS), LAB_VIEWS[0], "lab_view"),
    Control("lab_code", "Edited latent code", LAB, Text(r"\d{1,4}x\d{1,3}-[0-9a-f]*", "a latent code", CODE_TEXT_CHARS, _latent_code_problem)),
    Control("lab_neuron", "Neuron to edit", LAB, widget="lab_neuron"),
    Control("lab_edit_buttons", "Silence / fire / clear / restore", LAB),
    # Compare.
    Control("c_view", "Tab", COMPARE, Choice(COMPARE_VIEWS), COMPARE_VIEWS[0], "c_view"),
    Control("c_digits", "Digits", COMPARE, Choice(COMPARE_DIGITS), "random", "c_digits"),
    Control("c_n", "How many digits", COMPARE, Number(limits.SWEEP_DIGITS), 256, "c_n"),
    Control("c_seed", "Seed", COMPARE, Number(COMPARE_SEED), 0, "c_seed"),
    Control("c_class", "Class", COMPARE, Choice(tuple(range(10))), 0, "c_class"),
    Control(
        "c_thresh_values", "thresh values to compare", COMPARE, Several(limits.THRESH_CHOICES), (0.25, 0.5, 1.0, 1.5, 2.0, 3.0), "c_thresh_values"
    ),
    Control(
        "c_num_steps_values", "num_steps values to compare", COMPARE, Several(limits.NUM_STEPS_CHOICES), (1, 2, 3, 5, 10, 20), "c_num_steps_values"
    ),
    Control("c_grid_thresh", "Sweep grid: thresh", COMPARE, Several(limits.THRESH_CHOICES), (0.25, 0.5, 1.0, 1.5, 2.0, 3.0), "c_grid_thresh"),
    Control("c_grid_steps", "Sweep grid: num_steps", COMPARE, Several(limits.NUM_STEPS_CHOICES), (1, 2, 3, 5, 8, 10), "c_grid_steps"),
    Control("c_grid_beta", "Sweep grid: beta", COMPARE, Several(limits.BETA_CHOICES), (), "c_grid_beta"),
    _setting("thresh", "a", limits.THRESH, 1.0),
    _setting("steps", "a", limits.NUM_STEPS, 5),
    _setting("beta", "a", limits.BETA, 0.5),
    _setting("thresh", "b", limits.THRESH, 2.0),
    _setting("steps", "b", limits.NUM_STEPS, 5),
    _setting("beta", "b", limits.BETA, 0.5),
    Control("c_layer", "Layer (A/B)", COMPARE, Choice(tuple(SPIKING_LAYERS)), "latent", "c_layer"),
    # Train: the form, locked or hidden only (a link starts no training).
    *(Control(f"train_{field}", f"Train form: {field}", TRAIN, widget=f"tr_{field}") for field in TRAIN_FIELDS),
    Control("train_start", "Start training", TRAIN),
)
BY_NAME = {control.name: control for control in CONTROLS}


def controls_on(page: str) -> tuple[Control, ...]:
    """The controls drawn on ``page``, sidebar first, in the table's order."""
    return tuple(control for control in CONTROLS if page in control.pages)

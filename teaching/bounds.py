"""Every limit of the teacher's side, in one place: sizes, counts and lifetimes.

Neuron settings, digit indices and the other ranges of the app are not here: they live in
``sae.limits`` and are read from there.  These bound what a link, a lesson file or a class may
hold, so nothing a visitor sends can grow without bound.
"""

from __future__ import annotations

# --- lesson links -----------------------------------------------------------------------
MAX_LINK_CHARS = 4000  # a whole query string; a longer one is refused as a whole
MAX_LINK_PARAMS = 80  # key=value pairs in one query string
MAX_VALUE_CHARS = 64  # one value (a latent code may be longer: see teaching.controls)
ECHO_CHARS = 24  # at most this much of a refused value is repeated in a correction line
MAX_QR_CHARS = 1500  # a QR code of a longer text is too dense to scan from a projector

# --- lesson files -----------------------------------------------------------------------
MAX_LESSON_BYTES = 64 * 1024
MAX_LESSON_FILES = 50  # per folder
MAX_STEPS = 20
MAX_CHOICES = 6
MAX_CHECKS = 10  # measured facts per step
MAX_CHECK_DIGITS = 20  # digits one fact is checked on
TITLE_CHARS = 80
SHORT_TEXT_CHARS = 300  # a summary, a question
LONG_TEXT_CHARS = 800  # what to do, what to notice, the explanation after the reveal
CHOICE_CHARS = 80
UNIT_CHARS = 20

# --- the live class ---------------------------------------------------------------------
CLASS_TTL_S = 24 * 3600  # a class and everything in it is deleted this long after it starts
JOIN_TTL_S = 3600  # a join code admits students this long; the teacher can open a new one
JOIN_CODE_LENGTH = 6
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a projector
MAX_CLASSES = 50  # open at once on one server (or one Redis)
MAX_STUDENTS = 60  # per class
NICKNAME_CHARS = 20
MAX_ANSWER_BYTES = 8 * 1024  # one answer, serialised
MAX_IMAGE_SIDE = 64  # a shared decoded image, pixels per side
MAX_LINK_IN_ANSWER = 600  # a shared experiment's link (query string)
SUBMISSIONS_PER_WINDOW = 10  # per student; one more within the window is refused
SUBMISSION_WINDOW_S = 60
LOCK_WAIT_S = 10  # how long one call waits for another on the same class (Redis)

"""Named state that crosses pages, one writer per key.

Pages never read or write another page's ``st.session_state`` keys directly:
they go through these functions, so each key has one owner and one meaning.

- the digit on the Explore page: written by Explore, read by Compare and the Latent lab;
- a checkpoint another page asks the sidebar to open (e.g. "Open it in Explore"
  after saving on the Train page): written by that page, consumed by the sidebar,
  which alone owns its own widget values.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

DIGIT_KEY = "explore_digit"  # a ChosenDigit
_OPEN_CHECKPOINT = "_open_checkpoint"


@dataclass(frozen=True)
class ChosenDigit:
    """A digit as the network sees it ([1, 1, 32, 32]) and how to name it."""

    image: torch.Tensor
    label: str


def set_explore_digit(image: torch.Tensor, label: str) -> None:
    """Explore's digit (written by the Explore page only)."""
    st.session_state[DIGIT_KEY] = ChosenDigit(image, label)


def explore_digit() -> ChosenDigit | None:
    """The digit last shown on the Explore page in this session, if any."""
    return st.session_state.get(DIGIT_KEY)


def request_checkpoint(name: str) -> None:
    """Ask the sidebar to switch to checkpoint ``name`` on its next run."""
    st.session_state[_OPEN_CHECKPOINT] = name


def take_checkpoint_request() -> str | None:
    """The checkpoint a page asked for, once (read by the sidebar only)."""
    return st.session_state.pop(_OPEN_CHECKPOINT, None)

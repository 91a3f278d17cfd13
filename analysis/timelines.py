"""State timelines -> episodes -> unblocking windows, blips, blocking episodes, window events.

Definitions (see docs/analysis.md for the long form):

* **Evidence.** ``ok`` -> state ``reachable``, ``blocked`` -> ``blocked``, ``down`` -> ``down`` (the
  target itself is down), ``outage`` -> ``outage`` (the vantage's own network failed). ``flaky`` and
  ``inconclusive`` carry no state: they never start, end or split an episode (they are counted in
  ``n_neutral`` when they fall inside one).
* **Episode.** A maximal run of consecutive evidence of one state in one group (default: one vantage
  and one target), in time order, with no gap between consecutive evidence longer than ``max_gap``.
  ``start``/``end`` are the first/last evidence of the state; ``start_after`` is the last evidence of
  the group before ``start`` (whatever its state) and ``end_before`` the first evidence after ``end``;
  ``NaT`` when there is none. So the state really began in ``(start_after, start]`` and ended in
  ``[end, end_before)``. A gap longer than ``max_gap`` ends the episode even when the same state
  resumes after it: no state is invented across a gap, the bounds just become wide
  (``gap_before``/``gap_after`` say so).
* **Baseline** of a group: ``blocked`` when most of its ``ok``+``blocked`` measurements (in the frame
  analysed) are ``blocked``, ``reachable`` when most are ``ok``, ``mixed`` on a tie, missing without such
  evidence. ``baseline="neighbours"`` instead takes, for each episode, the nearest blocked/reachable
  episode before *and* after it (outage and down episodes skipped): both blocked (or both reachable).
* **Unblocking window.** A ``reachable`` episode of a group whose baseline is blocked, with at least
  ``min_n`` (2) consecutive ``ok`` measurements, or with one that is *corroborated*: another group (another
  vantage, or another target of the same platform) of the same platform and country has a candidate
  reachable episode whose evidence ``[start, end]`` overlaps this one's possible extent
  ``(start_after, end_before)`` (clipped to ``max_gap`` either side). An uncorroborated single ``ok`` is a
  **blip**, never a window. Outage and down episodes are neither blocking nor unblocking.
* **Blocking episode.** The mirror image: a ``blocked`` episode of a group whose baseline is reachable.
* **Window event.** Windows of one country whose possible extents overlap (transitively) are one event;
  it lists the platforms, targets, vantages and ASNs that opened, the ASNs that had blocked evidence
  for those platforms during the event and did not open, and its ``scope``: ``nationwide`` (>= 2 ASNs
  opened and none stayed blocked), ``isp-specific`` (some ASN stayed blocked), ``undetermined`` (only one
  ASN had evidence).

Everything is vectorised (sort, shift, cumsum, bincount, searchsorted); the per-partition function
:func:`episodes_frame` is what Dask maps over partitions (one vantage's rows are in one partition).

The work is done in four modules, each importing only those before it: :mod:`analysis.episode_runs`
(the per-partition kernel), :mod:`analysis.episode_table` (:func:`episodes`), :mod:`analysis.transitions`
(windows, blips, blocking episodes) and :mod:`analysis.events` (window events). This module keeps their
public names importable from here and computes them all at once for a report (:func:`analyse`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.episode_runs import (
    BLOCKED,
    DEFAULT_BY,
    DEFAULT_MAX_GAP,
    DESCRIPTORS,
    DOWN,
    NAT,
    OUTAGE,
    REACHABLE,
    STATE_DTYPE,
    STATES,
    empty_episodes,
    episodes_frame,
    gap_us,
    parse_duration,
)
from analysis.episode_table import _ep_table, _meta, episodes, is_episode_table
from analysis.events import cluster_windows, events_from, window_events
from analysis.transitions import blips, blocking_episodes, corroborated, spans, unblocking_windows

__all__ = [
    "Analysis",
    "BLOCKED",
    "DEFAULT_BY",
    "DEFAULT_MAX_GAP",
    "DESCRIPTORS",
    "DOWN",
    "NAT",
    "OUTAGE",
    "REACHABLE",
    "STATES",
    "STATE_DTYPE",
    "analyse",
    "blips",
    "blocking_episodes",
    "cluster_windows",
    "corroborated",
    "empty_episodes",
    "episodes",
    "episodes_frame",
    "events_from",
    "gap_us",
    "is_episode_table",
    "parse_duration",
    "spans",
    "unblocking_windows",
    "window_events",
]


# ---------------------------------------------------------------------------------------- analyse
@dataclass
class Analysis:
    """Everything a report needs, computed once from one episode table."""

    episodes: pd.DataFrame
    windows: pd.DataFrame
    blips: pd.DataFrame
    blocking: pd.DataFrame
    events: pd.DataFrame
    max_gap_us: int


def analyse(
    df: Any, *, by: Sequence[str] = DEFAULT_BY, max_gap: Any = DEFAULT_MAX_GAP, baseline: str = "majority"
) -> Analysis:
    """Episodes, windows (with their ``event`` id), blips, blocking episodes and events, in one pass."""
    ep = _ep_table(df, by, max_gap)
    _, g = _meta(ep)
    win = unblocking_windows(ep, baseline=baseline)
    events = events_from(win, ep, g)
    win = win.assign(event=cluster_windows(win, g))
    return Analysis(
        episodes=ep,
        windows=win,
        blips=blips(ep, baseline=baseline),
        blocking=blocking_episodes(ep, baseline=baseline),
        events=events,
        max_gap_us=g,
    )

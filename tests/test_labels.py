"""Window labels from the MIT-BIH reference annotations, checked against windows read by hand.

Each real-record case below was inspected with ``wfdb.rdann`` (beat codes and rhythm changes listed in the
comment), so a change in the label rule or in the annotation reading shows up as a named window.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(
    0, str(REPO)
)  # training/ is a top-level folder of the repo, not part of the installed package

from training.labels import (  # noqa: E402
    BEAT_SYMBOLS,
    from_lists,
    label_for_window,
    label_from_beats,
    read_annotations,
    window_labels,
)

pytest.importorskip("wfdb", reason="reading .atr files needs the wfdb package")

DATA = Path(os.environ.get("ECGD_SHARED_DATA", REPO.parent / "shared" / "data")) / "mitdb"
W = 3600  # 10 s at 360 Hz

needs_data = pytest.mark.skipif(not (DATA / "203.atr").exists(), reason=f"MIT-BIH data not found in {DATA}")


@needs_data
@pytest.mark.parametrize(
    ("record", "start", "expected"),
    [
        # 203 0-10 s: rhythm (AFIB from sample 14; beats N and two V -> AF outranks V.
        ("203", 0, "AF"),
        # 201 500-510 s: (AFIB in force (from 171815); beats N and aberrated APCs 'a' -> still AF.
        ("201", 180000, "AF"),
        # 201 370-380 s: (AFIB until 136226, centre 135000 is still in AF; all N.
        ("201", 133200, "AF"),
        # 201 380-390 s: (NOD then (N at 138552, centre 138600 -> (N; beats j j N j N N -> N.
        ("201", 136800, "N"),
        # 201 440-450 s: (N; beats N, 'x' (non-conducted P, not a beat) and one 'a' -> S.
        ("201", 158400, "S"),
        # 203 300-310 s: (VT from 108537, (AFIB at 109079, (VT at 109293 .. centre 109800 is VT; V beats -> V.
        ("203", 108000, "V"),
        # 203 550-560 s: (AFIB, but a Q beat is in the window -> excluded.
        ("203", 198000, None),
        # 208 0-10 s: (N, beats F V N ... -> excluded for the fusion beats.
        ("208", 0, None),
        # 208 460-470 s: (N, beats N and V only -> V.
        ("208", 165600, "V"),
        # 209 50-60 s: (N, fifteen N and one A -> S.
        ("209", 18000, "S"),
        # 101 0-10 s: (N, all N -> N.
        ("101", 0, "N"),
        # 207 0-10 s: (B (bigeminy), R and V beats -> V.
        ("207", 0, "V"),
        # 207 40-50 s: one L beat, then '[' and ventricular flutter waves '!' -> excluded, not N.
        ("207", 14400, None),
        # 107 0-10 s: paced record, all '/' -> excluded.
        ("107", 0, None),
    ],
)
def test_hand_checked_windows(record: str, start: int, expected: str | None) -> None:
    ann = read_annotations(DATA / record)
    assert label_for_window(ann, start, start + W) == expected


@needs_data
def test_record_203_is_mostly_af_and_115_all_normal() -> None:
    """Whole-record sanity: 203 is AF/AFL throughout, 115 is sinus rhythm with N beats only."""
    labels_203 = [lab for _, lab in window_labels(read_annotations(DATA / "203"), 650000, W, W)]
    labels_115 = [lab for _, lab in window_labels(read_annotations(DATA / "115"), 650000, W, W)]
    assert len(labels_203) == len(labels_115) == 180  # whole 10 s windows from sample 0, as the daemon
    assert labels_203.count("AF") == 174
    assert labels_115 == ["N"] * 180


def test_beat_codes_are_wfdbs_qrs_codes() -> None:
    """ "Beat" means what WFDB's isqrs() counts as a QRS complex, no more and no less."""
    from wfdb.io import annotation as wann

    qrs = {
        lab.symbol
        for lab in wann.ann_labels
        if lab.label_store < len(wann.is_qrs) and wann.is_qrs[lab.label_store]
    }
    assert qrs == BEAT_SYMBOLS


def test_beat_on_window_edges() -> None:
    """A beat belongs to [start, end): one at ``start`` counts, one at ``end`` belongs to the next window."""
    ann = from_lists([0, 100, 200, 300], ["+", "N", "V", "N"], ["(N", "", "", ""])
    assert label_for_window(ann, 100, 200) == "N"
    assert label_for_window(ann, 200, 300) == "V"
    assert label_for_window(ann, 101, 200) is None  # no beat at all


def test_rhythm_at_window_centre() -> None:
    ann = from_lists([0, 50, 150, 250], ["+", "N", "+", "N"], ["(N", "", "(AFIB", ""])
    assert label_for_window(ann, 0, 300) == "AF"  # centre 150: (AFIB starts exactly there
    assert label_for_window(ann, 0, 298) == "N"  # centre 149: still (N
    assert label_for_window(ann, 0, 60) == "N"


def test_priority_and_exclusions() -> None:
    assert label_from_beats({"N", "V", "A"}, "(AFL") == "AF"
    assert label_from_beats({"N", "E", "A"}, "(N") == "V"
    assert label_from_beats({"N", "J"}, "(N") == "S"
    assert label_from_beats({"L", "R", "e", "j"}, None) == "N"
    for other in ("F", "Q", "/", "f", "B", "?", "!"):
        assert label_from_beats({"N", other}, "(N") is None
        assert label_from_beats({"N", other}, "(AFIB") is None
    assert label_from_beats(set(), "(AFIB") is None

"""The WFDB annotation writer, read back with the reference reader (``wfdb.rdann``)."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ecgd.io.annotations import (
    CODES,
    Annotation,
    AnnotationError,
    AnnotationWriter,
    annotation_path,
    write_annotations,
)


def read_back(path):
    return wfdb.rdann(str(path.parent / path.stem), path.suffix[1:])


def test_beats_with_long_gaps_read_back_exactly(tmp_path):
    # deltas of 0 (ties), 1, 1023 (the largest without SKIP), 1024 (first SKIP) and hours (32-bit SKIP)
    samples = [0, 0, 1, 1024, 2048, 2048 + 360 * 3600 * 5, 2048 + 360 * 3600 * 5 + 250]
    path = annotation_path(tmp_path, "rec")
    n = write_annotations(path, [Annotation(s) for s in samples])
    assert n == len(samples) and path.name == "rec.ecgd"
    ann = read_back(path)
    assert ann.sample.tolist() == samples
    assert ann.symbol == ["N"] * len(samples)


def test_rhythm_and_comment_annotations_with_aux_text(tmp_path):
    anns = [
        Annotation(10, "+", "(N"),
        Annotation(100, "N"),
        Annotation(5000, "+", "(AFIB"),  # odd length: padded to a word
        Annotation(5000, '"', "alarm: asystole 4.2 s, priority high"),
        Annotation(9000, "V", subtype=2, chan=1, num=3),
        Annotation(9100, "N", chan=1, num=3),
        Annotation(9200, "N"),
        Annotation(9300, '"', "Grüße: non-ASCII aux text"),
    ]
    path = tmp_path / "x.ecgd"
    write_annotations(path, anns)
    ann = read_back(path)
    assert ann.sample.tolist() == [a.sample for a in anns]
    assert ann.symbol == [a.symbol for a in anns]
    aux = [a.aux or "" for a in anns]
    assert ann.aux_note[:-1] == aux[:-1]
    # aux is stored as UTF-8 bytes; wfdb-python turns each byte into one character (latin-1)
    assert ann.aux_note[-1].encode("latin-1").decode("utf-8") == aux[-1]
    assert ann.subtype.tolist() == [a.subtype for a in anns]
    assert ann.chan.tolist() == [a.chan for a in anns]
    assert ann.num.tolist() == [a.num for a in anns]


def test_time_resolution_note_gives_rdann_the_rate(tmp_path):
    path = tmp_path / "r.ecgd"
    write_annotations(path, [Annotation(360), Annotation(720)], fs=360)
    ann = read_back(path)
    assert ann.fs == 360
    assert ann.sample.tolist() == [360, 720]  # the definition note is not an annotation


def test_every_code_round_trips(tmp_path):
    symbols = list(CODES)
    path = tmp_path / "all.ecgd"
    write_annotations(path, [Annotation(i * 7, s) for i, s in enumerate(symbols)])
    ann = read_back(path)
    assert ann.symbol == symbols
    table = wfdb.io.annotation.ann_label_table
    ref = dict(zip(table["symbol"], table["label_store"], strict=True))
    assert {s: ref[s] for s in symbols} == CODES


def test_streaming_writer_is_readable_after_close_and_counts(tmp_path):
    path = tmp_path / "s.ecgd"
    with AnnotationWriter(path) as w:
        for s in np.arange(0, 36000, 300):
            w.write(Annotation(int(s)))
            w.flush()
        assert w.count == 120
    assert read_back(path).sample.size == 120
    assert path.read_bytes()[-2:] == b"\0\0"


@pytest.mark.parametrize(
    ("ann", "match"),
    [
        (Annotation(5, "Z"), "unknown annotation symbol 'Z'"),
        (Annotation(5, '"', "x" * 256), "aux text of 256 bytes is longer than 255"),
        (Annotation(5, "N", chan=256), "chan 256 is outside 0..255"),
        (Annotation(5, "N", subtype=200), "subtype 200 is outside"),
    ],
)
def test_what_the_format_cannot_hold_is_a_clear_error(tmp_path, ann, match):
    with AnnotationWriter(tmp_path / "e.ecgd") as w, pytest.raises(AnnotationError, match=match):
        w.write(ann)


def test_out_of_order_is_refused(tmp_path):
    with AnnotationWriter(tmp_path / "o.ecgd") as w:
        w.write(Annotation(100))
        with pytest.raises(AnnotationError, match="time order"):
            w.write(Annotation(99))
    with pytest.raises(AnnotationError, match="annotator name"):
        annotation_path(tmp_path, "rec", "a/b")
